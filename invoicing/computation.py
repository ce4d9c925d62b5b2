"""EN 16931 calculations: line nets, allowances and charges, VAT breakdown and document totals.

``compute`` fills an ``InvoiceDocument`` in place so that every calculation rule of EN 16931 holds
(BR-CO-10 to BR-CO-17, BR-S-08/09 and their counterparts for the other VAT categories), with every
monetary amount rounded half-up to 2 decimals, as BR-DEC-* and BR-FR-DEC-01 require.

``check`` reports the business-rule violations visible on the semantic model before any XML exists,
so the API can return field-level errors early. It does not replace Schematron validation.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from invoicing.document import (
    ZERO,
    AllowanceCharge,
    InvoiceDocument,
    Line,
    VatBreakdown,
    VatCategory,
)

CENT = Decimal("0.01")
HUNDRED = Decimal("100")

# Categories whose VAT rate must be 0 (BR-Z-05, BR-E-05, BR-AE-05, BR-IC-05, BR-G-05).
ZERO_RATE_CATEGORIES = frozenset({"Z", "E", "AE", "K", "G"})
# Categories that must carry an exemption reason (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10) and
# those that must not (BR-S-10, BR-Z-10).
EXEMPTION_REQUIRED = frozenset({"E", "AE", "K", "G", "O"})
EXEMPTION_FORBIDDEN = frozenset({"S", "Z"})
# VAT rates France accepts (BR-FR-16), as numbers.
FRENCH_VAT_RATES = frozenset(
    Decimal(r)
    for r in [
        "0",
        "10",
        "13",
        "20",
        "8.5",
        "19.6",
        "2.1",
        "5.5",
        "7",
        "20.6",
        "1.05",
        "0.9",
        "1.75",
        "9.2",
        "9.6",
    ]
)
# BT-23 values France accepts (BR-FR-08).
FRENCH_BUSINESS_PROCESSES = frozenset(
    [
        "B1",
        "S1",
        "M1",
        "B2",
        "S2",
        "M2",
        "S3",
        "B4",
        "S4",
        "M4",
        "S5",
        "S6",
        "B7",
        "S7",
        "B8",
        "S8",
        "M8",
        "B9",
        "S9",
        "M9",
    ]
)
# BT-3 codes France accepts (BR-FR-04).
FRENCH_TYPE_CODES = frozenset(
    [
        "380",
        "389",
        "393",
        "501",
        "386",
        "500",
        "384",
        "471",
        "472",
        "473",
        "261",
        "262",
        "381",
        "396",
        "502",
        "503",
    ]
)
CREDIT_NOTE_CODES = frozenset({"261", "381", "396", "502", "503"})  # BR-FR-CO-05
CORRECTIVE_CODES = frozenset({"384", "471", "472", "473"})  # BR-FR-CO-04
ID_FORMAT = re.compile(r"^[A-Za-z0-9+\-_/]+$")  # BR-FR-02
SIREN_FORMAT = re.compile(r"^\d{9}$")  # BR-FR-10 / BR-FR-11
SIRET_FORMAT = re.compile(r"^\d{14}$")  # BR-FR-09


def money(value: Decimal) -> Decimal:
    """Round half-up to the cent (EN 16931 amounts have at most 2 decimals, BR-DEC-*)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _sum(values: Iterable[Decimal]) -> Decimal:
    return money(sum(values, ZERO))


def _rate_key(rate: Decimal | None) -> Decimal | None:
    # 20, 20.0 and 20.00 are the same rate: one breakdown per category and rate (BR-S-08...).
    return None if rate is None else Decimal(rate).normalize()


def _fill_allowance_charge(ac: AllowanceCharge, default_base: Decimal) -> None:
    """Amount = base × percent / 100 when only the percent is given (BT-92 = BT-93 × BT-94 / 100)."""
    if ac.percent is not None and (ac.amount is None or ac.amount == 0):
        if ac.base_amount is None:
            ac.base_amount = money(default_base)
        ac.amount = money(ac.base_amount * ac.percent / HUNDRED)
    elif ac.amount is None:
        ac.amount = ZERO
    else:
        ac.amount = money(ac.amount)
    if ac.base_amount is not None:
        ac.base_amount = money(ac.base_amount)


