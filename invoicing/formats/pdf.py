"""Human-readable invoice PDF (PDF/A-3b), rendered by WeasyPrint from a Django template.

The PDF is the visual part of a Factur-X file (``invoicing.formats.facturx`` embeds the CII XML into
it) and the document a buyer prints. It carries every French mandatory mention found in the
semantic model: parties and their identifiers, references, nature of the operation, VAT option on
debits, VAT breakdown with exemption reasons, totals, payment details and legal notes.

The template is rendered with a standalone ``django.template.Engine`` so the function works in
workers, scripts and tests without Django settings; the view-model handed to it contains only
preformatted strings (no ``Decimal``/``date``), which keeps the template free of localisation
filters that would need settings.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from django.template import Context, Engine

from invoicing.document import (
    Address,
    AllowanceCharge,
    InvoiceDocument,
    Line,
    OperationCategory,
    Party,
    TypeCode,
    VatCategory,
)

TEMPLATES_ROOT = Path(__file__).resolve().parents[2] / "templates"
TEMPLATE_NAME = "invoicing/pdf/invoice.html"
STYLESHEET = TEMPLATES_ROOT / "invoicing" / "pdf" / "invoice.css"

# Non-breaking space: keeps "1 234,56 EUR" on one line and is present in DejaVu Sans.
NBSP = "\u00a0"

TYPE_LABELS: dict[str, tuple[str, str]] = {
    TypeCode.COMMERCIAL_INVOICE: ("Facture", "Invoice"),
    TypeCode.CREDIT_NOTE: ("Avoir", "Credit note"),
    TypeCode.CORRECTED_INVOICE: ("Facture rectificative", "Corrected invoice"),
    TypeCode.PREPAYMENT_INVOICE: ("Facture d'acompte", "Prepayment invoice"),
    TypeCode.SELF_BILLED_INVOICE: ("Autofacture", "Self-billed invoice"),
}

OPERATION_MENTIONS: dict[str, str] = {
    OperationCategory.GOODS: "Livraison de biens / Supply of goods",
    OperationCategory.SERVICES: "Prestations de services / Supply of services",
    OperationCategory.MIXED: "Livraison de biens et prestations de services / Goods and services",
}

# Short enough for the narrow VAT table; the full legal mention goes on the reason row below.
VAT_CATEGORY_LABELS: dict[str, str] = {
    VatCategory.STANDARD: "Normal / Standard",
    VatCategory.ZERO_RATED: "Taux zéro / Zero rated",
    VatCategory.EXEMPT: "Exonéré / Exempt",
    VatCategory.REVERSE_CHARGE: "Autoliquidation / Reverse charge",
    VatCategory.INTRA_COMMUNITY: "Intracommunautaire / Intra-EU",
    VatCategory.EXPORT: "Export",
    VatCategory.NOT_SUBJECT: "Hors champ / Not subject",
    VatCategory.CANARY_IGIC: "IGIC (Canaries)",
    VatCategory.CEUTA_MELILLA_IPSI: "IPSI (Ceuta, Melilla)",
}

# Printed when the document gives no BT-120 text: the legal basis a French reader expects.
DEFAULT_EXEMPTION_MENTIONS: dict[str, str] = {
    VatCategory.REVERSE_CHARGE: "Autoliquidation – TVA due par le preneur (art. 283 du CGI) / Reverse charge",
    VatCategory.INTRA_COMMUNITY: "Exonération de TVA, art. 262 ter I du CGI / "
    "Intra-community supply exempt from VAT",
    VatCategory.EXPORT: "Exonération de TVA, art. 262 I du CGI / Export exempt from VAT",
    VatCategory.NOT_SUBJECT: "Opération hors champ de la TVA / Not subject to VAT",
}

NOTE_SUBJECT_LABELS: dict[str, str] = {
    "PMT": "Recouvrement / Recovery fee",
    "PMD": "Pénalités / Late payment",
    "AAB": "Escompte / Discount",
    "REG": "Mention réglementaire / Regulatory information",
    "ABL": "Mention légale / Legal information",
    "TXD": "Information fiscale / Tax declaration",
    "AAI": "Information générale / General information",
    "SUR": "Remarques / Remarks",
    "BLU": "Déclaration / Declaration",
    "CUS": "Douane / Customs",
    "BAR": "Cadre de facturation / Billing framework",
}

PAYMENT_MEANS_LABELS: dict[str, str] = {
    "10": "Espèces / Cash",
    "20": "Chèque / Cheque",
    "30": "Virement / Credit transfer",
    "31": "Virement / Debit transfer",
    "42": "Virement bancaire / Bank transfer",
    "48": "Carte bancaire / Card",
    "49": "Prélèvement / Direct debit",
    "57": "Ordre permanent / Standing agreement",
    "58": "Virement SEPA / SEPA credit transfer",
    "59": "Prélèvement SEPA / SEPA direct debit",
    "97": "Compensation / Clearing",
}

# UN/ECE Recommendation 20 codes an SME invoice typically uses; anything else prints as the code.
UNIT_LABELS: dict[str, str] = {
    "C62": "unité",
    "H87": "pièce",
    "XPP": "pièce",
    "EA": "unité",
    "HUR": "heure",
    "MIN": "min",
    "DAY": "jour",
    "WEE": "semaine",
    "MON": "mois",
    "ANN": "an",
    "KGM": "kg",
    "GRM": "g",
    "TNE": "t",
    "MTR": "m",
    "KMT": "km",
    "MTK": "m²",
    "MTQ": "m³",
    "LTR": "L",
    "KWH": "kWh",
    "SET": "lot",
    "LS": "forfait",
    "E48": "service",
    "P1": "%",
}

_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_TWO_PLACES = Decimal("0.01")


# --- formatting helpers -------------------------------------------------------------------------


def _group(integer_digits: str) -> str:
    """Group digits by thousands with a non-breaking space (French typography)."""
    groups = []
    while len(integer_digits) > 3:
        groups.insert(0, integer_digits[-3:])
        integer_digits = integer_digits[:-3]
    groups.insert(0, integer_digits)
    return NBSP.join(groups)


def format_decimal(value: Decimal, *, min_places: int = 2, max_places: int = 2) -> str:
    """French number format: ``1 234,5`` with ``min_places``..``max_places`` decimals.

    Rounds half-up beyond ``max_places`` (display only, the XML keeps the exact value) and drops
    trailing zeros down to ``min_places`` so quantities print as ``3`` and prices as ``12,3456``.
    """
    quantum = Decimal(1).scaleb(-max_places)
    rounded = Decimal(value).quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    integer_part, _, fraction = f"{abs(rounded):f}".partition(".")
    fraction = fraction.rstrip("0")
    fraction = fraction.ljust(min_places, "0")
    text = _group(integer_part)
    return f"{sign}{text},{fraction}" if fraction else f"{sign}{text}"


def format_amount(value: Decimal | None, currency: str) -> str:
    """Monetary amount: always 2 decimals followed by the ISO currency code."""
    if value is None:
        return ""
    return f"{format_decimal(Decimal(value).quantize(_TWO_PLACES, rounding=ROUND_HALF_UP))}{NBSP}{currency}"


def format_quantity(value: Decimal) -> str:
    """Quantities keep up to 4 decimals (BR-FR-DEC), without meaningless trailing zeros."""
    return format_decimal(value, min_places=0, max_places=4)


def format_price(value: Decimal) -> str:
    """Unit prices keep 2 to 4 decimals."""
    return format_decimal(value, min_places=2, max_places=4)


def format_rate(rate: Decimal | None) -> str:
    """VAT or allowance percentage, e.g. ``20 %`` or ``5,5 %``."""
    if rate is None:
        return "–"
    return f"{format_decimal(rate, min_places=0, max_places=2)}{NBSP}%"


def format_date(value: dt.date | None) -> str:
    """dd/mm/yyyy, the form French readers expect."""
    return value.strftime("%d/%m/%Y") if value else ""


def format_iban(iban: str) -> str:
    """IBAN in groups of four, as printed on bank documents."""
    compact = iban.replace(" ", "").upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


# --- view model ---------------------------------------------------------------------------------


def _address_lines(address: Address | None) -> list[str]:
    if address is None:
        return []
    lines = [part for part in (address.line1, address.line2, address.line3) if part]
    city = " ".join(part for part in (address.postcode, address.city, address.subdivision) if part)
    # Country code beside the city: one line fewer, and still explicit for cross-border invoices.
    if address.country:
        city = f"{city} ({address.country})" if city else address.country
    if city:
        lines.append(city)
    return lines


def _party(party: Party, *, seller: bool) -> dict[str, Any]:
    ids: list[tuple[str, str]] = []
    if party.siren:
        ids.append(("SIREN", party.siren))
    if party.siret:
        ids.append(("SIRET", party.siret))
    if party.vat_id:
        ids.append(("N° TVA / VAT ID", party.vat_id))
    if seller and party.tax_registration_id:
        ids.append(("N° fiscal / Tax reg.", party.tax_registration_id))
    if party.legal_form:
        ids.append(("", party.legal_form))
    if party.electronic_address is not None and party.electronic_address.value:
        ids.append(
            (
                "Adresse électronique / E-address",
                f"{party.electronic_address.value} ({party.electronic_address.scheme})",
            )
        )
    contact = [c for c in (party.contact_name, party.contact_phone, party.contact_email) if c]
    return {
        "name": party.name,
        "trading_name": party.trading_name if party.trading_name != party.name else "",
        "address_lines": _address_lines(party.address),
        "ids": ids,
        "contact": [" · ".join(contact)] if contact else [],
    }


def _adjustment_label(ac: AllowanceCharge) -> str:
    label = "Frais / Charge" if ac.is_charge else "Remise / Allowance"
    if ac.percent is not None:
        label += f" {format_rate(ac.percent)}"
        if ac.base_amount is not None:
            label += f" × {format_decimal(ac.base_amount)}"
    return label


def _signed(ac: AllowanceCharge, currency: str) -> str:
    # Allowances reduce the amount: print them negative so the arithmetic reads on the page.
    return format_amount(ac.amount if ac.is_charge else -ac.amount, currency)


def _line(line: Line, currency: str) -> dict[str, Any]:
    details: list[str] = []
    if line.period_start or line.period_end:
        details.append(
            f"Période / Period : {format_date(line.period_start)} – {format_date(line.period_end)}"
        )
    refs = [
        ("Réf. vendeur / Seller ref.", line.seller_item_id),
        ("Réf. acheteur / Buyer ref.", line.buyer_item_id),
        ("GTIN", line.standard_item_id),
        ("Ligne de commande / Order line", line.order_line_ref),
        ("Origine / Origin", line.origin_country),
    ]
    details.extend(f"{label} : {value}" for label, value in refs if value)
    if line.note:
        details.append(line.note)
    price = format_price(line.net_price)
    if line.price_base_quantity not in (None, Decimal(1)):
        price += f" / {format_quantity(line.price_base_quantity)}"
    adjustments = [
        {"label": _adjustment_label(ac), "amount": _signed(ac, currency), "reason": ac.reason}
        for ac in (*line.allowances, *line.charges)
    ]
    return {
        "id": line.id,
        "name": line.name,
        "description": line.description,
        "details": details,
        "adjustments": adjustments,
        "quantity": format_quantity(line.quantity),
        "unit": UNIT_LABELS.get(line.unit_code, line.unit_code),
        "price": price,
        "gross_price": format_price(line.gross_price)
        if line.gross_price is not None and line.gross_price != line.net_price
        else "",
        "vat": f"{line.vat_category} {format_rate(line.vat_rate)}"
        if line.vat_category != VatCategory.STANDARD
        else format_rate(line.vat_rate),
        "net_amount": format_amount(line.net_amount, currency),
    }


def _operation_category(doc: InvoiceDocument) -> str:
    """Nature of the operation from BT-23 (BR-FR-08: B… goods, S… services, M… mixed)."""
    first = doc.business_process[:1].upper()
    return {
        "B": OperationCategory.GOODS,
        "S": OperationCategory.SERVICES,
        "M": OperationCategory.MIXED,
    }.get(first, "")


def _references(doc: InvoiceDocument) -> list[tuple[str, str]]:
    refs = [
        ("Bon de commande / Purchase order", doc.purchase_order_ref),
        ("Bon de livraison / Delivery note", doc.delivery_note_ref),
        ("Contrat / Contract", doc.contract_ref),
        ("Réf. acheteur / Buyer reference", doc.buyer_reference),
        ("Projet / Project", doc.project_ref),
        ("Commande vendeur / Sales order", doc.sales_order_ref),
        ("Avis de réception / Receiving advice", doc.receiving_advice_ref),
        ("Appel d'offres / Tender", getattr(doc, "tender_ref", "")),
        ("Objet facturé / Invoiced object", getattr(doc, "invoiced_object_ref", "")),
        ("Réf. comptable / Accounting ref.", doc.accounting_ref),
    ]
    result = [(label, value) for label, value in refs if value]
    for preceding in doc.preceding_invoices:
        value = preceding.number
        if preceding.issue_date:
            value += f" du {format_date(preceding.issue_date)}"
        result.append(("Facture d'origine / Preceding invoice", value))
    return result


def _vat_rows(doc: InvoiceDocument) -> list[dict[str, str]]:
    rows = []
    for vat in doc.vat_breakdown:
        reason = vat.exemption_reason
        code = vat.exemption_reason_code
        if not reason and not code and vat.category in doc.exemption_reasons:
            code, reason = doc.exemption_reasons[vat.category]
        if not reason:
            reason = DEFAULT_EXEMPTION_MENTIONS.get(vat.category, "")
        if code and reason:
            reason = f"{reason} ({code})"
        elif code:
            reason = code
        rows.append(
            {
                "category": VAT_CATEGORY_LABELS.get(vat.category, vat.category),
                "rate": format_rate(vat.rate),
                "taxable": format_amount(vat.taxable_amount, doc.currency),
                "tax": format_amount(vat.tax_amount, doc.currency),
                "reason": reason,
            }
        )
    return rows


def _totals(doc: InvoiceDocument) -> list[dict[str, str]]:
    t = doc.totals
    cur = doc.currency
    rows: list[tuple[str, Decimal | None, str, bool]] = [
        ("Total lignes HT / Lines total", t.line_total, "", True),
        ("Remises / Allowances", -t.allowance_total, "", t.allowance_total != 0),
        ("Frais / Charges", t.charge_total, "", t.charge_total != 0),
        ("Total HT / Total excl. VAT", t.tax_exclusive, "", True),
        ("TVA / VAT", t.tax_total, "", True),
        ("Total TTC / Total incl. VAT", t.tax_inclusive, "grand", True),
        ("Déjà payé / Prepaid", -t.prepaid, "", t.prepaid != 0),
        ("Arrondi / Rounding", t.rounding, "", t.rounding != 0),
        (
            # A credit note is not paid by the buyer: its bottom line is what is owed back.
            "Montant de l'avoir / Credit amount"
            if doc.type_code == TypeCode.CREDIT_NOTE
            else "Net à payer / Amount due",
            t.amount_due,
            "due",
            True,
        ),
    ]
    result = [
        {"label": label, "amount": format_amount(amount, cur), "css": css}
        for label, amount, css, shown in rows
        if shown
    ]
    if doc.tax_currency and doc.tax_currency != cur and t.tax_total_accounting is not None:
        # BT-111: VAT in the accounting currency, mandatory when BT-6 differs from BT-5.
        result.insert(
            5,
            {
                "label": f"TVA en {doc.tax_currency} / VAT in {doc.tax_currency}",
                "amount": format_amount(t.tax_total_accounting, doc.tax_currency),
                "css": "",
            },
        )
    return result


def _payment(doc: InvoiceDocument) -> list[tuple[str, str]]:
    p = doc.payment
    means = PAYMENT_MEANS_LABELS.get(p.means_code, p.means_code)
    if p.means_text:
        means = f"{means} – {p.means_text}" if means else p.means_text
    rows = [
        ("Moyen / Means", means),
        ("IBAN", format_iban(p.iban) if p.iban else ""),
        ("BIC", p.bic),
        ("Titulaire / Account name", p.account_name),
        ("Référence à rappeler / Remittance", p.remittance_info),
        ("Mandat / Mandate", p.mandate_ref),
        ("ICS / Creditor ID", p.creditor_id),
        ("Compte débité / Debited account", format_iban(p.debited_iban) if p.debited_iban else ""),
        ("Échéance / Due date", format_date(doc.due_date)),
        ("Conditions / Terms", p.terms),
    ]
    payee = getattr(doc, "payee", None)
    if payee is not None:
        rows.insert(0, ("Bénéficiaire / Payee", payee.name))
    return [(label, value) for label, value in rows if value]


def _delivery(doc: InvoiceDocument) -> dict[str, Any] | None:
    d = doc.delivery
    if d is None:
        return None
    view = {
        "party_name": d.party_name,
        "address_lines": _address_lines(d.address),
        "location_id": d.location_id,
        "date": format_date(d.date),
    }
    return view if any(view.values()) else None


def _branding(branding: dict[str, Any] | None) -> dict[str, str]:
    """Whitelist branding values: they end up inside HTML/CSS, so reject anything not plainly safe."""
    branding = branding or {}
    result: dict[str, str] = {}
    color = str(branding.get("primary_color", ""))
    if _COLOR_RE.match(color):
        result["primary_color"] = color
    logo = str(branding.get("logo_url", ""))
    # Only inline images: the renderer must never fetch a URL a tenant supplied (SSRF).
    if logo.startswith("data:image/"):
        result["logo_url"] = logo
    footer = str(branding.get("footer_text", "")).strip()
    if footer:
        # The legal profile's footer is at most 500 characters (LegalProfile.invoice_footer).
        result["footer_text"] = footer[:500]
    return result


def _footer_legal(seller: Party) -> str:
    parts = [seller.name]
    if seller.legal_form:
        parts.append(seller.legal_form)
    if seller.siren:
        parts.append(f"SIREN {seller.siren}")
    if seller.vat_id:
        parts.append(f"TVA {seller.vat_id}")
    return " – ".join(parts)


def build_context(doc: InvoiceDocument, branding: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template's view-model: only strings, lists and dicts (see module docstring)."""
    title_fr, title_en = TYPE_LABELS.get(doc.type_code, ("Facture", "Invoice"))
    mentions: list[str] = []
    category = _operation_category(doc)
    if category:
        mentions.append(OPERATION_MENTIONS[category])
    if doc.tax_point_code == "5":
        mentions.append("Option pour le paiement de la TVA d'après les débits")
    tax_rep = getattr(doc, "tax_representative", None)
    if tax_rep is not None:
        rep = f"Représentant fiscal / Tax representative : {tax_rep.name}"
        if tax_rep.vat_id:
            rep += f" ({tax_rep.vat_id})"
        mentions.append(rep)
    period = ""
    if doc.invoice_period_start or doc.invoice_period_end:
        period = f"{format_date(doc.invoice_period_start)} – {format_date(doc.invoice_period_end)}"
    doc_adjustments = [
        {
            "label": _adjustment_label(ac),
            "reason": " ".join(
                part for part in (ac.reason, f"({ac.reason_code})" if ac.reason_code else "") if part
            ),
            "vat": f"{ac.vat_category} {format_rate(ac.vat_rate)}" if ac.vat_category else "",
            "amount": _signed(ac, doc.currency),
        }
        for ac in (*doc.allowances, *doc.charges)
    ]
    notes = [
        {"label": NOTE_SUBJECT_LABELS.get(note.subject, note.subject), "text": note.text}
        for note in doc.notes
        if note.text
    ]
    title = f"{title_fr} {doc.number}"
    return {
        "sandbox": doc.sandbox,
        "meta": {
            "title": title,
            "author": doc.seller.name,
            "subject": f"{title_fr} {doc.number} – {doc.seller.name} → {doc.buyer.name}",
        },
        "brand": _branding(branding),
        "title_fr": title_fr,
        "title_en": title_en,
        "number": doc.number,
        "issue_date": format_date(doc.issue_date),
        "due_date": format_date(doc.due_date),
        "tax_point_date": format_date(doc.tax_point_date),
        "period": period,
        "references": _references(doc),
        "seller": _party(doc.seller, seller=True),
        "buyer": _party(doc.buyer, seller=False),
        "delivery": _delivery(doc),
        "mentions": mentions,
        "lines": [_line(line, doc.currency) for line in doc.lines],
        "doc_adjustments": doc_adjustments,
        "vat_rows": _vat_rows(doc),
        "totals": _totals(doc),
        "payment": _payment(doc),
        "notes": notes,
        "footer_legal": _footer_legal(doc.seller),
    }


