"""Dashboard: the archive page (chain status and last health check, daily closures with their proofs,
per-invoice proof bundles, export of the whole archive). Downloads are reads, open to every role; the
health check run from here is a write (it records a ``ChainCheck``). Every file is made by the same
selectors as the API's (``archive.closures``, ``archive.selectors``, ``archive.exports``)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from archive import closures, selectors, services
from archive.exports import FORMATS, export_filename, export_zip
from archive.models import Closure
from scell.tenancy import dashboard_page

CLOSURES_PER_PAGE = 31
INVOICES_PER_PAGE = 25


def _render(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    scope = request.scope
    number = (request.GET.get("number") or "").strip()[:40]
    listed = (
        closures.closures(scope=scope)
        .defer("ots_proof", "tsa_token")  # blobs: only whether they are there
        .annotate(
            has_ots=ExpressionWrapper(Q(ots_proof__isnull=False), output_field=BooleanField()),
            has_tsa=ExpressionWrapper(Q(tsa_token__isnull=False), output_field=BooleanField()),
        )
        .order_by("-day", "-pk")
    )
    closure_page = Paginator(listed, CLOSURES_PER_PAGE).get_page(request.GET.get("closures"))
    invoice_page = Paginator(
        selectors.archived_invoices(scope=scope, number=number), INVOICES_PER_PAGE
    ).get_page(request.GET.get("page"))
    context = {
        "chain": selectors.chain_status(scope=scope),
        "closure_page": closure_page,
        "invoice_page": invoice_page,
        "number": number,
        "formats": FORMATS,
    }
    return render(request, "archive/archive.html", context, status=status)


@dashboard_page
def archive_view(request: HttpRequest) -> HttpResponse:
    return _render(request)


@dashboard_page
@require_POST
def check_view(request: HttpRequest) -> HttpResponse:
    """Recompute the chains of the tenant and mode now (as ``GET /api/v1/archive/chain/verify``)."""
    scope = request.scope
    if not scope.can_write:
        messages.error(request, _("Your role in this tenant is read-only."))
        return _render(request, status=403)
    runs = services.chain_check(scope=scope)
    broken = [run.result for run in runs if not run.result.ok]
    checked = sum(run.result.entries_checked for run in runs)
    if broken:
        messages.error(
            request,
            _("The chain is broken at entry #%(seq)s; support has been alerted.")
            % {"seq": broken[0].first_broken_seq},
        )
    else:
        messages.success(request, _("The chain is intact: %(count)s entries checked.") % {"count": checked})
    return redirect("archive:index")


def _closure_or_404(request: HttpRequest, pk: int) -> Closure:
    closure = closures.closure_get(scope=request.scope, pk=pk)
    if closure is None:
        raise Http404
    return closure


def _attachment(content: bytes | str, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@dashboard_page
def closure_ots_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The closure's OpenTimestamps proof on its Merkle root (as ``/api/v1/archive/closures/<id>/ots``)."""
    closure = _closure_or_404(request, pk)
    if not closure.ots_proof:
        messages.error(request, _("This closure is not timestamped yet; try again later."))
        return _render(request, status=409)
    return _attachment(
        bytes(closure.ots_proof),
        filename=closures.closure_filename(closure),
        content_type="application/octet-stream",
    )


@dashboard_page
def closure_tsr_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The closure's RFC 3161 time-stamp token (DER), when a TSA is configured."""
    closure = _closure_or_404(request, pk)
    if not closure.tsa_token:
        raise Http404
    name = closures.closure_filename(closure).removesuffix(".ots") + ".tsr"
    return _attachment(bytes(closure.tsa_token), filename=name, content_type="application/timestamp-reply")


@dashboard_page
def closure_json_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The closure with every leaf hash: enough to recompute the root the proofs timestamp."""
    closure = _closure_or_404(request, pk)
    name = closures.closure_filename(closure).removesuffix(".ots") + ".json"
    body = json.dumps(selectors.closure_record(closure=closure), indent=1)
    return _attachment(body, filename=name, content_type="application/json")


@dashboard_page
def proof_view(request: HttpRequest, invoice_id: Any) -> HttpResponse:
    """One invoice's proof bundle as a zip (as ``/api/v1/archive/proofs/<id>?format=zip``)."""
    scope = request.scope
    try:
        proof = selectors.invoice_proof(scope=scope, invoice_id=invoice_id)
    except closures.ClosureError:
        messages.error(
            request,
            _("The entries of this day no longer match its sealed root: the archive is compromised."),
        )
        return _render(request, status=409)
    if proof is None:
        raise Http404
    if proof.bundle is None:
        messages.error(request, _("This invoice has no chain entry (drafts are not chained)."))
        return _render(request, status=409)
    return _attachment(
        proof.bundle.as_zip(), filename=f"proof-{proof.invoice.pk}.zip", content_type="application/zip"
    )


@dashboard_page
def export_view(request: HttpRequest, fmt: str) -> HttpResponse:
    """Every issued invoice of the tenant and mode as one zip, streamed (as ``/api/v1/archive/export``)."""
    scope = request.scope
    if fmt not in FORMATS:
        raise Http404
    response = StreamingHttpResponse(export_zip(scope=scope, fmt=fmt), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(scope=scope, fmt=fmt)}"'
    # Proxies must pass the stream through as it comes, not buffer a whole archive.
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("archive/", archive_view, name="index"),
    path("archive/check/", check_view, name="check"),
    path("archive/closures/<int:pk>.ots", closure_ots_view, name="closure-ots"),
    path("archive/closures/<int:pk>.tsr", closure_tsr_view, name="closure-tsr"),
    path("archive/closures/<int:pk>.json", closure_json_view, name="closure-json"),
    path("archive/proofs/<uuid:invoice_id>.zip", proof_view, name="proof"),
    path("archive/export/<str:fmt>.zip", export_view, name="export"),
]
