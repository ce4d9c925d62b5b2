"""Import of incoming invoices (``invoicing.formats.parse``) against the official CEN examples.

Expected values are read from the files with independent XPath expressions here, so a mapping error
in the parser cannot hide behind the same mistake in the test.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from invoicing.document import InvoiceDocument, TypeCode
from invoicing.formats.parse import (
    MAX_INPUT_BYTES,
    ImportFormatError,
    ParsedInvoice,
    detect_syntax,
    parse_cii,
    parse_facturx,
    parse_invoice,
    parse_ubl,
)

FIXTURES = Path(__file__).parent / "fixtures" / "import"
CII_FILES = sorted((FIXTURES / "cii").glob("*.xml"))
UBL_FILES = sorted((FIXTURES / "ubl").glob("*.xml"))
ALL_FILES = CII_FILES + UBL_FILES

CII_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
UBL_NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CBC = UBL_NS["cbc"]
TOTAL_FIELDS = (
    "line_total",
    "allowance_total",
    "charge_total",
    "tax_exclusive",
    "tax_total",
    "tax_inclusive",
    "prepaid",
    "rounding",
    "amount_due",
)


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _dec(values: list[str]) -> Decimal:
    """The single value an XPath found, or 0 for an absent optional total."""
    assert len(values) <= 1, values
    return Decimal(values[0].strip()) if values else Decimal("0")


def _cii_expected(xml: bytes) -> dict:
    root = etree.fromstring(xml)
    s = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
    m = s + "/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    cur = root.xpath(f"string({s}/ram:InvoiceCurrencyCode)", namespaces=CII_NS)

    def x(path: str) -> Decimal:
        return _dec(root.xpath(f"{m}/ram:{path}/text()", namespaces=CII_NS))

    return {
        "totals": {
            "line_total": x("LineTotalAmount"),
            "allowance_total": x("AllowanceTotalAmount"),
            "charge_total": x("ChargeTotalAmount"),
            "tax_exclusive": x("TaxBasisTotalAmount"),
            "tax_total": x(f"TaxTotalAmount[@currencyID='{cur}']"),
            "tax_inclusive": x("GrandTotalAmount"),
            "prepaid": x("TotalPrepaidAmount"),
            "rounding": x("RoundingAmount"),
            "amount_due": x("DuePayableAmount"),
        },
        "lines": len(root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=CII_NS)),
        "vat": len(root.xpath(f"{s}/ram:ApplicableTradeTax", namespaces=CII_NS)),
        "number": root.xpath("string(/*/rsm:ExchangedDocument/ram:ID)", namespaces=CII_NS),
    }


def _ubl_expected(xml: bytes) -> dict:
    root = etree.fromstring(xml)
    cur = root.xpath("string(/*/cbc:DocumentCurrencyCode)", namespaces=UBL_NS)

    def x(path: str) -> Decimal:
        return _dec(root.xpath(f"/*/cac:LegalMonetaryTotal/cbc:{path}/text()", namespaces=UBL_NS))

    return {
        "totals": {
            "line_total": x("LineExtensionAmount"),
            "allowance_total": x("AllowanceTotalAmount"),
            "charge_total": x("ChargeTotalAmount"),
            "tax_exclusive": x("TaxExclusiveAmount"),
            "tax_total": _dec(
                root.xpath(f"/*/cac:TaxTotal/cbc:TaxAmount[@currencyID='{cur}']/text()", namespaces=UBL_NS)
            ),
            "tax_inclusive": x("TaxInclusiveAmount"),
            "prepaid": x("PrepaidAmount"),
            "rounding": x("PayableRoundingAmount"),
            "amount_due": x("PayableAmount"),
        },
        "lines": len(root.xpath("/*/cac:InvoiceLine | /*/cac:CreditNoteLine", namespaces=UBL_NS)),
        "vat": len(root.xpath("/*/cac:TaxTotal/cac:TaxSubtotal", namespaces=UBL_NS)),
        "number": root.xpath("string(/*/cbc:ID)", namespaces=UBL_NS),
    }


def _expected(path: Path) -> dict:
    xml = path.read_bytes()
    return _cii_expected(xml) if path.parent.name == "cii" else _ubl_expected(xml)


def _blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)  # A4 in points
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _facturx_pdf(xml: bytes, level: str = "autodetect") -> bytes:
    from facturx import generate_from_binary

    # The CEN examples are not Factur-X-XSD-valid in every detail; the import must not depend on it.
    return generate_from_binary(_blank_pdf(), xml, level=level, check_xsd=False)


# --- every CEN example imports and its totals are read, not recomputed ---------------------------


def test_fixture_folders_are_populated() -> None:
    assert len(CII_FILES) >= 6 and len(UBL_FILES) >= 6


@pytest.mark.parametrize("path", ALL_FILES, ids=_ids(ALL_FILES))
def test_cen_example_imports_with_file_totals(path: Path) -> None:
    data = path.read_bytes()
    parsed = parse_invoice(data)
    expected = _expected(path)

    assert isinstance(parsed, ParsedInvoice)
    assert parsed.source_xml == data
    doc = parsed.document
    assert doc.number == expected["number"].strip()
    for name in TOTAL_FIELDS:
        assert getattr(doc.totals, name) == expected["totals"][name], name
    assert len(doc.lines) == expected["lines"]
    assert len(doc.vat_breakdown) == expected["vat"]
    # Sanity of types: amounts are Decimal, never float.
    assert all(isinstance(getattr(doc.totals, n), Decimal) for n in TOTAL_FIELDS)
    assert all(
        isinstance(line.quantity, Decimal) and isinstance(line.net_amount, Decimal) for line in doc.lines
    )


@pytest.mark.parametrize("path", CII_FILES, ids=_ids(CII_FILES))
def test_cii_detect_and_profile(path: Path) -> None:
    data = path.read_bytes()
    assert detect_syntax(data) == "cii"
    parsed = parse_invoice(data)
    assert parsed.syntax == "cii"
    assert parsed.profile == "en16931"  # all CEN examples declare urn:cen.eu:en16931:2017
    assert parse_cii(data) == parsed.document
    with pytest.raises(ImportFormatError, match="UBL"):
        parse_ubl(data)


@pytest.mark.parametrize("path", UBL_FILES, ids=_ids(UBL_FILES))
def test_ubl_detect(path: Path) -> None:
    data = path.read_bytes()
    syntax = detect_syntax(data)
    assert syntax == ("ubl_creditnote" if "creditnote" in path.name else "ubl_invoice")
    parsed = parse_invoice(data)
    assert parsed.syntax == syntax
    assert parsed.profile is None
    assert parse_ubl(data) == parsed.document
    with pytest.raises(ImportFormatError, match="CII"):
        parse_cii(data)


def test_ubl_credit_note_is_type_381() -> None:
    doc = parse_ubl((FIXTURES / "ubl" / "ubl-tc434-creditnote1.xml").read_bytes())
    assert doc.type_code == TypeCode.CREDIT_NOTE == "381"
    assert doc.number == "018304 / 28865"
    assert doc.invoice_period_start == dt.date(2019, 2, 1)
    assert doc.invoice_period_end == dt.date(2019, 2, 28)
    assert doc.seller.electronic_address is not None
    assert (doc.seller.electronic_address.value, doc.seller.electronic_address.scheme) == (
        "0000000196",
        "0201",
    )
    line = doc.lines[0]
    assert line.quantity == Decimal("1")  # read from cbc:CreditedQuantity
    assert line.net_amount == Decimal("100.11")


# --- spot checks of the detailed mapping ------------------------------------------------------------


def test_cii_example2_spot_checks() -> None:
    doc = parse_cii((FIXTURES / "cii" / "CII_example2.xml").read_bytes())
    assert (doc.number, doc.type_code, doc.issue_date, doc.currency) == (
        "TOSL108",
        "380",
        dt.date(2013, 6, 30),
        "NOK",
    )
    assert doc.due_date == dt.date(2013, 7, 20)
    assert doc.tax_point_date == dt.date(2013, 6, 30)
    assert doc.notes[0].text == "Ordered in our booth at the convention"
    assert doc.contract_ref == "Contract321"
    assert doc.purchase_order_ref == "123"
    assert doc.accounting_ref == "Project cost code 123"
    assert (doc.invoice_period_start, doc.invoice_period_end) == (dt.date(2013, 6, 1), dt.date(2013, 6, 30))
    # Seller
    seller = doc.seller
    assert seller.name == "Salescompany ltd."
    assert seller.vat_id == "NO123456789MVA"
    assert seller.other_ids == [("1238764941386", "0088")]  # GLN: not a SIRET, kept with its scheme
    assert (seller.legal_id, seller.siren) == ("123456789", "")  # no scheme 0002: not a SIREN
    assert (seller.address.line1, seller.address.city, seller.address.country) == (
        "Main street 34",
        "Big city",
        "NO",
    )
    assert (seller.contact_name, seller.contact_email) == ("Antonio Salesmacher", "antonio@salescompany.no")
    # Buyer
    assert doc.buyer.name == "The Buyercompany"
    assert doc.buyer.vat_id == "NO987654321MVA"
    # Payee, tax representative, delivery, payment
    assert doc.payee is not None and doc.payee.name == "Ebeneser Scrooge AS"
    assert doc.tax_representative is not None and doc.tax_representative.vat_id == "NO967611265MVA"
    assert doc.delivery is not None
    assert doc.delivery.date == dt.date(2013, 6, 15)
    assert doc.delivery.location_id == "6754238987643"
    assert doc.delivery.address is not None and doc.delivery.address.city == "DeliveryCity"
    assert (doc.payment.means_code, doc.payment.iban, doc.payment.bic) == (
        "30",
        "NO9386011117947",
        "DNBANOKK",
    )
    assert doc.payment.remittance_info == "0003434323213231"
    assert doc.payment.terms.startswith("2 % discount if paid within 2 days")
    # Document allowance and charge with their VAT
    assert len(doc.allowances) == 1 and len(doc.charges) == 1
    assert doc.allowances[0].amount == Decimal("100")
    assert (doc.allowances[0].reason, doc.allowances[0].reason_code) == ("Promotion discount", "95")
    assert (doc.allowances[0].vat_category, doc.allowances[0].vat_rate) == ("S", Decimal("25"))
    assert doc.charges[0].reason == "Freight"
    # VAT breakdown with exemption reason
    exempt = [vb for vb in doc.vat_breakdown if vb.category == "E"]
    assert len(exempt) == 1
    assert exempt[0].taxable_amount == Decimal("-25")
    assert exempt[0].exemption_reason == "Exempt New Means of Transport"
    assert doc.exemption_reasons["E"] == ("", "Exempt New Means of Transport")
    # Lines
    first = doc.lines[0]
    assert (first.id, first.name, first.quantity, first.unit_code) == (
        "1",
        "Laptop computer",
        Decimal("1"),
        "NAR",
    )
    assert (first.net_price, first.gross_price, first.net_amount) == (
        Decimal("1273"),
        Decimal("1498"),
        Decimal("1273"),
    )
    assert (first.vat_category, first.vat_rate) == ("S", Decimal("25"))
    assert first.seller_item_id == "JB007"
    assert first.standard_item_id == "1234567890128"
    assert first.origin_country == "DE"
    assert first.note == "Scratch on box"
    assert first.accounting_ref == "BookingCode001"
    assert first.order_line_ref == "1"
    assert first.classifications == [("65434568", "STI")]
    assert first.attributes == [("Color", "Black")]
    assert [a.amount for a in first.allowances] == [Decimal("12")]
    assert [c.reason for c in first.charges] == ["Testing"]
    assert first.period_start == dt.date(2013, 6, 1)
    cable = doc.lines[4]
    assert (cable.quantity, cable.unit_code, cable.net_amount) == (Decimal("250"), "MTR", Decimal("187.5"))


def test_cii_example5_tax_currency_and_bt111() -> None:
    doc = parse_cii((FIXTURES / "cii" / "CII_example5.xml").read_bytes())
    assert doc.currency != doc.tax_currency != ""
    assert doc.totals.tax_total == Decimal("675.00")
    assert doc.totals.tax_total_accounting == Decimal("628.62")


def test_ubl_example2_spot_checks() -> None:
    doc = parse_ubl((FIXTURES / "ubl" / "ubl-tc434-example2.xml").read_bytes())
    assert (doc.number, doc.type_code, doc.currency) == ("TOSL108", "380", "NOK")
    assert doc.seller.name == "Salescompany ltd."
    assert doc.seller.vat_id == "NO123456789MVA"
    assert doc.buyer.name == "The Buyercompany"
    assert doc.buyer.vat_id == "NO987654321MVA"
    assert doc.buyer.contact_email == "john@buyercompany.no"
    assert doc.purchase_order_ref == "123"
    assert doc.contract_ref == "Contract321"
    first = doc.lines[0]
    assert (first.id, first.name, first.quantity, first.unit_code) == (
        "1",
        "Laptop computer",
        Decimal("2"),
        "EA",
    )
    assert first.net_amount == Decimal("1273.00")
    assert first.standard_item_id == "1234567890128"
    assert first.classifications == [("12344321", "ZZZ"), ("65434568", "STI")]
    assert first.accounting_ref == "BookingCode001"
    assert (first.period_start, first.period_end) == (dt.date(2013, 6, 1), dt.date(2013, 6, 30))
    assert [a.amount for a in first.allowances] == [Decimal("12.00")]
    assert [c.amount for c in first.charges] == [Decimal("12.00")]
    returned = doc.lines[1]
    assert (returned.quantity, returned.net_amount) == (Decimal("-1"), Decimal("-3.96"))
    assert doc.payee is not None and doc.payee.name == "Ebeneser Scrooge AS"
    assert doc.tax_representative is not None and doc.tax_representative.name == "Tax handling company AS"
    assert doc.delivery is not None and doc.delivery.date is not None
    exempt = [vb for vb in doc.vat_breakdown if vb.category == "E"]
    assert exempt and exempt[0].exemption_reason == "Exempt New Means of Transport"
    assert doc.payment.iban == "NO9386011117947"
    assert doc.payment.bic == "DNBANOKK"


def test_cii_and_ubl_twins_agree() -> None:
    """CEN example 2 exists in both syntaxes: the same invoice must give the same key data."""
    cii = parse_cii((FIXTURES / "cii" / "CII_example4.xml").read_bytes())
    ubl = parse_ubl((FIXTURES / "ubl" / "ubl-tc434-example4.xml").read_bytes())
    assert cii.number == ubl.number
    assert cii.seller.vat_id == ubl.seller.vat_id
    assert cii.buyer.name == ubl.buyer.name
    assert [ln.net_amount for ln in cii.lines] == [ln.net_amount for ln in ubl.lines]
    assert [(v.category, v.rate, v.tax_amount) for v in cii.vat_breakdown] == [
        (v.category, v.rate, v.tax_amount) for v in ubl.vat_breakdown
    ]
    for name in TOTAL_FIELDS:
        assert getattr(cii.totals, name) == getattr(ubl.totals, name), name


# --- French identifiers ------------------------------------------------------------------------------

FRENCH_CII = b"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
 xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
 <rsm:ExchangedDocumentContext>
  <ram:BusinessProcessSpecifiedDocumentContextParameter><ram:ID>S1</ram:ID>
  </ram:BusinessProcessSpecifiedDocumentContextParameter>
  <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>__GUIDELINE__</ram:ID>
  </ram:GuidelineSpecifiedDocumentContextParameter>
 </rsm:ExchangedDocumentContext>
 <rsm:ExchangedDocument>
  __NUMBER__<ram:TypeCode>380</ram:TypeCode>
  <ram:IssueDateTime><udt:DateTimeString format="102">20250115</udt:DateTimeString></ram:IssueDateTime>
  <ram:IncludedNote><ram:Content>Penalites de retard : 3 fois le taux legal</ram:Content>
   <ram:SubjectCode>PMD</ram:SubjectCode></ram:IncludedNote>
 </rsm:ExchangedDocument>
 <rsm:SupplyChainTradeTransaction>
  <ram:ApplicableHeaderTradeAgreement>
   <ram:SellerTradeParty>
    <ram:ID schemeID="0009">73282932000074</ram:ID>
    <ram:GlobalID schemeID="0009">73282932000074</ram:GlobalID>
    <ram:Name>Vendeur SAS</ram:Name>
    <ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">732829320</ram:ID>
     </ram:SpecifiedLegalOrganization>
    <ram:PostalTradeAddress><ram:PostcodeCode>75001</ram:PostcodeCode><ram:CityName>Paris</ram:CityName>
     <ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>
    <ram:URIUniversalCommunication><ram:URIID schemeID="0225">732829320</ram:URIID>
     </ram:URIUniversalCommunication>
    <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">FR44732829320</ram:ID></ram:SpecifiedTaxRegistration>
   </ram:SellerTradeParty>
   <ram:BuyerTradeParty>
    <ram:Name>Acheteur SARL</ram:Name>
    <ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">552100554</ram:ID>
     </ram:SpecifiedLegalOrganization>
    <ram:URIUniversalCommunication><ram:URIID schemeID="EM">ap@acheteur.fr</ram:URIID>
     </ram:URIUniversalCommunication>
   </ram:BuyerTradeParty>
  </ram:ApplicableHeaderTradeAgreement>
  <ram:ApplicableHeaderTradeDelivery/>
  <ram:ApplicableHeaderTradeSettlement>
   <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
   <ram:ApplicableTradeTax><ram:CalculatedAmount>20.00</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>
    <ram:BasisAmount>100.00</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode>
    <ram:DueDateTypeCode>72</ram:DueDateTypeCode>
    <ram:RateApplicablePercent>20</ram:RateApplicablePercent></ram:ApplicableTradeTax>
   <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    <ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>
    <ram:TaxTotalAmount currencyID="EUR">20.00</ram:TaxTotalAmount>
    <ram:GrandTotalAmount>120.00</ram:GrandTotalAmount>
    <ram:DuePayableAmount>120.00</ram:DuePayableAmount>
   </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
  </ram:ApplicableHeaderTradeSettlement>
 </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""


def _french_minimum(number: str = "<ram:ID>F-2025-001</ram:ID>") -> bytes:
    return FRENCH_CII.replace(b"__GUIDELINE__", b"urn:factur-x.eu:1p0:minimum").replace(
        b"__NUMBER__", number.encode()
    )


def test_minimum_profile_french_ids() -> None:
    """A Factur-X MINIMUM invoice (no lines, no BT-106) with SIREN/SIRET/0225 routing address."""
    parsed = parse_invoice(_french_minimum())
    doc = parsed.document
    assert parsed.profile == "minimum" == doc.profile
    assert doc.lines == []
    assert doc.business_process == "S1"
    assert (doc.notes[0].subject, doc.notes[0].text) == ("PMD", "Penalites de retard : 3 fois le taux legal")
    assert (doc.seller.siret, doc.seller.siren, doc.seller.vat_id) == (
        "73282932000074",
        "732829320",
        "FR44732829320",
    )
    assert doc.seller.other_ids == []  # the SIRET stated twice (ID and GlobalID) is one identifier
    assert doc.seller.electronic_address is not None
    assert doc.seller.electronic_address.scheme == "0225"
    assert doc.buyer.siren == "552100554"
    assert doc.buyer.electronic_address is not None
    assert (doc.buyer.electronic_address.value, doc.buyer.electronic_address.scheme) == (
        "ap@acheteur.fr",
        "EM",
    )
    assert doc.tax_point_code == "72"
    assert doc.totals.line_total == Decimal("0")  # absent from MINIMUM
    assert (doc.totals.tax_total, doc.totals.amount_due) == (Decimal("20.00"), Decimal("120.00"))


def test_missing_invoice_number_names_bt1() -> None:
    with pytest.raises(ImportFormatError, match="BT-1"):
        parse_cii(_french_minimum(number=""))


def test_cii_without_lines_outside_minimum_is_refused() -> None:
    xml = FRENCH_CII.replace(b"__GUIDELINE__", b"urn:cen.eu:en16931:2017").replace(
        b"__NUMBER__", b"<ram:ID>F-1</ram:ID>"
    )
    with pytest.raises(ImportFormatError, match="BG-25"):
        parse_cii(xml)


def test_ubl_missing_number_and_bad_amount() -> None:
    data = (FIXTURES / "ubl" / "ubl-tc434-example4.xml").read_bytes()
    root = etree.fromstring(data)
    root.find(f"{{{CBC}}}ID").getparent().remove(root.find(f"{{{CBC}}}ID"))
    with pytest.raises(ImportFormatError, match="BT-1 "):
        parse_ubl(etree.tostring(root))
    bad, count = re.subn(rb"(<cbc:PayableAmount[^>]*>)", rb"\1x", data)
    assert count == 1
    with pytest.raises(ImportFormatError, match="BT-115"):
        parse_ubl(bad)


def test_ubl_note_subject_code() -> None:
    data = (FIXTURES / "ubl" / "ubl-tc434-example4.xml").read_bytes()
    root = etree.fromstring(data)
    note = etree.Element(f"{{{CBC}}}Note")
    note.text = "#PMT#Indemnite forfaitaire de 40 EUR"
    root.find(f"{{{CBC}}}IssueDate").addnext(note)
    doc = parse_ubl(etree.tostring(root))
    assert any(n.subject == "PMT" and n.text == "Indemnite forfaitaire de 40 EUR" for n in doc.notes)


# --- Factur-X PDF ---------------------------------------------------------------------------------------


def test_facturx_pdf_parses() -> None:
    xml = (FIXTURES / "cii" / "CII_example4.xml").read_bytes()
    pdf = _facturx_pdf(xml)
    assert detect_syntax(pdf) == "facturx"
    parsed = parse_invoice(pdf)
    assert parsed.syntax == "facturx"
    assert parsed.profile == "en16931"
    assert parsed.source_xml == xml
    assert parsed.document == parse_cii(xml)
    assert parse_facturx(pdf).number == "TOSL110"


def test_facturx_minimum_profile_from_guideline() -> None:
    pdf = _facturx_pdf(_french_minimum())
    parsed = parse_invoice(pdf)
    assert (parsed.syntax, parsed.profile, parsed.document.profile) == ("facturx", "minimum", "minimum")


def test_pdf_without_xml_is_refused() -> None:
    with pytest.raises(ImportFormatError, match="No Factur-X"):
        parse_invoice(_blank_pdf())


def test_damaged_pdf_is_refused() -> None:
    with pytest.raises(ImportFormatError):
        parse_invoice(b"%PDF-1.7\n" + os.urandom(2000))


# --- hostile and junk input ----------------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100">&xxe;
</rsm:CrossIndustryInvoice>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol3;</Invoice>"""


