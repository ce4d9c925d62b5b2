"""Buying credit packs: sandbox cards, Stripe Checkout (against a local fake of Stripe's API and signed
webhooks), a pack credited once whatever happens, and Scell's own Factur-X invoice for every pack sold."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from dateutil.relativedelta import relativedelta
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import CreditAccount, CreditLot, LedgerEntry, Purchase
from billing.services import ledger_balance, purchase_confirm, purchase_invoice, purchase_start
from invoicing.models import Invoice
from scell.errors import Conflict, UnprocessableEntity
from scell.models import Tenant
from scell.services import tenant_create
from scell.tenancy import Scope
from tests.invoicing.conftest import SELLER_PROFILE
from webhooks.models import Event

pytestmark = pytest.mark.django_db

SUCCESS_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
WEBHOOK_SECRET = "whsec_test_secret"
URL = "/api/v1/credits/purchases"
WEBHOOK_URL = "/api/v1/billing/webhooks/stripe"


def live_scope(fixture) -> Scope:
    return Scope(tenant=fixture.tenant, livemode=True, user=fixture.owner)


def events(tenant: Tenant, type: str) -> list[Event]:
    return list(Event.objects.filter(tenant=tenant, type=type))


def buy(fixture, amount: str = "50.00", card: str = SUCCESS_CARD) -> Purchase:
    return purchase_start(
        scope=live_scope(fixture),
        amount=Decimal(amount),
        card=card,
        success_url="https://app.example/ok",
        cancel_url="https://app.example/ko",
    )


# --- Sandbox provider ------------------------------------------------------------------------------


def test_sandbox_success_card_credits_a_twelve_month_lot_with_events(tenant_a) -> None:
    before = timezone.now()
    purchase = buy(tenant_a, "100.00")
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.PAID
    assert purchase.provider == "sandbox"
    assert purchase.provider_ref.startswith("sbx_")
    assert purchase.amount == Decimal("100.00")
    assert purchase.amount_with_vat == Decimal("120.00")
    assert purchase.paid_at is not None

    lot = purchase.lot
    assert lot is not None
    assert (lot.amount, lot.remaining, lot.source) == (Decimal("100.00"), Decimal("100.00"), "pack")
    expected = before + relativedelta(months=12)
    assert expected - timedelta(minutes=1) <= lot.expires_at <= expected + timedelta(minutes=1)

    entry = LedgerEntry.objects.get(tenant=tenant_a.tenant)
    assert entry.kind == LedgerEntry.Kind.PURCHASE
    assert entry.amount == Decimal("100.00")
    assert entry.lot_id == lot.id
    assert entry.reference == f"purchase:{purchase.id}"
    assert CreditAccount.objects.get(tenant=tenant_a.tenant).balance == Decimal("100.00")
    assert ledger_balance(tenant=tenant_a.tenant) == Decimal("100.00")

    (received,) = events(tenant_a.tenant, "payment.received")
    assert received.livemode is True
    assert received.data["purchase"] == str(purchase.id)
    assert received.data["amount"] == "120.00"
    assert received.data["currency"] == "EUR"
    (purchased,) = events(tenant_a.tenant, "credits.purchased")
    assert purchased.livemode is True
    assert purchased.data["amount"] == "100.00"
    assert purchased.data["lot"] == str(lot.id)
    assert purchased.data["balance"] == "100.00"


def test_sandbox_declined_card_fails_without_credit_or_event(tenant_a) -> None:
    purchase = buy(tenant_a, card=DECLINED_CARD)
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.FAILED
    assert purchase.failure_reason == "card_declined"
    assert purchase.lot is None
    assert not CreditLot.objects.filter(tenant=tenant_a.tenant).exists()
    assert not LedgerEntry.objects.filter(tenant=tenant_a.tenant).exists()
    assert not Event.objects.filter(tenant=tenant_a.tenant).exists()
    assert ledger_balance(tenant=tenant_a.tenant) == Decimal("0.00")


def test_sandbox_invalid_card_fails(tenant_a) -> None:
    purchase = buy(tenant_a, card="1234")
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.FAILED
    assert purchase.failure_reason == "invalid_card_number"
    assert not CreditLot.objects.exists()


@pytest.mark.parametrize("amount", ["49.99", "75.00", "10000.00", "0.00"])
def test_amount_outside_the_catalogue_is_refused(tenant_a, amount) -> None:
    with pytest.raises(UnprocessableEntity) as exc:
        buy(tenant_a, amount)
    assert exc.value.status_code == 422
    assert exc.value.error_code == "unknown_pack"
    assert not Purchase.objects.exists()


def test_api_amount_outside_the_catalogue_is_422(tenant_a) -> None:
    response = tenant_a.client("sk_live").post(URL, {"amount": "75.00", "card": SUCCESS_CARD}, format="json")
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "unknown_pack"
    assert any(d["field"] == "amount" for d in error["details"])
    assert not Purchase.objects.exists()


def test_api_sandbox_purchase(tenant_a) -> None:
    client = tenant_a.client("sk_live")
    response = client.post(URL, {"amount": "250.00", "card": SUCCESS_CARD}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "paid"
    assert body["amount"] == "250.00"
    assert body["amount_with_vat"] == "300.00"
    assert body["provider"] == "sandbox"
    listed = client.get(URL).json()
    assert [p["id"] for p in listed["data"]] == [body["id"]]
    assert client.get(f"{URL}/{body['id']}").json()["status"] == "paid"
    assert client.get("/api/v1/credits").json()["balance"] == "250.00"

    declined = client.post(URL, {"amount": "50.00", "card": DECLINED_CARD}, format="json")
    assert declined.status_code == 201
    assert declined.json()["status"] == "failed"
    assert client.get("/api/v1/credits").json()["balance"] == "250.00"


def test_confirmation_delivered_twice_credits_once(tenant_a) -> None:
    purchase = Purchase.objects.create(
        tenant=tenant_a.tenant,
        amount=Decimal("50.00"),
        vat_rate=Decimal("20.00"),
        amount_with_vat=Decimal("60.00"),
        provider="sandbox",
        provider_ref="sbx_manual",
    )
    first = purchase_confirm(provider="sandbox", provider_ref="sbx_manual", paid=True)
    second = purchase_confirm(provider="sandbox", provider_ref="sbx_manual", paid=True)
    # A late failure notice does not undo a payment either.
    third = purchase_confirm(provider="sandbox", provider_ref="sbx_manual", paid=False)
    assert first.pk == second.pk == third.pk == purchase.pk
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.PAID
    assert CreditLot.objects.filter(tenant=tenant_a.tenant).count() == 1
    assert LedgerEntry.objects.filter(tenant=tenant_a.tenant).count() == 1
    assert CreditAccount.objects.get(tenant=tenant_a.tenant).balance == Decimal("50.00")
    assert len(events(tenant_a.tenant, "credits.purchased")) == 1
    assert len(events(tenant_a.tenant, "payment.received")) == 1


def test_confirming_an_unknown_purchase_is_refused(tenant_a) -> None:
    with pytest.raises(UnprocessableEntity):
        purchase_confirm(provider="sandbox", provider_ref="sbx_nope", paid=True)


def test_confirmation_with_a_wrong_amount_credits_nothing(tenant_a) -> None:
    Purchase.objects.create(
        tenant=tenant_a.tenant,
        amount=Decimal("50.00"),
        vat_rate=Decimal("20.00"),
        amount_with_vat=Decimal("60.00"),
        provider="stripe",
        provider_ref="cs_test_wrong",
    )
    with pytest.raises(Conflict):
        purchase_confirm(
            provider="stripe", provider_ref="cs_test_wrong", paid=True, amount_with_vat=Decimal("50.00")
        )
    assert Purchase.objects.get(provider_ref="cs_test_wrong").status == Purchase.Status.PENDING
    assert not CreditLot.objects.exists()
    assert not Event.objects.exists()


@pytest.mark.parametrize("key", ["pk_live", "pk_test", "tenant_key", "tenant_key_live"])
def test_purchases_need_a_secret_key(tenant_a, key) -> None:
    client = tenant_a.client(key)
    response = client.post(URL, {"amount": "50.00", "card": SUCCESS_CARD}, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["error"]["type"] == "permission_error"
    assert client.get(URL).status_code == 403
    assert not Purchase.objects.exists()
    assert not CreditLot.objects.exists()


def test_purchases_are_isolated_between_tenants(tenant_a, tenant_b) -> None:
    purchase = buy(tenant_a)
    client_b = tenant_b.client("sk_live")
    assert client_b.get(URL).json()["data"] == []
    assert client_b.get(f"{URL}/{purchase.id}").status_code == 404


# --- Stripe Checkout -------------------------------------------------------------------------------


class _FakeStripe(BaseHTTPRequestHandler):
    """Answers ``POST /v1/checkout/sessions`` like Stripe does (the fields Scell reads)."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        server: Any = self.server
        server.requests.append(
            {"path": self.path, "authorization": self.headers.get("Authorization"), "form": parse_qs(body)}
        )
        if self.path != "/v1/checkout/sessions":
            self._send(404, {"error": {"type": "invalid_request_error", "message": "no such route"}})
            return
        form = parse_qs(body)
        amount = int(form["line_items[0][price_data][unit_amount]"][0])
        session_id = f"cs_test_{len(server.requests):04d}"
        self._send(
            200,
            {
                "id": session_id,
                "object": "checkout.session",
                "url": f"https://checkout.stripe.example/c/pay/{session_id}",
                "payment_status": "unpaid",
                "status": "open",
                "mode": "payment",
                "currency": "eur",
                "amount_total": amount,
                "client_reference_id": form["client_reference_id"][0],
                "livemode": False,
            },
        )

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_test")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_stripe(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeStripe)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def stripe_signature(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event(
    session_id: str,
    amount_total: int | None,
    *,
    type: str = "checkout.session.completed",
    payment_status: str = "paid",
    event_id: str = "evt_test_1",
) -> bytes:
    session: dict[str, Any] = {
        "id": session_id,
        "object": "checkout.session",
        "payment_status": payment_status,
        "status": "complete",
        "currency": "eur",
        "amount_total": amount_total,
        "metadata": {},
    }
    event = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "type": type,
        "data": {"object": session},
    }
    return json.dumps(event).encode()


