"""Archive actors (see archive/tasks.py): archiving issued invoices and ended signature requests, daily
database backups."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq_crontab import cron

logger = logging.getLogger(__name__)


def archive_after_render(invoice: Any) -> None:
    """Called by ``invoicing.tasks.render_invoice_documents``: archive the issued invoice. A failure is
    logged and re-raised, so Dramatiq retries the whole (idempotent) actor."""
    from archive.storage import archive_invoice

    try:
        archive_invoice(invoice=invoice)
    except Exception:
        logger.exception("archive: could not archive invoice %s (%s)", invoice.pk, invoice.number)
        raise


@cron("40 1 * * *")  # every day at 01:40 (settings TIME_ZONE)
@dramatiq.actor(queue_name="archive", max_retries=3, time_limit=6 * 3600 * 1000)
def archive_missing_invoices() -> None:
    """Catch-up: archive issued invoices the render actor could not (it gave up after its retries)."""
    from archive.models import ArchivedDocument
    from archive.storage import archive_invoice
    from invoicing.models import Invoice

    archived = ArchivedDocument.objects.filter(kind="json", invoice__isnull=False).values("invoice_id")
    # A system sweep over every tenant: each invoice is archived under its own tenant's prefix.
    missing = Invoice.objects.filter(status=Invoice.Status.ISSUED).exclude(pk__in=archived)
    for invoice in missing.iterator(chunk_size=200):
        try:
            archive_invoice(invoice=invoice)
        except Exception:
            logger.exception("archive: catch-up failed for invoice %s", invoice.pk)


@cron("45 1 * * *")  # every day at 01:45 (settings TIME_ZONE), after the invoices' catch-up
@dramatiq.actor(queue_name="archive", max_retries=3, time_limit=6 * 3600 * 1000)
def archive_missing_signature_requests() -> None:
    """Catch-up: archive the ended signature requests whose finalisation actor sealed the evidence but
    gave up before archiving it (archive unavailable through all its retries)."""
    from archive.models import ArchivedDocument
    from archive.signatures import archive_signature_request
    from signatures.models import SignatureRequest

    archived = ArchivedDocument.objects.filter(
        kind="signature_evidence", signature_request__isnull=False
    ).values("signature_request_id")
    # A system sweep over every tenant: each request is archived under its own tenant's prefix.
    missing = (
        SignatureRequest.objects.filter(status__in=SignatureRequest.ENDED)
        .exclude(evidence_sha256="")
        .exclude(pk__in=archived)
        .select_related("tenant")
    )
    for request in missing.iterator(chunk_size=200):
        try:
            archive_signature_request(request=request)
        except Exception:
            logger.exception("archive: catch-up failed for signature request %s", request.pk)


@cron("20 2 * * *")  # every day at 02:20 (settings TIME_ZONE), after the night's quiet start
@dramatiq.actor(queue_name="archive", max_retries=2, time_limit=6 * 3600 * 1000)
def backup_database_daily() -> None:
    """pg_dump to the backups storage, then delete the dumps older than 30 days."""
    from archive.backups import backup_database, backups_prune

    backup_database()
    backups_prune()


__all__ = ["archive_missing_invoices", "archive_missing_signature_requests", "backup_database_daily"]