@pytest.mark.parametrize("payload", [XXE, BILLION_LAUGHS], ids=["xxe", "billion-laughs"])
def test_doctype_is_refused(payload: bytes) -> None:
    for func in (detect_syntax, parse_invoice, parse_cii, parse_ubl):
        with pytest.raises(ImportFormatError, match="DOCTYPE"):
            func(payload)


def test_doctype_hidden_after_long_prolog_is_refused() -> None:
    """The byte pre-check only scans the start; the parsed docinfo catches the rest."""
    payload = b'<?xml version="1.0"?>\n<!--' + b"x" * 70000 + b"-->\n" + XXE.split(b"\n", 1)[1]
    with pytest.raises(ImportFormatError, match="DOCTYPE"):
        parse_invoice(payload)


def test_utf16_doctype_is_refused() -> None:
    payload = XXE.replace(b'<?xml version="1.0"?>', b"").decode().encode("utf-16")
    with pytest.raises(ImportFormatError, match="DOCTYPE"):
        parse_invoice(payload)


@pytest.mark.parametrize(
    "payload",
    [os.urandom(4096), b"", b"hello world", b"{}", b"\x00\x01\x02"],
    ids=["random", "empty", "text", "json", "binary"],
)
def test_junk_is_refused(payload: bytes) -> None:
    with pytest.raises(ImportFormatError):
        detect_syntax(payload)
    with pytest.raises(ImportFormatError):
        parse_invoice(payload)


