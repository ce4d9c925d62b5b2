"""Examples of the invoice API in the OpenAPI schema (attached by ``scell.schema.examples_hook``).

One story, drawn from API.md: Acme SAS (ACME1) bills Client SARL 2 hours of consulting at 450.00 with
20 % VAT, issues the draft as ACME1-202611-00001, then credits one hour. The totals of every answer are
computed here from the lines with EN 16931 rounding, so they always add up. The examples are checked
against the schema and sent to the real API by tests/scell/test_openapi_examples.py.
"""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from scell.schema import Example, OperationExamples

INVOICE_ID = "3f2b8c1e-7d4a-4e52-9b1f-6a0c2d8e4f71"
CREDIT_NOTE_ID = "b7e4d2a9-1c3f-4b8e-a5d6-0f9e8c7b6a51"
RECEIVED_ID = "9d1c7e2b-4a6f-4c3d-8e5b-2f1a0b9c8d73"
FLOW_ID = "5c0e9a7d-3b2f-4e1a-9c8d-7f6e5d4c3b2a"
DOCUMENT_SHA256 = "0138cfb079b1fd00f3765c18a5b94699256ef053f77e47968875d6c1df464ec8"
CREDIT_NOTE_SHA256 = "da9140571fcb3b25bca1d24a38d739de91fd952ec24e4fa84154cd5861f641c1"
RECEIVED_SHA256 = "7a1f3c9e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a"
CENT = Decimal("0.01")

ADDRESS_CLIENT = {"line1": "1 rue de la Paix", "postcode": "75002", "city": "Paris", "country": "FR"}
ADDRESS_SITE = {"line1": "3 quai Ouest", "postcode": "69002", "city": "Lyon", "country": "FR"}

# The draft body of API.md, as an integrator sends it (decimal strings).
DRAFT_BODY: dict[str, Any] = {
    "type": "invoice",
    "format": "facturx",
    "profile": "en16931",
    "issue_date": "2026-11-24",
    "due_date": "2026-12-24",
    "currency": "EUR",
    "buyer": {
        "name": "Client SARL",
        "siren": "552100554",
        "vat_id": "FR40552100554",
        "email": "ap@client.example",
        "address": ADDRESS_CLIENT,
    },
    "delivery": {"date": "2026-11-20", "address": ADDRESS_SITE},
    "operation_category": "services",
    "vat_on_debits": False,
    "purchase_order_ref": "PO-4711",
    "delivery_note_ref": "BL-2026-118",
    "contract_ref": None,
    "lines": [
        {
            "description": "Consulting",
            "quantity": "2",
            "unit_code": "HUR",
            "unit_price": "450.00",
            "vat_category": "S",
            "vat_rate": "20.00",
            "allowances": [],
            "charges": [],
        }
    ],
    "allowances": [],
    "charges": [],
    "payment": {
        "means_code": "58",
        "iban": "FR7630006000011234567890189",
        "bic": "AGRIFRPP",
        "terms": "30 days net",
    },
    "notes": [],
    "sub_tenant": None,
}

# PATCH: only the fields sent change; ``lines`` replaces every line.
PATCH_BODY: dict[str, Any] = {
    "due_date": "2026-12-31",
    "lines": [
        {
            "description": "Consulting",
            "quantity": "3",
            "unit_code": "HUR",
            "unit_price": "450.00",
            "vat_category": "S",
            "vat_rate": "20.00",
        }
    ],
}

# The seller block frozen at issue, from the tenant's legal profile.
SELLER: dict[str, Any] = {
    "name": "Acme SAS",
    "siren": "732829320",
    "siret": "73282932000074",
    "vat_id": "FR44732829320",
    "legal_form": "SAS au capital de 10 000 €",
    "email": "facturation@acme.example",
    "iban": "FR7630006000011234567890189",
    "bic": "AGRIFRPP",
    "address": {
        "line1": "1 rue de Rivoli",
        "line2": "",
        "postcode": "75001",
        "city": "Paris",
        "country": "FR",
    },
    "electronic_address": {"value": "732829320", "scheme": "0225"},
    "presentation": {"footer": "", "logo": "", "notes": {}},
}


def _address(address: dict[str, str]) -> dict[str, str]:
    return {"line1": "", "line2": "", "line3": "", "postcode": "", "city": "", "subdivision": ""} | address


