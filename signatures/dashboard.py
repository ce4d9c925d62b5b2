"""Dashboard: Signatures (requests of the current tenant and mode: create, follow each signer, remind,
cancel, download the sealed PDF and the evidence file). Every write goes through ``signatures.services``;
read-only members see no form and get 403 on every write; another tenant's request is a 404."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scell.errors import ScellError
from scell.tenancy import dashboard_page
from signatures import selectors, services
from signatures.forms import CancelForm, SignatureRequestForm, SignerFormSet, service_error_to_forms
from signatures.models import SignatureRequest, Signer

SHOWN = 100


def _request_or_404(request: HttpRequest, pk: UUID) -> SignatureRequest:
    try:
        return selectors.signature_request_get(scope=request.scope, pk=pk)
    except SignatureRequest.DoesNotExist:
        raise Http404 from None


def _actor(request: HttpRequest) -> str:
    return f"sender ({request.user.email})"


def _render_index(
    request: HttpRequest, form: SignatureRequestForm, signers: SignerFormSet, *, status: int = 200
) -> HttpResponse:
    scope = request.scope
    state = request.GET.get("status") or ""
    requests = selectors.signature_request_list(scope=scope)
    if state in SignatureRequest.Status.values:
        requests = requests.filter(status=state)
    return render(
        request,
        "signatures/dashboard/index.html",
        {
            "requests": requests[:SHOWN],
            "form": form,
            "signers": signers,
            "status": state,
            "statuses": SignatureRequest.Status.choices,
        },
        status=status,
    )


@dashboard_page
def index_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    if request.method != "POST":
        return _render_index(request, SignatureRequestForm(), SignerFormSet(prefix="signers"))
    if not scope.can_write:
        messages.error(request, _("Your role cannot create signature requests."))
        return _render_index(request, SignatureRequestForm(), SignerFormSet(prefix="signers"), status=403)
    form = SignatureRequestForm(request.POST, request.FILES)
    signers = SignerFormSet(request.POST, prefix="signers")
    if form.is_valid() and signers.is_valid():
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
                signers=[services.SignerInput(**row) for row in signers.rows()],
                created_by=request.user,
            )
        except ScellError as exc:
            service_error_to_forms(exc, form, signers)
        else:
            messages.success(request, _("The signature request was sent."))
            return redirect("signatures_dashboard:detail", pk=created.request.pk)
    return _render_index(request, form, signers)


def _render_detail(
    request: HttpRequest,
    signature_request: SignatureRequest,
    *,
    cancel: CancelForm | None = None,
    status: int = 200,
) -> HttpResponse:
    signers = list(signature_request.signers.all())
    return render(
        request,
        "signatures/dashboard/detail.html",
        {
            "req": signature_request,
            "signers": signers,
            "any_pending": any(s.status == Signer.Status.PENDING for s in signers),
            "events": signature_request.events.select_related("signer").order_by("at", "id"),
            "cancel": cancel,
        },
        status=status,
    )


@dashboard_page
def detail_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _render_detail(request, _request_or_404(request, pk))


def _write_guard(request: HttpRequest, signature_request: SignatureRequest) -> HttpResponse | None:
    if request.scope.can_write:
        return None
    messages.error(request, _("Your role cannot change signature requests."))
    return _render_detail(request, signature_request, status=403)


@dashboard_page
@require_POST
def remind_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    signature_request = _request_or_404(request, pk)
    if denied := _write_guard(request, signature_request):
        return denied
    try:
        services.signature_request_remind(
            scope=request.scope, request=signature_request, actor=_actor(request)
        )
    except ScellError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The signers whose turn it is were reminded, each with a fresh link."))
    return redirect("signatures_dashboard:detail", pk=pk)


@dashboard_page
@require_POST
def resend_view(request: HttpRequest, pk: UUID, signer_pk: UUID) -> HttpResponse:
    signature_request = _request_or_404(request, pk)
    signer = signature_request.signers.filter(pk=signer_pk).first()
    if signer is None:
        raise Http404
    if denied := _write_guard(request, signature_request):
        return denied
    try:
        services.signer_notification_resend(scope=request.scope, signer=signer, actor=_actor(request))
    except ScellError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(name)s was sent a fresh link by e-mail.") % {"name": signer.name})
    return redirect("signatures_dashboard:detail", pk=pk)


@dashboard_page
def cancel_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    """GET: the confirmation (with an optional reason for the signers); POST: cancel."""
    signature_request = _request_or_404(request, pk)
    if request.method != "POST":
        if not request.scope.can_write or not signature_request.is_open:
            return redirect("signatures_dashboard:detail", pk=pk)
        return render(
            request,
            "signatures/dashboard/cancel.html",
            {"req": signature_request, "form": CancelForm()},
        )
    if denied := _write_guard(request, signature_request):
        return denied
    form = CancelForm(request.POST)
    if not form.is_valid():
        return render(request, "signatures/dashboard/cancel.html", {"req": signature_request, "form": form})
    try:
        services.signature_request_cancel(
            scope=request.scope,
            request=signature_request,
            reason=form.cleaned_data["reason"],
            actor=_actor(request),
        )
    except ScellError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The request was cancelled; the signers are told."))
    return redirect("signatures_dashboard:detail", pk=pk)


@dashboard_page
def download_view(request: HttpRequest, pk: UUID, kind: str) -> HttpResponse:
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
    path("signatures/<uuid:pk>/remind", remind_view, name="remind"),
    path("signatures/<uuid:pk>/cancel", cancel_view, name="cancel"),
    path("signatures/<uuid:pk>/signers/<uuid:signer_pk>/resend", resend_view, name="resend"),
    path("signatures/<uuid:pk>/download/<str:kind>.pdf", download_view, name="download"),
]
