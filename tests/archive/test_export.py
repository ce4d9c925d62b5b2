"""GET /api/v1/archive/export: a streamed zip of the caller's issued invoices, with a manifest."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from django.core.management import call_command
from django.http import StreamingHttpResponse

from archive.models import ChainEntry
from invoicing.models import Invoice, RenderedDocument
from tests.invoicing import conftest as invoicing_fixtures
from tests.invoicing.conftest import SELLER_PROFILE

# Fixtures shared with the invoicing tests.
seller = invoicing_fixtures.seller
draft_body = invoicing_fixtures.draft_body


def _issue(fixture, body) -> Invoice:
    client = fixture.client("sk_test")
    draft = client.post("/api/v1/invoices", body, format="json").json()
    issued = client.post(f"/api/v1/invoices/{draft['id']}/issue")
    assert issued.status_code == 200, issued.content
    return Invoice.objects.get(pk=draft["id"])


def _zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200, getattr(response, "content", b"")[:500]
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def _check_manifest(archive: zipfile.ZipFile) -> dict:
    manifest = json.loads(archive.read("manifest.json"))
    listed = {entry["name"]: entry for entry in manifest["files"]}
    assert set(listed) | {"manifest.json"} == set(archive.namelist())
    for name, entry in listed.items():
        data = archive.read(name)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["size"]
    assert manifest["count"] == len(listed)
    return manifest


@pytest.fixture
def other_seller(make_tenant):
    from decimal import Decimal

    from billing.services import credits_grant_pack

    fixture = make_tenant("OTHR1", legal_name="Autre SAS", siren="732829320", **SELLER_PROFILE)
    credits_grant_pack(tenant=fixture.tenant, amount=Decimal("50.00"))
    return fixture


@pytest.mark.django_db
def test_json_export_has_every_issued_invoice_with_chain_hashes(seller, other_seller, draft_body) -> None:
    mine = [_issue(seller, draft_body) for _ in range(3)]
    seller.client("sk_test").post("/api/v1/invoices", draft_body, format="json")  # a draft: not exported
    theirs = _issue(other_seller, draft_body)

    archive = _zip(seller.client("sk_test").get("/api/v1/archive/export?format=json"))
    manifest = _check_manifest(archive)
    assert manifest["format"] == "json" and manifest["livemode"] is False
    assert sorted(e["number"] for e in manifest["files"]) == sorted(i.number for i in mine)
    assert str(theirs.pk) not in {e["invoice_id"] for e in manifest["files"]}
    for invoice in mine:
        body = json.loads(archive.read(f"invoices/{invoice.number}.json"))
        assert body["invoice"]["id"] == str(invoice.pk)
        assert body["invoice"]["number"] == invoice.number
        assert body["invoice"]["document_sha256"] == invoice.document_sha256
        assert len(body["invoice"]["lines"]) == 1
        # The chain entries of the invoice row, as the triggers (or the SQLite writer) wrote them.
        entries = ChainEntry.objects.filter(source_table="invoicing_invoice", source_id=str(invoice.pk))
        assert [e["hash"] for e in body["chain"]] == [bytes(e.hash).hex() for e in entries.order_by("seq")]

    # The other tenant's export holds only its own invoice; a live key sees no sandbox invoice.
    other = _check_manifest(_zip(other_seller.client("sk_test").get("/api/v1/archive/export?format=json")))
    assert [e["invoice_id"] for e in other["files"]] == [str(theirs.pk)]
    live = _check_manifest(_zip(seller.client("sk_live").get("/api/v1/archive/export?format=json")))
    assert live["files"] == []


@pytest.mark.django_db
def test_pdf_export_renders_missing_facturx(seller, draft_body) -> None:
    invoices = [_issue(seller, draft_body) for _ in range(2)]
    assert not RenderedDocument.objects.filter(invoice__in=invoices).exists()  # no worker ran
    archive = _zip(seller.client("sk_test").get("/api/v1/archive/export?format=pdf"))
    manifest = _check_manifest(archive)
    assert len(manifest["files"]) == 2
    for invoice in invoices:
        pdf = archive.read(f"invoices/{invoice.number}.pdf")
        assert pdf.startswith(b"%PDF-")
        rendered = RenderedDocument.objects.get(invoice=invoice, format="facturx")
        assert hashlib.sha256(pdf).hexdigest() == rendered.sha256


@pytest.mark.django_db
def test_export_errors_and_auth(seller) -> None:
    response = seller.client("sk_test").get("/api/v1/archive/export?format=xlsx")
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "format"
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/archive/export").status_code in {401, 403}


@pytest.mark.django_db
def test_export_archive_command(seller, draft_body, tmp_path, capsys) -> None:
    invoice = _issue(seller, draft_body)
    output = tmp_path / "export.zip"
    call_command(
        "export_archive", "--tenant", seller.tenant.identifier, "--format", "json", "--output", str(output)
    )
    with zipfile.ZipFile(output) as archive:
        manifest = _check_manifest(archive)
    assert [e["number"] for e in manifest["files"]] == [invoice.number]
    assert "1/1 invoices" in capsys.readouterr().err