BUYER: dict[str, Any] = {
    "name": "Client SARL",
    "siren": "552100554",
    "siret": "",
    "vat_id": "FR40552100554",
    "email": "ap@client.example",
    "contact_name": "",
    "contact_phone": "",
    "address": _address(ADDRESS_CLIENT),
    "electronic_address": None,
}
DELIVERY: dict[str, Any] = {"date": "2026-11-20", "party_name": "", "address": _address(ADDRESS_SITE)}
PAYMENT: dict[str, Any] = DRAFT_BODY["payment"] | {"account_name": "", "remittance_info": ""}


def _quantity(value: Decimal) -> str:
    """As the API writes quantities, prices and rates: no trailing zeros."""
    normalized = value.normalize()
    return format(normalized.quantize(Decimal(1)) if normalized.as_tuple().exponent > 0 else normalized, "f")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _lines(lines: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """(description, quantity, unit price) of consulting hours at 20 % VAT."""
    return [
        {
            "position": position,
            "description": description,
            "detail": "",
            "quantity": _quantity(Decimal(quantity)),
            "unit_code": "HUR",
            "unit_price": _quantity(Decimal(price)),
            "price_base_quantity": None,
            "vat_category": "S",
            "vat_rate": "20",
            "allowances": [],
            "charges": [],
            "seller_item_id": "",
            "period_start": None,
            "period_end": None,
            "net_amount": _money(Decimal(quantity) * Decimal(price)),
        }
        for position, (description, quantity, price) in enumerate(lines, start=1)
    ]


def invoice(
    *,
    id: str = INVOICE_ID,
    number: str,
    status: str,
    lines: list[tuple[str, str, str]],
    created_at: str = "2026-11-24T09:12:03.418205Z",
    **fields: Any,
) -> dict[str, Any]:
    """An invoice as the API answers it, with totals computed from ``lines`` (BR-CO-10…17: VAT per
    category and rate rounded to the cent)."""
    out_lines = _lines(lines)
    net = sum((Decimal(line["net_amount"]) for line in out_lines), Decimal("0.00"))
    vat = (net * Decimal("0.20")).quantize(CENT, rounding=ROUND_HALF_UP)
    gross = net + vat
    body: dict[str, Any] = {
        "id": id,
        "number": number,
        "status": status,
        "type": "invoice",
        "livemode": False,
        "sub_tenant": None,
        "format": "facturx",
        "profile": "en16931",
        "issue_date": "2026-11-24",
        "due_date": "2026-12-24",
        "currency": "EUR",
        "tax_currency": "",
        "tax_exchange_rate": None,
        "seller": {},
        "buyer": BUYER,
        "delivery": DELIVERY,
        "operation_category": "services",
        "vat_on_debits": False,
        "purchase_order_ref": "PO-4711",
        "delivery_note_ref": "BL-2026-118",
        "contract_ref": "",
        "buyer_reference": "",
        "project_ref": "",
        "lines": out_lines,
        "allowances": [],
        "charges": [],
        "payment": PAYMENT,
        "notes": [],
        "vat_exemptions": {},
        "preceding_invoice": None,
        "prepaid_amount": "0.00",
        "total_without_vat": _money(net),
        "total_vat": _money(vat),
        "total_with_vat": _money(gross),
        "amount_due": _money(gross),
        "vat_breakdown": [
            {
                "category": "S",
                "rate": "20.00",
                "taxable_amount": _money(net),
                "tax_amount": _money(vat),
                "exemption_reason": "",
                "exemption_reason_code": "",
            }
        ],
        "totals": {
            "line_total": _money(net),
            "allowance_total": "0.00",
            "charge_total": "0.00",
            "tax_exclusive": _money(net),
            "tax_total": _money(vat),
            "tax_inclusive": _money(gross),
            "prepaid": "0.00",
            "rounding": "0.00",
            "amount_due": _money(gross),
        },
        "document_sha256": "",
        "source_syntax": "",
        "import_report": None,
        "transmission": None,
        "lifecycle": None,
        "created_at": created_at,
        "updated_at": created_at,
        "issued_at": None,
    }
    unknown = set(fields) - set(body)
    if unknown:
        raise ValueError(f"not invoice fields: {sorted(unknown)}")
    return copy.deepcopy(body | fields)


def lifecycle(code: str = "", **fields: Any) -> dict[str, Any]:
    labels = {
        "": ("", "", ""),
        "205": ("approved", "Approved", "Approuvée"),
        "207": ("disputed", "Disputed", "En litige"),
        "210": ("refused", "Refused", "Refusée"),
        "212": ("cashed", "Cashed", "Encaissée"),
    }
    slug, label, label_fr = labels[code]
    return {
        "status_code": code,
        "status": slug,
        "label": label,
        "label_fr": label_fr,
        "reason_code": "",
        "reason": "",
        "status_at": None,
        "paid": False,
        "paid_at": None,
        "amount_paid": "0.00",
    } | fields


def transmission(state: str, **fields: Any) -> dict[str, Any]:
    return {
        "state": state,
        "target": "simulator",  # sandbox invoices go to the PDP simulator, live ones to the PDP
        "flow_id": "",
        "tracking_id": INVOICE_ID,
        "attempts": 0,
        "last_error": "",
        "rejection": [],
        "submitted_at": None,
        "next_attempt_at": None,
    } | fields


HOURS = [("Consulting", "2", "450.00")]
ISSUED_AT = "2026-11-24T09:15:41.906489Z"

DRAFT = invoice(number="DRAFT-00001", status="draft", lines=HOURS)
PATCHED = invoice(
    number="DRAFT-00001",
    status="draft",
    lines=[("Consulting", "3", "450.00")],
    due_date="2026-12-31",
    updated_at="2026-11-24T09:14:27.031558Z",
)
ISSUED = invoice(
    number="ACME1-202611-00001",
    status="issued",
    lines=HOURS,
    seller=SELLER,
    document_sha256=DOCUMENT_SHA256,
    transmission=transmission("queued"),
    lifecycle=lifecycle(),
    updated_at=ISSUED_AT,
    issued_at=ISSUED_AT,
)
TRANSMITTED = ISSUED | {
    "transmission": transmission(
        "accepted", flow_id=FLOW_ID, attempts=1, submitted_at="2026-11-24T09:15:44.120731Z"
    )
}
PAID = TRANSMITTED | {
    "lifecycle": lifecycle(
        "212",
        status_at="2026-12-20T10:02:11.513027Z",
        paid=True,
        paid_at="2026-12-20T10:02:11.513027Z",
        amount_paid="1080.00",
    ),
    "updated_at": "2026-12-20T10:02:11.513027Z",
}
CREDIT_NOTE = invoice(
    id=CREDIT_NOTE_ID,
    number="ACME1-202611-00002",
    status="issued",
    type="credit_note",
    lines=[("Consulting", "1", "450.00")],
    issue_date="2026-11-25",
    due_date=None,
    seller=SELLER,
    preceding_invoice={"id": INVOICE_ID, "number": "ACME1-202611-00001", "issue_date": "2026-11-24"},
    notes=[{"text": "Une heure non réalisée.", "subject": "AAI"}],
    document_sha256=CREDIT_NOTE_SHA256,
    transmission=transmission("queued", tracking_id=CREDIT_NOTE_ID),
    lifecycle=lifecycle(),
    created_at="2026-11-25T14:03:10.940483Z",
    updated_at="2026-11-25T14:03:10.974595Z",
    issued_at="2026-11-25T14:03:10.974595Z",
)

# A supplier invoice received by Acme SAS (import, or delivered by the sandbox's PDP simulator).
SUPPLIER = {
    "name": "Fournitures Durand SARL",
    "siren": "443061841",
    "siret": "44306184100013",
    "vat_id": "FR11443061841",
    "email": "compta@durand.example",
    "address": {
        "line1": "8 rue des Artisans",
        "line2": "",
        "postcode": "69003",
        "city": "Lyon",
        "country": "FR",
    },
    "electronic_address": {"value": "443061841", "scheme": "0225"},
}
ACME_AS_BUYER = {
    "name": "Acme SAS",
    "siren": "732829320",
    "siret": "",
    "vat_id": "FR44732829320",
    "email": "ap@acme.example",
    "address": {
        "line1": "1 rue de Rivoli",
        "line2": "",
        "postcode": "75001",
        "city": "Paris",
        "country": "FR",
    },
    "electronic_address": {"value": "732829320", "scheme": "0225"},
}
RECEIVED = invoice(
    id=RECEIVED_ID,
    number="F-2026-0412",
    status="received",
    format="cii",
    lines=[("Maintenance du parc informatique", "4", "95.00")],
    issue_date="2026-11-23",
    due_date="2026-12-23",
    seller=SUPPLIER,
    buyer=ACME_AS_BUYER,
    delivery=None,
    operation_category="",
    purchase_order_ref="",
    delivery_note_ref="",
    payment={"means_code": "58", "iban": "FR7610107001011234567890129", "bic": "BREDFRPP", "terms": ""},
    notes=[{"text": "B2B", "subject": "BAR"}],
    document_sha256=RECEIVED_SHA256,
    source_syntax="cii",
    import_report={"valid": True, "syntax": "cii", "profile": "en16931", "issues": []},
    created_at="2026-11-24T11:30:52.696066Z",
)
REASON_BODY = {"reason_code": "TX_TVA_ERR", "reason": "Le taux de TVA applicable est 10 %."}

# A CII file, base64: shortened here (a real file is a few kilobytes).
CII_BASE64 = "PD94bWwgdmVyc2lvbj0iMS4wIiBlbmNvZGluZz0iVVRGLTgiPz4KPHJzbTpDcm9zc0luZHVzdHJ5SW52b2ljZSB4bWxucz…"
UPLOAD_BODY = {"document_base64": CII_BASE64}
UPLOAD_NOTE = (
    "`document_base64` is shortened here. The file may also be sent as multipart `file`, or as the "
    "request body itself (`application/xml`, `application/pdf`)."
)


def _page(*items: dict[str, Any], next_cursor: str | None = None) -> dict[str, Any]:
    return {"data": list(items), "next_cursor": next_cursor}


EXAMPLES: dict[str, OperationExamples] = {
    "invoices_create": OperationExamples(
        request=Example("draft", "A draft: 2 h of consulting at 450.00, 20 % VAT (API.md)", DRAFT_BODY),
        responses={"201": Example("draft", "The draft, numbered DRAFT-NNNNN, with its totals", DRAFT)},
    ),
    "invoices_list": OperationExamples(
        responses={
            "200": Example(
                "page",
                "Newest first; pass next_cursor as ?cursor= for the next page",
                _page(CREDIT_NOTE, ISSUED, next_cursor="cD0yMDI2LTExLTI0KzA5JTNBMTIlM0EwMy40MTgyMDU"),
            )
        }
    ),
    "invoices_retrieve": OperationExamples(
        responses={"200": Example("issued", "An issued invoice, accepted by the PDP", TRANSMITTED)}
    ),
    "invoices_partial_update": OperationExamples(
        request=Example("lines", "Change the due date and replace the lines", PATCH_BODY),
        responses={"200": Example("draft", "The draft with its totals recomputed", PATCHED)},
    ),
    "invoices_issue_create": OperationExamples(
        responses={
            "200": Example(
                "issued",
                "Numbered ACME1-202611-00001, frozen, queued for the PDP",
                ISSUED,
            )
        }
    ),
    "invoices_credit_note_create": OperationExamples(
        request=Example(
            "partial",
            "Credit 1 of the 2 hours of line 1 and issue the credit note at once",
            {
                "lines": [{"line": 1, "quantity": "1"}],
                "notes": [{"text": "Une heure non réalisée.", "subject": "AAI"}],
                "issue": True,
            },
        ),
        responses={"201": Example("credit_note", "The credit note (381), issued", CREDIT_NOTE)},
    ),
    "invoices_download_retrieve": OperationExamples(
        responses={"200": Example("json", "format=json: the invoice as the API returns it", ISSUED)},
        media={
            "200": "The document, by `format`: `facturx` (default) a PDF/A-3 with the CII XML embedded "
            "and `pdf` a readable PDF, both `application/pdf`; `cii` (CII D16B) and `ubl` (UBL 2.1) "
            "`application/xml`; `json` the invoice as `application/json`. The `X-Content-SHA256` "
            "header carries the file's SHA-256."
        },
    ),
    "invoices_events_list": OperationExamples(
        responses={
            "200": Example(
                "lifecycle",
                "Created, issued, transmitted, cashed (oldest first)",
                _page(
                    {
                        "id": "b408147a-ad40-4dba-8c4c-f6c179cc1114",
                        "type": "created",
                        "status_code": "",
                        "data": {},
                        "created_at": "2026-11-24T09:12:03.421072Z",
                    },
                    {
                        "id": "ea36e0a3-1586-47d7-b55a-93fed9b4a583",
                        "type": "issued",
                        "status_code": "",
                        "data": {"number": "ACME1-202611-00001", "sha256": DOCUMENT_SHA256},
                        "created_at": "2026-11-24T09:15:41.913772Z",
                    },
                    {
                        "id": "0c6b1d2e-8f4a-4b7c-9e3d-5a2f1c0b9e8d",
                        "type": "transmitted",
                        "status_code": "",
                        "data": {
                            "flow": "1e2d3c4b-5a69-4788-9a0b-c1d2e3f4a5b6",
                            "flow_id": FLOW_ID,
                            "target": "simulator",
                            "sha256": DOCUMENT_SHA256,
                            "syntax": "cii",
                        },
                        "created_at": "2026-11-24T09:15:44.120731Z",
                    },
                    {
                        "id": "f733b633-a902-494b-966d-b550bd25574e",
                        "type": "paid",
                        "status_code": "212",
                        "data": {"amount": "1080.00", "currency": "EUR"},
                        "created_at": "2026-12-20T10:02:11.522964Z",
                    },
                ),
            )
        }
    ),
    "invoices_validate_create": OperationExamples(
        request=Example("base64", "A CII file as base64 in JSON", UPLOAD_BODY, UPLOAD_NOTE),
        responses={
            "200": Example(
                "valid",
                "The file passes every rule",
                {"valid": True, "syntax": "cii", "profile": "en16931", "issues": []},
            )
        },
    ),
    "invoices_import_create": OperationExamples(
        request=Example("base64", "A supplier's CII invoice as base64 in JSON", UPLOAD_BODY, UPLOAD_NOTE),
        responses={"201": Example("received", "The received invoice, with its import report", RECEIVED)},
    ),
    "invoices_simulate_incoming_create": OperationExamples(
        request=Example("base64", "The supplier invoice the simulator delivers", UPLOAD_BODY, UPLOAD_NOTE),
        responses={"201": Example("received", "The invoice as received from the PDP", RECEIVED)},
    ),
    "invoices_approve_create": OperationExamples(
        responses={
            "200": Example(
                "approved",
                "205 Approuvée sent to the supplier",
                RECEIVED | {"lifecycle": lifecycle("205", status_at="2026-11-24T15:20:07.718635Z")},
            )
        }
    ),
    "invoices_dispute_create": OperationExamples(
        request=Example("vat_rate", "Dispute: wrong VAT rate", REASON_BODY),
        responses={
            "200": Example(
                "disputed",
                "207 En litige sent to the supplier",
                RECEIVED
                | {"lifecycle": lifecycle("207", status_at="2026-11-24T15:20:07.718635Z", **REASON_BODY)},
            )
        },
    ),
    "invoices_refuse_create": OperationExamples(
        request=Example(
            "duplicate", "Refuse: already received", {"reason_code": "DOUBLON", "reason": "Déjà reçue."}
        ),
        responses={
            "200": Example(
                "refused",
                "210 Refusée sent to the supplier",
                RECEIVED
                | {
                    "lifecycle": lifecycle(
                        "210",
                        status_at="2026-11-24T15:20:07.718635Z",
                        reason_code="DOUBLON",
                        reason="Déjà reçue.",
                    )
                },
            )
        },
    ),
    "invoices_statuses_create": OperationExamples(
        request=Example(
            "cashed",
            "212 Encaissée: the amount cashed per VAT rate",
            {"code": "212", "amounts": [{"amount": "1080.00", "vat_rate": "20.00"}]},
        ),
        responses={"200": Example("cashed", "The invoice, marked paid", PAID)},
    ),
    "invoices_mark_paid_create": OperationExamples(
        request=Example(
            "full", "Paid in full at 20 % VAT", {"amounts": [{"amount": "1080.00", "vat_rate": "20.00"}]}
        ),
        responses={"200": Example("cashed", "212 Encaissée sent; the invoice is paid", PAID)},
    ),
    "invoices_simulate_status_create": OperationExamples(
        request=Example(
            "approved", "The simulated buyer approves the invoice (205)", {"code": "205", "reason_code": ""}
        ),
        responses={
            "200": Example(
                "approved",
                "The invoice with the buyer's 205",
                TRANSMITTED | {"lifecycle": lifecycle("205", status_at="2026-11-24T09:20:31.004215Z")},
            )
        },
    ),
    "invoices_transmit_create": OperationExamples(
        responses={
            "200": Example(
                "requeued",
                "The failed transmission queued again",
                ISSUED
                | {
                    "transmission": transmission(
                        "retrying",
                        attempts=3,
                        last_error="PDP unreachable: timed out",
                        next_attempt_at="2026-11-24T10:15:41.906489Z",
                    )
                },
            )
        }
    ),
}
