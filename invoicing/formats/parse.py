"""Import of incoming e-invoices (Factur-X PDF, CII D16B, UBL 2.1 Invoice/CreditNote) into the
EN 16931 semantic model of ``invoicing.document``.

The parser is deliberately *descriptive*: every amount, including the line net amounts, the VAT
breakdown and the BT-106..BT-115 totals, is read as the file states it and never recomputed, so the
caller can recompute (``invoicing.computation``) and compare to detect inconsistent invoices.

Incoming files are untrusted. XML is parsed without entity resolution, network access or huge-tree
support, DOCTYPE declarations are refused outright (XXE, billion laughs) and inputs are size-capped.
Every failure surfaces as ``ImportFormatError`` (a ``ValueError``) with a message fit for an API user.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

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
    Profile,
    Totals,
    VatBreakdown,
)

# 20 MB is far above any real invoice XML and comfortably above a Factur-X PDF with a few
# attachments, while keeping a single request from exhausting worker memory.
MAX_INPUT_BYTES = 20 * 1024 * 1024

SYNTAX_FACTURX = "facturx"
SYNTAX_CII = "cii"
SYNTAX_UBL_INVOICE = "ubl_invoice"
SYNTAX_UBL_CREDITNOTE = "ubl_creditnote"

NS_CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
UBL_INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDITNOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS_UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}

# Factur-X guideline ids (BT-24) → profile. Anything else that claims EN 16931 compliance (XRechnung,
# national CIUS) is treated as the EN16931 profile since it carries the full semantic model.
_FACTURX_PROFILES: dict[str, str] = {
    "urn:factur-x.eu:1p0:minimum": Profile.MINIMUM,
    "urn:factur-x.eu:1p0:basicwl": Profile.BASIC_WL,
    "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic": Profile.BASIC,
    "urn:cen.eu:en16931:2017": Profile.EN16931,
    "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended": Profile.EXTENDED,
}

# UBL has no note subject element; the EN 16931 UBL binding puts BT-21 in front as "#AAI#text".
_UBL_NOTE_SUBJECT = re.compile(r"^#([A-Z]{3})#(.*)$", re.DOTALL)


class ImportFormatError(ValueError):
    """The input is not an invoice we can read: unknown syntax, malformed, unsafe or incomplete."""


@dataclass
class ParsedInvoice:
    """Result of :func:`parse_invoice`: the semantic document plus where it came from."""

    document: InvoiceDocument
    syntax: str  # one of the SYNTAX_* constants
    profile: str | None  # Factur-X profile for Factur-X/CII, None for UBL
    source_xml: bytes  # the invoice XML (extracted from the PDF for Factur-X)
    specification_id: str = ""  # BT-24 as found in the file


# --------------------------------------------------------------------------------------------
# Safe XML loading and syntax detection
# --------------------------------------------------------------------------------------------


def _check_size(data: bytes) -> None:
    if not isinstance(data, bytes | bytearray):
        raise ImportFormatError(f"Expected bytes, got {type(data).__name__}.")
    if not data:
        raise ImportFormatError("Empty input: no invoice to import.")
    if len(data) > MAX_INPUT_BYTES:
        raise ImportFormatError(
            f"Input too large: {len(data)} bytes, the maximum is {MAX_INPUT_BYTES} bytes "
            f"({MAX_INPUT_BYTES // (1024 * 1024)} MB)."
        )


def safe_parser() -> etree.XMLParser:
    """The parser of untrusted XML (invoices, CDAR messages): nothing fetched, no entity expanded."""
    # A fresh parser per call: lxml parsers are not thread-safe and these options must never drift.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )


def _load_xml(data: bytes) -> etree._Element:
    """Parse untrusted XML, refusing any DOCTYPE (the vector of XXE and entity-expansion attacks)."""
    _check_size(data)
    # Cheap pre-check before handing the bytes to libxml2 at all; the docinfo check below also catches
    # encodings (UTF-16...) where the declaration is not ASCII-visible.
    if b"<!DOCTYPE" in data[:65536].upper():
        raise ImportFormatError("XML with a DOCTYPE declaration is refused (security).")
    try:
        root = etree.fromstring(bytes(data), parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise ImportFormatError(f"Malformed XML: {exc}") from exc
    except ValueError as exc:  # e.g. unicode strings with an encoding declaration
        raise ImportFormatError(f"Unreadable XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise ImportFormatError("XML with a DOCTYPE declaration is refused (security).")
    return root


def _is_pdf(data: bytes) -> bool:
    # ISO 32000 lets the header sit anywhere in the first 1024 bytes (some generators prepend junk).
    return b"%PDF-" in data[:1024]


def _syntax_of_root(root: etree._Element) -> str:
    qname = etree.QName(root)
    if qname.namespace == NS_CII["rsm"] and qname.localname == "CrossIndustryInvoice":
        return SYNTAX_CII
    if qname.namespace == UBL_INVOICE_NS and qname.localname == "Invoice":
        return SYNTAX_UBL_INVOICE
    if qname.namespace == UBL_CREDITNOTE_NS and qname.localname == "CreditNote":
        return SYNTAX_UBL_CREDITNOTE
    if qname.localname == "CrossIndustryDocument":
        raise ImportFormatError(
            "ZUGFeRD 1.0 (CrossIndustryDocument) is not supported; use ZUGFeRD 2 / Factur-X."
        )
    raise ImportFormatError(
        f"Unknown XML document {{{qname.namespace or ''}}}{qname.localname}: expected a CII "
        "CrossIndustryInvoice or a UBL 2.1 Invoice / CreditNote."
    )


def _load_invoice_xml(data: bytes) -> tuple[str, etree._Element]:
    """Parse non-PDF input as XML and name its syntax."""
    stripped = bytes(data[:1024]).lstrip(b"\xef\xbb\xbf \t\r\n")
    # UTF-16 documents start with a byte order mark rather than "<".
    if not (stripped.startswith(b"<") or stripped.startswith((b"\xff\xfe", b"\xfe\xff"))):
        raise ImportFormatError("Unrecognised input: neither a PDF nor an XML document.")
    root = _load_xml(data)
    return _syntax_of_root(root), root


def detect_syntax(data: bytes) -> str:
    """Return "facturx" (PDF), "cii", "ubl_invoice" or "ubl_creditnote"; raise ImportFormatError."""
    _check_size(data)
    if _is_pdf(data):
        return SYNTAX_FACTURX
    return _load_invoice_xml(data)[0]


# --------------------------------------------------------------------------------------------
# Small typed readers shared by both syntaxes
# --------------------------------------------------------------------------------------------


class _Reader:
    """XPath helpers bound to one namespace map, turning values into model types with BT-named errors."""

    def __init__(self, ns: dict[str, str]) -> None:
        self.ns = ns

    def nodes(self, ctx: etree._Element, path: str) -> list[etree._Element]:
        return ctx.xpath(path, namespaces=self.ns)

    def node(self, ctx: etree._Element | None, path: str) -> etree._Element | None:
        if ctx is None:
            return None
        found = ctx.xpath(path, namespaces=self.ns)
        return found[0] if found else None

    def text(self, ctx: etree._Element | None, path: str) -> str:
        el = self.node(ctx, path)
        if el is None:
            return ""
        return (el.text or "").strip()

    def attr(self, ctx: etree._Element | None, path: str, name: str) -> str:
        el = self.node(ctx, path)
        if el is None:
            return ""
        return (el.get(name) or "").strip()

    def required(self, ctx: etree._Element, path: str, bt: str) -> str:
        value = self.text(ctx, path)
        if not value:
            raise ImportFormatError(f"Missing mandatory {bt}: no value at {_where(ctx, path)}.")
        return value

    def decimal(self, ctx: etree._Element | None, path: str, bt: str) -> Decimal | None:
        value = self.text(ctx, path)
        if not value:
            return None
        return _to_decimal(value, bt)

    def required_decimal(self, ctx: etree._Element, path: str, bt: str) -> Decimal:
        return _to_decimal(self.required(ctx, path, bt), bt)


def _where(ctx: etree._Element, path: str) -> str:
    return f"{etree.QName(ctx).localname}/{path}"


def _to_decimal(value: str, bt: str) -> Decimal:
    try:
        result = Decimal(value.strip())
    except InvalidOperation as exc:
        raise ImportFormatError(f"Invalid number for {bt}: {value!r}.") from exc
    if not result.is_finite():
        raise ImportFormatError(f"Invalid number for {bt}: {value!r}.")
    return result


def _iso_date(value: str, bt: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise ImportFormatError(f"Invalid date for {bt}: {value!r} (expected YYYY-MM-DD).") from exc


def _cii_date(value: str, fmt: str, bt: str) -> dt.date:
    """CII dates: format 102 = CCYYMMDD (the only one EN 16931 allows); 610 = CCYYMM, taken as the 1st."""
    value = value.strip()
    try:
        if fmt in ("", "102"):
            return dt.datetime.strptime(value, "%Y%m%d").date()
        if fmt == "610":
            return dt.datetime.strptime(value + "01", "%Y%m%d").date()
    except ValueError as exc:
        raise ImportFormatError(f"Invalid date for {bt}: {value!r} (format {fmt or '102'}).") from exc
    raise ImportFormatError(f"Unsupported date format {fmt!r} for {bt}.")


# ZUGFeRD 2.x names the same levels under urn:zugferd.de:2p0:*, hence matching on the last segment.
_PROFILE_SUFFIXES: tuple[tuple[str, str], ...] = (
    (":minimum", Profile.MINIMUM),
    (":basicwl", Profile.BASIC_WL),
    (":basic", Profile.BASIC),
    (":extended", Profile.EXTENDED),
)


def _profile_of(guideline: str) -> str | None:
    """Factur-X profile from the BT-24 guideline id; None when it names no profile we know."""
    if guideline in _FACTURX_PROFILES:
        return str(_FACTURX_PROFILES[guideline])
    for suffix, profile in _PROFILE_SUFFIXES:
        if guideline.endswith(suffix) and ("factur-x" in guideline or "zugferd" in guideline):
            return str(profile)
    if guideline.startswith("urn:cen.eu:en16931:2017"):
        return str(Profile.EN16931)  # EN 16931 itself or a CIUS of it (XRechnung, Peppol...)
    return None


# --------------------------------------------------------------------------------------------
# CII D16B
# --------------------------------------------------------------------------------------------

_C = _Reader(NS_CII)


def _cii_date_at(ctx: etree._Element | None, path: str, bt: str) -> dt.date | None:
    el = _C.node(ctx, path)
    if el is None or not (el.text or "").strip():
        return None
    return _cii_date(el.text or "", el.get("format", ""), bt)


def _cii_address(el: etree._Element | None) -> Address | None:
    if el is None:
        return None
    return Address(
        line1=_C.text(el, "ram:LineOne"),
        line2=_C.text(el, "ram:LineTwo"),
        line3=_C.text(el, "ram:LineThree"),
        city=_C.text(el, "ram:CityName"),
        postcode=_C.text(el, "ram:PostcodeCode"),
        subdivision=_C.text(el, "ram:CountrySubDivisionName"),
        country=_C.text(el, "ram:CountryID"),
    )


def _assign_ids(party: Party, ids: list[tuple[str, str]]) -> None:
    """BT-29/BT-46: SIRET (scheme 0009) gets its own field, the others are kept with their scheme."""
    for value, scheme in ids:
        if scheme == "0009" and not party.siret:
            party.siret = value
        elif (value, scheme) == (party.siret, "0009") or (value, scheme) in party.other_ids:
            continue  # the same id stated twice (ram:ID and ram:GlobalID) is one id
        else:
            party.other_ids.append((value, scheme))


def _assign_legal_id(party: Party, value: str, scheme: str) -> None:
    """BT-30/BT-47: SIREN (scheme 0002) gets its own field, any other register is kept with its scheme."""
    if not value:
        return
    if scheme == "0002":
        party.siren = value
    else:
        party.legal_id, party.legal_id_scheme = value, scheme


def _cii_party(el: etree._Element | None, bt_name: str, *, required: bool = True) -> Party | None:
    if el is None:
        if required:
            raise ImportFormatError(f"Missing mandatory {bt_name}: the party is absent.")
        return None
    name = _C.text(el, "ram:Name")
    if not name and required:
        raise ImportFormatError(f"Missing mandatory {bt_name}: no value at {_where(el, 'ram:Name')}.")
    party = Party(name=name)
    # ram:ID usually has no scheme (seller-assigned), ram:GlobalID always has one; both are BT-29/46.
    ids = [
        (_C.text(e, "."), (e.get("schemeID") or "").strip()) for e in _C.nodes(el, "ram:ID | ram:GlobalID")
    ]
    _assign_ids(party, [(v, s) for v, s in ids if v])
    legal = _C.node(el, "ram:SpecifiedLegalOrganization")
    if legal is not None:
        _assign_legal_id(party, _C.text(legal, "ram:ID"), _C.attr(legal, "ram:ID", "schemeID"))
        party.trading_name = _C.text(legal, "ram:TradingBusinessName")
    party.legal_form = _C.text(el, "ram:Description")
    for reg in _C.nodes(el, "ram:SpecifiedTaxRegistration/ram:ID"):
        value, scheme = (reg.text or "").strip(), (reg.get("schemeID") or "").strip()
        if scheme == "VA":
            party.vat_id = value
        elif scheme == "FC":
            party.tax_registration_id = value
    address = _cii_address(_C.node(el, "ram:PostalTradeAddress"))
    if address is not None:
        party.address = address
    uri = _C.node(el, "ram:URIUniversalCommunication/ram:URIID")
    if uri is not None and (uri.text or "").strip():
        party.electronic_address = ElectronicAddress(
            value=(uri.text or "").strip(), scheme=(uri.get("schemeID") or "").strip()
        )
    contact = _C.node(el, "ram:DefinedTradeContact")
    if contact is not None:
        party.contact_name = _C.text(contact, "ram:PersonName") or _C.text(contact, "ram:DepartmentName")
        party.contact_phone = _C.text(contact, "ram:TelephoneUniversalCommunication/ram:CompleteNumber")
        party.contact_email = _C.text(contact, "ram:EmailURIUniversalCommunication/ram:URIID")
    return party


def _cii_indicator(el: etree._Element, bt: str) -> bool:
    value = _C.text(el, "ram:ChargeIndicator/udt:Indicator").lower()
    # xsd:boolean: "1"/"0" are as valid as "true"/"false".
    if value not in ("true", "false", "1", "0"):
        raise ImportFormatError(f"Invalid or missing charge indicator for {bt}: {value!r}.")
    return value in ("true", "1")


def _cii_allowance_charge(el: etree._Element, *, document_level: bool) -> AllowanceCharge:
    bt = "BG-20/BG-21" if document_level else "BG-27/BG-28"
    ac = AllowanceCharge(
        is_charge=_cii_indicator(el, bt),
        amount=_C.required_decimal(el, "ram:ActualAmount", f"{bt} amount"),
        base_amount=_C.decimal(el, "ram:BasisAmount", f"{bt} base amount"),
        percent=_C.decimal(el, "ram:CalculationPercent", f"{bt} percentage"),
        reason=_C.text(el, "ram:Reason"),
        reason_code=_C.text(el, "ram:ReasonCode"),
    )
    if document_level:
        ac.vat_category = _C.text(el, "ram:CategoryTradeTax/ram:CategoryCode")
        ac.vat_rate = _C.decimal(el, "ram:CategoryTradeTax/ram:RateApplicablePercent", f"{bt} VAT rate")
    return ac


def _cii_line(el: etree._Element) -> Line:
    line_id = _C.required(el, "ram:AssociatedDocumentLineDocument/ram:LineID", "BT-126 (line identifier)")
    bt = f"line {line_id}"
    product = _C.node(el, "ram:SpecifiedTradeProduct")
    agreement = _C.node(el, "ram:SpecifiedLineTradeAgreement")
    settlement = _C.node(el, "ram:SpecifiedLineTradeSettlement")
    quantity_el = _C.node(el, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity")
    if quantity_el is None or not (quantity_el.text or "").strip():
        raise ImportFormatError(f"Missing mandatory BT-129 (invoiced quantity) on {bt}.")
    if product is None or not _C.text(product, "ram:Name"):
        raise ImportFormatError(f"Missing mandatory BT-153 (item name) on {bt}.")
    if settlement is None:
        raise ImportFormatError(f"Missing mandatory BG-30 (line VAT information) on {bt}.")
    net_price = _C.decimal(agreement, "ram:NetPriceProductTradePrice/ram:ChargeAmount", f"BT-146 on {bt}")
    if net_price is None:
        raise ImportFormatError(f"Missing mandatory BT-146 (item net price) on {bt}.")
    vat_category = _C.text(settlement, "ram:ApplicableTradeTax/ram:CategoryCode")
    if not vat_category:
        raise ImportFormatError(f"Missing mandatory BT-151 (item VAT category) on {bt}.")
    line = Line(
        id=line_id,
        name=_C.text(product, "ram:Name"),
        quantity=_to_decimal(quantity_el.text or "", f"BT-129 on {bt}"),
        unit_code=(quantity_el.get("unitCode") or "").strip(),
        net_price=net_price,
        vat_category=vat_category,
        vat_rate=_C.decimal(
            settlement, "ram:ApplicableTradeTax/ram:RateApplicablePercent", f"BT-152 on {bt}"
        ),
        description=_C.text(product, "ram:Description"),
        gross_price=_C.decimal(
            agreement, "ram:GrossPriceProductTradePrice/ram:ChargeAmount", f"BT-148 on {bt}"
        ),
        price_base_quantity=_C.decimal(
            agreement, "ram:NetPriceProductTradePrice/ram:BasisQuantity", f"BT-149 on {bt}"
        )
        or _C.decimal(agreement, "ram:GrossPriceProductTradePrice/ram:BasisQuantity", f"BT-149 on {bt}"),
        net_amount=_C.required_decimal(
            settlement,
            "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
            f"BT-131 (line net amount) on {bt}",
        ),
        note=_C.text(el, "ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content"),
        seller_item_id=_C.text(product, "ram:SellerAssignedID"),
        buyer_item_id=_C.text(product, "ram:BuyerAssignedID"),
        standard_item_id=_C.text(product, "ram:GlobalID"),
        origin_country=_C.text(product, "ram:OriginTradeCountry/ram:ID"),
        period_start=_cii_date_at(
            settlement, "ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString", f"BT-134 on {bt}"
        ),
        period_end=_cii_date_at(
            settlement, "ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString", f"BT-135 on {bt}"
        ),
        order_line_ref=_C.text(agreement, "ram:BuyerOrderReferencedDocument/ram:LineID"),
        object_ref=_C.text(
            settlement, "ram:AdditionalReferencedDocument[ram:TypeCode='130']/ram:IssuerAssignedID"
        ),
        accounting_ref=_C.text(settlement, "ram:ReceivableSpecifiedTradeAccountingAccount/ram:ID"),
    )
    for ac_el in _C.nodes(settlement, "ram:SpecifiedTradeAllowanceCharge"):
        ac = _cii_allowance_charge(ac_el, document_level=False)
        (line.charges if ac.is_charge else line.allowances).append(ac)
    for cls in _C.nodes(product, "ram:DesignatedProductClassification/ram:ClassCode"):
        line.classifications.append(((cls.text or "").strip(), (cls.get("listID") or "").strip()))
    for attr in _C.nodes(product, "ram:ApplicableProductCharacteristic"):
        line.attributes.append((_C.text(attr, "ram:Description"), _C.text(attr, "ram:Value")))
    return line


def _cii_document(root: etree._Element) -> tuple[InvoiceDocument, str]:
    """Map a CII CrossIndustryInvoice to the model; also return the BT-24 guideline id."""
    guideline = _C.text(
        root, "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"
    )
    profile = _profile_of(guideline)
    header = _C.node(root, "rsm:ExchangedDocument")
    if header is None:
        raise ImportFormatError("Missing mandatory ExchangedDocument (BT-1, BT-2, BT-3).")
    transaction = _C.node(root, "rsm:SupplyChainTradeTransaction")
    if transaction is None:
        raise ImportFormatError("Missing mandatory SupplyChainTradeTransaction.")
    agreement = _C.node(transaction, "ram:ApplicableHeaderTradeAgreement")
    delivery_el = _C.node(transaction, "ram:ApplicableHeaderTradeDelivery")
    settlement = _C.node(transaction, "ram:ApplicableHeaderTradeSettlement")
    if agreement is None or settlement is None:
        raise ImportFormatError(
            "Missing mandatory ApplicableHeaderTradeAgreement / ApplicableHeaderTradeSettlement."
        )

    issue_date = _cii_date_at(header, "ram:IssueDateTime/udt:DateTimeString", "BT-2 (issue date)")
    if issue_date is None:
        raise ImportFormatError("Missing mandatory BT-2 (invoice issue date).")
    currency = _C.required(settlement, "ram:InvoiceCurrencyCode", "BT-5 (invoice currency code)")
    seller = _cii_party(_C.node(agreement, "ram:SellerTradeParty"), "BT-27 (seller name)")
    buyer = _cii_party(_C.node(agreement, "ram:BuyerTradeParty"), "BT-44 (buyer name)")
    if seller is None or buyer is None:  # unreachable: required=True raises first; narrows types
        raise ImportFormatError("Missing mandatory BG-4 / BG-7 (seller / buyer).")

    lines = [_cii_line(el) for el in _C.nodes(transaction, "ram:IncludedSupplyChainTradeLineItem")]
    # MINIMUM and BASIC WL Factur-X carry no lines by design; every other profile needs at least one.
    if not lines and profile not in (Profile.MINIMUM, Profile.BASIC_WL):
        raise ImportFormatError("Missing mandatory BG-25: the invoice has no line.")

    doc = InvoiceDocument(
        number=_C.required(header, "ram:ID", "BT-1 (invoice number)"),
        type_code=_C.required(header, "ram:TypeCode", "BT-3 (invoice type code)"),
        issue_date=issue_date,
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=lines,
    )
    if profile is not None:
        doc.profile = profile
    doc.business_process = _C.text(
        root, "rsm:ExchangedDocumentContext/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID"
    )
    doc.notes = [
        Note(text=_C.text(n, "ram:Content"), subject=_C.text(n, "ram:SubjectCode"))
        for n in _C.nodes(header, "ram:IncludedNote")
    ]

    # Header agreement: references and extra parties.
    doc.buyer_reference = _C.text(agreement, "ram:BuyerReference")
    doc.sales_order_ref = _C.text(agreement, "ram:SellerOrderReferencedDocument/ram:IssuerAssignedID")
    doc.purchase_order_ref = _C.text(agreement, "ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID")
    doc.contract_ref = _C.text(agreement, "ram:ContractReferencedDocument/ram:IssuerAssignedID")
    doc.project_ref = _C.text(agreement, "ram:SpecifiedProcuringProject/ram:ID")
    doc.tender_ref = _C.text(
        agreement, "ram:AdditionalReferencedDocument[ram:TypeCode='50']/ram:IssuerAssignedID"
    )
    invoiced_object = _C.node(agreement, "ram:AdditionalReferencedDocument[ram:TypeCode='130']")
    if invoiced_object is not None:
        doc.invoiced_object_ref = _C.text(invoiced_object, "ram:IssuerAssignedID")
        doc.invoiced_object_scheme = _C.text(invoiced_object, "ram:ReferenceTypeCode")
    tax_rep = _C.node(agreement, "ram:SellerTaxRepresentativeTradeParty")
    doc.tax_representative = _cii_party(
        tax_rep, "BT-62 (tax representative name)", required=tax_rep is not None
    )

    # Header delivery.
    if delivery_el is not None:
        doc.receiving_advice_ref = _C.text(
            delivery_el, "ram:ReceivingAdviceReferencedDocument/ram:IssuerAssignedID"
        )
        doc.delivery_note_ref = _C.text(
            delivery_el, "ram:DespatchAdviceReferencedDocument/ram:IssuerAssignedID"
        )
        ship_to = _C.node(delivery_el, "ram:ShipToTradeParty")
        date = _cii_date_at(
            delivery_el,
            "ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/udt:DateTimeString",
            "BT-72 (actual delivery date)",
        )
        if ship_to is not None or date is not None:
            doc.delivery = Delivery(
                date=date,
                party_name=_C.text(ship_to, "ram:Name"),
                location_id=_C.text(ship_to, "ram:GlobalID") or _C.text(ship_to, "ram:ID"),
                address=_cii_address(_C.node(ship_to, "ram:PostalTradeAddress")),
            )

    # Header settlement.
    doc.tax_currency = _C.text(settlement, "ram:TaxCurrencyCode")
    doc.accounting_ref = _C.text(settlement, "ram:ReceivableSpecifiedTradeAccountingAccount/ram:ID")
    doc.invoice_period_start = _cii_date_at(
        settlement, "ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString", "BT-73"
    )
    doc.invoice_period_end = _cii_date_at(
        settlement, "ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString", "BT-74"
    )
    payee = _C.node(settlement, "ram:PayeeTradeParty")
    doc.payee = _cii_party(payee, "BT-59 (payee name)", required=payee is not None)
    for ref in _C.nodes(settlement, "ram:InvoiceReferencedDocument"):
        doc.preceding_invoices.append(
            PrecedingInvoice(
                number=_C.required(ref, "ram:IssuerAssignedID", "BT-25 (preceding invoice reference)"),
                issue_date=_cii_date_at(ref, "ram:FormattedIssueDateTime/qdt:DateTimeString", "BT-26"),
            )
        )
    doc.payment = _cii_payment(settlement)
    doc.due_date = _cii_date_at(
        settlement, "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString", "BT-9 (due date)"
    )
    for ac_el in _C.nodes(settlement, "ram:SpecifiedTradeAllowanceCharge"):
        ac = _cii_allowance_charge(ac_el, document_level=True)
        (doc.charges if ac.is_charge else doc.allowances).append(ac)
    for tax in _C.nodes(settlement, "ram:ApplicableTradeTax"):
        doc.vat_breakdown.append(_cii_vat(tax))
        doc.tax_point_date = doc.tax_point_date or _cii_date_at(
            tax, "ram:TaxPointDate/udt:DateString", "BT-7"
        )
        doc.tax_point_code = doc.tax_point_code or _C.text(tax, "ram:DueDateTypeCode")
    _fill_exemption_reasons(doc)
    doc.totals = _cii_totals(settlement, currency, doc.tax_currency, profile)
    return doc, guideline


def _cii_payment(settlement: etree._Element) -> Payment:
    payment = Payment(means_code="")
    means_list = _C.nodes(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    # The model holds one payment means: prefer the first one that carries an account to pay into.
    means = next(
        (m for m in means_list if _C.node(m, "ram:PayeePartyCreditorFinancialAccount") is not None),
        means_list[0] if means_list else None,
    )
    if means is not None:
        payment.means_code = _C.text(means, "ram:TypeCode")
        payment.means_text = _C.text(means, "ram:Information")
        account = _C.node(means, "ram:PayeePartyCreditorFinancialAccount")
        payment.iban = _C.text(account, "ram:IBANID") or _C.text(account, "ram:ProprietaryID")
        payment.account_name = _C.text(account, "ram:AccountName")
        payment.bic = _C.text(means, "ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID")
        payment.debited_iban = _C.text(means, "ram:PayerPartyDebtorFinancialAccount/ram:IBANID")
    payment.remittance_info = _C.text(settlement, "ram:PaymentReference")
    payment.creditor_id = _C.text(settlement, "ram:CreditorReferenceID")
    # Several payment terms blocks may each carry a part of BT-20; the model holds one text.
    payment.terms = "\n".join(
        t
        for t in (
            _C.text(n, ".") for n in _C.nodes(settlement, "ram:SpecifiedTradePaymentTerms/ram:Description")
        )
        if t
    )
    payment.mandate_ref = _C.text(settlement, "ram:SpecifiedTradePaymentTerms/ram:DirectDebitMandateID")
    return payment


def _cii_vat(tax: etree._Element) -> VatBreakdown:
    category = _C.required(tax, "ram:CategoryCode", "BT-118 (VAT category code)")
    bt = f"VAT breakdown {category}"
    return VatBreakdown(
        category=category,
        rate=_C.decimal(tax, "ram:RateApplicablePercent", f"BT-119 on {bt}"),
        taxable_amount=_C.required_decimal(tax, "ram:BasisAmount", f"BT-116 (taxable amount) on {bt}"),
        tax_amount=_C.required_decimal(tax, "ram:CalculatedAmount", f"BT-117 (VAT amount) on {bt}"),
        exemption_reason=_C.text(tax, "ram:ExemptionReason"),
        exemption_reason_code=_C.text(tax, "ram:ExemptionReasonCode"),
    )


def _cii_totals(settlement: etree._Element, currency: str, tax_currency: str, profile: str | None) -> Totals:
    sums = _C.node(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    if sums is None:
        raise ImportFormatError("Missing mandatory BG-22 (document totals).")

    def opt(tag: str, bt: str) -> Decimal:
        value = _C.decimal(sums, f"ram:{tag}", bt)
        return Decimal("0") if value is None else value

    totals = Totals(
        # BT-106 is absent by design from Factur-X MINIMUM only.
        line_total=opt("LineTotalAmount", "BT-106")
        if profile == Profile.MINIMUM
        else _C.required_decimal(sums, "ram:LineTotalAmount", "BT-106 (sum of line net amounts)"),
        allowance_total=opt("AllowanceTotalAmount", "BT-107"),
        charge_total=opt("ChargeTotalAmount", "BT-108"),
        tax_exclusive=_C.required_decimal(sums, "ram:TaxBasisTotalAmount", "BT-109 (total without VAT)"),
        tax_inclusive=_C.required_decimal(sums, "ram:GrandTotalAmount", "BT-112 (total with VAT)"),
        prepaid=opt("TotalPrepaidAmount", "BT-113"),
        rounding=opt("RoundingAmount", "BT-114"),
        amount_due=_C.required_decimal(sums, "ram:DuePayableAmount", "BT-115 (amount due for payment)"),
    )
    tax_totals = _C.nodes(sums, "ram:TaxTotalAmount")
    for el in tax_totals:
        cur = (el.get("currencyID") or "").strip()
        value = _to_decimal(el.text or "", "BT-110/BT-111 (invoice total VAT amount)")
        # BT-111 is the one in the VAT accounting currency when that differs from the invoice currency.
        if tax_currency and tax_currency != currency and cur == tax_currency:
            totals.tax_total_accounting = value
        elif cur in ("", currency):
            totals.tax_total = value
    return totals


def _fill_exemption_reasons(doc: InvoiceDocument) -> None:
    for vat in doc.vat_breakdown:
        if (vat.exemption_reason or vat.exemption_reason_code) and vat.category not in doc.exemption_reasons:
            doc.exemption_reasons[vat.category] = (vat.exemption_reason_code, vat.exemption_reason)


# --------------------------------------------------------------------------------------------
# UBL 2.1 Invoice and CreditNote
# --------------------------------------------------------------------------------------------

_U = _Reader(NS_UBL)


def _ubl_date_at(ctx: etree._Element | None, path: str, bt: str) -> dt.date | None:
    value = _U.text(ctx, path)
    return _iso_date(value, bt) if value else None


def _ubl_address(el: etree._Element | None) -> Address | None:
    if el is None:
        return None
    return Address(
        line1=_U.text(el, "cbc:StreetName"),
        line2=_U.text(el, "cbc:AdditionalStreetName"),
        line3=_U.text(el, "cac:AddressLine/cbc:Line"),
        city=_U.text(el, "cbc:CityName"),
        postcode=_U.text(el, "cbc:PostalZone"),
        subdivision=_U.text(el, "cbc:CountrySubentity"),
        country=_U.text(el, "cac:Country/cbc:IdentificationCode"),
    )


def _ubl_party(el: etree._Element | None, bt_name: str, *, required: bool = True) -> Party | None:
    if el is None:
        if required:
            raise ImportFormatError(f"Missing mandatory {bt_name}: the party is absent.")
        return None
    # BT-27/44 is the registration name; payee and tax representative only have cac:PartyName.
    registration_name = _U.text(el, "cac:PartyLegalEntity/cbc:RegistrationName")
    party_name = _U.text(el, "cac:PartyName/cbc:Name")
    name = registration_name or party_name
    if not name and required:
        raise ImportFormatError(f"Missing mandatory {bt_name}: no RegistrationName or PartyName.")
    party = Party(name=name)
    if registration_name and party_name and party_name != registration_name:
        party.trading_name = party_name
    ids = [
        ((e.text or "").strip(), (e.get("schemeID") or "").strip())
        for e in _U.nodes(el, "cac:PartyIdentification/cbc:ID")
    ]
    # schemeID "SEPA" is the BT-90 creditor identifier, not a party identifier; the caller takes it.
    _assign_ids(party, [(v, s) for v, s in ids if v and s != "SEPA"])
    _assign_legal_id(
        party,
        _U.text(el, "cac:PartyLegalEntity/cbc:CompanyID"),
        _U.attr(el, "cac:PartyLegalEntity/cbc:CompanyID", "schemeID"),
    )
    party.legal_form = _U.text(el, "cac:PartyLegalEntity/cbc:CompanyLegalForm")
    for scheme in _U.nodes(el, "cac:PartyTaxScheme"):
        value = _U.text(scheme, "cbc:CompanyID")
        if _U.text(scheme, "cac:TaxScheme/cbc:ID") == "VAT":
            party.vat_id = value
        elif value:
            party.tax_registration_id = value
    address = _ubl_address(_U.node(el, "cac:PostalAddress"))
    if address is not None:
        party.address = address
    endpoint = _U.node(el, "cbc:EndpointID")
    if endpoint is not None and (endpoint.text or "").strip():
        party.electronic_address = ElectronicAddress(
            value=(endpoint.text or "").strip(), scheme=(endpoint.get("schemeID") or "").strip()
        )
    contact = _U.node(el, "cac:Contact")
    if contact is not None:
        party.contact_name = _U.text(contact, "cbc:Name")
        party.contact_phone = _U.text(contact, "cbc:Telephone")
        party.contact_email = _U.text(contact, "cbc:ElectronicMail")
    return party


def _ubl_indicator(el: etree._Element, bt: str) -> bool:
    value = _U.text(el, "cbc:ChargeIndicator").lower()
    # xsd:boolean: "1"/"0" are as valid as "true"/"false".
    if value not in ("true", "false", "1", "0"):
        raise ImportFormatError(f"Invalid or missing charge indicator for {bt}: {value!r}.")
    return value in ("true", "1")


def _ubl_allowance_charge(el: etree._Element, *, document_level: bool) -> AllowanceCharge:
    bt = "BG-20/BG-21" if document_level else "BG-27/BG-28"
    ac = AllowanceCharge(
        is_charge=_ubl_indicator(el, bt),
        amount=_U.required_decimal(el, "cbc:Amount", f"{bt} amount"),
        base_amount=_U.decimal(el, "cbc:BaseAmount", f"{bt} base amount"),
        percent=_U.decimal(el, "cbc:MultiplierFactorNumeric", f"{bt} percentage"),
        reason=_U.text(el, "cbc:AllowanceChargeReason"),
        reason_code=_U.text(el, "cbc:AllowanceChargeReasonCode"),
    )
    if document_level:
        ac.vat_category = _U.text(el, "cac:TaxCategory/cbc:ID")
        ac.vat_rate = _U.decimal(el, "cac:TaxCategory/cbc:Percent", f"{bt} VAT rate")
    return ac


def _ubl_line(el: etree._Element, quantity_tag: str) -> Line:
    line_id = _U.required(el, "cbc:ID", "BT-126 (line identifier)")
    bt = f"line {line_id}"
    item = _U.node(el, "cac:Item")
    price = _U.node(el, "cac:Price")
    quantity_el = _U.node(el, f"cbc:{quantity_tag}")
    if quantity_el is None or not (quantity_el.text or "").strip():
        raise ImportFormatError(f"Missing mandatory BT-129 (invoiced quantity) on {bt}.")
    if item is None or not _U.text(item, "cbc:Name"):
        raise ImportFormatError(f"Missing mandatory BT-153 (item name) on {bt}.")
    net_price = _U.decimal(price, "cbc:PriceAmount", f"BT-146 on {bt}")
    if net_price is None:
        raise ImportFormatError(f"Missing mandatory BT-146 (item net price) on {bt}.")
    vat_category = _U.text(item, "cac:ClassifiedTaxCategory/cbc:ID")
    if not vat_category:
        raise ImportFormatError(f"Missing mandatory BT-151 (item VAT category) on {bt}.")
    line = Line(
        id=line_id,
        name=_U.text(item, "cbc:Name"),
        quantity=_to_decimal(quantity_el.text or "", f"BT-129 on {bt}"),
        unit_code=(quantity_el.get("unitCode") or "").strip(),
        net_price=net_price,
        vat_category=vat_category,
        vat_rate=_U.decimal(item, "cac:ClassifiedTaxCategory/cbc:Percent", f"BT-152 on {bt}"),
        description=_U.text(item, "cbc:Description"),
        # BT-148 gross price is the base amount of the price discount in UBL.
        gross_price=_U.decimal(price, "cac:AllowanceCharge/cbc:BaseAmount", f"BT-148 on {bt}"),
        price_base_quantity=_U.decimal(price, "cbc:BaseQuantity", f"BT-149 on {bt}"),
        net_amount=_U.required_decimal(el, "cbc:LineExtensionAmount", f"BT-131 (line net amount) on {bt}"),
        note=_U.text(el, "cbc:Note"),
        seller_item_id=_U.text(item, "cac:SellersItemIdentification/cbc:ID"),
        buyer_item_id=_U.text(item, "cac:BuyersItemIdentification/cbc:ID"),
        standard_item_id=_U.text(item, "cac:StandardItemIdentification/cbc:ID"),
        origin_country=_U.text(item, "cac:OriginCountry/cbc:IdentificationCode"),
        period_start=_ubl_date_at(el, "cac:InvoicePeriod/cbc:StartDate", f"BT-134 on {bt}"),
        period_end=_ubl_date_at(el, "cac:InvoicePeriod/cbc:EndDate", f"BT-135 on {bt}"),
        order_line_ref=_U.text(el, "cac:OrderLineReference/cbc:LineID"),
        object_ref=_U.text(el, "cac:DocumentReference[cbc:DocumentTypeCode='130']/cbc:ID"),
        accounting_ref=_U.text(el, "cbc:AccountingCost"),
    )
    for ac_el in _U.nodes(el, "cac:AllowanceCharge"):
        ac = _ubl_allowance_charge(ac_el, document_level=False)
        (line.charges if ac.is_charge else line.allowances).append(ac)
    for cls in _U.nodes(item, "cac:CommodityClassification/cbc:ItemClassificationCode"):
        line.classifications.append(((cls.text or "").strip(), (cls.get("listID") or "").strip()))
    for prop in _U.nodes(item, "cac:AdditionalItemProperty"):
        line.attributes.append((_U.text(prop, "cbc:Name"), _U.text(prop, "cbc:Value")))
    return line


def _ubl_document(root: etree._Element) -> tuple[InvoiceDocument, str]:
    """Map a UBL Invoice or CreditNote to the model; also return BT-24 (CustomizationID)."""
    is_credit_note = etree.QName(root).localname == "CreditNote"
    type_tag = "CreditNoteTypeCode" if is_credit_note else "InvoiceTypeCode"
    line_tag, quantity_tag = (
        ("CreditNoteLine", "CreditedQuantity") if is_credit_note else ("InvoiceLine", "InvoicedQuantity")
    )

    issue_date = _ubl_date_at(root, "cbc:IssueDate", "BT-2 (issue date)")
    if issue_date is None:
        raise ImportFormatError("Missing mandatory BT-2 (invoice issue date).")
    currency = _U.required(root, "cbc:DocumentCurrencyCode", "BT-5 (invoice currency code)")
    seller = _ubl_party(_U.node(root, "cac:AccountingSupplierParty/cac:Party"), "BT-27 (seller name)")
    buyer = _ubl_party(_U.node(root, "cac:AccountingCustomerParty/cac:Party"), "BT-44 (buyer name)")
    if seller is None or buyer is None:  # unreachable: required=True raises first; narrows types
        raise ImportFormatError("Missing mandatory BG-4 / BG-7 (seller / buyer).")
    lines = [_ubl_line(el, quantity_tag) for el in _U.nodes(root, f"cac:{line_tag}")]
    if not lines:
        raise ImportFormatError("Missing mandatory BG-25: the invoice has no line.")

    doc = InvoiceDocument(
        number=_U.required(root, "cbc:ID", "BT-1 (invoice number)"),
        type_code=_U.required(root, f"cbc:{type_tag}", "BT-3 (invoice type code)"),
        issue_date=issue_date,
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=lines,
    )
    doc.business_process = _U.text(root, "cbc:ProfileID")
    for note_el in _U.nodes(root, "cbc:Note"):
        text = (note_el.text or "").strip()
        match = _UBL_NOTE_SUBJECT.match(text)
        doc.notes.append(
            Note(text=match.group(2).strip(), subject=match.group(1)) if match else Note(text=text)
        )
    doc.tax_currency = _U.text(root, "cbc:TaxCurrencyCode")
    doc.tax_point_date = _ubl_date_at(root, "cbc:TaxPointDate", "BT-7")
    doc.tax_point_code = _U.text(root, "cac:InvoicePeriod/cbc:DescriptionCode")
    # A UBL 2.1 CreditNote has no cbc:DueDate; the EN 16931 binding puts BT-9 on the payment means.
    doc.due_date = _ubl_date_at(root, "cbc:DueDate", "BT-9 (due date)") or _ubl_date_at(
        root, "cac:PaymentMeans/cbc:PaymentDueDate", "BT-9 (due date)"
    )
    doc.buyer_reference = _U.text(root, "cbc:BuyerReference")
    doc.project_ref = _U.text(root, "cac:ProjectReference/cbc:ID") or _U.text(
        root, "cac:AdditionalDocumentReference[cbc:DocumentTypeCode='50']/cbc:ID"
    )
    doc.contract_ref = _U.text(root, "cac:ContractDocumentReference/cbc:ID")
    doc.purchase_order_ref = _U.text(root, "cac:OrderReference/cbc:ID")
    doc.sales_order_ref = _U.text(root, "cac:OrderReference/cbc:SalesOrderID")
    doc.receiving_advice_ref = _U.text(root, "cac:ReceiptDocumentReference/cbc:ID")
    doc.delivery_note_ref = _U.text(root, "cac:DespatchDocumentReference/cbc:ID")
    doc.tender_ref = _U.text(root, "cac:OriginatorDocumentReference/cbc:ID")
    invoiced_object = _U.node(root, "cac:AdditionalDocumentReference[cbc:DocumentTypeCode='130']/cbc:ID")
    if invoiced_object is not None:
        doc.invoiced_object_ref = (invoiced_object.text or "").strip()
        doc.invoiced_object_scheme = (invoiced_object.get("schemeID") or "").strip()
    doc.accounting_ref = _U.text(root, "cbc:AccountingCost")
    doc.invoice_period_start = _ubl_date_at(root, "cac:InvoicePeriod/cbc:StartDate", "BT-73")
    doc.invoice_period_end = _ubl_date_at(root, "cac:InvoicePeriod/cbc:EndDate", "BT-74")
    for ref in _U.nodes(root, "cac:BillingReference/cac:InvoiceDocumentReference"):
        doc.preceding_invoices.append(
            PrecedingInvoice(
                number=_U.required(ref, "cbc:ID", "BT-25 (preceding invoice reference)"),
                issue_date=_ubl_date_at(ref, "cbc:IssueDate", "BT-26"),
            )
        )
    payee = _U.node(root, "cac:PayeeParty")
    doc.payee = _ubl_party(payee, "BT-59 (payee name)", required=payee is not None)
    tax_rep = _U.node(root, "cac:TaxRepresentativeParty")
    doc.tax_representative = _ubl_party(
        tax_rep, "BT-62 (tax representative name)", required=tax_rep is not None
    )

    delivery_el = _U.node(root, "cac:Delivery")
    if delivery_el is not None:
        doc.delivery = Delivery(
            date=_ubl_date_at(delivery_el, "cbc:ActualDeliveryDate", "BT-72 (actual delivery date)"),
            party_name=_U.text(delivery_el, "cac:DeliveryParty/cac:PartyName/cbc:Name"),
            location_id=_U.text(delivery_el, "cac:DeliveryLocation/cbc:ID"),
            address=_ubl_address(_U.node(delivery_el, "cac:DeliveryLocation/cac:Address")),
        )
    doc.payment = _ubl_payment(root)
    for ac_el in _U.nodes(root, "cac:AllowanceCharge"):
        ac = _ubl_allowance_charge(ac_el, document_level=True)
        (doc.charges if ac.is_charge else doc.allowances).append(ac)
    _ubl_tax_totals(root, doc)
    _fill_exemption_reasons(doc)
    return doc, _U.text(root, "cbc:CustomizationID")


def _ubl_payment(root: etree._Element) -> Payment:
    payment = Payment(means_code="")
    means_list = _U.nodes(root, "cac:PaymentMeans")
    means = next(
        (m for m in means_list if _U.node(m, "cac:PayeeFinancialAccount") is not None),
        means_list[0] if means_list else None,
    )
    if means is not None:
        payment.means_code = _U.text(means, "cbc:PaymentMeansCode")
        payment.means_text = _U.attr(means, "cbc:PaymentMeansCode", "name")
        payment.remittance_info = _U.text(means, "cbc:PaymentID")
        payment.iban = _U.text(means, "cac:PayeeFinancialAccount/cbc:ID")
        payment.account_name = _U.text(means, "cac:PayeeFinancialAccount/cbc:Name")
        payment.bic = _U.text(means, "cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID")
        payment.mandate_ref = _U.text(means, "cac:PaymentMandate/cbc:ID")
        payment.debited_iban = _U.text(means, "cac:PaymentMandate/cac:PayerFinancialAccount/cbc:ID")
    payment.terms = "\n".join(
        t for t in ((n.text or "").strip() for n in _U.nodes(root, "cac:PaymentTerms/cbc:Note")) if t
    )
    # BT-90 sits on the seller (or payee) as a PartyIdentification with schemeID SEPA.
    payment.creditor_id = _U.text(
        root, "cac:AccountingSupplierParty/cac:Party/cac:PartyIdentification/cbc:ID[@schemeID='SEPA']"
    ) or _U.text(root, "cac:PayeeParty/cac:PartyIdentification/cbc:ID[@schemeID='SEPA']")
    return payment


def _ubl_tax_totals(root: etree._Element, doc: InvoiceDocument) -> None:
    """BG-22 totals, BT-110/BT-111 and BG-23, read as the file states them."""
    total = _U.node(root, "cac:LegalMonetaryTotal")
    if total is None:
        raise ImportFormatError("Missing mandatory BG-22 (LegalMonetaryTotal).")

    def opt(tag: str, bt: str) -> Decimal:
        value = _U.decimal(total, f"cbc:{tag}", bt)
        return Decimal("0") if value is None else value

    totals = Totals(
        line_total=_U.required_decimal(total, "cbc:LineExtensionAmount", "BT-106 (sum of line net amounts)"),
        allowance_total=opt("AllowanceTotalAmount", "BT-107"),
        charge_total=opt("ChargeTotalAmount", "BT-108"),
        tax_exclusive=_U.required_decimal(total, "cbc:TaxExclusiveAmount", "BT-109 (total without VAT)"),
        tax_inclusive=_U.required_decimal(total, "cbc:TaxInclusiveAmount", "BT-112 (total with VAT)"),
        prepaid=opt("PrepaidAmount", "BT-113"),
        rounding=opt("PayableRoundingAmount", "BT-114"),
        amount_due=_U.required_decimal(total, "cbc:PayableAmount", "BT-115 (amount due for payment)"),
    )
    for tax_total in _U.nodes(root, "cac:TaxTotal"):
        cur = _U.attr(tax_total, "cbc:TaxAmount", "currencyID")
        amount = _U.decimal(tax_total, "cbc:TaxAmount", "BT-110/BT-111 (invoice total VAT amount)")
        if amount is None:
            continue
        # The TaxTotal in the VAT accounting currency (BT-6) is BT-111 and carries no subtotals.
        if doc.tax_currency and doc.tax_currency != doc.currency and cur == doc.tax_currency:
            totals.tax_total_accounting = amount
            continue
        totals.tax_total = amount
        for sub in _U.nodes(tax_total, "cac:TaxSubtotal"):
            category = _U.required(sub, "cac:TaxCategory/cbc:ID", "BT-118 (VAT category code)")
            bt = f"VAT breakdown {category}"
            doc.vat_breakdown.append(
                VatBreakdown(
                    category=category,
                    rate=_U.decimal(sub, "cac:TaxCategory/cbc:Percent", f"BT-119 on {bt}"),
                    taxable_amount=_U.required_decimal(
                        sub, "cbc:TaxableAmount", f"BT-116 (taxable amount) on {bt}"
                    ),
                    tax_amount=_U.required_decimal(sub, "cbc:TaxAmount", f"BT-117 (VAT amount) on {bt}"),
                    exemption_reason=_U.text(sub, "cac:TaxCategory/cbc:TaxExemptionReason"),
                    exemption_reason_code=_U.text(sub, "cac:TaxCategory/cbc:TaxExemptionReasonCode"),
                )
            )
    doc.totals = totals


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def _expect(root: etree._Element, allowed: tuple[str, ...], what: str) -> str:
    syntax = _syntax_of_root(root)
    if syntax not in allowed:
        raise ImportFormatError(f"Expected {what}, got a {syntax} document.")
    return syntax


def parse_cii(xml: bytes) -> InvoiceDocument:
    """Parse a CII D16B CrossIndustryInvoice (Factur-X / ZUGFeRD 2 XML) into the semantic model."""
    root = _load_xml(xml)
    _expect(root, (SYNTAX_CII,), "a CII CrossIndustryInvoice")
    return _cii_document(root)[0]


def parse_ubl(xml: bytes) -> InvoiceDocument:
    """Parse a UBL 2.1 Invoice or CreditNote into the semantic model."""
    root = _load_xml(xml)
    _expect(root, (SYNTAX_UBL_INVOICE, SYNTAX_UBL_CREDITNOTE), "a UBL 2.1 Invoice or CreditNote")
    return _ubl_document(root)[0]


def extract_facturx_xml(pdf: bytes) -> bytes:
    """Return the CII XML embedded in a Factur-X / ZUGFeRD 2 PDF."""
    _check_size(pdf)
    if not _is_pdf(pdf):
        raise ImportFormatError("Not a PDF: a Factur-X invoice must be a PDF/A-3 file.")
    # Imported late: the facturx module is heavy and only PDF imports need it.
    from facturx import get_xml_from_pdf

    try:
        # XSD checks belong to validation, which reports them precisely; here we only extract.
        _filename, xml = get_xml_from_pdf(bytes(pdf), check_xsd=False)
    except Exception as exc:  # pypdf raises many unrelated types on damaged PDFs
        raise ImportFormatError(f"Unreadable PDF: {exc}") from exc
    if not xml:
        raise ImportFormatError(
            "No Factur-X / ZUGFeRD XML found in the PDF (expected an embedded factur-x.xml attachment)."
        )
    return bytes(xml)


def _parse_facturx(pdf: bytes) -> ParsedInvoice:
    xml = extract_facturx_xml(pdf)
    root = _load_xml(xml)
    if _syntax_of_root(root) != SYNTAX_CII:
        raise ImportFormatError("The XML embedded in the PDF is not a CII CrossIndustryInvoice.")
    doc, guideline = _cii_document(root)
    # _cii_document already set doc.profile when the guideline names one; an unknown guideline keeps
    # the model default and is reported as profile None so the caller can decide.
    return ParsedInvoice(doc, SYNTAX_FACTURX, _profile_of(guideline), xml, guideline)


def parse_facturx(pdf: bytes) -> InvoiceDocument:
    """Parse a Factur-X PDF: extract its CII XML, parse it and set the profile from BT-24."""
    return _parse_facturx(pdf).document


def parse_invoice(data: bytes) -> ParsedInvoice:
    """Detect the syntax of ``data`` and parse it; raise ImportFormatError when it is not importable."""
    _check_size(data)
    if _is_pdf(data):
        return _parse_facturx(data)
    syntax, root = _load_invoice_xml(data)
    builders: dict[str, Callable[[etree._Element], tuple[InvoiceDocument, str]]] = {
        SYNTAX_CII: _cii_document,
        SYNTAX_UBL_INVOICE: _ubl_document,
        SYNTAX_UBL_CREDITNOTE: _ubl_document,
    }
    doc, spec = builders[syntax](root)
    profile = _profile_of(spec) if syntax == SYNTAX_CII else None
    return ParsedInvoice(doc, syntax, profile, bytes(data), spec)
