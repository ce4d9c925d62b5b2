"""UBL 2.1 writer following the EN 16931 UBL binding (EN 16931-3-2) and the French BR-FR rules.

``to_ubl`` turns an :class:`~invoicing.document.InvoiceDocument` (already run through
``invoicing.computation.compute``) into a UBL 2.1 ``Invoice`` or, for type 381, a ``CreditNote``.

Element order follows the UBL 2.1 XSD sequences (``UBL-Invoice-2.1.xsd``, ``UBL-CreditNote-2.1.xsd``
and the common aggregate components): UBL is validated by XSD before any Schematron, and an element
out of sequence is a schema error even when every business rule holds. The document is built with
lxml so user text is always escaped by the serializer, never concatenated.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

from invoicing.document import (
    Address,
    AllowanceCharge,
    Delivery,
    InvoiceDocument,
    Line,
    Party,
    TypeCode,
    VatCategory,
)

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

# BT-24: the EN 16931 core specification identifier. The French CTC rules (BR-FR) do not require a
# national CIUS identifier in UBL, so the core one is used.
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017"

# Document types that are written as a UBL CreditNote. Every other type (380, 384, 386, 389...) is
# an Invoice: EN 16931-3-2 maps BT-3 to InvoiceTypeCode or CreditNoteTypeCode by root element.
CREDIT_NOTE_TYPES = frozenset({TypeCode.CREDIT_NOTE.value, "261", "262", "396", "502", "503"})

# BT-8 is stored as a UNTDID 2475 code (what CII uses); UBL binds it to InvoicePeriod/DescriptionCode
# with UNTDID 2005 codes (BR-CL-06 allows 3, 35, 432). 5 (invoice/debits) -> 3, 29 (delivery) -> 35,
# 72 (paid to date) -> 432. Values already in 2005 pass through.
VAT_POINT_2475_TO_2005 = {"5": "3", "29": "35", "72": "432", "3": "3", "35": "35", "432": "432"}

# Categories whose VAT rate is written as 0 (BR-E-05, BR-AE-05, BR-IC-05, BR-G-05, BR-Z-05); category O
# must carry no rate at all (BR-O-05, BR-O-09, BR-O-12).
ZERO_RATE_CATEGORIES = frozenset({"E", "AE", "K", "G", "Z"})

# Categories whose breakdown needs an exemption reason or code (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10,
# BR-O-10); ``doc.exemption_reasons`` is only used for these, since S and Z must have none (BR-S-10,
# BR-Z-10).
EXEMPTION_CATEGORIES = frozenset({"E", "AE", "K", "G", "O"})

CENT = Decimal("0.01")

_NSMAP_BASE = {"cac": NS_CAC, "cbc": NS_CBC}


def _cbc(name: str) -> str:
    return f"{{{NS_CBC}}}{name}"


def _cac(name: str) -> str:
    return f"{{{NS_CAC}}}{name}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v})
    if text is not None:
        el.text = text
    return el


def _text(parent: etree._Element, name: str, value: str, **attrs: str) -> etree._Element | None:
    """Add ``cbc:name`` only when ``value`` is non-empty: EN 16931 forbids empty elements (BR-CL / UBL
    empty elements fail the XSD for most simple types)."""
    if not value:
        return None
    return _sub(parent, _cbc(name), value, **attrs)


def _dec(value: Decimal) -> str:
    """Plain decimal notation: ``str(Decimal)`` can produce exponents (``1E+2``), which are not valid
    ``xs:decimal`` lexical forms; a negative zero is written without its sign."""
    if value.is_zero():
        value = abs(value)
    return format(value, "f")


def _amount(value: Decimal) -> str:
    """Monetary amounts carry at most 2 decimals (UBL-DT-01, BR-FR-DEC-01). ``compute`` already rounds
    to cents, so this only normalises the representation (e.g. ``100`` -> ``100.00``)."""
    return _dec(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _rate(value: Decimal) -> str:
    """VAT rates as 2-decimal strings: BR-FR-16 compares the lexical value with a closed list
    ('20.00', '5.50', '2.10', '0.00'...) and BR-FR-DEC-04 allows at most 2 decimals."""
    return _dec(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _date(value: dt.date) -> str:
    return value.isoformat()


def _money(parent: etree._Element, name: str, value: Decimal, currency: str) -> etree._Element:
    # Every UBL AmountType requires currencyID (BR-CL-03 checks it against ISO 4217).
    return _sub(parent, _cbc(name), _amount(value), currencyID=currency)


def is_credit_note(doc: InvoiceDocument) -> bool:
    return str(doc.type_code) in CREDIT_NOTE_TYPES


def _note_text(subject: str, text: str) -> str:
    """BT-21/BT-22 in UBL: cbc:Note has no subject attribute, so the subject code is written as a
    ``#CODE#`` prefix (the convention BR-FR-05/06 look for: ``contains(string-join(cbc:Note), '#PMT#')``)."""
    return f"#{subject}#{text}" if subject else text


