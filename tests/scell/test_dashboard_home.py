"""The dashboard home: this month's figures (issued invoices and their amount, credit balance and next
expiry, signature requests waiting, webhook failures, archive chain) and the 12-month chart, on known
data, for the current tenant and mode only."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from archive.models import ChainCheck
from billing.services import credits_charge, credits_grant_pack
from invoicing import selectors as invoicing_selectors
from invoicing.models import Invoice
from scell.models import Membership, User
from scell.selectors import month_starts
from scell.tenancy import Scope
from signatures.models import SignatureRequest
from webhooks.models import Event, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)


class _TestIdText(HTMLParser):
    """Collects the text inside the first element carrying ``data-testid=<name>``."""

    VOID = {"br", "img", "input", "meta", "link", "hr"}

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name, self.depth, self.parts, self.found = name, 0, [], False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if self.depth:
            self.depth += tag not in self.VOID
        elif not self.found and ("data-testid", self.name) in attrs:
            self.found, self.depth = True, 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def by_testid(page: str, name: str) -> str:
    """The text of the element with ``data-testid=name`` (spaces collapsed)."""
    parser = _TestIdText(name)
    parser.feed(page)
    assert parser.found, f"no data-testid={name}"
    return " ".join("".join(parser.parts).split())


def month_row(page: str, month: str) -> list[str]:
    match = re.search(rf'<tr data-month="{month}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {month}"
    return [
        " ".join(re.sub(r"<[^>]+>", "", c).split()) for c in re.findall(r"<td>(.*?)</td>", match.group(1))
    ]


def issued(tenant, number: str, day: date, amount: str, **fields) -> Invoice:
    return Invoice.objects.create(
        tenant=tenant,
        livemode=fields.pop("livemode", False),
        status=fields.pop("status", Invoice.Status.ISSUED),
        number=number,
        issue_date=day,
        issued_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
        total_without_vat=Decimal(amount),
        total_with_vat=Decimal(amount) * Decimal("1.2"),
        buyer={"name": "Client SARL"},
        **fields,
    )


def signature_request(tenant, *, livemode: bool = False, status: str = "pending") -> SignatureRequest:
    return SignatureRequest.objects.create(
        tenant=tenant,
        livemode=livemode,
        status=status,
        title="Contract",
        original_file="signatures/contract.pdf",
        original_sha256="0" * 64,
        original_size=1000,
        page_count=1,
        expires_at=timezone.now() + timedelta(days=10),
    )


def delivery(tenant, status: str, *, livemode: bool = False, code: int | None = 500) -> WebhookDelivery:
    endpoint, _ = WebhookEndpoint.objects.get_or_create(
        tenant=tenant,
        livemode=livemode,
        url="https://hooks.example.com/scell",
        defaults={"secret": "whsec_x"},
    )
    event = Event.objects.create(tenant=tenant, livemode=livemode, type="invoice.issued", data={"id": "x"})
    return WebhookDelivery.objects.create(
        tenant=tenant, livemode=livemode, endpoint=endpoint, event=event, status=status, last_status_code=code
    )


@pytest.fixture
def data(tenant_a, tenant_b):
    """A year of activity of tenant A (and some of B's, and of A's live mode, that must not show)."""
    a, b = tenant_a.tenant, tenant_b.tenant
    with time_machine.travel(datetime(2025, 3, 20, 9, tzinfo=UTC), tick=False):
        credits_grant_pack(tenant=a, amount=Decimal("50.00"))  # expires 2026-03-20: the next expiry
    with time_machine.travel(datetime(2025, 3, 25, 9, tzinfo=UTC), tick=False):
        credits_charge(tenant=a, livemode=True, operation="signature_signer", reference="sr-old")
    with time_machine.travel(datetime(2026, 1, 10, 9, tzinfo=UTC), tick=False):
        credits_grant_pack(tenant=a, amount=Decimal("100.00"))
        credits_grant_pack(tenant=b, amount=Decimal("500.00"))
    with time_machine.travel(datetime(2026, 2, 10, 9, tzinfo=UTC), tick=False):
        for n in range(3):
            credits_charge(tenant=a, livemode=True, operation="invoice_issue", reference=f"inv-feb-{n}")
        credits_charge(tenant=a, livemode=True, operation="signature_signer", reference="sr-feb")
        credits_charge(tenant=b, livemode=True, operation="signature_signer", reference="sr-b")
    with time_machine.travel(datetime(2026, 3, 2, 9, tzinfo=UTC), tick=False):
        for n in range(2):
            credits_charge(tenant=a, livemode=True, operation="invoice_issue", reference=f"inv-mar-{n}")

    march = date(2026, 3, 5)
    issued(a, "AAAAA-202603-00001", march, "100.00")
    issued(a, "AAAAA-202603-00002", march, "50.50")
    issued(a, "AAAAA-202603-00003", march, "20.00", type=Invoice.Type.CREDIT_NOTE)
    issued(a, "AAAAA-202603-00004", march, "10.00", currency="USD")
    issued(a, "AAAAA-202602-00001", date(2026, 2, 27), "75.00")
    issued(a, "AAAAA-202503-00001", date(2025, 3, 28), "99.00")  # 12 months back: off the chart
    issued(a, "DRAFT", march, "999.00", status=Invoice.Status.DRAFT)
    issued(a, "AAAAA-202603-L0001", march, "999.00", livemode=True)
    issued(b, "BBBBB-202603-00001", march, "999.00")

    for status in ("pending", "pending", "completed"):
        signature_request(a, status=status)
    signature_request(a, livemode=True)
    signature_request(b)

    delivery(a, WebhookDelivery.Status.FAILED, code=503)
    delivery(a, WebhookDelivery.Status.RETRYING, code=None)
    delivery(a, WebhookDelivery.Status.SUCCEEDED, code=200)
    delivery(a, WebhookDelivery.Status.FAILED, livemode=True)
    delivery(b, WebhookDelivery.Status.FAILED)

    ChainCheck.objects.create(
        chain_key=f"{a.pk}/-/test",
        tenant=a,
        started_at=datetime(2026, 3, 14, 3, tzinfo=UTC),
        finished_at=datetime(2026, 3, 14, 3, 1, tzinfo=UTC),
        result=ChainCheck.Result.OK,
        entries_checked=6,
    )
    ChainCheck.objects.create(
        chain_key=f"{a.pk}/-/live",
        tenant=a,
        started_at=datetime(2026, 3, 14, 4, tzinfo=UTC),
        result=ChainCheck.Result.BROKEN,
        first_broken_seq=2,
    )
    return tenant_a


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_figures_of_the_month_on_known_data(data, clock) -> None:
    response = signed_in(data.owner).get("/")
    assert response.status_code == 200
    page = response.content.decode()
    # Issued in March (sandbox): 2 invoices, 1 credit note, 1 USD invoice; the credit note is deducted.
    assert by_testid(page, "issued-count") == "4"
    assert by_testid(page, "issued-amounts") == "130.50 EUR excl. VAT 10.00 USD excl. VAT"
    assert "4 documents" not in page and "documents dated from 2026-03-01 (including 1 credit note)" in page
    # Credits belong to the tenant: 150 bought, 1.20 + 0.12 + 1.20 + 0.08 spent, all from the lot that
    # expires first.
    assert by_testid(page, "balance") == "147.40 EUR"
    assert by_testid(page, "next-expiry") == "Next expiry: 47.40 EUR on 2026-03-20."
    assert by_testid(page, "waiting") == "2"
    assert by_testid(page, "failure-count") == "2"
    assert page.count('data-testid="failure"') == 2
    assert "HTTP 503" in by_testid(page, "failures") and "no answer" in by_testid(page, "failures")
    assert by_testid(page, "archive-status") == "healthy"
    assert by_testid(page, "last-check") == "Last check 2026-03-14 04:00: intact."  # Paris time


def test_chart_covers_twelve_months_with_counts_and_spend(data, clock) -> None:
    page = signed_in(data.owner).get("/").content.decode()
    rows = re.findall(r'<tr data-month="(\d{4}-\d{2})">', page)
    assert rows == [f"{d:%Y-%m}" for d in month_starts(12, today=date(2026, 3, 15))]
    assert rows[0] == "2025-04" and rows[-1] == "2026-03"
    assert month_row(page, "2026-03") == ["4", "0.08 EUR"]
    assert month_row(page, "2026-02") == ["1", "1.32 EUR"]
    assert month_row(page, "2025-12") == ["0", "0.00 EUR"]
    # The bars: one per month in each chart, the tallest at 100 %.
    assert page.count('<div class="bar" title=') == 24
    assert 'title="2026-03: 4"><span style="height: 100%">' in page
    assert 'title="2026-02: 1.32 EUR"><span style="height: 100%">' in page
    assert 'title="2026-01: 0"><span style="height: 0%">' in page
    assert 'role="img" aria-label="Invoices issued per month' in page


def test_live_mode_shows_live_figures_only(data, clock) -> None:
    client = signed_in(data.owner)
    client.post("/switch-mode/", {"mode": "live"})
    page = client.get("/").content.decode()
    assert by_testid(page, "issued-count") == "1"
    assert by_testid(page, "issued-amounts") == "999.00 EUR excl. VAT"
    assert by_testid(page, "waiting") == "1"
    assert by_testid(page, "failure-count") == "1"
    assert by_testid(page, "last-check") == "Last check 2026-03-14 05:00: broken."
    # Credits are the tenant's, whatever the mode.
    assert by_testid(page, "balance") == "147.40 EUR"


def test_another_tenant_sees_none_of_it(data, tenant_b, clock) -> None:
    page = signed_in(tenant_b.owner).get("/").content.decode()
    assert "Alpha SAS" not in page and "AAAAA" not in page
    assert by_testid(page, "issued-count") == "1"
    assert by_testid(page, "issued-amounts") == "999.00 EUR excl. VAT"
    assert by_testid(page, "balance") == "498.80 EUR"
    assert by_testid(page, "waiting") == "1"
    assert by_testid(page, "failure-count") == "1"
    assert by_testid(page, "last-check") == "The chain has not been checked yet."
    assert month_row(page, "2026-02") == ["0", "1.20 EUR"]


def test_cards_link_to_their_pages(data, clock) -> None:
    page = signed_in(data.owner).get("/").content.decode()
    for href in (
        "/invoices/?status=issued",
        "/credits/",
        "/signatures/?status=pending",
        "/developers/webhooks/?status=failing",
        "/archive/",
        "/developers/keys/",
    ):
        assert f'href="{href}"' in page, href


def test_read_only_member_sees_the_home(data, clock) -> None:
    reader = User.objects.create_user("reader@example.com", "correct-horse-battery-9")
    Membership.objects.create(user=reader, tenant=data.tenant, role=Membership.Role.READ_ONLY)
    page = signed_in(reader).get("/")
    assert page.status_code == 200
    assert by_testid(page.content.decode(), "issued-count") == "4"


def test_empty_tenant_has_zeros_and_a_full_year(tenant_a) -> None:
    page = signed_in(tenant_a.owner).get("/").content.decode()
    assert by_testid(page, "issued-count") == "0"
    assert by_testid(page, "balance") == "0.00 EUR"
    assert by_testid(page, "next-expiry") == "No credits to expire."
    assert by_testid(page, "failure-count") == "0"
    assert len(re.findall(r'<tr data-month="', page)) == 12
    # The API keys of the mode keep their summary (prefix only).
    assert re.search(r"<code>sk_test_[\w-]{6}…</code>", page)


def test_issued_by_month_selector_zero_fills_across_the_year(data) -> None:
    scope = Scope(tenant=data.tenant, livemode=False)
    rows = invoicing_selectors.issued_by_month(scope=scope, months=4, today=date(2026, 3, 1))
    assert [(r["month"], r["count"], r["credit_notes"]) for r in rows] == [
        (date(2025, 12, 1), 0, 0),
        (date(2026, 1, 1), 0, 0),
        (date(2026, 2, 1), 1, 0),
        (date(2026, 3, 1), 4, 1),
    ]
    summary = invoicing_selectors.issued_summary(
        scope=scope, date_from=date(2026, 2, 1), date_to=date(2026, 2, 28)
    )
    assert (summary.count, summary.credit_notes, summary.amounts) == (1, 0, [("EUR", Decimal("75.00"))])


def test_anonymous_is_sent_to_login() -> None:
    response = Client().get("/")
    assert response.status_code == 302 and "/login/" in response["Location"]
