"""From the stored invoice (model rows + JSON blocks) to the EN 16931 semantic document, and back for
imported invoices. The French reform's mentions are filled here, from the invoice and the legal profile.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

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
)
from invoicing.models import Invoice, InvoiceLine
from scell.models import SubTenant, Tenant

# BT-23 business process codes for the French framework (BR-FR-08): goods, services, mixed.
BUSINESS_PROCESS = {"goods": "B1", "services": "S1", "mixed": "M1"}

# Default exemption reasons per VAT category as (BT-121 VATEX code, BT-120 text), the order of
# ``InvoiceDocument.exemption_reasons``; E has no default because the legal basis differs (CGI article
# 261 ...): the caller must say which one applies (BR-E-10).
DEFAULT_EXEMPTIONS = {
    "AE": ("VATEX-EU-AE", "Autoliquidation"),
    "K": ("VATEX-EU-IC", "Exonération de TVA, article 262 ter I du CGI (livraison intracommunautaire)"),
    "G": ("VATEX-EU-G", "Exonération de TVA, article 262 I du CGI (exportation)"),
    "O": ("VATEX-EU-O", "Opération non soumise à la TVA"),
}

# French mandatory mentions (Code de commerce L441-10; BR-FR-05 wants them as PMT/PMD/AAB notes).
DEFAULT_NOTES = {
    "PMT": "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 €.",
    "PMD": "Pénalités de retard : trois fois le taux d'intérêt légal, exigibles dès le lendemain "
    "de l'échéance.",
    "AAB": "Pas d'escompte pour paiement anticipé.",
}
# The legal profile's own wording of those mentions (blank: the default above).
NOTE_OVERRIDES = {"PMT": "recovery_fee_note", "PMD": "late_penalty_note", "AAB": "discount_note"}


def _d(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _plain(value: Decimal | None) -> Decimal | None:
    """Drop the storage scale (2.000000 → 2): the rules count decimals as written (BR-FR-DEC-02)."""
    if value is None:
        return None
    normalized = value.normalize()
    return normalized.quantize(Decimal(1)) if normalized.as_tuple().exponent > 0 else normalized


def _address(data: dict[str, Any] | None) -> Address:
    data = data or {}
    return Address(
        line1=data.get("line1", "") or "",
        line2=data.get("line2", "") or "",
        line3=data.get("line3", "") or "",
        city=data.get("city", "") or "",
        postcode=data.get("postcode", "") or "",
        subdivision=data.get("subdivision", "") or "",
        country=(data.get("country", "") or "").upper(),
    )


def seller_snapshot(profile: Tenant | SubTenant, *, logo: str = "") -> dict[str, Any]:
    """The seller block (BG-4) as frozen into an issued invoice.

    ``presentation`` freezes what the profile says about the documents themselves (the wording of the
    PMT/PMD/AAB mentions, the PDF footer and the stored copy of the logo, ``logo``), so that an issued
    invoice renders the same later, whatever the profile becomes."""
    overrides = {
        subject: text.strip()
        for subject, field in NOTE_OVERRIDES.items()
        if (text := getattr(profile, field, "") or "").strip()
    }
    return {
        "name": profile.legal_name,
        "siren": profile.siren,
        "siret": profile.siret,
        "vat_id": profile.vat_id,
        "legal_form": " ".join(x for x in [profile.legal_form, profile.rcs] if x),
        "email": profile.email,
        "iban": profile.iban,
        "bic": profile.bic,
        "address": {
            "line1": profile.address_line1,
            "line2": profile.address_line2,
            "postcode": profile.postcode,
            "city": profile.city,
            "country": profile.country,
        },
        # France routes invoices by SIREN (EAS scheme 0225, BR-FR-12).
        "electronic_address": {"value": profile.siren, "scheme": "0225"},
        "presentation": {
            "footer": (profile.invoice_footer or "").strip(),
            "logo": logo,
            "notes": overrides,
        },
    }


def _party(data: dict[str, Any]) -> Party:
    electronic = data.get("electronic_address")
    return Party(
        name=data.get("name", ""),
        trading_name=data.get("trading_name", "") or "",
        siren=data.get("siren", "") or "",
        siret=data.get("siret", "") or "",
        vat_id=data.get("vat_id", "") or "",
        legal_form=data.get("legal_form", "") or "",
        address=_address(data.get("address")),
        electronic_address=ElectronicAddress(electronic["value"], electronic.get("scheme", "0225"))
        if electronic
        else None,
        contact_name=data.get("contact_name", "") or "",
        contact_phone=data.get("contact_phone", "") or "",
        contact_email=data.get("email", "") or "",
    )


def framework(buyer: dict[str, Any]) -> str:
    """The French B2B/B2BINT/B2C framework note (BR-FR-20): a French company (it has a SIREN or a VAT
    id) is B2B, a foreign company B2BINT, anyone else (a consumer) B2C. A company whose SIREN is
    missing stays B2B, so the issue reports BR-FR-11 instead of silently treating it as a consumer."""
    country = ((buyer.get("address") or {}).get("country") or "FR").upper()
    if country != "FR":
        return "B2BINT"
    return "B2B" if buyer.get("siren") or buyer.get("vat_id") else "B2C"


def buyer_party(buyer: dict[str, Any]) -> Party:
    party = _party(buyer)
    if party.electronic_address is None:
        # BR-FR-13/21: BT-49 is mandatory; for a French company it is its SIREN (scheme 0225).
        if framework(buyer) == "B2B":
            party.electronic_address = ElectronicAddress(party.siren, "0225")
        elif buyer.get("email"):
            party.electronic_address = ElectronicAddress(buyer["email"], "EM")
    return party


def _allowance_charge(data: dict[str, Any], *, is_charge: bool, document_level: bool) -> AllowanceCharge:
    return AllowanceCharge(
        is_charge=is_charge,
        amount=_d(data.get("amount")),  # type: ignore[arg-type] - None: computed from percent × base
        base_amount=_d(data.get("base_amount")),
        percent=_d(data.get("percent")),
        reason=data.get("reason", "") or "",
        reason_code=data.get("reason_code", "") or "",
        vat_category=(data.get("vat_category", "") or "") if document_level else "",
        vat_rate=_d(data.get("vat_rate")) if document_level else None,
    )


def _line(line: InvoiceLine) -> Line:
    return Line(
        id=str(line.position),
        name=line.description,
        description=line.detail,
        quantity=_plain(line.quantity),
        unit_code=line.unit_code,
        net_price=_plain(line.unit_price),
        price_base_quantity=_plain(line.price_base_quantity),
        vat_category=line.vat_category,
        vat_rate=line.vat_rate,
        allowances=[_allowance_charge(a, is_charge=False, document_level=False) for a in line.allowances],
        charges=[_allowance_charge(c, is_charge=True, document_level=False) for c in line.charges],
        seller_item_id=line.seller_item_id,
        period_start=line.period_start,
        period_end=line.period_end,
    )


def notes_for(invoice: Invoice, seller: dict[str, Any] | None = None) -> list[Note]:
    """The invoice's own notes, then the French mandatory ones it does not already carry, in the
    seller's wording when its legal profile has one (frozen in ``seller["presentation"]``)."""
    seller = seller if seller is not None else invoice.seller
    overrides = ((seller or {}).get("presentation") or {}).get("notes") or {}
    notes = [Note(text=n.get("text", ""), subject=n.get("subject", "") or "") for n in invoice.notes]
    present = {n.subject for n in notes}
    for subject, text in DEFAULT_NOTES.items():
        if subject not in present:
            notes.append(Note(text=overrides.get(subject) or text, subject=subject))
    if "BAR" not in present:
        notes.append(Note(text=framework(invoice.buyer), subject="BAR"))
    return notes


