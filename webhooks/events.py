"""The event types integrators can subscribe to: one canonical list for the API, the dashboard, the
docs and the endpoint filters. Adding a type here is a public change (docs/webhooks.md)."""

from __future__ import annotations

# type -> when it is sent. Order is the documentation order.
EVENT_DESCRIPTIONS: dict[str, str] = {
    "invoice.created": "A draft invoice or credit note was created.",
    "invoice.issued": "An invoice was validated, numbered and frozen.",
    "invoice.transmitted": "An issued invoice was handed to the PDP (the approved platform).",
    "invoice.status_changed": "The PDP lifecycle status of an invoice changed (rejected, approved...).",
    "invoice.paid": "An invoice was marked paid.",
    "invoice.received": "A supplier invoice (CII, UBL or Factur-X) was imported.",
    "signature_request.sent": "A signature request was sent to its (first) signers.",
    "signer.signed": "A signer signed.",
    "signer.declined": "A signer declined to sign.",
    "signer.otp_expired": "A signer's SMS code expired before it was used.",
    "signature_request.completed": "Every signer signed; the sealed document is ready.",
    "signature_request.expired": "A signature request reached its expiry without being completed.",
    "signature_request.cancelled": "The sender cancelled a signature request.",
    "credits.purchased": "A credit pack was added to the balance.",
    "credits.low_balance": "The credit balance went below the tenant's threshold.",
    "credits.expired": "Unspent credits of a lot reached their expiry and were written off.",
    "payment.received": "A payment for a credit pack was received.",
    "archive.chain_broken": "The integrity check of the invoice chain found a broken link.",
}

EVENT_TYPES: list[str] = list(EVENT_DESCRIPTIONS)

# What "Send test event" delivers; not subscribable (a test goes to the chosen endpoint whatever its filter).
TEST_EVENT_TYPE = "test.webhook"