def line_gross_amount(line: Line) -> Decimal:
    """Quantity × item net price / price base quantity (BT-129 × BT-146 / BT-149), unrounded."""
    base_qty = line.price_base_quantity or Decimal(1)
    return line.quantity * line.net_price / base_qty


def compute_line(line: Line) -> Decimal:
    """BT-131 = BT-129 × BT-146 / BT-149 − Σ BT-136 + Σ BT-141 (BR-CO... line net), rounded to 2."""
    gross = line_gross_amount(line)
    for ac in (*line.allowances, *line.charges):
        _fill_allowance_charge(ac, gross)
    allowances = sum((ac.amount for ac in line.allowances), ZERO)
    charges = sum((ac.amount for ac in line.charges), ZERO)
    # Rounding once, after adding allowances/charges (themselves cent-rounded), keeps BT-131 exact.
    line.net_amount = money(gross - allowances + charges)
    return line.net_amount


def compute(doc: InvoiceDocument) -> InvoiceDocument:
    """Fill every derived amount of ``doc`` (in place) and return it."""
    for line in doc.lines:
        compute_line(line)
    totals = doc.totals
    totals.line_total = _sum(line.net_amount for line in doc.lines)  # BR-CO-10

    for ac in (*doc.allowances, *doc.charges):
        _fill_allowance_charge(ac, totals.line_total)
    totals.allowance_total = _sum(ac.amount for ac in doc.allowances)  # BR-CO-11
    totals.charge_total = _sum(ac.amount for ac in doc.charges)  # BR-CO-12
    # BR-CO-13: BT-109 = BT-106 − BT-107 + BT-108.
    totals.tax_exclusive = money(totals.line_total - totals.allowance_total + totals.charge_total)

    doc.vat_breakdown = _vat_breakdown(doc)
    totals.tax_total = _sum(vb.tax_amount for vb in doc.vat_breakdown)  # BR-CO-14
    if doc.tax_currency and doc.tax_currency != doc.currency:
        # BR-53 / BR-FR-CO-12: BT-111 in the VAT accounting currency (BT-6).
        if doc.tax_exchange_rate is not None:
            totals.tax_total_accounting = money(totals.tax_total * doc.tax_exchange_rate)
    else:
        totals.tax_total_accounting = None
    totals.tax_inclusive = money(totals.tax_exclusive + totals.tax_total)  # BR-CO-15
    totals.prepaid = money(totals.prepaid or ZERO)
    totals.rounding = money(totals.rounding or ZERO)
    # BR-CO-16: BT-115 = BT-112 − BT-113 + BT-114.
    totals.amount_due = money(totals.tax_inclusive - totals.prepaid + totals.rounding)
    return doc


def _vat_breakdown(doc: InvoiceDocument) -> list[VatBreakdown]:
    """One BG-23 per (category, rate), in order of first appearance (BR-CO-18, BR-S-08, BR-AE-08...)."""
    groups: dict[tuple[str, Decimal | None], dict] = {}

    def group(category: str, rate: Decimal | None) -> dict:
        key = (category, _rate_key(rate))
        if key not in groups:
            groups[key] = {"rate": rate, "taxable": ZERO}
        return groups[key]

    for line in doc.lines:
        group(line.vat_category, line.vat_rate)["taxable"] += line.net_amount
    for ac in doc.charges:
        group(ac.vat_category, ac.vat_rate)["taxable"] += ac.amount
    for ac in doc.allowances:
        group(ac.vat_category, ac.vat_rate)["taxable"] -= ac.amount

    breakdown = []
    for (category, _), data in groups.items():
        rate: Decimal | None = data["rate"]
        taxable = money(data["taxable"])
        # BR-CO-17: VAT category tax amount = taxable amount × rate / 100, rounded to 2 decimals.
        tax = money(taxable * rate / HUNDRED) if rate is not None else ZERO
        if category in ZERO_RATE_CATEGORIES or category == VatCategory.NOT_SUBJECT:
            tax = ZERO  # BR-Z-09, BR-E-09, BR-AE-09, BR-IC-09, BR-G-09, BR-O-09: VAT amount is 0.
        code, text = "", ""
        if category not in EXEMPTION_FORBIDDEN:
            code, text = doc.exemption_reasons.get(category, ("", ""))
        breakdown.append(
            VatBreakdown(
                category=category,
                rate=rate,
                taxable_amount=taxable,
                tax_amount=tax,
                exemption_reason=text,
                exemption_reason_code=code,
            )
        )
    return breakdown


