"""Acceptance: ``POST /api/v1/invoices/import`` and ``POST /api/v1/invoices/validate`` through the API,
with the CEN/TC 434 example invoices and with documents Scell issued itself."""

from __future__ import annotations

import base64
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from lxml import etree
from rest_framework.test import APIClient

from tests.invoicing import api_bodies
from tests.invoicing.api_bodies import create_and_issue, download, error_rules

FIXTURES = Path(__file__).parent / "fixtures" / "import"
FILES = sorted(FIXTURES.glob("*/*.xml"))
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
}


def file_facts(data: bytes) -> dict[str, Any]:
    """BT-109, BT-110, BT-112, BT-115 and the line count, read straight from the XML."""
    root = etree.fromstring(data)
    if root.tag.endswith("CrossIndustryInvoice"):
        summation = root.find(".//ram:SpecifiedTradeSettlementHeaderMonetarySummation", NS)
        currency = root.findtext(
            ".//ram:ApplicableHeaderTradeSettlement/ram:InvoiceCurrencyCode", namespaces=NS
        )
        taxes = summation.findall("ram:TaxTotalAmount", NS)
        tax = next((t for t in taxes if t.get("currencyID") in (None, currency)), taxes[0] if taxes else None)
        return {
            "number": root.findtext("rsm:ExchangedDocument/ram:ID", namespaces=NS),
            "total_without_vat": Decimal(summation.findtext("ram:TaxBasisTotalAmount", namespaces=NS)),
            "total_vat": Decimal(tax.text) if tax is not None else Decimal("0"),
            "total_with_vat": Decimal(summation.findtext("ram:GrandTotalAmount", namespaces=NS)),
            "amount_due": Decimal(summation.findtext("ram:DuePayableAmount", namespaces=NS)),
            "lines": len(root.findall(".//ram:IncludedSupplyChainTradeLineItem", NS)),
            "syntax": "cii",
        }
    currency = root.findtext("cbc:DocumentCurrencyCode", namespaces=NS)
    total = root.find("cac:LegalMonetaryTotal", NS)
    tax = next(
        (t for t in root.findall("cac:TaxTotal/cbc:TaxAmount", NS) if t.get("currencyID") == currency), None
    )
    return {
        "number": root.findtext("cbc:ID", namespaces=NS),
        "total_without_vat": Decimal(total.findtext("cbc:TaxExclusiveAmount", namespaces=NS)),
        "total_vat": Decimal(tax.text) if tax is not None else Decimal("0"),
        "total_with_vat": Decimal(total.findtext("cbc:TaxInclusiveAmount", namespaces=NS)),
        "amount_due": Decimal(total.findtext("cbc:PayableAmount", namespaces=NS)),
        "lines": len(root.findall("cac:InvoiceLine", NS)) + len(root.findall("cac:CreditNoteLine", NS)),
        "syntax": "ubl",
    }


def post_import(client: Any, data: bytes, how: str, path: str = "/api/v1/invoices/import") -> Any:
    if how == "multipart":
        upload = SimpleUploadedFile("invoice.xml", data, content_type="application/xml")
        return client.post(path, {"file": upload}, format="multipart")
    if how == "raw":
        content_type = "application/pdf" if data.startswith(b"%PDF") else "application/xml"
        return client.post(path, data, content_type=content_type)
    assert how == "base64"
    return client.post(path, {"document_base64": base64.b64encode(data).decode()}, format="json")


@pytest.mark.parametrize("how", ["multipart", "raw", "base64"])
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_import_cen_examples(seller, path: Path, how: str) -> None:
    data = path.read_bytes()
    facts = file_facts(data)
    response = post_import(seller.client("sk_test"), data, how)
    assert response.status_code == 201, response.content[:2000]
    invoice = response.json()
    assert invoice["status"] == "received"
    assert invoice["number"] == facts["number"][:40]
    assert invoice["livemode"] is False
    for name in ("total_without_vat", "total_vat", "total_with_vat", "amount_due"):
        assert Decimal(invoice[name]) == facts[name], (name, invoice[name], facts[name])
    assert len(invoice["lines"]) == facts["lines"]
    assert invoice["source_syntax"].startswith(facts["syntax"])
    assert invoice["import_report"]["syntax"].startswith(facts["syntax"])
    if "creditnote" in path.name:
        assert invoice["type"] == "credit_note"
    # Received invoices are listed, filterable and not editable.
    client = seller.client("sk_test")
    assert client.get("/api/v1/invoices", {"status": "received"}).json()["data"][0]["id"] == invoice["id"]
    assert client.patch(f"/api/v1/invoices/{invoice['id']}", {"notes": []}, format="json").status_code == 409
    assert client.post(f"/api/v1/invoices/{invoice['id']}/issue").status_code == 409


