"""Draft bodies of ``POST /api/v1/invoices`` (API.md, "Invoices") for the acceptance tests.

Each function returns a fresh JSON-able dict (decimal strings, as an integrator would send), covering
what a French seller must be able to issue: several VAT rates, line and document allowances/charges,
exempt (E), reverse charge (AE), intra-EU (K), export (G), not subject (O), foreign currency, prepaid
amount, goods/services/mixed and VAT on debits. ``EXPECTED`` holds hand-computed totals.

The seller block is not part of a body: it comes from the tenant's legal profile (tests/invoicing/
conftest.py ``seller``: Atelier Dupont SAS, SIREN 732829320, VAT FR44732829320).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Body = dict[str, Any]

FRENCH_BUYER: Body = {
    "name": "Client SARL",
    "siren": "552100554",
    "vat_id": "FR40552100554",
    "email": "ap@client.example",
    "address": {"line1": "1 rue de la Paix", "postcode": "75002", "city": "Paris", "country": "FR"},
}

GERMAN_BUYER: Body = {
    # Intra-EU: no SIREN, a German VAT id, routed by e-mail (EAS "EM").
    "name": "Beispiel Maschinenbau GmbH",
    "vat_id": "DE123456789",
    "email": "rechnung@beispiel-maschinenbau.de",
    "address": {"line1": "Hauptstraße 1", "postcode": "10115", "city": "Berlin", "country": "DE"},
    "electronic_address": {"value": "rechnung@beispiel-maschinenbau.de", "scheme": "EM"},
}

US_BUYER: Body = {
    "name": "Example Trading Inc.",
    "email": "ap@example-trading.com",
    "address": {
        "line1": "350 Fifth Avenue",
        "postcode": "10118",
        "city": "New York",
        "subdivision": "NY",
        "country": "US",
    },
    "electronic_address": {"value": "ap@example-trading.com", "scheme": "EM"},
}

PAYMENT: Body = {
    "means_code": "58",
    "iban": "FR7630006000011234567890189",
    "bic": "AGRIFRPP",
    "terms": "30 days net",
}


def line(
    description: str,
    quantity: str,
    unit_price: str,
    *,
    vat_category: str = "S",
    vat_rate: str | None = "20.00",
    unit_code: str = "C62",
    **extra: Any,
) -> Body:
    return {
        "description": description,
        "quantity": quantity,
        "unit_code": unit_code,
        "unit_price": unit_price,
        "vat_category": vat_category,
        "vat_rate": vat_rate,
        "allowances": [],
        "charges": [],
        **extra,
    }


def base(lines: list[Body], **overrides: Any) -> Body:
    body: Body = {
        "type": "invoice",
        "format": "facturx",
        "profile": "en16931",
        "due_date": "2026-12-24",
        "currency": "EUR",
        "buyer": copy.deepcopy(FRENCH_BUYER),
        "delivery": {
            "date": "2026-11-20",
            "address": {"line1": "3 quai Ouest", "postcode": "69002", "city": "Lyon", "country": "FR"},
        },
        "operation_category": "services",
        "vat_on_debits": False,
        "purchase_order_ref": "PO-4711",
        "delivery_note_ref": "BL-2026-118",
        "contract_ref": None,
        "lines": lines,
        "allowances": [],
        "charges": [],
        "payment": copy.deepcopy(PAYMENT),
        "notes": [],
        "sub_tenant": None,
    }
    body.update(copy.deepcopy(overrides))
    return body


# --- the bodies ---------------------------------------------------------------------------------


def simple() -> Body:
    """API.md's example: 2 h × 450.00 at 20 % = 900.00 + 180.00 = 1 080.00."""
    return base([line("Consulting", "2", "450.00", unit_code="HUR")])


def multi_rate() -> Body:
    """The four French rates in one invoice, goods and services (mixed).

    20 %: 2 × 450.00 + 7 × 3.333 (= 23.331 → 23.33) = 923.33 → VAT 184.666 → 184.67
    10 %: 12 × 18.50 = 222.00 → 22.20;  5.5 %: 3 × 39.90 = 119.70 → 6.5835 → 6.58;
    2.1 %: 120.00 → 2.52.  Net 1 385.03, VAT 215.97, total 1 601.00."""
    return base(
        [
            line("Conseil", "2", "450.00", unit_code="DAY", vat_rate="20.00"),
            line("Repas d'équipe", "12", "18.50", vat_rate="10.00"),
            line("Livres techniques", "3", "39.90", vat_rate="5.50"),
            line("Abonnement presse", "1", "120.00", vat_rate="2.10"),
            line("Câbles réseau", "7", "3.333", vat_rate="20"),
        ],
        operation_category="mixed",
    )


