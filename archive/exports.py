"""Export of a tenant's issued invoices as one zip, streamed in bounded memory.

The zip is written by ``zipfile`` into a small sink that the generator empties after every write, so
the process never holds more than one document and a few hundred rows, whatever the number of
invoices: the HTTP response (``StreamingHttpResponse``) and the ``export_archive`` command consume the
same generator. ``manifest.json`` (last member) lists the sha256 of every file in the zip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.utils import timezone

from scell.tenancy import Scope

FORMATS = ("pdf", "json")
CHUNK_ROWS = 200
READ_CHUNK = 256 * 1024
INVOICE_TABLE = "invoicing_invoice"


class _Sink:
    """A write-only, unseekable file for ``zipfile`` (which then writes data descriptors): it keeps
    what was written until the generator takes it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def export_queryset(*, scope: Scope) -> QuerySet:
    """The caller's issued invoices and credit notes, in issue order."""
    from invoicing.models import Invoice

    return (
        Invoice.objects.scoped(scope)
        .filter(status=Invoice.Status.ISSUED)
        .select_related("sub_tenant")
        .order_by("issue_date", "issued_at", "number", "pk")
    )


def _chunks(queryset: QuerySet, size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in queryset.iterator(chunk_size=size):
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _chain_entries(invoices: list[Any]) -> dict[str, list[dict[str, Any]]]:
    from archive.models import ChainEntry

    found: dict[str, list[dict[str, Any]]] = {}
    rows = (
        ChainEntry.objects.filter(source_table=INVOICE_TABLE, source_id__in=[str(i.pk) for i in invoices])
        .order_by("chain_key", "seq")
        .values("source_id", "chain_key", "seq", "prev_hash", "hash", "created_at")
    )
    for row in rows:
        found.setdefault(row["source_id"], []).append(
            {
                "chain_key": row["chain_key"],
                "seq": row["seq"],
                "prev_hash": bytes(row["prev_hash"]).hex(),
                "hash": bytes(row["hash"]).hex(),
                "created_at": row["created_at"],
            }
        )
    return found


def _member_name(invoice: Any, extension: str) -> str:
    from archive.storage import _UNSAFE

    base = _UNSAFE.sub("_", invoice.number)
    # Sub-tenants number their own invoices: keep each issuer in its folder so names never collide.
    folder = f"invoices/{invoice.sub_tenant.identifier}/" if invoice.sub_tenant_id else "invoices/"
    return f"{folder}{base}.{extension}"


def _json_member(invoice: Any, chain: list[dict[str, Any]]) -> bytes:
    from invoicing.api.serializers import InvoiceSerializer

    body = {"invoice": InvoiceSerializer(invoice).data, "chain": chain}
    return json.dumps(body, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False, indent=1).encode()


def export_zip(
    *,
    scope: Scope,
    fmt: str,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[bytes]:
    """Yield the bytes of a zip of every issued invoice of ``scope``: the Factur-X PDF/A (``pdf``,
    rendered now if it never was) or the invoice JSON with its chain entries (``json``)."""
    from invoicing.services import invoice_render

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    queryset = export_queryset(scope=scope)
    if fmt == "json":
        queryset = queryset.prefetch_related("lines")
    total = queryset.count() if progress is not None else 0
    sink = _Sink()
    files: list[tuple[str, str, int, str, str]] = []
    done = 0
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for batch in _chunks(queryset, CHUNK_ROWS):
            chains = _chain_entries(batch) if fmt == "json" else {}
            for invoice in batch:
                digest = hashlib.sha256()
                size = 0
                if fmt == "json":
                    name = _member_name(invoice, "json")
                    data = _json_member(invoice, chains.get(str(invoice.pk), []))
                    digest.update(data)
                    size = len(data)
                    with archive.open(_zipinfo(name, invoice), "w") as member:
                        member.write(data)
                    yield sink.take()
                else:
                    name = _member_name(invoice, "pdf")
                    document = invoice_render(invoice=invoice, fmt="facturx")
                    with (
                        document.file.open("rb") as source,
                        archive.open(_zipinfo(name, invoice), "w") as member,
                    ):
                        while chunk := source.read(READ_CHUNK):
                            digest.update(chunk)
                            size += len(chunk)
                            member.write(chunk)
                            yield sink.take()
                files.append((name, digest.hexdigest(), size, str(invoice.pk), invoice.number))
                done += 1
                if progress is not None:
                    progress(done, total)
        manifest = {
            "tenant": scope.tenant.identifier,
            "sub_tenant": scope.sub_tenant.identifier if scope.sub_tenant else None,
            "livemode": scope.livemode,
            "format": fmt,
            "generated_at": timezone.now(),
            "count": len(files),
            "algorithm": "sha256",
            "files": [
                {"name": n, "sha256": h, "size": s, "invoice_id": i, "number": num}
                for n, h, s, i, num in files
            ],
        }
        archive.writestr("manifest.json", json.dumps(manifest, cls=DjangoJSONEncoder, indent=1).encode())
    yield sink.take()


def _zipinfo(name: str, invoice: Any) -> zipfile.ZipInfo:
    issued = invoice.issued_at or timezone.now()
    stamp = max(issued.astimezone(dt.UTC), dt.datetime(1980, 1, 1, tzinfo=dt.UTC))
    info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o444 << 16
    return info


def export_filename(*, scope: Scope, fmt: str) -> str:
    mode = "live" if scope.livemode else "test"
    return f"scell-archive-{scope.tenant.identifier}-{mode}-{fmt}-{timezone.now():%Y%m%d}.zip"


__all__ = ["FORMATS", "export_filename", "export_queryset", "export_zip"]