def _tax_scheme(parent: etree._Element, scheme_id: str = "VAT") -> None:
    scheme = _sub(parent, _cac("TaxScheme"))
    _sub(scheme, _cbc("ID"), scheme_id)


def _tax_category(
    parent: etree._Element,
    tag: str,
    category: str,
    rate: Decimal | None,
    *,
    exemption_code: str = "",
    exemption_reason: str = "",
) -> None:
    """cac:TaxCategory / cac:ClassifiedTaxCategory: ID, Percent, TaxExemptionReasonCode,
    TaxExemptionReason, TaxScheme (XSD order)."""
    cat = _sub(parent, _cac(tag))
    _sub(cat, _cbc("ID"), category)
    if category != VatCategory.NOT_SUBJECT:
        # Category O carries no rate (BR-O-05/09/12); zero-rate categories need an explicit 0.
        effective = rate if rate is not None else (Decimal(0) if category in ZERO_RATE_CATEGORIES else None)
        if effective is not None:
            _sub(cat, _cbc("Percent"), _rate(effective))
    _text(cat, "TaxExemptionReasonCode", exemption_code)
    _text(cat, "TaxExemptionReason", exemption_reason)
    _tax_scheme(cat)


def _address(parent: etree._Element, tag: str, address: Address) -> None:
    """cac:PostalAddress / cac:Address (BG-5, BG-8, BG-15)."""
    el = _sub(parent, _cac(tag))
    _text(el, "StreetName", address.line1)
    _text(el, "AdditionalStreetName", address.line2)
    _text(el, "CityName", address.city)
    _text(el, "PostalZone", address.postcode)
    _text(el, "CountrySubentity", address.subdivision)
    if address.line3:
        # BT-162/163/165: third address line is cac:AddressLine/cbc:Line (UBL-SR-51: only one).
        _sub(_sub(el, _cac("AddressLine")), _cbc("Line"), address.line3)
    # Country is mandatory in every EN 16931 address (BR-09, BR-11, BR-57).
    country = _sub(el, _cac("Country"))
    _sub(country, _cbc("IdentificationCode"), address.country)


def _identifiers(party: Party) -> list[tuple[str, str]]:
    """BT-29/BT-46 (and BT-60) as (value, scheme): the SIRET under ICD 0009 first, then any other
    identifier kept from an import. BR-FR-CO-10 forbids two identifiers under the same scheme."""
    ids: list[tuple[str, str]] = [(party.siret, "0009")] if party.siret else []
    for value, scheme in party.other_ids:
        if value and all(scheme != seen for _, seen in ids):
            ids.append((value, scheme))
    return ids


def _legal_id(party: Party) -> tuple[str, str]:
    """BT-30/BT-47/BT-61: the SIREN under ICD 0002 (BR-FR-10, BR-FR-11, BR-FR-32), else an imported
    registration id with its own scheme."""
    if party.siren:
        return party.siren, "0002"
    return party.legal_id, party.legal_id_scheme


