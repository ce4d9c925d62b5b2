"""CII D16B writer: every sample in every Factur-X profile passes the profile XSD, and from BASIC up
the official EN 16931 Schematron, the Factur-X profile Schematron and the French BR-FR Schematron."""

from __future__ import annotations

from decimal import Decimal

import facturx
import pytest
from lxml import etree

from invoicing.computation import compute
from invoicing.document import Profile
from invoicing.formats.cii import GUIDELINES, NS_QDT, NS_RAM, NS_RSM, NS_UDT, to_cii
from invoicing.validation import validate_cii
from tests.invoicing import samples

NS = {"rsm": NS_RSM, "ram": NS_RAM, "udt": NS_UDT, "qdt": NS_QDT}
PROFILES = [p.value for p in Profile]
EN16931_PROFILES = [Profile.BASIC.value, Profile.EN16931.value, Profile.EXTENDED.value]


def build(name: str, profile: str = Profile.EN16931) -> bytes:
    doc = samples.SCENARIOS[name]()
    doc.profile = profile
    return to_cii(compute(doc))


def tree(name: str, profile: str = Profile.EN16931) -> etree._Element:
    return etree.fromstring(build(name, profile))


def xpath(root: etree._Element, path: str) -> list:
    return root.xpath(path, namespaces=NS)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", list(samples.SCENARIOS))
def test_profile_xsd(name, profile):
    assert facturx.xml_check_xsd(build(name, profile), flavor="factur-x", level=profile)


@pytest.mark.parametrize("profile", EN16931_PROFILES)
@pytest.mark.parametrize("name", list(samples.SCENARIOS))
def test_en16931_facturx_and_br_fr_schematrons(name, profile):
    report = validate_cii(build(name, profile), profile=profile, french=True)
    blocking = [(i.rule, i.source, i.message[:200]) for i in report.issues if i.blocking]
    assert blocking == []
    assert report.valid


@pytest.mark.parametrize("profile", [Profile.MINIMUM.value, Profile.BASIC_WL.value])
@pytest.mark.parametrize("name", list(samples.SCENARIOS))
def test_minimum_and_basicwl_profile_rules(name, profile):
    # Below BASIC the document is not an EN 16931 invoice; the XSD and the Factur-X profile
    # Schematron still apply (and BR-FR for BASIC WL, which keeps notes and electronic addresses).
    report = validate_cii(build(name, profile), profile=profile, french=profile == Profile.BASIC_WL)
    assert [(i.rule, i.message[:200]) for i in report.issues if i.blocking] == []


def test_guideline_and_business_process():
    for profile in PROFILES:
        root = tree("mixed", profile)
        assert xpath(root, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID/text()") == [
            GUIDELINES[profile]
        ]
        assert xpath(root, "//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID/text()") == ["M1"]


def test_minimum_and_basicwl_have_no_lines():
    for profile in (Profile.MINIMUM, Profile.BASIC_WL):
        root = tree("multi_rate", profile)
        assert xpath(root, "//ram:IncludedSupplyChainTradeLineItem") == []
    assert xpath(tree("multi_rate", Profile.MINIMUM), "//ram:IncludedNote") == []
    assert len(xpath(tree("multi_rate", Profile.BASIC), "//ram:IncludedSupplyChainTradeLineItem")) == 5


def test_header_figures_and_french_notes():
    root = tree("simple_standard")
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"
    assert xpath(root, summation + "LineTotalAmount/text()") == ["850.00"]
    assert xpath(root, summation + "TaxTotalAmount[@currencyID='EUR']/text()") == ["170.00"]
    assert xpath(root, summation + "GrandTotalAmount/text()") == ["1020.00"]
    assert xpath(root, summation + "DuePayableAmount/text()") == ["1020.00"]
    subjects = xpath(root, "//rsm:ExchangedDocument/ram:IncludedNote/ram:SubjectCode/text()")
    assert subjects == ["PMT", "PMD", "AAB", "BAR"]
    seller = "//ram:SellerTradeParty/"
    assert xpath(root, seller + "ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']/text()") == [
        "732829320"
    ]
    assert xpath(root, seller + "ram:GlobalID[@schemeID='0009']/text()") == ["73282932000074"]
    assert xpath(
        root, "//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID[@schemeID='0225']/text()"
    )
    assert xpath(root, "//ram:IssueDateTime/udt:DateTimeString[@format='102']/text()") == ["20250314"]


