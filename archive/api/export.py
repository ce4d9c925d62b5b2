"""Archive API: export of every issued invoice of the caller as one zip (PDF/A or JSON + chain)."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request

from archive.exports import FORMATS, export_filename, export_zip
from scell.api.base import ScellAPIView
from scell.errors import UnprocessableEntity


class ArchiveExportView(ScellAPIView):
    @extend_schema(
        operation_id="archive_export",
        summary="Export all issued invoices as a zip",
        description=(
            "Streams a zip of every issued invoice and credit note of the caller: `pdf` gives the "
            "Factur-X PDF/A-3 files, `json` the invoices as the API returns them with their hash-chain "
            "entries. `manifest.json` lists the SHA-256 of every file."
        ),
        parameters=[OpenApiParameter("format", str, enum=list(FORMATS), default="pdf")],
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        fmt = request.query_params.get("format", "pdf")
        if fmt not in FORMATS:
            raise UnprocessableEntity(
                f"format must be one of {', '.join(FORMATS)}.",
                details=[{"field": "format", "message": f"unknown format {fmt!r}"}],
            )
        response = StreamingHttpResponse(
            export_zip(scope=self.scope, fmt=fmt), content_type="application/zip"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{export_filename(scope=self.scope, fmt=fmt)}"'
        )
        # Proxies must pass the stream through as it comes, not buffer a whole archive.
        response["X-Accel-Buffering"] = "no"
        response["Cache-Control"] = "no-store"
        return response


urlpatterns = [path("archive/export", ArchiveExportView.as_view(), name="archive-export")]
