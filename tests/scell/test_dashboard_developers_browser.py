"""Developers, Home, Credits and Archive in a real browser (Debian's Chromium through Playwright).

The first test is the integrator's path: create an API key in the dashboard, copy the key shown once and
call the API with it; add a webhook endpoint pointing at a real receiver on loopback, make an event
happen through the API, watch it arrive, replay it and send a test event; read it in the event log;
revoke the key and see the API refuse it. The second one fills a tenant with a few months of activity
and looks at the home, credits and archive pages. Both save the screenshots of docs/screenshots."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import dramatiq
import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from dramatiq.brokers.stub import StubBroker

from archive import services as archive_services
from archive.closures import business_today, closure_create, closure_timestamp
from archive.models import ChainEntry
from billing.models import CreditAccount
from billing.services import credits_charge, credits_grant_pack
from invoicing.models import Invoice
from scell.models import ApiKey
from scell.selectors import month_starts
from scell.tenancy import Scope
from signatures.models import SignatureRequest
from tests.archive import test_closures as closure_tests
from tests.invoicing.conftest import DRAFT
from tests.webhooks.receiver import Receiver
from webhooks import tasks  # noqa: F401 - declares the "webhooks" queue on the broker
from webhooks.models import Event, WebhookDelivery, WebhookEndpoint
from webhooks.signing import verify_signature

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("require_postgres"),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct-horse-battery-9"

# Local OpenTimestamps calendars (fixture of the closure tests).
calendars = closure_tests.calendars


@pytest.fixture
def page(browser_page, live_server):
    page = browser_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    return page


@pytest.fixture
def worker(settings) -> Iterator[StubBroker]:
    """Dramatiq workers on the stub broker: they dispatch and deliver webhooks as in production."""
    settings.WEBHOOK_RETRY_SCHEDULE = [0.05, 0.05]
    settings.WEBHOOK_TIMEOUT = 5
    broker = dramatiq.get_broker()
    assert isinstance(broker, StubBroker)
    broker.flush_all()
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    yield broker
    worker.stop()
    broker.flush_all()


def sign_in(page, email: str) -> None:
    page.goto("/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/"


def nav(page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def api(live_server, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        live_server.url + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


def test_api_key_and_webhooks_end_to_end(page, live_server, seller, worker) -> None:
    sign_in(page, seller.owner.email)

    # --- An API key, created and shown once ---------------------------------------------------------
    nav(page, "API keys")
    page.wait_for_url("**/developers/keys/")
    form = page.get_by_test_id("create-key")
    form.get_by_label("Kind").select_option("secret")
    form.get_by_label("Name").fill("CI robot")
    form.get_by_role("button", name="Create key").click()
    page.wait_for_url("**/developers/keys/")
    assert page.get_by_text("API key created.").is_visible()
    shown = page.get_by_test_id("raw-key").input_value()
    assert shown.startswith("sk_test_")
    page.get_by_test_id("copy-key").click()
    page.get_by_text("Copied.").wait_for()
    key = page.evaluate("navigator.clipboard.readText()")
    assert key == shown
    created = ApiKey.objects.get(name="CI robot")
    assert created.created_by == seller.owner and key.startswith(created.display_prefix)
    page.screenshot(path=str(SCREENSHOTS / "developers-keys.png"), full_page=True)

    status, me = api(live_server, "/api/v1/me", key)
    assert status == 200 and me["tenant"]["identifier"] == "SELL1" and me["livemode"] is False
    page.reload()
    assert page.get_by_test_id("raw-key").count() == 0
    row = page.locator(f'[data-testid=key][data-prefix="{created.display_prefix}"]')
    assert "CI robot" in row.inner_text() and "active" in row.inner_text()
    assert key not in page.content()

    # --- A webhook endpoint at a real receiver ------------------------------------------------------
    with Receiver() as receiver:
        nav(page, "Webhooks")
        page.wait_for_url("**/developers/webhooks/")
        form = page.get_by_test_id("create-endpoint")
        form.get_by_label("URL").fill(receiver.url)
        form.get_by_label("Description").fill("ERP")
        form.get_by_role("button", name="Add endpoint").click()
        page.wait_for_url("**/developers/webhooks/*/")
        secret = page.get_by_test_id("secret").inner_text()
        assert secret.startswith("whsec_")
        endpoint = WebhookEndpoint.objects.get(url=receiver.url)

        # An event made through the API with the new key reaches the receiver, signed.
        status, draft = api(live_server, "/api/v1/invoices", key, DRAFT)
        assert status == 201, draft
        [request] = receiver.wait_for(1, timeout=60)
        body = json.loads(request.body)
        assert body["type"] == "invoice.created" and body["data"]["id"] == draft["id"]
        assert verify_signature(request.body, request.header("X-Scell-Signature"), secret)
        first = WebhookDelivery.objects.get(endpoint=endpoint)
        wait_until(
            lambda: WebhookDelivery.objects.get(pk=first.pk).status == WebhookDelivery.Status.SUCCEEDED
        )

        page.reload()
        delivery = page.locator(f"#delivery-{first.pk}")
        assert "invoice.created" in delivery.inner_text() and "HTTP 200" in delivery.inner_text()

        # Replay: the same event again, to the same endpoint.
        delivery.get_by_test_id("replay").click()
        page.wait_for_load_state()
        assert page.get_by_text("Delivery replayed: the same event is sent again.").is_visible()
        replayed = receiver.wait_for(2, timeout=60)[1]
        assert json.loads(replayed.body)["id"] == body["id"]
        assert replayed.header("X-Scell-Event-Id") == body["id"]

        # Send test event.
        page.get_by_test_id("send-test").click()
        page.wait_for_load_state()
        test_request = receiver.wait_for(3, timeout=60)[2]
        assert json.loads(test_request.body)["type"] == "test.webhook"
        wait_until(lambda: WebhookDelivery.objects.filter(endpoint=endpoint, status="succeeded").count() == 3)
        page.reload()
        assert page.get_by_test_id("delivery").count() == 3
        assert page.locator("text=replay").count() >= 1
        page.screenshot(path=str(SCREENSHOTS / "webhooks.png"), full_page=True)

    # --- The event log --------------------------------------------------------------------------------
    nav(page, "Event log")
    page.wait_for_url("**/developers/events/")
    types = page.locator("[data-testid=event]").evaluate_all("rows => rows.map(r => r.dataset.type)")
    assert types == ["test.webhook", "invoice.created"]
    page.get_by_label("Type").select_option("invoice.created")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert page.locator("[data-testid=event]").count() == 1
    page.get_by_role("link", name="invoice.created").click()
    page.wait_for_url(f"**/developers/events/{body['id']}/")
    payload = json.loads(page.get_by_test_id("payload").inner_text())
    assert payload == body
    assert page.get_by_test_id("delivery").count() == 2  # the delivery and its replay
    page.screenshot(path=str(SCREENSHOTS / "events.png"), full_page=True)

    # --- Revoke: the API refuses the key at once ------------------------------------------------------
    nav(page, "API keys")
    page.locator(f'[data-testid=key][data-prefix="{created.display_prefix}"]').get_by_role(
        "link", name="Revoke…"
    ).click()
    page.get_by_role("button", name="Revoke the key").click()
    page.wait_for_url("**/developers/keys/")
    assert (
        "revoked" in page.locator(f'[data-testid=key][data-prefix="{created.display_prefix}"]').inner_text()
    )
    status, error = api(live_server, "/api/v1/me", key)
    assert status == 401 and error["error"]["code"] == "revoked_api_key"


# --- Home, credits and archive with a few months of activity -----------------------------------------
def _issued(tenant, number: str, when: datetime, amount: str, **fields) -> Invoice:
    return Invoice.objects.create(
        tenant=tenant,
        livemode=False,
        status=Invoice.Status.ISSUED,
        number=number,
        issue_date=timezone.localtime(when).date(),
        issued_at=when,
        total_without_vat=Decimal(amount),
        total_vat=(Decimal(amount) * Decimal("0.2")).quantize(Decimal("0.01")),
        total_with_vat=(Decimal(amount) * Decimal("1.2")).quantize(Decimal("0.01")),
        buyer={"name": "Client SARL"},
        buyer_name="Client SARL",
        **fields,
    )


def _backdate_chain(invoice: Invoice, when: datetime) -> None:
    """Date the invoice's chain entry as if it had been issued then. The hash covers prev_hash and the
    payload only, so the chain stays intact; the chain tables refuse UPDATE unless triggers are off."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            ChainEntry.objects.filter(source_table="invoicing_invoice", source_id=str(invoice.pk)).update(
                created_at=when
            )
        finally:
            cursor.execute("SET session_replication_role = origin")


