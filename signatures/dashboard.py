"""Dashboard: Signatures (requests of the current tenant and mode: create, follow each signer, remind,
cancel, download the sealed PDF and the evidence file). Every write goes through ``signatures.services``."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scell.errors import ScellError
from signatures import selectors, services
from signatures.forms import SignatureRequestForm, SignerFormSet
from signatures.models import SignatureRequest

SHOWN = 100


def _request_or_404(request: HttpRequest, pk: UUID) -> SignatureRequest:
    try:
        return selectors.signature_request_get(scope=request.scope, pk=pk)
    except SignatureRequest.DoesNotExist:
        raise Http404 from None


@login_required
def index_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    if scope is None:
        return render(request, "dashboard/no_tenant.html", status=403)
    form = SignatureRequestForm(request.POST or None, request.FILES or None)
    signers = SignerFormSet(request.POST or None, prefix="signers")
    if request.method == "POST":
        if not scope.can_write:
            messages.error(request, _("Your role cannot create signature requests."))
            return redirect("signatures_dashboard:index")
        if form.is_valid() and signers.is_valid():
            rows = [f.cleaned_data for f in signers.forms if f.cleaned_data]
            upload = form.cleaned_data["document"]
            try:
                created = services.signature_request_create(
                    scope=scope,
                    document=upload.read(),
                    filename=upload.name,
                    title=form.cleaned_data["title"],
                    message=form.cleaned_data["message"],
                    order=form.cleaned_data["order"],
                    locale=form.cleaned_data["locale"],
                    expires_at=form.cleaned_data["expires_at"],
                    signers=[services.SignerInput(**row) for row in rows],
                    created_by=request.user,
                )
            except ScellError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("The signature request was sent."))
                return redirect("signatures_dashboard:detail", pk=created.request.pk)
    status = request.GET.get("status") or ""
    requests = selectors.signature_request_list(scope=scope)
    if status in SignatureRequest.Status.values:
        requests = requests.filter(status=status)
    return render(
        request,
        "signatures/dashboard/index.html",
        {
            "requests": requests[:SHOWN],
            "form": form,
            "signers": signers,
            "status": status,
            "statuses": SignatureRequest.Status.choices,
        },
    )


@login_required
def detail_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    if request.scope is None:
        return render(request, "dashboard/no_tenant.html", status=403)
    signature_request = _request_or_404(request, pk)
    return render(
        request,
        "signatures/dashboard/detail.html",
        {
            "req": signature_request,
            "events": signature_request.events.select_related("signer").order_by("at", "id"),
        },
    )


@login_required
@require_POST
def action_view(request: HttpRequest, pk: UUID, action: str) -> HttpResponse:
    if request.scope is None:
        return render(request, "dashboard/no_tenant.html", status=403)
    signature_request = _request_or_404(request, pk)
    if not request.scope.can_write:
        messages.error(request, _("Your role cannot change signature requests."))
        return redirect("signatures_dashboard:detail", pk=pk)
    actor = f"sender ({request.user.email})"
    try:
        if action == "cancel":
            services.signature_request_cancel(
                scope=request.scope,
                request=signature_request,
                reason=request.POST.get("reason", ""),
                actor=actor,
            )
            messages.success(request, _("The request was cancelled."))
        elif action == "remind":
            services.signature_request_remind(scope=request.scope, request=signature_request, actor=actor)
            messages.success(request, _("The signers were reminded."))
        else:
            raise Http404
    except ScellError as exc:
        messages.error(request, exc.message)
    return redirect("signatures_dashboard:detail", pk=pk)


@login_required
def download_view(request: HttpRequest, pk: UUID, kind: str) -> HttpResponse:
    if request.scope is None:
        return render(request, "dashboard/no_tenant.html", status=403)
    signature_request = _request_or_404(request, pk)
    if kind == "document":
        if signature_request.status != SignatureRequest.Status.COMPLETED or not signature_request.final_file:
            raise Http404
        field, name = signature_request.final_file, "signed"
    elif kind == "evidence":
        if not signature_request.evidence_file:
            content, _digest = services.evidence_interim(request=signature_request)
            response = HttpResponse(content, content_type="application/pdf")
            response["Content-Disposition"] = (
                f'attachment; filename="{signature_request.id}-evidence-interim.pdf"'
            )
            return response
        field, name = signature_request.evidence_file, "evidence"
    else:
        raise Http404
    with field.open("rb") as handle:
        response = HttpResponse(handle.read(), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{signature_request.id}-{name}.pdf"'
    return response


urlpatterns = [
    path("signatures/", index_view, name="index"),
    path("signatures/<uuid:pk>/", detail_view, name="detail"),
    path("signatures/<uuid:pk>/<str:action>", action_view, name="action"),
    path("signatures/<uuid:pk>/download/<str:kind>.pdf", download_view, name="download"),
]