def test_vat_breakdown_and_rates_are_french_formatted():
    root = tree("multi_rate")
    rates = xpath(
        root, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent/text()"
    )
    assert rates == ["20.00", "10.00", "5.50", "2.10"]
    assert xpath(root, "//ram:BilledQuantity/text()")[4] == "7"
    assert xpath(root, "//ram:NetPriceProductTradePrice/ram:ChargeAmount/text()")[4] == "3.333"


def test_exemption_reason_and_not_subject():
    root = tree("exempt")
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
    assert xpath(root, tax + "ram:ExemptionReasonCode/text()") == ["VATEX-FR-CGI261-4"]
    root = tree("not_subject")
    assert xpath(root, "//ram:ApplicableTradeTax/ram:RateApplicablePercent") == []  # BR-O-05, BR-O-10
    assert xpath(root, "//ram:SpecifiedTaxRegistration") == []  # BR-O-02


def test_foreign_currency_writes_bt6_and_bt111():
    root = tree("foreign_currency")
    assert xpath(root, "//ram:TaxCurrencyCode/text()") == ["EUR"]
    assert xpath(root, "//ram:InvoiceCurrencyCode/text()") == ["USD"]
    assert xpath(root, "//ram:TaxTotalAmount[@currencyID='USD']/text()") == ["1199.40"]
    assert xpath(root, "//ram:TaxTotalAmount[@currencyID='EUR']/text()") == ["1105.25"]


def test_credit_note_references_preceding_invoice():
    root = tree("credit_note")
    assert xpath(root, "//rsm:ExchangedDocument/ram:TypeCode/text()") == ["381"]
    ref = "//ram:InvoiceReferencedDocument/"
    assert xpath(root, ref + "ram:IssuerAssignedID/text()") == ["FA-2025-0001"]
    assert xpath(root, ref + "ram:FormattedIssueDateTime/qdt:DateTimeString/text()") == ["20250314"]


def test_allowances_charges_written():
    root = tree("document_allowance_charge")
    header = "//ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeAllowanceCharge"
    assert xpath(root, header + "/ram:ChargeIndicator/udt:Indicator/text()") == ["false", "true"]
    assert xpath(root, header + "/ram:ActualAmount/text()") == ["120.00", "35.00"]
    assert xpath(root, header + "/ram:CategoryTradeTax/ram:CategoryCode/text()") == ["S", "S"]
    root = tree("line_allowances_charges")
    line = "//ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeAllowanceCharge"
    assert xpath(root, line + "/ram:ActualAmount/text()") == ["100.00", "15.00", "5.00"]
    assert xpath(root, line + "/ram:CalculationPercent/text()") == ["10.00"]
    # BASIC does not use the line allowance base and percent.
    assert xpath(tree("line_allowances_charges", Profile.BASIC), line + "/ram:CalculationPercent") == []


def test_prepaid_written():
    root = tree("prepaid")
    assert xpath(root, "//ram:TotalPrepaidAmount/text()") == ["300.00"]
    assert xpath(root, "//ram:DuePayableAmount/text()") == ["2700.00"]


def test_user_data_is_escaped():
    doc = samples.simple_standard()
    doc.lines[0].name = 'Audit <script>alert("x")</script> & co'
    doc.buyer.name = "Dupont & Fils <SARL>"
    root = etree.fromstring(to_cii(compute(doc)))
    assert xpath(root, "//ram:SpecifiedTradeProduct/ram:Name/text()") == [doc.lines[0].name]
    assert xpath(root, "//ram:BuyerTradeParty/ram:Name/text()") == [doc.buyer.name]
    assert xpath(root, "//script") == []


def test_schematron_catches_a_broken_document():
    # The checks above mean something only if the rules do fire: drop the PMT note and break BT-23.
    doc = samples.simple_standard()
    doc.notes = [note for note in doc.notes if note.subject != "PMT"]
    doc.business_process = "X9"
    doc.delivery = None
    doc.lines[0].vat_rate = Decimal("19")
    report = validate_cii(to_cii(compute(doc)), profile="en16931")
    rules = {issue.rule for issue in report.issues if issue.blocking}
    assert not report.valid
    assert any(rule.startswith("BR-FR-05") for rule in rules)
    assert any(rule.startswith("BR-FR-08") for rule in rules)
    assert any(rule.startswith("BR-FR-16") for rule in rules)


def test_en16931_schematron_catches_inconsistent_totals():
    doc = compute(samples.simple_standard())
    doc.totals.tax_inclusive = Decimal("1000.00")  # should be 850.00 + 170.00
    report = validate_cii(to_cii(doc), profile="en16931")
    rules = {(issue.rule, issue.source) for issue in report.issues if issue.blocking}
    assert ("BR-CO-15", "en16931") in rules
