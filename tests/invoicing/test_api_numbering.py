"""Fiscal guarantees on PostgreSQL: gapless, chronological numbering under concurrent issues through the
API (CGI art. 242 nonies A), and issued invoices frozen by the database itself (migration 0002)."""

from __future__ import annotations

import queue
import re
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from billing.models import CreditAccount, LedgerEntry
from billing.services import credits_grant_pack
from invoicing.models import Invoice, InvoiceEvent, InvoiceLine, NumberSequence
from tests.invoicing import api_bodies
from tests.invoicing.api_bodies import NUMBER_RE, create, create_and_issue
from tests.invoicing.conftest import SELLER_PROFILE
from webhooks.models import Event

THREADS = 10


def issue_concurrently(seller: Any, key: str, ids: list[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Issue ``ids`` from ``THREADS`` threads, each with its own client and database connection."""
    todo: queue.Queue[str] = queue.Queue()
    for invoice_id in ids:
        todo.put(invoice_id)
    results: dict[str, tuple[int, dict[str, Any]]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_X_API_KEY=seller.keys[key])
            start.wait()
            while True:
                try:
                    invoice_id = todo.get_nowait()
                except queue.Empty:
                    return
                response = client.post(f"/api/v1/invoices/{invoice_id}/issue")
                results[invoice_id] = (response.status_code, response.json())
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    assert not errors, errors
    assert len(results) == len(ids)
    return results


def sequence_numbers(numbers: list[str]) -> list[int]:
    return sorted(int(number.rsplit("-", 1)[1]) for number in numbers)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_issues_are_gapless_and_chronological(require_postgres, seller) -> None:
    client = seller.client("sk_test")
    bodies = [
        api_bodies.simple,
        api_bodies.multi_rate,
        api_bodies.exempt,
        api_bodies.document_allowance_charge,
    ]
    ids = [create(client, bodies[n % len(bodies)]())["id"] for n in range(50)]

    results = issue_concurrently(seller, "sk_test", ids)

    assert {status for status, _ in results.values()} == {200}, {
        s: b for s, b in results.values() if s != 200
    }
    numbers = [body["number"] for _, body in results.values()]
    assert len(set(numbers)) == 50
    assert all(re.fullmatch(NUMBER_RE, n) for n in numbers), numbers
    assert sequence_numbers(numbers) == list(range(1, 51))
    prefixes = {number.rsplit("-", 1)[0] for number in numbers}
    assert len(prefixes) == 1  # one month, one issuer

    issued = list(
        Invoice.objects.filter(tenant=seller.tenant, status="issued").order_by("issued_at", "number")
    )
    assert [i.number for i in issued] == sorted(numbers)
    assert [i.number for i in issued] == [i.number for i in sorted(issued, key=lambda i: i.number)]
    sequence = NumberSequence.objects.get(
        tenant=seller.tenant, sub_tenant=None, livemode=False, kind=NumberSequence.Kind.ISSUED
    )
    assert sequence.last_value == 50
    assert Event.objects.filter(tenant=seller.tenant, type="invoice.issued").count() == 50
    assert InvoiceEvent.objects.filter(tenant=seller.tenant, type="issued").count() == 50


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_running_out_of_credits_leave_no_gap(require_postgres, make_tenant) -> None:
    seller = make_tenant("SELL1", legal_name="Atelier Dupont SAS", siren="732829320", **SELLER_PROFILE)
    with override_settings(CREDIT_PACK_MINIMUM="1.00"):
        credits_grant_pack(tenant=seller.tenant, amount=Decimal("1.20"))  # 30 issues at 0.04
    client = seller.client("sk_live")
    ids = [create(client, api_bodies.simple())["id"] for _ in range(50)]

    results = issue_concurrently(seller, "sk_live", ids)

    ok = [body["number"] for status, body in results.values() if status == 200]
    refused = [invoice_id for invoice_id, (status, _) in results.items() if status == 402]
    assert len(ok) == 30 and len(refused) == 20, sorted({s for s, _ in results.values()})
    assert all(results[i][1]["error"]["code"] == "insufficient_credits" for i in refused)
    assert sequence_numbers(ok) == list(range(1, 31))
    for invoice in Invoice.objects.filter(pk__in=refused):
        assert invoice.status == "draft" and invoice.number.startswith("DRAFT-")
    assert CreditAccount.objects.get(tenant=seller.tenant).balance == Decimal("0.00")
    assert LedgerEntry.objects.filter(tenant=seller.tenant, kind="spend").count() == 30
    assert NumberSequence.objects.get(tenant=seller.tenant, livemode=True, kind="issued").last_value == 30
    assert Event.objects.filter(tenant=seller.tenant, type="invoice.issued").count() == 30

    # Credits again: the next issue continues at 31, no number was lost.
    credits_grant_pack(tenant=seller.tenant, amount=Decimal("50.00"))
    response = client.post(f"/api/v1/invoices/{refused[0]}/issue")
    assert response.status_code == 200
    assert response.json()["number"].endswith("-00031")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_of_the_same_draft_number_it_once(require_postgres, seller) -> None:
    draft = create(seller.client("sk_test"), api_bodies.simple())
    results: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker() -> None:
        try:
            client = seller.client("sk_test")
            start.wait()
            status = client.post(f"/api/v1/invoices/{draft['id']}/issue").status_code
            with lock:
                results.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(results) == [200] + [409] * 5
    assert NumberSequence.objects.get(tenant=seller.tenant, livemode=False, kind="issued").last_value == 1


# --- immutability -------------------------------------------------------------------------------------


def assert_refused(sql: str, params: list[Any]) -> None:
    """PostgreSQL refuses ``sql`` with SQLSTATE 23001 restrict_violation, an IntegrityError in Django."""
    with pytest.raises(IntegrityError) as info, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    assert isinstance(info.value.__cause__, psycopg.errors.RestrictViolation), repr(info.value.__cause__)
    assert info.value.__cause__.sqlstate == "23001"


COPY_LINE = """
INSERT INTO invoicing_invoiceline (invoice_id, position, description, detail, quantity, unit_code,
    unit_price, price_base_quantity, vat_category, vat_rate, allowances, charges, seller_item_id,
    period_start, period_end, net_amount)
SELECT invoice_id, position + 100, description, detail, quantity, unit_code, unit_price,
    price_base_quantity, vat_category, vat_rate, allowances, charges, seller_item_id, period_start,
    period_end, net_amount
FROM invoicing_invoiceline WHERE invoice_id = %s
"""


@pytest.mark.postgres
def test_issued_invoice_is_frozen_by_postgresql(require_postgres, seller) -> None:
    client = seller.client("sk_test")
    issued = create_and_issue(client, api_bodies.multi_rate())
    pk = issued["id"]
    before = Invoice.objects.get(pk=pk)
    lines_before = list(InvoiceLine.objects.filter(invoice_id=pk).values_list("quantity", "net_amount"))

    assert_refused("UPDATE invoicing_invoice SET total_with_vat = 0 WHERE id = %s", [pk])
    assert_refused("UPDATE invoicing_invoice SET status = 'draft' WHERE id = %s", [pk])
    assert_refused("DELETE FROM invoicing_invoice WHERE id = %s", [pk])
    assert_refused("UPDATE invoicing_invoiceline SET quantity = 99 WHERE invoice_id = %s", [pk])
    assert_refused("DELETE FROM invoicing_invoiceline WHERE invoice_id = %s", [pk])
    assert_refused(COPY_LINE, [pk])
    assert_refused("UPDATE invoicing_invoiceevent SET type = 'x' WHERE invoice_id = %s", [pk])
    assert_refused("DELETE FROM invoicing_invoiceevent WHERE invoice_id = %s", [pk])

    # The ORM goes through the same triggers.
    for attempt in (
        lambda: Invoice.objects.filter(pk=pk).update(total_with_vat=Decimal("0")),
        lambda: Invoice.objects.filter(pk=pk).delete(),
        lambda: InvoiceLine.objects.filter(invoice_id=pk).update(quantity=Decimal("99")),
        lambda: InvoiceLine.objects.filter(invoice_id=pk).delete(),
        lambda: InvoiceLine.objects.create(
            invoice_id=pk, position=50, description="x", quantity=1, unit_price=1, vat_category="S"
        ),
        lambda: before.save(),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            attempt()

    after = Invoice.objects.get(pk=pk)
    assert (after.status, after.number, after.total_with_vat) == ("issued", before.number, Decimal("1601.00"))
    assert bytes(after.cii_xml) == bytes(before.cii_xml)
    lines_after = list(InvoiceLine.objects.filter(invoice_id=pk).values_list("quantity", "net_amount"))
    assert lines_after == lines_before
    assert client.get(f"/api/v1/invoices/{pk}").json()["total_with_vat"] == "1601.00"


@pytest.mark.postgres
def test_drafts_stay_editable_in_the_database(require_postgres, seller) -> None:
    client = seller.client("sk_test")
    draft = create(client, api_bodies.multi_rate())
    pk = draft["id"]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE invoicing_invoice SET total_with_vat = 0 WHERE id = %s", [pk])
        assert cursor.rowcount == 1
        cursor.execute("UPDATE invoicing_invoiceline SET quantity = 99 WHERE invoice_id = %s", [pk])
        assert cursor.rowcount == 5
        cursor.execute(COPY_LINE, [pk])
        assert cursor.rowcount == 5
        cursor.execute("DELETE FROM invoicing_invoiceline WHERE invoice_id = %s", [pk])
        assert cursor.rowcount == 10
    assert Invoice.objects.filter(pk=pk).update(total_with_vat=Decimal("1")) == 1
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM invoicing_invoiceevent WHERE invoice_id = %s", [pk])
        cursor.execute("DELETE FROM invoicing_invoice WHERE id = %s", [pk])
        assert cursor.rowcount == 1
    assert not Invoice.objects.filter(pk=pk).exists()


@pytest.mark.postgres
def test_received_invoice_is_frozen_too(require_postgres, seller) -> None:
    data = (Path(__file__).parent / "fixtures" / "import" / "cii" / "CII_example1.xml").read_bytes()
    response = seller.client("sk_test").post("/api/v1/invoices/import", data, content_type="application/xml")
    assert response.status_code == 201, response.content[:2000]
    pk = response.json()["id"]
    assert_refused("UPDATE invoicing_invoice SET total_with_vat = 0 WHERE id = %s", [pk])
    assert_refused("DELETE FROM invoicing_invoiceline WHERE invoice_id = %s", [pk])
