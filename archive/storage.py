"""The WORM fiscal archive: write-once storages and the archiving of issued invoices.

Three storages (``settings.STORAGES``): ``default`` holds active files (rendered documents, may be
re-rendered), ``archive`` is the fiscal archive, ``backups`` holds database dumps. The archive is
write-once, read-many:

- on S3 (``ARCHIVE_S3_BUCKET``), ``WormS3Storage`` writes every object with Object Lock in COMPLIANCE
  mode, retained until the issue date + 11 years: nobody, not even the bucket owner's root account, can
  delete or shorten it before then. The bucket must have been created with Object Lock enabled.
- on local disk (the embedded default), ``WormFileSystemStorage`` refuses overwrite and delete and
  writes files read-only. A local disk cannot enforce retention against its own administrator; that is
  why production uses S3 Object Lock.

Both refuse, loudly, what Django would otherwise do silently (pick another name, overwrite, delete).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from botocore.exceptions import ClientError
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from archive.models import ArchivedDocument

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024


class WormViolation(PermissionError):
    """An attempt to overwrite or delete a document of the write-once fiscal archive."""


def _require_fresh_name(name: str, max_length: int | None) -> str:
    # Django's default would append a random suffix to an existing name, so a second write of the same
    # document would silently create a twin. The archive has one object per name, forever.
    if max_length is not None and len(name) > max_length:
        raise WormViolation(f"Archive name {name!r} is longer than {max_length} characters.")
    return name


class WormFileSystemStorage(FileSystemStorage):
    """Local-disk fiscal archive: a name is written once (atomically, read-only 0o444) and never
    overwritten nor deleted through this storage."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("file_permissions_mode", 0o444)
        kwargs.setdefault("directory_permissions_mode", 0o755)
        super().__init__(**kwargs)

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return _require_fresh_name(name, max_length)

    def _save(self, name: str, content: File) -> str:
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        os.makedirs(directory, mode=self.directory_permissions_mode or 0o755, exist_ok=True)
        if os.path.lexists(full_path):
            raise WormViolation(f"{name!r} is already in the fiscal archive; it cannot be overwritten.")
        # Write a complete temporary file, then hard-link it to its name: link() fails if the name
        # exists (no race between two writers), and a crash never leaves a truncated archived file.
        fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".worm-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in content.chunks():
                    handle.write(chunk if isinstance(chunk, bytes) else chunk.encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_path, self.file_permissions_mode or 0o444)
            try:
                os.link(tmp_path, full_path)
            except FileExistsError as exc:
                raise WormViolation(
                    f"{name!r} is already in the fiscal archive; it cannot be overwritten."
                ) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
        return str(name).replace("\\", "/")

    def save_with_retention(self, name: str, content: IO[bytes] | File, retain_until: dt.date) -> str:
        # A local disk has no retention clock: the file is simply never deleted through Scell.
        return self.save(name, content)

    def delete(self, name: str) -> None:
        raise WormViolation(f"{name!r} belongs to the fiscal archive and cannot be deleted.")