def _party(
    parent: etree._Element,
    party: Party,
    *,
    seller: bool,
    creditor_id: str = "",
) -> None:
    """cac:Party of the seller (BG-4) or buyer (BG-7), XSD order: EndpointID, PartyIdentification,
    PartyName, PostalAddress, PartyTaxScheme, PartyLegalEntity, Contact."""
    el = _sub(parent, _cac("Party"))
    if party.electronic_address is not None and party.electronic_address.value:
        # BT-34/BT-49 with its EAS scheme; BR-FR-12/13 make both mandatory and BR-FR-21 wants the
        # buyer's to start with its SIREN under scheme 0225 for B2B.
        _sub(el, _cbc("EndpointID"), party.electronic_address.value, schemeID=party.electronic_address.scheme)
    ids = _identifiers(party)
    if not seller:
        # UBL-SR-16: the buyer has at most one identifier (BT-46); the SIRET wins when known.
        ids = ids[:1]
    for value, scheme in ids:
        _sub(_sub(el, _cac("PartyIdentification")), _cbc("ID"), value, schemeID=scheme)
    if seller and creditor_id:
        # BT-90 SEPA creditor identifier is a seller PartyIdentification with schemeID SEPA
        # (EN 16931-3-2; UBL-SR-29 allows one).
        _sub(_sub(el, _cac("PartyIdentification")), _cbc("ID"), creditor_id, schemeID="SEPA")
    if party.trading_name:
        _sub(_sub(el, _cac("PartyName")), _cbc("Name"), party.trading_name)  # BT-28 / BT-45
    _address(el, "PostalAddress", party.address)
    if party.vat_id:
        pts = _sub(el, _cac("PartyTaxScheme"))
        _sub(pts, _cbc("CompanyID"), party.vat_id)  # BT-31 / BT-48
        _tax_scheme(pts, "VAT")
    if seller and party.tax_registration_id:
        # BT-32: seller tax registration under a scheme other than VAT (UBL-SR-13 allows one).
        pts = _sub(el, _cac("PartyTaxScheme"))
        _sub(pts, _cbc("CompanyID"), party.tax_registration_id)
        _tax_scheme(pts, "FC")
    legal = _sub(el, _cac("PartyLegalEntity"))
    _sub(legal, _cbc("RegistrationName"), party.name)  # BT-27 / BT-44
    legal_id, legal_scheme = _legal_id(party)
    _text(legal, "CompanyID", legal_id, schemeID=legal_scheme)  # BT-30 / BT-47
    if seller:
        _text(legal, "CompanyLegalForm", party.legal_form)  # BT-33
    if party.contact_name or party.contact_phone or party.contact_email:
        contact = _sub(el, _cac("Contact"))
        _text(contact, "Name", party.contact_name)
        _text(contact, "Telephone", party.contact_phone)
        _text(contact, "ElectronicMail", party.contact_email)


def _payee(root: etree._Element, payee: Party) -> None:
    """cac:PayeeParty (BG-10): PartyIdentification (BT-60), PartyName (BT-59, BR-17), PartyLegalEntity
    (BT-61). UBL-SR-20/21 allow one identifier and one legal id."""
    el = _sub(root, _cac("PayeeParty"))
    ids = _identifiers(payee)
    if ids:
        value, scheme = ids[0]
        _sub(_sub(el, _cac("PartyIdentification")), _cbc("ID"), value, schemeID=scheme)
    _sub(_sub(el, _cac("PartyName")), _cbc("Name"), payee.name)
    legal_id, legal_scheme = _legal_id(payee)
    if legal_id:
        legal = _sub(el, _cac("PartyLegalEntity"))
        _sub(legal, _cbc("CompanyID"), legal_id, schemeID=legal_scheme)


def _tax_representative(root: etree._Element, rep: Party) -> None:
    """cac:TaxRepresentativeParty (BG-11): PartyName (BT-62, BR-18), PostalAddress (BG-12, BR-19/20),
    PartyTaxScheme with the representative's VAT id (BT-63, BR-56)."""
    el = _sub(root, _cac("TaxRepresentativeParty"))
    _sub(_sub(el, _cac("PartyName")), _cbc("Name"), rep.name)
    _address(el, "PostalAddress", rep.address)
    if rep.vat_id:
        pts = _sub(el, _cac("PartyTaxScheme"))
        _sub(pts, _cbc("CompanyID"), rep.vat_id)
        _tax_scheme(pts, "VAT")