def _activity(tenant) -> None:
    """Invoices each month of the last year, credits spent in live mode, three closed days, a health
    check, two signature requests waiting and a failing webhook."""
    today = business_today()
    now = timezone.now()
    months = month_starts(12, today=today)
    with time_machine.travel(datetime.combine(months[0], dtime(8), tzinfo=UTC), tick=False):
        credits_grant_pack(tenant=tenant, amount=Decimal("100.00"))  # expires about now: the next expiry
    with time_machine.travel(datetime.combine(months[6], dtime(8), tzinfo=UTC), tick=False):
        credits_grant_pack(tenant=tenant, amount=Decimal("250.00"))
    number = 0
    for i, month in enumerate(months):
        for day in (3, 12, 21)[: 1 + i % 3]:
            when = datetime.combine(month.replace(day=day), dtime(10), tzinfo=UTC)
            if when.date() >= today - timedelta(days=3):
                continue  # the last three days are issued below, and closed
            number += 1
            invoice = _issued(tenant, f"SELL1-{when:%Y%m}-{number:05d}", when, str(120 * (1 + number % 4)))
            _backdate_chain(invoice, when)
        spent_at = min(datetime.combine(month.replace(day=5), dtime(9), tzinfo=UTC), now - timedelta(hours=1))
        with time_machine.travel(spent_at, tick=False):
            for n in range(2 + i % 5):
                credits_charge(tenant=tenant, livemode=True, operation="invoice_issue", reference=f"{i}-{n}")
            if i % 3 == 2:
                credits_charge(tenant=tenant, livemode=True, operation="signature_signer", reference=f"s{i}")
    for back in (3, 2, 1):
        day = today - timedelta(days=back)
        for hour in (9, 15):
            number += 1
            when = datetime.combine(day, dtime(hour), tzinfo=UTC)
            _backdate_chain(_issued(tenant, f"SELL1-{when:%Y%m}-{number:05d}", when, "480.00"), when)
        closure_timestamp(closure_create(chain_key=f"{tenant.pk}/-/test", day=day))
    number += 1
    _issued(tenant, f"SELL1-{today:%Y%m}-{number:05d}", now, "90.00", type=Invoice.Type.CREDIT_NOTE)
    archive_services.chain_check(scope=Scope(tenant=tenant, livemode=False))
    for title in ("Framework agreement 2026", "NDA Durand"):
        SignatureRequest.objects.create(
            tenant=tenant,
            livemode=False,
            title=title,
            original_file="signatures/contract.pdf",
            original_sha256="0" * 64,
            original_size=1000,
            page_count=2,
            expires_at=now + timedelta(days=12),
        )
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant, livemode=False, url="https://erp.example.com/scell-hooks", secret="whsec_x"
    )
    event = Event.objects.create(tenant=tenant, livemode=False, type="invoice.issued", data={"id": "x"})
    WebhookDelivery.objects.create(
        tenant=tenant,
        livemode=False,
        endpoint=endpoint,
        event=event,
        status=WebhookDelivery.Status.RETRYING,
        last_status_code=502,
        attempt_count=2,
    )