# --- rendering ----------------------------------------------------------------------------------


@functools.cache
def _engine() -> Engine:
    # Standalone engine: no settings, no context processors, autoescaping on. debug=False wraps the
    # filesystem loader in the cached loader, so the template is parsed once per process.
    return Engine(dirs=[str(TEMPLATES_ROOT)], autoescape=True, debug=False)


@functools.cache
def _stylesheet() -> Any:
    # Parsing the CSS is a noticeable part of a one-page render; the parsed sheet is immutable.
    from weasyprint import CSS

    return CSS(filename=str(STYLESHEET))


def _url_fetcher() -> Any:
    """Only inline ``data:`` URIs: the renderer never reads files or the network on a tenant's behalf."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"})


def render_invoice_html(doc: InvoiceDocument, *, branding: dict[str, Any] | None = None) -> str:
    """The HTML the PDF is made from (also handy for an in-browser preview)."""
    template = _engine().get_template(TEMPLATE_NAME)
    return template.render(Context(build_context(doc, branding)))


def render_invoice_pdf(doc: InvoiceDocument, *, branding: dict[str, Any] | None = None) -> bytes:
    """Render ``doc`` as an A4 PDF/A-3b (fonts embedded, sRGB output intent), returned as bytes.

    ``branding`` may carry ``primary_color`` (``#rrggbb``), ``logo_url`` (a ``data:image/...`` URI)
    and ``footer_text``; other keys and unsafe values are ignored.
    """
    # Imported lazily: WeasyPrint loads Pango/HarfBuzz, which API processes that never render PDFs
    # should not pay for.
    from weasyprint import HTML

    html = HTML(
        string=render_invoice_html(doc, branding=branding),
        base_url=str(TEMPLATES_ROOT),
        url_fetcher=_url_fetcher(),
    )
    return html.write_pdf(stylesheets=[_stylesheet()], pdf_variant="pdf/a-3b")
