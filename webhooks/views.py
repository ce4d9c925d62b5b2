"""Dashboard: Developers → Webhooks (endpoints, their secret shown once, the delivery log with every
attempt, replay and test buttons). Every write goes through the services of ``webhooks.endpoints``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from scell.errors import ScellError
from scell.tenancy import dashboard_page
from webhooks import endpoints, selectors
from webhooks.forms import EndpointForm
from webhooks.models import WebhookDelivery, WebhookEndpoint

# The secret of a new (or rotated) endpoint waits in the session for the one page that shows it.
SHOW_ONCE = "scell_webhook_show_once_{}"
DELIVERIES_SHOWN = 50
# The delivery log's filter: each status, and "failing" (the last attempt failed: retrying or given up).
DELIVERY_FILTERS = {
    "failing": gettext_lazy("failing (retrying or failed)"),
    WebhookDelivery.Status.PENDING: gettext_lazy("pending"),
    WebhookDelivery.Status.RETRYING: gettext_lazy("retrying"),
    WebhookDelivery.Status.SUCCEEDED: gettext_lazy("succeeded"),
    WebhookDelivery.Status.FAILED: gettext_lazy("failed (retries exhausted)"),
    WebhookDelivery.Status.CANCELLED: gettext_lazy("cancelled (endpoint disabled)"),
}


def _can_manage(request: HttpRequest) -> bool:
    # Endpoints hold signing secrets: like API keys, only admins manage them.
    return request.scope.role == "admin"


def _endpoint_or_404(request: HttpRequest, pk: UUID) -> WebhookEndpoint:
    endpoint = selectors.endpoint_get(scope=request.scope, pk=pk)
    if endpoint is None:
        raise Http404
    return endpoint


def _form_errors_from(form: EndpointForm, exc: ScellError) -> None:
    placed = False
    for detail in exc.details:
        field = str(detail.get("field") or "").split("[", 1)[0]
        if field in form.fields:
            form.add_error(field, detail.get("message") or exc.message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def _stash_secret(request: HttpRequest, endpoint: WebhookEndpoint, secret: str) -> None:
    request.session[SHOW_ONCE.format(endpoint.pk)] = secret


@dashboard_page
def index_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    form = EndpointForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not _can_manage(request):
            messages.error(request, _("Only an admin of the tenant can manage webhook endpoints."))
            form, status = EndpointForm(), 403
        elif form.is_valid():
            try:
                created = endpoints.endpoint_create(scope=scope, **form.cleaned_data)
            except ScellError as exc:
                _form_errors_from(form, exc)
            else:
                _stash_secret(request, created.endpoint, created.secret)
                messages.success(request, _("Endpoint created."))
                return redirect("webhooks:endpoint", pk=created.endpoint.pk)
        if form.errors:
            status = 422
    shown = request.GET.get("status") or ""
    if shown not in DELIVERY_FILTERS:
        shown = ""
    if shown == "failing":
        deliveries = selectors.delivery_failures(scope=scope)
    else:
        deliveries = selectors.delivery_list(scope=scope, status=shown or None).order_by("-created_at")
    context = {
        "endpoints": selectors.endpoint_list(scope=scope).order_by("-created_at"),
        "deliveries": deliveries[:DELIVERIES_SHOWN],
        "delivery_filters": DELIVERY_FILTERS.items(),
        "delivery_filter": shown,
        "form": form,
        "can_manage": _can_manage(request),
    }
    return render(request, "webhooks/index.html", context, status=status)


@dashboard_page
def endpoint_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    endpoint = _endpoint_or_404(request, pk)
    initial = _initial(endpoint)
    form = EndpointForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if not _can_manage(request):
            messages.error(request, _("Only an admin of the tenant can manage webhook endpoints."))
            return _render_endpoint(request, endpoint, EndpointForm(initial=initial), status=403)
        if form.is_valid():
            try:
                endpoints.endpoint_update(endpoint=endpoint, **form.cleaned_data)
            except ScellError as exc:
                _form_errors_from(form, exc)
            else:
                messages.success(request, _("Endpoint saved."))
                return redirect("webhooks:endpoint", pk=endpoint.pk)
        status = 422
    return _render_endpoint(request, endpoint, form, status=status)


def _initial(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
    }


def _render_endpoint(
    request: HttpRequest, endpoint: WebhookEndpoint, form: EndpointForm | None = None, *, status: int = 200
) -> HttpResponse:
    scope = request.scope
    form = form or EndpointForm(initial=_initial(endpoint))
    context = {
        "endpoint": endpoint,
        "form": form,
        # Shown on this one page load, then gone: Scell never displays it again.
        "secret": request.session.pop(SHOW_ONCE.format(endpoint.pk), None),
        "deliveries": selectors.delivery_list(scope=scope, endpoint=endpoint).order_by("-created_at")[
            :DELIVERIES_SHOWN
        ],
        "can_manage": _can_manage(request),
        "can_write": scope.can_write,
    }
    return render(request, "webhooks/endpoint.html", context, status=status)


def _manage_action(request: HttpRequest, pk: UUID) -> WebhookEndpoint | HttpResponse:
    endpoint = _endpoint_or_404(request, pk)
    if not _can_manage(request):
        messages.error(request, _("Only an admin of the tenant can manage webhook endpoints."))
        return _render_endpoint(request, endpoint, status=403)
    return endpoint


@dashboard_page
@require_POST
def rotate_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    endpoint = _manage_action(request, pk)
    if isinstance(endpoint, HttpResponse):
        return endpoint
    secret = endpoints.endpoint_rotate_secret(endpoint=endpoint)
    _stash_secret(request, endpoint, secret)
    messages.success(request, _("New secret made. The previous one keeps signing for 24 hours."))
    return redirect("webhooks:endpoint", pk=endpoint.pk)


@dashboard_page
@require_POST
def enable_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    endpoint = _manage_action(request, pk)
    if isinstance(endpoint, HttpResponse):
        return endpoint
    enable = request.POST.get("enabled") == "1"
    endpoints.endpoint_update(endpoint=endpoint, enabled=enable)
    messages.success(request, _("Endpoint enabled.") if enable else _("Endpoint disabled."))
    return redirect("webhooks:endpoint", pk=endpoint.pk)


@dashboard_page
@require_POST
def delete_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    endpoint = _manage_action(request, pk)
    if isinstance(endpoint, HttpResponse):
        return endpoint
    endpoints.endpoint_delete(endpoint=endpoint)
    messages.success(request, _("Endpoint deleted."))
    return redirect("webhooks:index")


@dashboard_page
@require_POST
def test_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    endpoint = _endpoint_or_404(request, pk)
    if not request.scope.can_write:
        messages.error(request, _("Your role in this tenant is read-only."))
        return _render_endpoint(request, endpoint, status=403)
    endpoints.endpoint_send_test(endpoint=endpoint)
    messages.success(request, _("Test event queued; it appears in the delivery log below."))
    return redirect("webhooks:endpoint", pk=endpoint.pk)


@dashboard_page
@require_POST
def replay_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    delivery = selectors.delivery_get(scope=request.scope, pk=pk)
    if delivery is None:
        raise Http404
    if not request.scope.can_write:
        messages.error(request, _("Your role in this tenant is read-only."))
        return _render_endpoint(request, delivery.endpoint, status=403)
    endpoints.delivery_replay(delivery=delivery)
    messages.success(request, _("Delivery replayed: the same event is sent again."))
    # Back to the page the button was on (the endpoint's, or the event's in the event log).
    back = request.POST.get("next") or ""
    if back and url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        return redirect(back)
    return redirect("webhooks:endpoint", pk=delivery.endpoint_id)


urlpatterns = [
    path("developers/webhooks/", index_view, name="index"),
    path("developers/webhooks/<uuid:pk>/", endpoint_view, name="endpoint"),
    path("developers/webhooks/<uuid:pk>/rotate-secret/", rotate_view, name="rotate"),
    path("developers/webhooks/<uuid:pk>/enable/", enable_view, name="enable"),
    path("developers/webhooks/<uuid:pk>/delete/", delete_view, name="delete"),
    path("developers/webhooks/<uuid:pk>/test/", test_view, name="test"),
    path("developers/webhooks/deliveries/<uuid:pk>/replay/", replay_view, name="replay"),
]
