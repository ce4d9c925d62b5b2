"""The health check: a row edited with the triggers off is found at its exact link; the tenant is marked
compromised, support sees it, the tenant gets archive.chain_broken; the command exits non-zero."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from archive.chain import verify_chain
from archive.chain_tasks import verify_chains
from archive.models import ChainCheck, ChainEntry
from archive.services import chain_check
from invoicing.models import Invoice, InvoiceLine
from scell.models import Tenant
from tests.archive.conftest import (
    chain_key,
    entries,
    issue_via_api,
    raw_insert_event,
    raw_insert_received,
    triggers_disabled,
)
from webhooks.models import Event

pytestmark = pytest.mark.usefixtures("pg")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def issued_chain(seller, draft_body):
    """Two issued invoices: 6 links (each invoice, its line, its 'issued' event)."""
    client = seller.client("sk_test")
    first = issue_via_api(client, draft_body)
    second = issue_via_api(client, draft_body)
    return seller, first, second


def seq_of(key: str, table: str, source_id: str) -> int:
    return ChainEntry.objects.get(chain_key=key, source_table=table, source_id=str(source_id)).seq


def test_intact_chain_verifies(issued_chain) -> None:
    seller, *_ = issued_chain
    key = chain_key(seller.tenant)
    progress: list[tuple[int, int]] = []
    result = verify_chain(key, progress=lambda done, total: progress.append((done, total)))
    assert result.ok, result
    assert result.entries_checked == result.head_seq == 6
    assert progress[-1] == (6, 6)


def test_tampered_invoice_total_breaks_at_its_link(issued_chain, tenant_b) -> None:
    seller, _, second = issued_chain
    key = chain_key(seller.tenant)
    raw_insert_received(tenant_b.tenant)  # another tenant's chain must stay intact
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE invoicing_invoice SET total_with_vat = 1.00 WHERE id = %s", [second["id"]])
    assert Invoice.objects.get(pk=second["id"]).total_with_vat == 1  # the edit really happened

    result = verify_chain(key)
    assert not result.ok
    assert result.first_broken_seq == seq_of(key, "invoicing_invoice", second["id"]) == 4
    assert result.entries_checked == 3
    assert "changed" in result.reason

    runs = chain_check()
    by_key = {run.result.chain_key: run for run in runs}
    assert by_key[chain_key(tenant_b.tenant)].result.ok
    check = ChainCheck.objects.get(chain_key=key)
    assert (check.result, check.first_broken_seq, check.entries_checked) == ("broken", 4, 3)
    assert check.tenant_id == seller.tenant.pk and check.finished_at is not None
    seller.tenant.refresh_from_db()
    assert seller.tenant.archive_status == Tenant.ArchiveStatus.COMPROMISED
    assert Tenant.objects.get(pk=tenant_b.tenant.pk).archive_status == Tenant.ArchiveStatus.HEALTHY
    event = Event.objects.get(tenant=seller.tenant, type="archive.chain_broken")
    assert event.data == {"chain_key": key, "seq": 4, "reason": result.reason}
    assert event.livemode is False
    assert not Event.objects.filter(tenant=tenant_b.tenant, type="archive.chain_broken").exists()

    # The next daily run finds the same break: recorded again, but the tenant is told once.
    verify_chains()
    assert ChainCheck.objects.filter(chain_key=key, result="broken").count() == 2
    assert Event.objects.filter(type="archive.chain_broken").count() == 1


def test_tampered_payload_breaks_at_that_link(issued_chain) -> None:
    seller, first, _ = issued_chain
    key = chain_key(seller.tenant)
    line = InvoiceLine.objects.get(invoice_id=first["id"])
    target = seq_of(key, "invoicing_invoiceline", line.pk)
    with triggers_disabled() as cursor:
        cursor.execute(
            "UPDATE archive_chainentry SET payload = convert_to(replace(convert_from(payload, 'UTF8'), "
            "'Consulting', 'Consultinh'), 'UTF8') WHERE chain_key = %s AND seq = %s",
            [key, target],
        )
    result = verify_chain(key)
    assert (result.ok, result.first_broken_seq) == (False, target)
    assert "sha256" in result.reason


def test_rewritten_chain_without_source_breaks(issued_chain) -> None:
    """A forger who rewrites a payload and recomputes every later hash and the head still fails: the
    payload no longer describes the stored row."""
    seller, *_ = issued_chain
    key = chain_key(seller.tenant)
    chain = entries(key)
    forged = bytes(chain[2].payload).replace(b'"type": "issued"', b'"type": "voided"')
    assert forged != bytes(chain[2].payload)
    running = bytes(chain[1].hash)
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE archive_chainentry SET payload = %s WHERE id = %s", [forged, chain[2].pk])
        for entry in chain[2:]:
            body = forged if entry.pk == chain[2].pk else bytes(entry.payload)
            new_hash = hashlib.sha256(running + body).digest()
            cursor.execute(
                "UPDATE archive_chainentry SET prev_hash = %s, hash = %s WHERE id = %s",
                [running, new_hash, entry.pk],
            )
            running = new_hash
        cursor.execute("UPDATE archive_chainhead SET last_hash = %s WHERE chain_key = %s", [running, key])
    result = verify_chain(key)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "changed" in result.reason


def test_deleted_row_and_deleted_link(tenant_a) -> None:
    invoice_id = raw_insert_received(tenant_a.tenant, lines=2)
    raw_insert_event(invoice_id, tenant_a.tenant)
    key = chain_key(tenant_a.tenant)
    assert verify_chain(key).ok
    line = InvoiceLine.objects.filter(invoice_id=invoice_id).order_by("position").last()
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM invoicing_invoiceline WHERE id = %s", [line.pk])
    result = verify_chain(key)
    assert (result.first_broken_seq, result.reason) == (3, "the chained row no longer exists")

    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM archive_chainentry WHERE chain_key = %s AND seq = 2", [key])
    result = verify_chain(key)
    assert result.first_broken_seq == 2
    assert "missing" in result.reason


def test_truncated_tail_is_caught_by_the_head(tenant_a) -> None:
    invoice_id = raw_insert_received(tenant_a.tenant, lines=1)
    raw_insert_event(invoice_id, tenant_a.tenant)
    key = chain_key(tenant_a.tenant)
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM archive_chainentry WHERE chain_key = %s AND seq = 3", [key])
    result = verify_chain(key)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "head" in result.reason


def test_admin_shows_broken_checks_and_reruns_them(issued_chain, django_user_model) -> None:
    seller, _, second = issued_chain
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE invoicing_invoice SET number = 'X' WHERE id = %s", [second["id"]])
    chain_check(tenant=seller.tenant)
    admin = get_user_model().objects.create_superuser("support@scell.example", "pw-support-2026")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/archive/chaincheck/?result__exact=broken")
    assert page.status_code == 200
    html = page.content.decode()
    assert "BROKEN" in html and "not yet acknowledged" in html
    assert chain_key(seller.tenant) in html
    check = ChainCheck.objects.get()
    response = client.post(
        "/admin/archive/chaincheck/",
        {
            "action": "rerun_check",
            "_selected_action": [check.pk],
            "support_reason_step": "1",
            "reason": "checking after the incident",
        },
        follow=True,
    )
    assert "1 broken" in response.content.decode()
    assert ChainCheck.objects.filter(result="broken").count() == 2
    client.post(
        "/admin/archive/chaincheck/",
        {
            "action": "acknowledge",
            "_selected_action": [check.pk],
            "support_reason_step": "1",
            "reason": "known incident, restored from backup",
        },
    )
    assert ChainCheck.objects.get(pk=check.pk).acknowledged_by == admin
    # The chain itself is read-only in the admin.
    entry = ChainEntry.objects.first()
    assert client.get(f"/admin/archive/chainentry/{entry.pk}/change/").status_code == 200
    assert client.post(f"/admin/archive/chainentry/{entry.pk}/delete/").status_code == 403


def test_command_reports_and_fails_on_a_break(issued_chain, capsys) -> None:
    seller, first, _ = issued_chain
    call_command("verify_chain", "--tenant", seller.tenant.identifier)
    out = capsys.readouterr()
    assert "ok, 6 links" in out.out and "1 chain(s) checked, 0 broken" in out.out
    assert "[####################] 6/6 (100%)" in out.err
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE invoicing_invoice SET buyer_name = 'Y' WHERE id = %s", [first["id"]])
    with pytest.raises(CommandError, match="1 chain"):
        call_command("verify_chain")
    assert "BROKEN at link 1" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no tenant"):
        call_command("verify_chain", "--tenant", "NOPE1")


@pytest.mark.django_db(transaction=True)
def test_command_exit_code(require_postgres, tenant_a) -> None:
    """The real process: exit 0 on intact chains, 1 on a break (what a monitoring job looks at)."""
    invoice_id = raw_insert_received(tenant_a.tenant)
    env = {**os.environ, "DATABASE_URL": _database_url()}
    command = [sys.executable, "manage.py", "verify_chain", "--tenant", tenant_a.tenant.identifier]
    ok = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "0 broken" in ok.stdout
    with triggers_disabled() as cursor:
        cursor.execute("UPDATE invoicing_invoice SET total_vat = 0 WHERE id = %s", [invoice_id])
    broken = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN at link 1" in broken.stdout


def _database_url() -> str:
    settings = connection.settings_dict
    return (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/"
        f"{settings['NAME']}"
    )
