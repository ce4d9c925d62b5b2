"""Acceptance: issuing through the real API, for every body of ``api_bodies`` × every format/profile,
then validating what ``/download`` serves (CII, UBL, Factur-X) with the official rules."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from typing import Any

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from invoicing.validation import validate_cii, validate_facturx_pdf, validate_ubl
from invoicing.validation.validators import PROFILE_XMP_LEVELS, _xmp_levels
from scell.models import Tenant
from tests.invoicing import api_bodies
from tests.invoicing.api_bodies import (
    BODIES,
    EXPECTED,
    FORMATS,
    NUMBER_RE,
    create,
    create_and_issue,
    download,
    error_rules,
    issue,
)

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS = {"rsm": RSM, "ram": RAM, "udt": UDT, "cbc": CBC, "cac": CAC}


def assert_valid(report: Any, what: str) -> None:
    assert report.valid, f"{what}: {sorted(report.rules())} " + "; ".join(
        f"{i.rule}: {i.message[:160]}" for i in report.errors[:8]
    )


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


def check_facturx(pdf: bytes, profile: str, number: str, *, sandbox: bool = True) -> None:
    assert pdf.startswith(b"%PDF")
    filename, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    assert filename == "factur-x.xml"
    root = etree.fromstring(xml)
    assert root.findtext("rsm:ExchangedDocument/ram:ID", namespaces=NS) == number
    levels, filenames = _xmp_levels(PdfReader(io.BytesIO(pdf)))
    assert levels and levels[0] == PROFILE_XMP_LEVELS[profile], levels
    assert filenames in ([], ["factur-x.xml"])
    assert_valid(validate_facturx_pdf(pdf), f"facturx {profile}")
    if sandbox:
        assert "SANDBOX" in pdf_text(pdf)


# --- the matrix -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "profile"), FORMATS, ids=[f"{f}-{p}" for f, p in FORMATS])
@pytest.mark.parametrize("name", list(BODIES))
def test_issue_matrix(seller, name: str, fmt: str, profile: str) -> None:
    client = seller.client("sk_test")
    body = BODIES[name]()
    body["format"], body["profile"] = fmt, profile
    draft = create(client, body)
    assert draft["status"] == "draft"
    assert re.fullmatch(r"DRAFT-\d{5}", draft["number"])
    # Totals are computed on the draft already, exact decimal strings.
    assert (
        draft["total_without_vat"],
        draft["total_vat"],
        draft["total_with_vat"],
        draft["amount_due"],
    ) == EXPECTED[name]

    response = issue(client, draft["id"])
    assert response.status_code == 200, (error_rules(response), response.content[:3000])
    invoice = response.json()
    assert invoice["status"] == "issued"
    assert re.fullmatch(NUMBER_RE, invoice["number"]), invoice["number"]
    assert invoice["number"].endswith("-00001")
    assert invoice["livemode"] is False
    assert (invoice["format"], invoice["profile"]) == (fmt, profile)
    assert (
        invoice["total_without_vat"],
        invoice["total_vat"],
        invoice["total_with_vat"],
        invoice["amount_due"],
    ) == EXPECTED[name]
    assert invoice["seller"]["siren"] == "732829320"
    assert len(invoice["document_sha256"]) == 64

    cii = download(client, invoice["id"], "cii")
    assert_valid(validate_cii(cii, profile=profile), f"cii {profile}")
    root = etree.fromstring(cii)
    assert root.findtext("rsm:ExchangedDocument/ram:ID", namespaces=NS) == invoice["number"]
    assert root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "380"

    ubl = download(client, invoice["id"], "ubl")
    assert_valid(validate_ubl(ubl), "ubl")
    assert etree.fromstring(ubl).findtext("cbc:ID", namespaces=NS) == invoice["number"]

    # PDF rendering costs ~170 ms: every body once in EN 16931, every profile once with one body.
    if (fmt == "facturx" and profile == "en16931") or (fmt == "facturx" and name == "multi_rate"):
        check_facturx(download(client, invoice["id"], "facturx"), profile, invoice["number"])


def test_not_subject_needs_a_seller_without_vat_id(seller) -> None:
    """O (BR-O-02): neither the seller nor the buyer VAT id may be present."""
    client = seller.client("sk_test")
    draft = create(client, api_bodies.not_subject())
    response = issue(client, draft["id"])
    assert response.status_code == 422
    assert "BR-O-02" in error_rules(response)

    Tenant.objects.filter(pk=seller.tenant.pk).update(vat_id="")
    invoice = create_and_issue(client, api_bodies.not_subject())
    assert invoice["number"].endswith("-00001")  # the refused issue took no number
    assert (
        invoice["total_without_vat"],
        invoice["total_vat"],
        invoice["total_with_vat"],
        invoice["amount_due"],
    ) == EXPECTED["not_subject"]
    assert invoice["vat_breakdown"][0]["category"] == "O"
    assert invoice["vat_breakdown"][0]["rate"] is None
    assert_valid(validate_cii(download(client, invoice["id"], "cii"), profile="en16931"), "cii O")
    assert_valid(validate_ubl(download(client, invoice["id"], "ubl")), "ubl O")


def test_totals_hand_checked_multi_rate(seller) -> None:
    """Every amount of the four-rate invoice, by hand (see ``api_bodies.multi_rate``)."""
    invoice = create_and_issue(seller.client("sk_test"), api_bodies.multi_rate())
    assert invoice["total_without_vat"] == "1385.03"
    assert invoice["total_vat"] == "215.97"
    assert invoice["total_with_vat"] == "1601.00"
    assert invoice["amount_due"] == "1601.00"
    breakdown = {(b["category"], Decimal(b["rate"])): b for b in invoice["vat_breakdown"]}
    assert {k: (v["taxable_amount"], v["tax_amount"]) for k, v in breakdown.items()} == {
        ("S", Decimal("20")): ("923.33", "184.67"),
        ("S", Decimal("10")): ("222.00", "22.20"),
        ("S", Decimal("5.5")): ("119.70", "6.58"),
        ("S", Decimal("2.1")): ("120.00", "2.52"),
    }
    nets = [line["net_amount"] for line in invoice["lines"]]
    assert nets == ["900.00", "222.00", "119.70", "120.00", "23.33"]
    assert invoice["totals"]["line_total"] == "1385.03"
    assert invoice["operation_category"] == "mixed"


def test_exemption_code_and_reason_land_in_the_right_terms(seller) -> None:
    """BT-121 carries the VATEX code and BT-120 the text (they were once swapped)."""
    client = seller.client("sk_test")
    invoice = create_and_issue(client, api_bodies.exempt())
    (vat,) = invoice["vat_breakdown"]
    assert (vat["category"], vat["exemption_reason_code"]) == ("E", "VATEX-FR-CGI261-4")
    assert vat["exemption_reason"].startswith("Exonération de TVA, article 261-4-4°")
    cii = etree.fromstring(download(client, invoice["id"], "cii"))
    tax = cii.find(".//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", NS)
    assert tax.findtext("ram:ExemptionReasonCode", namespaces=NS) == "VATEX-FR-CGI261-4"
    assert tax.findtext("ram:ExemptionReason", namespaces=NS).startswith("Exonération")
    # Defaults for K when the body gives none.
    invoice = create_and_issue(client, api_bodies.intra_eu())
    assert invoice["vat_breakdown"][0]["exemption_reason_code"] == "VATEX-EU-IC"


def test_foreign_currency_vat_in_euros(seller) -> None:
    client = seller.client("sk_test")
    invoice = create_and_issue(client, api_bodies.foreign_currency())
    assert invoice["currency"] == "USD"
    assert invoice["totals"]["tax_total_accounting"] == "276.00"
    cii = etree.fromstring(download(client, invoice["id"], "cii"))
    settlement = cii.find(".//ram:ApplicableHeaderTradeSettlement", NS)
    assert settlement.findtext("ram:TaxCurrencyCode", namespaces=NS) == "EUR"
    amounts = {
        el.get("currencyID"): el.text
        for el in settlement.findall(
            ".//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxTotalAmount", NS
        )
    }
    assert amounts == {"USD": "300.00", "EUR": "276.00"}


def test_prepaid_and_vat_on_debits_reach_the_xml(seller) -> None:
    client = seller.client("sk_test")
    invoice = create_and_issue(client, api_bodies.prepaid())
    cii = etree.fromstring(download(client, invoice["id"], "cii"))
    summation = cii.find(".//ram:SpecifiedTradeSettlementHeaderMonetarySummation", NS)
    assert summation.findtext("ram:TotalPrepaidAmount", namespaces=NS) == "300.00"
    assert summation.findtext("ram:DuePayableAmount", namespaces=NS) == "900.00"

    invoice = create_and_issue(client, api_bodies.goods_vat_on_debits())
    assert invoice["number"].endswith("-00002")
    cii = etree.fromstring(download(client, invoice["id"], "cii"))
    assert cii.findtext(".//ram:ApplicableTradeTax/ram:DueDateTypeCode", namespaces=NS) == "5"
    process = cii.findtext(".//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", namespaces=NS)
    assert process == "B1"


def test_sandbox_pdf_is_marked_and_readable_pdf_downloads(seller) -> None:
    client = seller.client("sk_test")
    invoice = create_and_issue(client, api_bodies.simple())
    pdf = download(client, invoice["id"], "pdf")
    assert pdf.startswith(b"%PDF") and "SANDBOX" in pdf_text(pdf)
    response = client.get(f"/api/v1/invoices/{invoice['id']}/download", {"format": "facturx"})
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice["number"]}.pdf"'
    assert len(response["X-Content-SHA256"]) == 64
    as_json = client.get(f"/api/v1/invoices/{invoice['id']}/download", {"format": "json"})
    assert as_json.status_code == 200 and as_json.json()["number"] == invoice["number"]
    assert client.get(f"/api/v1/invoices/{invoice['id']}/download", {"format": "docx"}).status_code == 422


def test_live_pdf_has_no_sandbox_mark(seller) -> None:
    client = seller.client("sk_live")
    invoice = create_and_issue(client, api_bodies.simple())
    assert invoice["livemode"] is True
    pdf = download(client, invoice["id"], "facturx")
    assert "SANDBOX" not in pdf_text(pdf)
    check_facturx(pdf, "en16931", invoice["number"], sandbox=False)


# --- credit notes and corrective invoices --------------------------------------------------------


def _preceding(xml: bytes) -> tuple[str | None, str | None]:
    root = etree.fromstring(xml)
    ref = root.find(".//ram:ApplicableHeaderTradeSettlement/ram:InvoiceReferencedDocument", NS)
    assert ref is not None
    # BT-26 is a qdt:DateTimeString (format 102) inside FormattedIssueDateTime.
    date = ref.find("ram:FormattedIssueDateTime/{*}DateTimeString", NS)
    assert date is not None and date.get("format") == "102"
    return ref.findtext("ram:IssuerAssignedID", namespaces=NS), date.text


@pytest.mark.parametrize("fmt", ["facturx", "ubl"])
def test_full_credit_note(seller, fmt: str) -> None:
    client = seller.client("sk_test")
    body = api_bodies.document_allowance_charge()
    body["format"] = fmt
    original = create_and_issue(client, body)
    response = client.post(f"/api/v1/invoices/{original['id']}/credit-note", {}, format="json")
    assert response.status_code == 201, response.content[:2000]
    credit = response.json()
    assert (credit["status"], credit["type"]) == ("draft", "credit_note")
    assert credit["number"].startswith("DRAFT-")
    assert credit["preceding_invoice"] == {
        "id": original["id"],
        "number": original["number"],
        "issue_date": original["issue_date"],
    }
    assert credit["total_with_vat"] == original["total_with_vat"] == "1396.00"
    assert credit["format"] == fmt

    response = issue(client, credit["id"])
    assert response.status_code == 200, (error_rules(response), response.content[:3000])
    issued = response.json()
    assert issued["number"].endswith("-00002"), "credit notes share the invoice sequence"
    assert issued["total_with_vat"] == "1396.00"

    cii = download(client, issued["id"], "cii")
    assert_valid(validate_cii(cii, profile="en16931"), "credit note cii")
    root = etree.fromstring(cii)
    assert root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "381"
    number, date = _preceding(cii)
    assert number == original["number"]
    assert date == original["issue_date"].replace("-", "")

    ubl = download(client, issued["id"], "ubl")
    assert_valid(validate_ubl(ubl), "credit note ubl")
    uroot = etree.fromstring(ubl)
    assert etree.QName(uroot).localname == "CreditNote"
    assert uroot.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
    ref = uroot.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
    assert ref.findtext("cbc:ID", namespaces=NS) == original["number"]
    assert ref.findtext("cbc:IssueDate", namespaces=NS) == original["issue_date"]
    if fmt == "facturx":
        check_facturx(download(client, issued["id"], "facturx"), "en16931", issued["number"])


def test_partial_credit_note(seller) -> None:
    client = seller.client("sk_test")
    original = create_and_issue(client, api_bodies.multi_rate())
    response = client.post(
        f"/api/v1/invoices/{original['id']}/credit-note",
        {"lines": [{"line": 1, "quantity": "1"}]},
        format="json",
    )
    assert response.status_code == 201, response.content[:2000]
    credit = response.json()
    assert len(credit["lines"]) == 1
    assert credit["lines"][0]["description"] == "Conseil"
    assert credit["lines"][0]["quantity"] == "1"
    assert (credit["total_without_vat"], credit["total_vat"], credit["total_with_vat"]) == (
        "450.00",
        "90.00",
        "540.00",
    )
    issued = issue(client, credit["id"])
    assert issued.status_code == 200, error_rules(issued)
    cii = download(client, credit["id"], "cii")
    assert_valid(validate_cii(cii, profile="en16931"), "partial credit note")
    assert etree.fromstring(cii).findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "381"
    assert _preceding(cii)[0] == original["number"]


def test_partial_credit_note_leaves_document_allowances_and_charges_out(seller) -> None:
    """Crediting line 2 (200.00 at 10 %) of ``document_allowance_charge`` credits 200.00 + 20.00, not
    the original's document-wide allowance (−50.00) and charge (+30.00) once more."""
    client = seller.client("sk_test")
    original = create_and_issue(client, api_bodies.document_allowance_charge())
    response = client.post(
        f"/api/v1/invoices/{original['id']}/credit-note", {"lines": [{"line": 2}]}, format="json"
    )
    assert response.status_code == 201, response.content[:2000]
    credit = response.json()
    assert (credit["allowances"], credit["charges"]) == ([], [])
    assert (credit["total_without_vat"], credit["total_vat"], credit["total_with_vat"]) == (
        "200.00",
        "20.00",
        "220.00",
    )
    assert [(b["category"], b["rate"]) for b in credit["vat_breakdown"]] == [("S", "10.00")]
    # A full credit note keeps them.
    full = client.post(f"/api/v1/invoices/{original['id']}/credit-note", {}, format="json").json()
    assert full["total_with_vat"] == "1396.00" and len(full["allowances"]) == len(full["charges"]) == 1