def post_webhook(payload: bytes, signature: str | None = None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature if signature is not None else stripe_signature(payload)}
    return APIClient().post(WEBHOOK_URL, data=payload, content_type="application/json", **headers)


def start_stripe_purchase(fixture, amount: str = "50.00") -> dict:
    response = fixture.client("sk_live").post(URL, {"amount": amount}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_stripe_checkout_then_signed_webhook_credits_once(tenant_a, fake_stripe) -> None:
    body = start_stripe_purchase(tenant_a, "100.00")
    assert body["status"] == "pending"
    assert body["provider"] == "stripe"
    assert body["checkout_url"].startswith("https://checkout.stripe.example/c/pay/cs_test_")

    (request,) = fake_stripe.requests
    assert request["path"] == "/v1/checkout/sessions"
    assert request["authorization"] == "Bearer sk_test_x"
    form = request["form"]
    assert form["mode"] == ["payment"]
    assert form["line_items[0][price_data][unit_amount]"] == ["12000"]
    assert form["line_items[0][price_data][currency]"] == ["eur"]
    assert form["client_reference_id"] == [body["id"]]

    purchase = Purchase.objects.get(pk=body["id"])
    assert purchase.status == Purchase.Status.PENDING
    assert purchase.provider_ref.startswith("cs_test_")
    assert not CreditLot.objects.exists()
    assert not Event.objects.exists()

    payload = stripe_event(purchase.provider_ref, 12000)
    response = post_webhook(payload)
    assert response.status_code == 200, response.content
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.PAID
    assert purchase.lot.amount == Decimal("100.00")
    assert CreditAccount.objects.get(tenant=tenant_a.tenant).balance == Decimal("100.00")
    assert len(events(tenant_a.tenant, "credits.purchased")) == 1
    assert len(events(tenant_a.tenant, "payment.received")) == 1
    assert events(tenant_a.tenant, "payment.received")[0].data["provider"] == "stripe"

    # Stripe retries deliveries: the same event again credits nothing more.
    again = post_webhook(payload)
    assert again.status_code == 200, again.content
    assert CreditLot.objects.filter(tenant=tenant_a.tenant).count() == 1
    assert LedgerEntry.objects.filter(tenant=tenant_a.tenant).count() == 1
    assert CreditAccount.objects.get(tenant=tenant_a.tenant).balance == Decimal("100.00")
    assert len(events(tenant_a.tenant, "credits.purchased")) == 1
    assert tenant_a.client("sk_live").get(f"{URL}/{body['id']}").json()["status"] == "paid"


@pytest.mark.parametrize(
    "signature",
    [
        "t=1,v1=deadbeef",
        "",
        "garbage",
        "wrong-secret",
        "too-old",
    ],
)
def test_stripe_webhook_with_a_bad_signature_is_400(tenant_a, fake_stripe, signature) -> None:
    body = start_stripe_purchase(tenant_a)
    purchase = Purchase.objects.get(pk=body["id"])
    payload = stripe_event(purchase.provider_ref, 6000)
    if signature == "wrong-secret":
        signature = stripe_signature(payload, secret="whsec_other")
    elif signature == "too-old":
        signature = stripe_signature(payload, timestamp=int(time.time()) - 3600)
    response = post_webhook(payload, signature)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_signature"
    assert error["type"] == "invalid_request_error"
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.PENDING
    assert not CreditLot.objects.exists()
    assert not Event.objects.exists()


def test_stripe_webhook_tampered_payload_is_400(tenant_a, fake_stripe) -> None:
    body = start_stripe_purchase(tenant_a)
    purchase = Purchase.objects.get(pk=body["id"])
    signature = stripe_signature(stripe_event(purchase.provider_ref, 6000))
    tampered = stripe_event(purchase.provider_ref, 6000, event_id="evt_other")
    assert post_webhook(tampered, signature).status_code == 400
    assert not CreditLot.objects.exists()


def test_stripe_webhook_amount_mismatch_is_409(tenant_a, fake_stripe) -> None:
    body = start_stripe_purchase(tenant_a)
    purchase = Purchase.objects.get(pk=body["id"])
    response = post_webhook(stripe_event(purchase.provider_ref, 100))
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "amount_mismatch"
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.PENDING
    assert not CreditLot.objects.exists()
    assert not LedgerEntry.objects.exists()
    assert not Event.objects.exists()


def test_stripe_unrelated_event_is_acknowledged_and_ignored(tenant_a, fake_stripe) -> None:
    body = start_stripe_purchase(tenant_a)
    purchase = Purchase.objects.get(pk=body["id"])
    payload = stripe_event(purchase.provider_ref, 6000, type="payment_intent.created")
    response = post_webhook(payload)
    assert response.status_code == 200
    assert response.json() == {"received": True}
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.PENDING


def test_stripe_async_payment_waits_for_the_final_event(tenant_a, fake_stripe) -> None:
    """A delayed payment method (SEPA debit) completes the checkout unpaid: the purchase stays pending
    until ``async_payment_succeeded`` (credited) — it is not a failure."""
    body = start_stripe_purchase(tenant_a)
    purchase = Purchase.objects.get(pk=body["id"])
    completed = stripe_event(purchase.provider_ref, 6000, payment_status="unpaid")
    assert post_webhook(completed).status_code == 200
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.PENDING
    assert not CreditLot.objects.exists()

    succeeded = stripe_event(
        purchase.provider_ref, 6000, type="checkout.session.async_payment_succeeded", event_id="evt_2"
    )
    assert post_webhook(succeeded).status_code == 200
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.PAID
    assert CreditAccount.objects.get(tenant=tenant_a.tenant).balance == Decimal("50.00")


def test_stripe_async_payment_failed_and_expired_sessions_fail(tenant_a, fake_stripe) -> None:
    failed = Purchase.objects.get(pk=start_stripe_purchase(tenant_a)["id"])
    expired = Purchase.objects.get(pk=start_stripe_purchase(tenant_a)["id"])
    payload = stripe_event(
        failed.provider_ref, 6000, type="checkout.session.async_payment_failed", payment_status="unpaid"
    )
    assert post_webhook(payload).status_code == 200
    payload = stripe_event(
        expired.provider_ref, 6000, type="checkout.session.expired", payment_status="unpaid"
    )
    assert post_webhook(payload).status_code == 200
    failed.refresh_from_db()
    expired.refresh_from_db()
    assert failed.status == expired.status == Purchase.Status.FAILED
    assert not CreditLot.objects.exists()
    assert not Event.objects.exists()


# --- Dogfooding: Scell invoices the packs it sells -------------------------------------------------


@pytest.fixture
def platform(db) -> Tenant:
    created = tenant_create(
        legal_name="Scell SAS",
        siren="732829320",
        identifier="SCELL",
        is_platform=True,
        **SELLER_PROFILE,
    )
    return created.tenant


@pytest.fixture
def buyer(make_tenant):
    return make_tenant(
        "BUYER",
        legal_name="Acheteur SARL",
        siren="552100554",
        siret="55210055400013",
        vat_id="FR40552100554",
        address_line1="1 rue de la Paix",
        postcode="75002",
        city="Paris",
        email="compta@acheteur.example",
    )


def test_purchase_invoice_issues_a_prepaid_facturx_from_the_platform(platform, buyer) -> None:
    purchase = buy(buyer, "250.00")
    platform_entries = LedgerEntry.objects.filter(tenant=platform).count()
    invoice = purchase_invoice(purchase=purchase)
    assert isinstance(invoice, Invoice)
    invoice.refresh_from_db()
    assert invoice.tenant_id == platform.id
    assert invoice.livemode is True
    assert invoice.status == Invoice.Status.ISSUED
    assert invoice.format == Invoice.Format.FACTURX
    assert invoice.number.startswith("SCELL-")
    assert invoice.buyer_siren == buyer.tenant.siren
    assert invoice.buyer["siren"] == buyer.tenant.siren
    assert invoice.total_without_vat == Decimal("250.00")
    assert invoice.total_vat == Decimal("50.00")
    assert invoice.total_with_vat == Decimal("300.00")
    assert invoice.prepaid_amount == Decimal("300.00")
    assert invoice.amount_due == Decimal("0.00")
    assert invoice.cii_xml
    # The platform spends no credits on its own invoices.
    assert LedgerEntry.objects.filter(tenant=platform).count() == platform_entries == 0
    assert not CreditAccount.objects.filter(tenant=platform, balance__gt=0).exists()
    purchase.refresh_from_db()
    assert purchase.invoice_id == invoice.id
    # The buyer's credits are untouched by the invoice.
    assert CreditAccount.objects.get(tenant=buyer.tenant).balance == Decimal("250.00")

    again = purchase_invoice(purchase=purchase)
    assert again.pk == invoice.pk
    assert Invoice.objects.filter(tenant=platform).count() == 1
    assert buyer.client("sk_live").get(URL).json()["data"][0]["invoice"] == str(invoice.id)


def test_purchase_invoice_without_platform_tenant_is_none(buyer) -> None:
    purchase = buy(buyer)
    assert purchase_invoice(purchase=purchase) is None
    purchase.refresh_from_db()
    assert purchase.invoice_id is None
    assert not Invoice.objects.exists()


def test_unpaid_purchase_is_not_invoiced(platform, buyer) -> None:
    purchase = buy(buyer, card=DECLINED_CARD)
    assert purchase_invoice(purchase=purchase) is None
    assert not Invoice.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_paid_purchase_enqueues_its_invoice_after_commit(platform, buyer, stub_worker) -> None:
    response = buyer.client("sk_live").post(URL, {"amount": "50.00", "card": SUCCESS_CARD}, format="json")
    assert response.status_code == 201, response.content
    stub_worker.join("billing", fail_fast=True)
    purchase = Purchase.objects.get(pk=response.json()["id"])
    assert purchase.invoice_id is not None
    invoice = Invoice.objects.get(pk=purchase.invoice_id)
    assert invoice.tenant_id == platform.id
    assert invoice.buyer_siren == buyer.tenant.siren
    assert invoice.amount_due == Decimal("0.00")
    assert invoice.total_with_vat == Decimal("60.00")
    # Rendering of the platform's invoice runs in the worker too; let it finish before the flush.
    stub_worker.join("documents", fail_fast=True)


@pytest.mark.django_db(transaction=True)
def test_failed_purchase_enqueues_no_invoice(platform, buyer, stub_worker) -> None:
    response = buyer.client("sk_live").post(URL, {"amount": "50.00", "card": DECLINED_CARD}, format="json")
    assert response.json()["status"] == "failed"
    queue = stub_worker.queues.get("billing")
    assert queue is None or queue.qsize() == 0
    assert not Invoice.objects.exists()