def test_malformed_xml_reports_parser_message() -> None:
    with pytest.raises(ImportFormatError, match="Malformed XML"):
        parse_invoice(b"<rsm:CrossIndustryInvoice><unclosed></rsm:CrossIndustryInvoice>")


def test_unknown_xml_root_is_refused() -> None:
    with pytest.raises(ImportFormatError, match="Unknown XML document"):
        detect_syntax(b"<Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>")


def test_oversized_input_is_refused() -> None:
    payload = b"<a>" + b" " * MAX_INPUT_BYTES + b"</a>"
    with pytest.raises(ImportFormatError, match="too large"):
        parse_invoice(payload)


def test_import_format_error_is_value_error() -> None:
    assert issubclass(ImportFormatError, ValueError)


# --- recomputation against the file's totals ---------------------------------------------------------

computation = pytest.importorskip("invoicing.computation")

# The CEN examples below state line net amounts (BT-131) that are NOT quantity × net price / base
# quantity − allowances + charges. EN 16931 has no business rule on BT-131, so the files are valid,
# but a full recomputation cannot reproduce their totals:
# - CII_example1 / ubl-tc434-example1 / guide-example1, line 20: quantity 6 × 18.33 but BT-131 = -109.98
#   (a return line with a positive quantity).
# - CII_example2 / CII_business_example_01: BT-149 price base quantity equals the price on every line
#   (e.g. 1273 / base 1273), so quantity × price / base gives 1 instead of 1273.
# - ubl-tc434-example2, line 1: quantity 2 × 1273.00 but BT-131 = 1273.00.
# - ubl-tc434-example3, lines 1-2: quantity 2 × 800.00 but BT-131 = 800.00 each.
INCONSISTENT_LINE_NETS = {
    "CII_example1.xml",
    "CII_example2.xml",
    "CII_business_example_01.xml",
    "guide-example1.xml",
    "ubl-tc434-example1.xml",
    "ubl-tc434-example2.xml",
    "ubl-tc434-example3.xml",
}