def line_allowances_charges() -> Body:
    """Goods with a 10 % line allowance, a line charge and a fixed line allowance.

    Line 1: 10 × 25.00 = 250.00 − 25.00 (10 %) + 5.00 (packing) = 230.00
    Line 2: 4 × 12.50 = 50.00 − 2.50 = 47.50.   Net 277.50, VAT 55.50, total 333.00."""
    return base(
        [
            line(
                "Cartouches d'encre",
                "10",
                "25.00",
                allowances=[{"percent": "10", "reason": "Remise quantité", "reason_code": "95"}],
                charges=[{"amount": "5.00", "reason": "Emballage", "reason_code": "ABL"}],
            ),
            line(
                "Ramettes papier",
                "4",
                "12.50",
                allowances=[{"amount": "2.50", "reason": "Remise fidélité", "reason_code": "95"}],
            ),
        ],
        operation_category="goods",
    )


def document_allowance_charge() -> Body:
    """Document-level allowance and charge, each with its VAT category and rate.

    Lines 1 000.00 at 20 % and 200.00 at 10 %; allowance 5 % of 1 000.00 = 50.00 (S 20 %); charge
    30.00 (S 20 %).  Net 1 180.00; S 20 %: 980.00 → 196.00; S 10 %: 200.00 → 20.00; total 1 396.00."""
    return base(
        [
            line("Audit sécurité", "1", "1000.00", vat_rate="20.00"),
            line("Formation sur site (restauration)", "1", "200.00", vat_rate="10.00"),
        ],
        allowances=[
            {
                "percent": "5",
                "base_amount": "1000.00",
                "reason": "Remise commerciale",
                "reason_code": "95",
                "vat_category": "S",
                "vat_rate": "20.00",
            }
        ],
        charges=[
            {
                "amount": "30.00",
                "reason": "Frais de déplacement",
                "reason_code": "FC",
                "vat_category": "S",
                "vat_rate": "20.00",
            }
        ],
    )


def exempt() -> Body:
    """VAT exempt training (E, CGI art. 261-4-4°): 3 days × 700.00 = 2 100.00, no VAT."""
    return base(
        [
            line(
                "Formation professionnelle continue",
                "3",
                "700.00",
                unit_code="DAY",
                vat_category="E",
                vat_rate="0",
            )
        ],
        vat_exemptions={
            "E": {"reason": "Exonération de TVA, article 261-4-4° du CGI", "code": "VATEX-FR-CGI261-4"}
        },
    )


def reverse_charge() -> Body:
    """Domestic reverse charge (AE), construction subcontracting: 8 400.00, no VAT."""
    return base(
        [line("Travaux de sous-traitance BTP", "1", "8400.00", vat_category="AE", vat_rate="0")],
        vat_exemptions={
            "AE": {"reason": "Autoliquidation, article 283-2 nonies du CGI", "code": "VATEX-EU-AE"}
        },
    )


def intra_eu() -> Body:
    """Intra-community supply of goods (K) to a German buyer, delivered in Germany: 15 800.00."""
    return base(
        [line("Machine-outil CN-200", "1", "15800.00", vat_category="K", vat_rate="0")],
        buyer=GERMAN_BUYER,
        delivery={
            "date": "2026-11-18",
            "party_name": "Beispiel Maschinenbau GmbH – Werk 2",
            "address": {
                "line1": "Industriestraße 7",
                "postcode": "20095",
                "city": "Hamburg",
                "country": "DE",
            },
        },
        operation_category="goods",
    )


def export() -> Body:
    """Export of goods to the United States (G): 20 × 64.90 = 1 298.00."""
    return base(
        [line("Pièces détachées", "20", "64.90", vat_category="G", vat_rate="0")],
        buyer=US_BUYER,
        delivery={"date": "2026-11-19"},
        operation_category="goods",
    )


def not_subject() -> Body:
    """Outside the scope of VAT (O): no rate; BR-O-02 wants neither seller nor buyer VAT id, so the
    buyer has none and the test issuing it clears the seller's."""
    buyer = copy.deepcopy(FRENCH_BUYER)
    buyer["vat_id"] = ""
    return base(
        [line("Refacturation de débours", "1", "230.00", vat_category="O", vat_rate=None)],
        buyer=buyer,
        vat_exemptions={"O": {"reason": "Non soumis à la TVA (débours)", "code": "VATEX-EU-O"}},
    )


def foreign_currency() -> Body:
    """Invoiced in USD, VAT accounted in EUR (BT-6) at 0.92: 1 500.00 USD + 300.00 USD VAT;
    BT-111 = 300.00 × 0.92 = 276.00 EUR."""
    return base(
        [line("Licence logicielle annuelle", "1", "1500.00")],
        currency="USD",
        tax_currency="EUR",
        tax_exchange_rate="0.92",
    )


