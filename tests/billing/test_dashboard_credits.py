"""The dashboard's credits page: balance and lots, usage per operation and month (table and chart), the
CSV exports (usage per month and operation, every ledger line) and buying a pack, admin only."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from billing.models import CreditAccount, LedgerEntry, Purchase
from billing.services import credits_adjust, credits_charge, credits_grant_pack, credits_refund
from scell.models import Membership, User
from tests.scell.test_dashboard_home import by_testid

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
PAGE = "/credits/"


@pytest.fixture
def data(tenant_a, tenant_b):
    a, b = tenant_a.tenant, tenant_b.tenant
    with time_machine.travel(datetime(2025, 12, 1, 9, tzinfo=UTC), tick=False):
        credits_grant_pack(tenant=a, amount=Decimal("50.00"))
        credits_grant_pack(tenant=b, amount=Decimal("50.00"))
    with time_machine.travel(datetime(2026, 1, 31, 22, 30, tzinfo=UTC), tick=False):
        # 23:30 in Paris on 31 January: a January operation for a French business.
        credits_charge(tenant=a, livemode=True, operation="invoice_issue", reference="inv-jan")
    with time_machine.travel(datetime(2026, 2, 10, 9, tzinfo=UTC), tick=False):
        for n in range(3):
            credits_charge(tenant=a, livemode=True, operation="invoice_issue", reference=f"inv-feb-{n}")
        credits_charge(tenant=a, livemode=True, operation="signature_signer", quantity=2, reference="sr-1")
        credits_charge(tenant=b, livemode=True, operation="signature_signer", reference="sr-b")
    with time_machine.travel(datetime(2026, 3, 2, 9, tzinfo=UTC), tick=False):
        credits_charge(tenant=a, livemode=True, operation="invoice_issue", reference="inv-mar")
        credits_refund(tenant=a, reference="inv-feb-2", operation="invoice_issue", reason="PDP refused it")
        credits_adjust(tenant=a, amount=Decimal("-1.00"), reason='=HYPERLINK("http://evil")', created_by=None)
    return tenant_a


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def member(tenant, role: str) -> Client:
    user = User.objects.create_user(f"{role}@example.com", "correct-horse-battery-9")
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return signed_in(user)


def usage_row(page: str, month: str) -> list[str]:
    match = re.search(rf'<tr data-month="{month}">(.*?)</tr>', page, re.S)
    assert match, month
    return re.findall(r"<td>(.*?)</td>", match.group(1))


def rows_of(body: bytes | str) -> list[list[str]]:
    text = body.decode() if isinstance(body, bytes) else body
    return list(csv.reader(io.StringIO(text)))


def test_balance_lots_and_usage_per_operation_and_month(data, clock) -> None:
    response = signed_in(data.owner).get(PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    # 50 bought; spent 0.04 + 0.12 + 2.40 + 0.04, 0.04 refunded, 1.00 taken by support.
    assert by_testid(page, "balance") == "46.44 EUR"
    assert by_testid(page, "next-expiry") == "Next expiry: 46.44 EUR on 2026-12-01."
    assert page.count('data-testid="lot"') == 1
    # Columns: invoices (count, EUR), signers (count, EUR), total. Refunds are deducted in their month.
    assert usage_row(page, "2026-01") == ["1", "0.04", "0", "0.00", "0.04"]
    assert usage_row(page, "2026-02") == ["3", "0.12", "1", "2.40", "2.52"]
    assert usage_row(page, "2026-03") == ["1", "0.00", "0", "0.00", "0.00"]
    assert usage_row(page, "2025-04") == ["0", "0.00", "0", "0.00", "0.00"]
    assert len(re.findall(r'<tr data-month="', page)) == 12
    total = re.search(r'<tr data-testid="usage-total">(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r"<td>(.*?)</td>", total) == ["5", "0.16", "1", "2.40", "2.56"]
    # The chart: one stacked bar a month, February the tallest, its signer segment most of it.
    assert page.count('<div class="bar" title=') == 12
    assert 'title="2026-02: 2.52 EUR"' in page
    assert '<span class="credits-op-1" style="height: 95%">' in page
    assert '<span class="credits-op-0" style="height: 4%">' in page
    assert "Credit spend per month and operation" in page


def test_usage_csv_per_month_and_operation(data, clock) -> None:
    response = signed_in(data.owner).get("/credits/usage.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="scell-credit-usage.csv"'
    assert rows_of(response.content) == [
        ["month", "operation", "count", "amount_eur"],
        ["2026-01", "invoice_issue", "1", "0.04"],
        ["2026-02", "invoice_issue", "3", "0.12"],
        ["2026-02", "signature_signer", "1", "2.40"],
        ["2026-03", "invoice_issue", "1", "0.00"],
    ]
    # The same function answers the API's ?format=csv.
    api = data.client("sk_live").get("/api/v1/credits/usage", {"format": "csv"})
    assert api.content == response.content

    period = signed_in(data.owner).get(
        "/credits/usage.csv", {"date_from": "2026-02-01", "date_to": "2026-02-28"}
    )
    assert period["Content-Disposition"] == 'attachment; filename="scell-credit-usage-20260201-20260228.csv"'
    assert [r[:2] for r in rows_of(period.content)[1:]] == [
        ["2026-02", "invoice_issue"],
        ["2026-02", "signature_signer"],
    ]


def test_ledger_csv_has_every_movement_with_signed_amounts(data, clock) -> None:
    response = signed_in(data.owner).get("/credits/ledger.csv")
    assert response.status_code == 200 and response.streaming
    rows = rows_of(b"".join(response.streaming_content))
    assert rows[0] == [
        "date",
        "kind",
        "operation",
        "quantity",
        "unit_price_eur",
        "amount_eur",
        "lot",
        "reference",
        "sub_tenant",
        "reason",
    ]
    body = rows[1:]
    assert len(body) == LedgerEntry.objects.filter(tenant=data.tenant).count() == 9
    assert body[0][:6] == ["2025-12-01T10:00:00+01:00", "purchase", "", "1", "", "50.00"]
    # Business time: the 23:30 operation of 31 January (Paris) is dated so.
    assert body[1][:6] == ["2026-01-31T23:30:00+01:00", "spend", "invoice_issue", "1", "0.04", "-0.04"]
    signers = next(r for r in body if r[2] == "signature_signer")
    assert signers[:6] == ["2026-02-10T10:00:00+01:00", "spend", "signature_signer", "2", "1.20", "-2.40"]
    refund = next(r for r in body if r[1] == "refund")
    assert refund[5] == "0.04" and refund[7] == "inv-feb-2" and refund[9] == "PDP refused it"
    # A text a spreadsheet would run as a formula is neutralised.
    adjustment = next(r for r in body if r[1] == "adjustment")
    assert adjustment[5] == "-1.00" and adjustment[9] == '\'=HYPERLINK("http://evil")'
    assert sum(Decimal(r[5]) for r in body) == CreditAccount.objects.get(tenant=data.tenant).balance

    february = signed_in(data.owner).get(
        "/credits/ledger.csv", {"date_from": "2026-02-01", "date_to": "2026-02-28"}
    )
    days = {r[0][:7] for r in rows_of(b"".join(february.streaming_content))[1:]}
    assert days == {"2026-02"}
    january = signed_in(data.owner).get("/credits/ledger.csv", {"date_to": "2026-01-31"})
    assert len(rows_of(b"".join(january.streaming_content))) == 3  # header, purchase, 31 January spend


def test_a_period_ending_before_it_starts_is_refused(data, clock) -> None:
    client = signed_in(data.owner)
    for url in ("/credits/usage.csv", "/credits/ledger.csv"):
        response = client.get(url, {"date_from": "2026-03-01", "date_to": "2026-02-01"})
        assert response.status_code == 400
        page = response.content.decode()
        assert "The end of the period is before its start." in by_testid(page, "date_to-error")
        assert 'aria-describedby="id_date_to_error"' in page
        response = client.get(url, {"date_from": "last week"})
        assert response.status_code == 400 and "Enter a valid date." in by_testid(
            response.content.decode(), "date_from-error"
        )


def test_another_tenant_sees_only_its_own_credits(data, tenant_b, clock) -> None:
    client = signed_in(tenant_b.owner)
    page = client.get(PAGE).content.decode()
    assert by_testid(page, "balance") == "48.80 EUR"
    assert usage_row(page, "2026-02") == ["0", "0.00", "1", "1.20", "1.20"]
    assert rows_of(client.get("/credits/usage.csv").content)[1:] == [
        ["2026-02", "signature_signer", "1", "1.20"]
    ]
    ledger = rows_of(b"".join(client.get("/credits/ledger.csv").streaming_content))
    assert len(ledger) == 3 and "inv-feb-2" not in str(ledger)


def test_admin_buys_a_pack_in_the_sandbox(tenant_a, settings) -> None:
    settings.PAYMENT_PROVIDER = "sandbox"
    client = signed_in(tenant_a.owner)
    assert 'data-testid="buy-pack"' in client.get(PAGE).content.decode()
    response = client.post(PAGE, {"amount": "100.00", "card": "4242 4242 4242 4242"})
    assert response.status_code == 302 and response["Location"] == PAGE
    assert CreditAccount.objects.get(tenant=tenant_a.tenant).balance == Decimal("100.00")
    page = client.get(PAGE).content.decode()
    assert "100.00 EUR of credits added." in page and by_testid(page, "balance") == "100.00 EUR"
    assert Purchase.objects.get(tenant=tenant_a.tenant).status == Purchase.Status.PAID

    declined = client.post(PAGE, {"amount": "50.00", "card": "4000 0000 0000 0002"})
    assert declined.status_code == 302
    assert "Payment failed" in client.get(PAGE).content.decode()
    assert CreditAccount.objects.get(tenant=tenant_a.tenant).balance == Decimal("100.00")


def test_unknown_pack_changes_nothing(tenant_a, settings) -> None:
    settings.PAYMENT_PROVIDER = "sandbox"
    response = signed_in(tenant_a.owner).post(PAGE, {"amount": "7.00", "card": "4242 4242 4242 4242"})
    assert response.status_code == 422
    assert "Select a valid choice." in response.content.decode()
    assert not Purchase.objects.exists()


@pytest.mark.parametrize("role", [Membership.Role.MEMBER, Membership.Role.READ_ONLY])
def test_only_admins_buy(tenant_a, settings, role) -> None:
    settings.PAYMENT_PROVIDER = "sandbox"
    client = member(tenant_a.tenant, role)
    page = client.get(PAGE)
    assert page.status_code == 200 and 'data-testid="buy-pack"' not in page.content.decode()
    response = client.post(PAGE, {"amount": "100.00", "card": "4242 4242 4242 4242"})
    assert response.status_code == 403
    assert "Only an admin of the tenant can buy credits." in response.content.decode()
    assert not Purchase.objects.exists()
    assert not CreditAccount.objects.filter(tenant=tenant_a.tenant, balance__gt=0).exists()
    # Reading and exporting are open to every role.
    assert client.get("/credits/usage.csv").status_code == 200


def test_usage_table_lists_the_priced_operations_even_without_spend(tenant_a) -> None:
    page = signed_in(tenant_a.owner).get(PAGE).content.decode()
    assert "Issued invoices" in page and "Signers" in page
    today = date.today()
    assert usage_row(page, f"{today:%Y-%m}") == ["0", "0.00", "0", "0.00", "0.00"]


def test_anonymous_is_sent_to_login() -> None:
    for url in (PAGE, "/credits/usage.csv", "/credits/ledger.csv"):
        response = Client().get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