def _allowance_charge(
    parent: etree._Element,
    ac: AllowanceCharge,
    currency: str,
    *,
    document_level: bool,
) -> None:
    """cac:AllowanceCharge (BG-20/21 document level, BG-27/28 line level), XSD order: ChargeIndicator,
    AllowanceChargeReasonCode, AllowanceChargeReason, MultiplierFactorNumeric, Amount, BaseAmount,
    TaxCategory."""
    el = _sub(parent, _cac("AllowanceCharge"))
    _sub(el, _cbc("ChargeIndicator"), "true" if ac.is_charge else "false")
    _text(el, "AllowanceChargeReasonCode", ac.reason_code)
    _text(el, "AllowanceChargeReason", ac.reason)
    if ac.percent is not None:
        _sub(el, _cbc("MultiplierFactorNumeric"), _dec(ac.percent))
    _money(el, "Amount", ac.amount, currency)
    if ac.base_amount is not None:
        _money(el, "BaseAmount", ac.base_amount, currency)
    if document_level:
        # BR-32/BR-37: document-level allowances and charges need a VAT category; line-level ones do
        # not carry one in UBL (UBL-CR-xxx warns about it).
        _tax_category(el, "TaxCategory", ac.vat_category or VatCategory.STANDARD, ac.vat_rate)


def _exemption(doc: InvoiceDocument, category: str, code: str, reason: str) -> tuple[str, str]:
    """BT-121/BT-120 from the breakdown, falling back on ``doc.exemption_reasons`` (BR-E-10, BR-AE-10,
    BR-IC-10, BR-G-10, BR-O-10 require a reason or code for non-taxed categories)."""
    if code or reason:
        return code, reason
    return doc.exemption_reasons.get(category, ("", ""))


def _tax_totals(root: etree._Element, doc: InvoiceDocument, tax_currency: str) -> None:
    # BT-110 with its BG-23 subtotals, in the invoice currency.
    total = _sub(root, _cac("TaxTotal"))
    _money(total, "TaxAmount", doc.totals.tax_total, doc.currency)
    for vb in doc.vat_breakdown:
        sub = _sub(total, _cac("TaxSubtotal"))
        _money(sub, "TaxableAmount", vb.taxable_amount, doc.currency)
        _money(sub, "TaxAmount", vb.tax_amount, doc.currency)
        code, reason = vb.exemption_reason_code, vb.exemption_reason
        if vb.category in EXEMPTION_CATEGORIES:
            code, reason = _exemption(doc, vb.category, code, reason)
        _tax_category(sub, "TaxCategory", vb.category, vb.rate, exemption_code=code, exemption_reason=reason)
    if tax_currency:
        # BT-111: a second TaxTotal in the VAT accounting currency, without subtotals (EN 16931-3-2;
        # BR-53 requires it whenever BT-6 is present, BR-FR-CO-12 requires it in EUR for non-EUR
        # invoices).
        accounting = _tax_total_accounting(doc)
        total = _sub(root, _cac("TaxTotal"))
        _money(total, "TaxAmount", accounting, tax_currency)


def _tax_total_accounting(doc: InvoiceDocument) -> Decimal:
    if doc.totals.tax_total_accounting is not None:
        return doc.totals.tax_total_accounting
    if doc.tax_exchange_rate is None:
        raise ValueError(
            f"BT-6 is {doc.tax_currency} but neither totals.tax_total_accounting (BT-111) nor "
            "tax_exchange_rate is set"
        )
    return (doc.totals.tax_total * doc.tax_exchange_rate).quantize(CENT, rounding=ROUND_HALF_UP)


