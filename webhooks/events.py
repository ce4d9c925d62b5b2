"""The event types integrators can subscribe to: one canonical list for the API, the dashboard, the
docs and the endpoint filters. Adding a type here is a public change (docs/webhooks.md)."""

from __future__ import annotations

# type -> when it is sent. Order is the documentation order.
EVENT_DESCRIPTIONS: dict[str, str] = {
    "invoice.created": "A draft invoice or credit note was created.",
    "invoice.issued": "An invoice was validated, numbered and frozen.",
    "invoice.transmitted": "An issued invoice was accepted by the PDP (the approved platform).",
    "invoice.transmission_failed": "The PDP rejected an invoice or a status message, or it could not be "
    "reached after every retry (data.reason / data.details say why).",
    "invoice.status_changed": "The lifecycle status of an issued or received invoice changed (CDAR status "
    "200 Déposée … 212 Encaissée, 501 Irrecevable), whoever sent it.",
    "invoice.paid": "An invoice was paid: status 212 Encaissée (sent by its seller).",
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
    "payment.received": "A payment was received: for an invoice (data.object 'invoice', with 212 "
    "Encaissée) or for a credit pack (data.object 'credit_purchase').",
    "archive.chain_broken": "The integrity check of the invoice chain found a broken link.",
}

EVENT_TYPES: list[str] = list(EVENT_DESCRIPTIONS)

# What "Send test event" delivers; not subscribable (a test goes to the chosen endpoint whatever its filter).
TEST_EVENT_TYPE = "test.webhook"
