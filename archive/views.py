"""Dashboard: the archive page (chain status, daily closures with their proofs, per-invoice proofs,
export of the whole archive)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from archive import closures as selectors
from archive.models import ChainCheck
from invoicing.models import Invoice


@login_required
def archive_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    if scope is None:
        return render(request, "dashboard/no_tenant.html", status=403)
    context = {
        "archive_status": scope.tenant.archive_status,
        "archive_status_label": scope.tenant.get_archive_status_display(),
        "last_check": ChainCheck.objects.filter(tenant=scope.tenant).order_by("-started_at").first(),
        "closures": selectors.closures(scope=scope).order_by("-day", "-pk")[:60],
        "invoices": Invoice.objects.scoped(scope)
        .filter(status=Invoice.Status.ISSUED)
        .order_by("-issued_at")[:20],
    }
    return render(request, "archive/archive.html", context)


urlpatterns = [path("archive/", archive_view, name="index")]
