"""Issued invoices reach the WORM archive through the render actor, once, with their hashes."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from dateutil.relativedelta import relativedelta
from django.core.files.storage import storages
from django.test import override_settings

from archive.models import ArchivedDocument
from archive.storage import WormViolation, archive_invoice
from invoicing.models import Invoice, RenderedDocument
from tests.archive import moto_server
from tests.invoicing import conftest as invoicing_fixtures

# Fixtures shared with the invoicing tests.
seller = invoicing_fixtures.seller
draft_body = invoicing_fixtures.draft_body
moto_s3 = moto_server.moto_s3


@pytest.fixture(params=["disk", "s3"])
def archive_backend(request, tmp_path):
    if request.param == "disk":
        backend = {"BACKEND": "archive.storage.WormFileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}
    else:
        s3 = request.getfixturevalue("moto_s3")
        bucket = s3.create_bucket(f"archive-{uuid.uuid4().hex[:12]}", object_lock=True)
        backend = {"BACKEND": "archive.storage.WormS3Storage", "OPTIONS": s3.storage_options(bucket)}
    from django.conf import settings

    with override_settings(STORAGES={**settings.STORAGES, "archive": backend}):
        yield request.param


def _issue(seller, draft_body) -> Invoice:
    client = seller.client("sk_test")
    draft = client.post("/api/v1/invoices", draft_body, format="json").json()
    issued = client.post(f"/api/v1/invoices/{draft['id']}/issue")
    assert issued.status_code == 200, issued.content
    return Invoice.objects.get(pk=draft["id"])


@pytest.mark.django_db(transaction=True)
def test_issue_then_render_actor_archives_once(seller, draft_body, stub_worker, archive_backend) -> None:
    invoice = _issue(seller, draft_body)
    stub_worker.join("documents", fail_fast=True)

    docs = {d.kind: d for d in ArchivedDocument.objects.filter(invoice=invoice)}
    assert set(docs) == {"facturx", "cii", "json"}
    storage = storages["archive"]
    prefix = f"{invoice.tenant_id}/test/{invoice.issue_date:%Y}/{invoice.number}/"
    for doc in docs.values():
        assert doc.name.startswith(prefix)
        assert doc.tenant_id == invoice.tenant_id and doc.livemode is False
        assert doc.retain_until == invoice.issue_date + relativedelta(years=11)
        with storage.open(doc.name, "rb") as handle:
            body = handle.read()
        assert hashlib.sha256(body).hexdigest() == doc.sha256
        assert len(body) == doc.size
    # The archived Factur-X is the rendered one, the CII the one the number was validated with.
    assert docs["facturx"].sha256 == RenderedDocument.objects.get(invoice=invoice, format="facturx").sha256
    assert docs["cii"].sha256 == hashlib.sha256(bytes(invoice.cii_xml)).hexdigest()
    with storage.open(docs["json"].name, "rb") as handle:
        as_json = json.loads(handle.read())
    assert as_json["number"] == invoice.number and as_json["status"] == "issued"

    # Idempotent: again through the service and through the actor, nothing new, nothing rewritten.
    again = archive_invoice(invoice=invoice)
    assert sorted(d.pk for d in again) == sorted(d.pk for d in docs.values())
    from invoicing.tasks import render_invoice_documents

    render_invoice_documents.send(str(invoice.pk))
    stub_worker.join("documents", fail_fast=True)
    assert ArchivedDocument.objects.filter(invoice=invoice).count() == 3
    # And the archive itself refuses a second copy under the same name.
    with pytest.raises(WormViolation):
        storage.save(docs["cii"].name, open(__file__, "rb"))  # noqa: SIM115


@pytest.mark.django_db(transaction=True)
def test_archive_recovers_a_write_that_was_not_recorded(seller, draft_body, stub_worker, tmp_path) -> None:
    # A previous attempt wrote the files and died before recording them: the retry records what the
    # archive holds instead of failing forever on "already exists".
    from django.conf import settings

    backend = {"BACKEND": "archive.storage.WormFileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}
    with override_settings(STORAGES={**settings.STORAGES, "archive": backend}):
        invoice = _issue(seller, draft_body)
        stub_worker.join("documents", fail_fast=True)
        first = {d.kind: (d.name, d.sha256) for d in ArchivedDocument.objects.filter(invoice=invoice)}
        ArchivedDocument.objects.filter(invoice=invoice, kind="cii").delete()
        archive_invoice(invoice=invoice)
        again = {d.kind: (d.name, d.sha256) for d in ArchivedDocument.objects.filter(invoice=invoice)}
    assert again == first


@pytest.mark.django_db
def test_drafts_are_not_archived(seller, draft_body) -> None:
    draft = seller.client("sk_test").post("/api/v1/invoices", draft_body, format="json").json()
    with pytest.raises(ValueError, match="Only issued"):
        archive_invoice(invoice=Invoice.objects.get(pk=draft["id"]))