def _payment_means(root: etree._Element, doc: InvoiceDocument, *, credit_note: bool) -> None:
    pay = doc.payment
    # BR-61: credit transfer (30/58) needs the payee account (BT-84). Without one the payment
    # instructions are left out rather than written invalid (BG-16 is optional).
    usable = bool(pay.means_code) and (bool(pay.iban) or pay.means_code not in {"30", "58"})
    due_date = doc.due_date if credit_note else None
    if not usable and due_date is None:
        return
    # UBL CreditNote has no header DueDate: EN 16931-3-2 binds BT-9 to PaymentMeans/PaymentDueDate.
    # When no usable means is known, UNCL 4461 "1" (instrument not defined) carries the date alone.
    means_code = pay.means_code if usable else "1"
    pm = _sub(root, _cac("PaymentMeans"))
    _sub(pm, _cbc("PaymentMeansCode"), means_code, name=pay.means_text if usable else "")  # BT-81/82
    if due_date is not None:
        _sub(pm, _cbc("PaymentDueDate"), _date(due_date))  # BT-9
    if not usable:
        return
    _text(pm, "PaymentID", pay.remittance_info)  # BT-83
    if pay.iban:
        account = _sub(pm, _cac("PayeeFinancialAccount"))
        _sub(account, _cbc("ID"), pay.iban)  # BT-84
        _text(account, "Name", pay.account_name)  # BT-85
        if pay.bic:
            branch = _sub(account, _cac("FinancialInstitutionBranch"))
            _sub(branch, _cbc("ID"), pay.bic)  # BT-86
    if pay.mandate_ref or pay.debited_iban:
        mandate = _sub(pm, _cac("PaymentMandate"))
        _text(mandate, "ID", pay.mandate_ref)  # BT-89
        if pay.debited_iban:
            payer = _sub(mandate, _cac("PayerFinancialAccount"))
            _sub(payer, _cbc("ID"), pay.debited_iban)  # BT-91


def _line(parent: etree._Element, line: Line, doc: InvoiceDocument, *, credit_note: bool) -> None:
    """cac:InvoiceLine / cac:CreditNoteLine (BG-25)."""
    el = _sub(parent, _cac("CreditNoteLine" if credit_note else "InvoiceLine"))
    _sub(el, _cbc("ID"), line.id)  # BT-126
    _text(el, "Note", line.note)  # BT-127 (UBL-SR-34: one)
    _sub(
        el,
        _cbc("CreditedQuantity" if credit_note else "InvoicedQuantity"),
        _dec(line.quantity),
        unitCode=line.unit_code,
    )  # BT-129 / BT-130
    _money(el, "LineExtensionAmount", line.net_amount, doc.currency)  # BT-131
    _text(el, "AccountingCost", line.accounting_ref)  # BT-133
    if line.period_start or line.period_end:
        period = _sub(el, _cac("InvoicePeriod"))
        if line.period_start:
            _sub(period, _cbc("StartDate"), _date(line.period_start))  # BT-134
        if line.period_end:
            _sub(period, _cbc("EndDate"), _date(line.period_end))  # BT-135
    if line.order_line_ref:
        olr = _sub(el, _cac("OrderLineReference"))
        _sub(olr, _cbc("LineID"), line.order_line_ref)  # BT-132
    if line.object_ref:
        # BT-128 line object identifier: DocumentReference with DocumentTypeCode 130 (EN 16931-3-2;
        # UBL-SR-52 allows one).
        ref = _sub(el, _cac("DocumentReference"))
        _sub(ref, _cbc("ID"), line.object_ref)
        _sub(ref, _cbc("DocumentTypeCode"), "130")
    # BG-27 allowances then BG-28 charges; the XSD allows them interleaved, the order is cosmetic.
    for ac in line.allowances:
        _allowance_charge(el, _as(ac, is_charge=False), doc.currency, document_level=False)
    for ac in line.charges:
        _allowance_charge(el, _as(ac, is_charge=True), doc.currency, document_level=False)

    item = _sub(el, _cac("Item"))
    _text(item, "Description", line.description)  # BT-154
    _sub(item, _cbc("Name"), line.name)  # BT-153
    if line.buyer_item_id:
        _sub(_sub(item, _cac("BuyersItemIdentification")), _cbc("ID"), line.buyer_item_id)  # BT-156
    if line.seller_item_id:
        _sub(_sub(item, _cac("SellersItemIdentification")), _cbc("ID"), line.seller_item_id)  # BT-155
    if line.standard_item_id:
        # BT-157 needs its scheme (BR-64); Scell stores GTINs, ICD 0160.
        std = _sub(item, _cac("StandardItemIdentification"))
        _sub(std, _cbc("ID"), line.standard_item_id, schemeID="0160")
    if line.origin_country:
        _sub(_sub(item, _cac("OriginCountry")), _cbc("IdentificationCode"), line.origin_country)  # BT-159
    _tax_category(item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate)  # BT-151 / BT-152

    price = _sub(el, _cac("Price"))
    # BT-146 net price; BR-27 forbids a negative price, BR-FR-DEC-03 caps it at 6 decimals.
    _sub(price, _cbc("PriceAmount"), _dec(line.net_price), currencyID=doc.currency)
    if line.price_base_quantity is not None:
        _sub(price, _cbc("BaseQuantity"), _dec(line.price_base_quantity), unitCode=line.unit_code)  # BT-149
    if line.gross_price is not None:
        # BT-147 price discount = gross - net, BT-148 gross price, as a Price/AllowanceCharge that is
        # always an allowance (EN 16931-3-2).
        discount = _sub(price, _cac("AllowanceCharge"))
        _sub(discount, _cbc("ChargeIndicator"), "false")
        _sub(discount, _cbc("Amount"), _dec(line.gross_price - line.net_price), currencyID=doc.currency)
        _sub(discount, _cbc("BaseAmount"), _dec(line.gross_price), currencyID=doc.currency)


