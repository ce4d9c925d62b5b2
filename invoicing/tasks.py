"""Background work of invoicing: rendering and checking documents after an invoice is issued."""

from __future__ import annotations

import logging

import dramatiq

from archive.storage_tasks import archive_after_render
from invoicing.models import Invoice, InvoiceEvent
from invoicing.services import invoice_render

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="documents", max_retries=5, min_backoff=2_000)
def render_invoice_documents(invoice_id: str) -> None:
    """Render the Factur-X PDF of a freshly issued invoice and check the file itself (XMP level,
    attachment name, embedded XML against the rules). Idempotent: a second run renders nothing and
    records no second check."""
    from invoicing.validation import validate_facturx_pdf

    invoice = Invoice.objects.filter(pk=invoice_id, status=Invoice.Status.ISSUED).first()
    if invoice is None:
        return
    archive_after_render(invoice)  # WORM archive; above the early return so that a retry redoes it
    if InvoiceEvent.objects.filter(invoice=invoice, type="document_checked").exists():
        return
    document = invoice_render(invoice=invoice, fmt="facturx")
    with document.file.open("rb") as handle:
        report = validate_facturx_pdf(handle.read())
    if not report.valid:
        logger.error("Factur-X of %s fails %s", invoice.number, sorted(report.rules()))
    InvoiceEvent.objects.create(
        invoice=invoice,
        tenant_id=invoice.tenant_id,
        livemode=invoice.livemode,
        type="document_checked",
        data={
            "format": "facturx",
            "sha256": document.sha256,
            "valid": report.valid,
            "rules": sorted(report.rules()),
        },
    )