def test_credit_note_issued_at_once_and_refusals(seller) -> None:
    client = seller.client("sk_test")
    original = create_and_issue(client, api_bodies.simple())
    response = client.post(f"/api/v1/invoices/{original['id']}/credit-note", {"issue": True}, format="json")
    assert response.status_code == 201
    credit = response.json()
    assert credit["status"] == "issued" and credit["number"].endswith("-00002")
    # A credit note cannot be credited, a draft neither; unknown lines and excessive quantities are 422.
    assert client.post(f"/api/v1/invoices/{credit['id']}/credit-note", {}, format="json").status_code == 409
    draft = create(client, api_bodies.simple())
    assert client.post(f"/api/v1/invoices/{draft['id']}/credit-note", {}, format="json").status_code == 409
    for lines in ([{"line": 9}], [{"line": 1, "quantity": "3"}], [{"line": 1, "quantity": "0"}]):
        response = client.post(
            f"/api/v1/invoices/{original['id']}/credit-note", {"lines": lines}, format="json"
        )
        assert response.status_code == 422, (lines, response.content)
        assert response.json()["error"]["details"]


def test_corrective_invoice_384(seller) -> None:
    """A corrective invoice (384) names the invoice it corrects (BG-3); without it BR-FR-CO-04 refuses it."""
    client = seller.client("sk_test")
    original = create_and_issue(client, api_bodies.simple())
    bare = api_bodies.simple()
    bare["type"] = "corrective"
    draft = create(client, bare)
    response = issue(client, draft["id"])
    assert response.status_code == 422
    assert "BR-FR-CO-04" in error_rules(response)
    assert (
        client.patch(
            f"/api/v1/invoices/{draft['id']}", {"preceding_invoice": original["id"]}, format="json"
        ).status_code
        == 200
    )
    response = issue(client, draft["id"])
    assert response.status_code == 200, response.content
    corrective = response.json()
    assert corrective["preceding_invoice"] == {
        "id": original["id"],
        "number": original["number"],
        "issue_date": original["issue_date"],
    }
    cii = download(client, corrective["id"], "cii")
    root = etree.fromstring(cii)
    assert root.findtext(".//{*}ExchangedDocument/{*}TypeCode") == "384"
    assert root.findtext(".//{*}InvoiceReferencedDocument/{*}IssuerAssignedID") == original["number"]
    report = validate_cii(cii, profile="en16931")
    assert report.valid, sorted(report.rules())
    ubl = download(client, corrective["id"], "ubl")
    assert validate_ubl(ubl).valid
    # Only an issued invoice of the same tenant and mode can be referenced: not a draft, not a live one.
    another = create(client, bare)
    not_issued = create(client, api_bodies.simple())
    live = create_and_issue(seller.client("sk_live"), api_bodies.simple())
    for ref in (not_issued["id"], live["id"]):
        response = client.patch(
            f"/api/v1/invoices/{another['id']}", {"preceding_invoice": ref}, format="json"
        )
        assert response.status_code == 422, response.content
        assert response.json()["error"]["details"][0]["field"] == "preceding_invoice"