def test_import_facturx_pdf(seller, tenant_b) -> None:
    """A Factur-X PDF Scell issued for SELL1 is imported by its buyer (another tenant)."""
    issuer = seller.client("sk_test")
    issued = create_and_issue(issuer, api_bodies.multi_rate())
    pdf = download(issuer, issued["id"], "facturx")
    for how in ("multipart", "raw", "base64"):
        response = post_import(tenant_b.client("sk_test"), pdf, how)
        assert response.status_code == 201, response.content[:2000]
        received = response.json()
        assert received["status"] == "received"
        assert received["number"] == issued["number"]
        assert received["source_syntax"] == "facturx"
        assert received["import_report"]["valid"] is True, received["import_report"]
        for name in ("total_without_vat", "total_vat", "total_with_vat", "amount_due"):
            assert received[name] == issued[name]
        assert len(received["lines"]) == 5
        assert received["seller"]["siren"] == "732829320"


@pytest.mark.parametrize(
    "data",
    [os.urandom(2048), b"<not-xml", b"%PDF-1.4 garbage", b"<root xmlns='urn:x'/>"],
    ids=["random", "broken-xml", "broken-pdf", "unknown-xml"],
)
def test_import_garbage_is_422(seller, data: bytes) -> None:
    client = seller.client("sk_test")
    for how in ("multipart", "raw", "base64"):
        response = post_import(client, data, how)
        assert response.status_code == 422, (how, response.status_code, response.content[:500])
        error = response.json()["error"]
        assert error["type"] == "validation_error" and error["message"] and error["details"]
    assert client.get("/api/v1/invoices").json()["data"] == []


def test_import_missing_document_and_bad_base64(seller) -> None:
    client = seller.client("sk_test")
    response = client.post("/api/v1/invoices/import", {}, format="json")
    assert response.status_code == 422 and response.json()["error"]["code"] == "document_missing"
    response = client.post("/api/v1/invoices/import", {"document_base64": "@@not base64@@"}, format="json")
    assert response.status_code == 422 and "document_base64" in error_rules(response)


# --- validate -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_validate_cen_example_fails_only_french_rules(seller, path: Path) -> None:
    """The CEN examples are valid EN 16931 but not French invoices: the endpoint applies BR-FR too
    (validate_document(french=True)), so they answer 422 with BR-FR rule ids only (and, for
    CII_example5, the Factur-X EN 16931 profile rule it breaks)."""
    response = post_import(seller.client("sk_test"), path.read_bytes(), "raw", "/api/v1/invoices/validate")
    assert response.status_code == 422, response.content[:500]
    rules = set(error_rules(response))
    assert any(rule.startswith("BR-FR-") for rule in rules), rules
    non_french = {rule for rule in rules if not rule.startswith("BR-FR-")}
    assert non_french <= {"FX-PROFILE"}, non_french
    assert "BR-CO-15" not in rules
    assert not any(n.startswith("Invoice") for n in rules)


@pytest.mark.parametrize("fmt", ["cii", "ubl", "facturx"])
def test_validate_our_issued_documents(seller, fmt: str) -> None:
    client = seller.client("sk_test")
    issued = create_and_issue(client, api_bodies.document_allowance_charge())
    data = download(client, issued["id"], fmt)
    for how in ("multipart", "raw", "base64"):
        response = post_import(client, data, how, "/api/v1/invoices/validate")
        assert response.status_code == 200, (
            how,
            error_rules(response) if response.status_code >= 400 else "",
        )
        report = response.json()
        assert report["valid"] is True
        assert report["syntax"].startswith("ubl" if fmt == "ubl" else fmt)
        assert not [i for i in report["issues"] if i["flag"] in {"fatal", "error"}]
    # Nothing was stored by validating.
    assert len(client.get("/api/v1/invoices").json()["data"]) == 1


@pytest.mark.parametrize("fmt", ["cii", "ubl"])
def test_validate_broken_total_is_br_co_15(seller, fmt: str) -> None:
    client = seller.client("sk_test")
    issued = create_and_issue(client, api_bodies.simple())
    data = download(client, issued["id"], fmt)
    tag = b"GrandTotalAmount" if fmt == "cii" else b"TaxInclusiveAmount"
    assert data.count(b">1080.00</") >= 1
    broken = data.replace(tag + b' currencyID="EUR">1080.00<', tag + b' currencyID="EUR">1081.00<').replace(
        tag + b">1080.00<", tag + b">1081.00<"
    )
    assert broken != data
    response = post_import(client, broken, "raw", "/api/v1/invoices/validate")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert "BR-CO-15" in error_rules(response), error_rules(response)
    assert all(d.get("message") for d in error["details"])


def test_validate_garbage_is_422(seller) -> None:
    client = seller.client("sk_test")
    for data in (os.urandom(1024), b"<unclosed", b"%PDF-1.7 nothing"):
        response = post_import(client, data, "raw", "/api/v1/invoices/validate")
        assert response.status_code == 422, response.content[:300]
        assert response.json()["error"]["details"]
    assert client.post("/api/v1/invoices/validate", b"", content_type="application/xml").status_code == 422


def test_validate_and_import_need_a_key(seller) -> None:
    for path in ("/api/v1/invoices/validate", "/api/v1/invoices/import"):
        assert APIClient().post(path, b"<x/>", content_type="application/xml").status_code == 401
