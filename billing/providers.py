"""Payment providers for credit packs: a sandbox with test cards, and Stripe Checkout.

A provider starts a payment and, for hosted checkouts, turns the provider's signed webhook into a
confirmation. Crediting is never done here: ``billing.services.purchase_confirm`` does it, once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings

from billing.models import Purchase

CENT = Decimal("0.01")


@dataclass(frozen=True)
class StartResult:
    """``status`` is ``paid`` or ``failed`` for instant providers, ``pending`` for hosted checkouts."""

    status: str
    provider_ref: str
    checkout_url: str = ""
    failure_reason: str = ""


@dataclass(frozen=True)
class Confirmation:
    provider_ref: str
    paid: bool
    amount_with_vat: Decimal | None = None


class WebhookError(ValueError):
    """A provider notification that is not authentic or not understood."""


class PaymentProvider(Protocol):
    name: str

    def start(
        self, purchase: Purchase, *, success_url: str, cancel_url: str, card: str = ""
    ) -> StartResult: ...

    def parse_webhook(self, payload: bytes, headers: dict[str, str]) -> Confirmation | None: ...


class SandboxProvider:
    """Instant payments with test card numbers, for development and tests only: 4242 4242 4242 4242
    succeeds, 4000 0000 0000 0002 is declined, anything else is refused as an invalid card."""

    name = "sandbox"
    SUCCESS = "4242424242424242"
    DECLINED = "4000000000000002"

    def start(self, purchase: Purchase, *, success_url: str, cancel_url: str, card: str = "") -> StartResult:
        digits = "".join(ch for ch in card if ch.isdigit())
        ref = f"sbx_{purchase.id.hex}"
        if digits == self.SUCCESS:
            return StartResult(status="paid", provider_ref=ref)
        if digits == self.DECLINED:
            return StartResult(status="failed", provider_ref=ref, failure_reason="card_declined")
        return StartResult(status="failed", provider_ref=ref, failure_reason="invalid_card_number")

    def parse_webhook(self, payload: bytes, headers: dict[str, str]) -> Confirmation | None:
        raise WebhookError("the sandbox provider has no webhooks")


class StripeCheckoutProvider:
    """Stripe Checkout (hosted page); the payment is confirmed by the signed ``checkout.session.completed``
    webhook, never by the browser coming back."""

    name = "stripe"

    def _client(self):
        import stripe

        client = stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None,
            max_network_retries=2,
        )
        return client

    def start(self, purchase: Purchase, *, success_url: str, cancel_url: str, card: str = "") -> StartResult:
        cents = int((purchase.amount_with_vat / CENT).to_integral_value())
        session = self._client().v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "client_reference_id": str(purchase.id),
                "metadata": {"purchase_id": str(purchase.id), "tenant": purchase.tenant.identifier},
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "eur",
                            "unit_amount": cents,
                            "product_data": {"name": f"Scell credits – {purchase.amount} EUR pack"},
                        },
                    }
                ],
                "success_url": success_url,
                "cancel_url": cancel_url,
            }
        )
        return StartResult(status="pending", provider_ref=session.id, checkout_url=session.url or "")

    def parse_webhook(self, payload: bytes, headers: dict[str, str]) -> Confirmation | None:
        import stripe

        signature = headers.get("Stripe-Signature", "")
        try:
            event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
        except (ValueError, stripe.SignatureVerificationError) as exc:
            raise WebhookError(str(exc)) from exc
        # Read the verified payload as plain JSON: stripe 16 objects are not dicts (no .get()).
        event = json.loads(payload)
        if event.get("type") not in {
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
            "checkout.session.expired",
        }:
            return None  # other events are acknowledged and ignored
        session = event["data"]["object"]
        if event["type"] == "checkout.session.completed" and session.get("payment_status") == "unpaid":
            return None  # a delayed payment method (SEPA): async_payment_succeeded/failed settles it
        paid = (
            event["type"] != "checkout.session.async_payment_failed"
            and session.get("payment_status") == "paid"
        )
        total = session.get("amount_total")
        return Confirmation(
            provider_ref=session["id"],
            paid=paid,
            amount_with_vat=(Decimal(total) * CENT) if total is not None else None,
        )


PROVIDERS: dict[str, type] = {"sandbox": SandboxProvider, "stripe": StripeCheckoutProvider}


def get_provider(name: str | None = None) -> PaymentProvider:
    return PROVIDERS[name or settings.PAYMENT_PROVIDER]()