def test_home_credits_and_archive_pages(page, seller, calendars) -> None:
    _activity(seller.tenant)
    sign_in(page, seller.owner.email)

    this_month = Invoice.objects.filter(
        tenant=seller.tenant, livemode=False, status="issued", issue_date__gte=business_today().replace(day=1)
    )
    assert page.get_by_test_id("issued-count").inner_text() == str(this_month.count())
    assert page.get_by_test_id("waiting").inner_text() == "2"
    assert page.get_by_test_id("failure-count").inner_text() == "1"
    assert page.get_by_test_id("archive-status").inner_text() == "healthy"
    assert page.get_by_test_id("last-check").inner_text().endswith(": intact.")
    assert page.get_by_test_id("chart-issued").locator(".bar").count() == 12
    page.get_by_text("Show the figures as a table").click()
    assert page.get_by_test_id("chart-table").locator("tbody tr").count() == 12
    page.screenshot(path=str(SCREENSHOTS / "home.png"), full_page=True)

    page.get_by_test_id("card-credits").get_by_role("link", name="Credit balance").click()
    page.wait_for_url("**/credits/")
    balance = CreditAccount.objects.get(tenant=seller.tenant).balance
    assert page.get_by_test_id("balance").inner_text() == f"{balance} EUR"
    assert Decimal("300") < balance < Decimal("400")  # 50 + 100 + 250 bought, some spent
    assert page.get_by_test_id("usage").locator("tbody tr").count() == 12
    with page.expect_download() as download:
        page.get_by_role("button", name="Usage per month and operation").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "month,operation,count,amount_eur" and len(lines) > 12
    page.screenshot(path=str(SCREENSHOTS / "credits.png"), full_page=True)

    nav(page, "Archive")
    page.wait_for_url("**/archive/")
    assert page.get_by_test_id("closure").count() == 3
    with page.expect_download() as download:
        page.get_by_test_id("closure").first.get_by_test_id("ots").click()
    assert download.value.suggested_filename.endswith(".ots")
    with page.expect_download() as download:
        page.get_by_test_id("proof-row").nth(1).get_by_test_id("proof").click()
    assert download.value.suggested_filename.startswith("proof-")
    page.get_by_role("button", name="Check the chain now").click()
    page.wait_for_load_state()
    assert page.get_by_text("The chain is intact").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "archive.png"), full_page=True)
