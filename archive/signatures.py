"""The WORM archive of ended signature requests: the sealed signed PDF (completed requests only) and the
sealed evidence file, written once and retained until the request ended +
``SIGNATURE_ARCHIVE_RETENTION_YEARS`` (11 by default, the invoices' period: a signed document may be an
accounting voucher, kept 10 years under Code de commerce L123-22, and the extra year covers a year-end).

Called by ``signatures.services.signature_request_finalize`` (an actor, retried) and by the daily
catch-up in ``archive.storage_tasks``; idempotent like ``archive.storage.archive_invoice``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.utils import timezone

from archive.models import ArchivedDocument
from archive.storage import _UNSAFE, _Piece, archive_piece, archive_storage

if TYPE_CHECKING:
    from signatures.models import SignatureRequest


KIND_DOCUMENT = "signature_document"
KIND_EVIDENCE = "signature_evidence"


def _ended_on(request: SignatureRequest) -> dt.date:
    ended = request.ended_at or request.completed_at
    if ended is None:
        raise ValueError(f"Signature request {request.pk} has not ended.")
    return timezone.localdate(ended)


def signature_retention_date(ended_on: dt.date) -> dt.date:
    return ended_on + relativedelta(years=settings.SIGNATURE_ARCHIVE_RETENTION_YEARS)


def signature_archive_prefix(request: SignatureRequest) -> str:
    """``signatures/<tenant identifier>/<live|test>/<year ended>/<request id>/``. The identifier is fixed
    at the tenant's creation (it prefixes invoice numbers) and the request id makes the name unique
    whatever the sub-tenant."""
    mode = "live" if request.livemode else "test"
    identifier = _UNSAFE.sub("_", request.tenant.identifier)
    return f"signatures/{identifier}/{mode}/{_ended_on(request):%Y}/{request.pk}/"


def _read_checked(field: Any, expected_sha256: str, what: str, request: SignatureRequest) -> bytes:
    with field.open("rb") as handle:
        body = handle.read()
    # What was sealed is what the request recorded (and what the evidence and the public verification
    # page quote); bytes that changed in the active storage since must not be cemented in the archive.
    if hashlib.sha256(body).hexdigest() != expected_sha256:
        raise RuntimeError(f"The stored {what} of signature request {request.pk} does not match its SHA-256.")
    return body


def _pieces(request: SignatureRequest, wanted: list[str]) -> list[_Piece]:
    pieces = []
    if KIND_DOCUMENT in wanted:
        body = _read_checked(request.final_file, request.final_sha256, "signed document", request)
        pieces.append(_Piece(KIND_DOCUMENT, "signed.pdf", "application/pdf", body))
    if KIND_EVIDENCE in wanted:
        body = _read_checked(request.evidence_file, request.evidence_sha256, "evidence file", request)
        pieces.append(_Piece(KIND_EVIDENCE, "evidence.pdf", "application/pdf", body))
    return pieces


def archive_signature_request(*, request: SignatureRequest) -> list[ArchivedDocument]:
    """Write an ended request's sealed signed PDF (when it has one) and its sealed evidence file to the
    WORM archive, once, and record them (sha256, size, retention). Idempotent: what is archived already
    is left as it is."""
    from signatures.models import SignatureRequest

    if (
        request.status not in SignatureRequest.ENDED
        or not request.evidence_file
        or not request.evidence_sha256
    ):
        raise ValueError(
            f"Only ended signature requests with their evidence file are archived ({request.pk} is "
            f"{request.status})."
        )
    kinds = [KIND_DOCUMENT] if request.final_file and request.final_sha256 else []
    kinds.append(KIND_EVIDENCE)
    done = {doc.kind: doc for doc in ArchivedDocument.objects.filter(signature_request=request)}
    if set(kinds) <= done.keys():
        return [done[kind] for kind in kinds]
    storage = archive_storage()
    retain_until = signature_retention_date(_ended_on(request))
    prefix = signature_archive_prefix(request)
    records = [done[kind] for kind in kinds if kind in done]
    for piece in _pieces(request, [kind for kind in kinds if kind not in done]):
        records.append(
            archive_piece(
                storage,
                prefix + piece.filename,
                piece,
                retain_until,
                tenant_id=request.tenant_id,
                livemode=request.livemode,
                signature_request=request,
                meta={
                    "signature_request": str(request.pk),
                    "content_type": piece.content_type,
                    "title": request.title,
                },
            )
        )
    order = {kind: i for i, kind in enumerate(kinds)}
    return sorted(records, key=lambda doc: order.get(doc.kind, len(order)))


__all__ = ["archive_signature_request", "signature_archive_prefix", "signature_retention_date"]