def _as(ac: AllowanceCharge, *, is_charge: bool) -> AllowanceCharge:
    """Allowances live in ``allowances`` and charges in ``charges``: the list decides the indicator, so a
    mis-set ``is_charge`` cannot flip the sign of BG-20/BG-21 sums (BR-CO-11/12)."""
    if ac.is_charge == is_charge:
        return ac
    return replace(ac, is_charge=is_charge)


def build_ubl(doc: InvoiceDocument) -> etree._Element:
    """The UBL tree for ``doc`` (see :func:`to_ubl`)."""
    credit_note = is_credit_note(doc)
    root_ns = NS_CREDIT_NOTE if credit_note else NS_INVOICE
    root = etree.Element(
        f"{{{root_ns}}}{'CreditNote' if credit_note else 'Invoice'}", nsmap={None: root_ns, **_NSMAP_BASE}
    )
    currency = doc.currency
    # BT-6 only when it differs from BT-5: two TaxTotals in the same currency would make BT-110
    # ambiguous (BR-CO-14 counts the TaxAmount in the document currency, it must be exactly one).
    tax_currency = doc.tax_currency if doc.tax_currency and doc.tax_currency != doc.currency else ""

    _sub(root, _cbc("CustomizationID"), CUSTOMIZATION_ID)  # BT-24
    # BT-23: BR-FR-08 requires the French billing framework code (B1, S1, M1, B2...) in cbc:ProfileID.
    _text(root, "ProfileID", doc.business_process)
    _sub(root, _cbc("ID"), doc.number)  # BT-1
    _sub(root, _cbc("IssueDate"), _date(doc.issue_date))  # BT-2
    if credit_note:
        # CreditNote sequence: IssueDate, IssueTime, TaxPointDate, CreditNoteTypeCode, Note...
        if doc.tax_point_date:
            _sub(root, _cbc("TaxPointDate"), _date(doc.tax_point_date))  # BT-7
        _sub(root, _cbc("CreditNoteTypeCode"), str(doc.type_code))  # BT-3
    else:
        # Invoice sequence: IssueDate, IssueTime, DueDate, InvoiceTypeCode, Note, TaxPointDate...
        if doc.due_date:
            _sub(root, _cbc("DueDate"), _date(doc.due_date))  # BT-9
        _sub(root, _cbc("InvoiceTypeCode"), str(doc.type_code))  # BT-3
    for note in doc.notes:
        _sub(root, _cbc("Note"), _note_text(note.subject, note.text))  # BG-1
    if not credit_note and doc.tax_point_date:
        _sub(root, _cbc("TaxPointDate"), _date(doc.tax_point_date))  # BT-7
    _sub(root, _cbc("DocumentCurrencyCode"), currency)  # BT-5
    _text(root, "TaxCurrencyCode", tax_currency)  # BT-6
    _text(root, "AccountingCost", doc.accounting_ref)  # BT-19
    _text(root, "BuyerReference", doc.buyer_reference)  # BT-10

    vat_point_code = VAT_POINT_2475_TO_2005.get(doc.tax_point_code, "") if doc.tax_point_code else ""
    if doc.tax_point_date:
        # BR-CO-03: BT-7 and BT-8 are mutually exclusive; the explicit date wins.
        vat_point_code = ""
    if doc.invoice_period_start or doc.invoice_period_end or vat_point_code:
        period = _sub(root, _cac("InvoicePeriod"))  # BG-14
        if doc.invoice_period_start:
            _sub(period, _cbc("StartDate"), _date(doc.invoice_period_start))  # BT-73
        if doc.invoice_period_end:
            _sub(period, _cbc("EndDate"), _date(doc.invoice_period_end))  # BT-74
        _text(period, "DescriptionCode", vat_point_code)  # BT-8

    if doc.purchase_order_ref or doc.sales_order_ref:
        order = _sub(root, _cac("OrderReference"))
        # cbc:ID is mandatory in UBL; EN 16931-3-2 says to write "NA" when only BT-14 is known.
        _sub(order, _cbc("ID"), doc.purchase_order_ref or "NA")  # BT-13
        _text(order, "SalesOrderID", doc.sales_order_ref)  # BT-14
    for preceding in doc.preceding_invoices:
        # BG-3: one BillingReference per preceding invoice (UBL-SR-06: one InvoiceDocumentReference
        # each). BR-FR-CO-04/05 require them for corrective invoices and credit notes.
        ref = _sub(_sub(root, _cac("BillingReference")), _cac("InvoiceDocumentReference"))
        _sub(ref, _cbc("ID"), preceding.number)  # BT-25
        if preceding.issue_date:
            _sub(ref, _cbc("IssueDate"), _date(preceding.issue_date))  # BT-26
    if doc.delivery_note_ref:
        _sub(_sub(root, _cac("DespatchDocumentReference")), _cbc("ID"), doc.delivery_note_ref)  # BT-16
    if doc.receiving_advice_ref:
        _sub(_sub(root, _cac("ReceiptDocumentReference")), _cbc("ID"), doc.receiving_advice_ref)  # BT-15
    # The two roots order these references differently (XSD): Invoice has OriginatorDocumentReference
    # before ContractDocumentReference, CreditNote after AdditionalDocumentReference.
    if not credit_note:
        _originator(root, doc)
    if doc.contract_ref:
        _sub(_sub(root, _cac("ContractDocumentReference")), _cbc("ID"), doc.contract_ref)  # BT-12
    if doc.invoiced_object_ref:
        # BT-18: AdditionalDocumentReference with DocumentTypeCode 130 and the UNTDID 1153 scheme
        # (UBL-SR-04 allows one, UBL-SR-43 requires the 130 code when a schemeID is present).
        adr = _sub(root, _cac("AdditionalDocumentReference"))
        _sub(adr, _cbc("ID"), doc.invoiced_object_ref, schemeID=doc.invoiced_object_scheme)
        _sub(adr, _cbc("DocumentTypeCode"), "130")
    if doc.project_ref and credit_note:
        # CreditNote has no ProjectReference: EN 16931-3-2 binds BT-11 to an
        # AdditionalDocumentReference with DocumentTypeCode 50 (UBL-SR-43 allows it).
        adr = _sub(root, _cac("AdditionalDocumentReference"))
        _sub(adr, _cbc("ID"), doc.project_ref)
        _sub(adr, _cbc("DocumentTypeCode"), "50")
    if credit_note:
        _originator(root, doc)
    if doc.project_ref and not credit_note:
        _sub(_sub(root, _cac("ProjectReference")), _cbc("ID"), doc.project_ref)  # BT-11

    supplier = _sub(root, _cac("AccountingSupplierParty"))
    _party(supplier, doc.seller, seller=True, creditor_id=doc.payment.creditor_id)
    customer = _sub(root, _cac("AccountingCustomerParty"))
    _party(customer, doc.buyer, seller=False)
    if doc.payee is not None:
        _payee(root, doc.payee)
    if doc.tax_representative is not None:
        _tax_representative(root, doc.tax_representative)

    if doc.delivery is not None:
        _delivery(root, doc.delivery)

    _payment_means(root, doc, credit_note=credit_note)
    if doc.payment.terms:
        _sub(_sub(root, _cac("PaymentTerms")), _cbc("Note"), doc.payment.terms)  # BT-20

    # BG-20 allowances then BG-21 charges (Invoice: after PaymentTerms; CreditNote: same position
    # relative to TaxTotal, exchange rates are not written).
    for ac in doc.allowances:
        _allowance_charge(root, _as(ac, is_charge=False), currency, document_level=True)
    for ac in doc.charges:
        _allowance_charge(root, _as(ac, is_charge=True), currency, document_level=True)

    _tax_totals(root, doc, tax_currency)

    t = doc.totals
    lmt = _sub(root, _cac("LegalMonetaryTotal"))  # BG-22
    _money(lmt, "LineExtensionAmount", t.line_total, currency)  # BT-106
    _money(lmt, "TaxExclusiveAmount", t.tax_exclusive, currency)  # BT-109
    _money(lmt, "TaxInclusiveAmount", t.tax_inclusive, currency)  # BT-112
    if doc.allowances or t.allowance_total:
        _money(lmt, "AllowanceTotalAmount", t.allowance_total, currency)  # BT-107
    if doc.charges or t.charge_total:
        _money(lmt, "ChargeTotalAmount", t.charge_total, currency)  # BT-108
    if t.prepaid:
        _money(lmt, "PrepaidAmount", t.prepaid, currency)  # BT-113
    if t.rounding:
        _money(lmt, "PayableRoundingAmount", t.rounding, currency)  # BT-114
    _money(lmt, "PayableAmount", t.amount_due, currency)  # BT-115

    for line in doc.lines:
        _line(root, line, doc, credit_note=credit_note)
    return root


