"""Examples of the credits API in the OpenAPI schema (attached by ``scell.schema.examples_hook``). Acme
SAS bought a 50.00 pack, then issued 25 invoices (25 × 0.04 = 1.00) and had 2 signers sign
(2 × 1.20 = 2.40): 50.00 − 3.40 = 46.60 left."""

from __future__ import annotations

from typing import Any

from scell.schema import Example, OperationExamples

LOT_ID = "602c9510-7338-416f-bc29-c5625843f9fc"
PURCHASE_ID = "ac2120d2-86db-434b-b3fd-b41c2e3b05ff"
PURCHASE_INVOICE_ID = "c1a2b3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"

USAGE_ROWS: list[dict[str, Any]] = [
    {"operation": "invoice_issue", "count": 25, "amount": "1.00"},
    {"operation": "signature_signer", "count": 2, "amount": "2.40"},
]
LOT: dict[str, Any] = {
    "id": LOT_ID,
    "amount": "50.00",
    "remaining": "46.60",
    "source": "pack",
    "created_at": "2026-11-02T10:15:30.513777Z",
    "expires_at": "2027-11-02T10:15:30.513777Z",
    "expired_at": None,
}
PURCHASE_BODY = {"amount": "50.00", "card": "4242 4242 4242 4242"}
PURCHASE: dict[str, Any] = {
    "id": PURCHASE_ID,
    "amount": "50.00",
    "vat_rate": "20.00",
    "amount_with_vat": "60.00",
    "provider": "sandbox",
    "status": "paid",
    "failure_reason": "",
    "checkout_url": "",
    "invoice": PURCHASE_INVOICE_ID,
    "created_at": "2026-11-02T10:15:30.457957Z",
    "paid_at": "2026-11-02T10:15:30.513777Z",
}
LEDGER: list[dict[str, Any]] = [
    {
        "id": "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7",
        "kind": "spend",
        "amount": "-0.04",
        "operation": "invoice_issue",
        "quantity": 1,
        "unit_price": "0.04",
        "reference": "ACME1-202611-00025",
        "reason": "",
        "sub_tenant": None,
        "created_at": "2026-11-24T09:15:41.906489Z",
    },
    {
        "id": "f77486bf-e918-4020-ab55-fc9201f0bc60",
        "kind": "purchase",
        "amount": "50.00",
        "operation": "",
        "quantity": 1,
        "unit_price": None,
        "reference": f"purchase:{PURCHASE_ID}",
        "reason": "",
        "sub_tenant": None,
        "created_at": "2026-11-02T10:15:30.513777Z",
    },
]

EXAMPLES: dict[str, OperationExamples] = {
    "credits_retrieve": OperationExamples(
        responses={
            "200": Example(
                "live",
                "46.60 left of a 50.00 pack",
                {
                    "balance": "46.60",
                    "currency": "EUR",
                    "livemode": True,
                    "low_balance_threshold": "5.00",
                    "next_expiry": LOT["expires_at"],
                    "lots": [LOT],
                    "prices": {"invoice_issue": "0.04", "signature_signer": "1.20"},
                    "packs": ["50.00", "100.00", "250.00", "500.00", "1000.00"],
                    "usage_this_month": USAGE_ROWS,
                },
            )
        }
    ),
    "credits_usage_retrieve": OperationExamples(
        responses={
            "200": Example(
                "november",
                "Spend per operation in November 2026",
                {
                    "date_from": "2026-11-01",
                    "date_to": "2026-11-30",
                    "sub_tenant": None,
                    "data": USAGE_ROWS,
                    "by_month": [
                        {"month": "2026-11", "operation": "invoice_issue", "count": 25, "amount": "1.00"},
                        {"month": "2026-11", "operation": "signature_signer", "count": 2, "amount": "2.40"},
                    ],
                },
            )
        },
        media={
            "200": "JSON (`application/json`), or with `?format=csv` the same rows as `text/csv` (a file "
            "download)."
        },
    ),
    "credits_ledger_list": OperationExamples(
        responses={
            "200": Example(
                "page", "Every credit movement, newest first", {"data": LEDGER, "next_cursor": None}
            )
        }
    ),
    "credits_purchases_list": OperationExamples(
        responses={"200": Example("page", "Pack purchases", {"data": [PURCHASE], "next_cursor": None})}
    ),
    "credits_purchases_retrieve": OperationExamples(
        responses={"200": Example("paid", "A paid purchase, with its invoice", PURCHASE)}
    ),
    "credits_purchases_create": OperationExamples(
        request=Example(
            "sandbox_card",
            "Buy the 50.00 pack with the sandbox provider's test card",
            PURCHASE_BODY,
            "With Stripe, leave `card` out and send the buyer to `checkout_url`.",
        ),
        responses={"201": Example("paid", "Paid at once: 50.00 + 20 % VAT = 60.00", PURCHASE)},
    ),
}
