"""The credits API: balance, lots, prices and packs, usage per operation (period, sub-tenant, CSV), the
ledger; what a live and a sandbox issued invoice cost; one tenant never sees another's credits."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.utils import timezone

from billing.models import CreditAccount, LedgerEntry
from billing.services import credits_charge, credits_grant_pack, credits_refund, ledger_balance
from scell.services import sub_tenant_create
from scell.tenancy import Scope
from tests.invoicing.conftest import DRAFT, SELLER_PROFILE

pytestmark = pytest.mark.django_db

JAN = dt.datetime(2026, 1, 10, 10, 0, tzinfo=dt.UTC)
FEB = dt.datetime(2026, 2, 10, 10, 0, tzinfo=dt.UTC)
MAR = dt.datetime(2026, 3, 10, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def seller(make_tenant):
    fixture = make_tenant("SELL1", legal_name="Atelier Dupont SAS", siren="732829320", **SELLER_PROFILE)
    credits_grant_pack(tenant=fixture.tenant, amount=Decimal("50.00"))
    return fixture


def issue_invoice(client) -> dict:
    draft = client.post("/api/v1/invoices", copy.deepcopy(DRAFT), format="json")
    assert draft.status_code == 201, draft.content
    issued = client.post(f"/api/v1/invoices/{draft.json()['id']}/issue")
    assert issued.status_code == 200, issued.content
    return issued.json()


def spend(tenant, operation: str, reference: str, quantity: int = 1, sub_tenant=None):
    return credits_charge(
        tenant=tenant,
        livemode=True,
        operation=operation,
        quantity=quantity,
        reference=reference,
        sub_tenant=sub_tenant,
    )


# --- GET /credits ----------------------------------------------------------------------------------


def test_credits_overview(seller) -> None:
    body = seller.client("sk_live").get("/api/v1/credits").json()
    assert body["balance"] == "50.00"
    assert body["currency"] == "EUR"
    assert body["livemode"] is True
    assert body["low_balance_threshold"] == "5.00"
    assert body["prices"] == {"invoice_issue": "0.04", "signature_signer": "1.20"}
    assert body["packs"] == ["50.00", "100.00", "250.00", "500.00", "1000.00"]
    (lot,) = body["lots"]
    assert lot["amount"] == lot["remaining"] == "50.00"
    assert lot["source"] == "pack"
    expires = dt.datetime.fromisoformat(lot["expires_at"])
    assert abs(expires - (timezone.now() + relativedelta(months=12))) < dt.timedelta(minutes=1)
    assert body["next_expiry"] == lot["expires_at"]
    assert lot["expired_at"] is None
    assert body["usage_this_month"] == []


def test_credits_without_any_purchase(tenant_a) -> None:
    body = tenant_a.client("sk_live").get("/api/v1/credits").json()
    assert body["balance"] == "0.00"
    assert body["lots"] == []
    assert body["next_expiry"] is None
    assert body["low_balance_threshold"] == "5.00"


def test_prices_are_configuration(seller, settings) -> None:
    settings.PRICE_INVOICE_ISSUE = "0.05"
    settings.PRICE_SIGNATURE_SIGNER = "1.50"
    body = seller.client("sk_live").get("/api/v1/credits").json()
    assert body["prices"] == {"invoice_issue": "0.05", "signature_signer": "1.50"}


def test_live_invoices_spend_and_show_in_this_months_usage(seller) -> None:
    client = seller.client("sk_live")
    first = issue_invoice(client)
    issue_invoice(client)
    body = client.get("/api/v1/credits").json()
    assert body["balance"] == "49.92"
    assert body["lots"][0]["remaining"] == "49.92"
    assert body["usage_this_month"] == [{"operation": "invoice_issue", "count": 2, "amount": "0.08"}]
    spends = LedgerEntry.objects.filter(tenant=seller.tenant, kind=LedgerEntry.Kind.SPEND)
    assert spends.count() == 2
    entry = spends.get(reference=first["number"])
    assert (entry.amount, entry.unit_price, entry.operation) == (
        Decimal("-0.04"),
        Decimal("0.04"),
        "invoice_issue",
    )
    assert ledger_balance(tenant=seller.tenant) == Decimal("49.92")

    # Both keys of the tenant read the same (real-money) balance.
    assert seller.client("sk_test").get("/api/v1/credits").json()["balance"] == "49.92"


def test_sandbox_issue_charges_nothing_and_writes_no_entry(seller) -> None:
    entries = LedgerEntry.objects.filter(tenant=seller.tenant).count()
    issued = issue_invoice(seller.client("sk_test"))
    assert issued["status"] == "issued"
    assert LedgerEntry.objects.filter(tenant=seller.tenant).count() == entries
    assert CreditAccount.objects.get(tenant=seller.tenant).balance == Decimal("50.00")
    body = seller.client("sk_test").get("/api/v1/credits").json()
    assert body["balance"] == "50.00"
    assert body["livemode"] is False
    assert body["usage_this_month"] == []


def test_sandbox_issue_works_without_any_credit(make_tenant) -> None:
    fixture = make_tenant("NOCRE", legal_name="Sans Crédit SAS", siren="732829320", **SELLER_PROFILE)
    assert issue_invoice(fixture.client("sk_test"))["status"] == "issued"
    assert not LedgerEntry.objects.filter(tenant=fixture.tenant).exists()


def test_live_issue_without_credit_is_402_with_the_error_object(make_tenant) -> None:
    fixture = make_tenant("NOCRE", legal_name="Sans Crédit SAS", siren="732829320", **SELLER_PROFILE)
    client = fixture.client("sk_live")
    draft = client.post("/api/v1/invoices", copy.deepcopy(DRAFT), format="json").json()
    response = client.post(f"/api/v1/invoices/{draft['id']}/issue")
    assert response.status_code == 402, response.content
    error = response.json()["error"]
    assert error["code"] == "insufficient_credits"
    assert {d["field"]: d["message"] for d in error["details"]} == {"balance": "0.00", "price": "0.04"}
    assert client.get(f"/api/v1/invoices/{draft['id']}").json()["status"] == "draft"
    assert not LedgerEntry.objects.filter(tenant=fixture.tenant).exists()


# --- GET /credits/usage ----------------------------------------------------------------------------


@pytest.fixture
def history(tenant_a):
    """January: 3 invoices and a 2-signer request; February: 1 invoice and a 3-signer request by the
    sub-tenant SUB01 (refunded), 1 invoice of SUB01; March: one invoice."""
    tenant = tenant_a.tenant
    sub = sub_tenant_create(
        scope=Scope(tenant=tenant, livemode=True),
        legal_name="Filiale SAS",
        siren="552100554",
        identifier="SUB01",
    )
    other = sub_tenant_create(
        scope=Scope(tenant=tenant, livemode=True),
        legal_name="Autre SAS",
        siren="443061841",
        identifier="SUB02",
    )
    with time_machine.travel(JAN - dt.timedelta(days=1), tick=False):
        credits_grant_pack(tenant=tenant, amount=Decimal("100.00"))
    with time_machine.travel(JAN, tick=False):
        for n in range(3):
            spend(tenant, "invoice_issue", f"A-202601-{n:05d}")
        spend(tenant, "signature_signer", "sig-jan", quantity=2)
    with time_machine.travel(FEB, tick=False):
        spend(tenant, "invoice_issue", "A-202602-00001")
        spend(tenant, "signature_signer", "sig-feb", quantity=3, sub_tenant=sub)
        credits_refund(tenant=tenant, reference="sig-feb", operation="signature_signer", reason="not sent")
        spend(tenant, "invoice_issue", "SUB01-202602-00001", sub_tenant=sub)
    with time_machine.travel(MAR, tick=False):
        spend(tenant, "invoice_issue", "A-202603-00001", sub_tenant=other)
    return {"sub": sub, "other": other}


def usage(client, **params):
    response = client.get("/api/v1/credits/usage", params)
    assert response.status_code == 200, response.content
    return response


def test_usage_all_time(tenant_a, history) -> None:
    body = usage(tenant_a.client("sk_live")).json()
    assert body["date_from"] is None and body["sub_tenant"] is None
    assert body["data"] == [
        {"operation": "invoice_issue", "count": 6, "amount": "0.24"},
        # 2 signers (2.40) + 3 signers refunded: two requests, 2.40 net.
        {"operation": "signature_signer", "count": 2, "amount": "2.40"},
    ]
    assert body["by_month"] == [
        {"month": "2026-01", "operation": "invoice_issue", "count": 3, "amount": "0.12"},
        {"month": "2026-01", "operation": "signature_signer", "count": 1, "amount": "2.40"},
        {"month": "2026-02", "operation": "invoice_issue", "count": 2, "amount": "0.08"},
        {"month": "2026-02", "operation": "signature_signer", "count": 1, "amount": "0.00"},
        {"month": "2026-03", "operation": "invoice_issue", "count": 1, "amount": "0.04"},
    ]


def test_usage_by_period(tenant_a, history) -> None:
    body = usage(tenant_a.client("sk_live"), date_from="2026-02-01", date_to="2026-02-28").json()
    assert body["date_from"] == "2026-02-01"
    assert body["date_to"] == "2026-02-28"
    assert body["data"] == [
        {"operation": "invoice_issue", "count": 2, "amount": "0.08"},
        {"operation": "signature_signer", "count": 1, "amount": "0.00"},
    ]
    body = usage(tenant_a.client("sk_live"), date_from="2026-03-01").json()
    assert body["data"] == [{"operation": "invoice_issue", "count": 1, "amount": "0.04"}]
    body = usage(tenant_a.client("sk_live"), date_to="2026-01-31").json()
    assert [row["month"] for row in body["by_month"]] == ["2026-01", "2026-01"]


def test_usage_by_sub_tenant(tenant_a, history) -> None:
    client = tenant_a.client("sk_live")
    by_identifier = usage(client, sub_tenant="SUB01").json()
    assert by_identifier["sub_tenant"] == "SUB01"
    assert by_identifier["data"] == [
        {"operation": "invoice_issue", "count": 1, "amount": "0.04"},
        {"operation": "signature_signer", "count": 1, "amount": "0.00"},
    ]
    by_id = usage(client, sub_tenant=str(history["other"].pk)).json()
    assert by_id["sub_tenant"] == "SUB02"
    assert by_id["data"] == [{"operation": "invoice_issue", "count": 1, "amount": "0.04"}]


def test_usage_of_an_unknown_sub_tenant_is_422(tenant_a, tenant_b, history) -> None:
    theirs = sub_tenant_create(
        scope=Scope(tenant=tenant_b.tenant, livemode=True),
        legal_name="B Fil",
        siren="542107651",
        identifier="BSUB1",
    )
    client = tenant_a.client("sk_live")
    response = client.get("/api/v1/credits/usage", {"sub_tenant": str(theirs.pk)})
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"][0]["field"] == "sub_tenant"
    # An identifier that matches nothing is refused too (scell.selectors.sub_tenant_get then tries it
    # as a UUID, whose ValidationError surfaces as the message: reported, not billing's code).
    response = client.get("/api/v1/credits/usage", {"sub_tenant": "NOPE9"})
    assert response.status_code == 422, response.content


def test_usage_with_a_bad_date_is_422(tenant_a) -> None:
    response = tenant_a.client("sk_live").get("/api/v1/credits/usage", {"date_from": "last week"})
    assert response.status_code in (400, 422)
    assert "error" in response.json()


def test_usage_csv_export(tenant_a, history) -> None:
    response = usage(tenant_a.client("sk_live"), format="csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["month", "operation", "count", "amount_eur"]
    assert rows[1:] == [
        ["2026-01", "invoice_issue", "3", "0.12"],
        ["2026-01", "signature_signer", "1", "2.40"],
        ["2026-02", "invoice_issue", "2", "0.08"],
        ["2026-02", "signature_signer", "1", "0.00"],
        ["2026-03", "invoice_issue", "1", "0.04"],
    ]
    filtered = usage(tenant_a.client("sk_live"), format="csv", sub_tenant="SUB01", date_from="2026-02-01")
    rows = list(csv.DictReader(io.StringIO(filtered.content.decode())))
    assert [(r["month"], r["operation"], r["count"], r["amount_eur"]) for r in rows] == [
        ("2026-02", "invoice_issue", "1", "0.04"),
        ("2026-02", "signature_signer", "1", "0.00"),
    ]


def test_refund_in_a_later_month_is_not_an_operation_of_that_month(tenant_a, history) -> None:
    with time_machine.travel(MAR, tick=False):
        credits_refund(
            tenant=tenant_a.tenant, reference="sig-jan", operation="signature_signer", reason="late"
        )
    client = tenant_a.client("sk_live")
    march = [row for row in usage(client).json()["by_month"] if row["month"] == "2026-03"]
    assert march == [
        {"month": "2026-03", "operation": "invoice_issue", "count": 1, "amount": "0.04"},
        {"month": "2026-03", "operation": "signature_signer", "count": 0, "amount": "-2.40"},
    ]
    assert usage(client, date_from="2026-03-01").json()["data"][1] == {
        "operation": "signature_signer",
        "count": 0,
        "amount": "-2.40",
    }


def test_usage_csv_is_empty_but_has_its_header(tenant_a) -> None:
    response = usage(tenant_a.client("sk_live"), format="csv")
    assert list(csv.reader(io.StringIO(response.content.decode()))) == [
        ["month", "operation", "count", "amount_eur"]
    ]


# --- GET /credits/ledger ---------------------------------------------------------------------------


def test_ledger_lists_every_movement_newest_first(tenant_a, history) -> None:
    response = tenant_a.client("sk_live").get("/api/v1/credits/ledger", {"limit": 100})
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    data = body["data"]
    assert len(data) == LedgerEntry.objects.filter(tenant=tenant_a.tenant).count() == 10
    assert data[0]["reference"] == "A-202603-00001"
    assert data[0]["sub_tenant"] == "SUB02"
    assert data[-1]["kind"] == "purchase"
    assert data[-1]["amount"] == "100.00"
    kinds = [row["kind"] for row in data]
    assert kinds.count("spend") == 8
    assert kinds.count("refund") == 1
    refund = next(row for row in data if row["kind"] == "refund")
    assert refund["amount"] == "3.60"
    assert refund["reason"] == "not sent"
    assert refund["sub_tenant"] == "SUB01"
    signers = next(row for row in data if row["reference"] == "sig-jan")
    assert (signers["quantity"], signers["unit_price"], signers["amount"]) == (2, "1.20", "-2.40")
    total = sum(Decimal(row["amount"]) for row in data)
    assert total == CreditAccount.objects.get(tenant=tenant_a.tenant).balance
    # Pages of the cursor pagination of the API.
    page = tenant_a.client("sk_live").get("/api/v1/credits/ledger", {"limit": 5}).json()
    assert len(page["data"]) == 5 and page["next_cursor"]


def test_ledger_is_read_only(tenant_a, history) -> None:
    client = tenant_a.client("sk_live")
    entry = LedgerEntry.objects.filter(tenant=tenant_a.tenant).first()
    assert client.post("/api/v1/credits/ledger", {"amount": "1000.00"}, format="json").status_code == 405
    assert client.delete(f"/api/v1/credits/ledger/{entry.pk}").status_code in (404, 405)


# --- Isolation and access ---------------------------------------------------------------------------


def test_tenant_b_sees_nothing_of_a(tenant_a, tenant_b, history) -> None:
    credits_grant_pack(tenant=tenant_b.tenant, amount=Decimal("50.00"))
    for key in ("sk_live", "sk_test"):
        client = tenant_b.client(key)
        body = client.get("/api/v1/credits").json()
        assert body["balance"] == "50.00"
        assert len(body["lots"]) == 1
        assert body["usage_this_month"] == []
        assert usage(client).json()["data"] == []
        ledger = client.get("/api/v1/credits/ledger").json()["data"]
        assert [row["kind"] for row in ledger] == ["purchase"]
        assert client.get("/api/v1/credits/usage", {"sub_tenant": "SUB01"}).status_code == 422
    assert tenant_a.client("sk_live").get("/api/v1/credits").json()["balance"] == "97.36"


def test_credits_need_authentication(tenant_a) -> None:
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/credits")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_publishable_key_cannot_read_credits(tenant_a) -> None:
    assert tenant_a.client("pk_live").get("/api/v1/credits").status_code == 403


# --- Dashboard page --------------------------------------------------------------------------------


def test_dashboard_credits_page_and_sandbox_purchase(tenant_a, settings, client) -> None:
    settings.PAYMENT_PROVIDER = "sandbox"
    client.force_login(tenant_a.owner)
    page = client.get("/credits/")
    assert page.status_code == 200
    response = client.post("/credits/", {"amount": "100.00", "card": "4242 4242 4242 4242"})
    assert response.status_code == 302
    assert CreditAccount.objects.get(tenant=tenant_a.tenant).balance == Decimal("100.00")
    page = client.get("/credits/")
    assert "100.00" in page.content.decode() or "100,00" in page.content.decode()