def _originator(root: etree._Element, doc: InvoiceDocument) -> None:
    if doc.tender_ref:
        # BT-17 tender or lot reference (UBL-SR-56 allows one).
        _sub(_sub(root, _cac("OriginatorDocumentReference")), _cbc("ID"), doc.tender_ref)


def _delivery(root: etree._Element, delivery: Delivery) -> None:
    """cac:Delivery (BG-13): ActualDeliveryDate, DeliveryLocation (ID, Address), DeliveryParty."""
    el = _sub(root, _cac("Delivery"))
    if delivery.date:
        _sub(el, _cbc("ActualDeliveryDate"), _date(delivery.date))  # BT-72
    if delivery.location_id or delivery.address is not None:
        loc = _sub(el, _cac("DeliveryLocation"))
        if delivery.location_id:
            # BT-71 with its scheme (BT-71-1); BR-FR-CO-10 wants one. Without an explicit scheme a
            # 14-digit id is taken as a SIRET (ICD 0009), the only one that can be recognised.
            scheme = delivery.location_scheme or (
                "0009" if delivery.location_id.isdigit() and len(delivery.location_id) == 14 else ""
            )
            _sub(loc, _cbc("ID"), delivery.location_id, schemeID=scheme)
        if delivery.address is not None:
            _address(loc, "Address", delivery.address)  # BG-15
    if delivery.party_name:
        party = _sub(el, _cac("DeliveryParty"))
        _sub(_sub(party, _cac("PartyName")), _cbc("Name"), delivery.party_name)  # BT-70


def to_ubl(doc: InvoiceDocument) -> bytes:
    """Serialise a computed document as UBL 2.1 (UTF-8, with XML declaration).

    Type 381 (and the other credit-note types of UNTDID 1001 France uses) produce a ``CreditNote``;
    everything else an ``Invoice``. The document must already be computed (line net amounts, BG-23,
    BG-22): this writer does no arithmetic besides the BT-111 fallback.
    """
    return etree.tostring(build_ubl(doc), xml_declaration=True, encoding="UTF-8", pretty_print=True)