class WormS3Storage(S3Storage):
    """S3 fiscal archive: each object is written once with Object Lock COMPLIANCE until its retention
    date (Object Lock needs a bucket created with it enabled, hence versioned)."""

    file_overwrite = False
    lock_mode = "COMPLIANCE"

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return _require_fresh_name(clean_name(name), max_length)

    def _save(self, name: str, content: File) -> str:
        # Reached through ``storage.save()`` without a date: retain for the full period from today,
        # which is never shorter than issue date + 11 years.
        retain_until = dt.date.today() + relativedelta(years=settings.ARCHIVE_RETENTION_YEARS)
        return self._put_locked(name, content, retain_until)

    def save_with_retention(self, name: str, content: IO[bytes] | File, retain_until: dt.date) -> str:
        name = self.get_available_name(name)
        self._put_locked(name, content, retain_until)
        return name

    def _put_locked(self, name: str, content: IO[bytes] | File, retain_until: dt.date) -> str:
        key = self._normalize_name(clean_name(name))
        if self.exists(name):
            raise WormViolation(f"{name!r} is already in the fiscal archive; it cannot be overwritten.")
        if hasattr(content, "seek"):
            content.seek(0)
        # Archived documents are small (an invoice PDF, its XML): read them whole, because S3 requires
        # Content-MD5 (or a checksum) on any write with Object Lock parameters.
        body = content.read()
        if isinstance(body, str):
            body = body.encode()
        until = dt.datetime.combine(retain_until, dt.time.min, tzinfo=dt.UTC)
        params = self._get_write_parameters(key, content)
        try:
            self.connection.meta.client.put_object(
                Bucket=self.bucket_name,
                Key=key,
                Body=body,
                ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),  # noqa: S324 - S3 integrity header
                ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
                ObjectLockMode=self.lock_mode,
                ObjectLockRetainUntilDate=until,
                # The bucket is versioned: without this, a second PUT would add a version on top of the
                # locked one. The existence check above is the friendly refusal, this one closes the race.
                IfNoneMatch="*",
                **{k: v for k, v in params.items() if k in {"ContentType", "ContentEncoding", "Metadata"}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {
                "PreconditionFailed",
                "ConditionalRequestConflict",
            }:
                raise WormViolation(
                    f"{name!r} is already in the fiscal archive; it cannot be overwritten."
                ) from exc
            raise
        return clean_name(name)

    def delete(self, name: str) -> None:
        # On a versioned bucket a plain DELETE would add a delete marker and hide the document; S3
        # refuses deleting a locked version, and we refuse both.
        raise WormViolation(f"{name!r} belongs to the fiscal archive and cannot be deleted.")


class BackupFileSystemStorage(FileSystemStorage):
    """Local-disk backups: dumps hold personal data, so they are readable by the service user only.
    Unlike the archive, they are deleted after 30 days (``archive.backups.backups_prune``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("file_permissions_mode", 0o600)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        super().__init__(**kwargs)


class BackupS3Storage(S3Storage):
    """S3 backups (a bucket without Object Lock: pruning deletes dumps after 30 days)."""

    file_overwrite = False
    default_acl = "private"


def archive_storage() -> Storage:
    return storages["archive"]


def backups_storage() -> Storage:
    return storages["backups"]


# --- Archiving issued invoices -------------------------------------------------------------------


def retention_date(issue_date: dt.date) -> dt.date:
    """Issue date + 11 years: the 10 years of the Code de commerce (art. L123-22) and of CGI L102 B
    counted from the end of the financial year, rounded up so that no year-end falls short."""
    return issue_date + relativedelta(years=settings.ARCHIVE_RETENTION_YEARS)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def invoice_archive_prefix(invoice: Any) -> str:
    mode = "live" if invoice.livemode else "test"
    number = _UNSAFE.sub("_", invoice.number)
    prefix = f"{invoice.tenant_id}/{mode}/{invoice.issue_date:%Y}/"
    if invoice.sub_tenant_id:
        # Sub-tenants have their own sequences: two issuers may share a number.
        prefix += f"{invoice.sub_tenant_id}/"
    return f"{prefix}{number}/"


def invoice_json_bytes(invoice: Any) -> bytes:
    """The invoice as the API returns it, canonical (sorted keys) so that it hashes the same twice."""
    from invoicing.api.serializers import InvoiceSerializer

    data = InvoiceSerializer(invoice).data
    return json.dumps(data, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False, indent=1).encode()


@dataclass(frozen=True)
class _Piece:
    kind: str
    filename: str
    content_type: str
    body: bytes


def _pieces(invoice: Any) -> list[_Piece]:
    from invoicing.services import invoice_render

    facturx = invoice_render(invoice=invoice, fmt="facturx")
    with facturx.file.open("rb") as handle:
        pdf = handle.read()
    base = _UNSAFE.sub("_", invoice.number)
    return [
        _Piece("facturx", f"{base}.pdf", "application/pdf", pdf),
        _Piece("cii", f"{base}.cii.xml", "application/xml", bytes(invoice.cii_xml)),
        _Piece("json", f"{base}.json", "application/json", invoice_json_bytes(invoice)),
    ]


def _stored_digest(storage: Storage, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with storage.open(name, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def archive_invoice(*, invoice: Any) -> list[ArchivedDocument]:
    """Write an issued invoice's Factur-X PDF, its CII and its JSON to the fiscal archive, once, and
    record them (sha256, size, retention). Idempotent: what is archived already is left as it is."""
    from invoicing.models import Invoice

    if invoice.status != Invoice.Status.ISSUED or not invoice.cii_xml or invoice.issue_date is None:
        raise ValueError(f"Only issued invoices are archived ({invoice.pk} is {invoice.status}).")
    done = {doc.kind: doc for doc in ArchivedDocument.objects.filter(invoice=invoice)}
    if {"facturx", "cii", "json"} <= done.keys():
        return list(done.values())
    storage = archive_storage()
    retain_until = retention_date(invoice.issue_date)
    prefix = invoice_archive_prefix(invoice)
    records = []
    for piece in _pieces(invoice):
        if piece.kind in done:
            records.append(done[piece.kind])
            continue
        records.append(
            archive_piece(
                storage,
                prefix + piece.filename,
                piece,
                retain_until,
                tenant_id=invoice.tenant_id,
                livemode=invoice.livemode,
                invoice=invoice,
                meta={"content_type": piece.content_type, "number": invoice.number},
            )
        )
    return records


def archive_piece(
    storage: Storage, name: str, piece: _Piece, retain_until: dt.date, *, meta: dict[str, Any], **owner: Any
) -> ArchivedDocument:
    """Write one piece to the WORM archive under ``name`` and record it (``owner``: tenant_id, livemode
    and the invoice or signature request it belongs to). Safe to repeat: a name already written keeps
    its bytes and the record describes them; a name already recorded returns its record."""
    sha256, size = hashlib.sha256(piece.body).hexdigest(), len(piece.body)
    try:
        storage.save_with_retention(name, ContentFile(piece.body, name=piece.filename), retain_until)
    except WormViolation:
        # Written by a previous attempt that died before recording it (or by a concurrent one):
        # the archive keeps what it holds, and the row records those bytes, not ours.
        sha256, size = _stored_digest(storage, name)
        if sha256 != hashlib.sha256(piece.body).hexdigest():
            logger.warning("archive: %s already holds other bytes than today's rendering", name)
    try:
        with transaction.atomic():
            record, _ = ArchivedDocument.objects.get_or_create(
                name=name,
                defaults={
                    **owner,
                    "kind": piece.kind,
                    "sha256": sha256,
                    "size": size,
                    "retain_until": retain_until,
                    "meta": meta,
                },
            )
    except IntegrityError:
        record = ArchivedDocument.objects.get(name=name)
    return record


__all__ = [
    "BackupFileSystemStorage",
    "BackupS3Storage",
    "WormFileSystemStorage",
    "WormS3Storage",
    "WormViolation",
    "archive_invoice",
    "archive_storage",
    "backups_storage",
    "retention_date",
]