def build_document(
    invoice: Invoice,
    *,
    lines: list[InvoiceLine] | None = None,
    seller: dict[str, Any] | None = None,
    number: str | None = None,
    issue_date: dt.date | None = None,
) -> InvoiceDocument:
    """The semantic document of ``invoice`` (not computed: call ``computation.compute``)."""
    seller = seller or invoice.seller
    lines = lines if lines is not None else list(invoice.lines.all())
    payment = invoice.payment or {}
    exemptions = {
        category: (value.get("code", "") or "", value.get("reason", "") or "")
        for category, value in (invoice.vat_exemptions or {}).items()
    }
    categories = {line.vat_category for line in lines} | {
        a.get("vat_category") for a in [*invoice.allowances, *invoice.charges]
    }
    for category, default in DEFAULT_EXEMPTIONS.items():
        if category in categories and category not in exemptions:
            exemptions[category] = default
    delivery = None
    if invoice.delivery:
        delivery = Delivery(
            date=_date(invoice.delivery.get("date")),
            party_name=invoice.delivery.get("party_name", "") or "",
            address=_address(invoice.delivery["address"]) if invoice.delivery.get("address") else None,
        )
    preceding = []
    if invoice.preceding_number:
        preceding.append(
            PrecedingInvoice(number=invoice.preceding_number, issue_date=invoice.preceding_issue_date)
        )
    tax_currency = invoice.tax_currency
    if (
        not tax_currency
        and invoice.currency != "EUR"
        and (seller.get("address") or {}).get("country") == "FR"
    ):
        # A French seller accounts VAT in euros (CGI art. 242 nonies A; BR-FR-CO-12 wants BT-6 = EUR).
        tax_currency = "EUR"
    doc = InvoiceDocument(
        number=number or invoice.number,
        type_code=invoice.type_code,
        issue_date=issue_date or invoice.issue_date or dt.date.today(),
        currency=invoice.currency,
        tax_currency=tax_currency if tax_currency != invoice.currency else "",
        tax_exchange_rate=_plain(invoice.tax_exchange_rate),
        seller=_party(seller),
        buyer=buyer_party(invoice.buyer),
        lines=[_line(line) for line in lines],
        profile=invoice.profile,
        due_date=invoice.due_date,
        tax_point_code="5" if invoice.vat_on_debits else "",
        buyer_reference=invoice.buyer_reference,
        project_ref=invoice.project_ref,
        contract_ref=invoice.contract_ref,
        purchase_order_ref=invoice.purchase_order_ref,
        delivery_note_ref=invoice.delivery_note_ref,
        business_process=BUSINESS_PROCESS.get(invoice.operation_category, ""),
        notes=notes_for(invoice, seller),
        preceding_invoices=preceding,
        delivery=delivery,
        payment=Payment(
            means_code=payment.get("means_code") or "58",
            iban=payment.get("iban") or seller.get("iban", ""),
            bic=payment.get("bic") or seller.get("bic", ""),
            account_name=payment.get("account_name") or seller.get("name", ""),
            terms=payment.get("terms", "") or "",
            remittance_info=payment.get("remittance_info", "") or "",
        ),
        allowances=[_allowance_charge(a, is_charge=False, document_level=True) for a in invoice.allowances],
        charges=[_allowance_charge(c, is_charge=True, document_level=True) for c in invoice.charges],
        exemption_reasons=exemptions,
        sandbox=not invoice.livemode,
    )
    doc.totals.prepaid = invoice.prepaid_amount or Decimal("0.00")
    return doc