def prepaid() -> Body:
    """A deposit already paid: 5 × 200.00 = 1 000.00 + 200.00 VAT = 1 200.00, 300.00 prepaid,
    300.00 + 900.00 due."""
    return base(
        [line("Développement spécifique", "5", "200.00", unit_code="DAY")],
        prepaid_amount="300.00",
    )


def goods_vat_on_debits() -> Body:
    """Goods, VAT on debits (BT-8 = 5): 100 × 4.20 at 20 % = 420.00 + 84.00."""
    return base(
        [line("Gobelets compostables", "100", "4.20")],
        operation_category="goods",
        vat_on_debits=True,
    )


def services_vat_on_debits() -> Body:
    """Services with VAT on debits: 1 month × 1 250.00 + 250.00 = 1 500.00."""
    return base(
        [
            line(
                "Infogérance novembre",
                "1",
                "1250.00",
                unit_code="MON",
                period_start="2026-11-01",
                period_end="2026-11-30",
            )
        ],
        vat_on_debits=True,
    )


BODIES: dict[str, Callable[[], Body]] = {
    "simple": simple,
    "multi_rate": multi_rate,
    "line_allowances_charges": line_allowances_charges,
    "document_allowance_charge": document_allowance_charge,
    "exempt": exempt,
    "reverse_charge": reverse_charge,
    "intra_eu": intra_eu,
    "export": export,
    "foreign_currency": foreign_currency,
    "prepaid": prepaid,
    "goods_vat_on_debits": goods_vat_on_debits,
    "services_vat_on_debits": services_vat_on_debits,
}
# Needs a seller without a VAT id (BR-O-02): issued by its own test.
SPECIAL_BODIES: dict[str, Callable[[], Body]] = {"not_subject": not_subject}

# (total_without_vat, total_vat, total_with_vat, amount_due), hand-computed above.
EXPECTED: dict[str, tuple[str, str, str, str]] = {
    "simple": ("900.00", "180.00", "1080.00", "1080.00"),
    "multi_rate": ("1385.03", "215.97", "1601.00", "1601.00"),
    "line_allowances_charges": ("277.50", "55.50", "333.00", "333.00"),
    "document_allowance_charge": ("1180.00", "216.00", "1396.00", "1396.00"),
    "exempt": ("2100.00", "0.00", "2100.00", "2100.00"),
    "reverse_charge": ("8400.00", "0.00", "8400.00", "8400.00"),
    "intra_eu": ("15800.00", "0.00", "15800.00", "15800.00"),
    "export": ("1298.00", "0.00", "1298.00", "1298.00"),
    "not_subject": ("230.00", "0.00", "230.00", "230.00"),
    "foreign_currency": ("1500.00", "300.00", "1800.00", "1800.00"),
    "prepaid": ("1000.00", "200.00", "1200.00", "900.00"),
    "goods_vat_on_debits": ("420.00", "84.00", "504.00", "504.00"),
    "services_vat_on_debits": ("1250.00", "250.00", "1500.00", "1500.00"),
}


# --- helpers of the API tests ---------------------------------------------------------------------

NUMBER_RE = r"^SELL1-\d{6}-\d{5}$"
FORMATS: list[tuple[str, str]] = [
    ("facturx", "minimum"),
    ("facturx", "basicwl"),
    ("facturx", "basic"),
    ("facturx", "en16931"),
    ("facturx", "extended"),
    ("cii", "en16931"),
    ("ubl", "en16931"),
]


def error_rules(response: Any) -> list[str]:
    """The ``rule`` (or ``field``) ids of an error response's details."""
    details = response.json()["error"].get("details") or []
    return [d.get("rule") or d.get("field") or "?" for d in details]


def create(client: Any, body: Body) -> Body:
    response = client.post("/api/v1/invoices", body, format="json")
    assert response.status_code == 201, response.content[:2000]
    return response.json()


def issue(client: Any, invoice_id: str, **headers: str) -> Any:
    return client.post(f"/api/v1/invoices/{invoice_id}/issue", **headers)


def create_and_issue(client: Any, body: Body) -> Body:
    draft = create(client, body)
    response = issue(client, draft["id"])
    assert response.status_code == 200, (response.status_code, error_rules(response), response.content[:3000])
    return response.json()


def download(client: Any, invoice_id: str, fmt: str) -> bytes:
    response = client.get(f"/api/v1/invoices/{invoice_id}/download", {"format": fmt})
    assert response.status_code == 200, (fmt, response.status_code, response.content[:2000])
    return response.content