# --- early business-rule checks ----------------------------------------------------------------


def check(doc: InvoiceDocument, *, french: bool = True) -> list[tuple[str, str]]:
    """Business-rule violations detectable on the semantic model, as (rule id, message) pairs.

    ``doc`` is not modified: the totals rules are checked on a computed copy. ``french`` adds the
    BR-FR rules of the French e-invoicing reform.
    """
    errors: list[tuple[str, str]] = []

    def err(rule: str, message: str) -> None:
        errors.append((rule, message))

    computed = compute(copy.deepcopy(doc))

    if not doc.number:
        err("BR-02", "The invoice number (BT-1) is required.")
    if not doc.issue_date:
        err("BR-03", "The issue date (BT-2) is required.")
    if not doc.type_code:
        err("BR-04", "The invoice type code (BT-3) is required.")
    if not doc.currency:
        err("BR-05", "The invoice currency (BT-5) is required.")
    if not doc.seller.name:
        err("BR-06", "The seller name (BT-27) is required.")
    if not doc.buyer.name:
        err("BR-07", "The buyer name (BT-44) is required.")
    if not doc.seller.address.country:
        err("BR-09", "The seller country (BT-40) is required.")
    if not doc.buyer.address.country:
        err("BR-11", "The buyer country (BT-55) is required.")
    if not doc.lines:
        err("BR-16", "An invoice needs at least one line (BG-25).")
    if doc.tax_currency and doc.tax_currency != doc.currency and doc.tax_exchange_rate is None:
        err("BR-53", "A VAT accounting currency (BT-6) needs an exchange rate to compute BT-111.")
    if doc.due_date is None and not doc.payment.terms and computed.totals.amount_due > 0:
        err("BR-CO-25", "An amount due (BT-115) needs a due date (BT-9) or payment terms (BT-20).")
    if (
        french
        and doc.due_date
        and doc.issue_date
        and doc.due_date < doc.issue_date
        and doc.type_code not in {"386", "500", "503"}
        and doc.business_process not in {"B2", "S2", "M2"}
    ):
        err("BR-FR-CO-07", "The due date (BT-9) cannot be before the issue date (BT-2).")

    seen_ids: set[str] = set()
    for index, line in enumerate(doc.lines):
        where = f"line {line.id or index + 1}"
        if not line.id:
            err("BR-21", f"{where}: the line identifier (BT-126) is required.")
        elif line.id in seen_ids:
            err("BR-21", f"{where}: line identifiers (BT-126) must be unique.")
        seen_ids.add(line.id)
        if line.quantity is None:
            err("BR-22", f"{where}: the invoiced quantity (BT-129) is required.")
        if not line.unit_code:
            err("BR-23", f"{where}: the unit of measure (BT-130) is required.")
        if not line.name:
            err("BR-25", f"{where}: the item name (BT-153) is required.")
        if line.net_price is None or line.net_price < 0:
            err("BR-27", f"{where}: the item net price (BT-146) must not be negative.")
        if line.gross_price is not None and line.gross_price < 0:
            err("BR-28", f"{where}: the item gross price (BT-148) must not be negative.")
        if line.price_base_quantity is not None and line.price_base_quantity <= 0:
            err("BR-CO", f"{where}: the price base quantity (BT-149) must be positive.")
        if not line.vat_category:
            err("BR-CO-04", f"{where}: the VAT category (BT-151) is required.")
        _check_category(err, where, line.vat_category, line.vat_rate)
        if french and line.quantity is not None and line.quantity.as_tuple().exponent < -4:  # type: ignore[operator]
            err("BR-FR-DEC-02", f"{where}: the quantity (BT-129) has more than 4 decimals.")
        if french and line.net_price is not None and line.net_price.as_tuple().exponent < -6:  # type: ignore[operator]
            err("BR-FR-DEC-03", f"{where}: the net price (BT-146) has more than 6 decimals.")
        for ac in (*line.allowances, *line.charges):
            rule = "BR-42" if not ac.is_charge else "BR-44"
            if not ac.reason and not ac.reason_code:
                err(rule, f"{where}: each line allowance/charge needs a reason (text or code).")

    for ac in (*doc.allowances, *doc.charges):
        kind = "charge" if ac.is_charge else "allowance"
        if not ac.vat_category:
            err("BR-37" if ac.is_charge else "BR-32", f"Document {kind}: a VAT category is required.")
        else:
            _check_category(err, f"document {kind}", ac.vat_category, ac.vat_rate)
        if not ac.reason and not ac.reason_code:
            rule = "BR-38" if ac.is_charge else "BR-33"
            err(rule, f"Document {kind}: a reason (text or code) is required.")

    categories = {vb.category for vb in computed.vat_breakdown}
    seller_vat = doc.seller.vat_id or doc.seller.tax_registration_id
    if categories & {"S", "Z", "E", "AE", "K", "G"} and not seller_vat:
        for category in sorted(categories & {"S", "Z", "E", "AE", "K", "G"}):
            rule = {"K": "BR-IC-02"}.get(category, f"BR-{category}-02")
            err(rule, f"VAT category {category} requires the seller VAT identifier (BT-31).")
    if "AE" in categories and not (doc.buyer.vat_id or doc.buyer.siren):
        err("BR-AE-02", "Reverse charge (AE) requires the buyer VAT identifier (BT-48).")
    if "K" in categories:
        if not doc.buyer.vat_id:
            err("BR-IC-02", "Intra-community supply (K) requires the buyer VAT identifier (BT-48).")
        delivery = doc.delivery
        if not ((delivery and delivery.date) or doc.invoice_period_start or doc.invoice_period_end):
            err("BR-IC-11", "Intra-community supply (K) requires a delivery date (BT-72) or period (BG-14).")
        country = delivery.address.country if delivery and delivery.address else ""
        if not country:
            err("BR-IC-12", "Intra-community supply (K) requires the deliver-to country (BT-80).")
    if "O" in categories:
        if doc.seller.vat_id or doc.buyer.vat_id:
            err("BR-O-02", "Not subject to VAT (O) excludes the seller (BT-31) and buyer (BT-48) VAT ids.")
        if len(categories) > 1:
            err("BR-O-11", "An invoice with category O cannot contain other VAT categories.")
    for category in sorted(categories & EXEMPTION_REQUIRED):
        if not any(doc.exemption_reasons.get(category, ("", ""))):
            rule = {"K": "BR-IC-10"}.get(category, f"BR-{category}-10")
            err(rule, f"VAT category {category} requires an exemption reason (BT-120 or BT-121).")
    for category in sorted(categories & EXEMPTION_FORBIDDEN):
        if any(doc.exemption_reasons.get(category, ("", ""))):
            err(f"BR-{category}-10", f"VAT category {category} must not carry an exemption reason.")

    if french:
        _check_french(err, doc, categories)
    return errors