def _date(value: Any) -> dt.date | None:
    if not value:
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def party_to_dict(party: Party) -> dict[str, Any]:
    """An imported party as the buyer/seller JSON block."""
    return {
        "name": party.name,
        "siren": party.siren,
        "siret": party.siret,
        "vat_id": party.vat_id,
        "email": party.contact_email,
        "address": {
            "line1": party.address.line1,
            "line2": party.address.line2,
            "postcode": party.address.postcode,
            "city": party.address.city,
            "country": party.address.country,
        },
        "electronic_address": {
            "value": party.electronic_address.value,
            "scheme": party.electronic_address.scheme,
        }
        if party.electronic_address
        else None,
    }


def totals_to_dict(doc: InvoiceDocument) -> dict[str, Any]:
    t = doc.totals
    out = {
        "line_total": t.line_total,
        "allowance_total": t.allowance_total,
        "charge_total": t.charge_total,
        "tax_exclusive": t.tax_exclusive,
        "tax_total": t.tax_total,
        "tax_inclusive": t.tax_inclusive,
        "prepaid": t.prepaid,
        "rounding": t.rounding,
        "amount_due": t.amount_due,
    }
    if t.tax_total_accounting is not None:
        out["tax_total_accounting"] = t.tax_total_accounting
    return {k: str(v) for k, v in out.items()}


def breakdown_to_list(doc: InvoiceDocument) -> list[dict[str, Any]]:
    return [
        {
            "category": b.category,
            "rate": None if b.rate is None else str(b.rate),
            "taxable_amount": str(b.taxable_amount),
            "tax_amount": str(b.tax_amount),
            "exemption_reason": b.exemption_reason,
            "exemption_reason_code": b.exemption_reason_code,
        }
        for b in doc.vat_breakdown
    ]
