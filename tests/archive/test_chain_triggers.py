"""The chain is written by PostgreSQL: issuing, raw SQL inserts, the refusals, concurrent appends."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import DatabaseError, connection, transaction

from archive.chain import chain_append, verify_chain
from archive.models import ChainEntry, ChainHead
from invoicing.models import Invoice, InvoiceEvent, InvoiceLine
from tests.archive.conftest import (
    chain_key,
    entries,
    issue_via_api,
    payload,
    raw_insert_event,
    raw_insert_received,
    recompute,
)

pytestmark = pytest.mark.usefixtures("pg")


def two_lines(body: dict) -> dict:
    second = dict(body["lines"][0], description="Travel", quantity="1", unit_price="80.00")
    body["lines"].append(second)
    return body


def test_issue_appends_invoice_lines_and_issued_event(seller, draft_body) -> None:
    client = seller.client("sk_test")
    draft = client.post("/api/v1/invoices", two_lines(draft_body), format="json").json()
    key = chain_key(seller.tenant)
    # A draft is not fiscal: neither it, its lines nor its 'created' event are chained.
    assert InvoiceEvent.objects.filter(invoice_id=draft["id"]).exists()
    assert not ChainEntry.objects.filter(tenant=seller.tenant).exists()

    issued = client.post(f"/api/v1/invoices/{draft['id']}/issue").json()

    chain = entries(key)
    invoice = Invoice.objects.get(pk=draft["id"])
    lines = list(InvoiceLine.objects.filter(invoice=invoice).order_by("position"))
    event = InvoiceEvent.objects.get(invoice=invoice, type="issued")
    assert [(e.seq, e.source_table, e.source_id) for e in chain] == [
        (1, "invoicing_invoice", str(invoice.pk)),
        (2, "invoicing_invoiceline", str(lines[0].pk)),
        (3, "invoicing_invoiceline", str(lines[1].pk)),
        (4, "invoicing_invoiceevent", str(event.pk)),
    ]
    assert all(e.tenant_id == seller.tenant.pk and e.livemode is False for e in chain)
    # The payload is the row as issued; the CII is represented by its SHA-256, not its bytes.
    doc = payload(chain[0])
    assert doc["id"] == str(invoice.pk)
    assert doc["status"] == "issued"
    assert doc["number"] == issued["number"]
    assert doc["cii_xml"] == hashlib.sha256(bytes(invoice.cii_xml)).hexdigest()
    assert doc["total_with_vat"] == float(invoice.total_with_vat)
    assert doc["issued_at"].endswith("+00:00")  # UTC whatever the session's time zone
    assert [payload(e)["position"] for e in chain[1:3]] == [1, 2]
    assert payload(chain[3])["type"] == "issued"
    # Recomputed from scratch in Python: sha256(prev || payload), head included.
    head = ChainHead.objects.get(chain_key=key)
    assert head.last_seq == 4
    assert recompute(key) == bytes(head.last_hash)

    # A later lifecycle event of the issued invoice is fiscal too, and the next issue follows it.
    paid = InvoiceEvent.objects.create(invoice=invoice, tenant=seller.tenant, livemode=False, type="paid")
    second = issue_via_api(client, draft_body)  # two lines as well
    chain = entries(key)
    assert [e.seq for e in chain] == list(range(1, 10))
    assert (chain[4].source_table, chain[4].source_id) == ("invoicing_invoiceevent", str(paid.pk))
    assert chain[5].source_id == second["id"]
    recompute(key)


def test_raw_sql_received_invoice_is_chained(tenant_a) -> None:
    invoice_id = raw_insert_received(tenant_a.tenant, lines=2, total="120.00")
    event_id = raw_insert_event(invoice_id, tenant_a.tenant, type="paid")
    key = chain_key(tenant_a.tenant)
    chain = entries(key)
    line_ids = [
        str(pk) for pk in InvoiceLine.objects.filter(invoice_id=invoice_id).values_list("pk", flat=True)
    ]
    assert [(e.source_table, e.source_id) for e in chain] == [
        ("invoicing_invoice", invoice_id),
        ("invoicing_invoiceline", line_ids[0]),
        ("invoicing_invoiceline", line_ids[1]),
        ("invoicing_invoiceevent", event_id),
    ]
    assert [str(payload(e)["id"]) for e in chain] == [e.source_id for e in chain]
    assert payload(chain[0])["status"] == "received"
    assert payload(chain[0])["source_file"] == hashlib.sha256(b"<Invoice/>").hexdigest()
    assert [payload(e)["position"] for e in chain[1:3]] == [1, 2]
    recompute(key)
    assert verify_chain(key).ok


def test_live_and_test_chains_are_separate(tenant_a) -> None:
    raw_insert_received(tenant_a.tenant, livemode=True, number="L-1", lines=0)
    raw_insert_received(tenant_a.tenant, livemode=False, number="T-1", lines=0)
    raw_insert_received(tenant_a.tenant, livemode=False, number="T-2", lines=0)
    assert ChainHead.objects.get(chain_key=chain_key(tenant_a.tenant, livemode=True)).last_seq == 1
    assert ChainHead.objects.get(chain_key=chain_key(tenant_a.tenant)).last_seq == 2


def test_drafts_are_not_chained(seller, draft_body) -> None:
    client = seller.client("sk_test")
    draft = client.post("/api/v1/invoices", draft_body, format="json").json()
    client.patch(f"/api/v1/invoices/{draft['id']}", {"buyer_reference": "REF-9"}, format="json")
    client.delete(f"/api/v1/invoices/{draft['id']}")
    assert not ChainEntry.objects.exists()
    assert not ChainHead.objects.exists()


def refused(sql: str, params: list | None = None, match: str = "refused") -> None:
    with pytest.raises(DatabaseError, match=match), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_chain_tables_refuse_update_delete_and_forged_links(tenant_a) -> None:
    invoice_id = raw_insert_received(tenant_a.tenant)
    key = chain_key(tenant_a.tenant)
    refused("UPDATE archive_chainentry SET payload = '\\x00' WHERE chain_key = %s", [key])
    refused("UPDATE archive_chainentry SET seq = seq + 10 WHERE chain_key = %s", [key])
    refused("DELETE FROM archive_chainentry WHERE chain_key = %s", [key])
    refused("UPDATE archive_chainhead SET last_seq = 0 WHERE chain_key = %s", [key])
    refused("DELETE FROM archive_chainhead WHERE chain_key = %s", [key])
    # Setting the flag by hand does not help: only the fiscal triggers may write the chain.
    refused(
        "SELECT set_config('scell.chain_append', 'on', true); "
        "UPDATE archive_chainhead SET last_seq = 0 WHERE chain_key = %s",
        [key],
    )
    refused(
        "SELECT scell_chain_append(%s, NULL, false, 'invoicing_invoice', %s, '\\x01'::bytea)",
        [str(tenant_a.tenant.pk), invoice_id],
    )
    # Nor can the Python writer (SQLite's) forge a link on PostgreSQL.
    with pytest.raises(DatabaseError, match="refused"), transaction.atomic():
        chain_append(
            tenant_id=tenant_a.tenant.pk,
            sub_tenant_id=None,
            livemode=False,
            source_table="invoicing_invoice",
            source_id=invoice_id,
            payload=b"{}",
        )
    # Through the ORM as well.
    with pytest.raises(DatabaseError, match="refused"), transaction.atomic():
        ChainEntry.objects.filter(chain_key=key).delete()
    with pytest.raises(DatabaseError, match="refused"), transaction.atomic():
        ChainHead.objects.filter(chain_key=key).update(last_seq=5)
    assert [e.seq for e in entries(key)] == [1, 2]
    recompute(key)


def test_fiscal_rows_refuse_update_and_delete(seller, draft_body) -> None:
    issued = issue_via_api(seller.client("sk_test"), draft_body)
    invoice_id = issued["id"]
    refused("UPDATE invoicing_invoice SET total_with_vat = 1 WHERE id = %s", [invoice_id], match="cannot")
    refused("DELETE FROM invoicing_invoice WHERE id = %s", [invoice_id], match="cannot")
    refused(
        "UPDATE invoicing_invoiceline SET quantity = 3 WHERE invoice_id = %s", [invoice_id], match="cannot"
    )
    refused("DELETE FROM invoicing_invoiceline WHERE invoice_id = %s", [invoice_id], match="cannot")
    refused(
        "UPDATE invoicing_invoiceevent SET type = 'x' WHERE invoice_id = %s", [invoice_id], match="append"
    )
    refused("DELETE FROM invoicing_invoiceevent WHERE invoice_id = %s", [invoice_id], match="cannot")


@pytest.mark.parametrize(
    "table",
    [
        "archive_chainentry",
        "archive_chainhead",
        "invoicing_invoice",
        "invoicing_invoiceline",
        "invoicing_invoiceevent",
    ],
)
def test_truncate_is_refused(tenant_a, table) -> None:
    raw_insert_received(tenant_a.tenant)
    # (SET CONSTRAINTS: the rows above were inserted in this test's transaction, whose deferred foreign
    # key checks would otherwise stop TRUNCATE before any trigger runs.)
    refused(f"SET CONSTRAINTS ALL IMMEDIATE; TRUNCATE {table} CASCADE", match="TRUNCATE of .* is refused")
    assert ChainEntry.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_keep_a_gapless_chain(require_postgres, seller, draft_body) -> None:
    client = seller.client("sk_test")
    drafts = [client.post("/api/v1/invoices", draft_body, format="json").json()["id"] for _ in range(4)]
    start = threading.Barrier(len(drafts))

    def issue(draft_id: str) -> int:
        try:
            start.wait(timeout=30)
            return seller.client("sk_test").post(f"/api/v1/invoices/{draft_id}/issue").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(drafts)) as pool:
        codes = list(pool.map(issue, drafts, timeout=300))
    assert codes == [200] * len(drafts)
    key = chain_key(seller.tenant)
    chain = entries(key)
    # Each issue appends its invoice, its line and its 'issued' event, never interleaved with another's.
    assert [e.seq for e in chain] == list(range(1, 3 * len(drafts) + 1))
    for block in range(len(drafts)):
        tables = [e.source_table for e in chain[3 * block : 3 * block + 3]]
        assert tables == ["invoicing_invoice", "invoicing_invoiceline", "invoicing_invoiceevent"]
    recompute(key)
    assert verify_chain(key).ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_raw_appends_to_one_chain(require_postgres, tenant_a) -> None:
    """Many writers append to the same chain at once (events of received invoices, raw SQL): the head
    row lock serialises them; no seq is taken twice, none is skipped."""
    invoice_ids = [raw_insert_received(tenant_a.tenant, number=f"S-{i}", lines=0) for i in range(8)]
    start = threading.Barrier(len(invoice_ids))

    def append_events(invoice_id: str) -> None:
        try:
            start.wait(timeout=30)
            for _ in range(15):
                with transaction.atomic():
                    raw_insert_event(invoice_id, tenant_a.tenant)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(invoice_ids)) as pool:
        list(pool.map(append_events, invoice_ids, timeout=300))
    key = chain_key(tenant_a.tenant)
    assert [e.seq for e in entries(key)] == list(range(1, 8 + 8 * 15 + 1))
    recompute(key)
    result = verify_chain(key)
    assert result.ok, result
    assert result.entries_checked == 128


def test_payloads_do_not_depend_on_the_session_time_zone(tenant_a) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TimeZone = 'Asia/Tokyo'")
        invoice_id = raw_insert_received(tenant_a.tenant)
        cursor.execute("SELECT current_setting('TimeZone')")
        assert cursor.fetchone()[0] == "Asia/Tokyo"  # the trigger's UTC did not leak into the session
    doc = payload(entries(chain_key(tenant_a.tenant))[0])
    assert doc["id"] == invoice_id
    assert doc["created_at"].endswith("+00:00")
    # Verified from a session in yet another zone: the same bytes are recomputed.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TimeZone = 'America/New_York'")
    assert verify_chain(chain_key(tenant_a.tenant)).ok