def _check_category(err, where: str, category: str, rate: Decimal | None) -> None:
    """Per-category VAT rate rules for a line or a document allowance/charge."""
    if category == "S" and (rate is None or rate <= 0):
        err("BR-S-05", f"{where}: standard rated (S) needs a VAT rate greater than zero.")
    elif category in ZERO_RATE_CATEGORIES and (rate is None or rate != 0):
        rule = {"K": "BR-IC-05"}.get(category, f"BR-{category}-05")
        err(rule, f"{where}: VAT category {category} needs a VAT rate of 0.")
    elif category == "O" and rate is not None:
        err("BR-O-05", f"{where}: not subject to VAT (O) must not have a VAT rate.")
    elif category and category not in {c.value for c in VatCategory}:
        err("BR-CL-17", f"{where}: unknown VAT category {category!r}.")


def _check_french(err, doc: InvoiceDocument, categories: set[str]) -> None:
    """BR-FR rules of the French e-invoicing reform that the model can show before any XML."""
    if doc.number and (len(doc.number) > 35):
        err("BR-FR-01", "The invoice number (BT-1) must not exceed 35 characters.")
    if doc.number and not ID_FORMAT.match(doc.number):
        err("BR-FR-02", "The invoice number (BT-1) may only contain letters, digits and + - _ /.")
    if doc.type_code and doc.type_code not in FRENCH_TYPE_CODES:
        err("BR-FR-04", f"Invoice type code {doc.type_code} is not accepted in France.")
    subjects = [note.subject for note in doc.notes]
    for subject in ("PMT", "PMD", "AAB"):
        if subject not in subjects:
            err("BR-FR-05", f"A note with subject {subject} is mandatory.")
        elif subjects.count(subject) > 1:
            err("BR-FR-06", f"The note subject {subject} may appear only once.")
    if doc.business_process not in FRENCH_BUSINESS_PROCESSES:
        err("BR-FR-08", "The business process (BT-23) must be one of B1, S1, M1, B2... (French list).")
    for role, party in (("seller", doc.seller), ("buyer", doc.buyer)):
        if party.siret and not (SIRET_FORMAT.match(party.siret) and party.siret[:9] == party.siren):
            err("BR-FR-09", f"The {role} SIRET must have 14 digits and start with the SIREN.")
    if not SIREN_FORMAT.match(doc.seller.siren or ""):
        err("BR-FR-10", "The seller SIREN (BT-30) is mandatory and has 9 digits.")
    treatment = next((note.text for note in doc.notes if note.subject == "BAR"), "")
    if treatment == "B2B" and not SIREN_FORMAT.match(doc.buyer.siren or ""):
        err("BR-FR-11", "A B2B invoice needs the buyer SIREN (BT-47, 9 digits).")
    if doc.buyer.electronic_address is None or not doc.buyer.electronic_address.value:
        err("BR-FR-12", "The buyer electronic address (BT-49) is mandatory.")
    elif treatment == "B2B" and doc.type_code not in {"389", "501", "500", "471", "473", "261", "502"}:
        address = doc.buyer.electronic_address
        if address.scheme != "0225" or not address.value.startswith(doc.buyer.siren or "\0"):
            err("BR-FR-21", "For B2B, BT-49 must start with the buyer SIREN and use scheme 0225.")
    if doc.seller.electronic_address is None or not doc.seller.electronic_address.value:
        err("BR-FR-13", "The seller electronic address (BT-34) is mandatory.")
    for category in categories & {"L", "M"}:
        err("BR-FR-15", f"VAT category {category} is not relevant in France.")
    rates = {line.vat_rate for line in doc.lines} | {ac.vat_rate for ac in (*doc.allowances, *doc.charges)}
    for rate in rates:
        if rate is not None and Decimal(rate) not in FRENCH_VAT_RATES:
            err("BR-FR-16", f"VAT rate {rate} is not a French VAT rate.")
    references = [p for p in doc.preceding_invoices if p.number and p.issue_date]
    if doc.type_code in CORRECTIVE_CODES and len(references) != 1:
        err("BR-FR-CO-04", "A corrective invoice references exactly one preceding invoice with its date.")
    if doc.type_code in CREDIT_NOTE_CODES and not references:
        err("BR-FR-CO-05", "A credit note references at least one preceding invoice with its date.")
    for reference in doc.preceding_invoices:
        if len(reference.number) > 35 or not ID_FORMAT.match(reference.number or ""):
            err("BR-FR-02", "The preceding invoice number (BT-25) has an invalid format.")
    if doc.currency and doc.currency != "EUR" and doc.tax_currency != "EUR":
        err("BR-FR-CO-12", "A non-EUR invoice needs EUR as VAT accounting currency (BT-6) and BT-111.")