def _totals(doc: InvoiceDocument) -> dict[str, Decimal | None]:
    values: dict[str, Decimal | None] = {n: getattr(doc.totals, n) for n in TOTAL_FIELDS}
    values["tax_total_accounting"] = doc.totals.tax_total_accounting
    return values


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            marks=pytest.mark.xfail(
                strict=True, reason="the CEN file's line net amounts are not qty × price (see comment)"
            ),
        )
        if p.name in INCONSISTENT_LINE_NETS
        else p
        for p in ALL_FILES
    ],
    ids=_ids(ALL_FILES),
)
def test_full_recomputation_matches_file_totals(path: Path) -> None:
    doc = parse_invoice(path.read_bytes()).document
    recomputed = computation.compute(copy.deepcopy(doc))
    assert _totals(recomputed) == _totals(doc)


@pytest.mark.parametrize("path", ALL_FILES, ids=_ids(ALL_FILES))
def test_document_level_recomputation_from_file_line_nets(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With BT-131 taken as the file states it, allowances, charges, VAT breakdown and BT-106..BT-115
    recompute to exactly the file's values for every CEN example (BR-CO-10..BR-CO-17)."""
    doc = parse_invoice(path.read_bytes()).document
    monkeypatch.setattr(computation, "compute_line", lambda line: line.net_amount)
    recomputed = computation.compute(copy.deepcopy(doc))
    assert _totals(recomputed) == _totals(doc)
    assert [(v.category, v.taxable_amount, v.tax_amount) for v in recomputed.vat_breakdown] == [
        (v.category, v.taxable_amount, v.tax_amount) for v in doc.vat_breakdown
    ]


@pytest.mark.parametrize("payload", [XXE, BILLION_LAUGHS], ids=["xxe", "billion-laughs"])
def test_hostile_xml_inside_pdf_is_refused(payload: bytes) -> None:
    """The XML extracted from a PDF goes through the same hardened parser as a bare XML upload."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_blank_pdf())))
    writer.add_attachment("factur-x.xml", payload)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(ImportFormatError):
        parse_invoice(out.getvalue())


def test_doctype_in_pdf_embedded_cii_is_refused_by_our_parser() -> None:
    """facturx extracts the attachment with its own parser; ours still refuses the DOCTYPE after it."""
    xml = (FIXTURES / "cii" / "CII_example4.xml").read_bytes()
    xml = xml.replace(
        b"<rsm:CrossIndustryInvoice", b"<!DOCTYPE rsm:CrossIndustryInvoice>\n<rsm:CrossIndustryInvoice", 1
    )
    with pytest.raises(ImportFormatError, match="DOCTYPE"):
        parse_invoice(_facturx_pdf(xml))


@pytest.mark.parametrize(
    ("guideline", "profile"),
    [
        ("urn:factur-x.eu:1p0:minimum", "minimum"),
        ("urn:factur-x.eu:1p0:basicwl", "basicwl"),
        ("urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic", "basic"),
        ("urn:cen.eu:en16931:2017", "en16931"),
        ("urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended", "extended"),
        ("urn:cen.eu:en16931:2017#compliant#urn:zugferd.de:2p0:basic", "basic"),
        ("urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0", "en16931"),
        ("urn:example:unknown", None),
    ],
)
def test_profile_from_guideline(guideline: str, profile: str | None) -> None:
    # MINIMUM and BASIC WL allow no lines; the others would refuse a line-less invoice, so only
    # those two go through the full parse. The others are checked through a CEN example.
    if profile in ("minimum", "basicwl"):
        xml = FRENCH_CII.replace(b"__GUIDELINE__", guideline.encode()).replace(
            b"__NUMBER__", b"<ram:ID>F-1</ram:ID>"
        )
        # BASIC WL has no lines but does carry BT-106.
        xml = xml.replace(
            b"<ram:TaxBasisTotalAmount>",
            b"<ram:LineTotalAmount>100.00</ram:LineTotalAmount><ram:TaxBasisTotalAmount>",
        )
    else:
        xml = (FIXTURES / "cii" / "CII_example4.xml").read_bytes()
        xml = xml.replace(
            b"<ram:ID>urn:cen.eu:en16931:2017</ram:ID>", f"<ram:ID>{guideline}</ram:ID>".encode()
        )
    # facturx cannot infer a level from an unknown guideline: name one for the PDF metadata.
    parsed = parse_invoice(_facturx_pdf(xml, level="autodetect" if profile else "en16931"))
    assert parsed.profile == profile
    assert parsed.specification_id == guideline
    assert parsed.document.profile == (profile or "en16931")


def test_parse_facturx_requires_a_pdf() -> None:
    with pytest.raises(ImportFormatError, match="Not a PDF"):
        parse_facturx((FIXTURES / "cii" / "CII_example4.xml").read_bytes())


def test_basicwl_without_bt106_is_refused() -> None:
    xml = FRENCH_CII.replace(b"__GUIDELINE__", b"urn:factur-x.eu:1p0:basicwl").replace(
        b"__NUMBER__", b"<ram:ID>F-1</ram:ID>"
    )
    with pytest.raises(ImportFormatError, match="BT-106"):
        parse_cii(xml)


# --- round trip with Scell's own writers -----------------------------------------------------------


def _roundtrip_samples() -> dict[str, InvoiceDocument]:
    samples = pytest.importorskip("tests.invoicing.samples")
    return {name: computation.compute(doc) for name, doc in samples.all_samples().items()}


def _comparable(doc: InvoiceDocument) -> InvoiceDocument:
    # BT-111's exchange rate is Scell-internal input: neither CII nor UBL carries it.
    doc = copy.deepcopy(doc)
    doc.tax_exchange_rate = None
    return doc


@pytest.mark.parametrize("writer", ["cii", "ubl"])
def test_scell_writers_roundtrip_through_import(writer: str) -> None:
    """Whatever Scell writes, the importer reads back into an equal semantic document."""
    if writer == "cii":
        write = pytest.importorskip("invoicing.formats.cii").to_cii
        read = parse_cii
    else:
        write = pytest.importorskip("invoicing.formats.ubl").to_ubl
        read = parse_ubl
    for name, doc in _roundtrip_samples().items():
        assert read(write(doc)) == _comparable(doc), name


def test_scell_facturx_pdf_roundtrip() -> None:
    to_cii = pytest.importorskip("invoicing.formats.cii").to_cii
    to_facturx_pdf = pytest.importorskip("invoicing.formats.facturx").to_facturx_pdf
    doc = _roundtrip_samples().get("simple_standard")
    if doc is None:
        pytest.skip("sample 'simple_standard' not available")
    xml = to_cii(doc)
    parsed = parse_invoice(to_facturx_pdf(doc, xml, check_xsd=False))
    assert parsed.syntax == "facturx"
    assert parsed.profile == doc.profile
    assert parsed.source_xml == xml
    assert parsed.document == _comparable(doc)
