"""Shared sample invoices: one ready-to-compute ``InvoiceDocument`` per scenario Scell must support.

Every sample is a French B2B invoice (or B2B international, for export/intra-EU) that, once passed
through ``invoicing.computation.compute``, must pass the Factur-X XSD, the EN 16931 Schematron and the
French BR-FR Schematron. They carry what BR-FR demands on top of EN 16931:

* BR-FR-05: notes PMT (recovery indemnity), PMD (late payment penalties), AAB (early payment discount);
* BR-FR-20/11/21: a ``BAR`` note giving the treatment (``B2B`` between French companies, ``B2BINT`` with a
  foreign buyer); for ``B2B`` the buyer SIREN (BT-47, scheme 0002) is required and BT-49 must start with it
  with scheme 0225;
* BR-FR-08: BT-23 business process in the French list (S1 services, B1 goods, M1 mixed...);
* BR-FR-10: seller SIREN; BR-FR-12/13: BT-34 and BT-49 electronic addresses are mandatory;
* BR-FR-CO-04/05: corrective (384) and credit notes (381) reference the preceding invoice with its date;
* BR-FR-CO-12: a non-EUR invoice gives BT-6 = EUR and BT-111.

The functions return fresh objects on every call, so tests may mutate them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from invoicing.document import (
    Address,
    AllowanceCharge,
    Delivery,
    ElectronicAddress,
    InvoiceDocument,
    Line,
    Note,
    Party,
    Payment,
    PrecedingInvoice,
    TypeCode,
)

D = Decimal

ISSUE_DATE = dt.date(2025, 3, 14)
DUE_DATE = dt.date(2025, 4, 13)

SELLER_SIREN = "732829320"
SELLER_SIRET = "73282932000074"
SELLER_VAT = "FR44732829320"
BUYER_SIREN = "552100554"
BUYER_SIRET = "55210055400013"
BUYER_VAT = "FR40552100554"


def french_notes(treatment: str = "B2B") -> list[Note]:
    """The notes every French invoice carries (BR-FR-05 PMT/PMD/AAB, BR-FR-20 BAR)."""
    return [
        Note(
            subject="PMT",
            text="Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 €.",
        ),
        Note(
            subject="PMD",
            text="Pénalités de retard : trois fois le taux d'intérêt légal, exigibles dès le lendemain "
            "de la date d'échéance.",
        ),
        Note(subject="AAB", text="Pas d'escompte pour paiement anticipé."),
        Note(subject="BAR", text=treatment),
    ]


def seller(*, with_vat: bool = True) -> Party:
    return Party(
        name="Atelier Numérique Dupont SAS",
        trading_name="Atelier Dupont",
        siren=SELLER_SIREN,
        siret=SELLER_SIRET,
        vat_id=SELLER_VAT if with_vat else "",
        legal_form="SAS au capital de 10 000 €, RCS Paris 732 829 320",
        address=Address(
            line1="12 rue de la Paix",
            city="Paris",
            postcode="75002",
            country="FR",
        ),
        electronic_address=ElectronicAddress(SELLER_SIREN, "0225"),
        contact_name="Claire Dupont",
        contact_phone="+33 1 23 45 67 89",
        contact_email="facturation@atelier-dupont.fr",
    )


def french_buyer(*, with_vat: bool = True) -> Party:
    return Party(
        name="Industries Clientes SA",
        siren=BUYER_SIREN,
        siret=BUYER_SIRET,
        vat_id=BUYER_VAT if with_vat else "",
        address=Address(
            line1="5 avenue des Champs",
            line2="Bâtiment B",
            city="Lyon",
            postcode="69002",
            country="FR",
        ),
        electronic_address=ElectronicAddress(BUYER_SIREN, "0225"),
        contact_email="compta@industries-clientes.fr",
    )


def german_buyer() -> Party:
    # Intra-EU buyer: no SIREN, a German VAT id, routed by e-mail (EAS "EM").
    return Party(
        name="Beispiel Maschinenbau GmbH",
        vat_id="DE123456789",
        address=Address(line1="Hauptstraße 1", city="Berlin", postcode="10115", country="DE"),
        electronic_address=ElectronicAddress("rechnung@beispiel-maschinenbau.de", "EM"),
    )


def us_buyer() -> Party:
    return Party(
        name="Example Trading Inc.",
        address=Address(
            line1="350 Fifth Avenue", city="New York", postcode="10118", subdivision="NY", country="US"
        ),
        electronic_address=ElectronicAddress("ap@example-trading.com", "EM"),
    )


def payment() -> Payment:
    return Payment(
        means_code="58",
        iban="FR7630006000011234567890189",
        bic="AGRIFRPP",
        account_name="Atelier Numérique Dupont SAS",
        terms="Paiement à 30 jours par virement SEPA.",
    )


def _base(number: str, lines: list[Line], *, business_process: str = "S1", **kwargs) -> InvoiceDocument:
    kwargs.setdefault("buyer", french_buyer())
    kwargs.setdefault("notes", french_notes())
    doc = InvoiceDocument(
        number=number,
        type_code=kwargs.pop("type_code", TypeCode.COMMERCIAL_INVOICE),
        issue_date=ISSUE_DATE,
        currency=kwargs.pop("currency", "EUR"),
        seller=kwargs.pop("seller", seller()),
        lines=lines,
        business_process=business_process,
        due_date=DUE_DATE,
        payment=payment(),
        buyer_reference="ACHAT-2025-042",
        purchase_order_ref="PO-88123",
        **kwargs,
    )
    return doc


def _line(
    line_id: str,
    name: str,
    quantity: str,
    price: str,
    *,
    unit: str = "C62",
    category: str = "S",
    rate: str | None = "20",
    **kwargs,
) -> Line:
    return Line(
        id=line_id,
        name=name,
        quantity=D(quantity),
        unit_code=unit,
        net_price=D(price),
        vat_category=category,
        vat_rate=None if rate is None else D(rate),
        **kwargs,
    )


# --- scenarios ---------------------------------------------------------------------------------


def simple_standard() -> InvoiceDocument:
    """One 20 % line of services.  Expected: 10 h × 85.00 = 850.00, VAT 170.00, total 1 020.00."""
    return _base(
        "FA-2025-0001",
        [_line("1", "Développement logiciel", "10", "85.00", unit="HUR")],
    )


def multi_rate() -> InvoiceDocument:
    """The four French rates in one invoice (20, 10, 5.5, 2.1), goods and services (M1)."""
    return _base(
        "FA-2025-0002",
        [
            _line("1", "Conseil", "2", "450.00", unit="DAY", rate="20"),
            _line("2", "Repas d'équipe", "12", "18.50", rate="10"),
            _line("3", "Livres techniques", "3", "39.90", rate="5.5"),
            _line("4", "Abonnement presse", "1", "120.00", rate="2.1"),
            _line("5", "Câbles réseau", "7", "3.333", rate="20"),
        ],
        business_process="M1",
    )


def line_allowances_charges() -> InvoiceDocument:
    """Line-level allowances (amount and percent) and a line charge (BG-27, BG-28)."""
    return _base(
        "FA-2025-0003",
        [
            _line(
                "1",
                "Écran 27 pouces",
                "4",
                "250.00",
                gross_price=D("250.00"),
                allowances=[
                    AllowanceCharge(
                        is_charge=False,
                        amount=None,  # type: ignore[arg-type]  # computed from the percent
                        percent=D("10"),
                        reason="Remise quantité",
                        reason_code="95",
                    )
                ],
                charges=[
                    AllowanceCharge(
                        is_charge=True, amount=D("15.00"), reason="Emballage renforcé", reason_code="ABL"
                    )
                ],
            ),
            _line(
                "2",
                "Support mural",
                "4",
                "32.50",
                allowances=[
                    AllowanceCharge(
                        is_charge=False, amount=D("5.00"), reason="Geste commercial", reason_code="100"
                    )
                ],
            ),
        ],
        business_process="B1",
        delivery=Delivery(date=dt.date(2025, 3, 12)),
    )


def document_allowance_charge() -> InvoiceDocument:
    """Document-level allowance (percent of the 20 % lines) and charge (BG-20, BG-21)."""
    return _base(
        "FA-2025-0004",
        [
            _line("1", "Maintenance annuelle", "1", "1200.00", rate="20"),
            _line("2", "Formation sur site", "2", "600.00", unit="DAY", rate="20"),
            _line("3", "Manuel utilisateur imprimé", "5", "12.00", rate="5.5"),
        ],
        allowances=[
            AllowanceCharge(
                is_charge=False,
                amount=None,  # type: ignore[arg-type]  # 5 % of 2 400.00 = 120.00
                base_amount=D("2400.00"),
                percent=D("5"),
                reason="Remise fidélité",
                reason_code="95",
                vat_category="S",
                vat_rate=D("20"),
            )
        ],
        charges=[
            AllowanceCharge(
                is_charge=True,
                amount=D("35.00"),
                reason="Frais de déplacement",
                reason_code="FC",
                vat_category="S",
                vat_rate=D("20"),
            )
        ],
    )


def exempt() -> InvoiceDocument:
    """VAT exempt training (E, CGI art. 261-4-4°)."""
    return _base(
        "FA-2025-0005",
        [_line("1", "Formation professionnelle continue", "3", "700.00", unit="DAY", category="E", rate="0")],
        exemption_reasons={
            "E": ("VATEX-FR-CGI261-4", "Exonération de TVA, article 261-4-4° du CGI"),
        },
    )


def reverse_charge() -> InvoiceDocument:
    """Domestic reverse charge (AE), construction subcontracting (CGI art. 283-2 nonies)."""
    return _base(
        "FA-2025-0006",
        [_line("1", "Travaux de sous-traitance BTP", "1", "8400.00", category="AE", rate="0")],
        exemption_reasons={"AE": ("VATEX-EU-AE", "Autoliquidation, article 283-2 nonies du CGI")},
    )


def intra_eu() -> InvoiceDocument:
    """Intra-community supply of goods (K) to Germany: delivery date and country required (BR-IC-11/12)."""
    return _base(
        "FA-2025-0007",
        [_line("1", "Machine-outil CN-200", "1", "15800.00", category="K", rate="0")],
        business_process="B1",
        buyer=german_buyer(),
        notes=french_notes("B2BINT"),
        delivery=Delivery(
            date=dt.date(2025, 3, 10),
            party_name="Beispiel Maschinenbau GmbH – Werk 2",
            address=Address(line1="Industriestraße 7", city="Hamburg", postcode="20095", country="DE"),
        ),
        exemption_reasons={
            "K": ("VATEX-EU-IC", "Exonération de TVA, article 262 ter I du CGI (livraison intracom.)")
        },
    )


def export() -> InvoiceDocument:
    """Export of goods outside the EU (G)."""
    return _base(
        "FA-2025-0008",
        [_line("1", "Pièces détachées", "20", "64.90", category="G", rate="0")],
        business_process="B1",
        buyer=us_buyer(),
        notes=french_notes("B2BINT"),
        delivery=Delivery(date=dt.date(2025, 3, 11)),
        exemption_reasons={"G": ("VATEX-EU-G", "Exonération de TVA, article 262 I du CGI (exportation)")},
    )


def not_subject() -> InvoiceDocument:
    """Operation outside the scope of VAT (O): no VAT rate, no seller or buyer VAT id (BR-O-02)."""
    return _base(
        "FA-2025-0009",
        [_line("1", "Refacturation de débours", "1", "230.00", category="O", rate=None)],
        seller=seller(with_vat=False),
        buyer=french_buyer(with_vat=False),
        exemption_reasons={"O": ("VATEX-EU-O", "Non soumis à la TVA (débours)")},
    )


def zero_rated() -> InvoiceDocument:
    """Zero-rated supply (Z): rate 0, no exemption reason (BR-Z-10)."""
    return _base(
        "FA-2025-0010",
        [_line("1", "Fourniture à taux zéro", "10", "15.00", category="Z", rate="0")],
        business_process="B1",
    )


def credit_note() -> InvoiceDocument:
    """Credit note (381) for part of FA-2025-0001, referencing it with its date (BR-FR-CO-05)."""
    return _base(
        "AV-2025-0001",
        [_line("1", "Avoir : heures non consommées", "2", "85.00", unit="HUR")],
        type_code=TypeCode.CREDIT_NOTE,
        preceding_invoices=[PrecedingInvoice("FA-2025-0001", ISSUE_DATE)],
    )


def corrective() -> InvoiceDocument:
    """Corrective invoice (384) replacing FA-2025-0002: exactly one reference with date (BR-FR-CO-04)."""
    return _base(
        "FA-2025-0011",
        [_line("1", "Conseil (prix corrigé)", "2", "475.00", unit="DAY")],
        type_code=TypeCode.CORRECTED_INVOICE,
        preceding_invoices=[PrecedingInvoice("FA-2025-0002", dt.date(2025, 3, 1))],
    )


def foreign_currency() -> InvoiceDocument:
    """Invoice in USD, VAT accounted in EUR (BT-6, BT-111; BR-FR-CO-12): rate 0.9215 EUR per USD."""
    return _base(
        "FA-2025-0012",
        [_line("1", "Licence logicielle annuelle", "3", "1999.00")],
        currency="USD",
        tax_currency="EUR",
        tax_exchange_rate=D("0.9215"),
    )


def prepaid() -> InvoiceDocument:
    """Final invoice with a 300.00 down payment already received (BT-113)."""
    doc = _base(
        "FA-2025-0013",
        [_line("1", "Refonte du site web", "1", "2500.00")],
        business_process="S1",
    )
    doc.totals.prepaid = D("300.00")
    return doc


def services() -> InvoiceDocument:
    """Services only (BT-23 = S1), with an invoicing period."""
    return _base(
        "FA-2025-0014",
        [_line("1", "Infogérance mensuelle", "1", "990.00", unit="MON")],
        business_process="S1",
        invoice_period_start=dt.date(2025, 2, 1),
        invoice_period_end=dt.date(2025, 2, 28),
    )


def goods() -> InvoiceDocument:
    """Goods only (BT-23 = B1), with a delivery date."""
    return _base(
        "FA-2025-0015",
        [
            _line("1", "Clavier mécanique", "5", "89.00", seller_item_id="KB-MX-01"),
            _line("2", "Souris ergonomique", "5", "49.00", seller_item_id="MS-ERG-02"),
        ],
        business_process="B1",
        delivery=Delivery(date=dt.date(2025, 3, 13)),
    )


def mixed() -> InvoiceDocument:
    """Goods and services (BT-23 = M1)."""
    return _base(
        "FA-2025-0016",
        [
            _line("1", "Serveur rack 1U", "1", "2890.00"),
            _line("2", "Installation et configuration", "6", "95.00", unit="HUR"),
        ],
        business_process="M1",
        delivery=Delivery(date=dt.date(2025, 3, 13)),
    )


SCENARIOS = {
    "simple_standard": simple_standard,
    "multi_rate": multi_rate,
    "line_allowances_charges": line_allowances_charges,
    "document_allowance_charge": document_allowance_charge,
    "exempt": exempt,
    "reverse_charge": reverse_charge,
    "intra_eu": intra_eu,
    "export": export,
    "not_subject": not_subject,
    "zero_rated": zero_rated,
    "credit_note": credit_note,
    "corrective": corrective,
    "foreign_currency": foreign_currency,
    "prepaid": prepaid,
    "services": services,
    "goods": goods,
    "mixed": mixed,
}


def all_samples() -> dict[str, InvoiceDocument]:
    """Every scenario by name, freshly built and not yet computed."""
    return {name: build() for name, build in SCENARIOS.items()}
