"""Issuing enqueues the rendering actor after commit; the actor renders and checks the Factur-X."""

from __future__ import annotations

import pytest

from invoicing.models import Invoice, InvoiceEvent, RenderedDocument


@pytest.mark.django_db(transaction=True)
def test_issue_renders_and_checks_facturx_in_the_worker(seller, draft_body, stub_worker) -> None:
    client = seller.client("sk_test")
    draft = client.post("/api/v1/invoices", draft_body, format="json").json()
    # Nothing is enqueued for a draft.
    assert stub_worker.queues.get("documents") is None or stub_worker.queues["documents"].qsize() == 0
    issued = client.post(f"/api/v1/invoices/{draft['id']}/issue")
    assert issued.status_code == 200, issued.content
    stub_worker.join("documents", fail_fast=True)
    invoice = Invoice.objects.get(pk=draft["id"])
    document = RenderedDocument.objects.get(invoice=invoice, format="facturx")
    assert document.content_type == "application/pdf"
    check = InvoiceEvent.objects.get(invoice=invoice, type="document_checked")
    assert check.data["valid"] is True, check.data
    assert check.data["sha256"] == document.sha256
    # The download serves the document the actor rendered, byte for byte.
    download = client.get(f"/api/v1/invoices/{draft['id']}/download?format=facturx")
    assert download["X-Content-SHA256"] == document.sha256


@pytest.mark.django_db(transaction=True)
def test_failed_issue_enqueues_nothing(seller, draft_body, stub_worker) -> None:
    draft_body["lines"][0]["vat_rate"] = "0"  # BR-S-05: a standard-rated line needs a rate above zero
    client = seller.client("sk_test")
    draft = client.post("/api/v1/invoices", draft_body, format="json").json()
    response = client.post(f"/api/v1/invoices/{draft['id']}/issue")
    assert response.status_code == 422
    queue = stub_worker.queues.get("documents")
    assert queue is None or queue.qsize() == 0
    assert not RenderedDocument.objects.exists()
