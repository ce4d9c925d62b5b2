"""Dashboard: Developers → API keys (list, create with the key shown once, revoke) and the event log
(every event of the tenant and mode, its JSON body and its deliveries). Keys are written by
``scell.services`` and events read through ``webhooks.selectors``, as the API does."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.core.validators import URLValidator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scell import selectors, services
from scell.models import ApiKey
from scell.tenancy import dashboard_page
from webhooks import selectors as webhook_selectors
from webhooks.delivery import event_payload
from webhooks.events import EVENT_TYPES, TEST_EVENT_TYPE
from webhooks.models import Event

# The raw key of a new API key waits in the session for the one page load that shows it.
SHOW_ONCE = "scell_api_key_show_once"
EVENTS_PER_PAGE = 50
MAX_ORIGINS = 20  # as the API (ApiKeyCreateSerializer)


def _is_admin(request: HttpRequest) -> bool:
    # Keys act with full rights on the tenant: only its admins mint or revoke them (API: admin_only).
    return request.scope.role == "admin"


# --- API keys -----------------------------------------------------------------------------------------
class ApiKeyForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        choices=[
            (ApiKey.Kind.SECRET, gettext_lazy("Secret key (server to server, full access)")),
            (ApiKey.Kind.PUBLISHABLE, gettext_lazy("Publishable key (browser widgets only)")),
        ],
        initial=ApiKey.Kind.SECRET,
    )
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        required=False,
        help_text=gettext_lazy("What uses the key, e.g. “ERP production”."),
    )
    allowed_origins = forms.CharField(
        label=gettext_lazy("Allowed origins"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=gettext_lazy(
            "Publishable keys only: one origin per line, e.g. https://shop.example.com. "
            "Requests from other origins are refused."
        ),
    )

    def clean_allowed_origins(self) -> list[str]:
        origins = [line.strip() for line in self.cleaned_data["allowed_origins"].splitlines() if line.strip()]
        if len(origins) > MAX_ORIGINS:
            raise ValidationError(_("At most %(count)s origins.") % {"count": MAX_ORIGINS})
        validate = URLValidator(schemes=["https", "http"])
        for origin in origins:
            try:
                validate(origin)
            except ValidationError:
                raise ValidationError(_("%(origin)s is not a valid origin.") % {"origin": origin}) from None
        return origins

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # Browsers send the origin of a page with each of its requests; a secret key never needs one.
        if data.get("kind") == ApiKey.Kind.SECRET:
            data["allowed_origins"] = []
        return data


def _render_keys(request: HttpRequest, form: ApiKeyForm, *, status: int = 200) -> HttpResponse:
    scope = request.scope
    shown = request.session.pop(SHOW_ONCE, None)
    created = None
    if shown:
        created = selectors.api_key_get(scope=scope, pk=shown.get("id"))
        if created is None:  # stashed in the other mode or tenant: never shown there
            shown = None
    context = {
        "keys": selectors.api_key_list(scope=scope),
        "form": form,
        "is_admin": _is_admin(request),
        # Shown on this one page load, then gone: only the hash is stored.
        "raw_key": shown.get("raw") if shown else None,
        "created": created,
    }
    return render(request, "developers/keys.html", context, status=status)


@dashboard_page
def keys_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    if request.method != "POST":
        return _render_keys(request, ApiKeyForm())
    form = ApiKeyForm(request.POST)
    if not _is_admin(request):
        messages.error(request, _("Only an admin of the tenant can create API keys."))
        return _render_keys(request, ApiKeyForm(), status=403)
    if not form.is_valid():
        return _render_keys(request, form, status=422)
    issued = services.api_key_create(
        tenant=scope.tenant,
        livemode=scope.livemode,  # keys are made for the mode the dashboard is in
        created_by=request.user,
        **form.cleaned_data,
    )
    request.session[SHOW_ONCE] = {"id": str(issued.api_key.pk), "raw": issued.raw}
    messages.success(request, _("API key created."))
    return redirect("developers:keys")


@dashboard_page
def key_revoke_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    scope = request.scope
    api_key = selectors.api_key_get(scope=scope, pk=pk)
    if api_key is None:
        raise Http404
    if not _is_admin(request):
        messages.error(request, _("Only an admin of the tenant can revoke API keys."))
        return _render_keys(request, ApiKeyForm(), status=403)
    if request.method == "POST":
        if api_key.revoked_at is not None:
            messages.info(request, _("This key was already revoked."))
        else:
            services.api_key_revoke(api_key=api_key)
            messages.success(request, _("Key %(prefix)s… revoked.") % {"prefix": api_key.display_prefix})
        return redirect("developers:keys")
    return render(request, "developers/key_revoke.html", {"key": api_key})


# --- Event log ----------------------------------------------------------------------------------------
class EventFilterForm(forms.Form):
    type = forms.ChoiceField(label=gettext_lazy("Type"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [("", _("all"))] + [(t, t) for t in [*EVENT_TYPES, TEST_EVENT_TYPE]]


# Where the dashboard shows the object an event is about, by the prefix of the event type.
OBJECT_PAGES = {
    "invoice.": "invoicing_dashboard:detail",
    "signature_request.": "signatures_dashboard:detail",
    "signer.": "signatures_dashboard:detail",
}
OBJECT_KEYS = ("id", "purchase", "invoice", "endpoint", "chain_key")


def object_of(event: Event) -> dict[str, str]:
    """The id of what the event is about (``data.id`` for invoices and signature requests), its number
    if it has one, and the dashboard page showing it when there is one."""
    data = event.data if isinstance(event.data, dict) else {}
    ref = next((str(data[key]) for key in OBJECT_KEYS if data.get(key)), "")
    url = ""
    for prefix, name in OBJECT_PAGES.items():
        if event.type.startswith(prefix) and data.get("id"):
            try:
                url = reverse(name, kwargs={"pk": UUID(str(data["id"]))})
            except (ValueError, NoReverseMatch):
                url = ""
            break
    return {"id": ref, "number": str(data.get("number") or ""), "url": url}


@dashboard_page
def events_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    form = EventFilterForm(request.GET or None)
    chosen = form.cleaned_data["type"] if form.is_valid() else ""
    events = webhook_selectors.event_list(scope=scope, type=chosen or None).order_by("-created_at", "-pk")
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "rows": [{"event": event, "object": object_of(event)} for event in page.object_list],
        "query": f"type={chosen}" if chosen else "",
    }
    return render(
        request,
        "developers/events.html",
        context,
        status=200 if form.is_valid() or not form.is_bound else 400,
    )


@dashboard_page
def event_view(request: HttpRequest, ref: str) -> HttpResponse:
    scope = request.scope
    event = webhook_selectors.event_get(scope=scope, ref=ref)
    if event is None:
        raise Http404
    context = {
        "event": event,
        "object": object_of(event),
        # Exactly the body POSTed to endpoints (webhooks.delivery.event_payload), indented to read.
        "payload": json.dumps(json.loads(event_payload(event)), indent=2, ensure_ascii=False),
        "deliveries": webhook_selectors.delivery_list(scope=scope, event=event).order_by("-created_at"),
        "next": request.path,
    }
    return render(request, "developers/event.html", context)


urlpatterns = [
    path("developers/keys/", keys_view, name="keys"),
    path("developers/keys/<uuid:pk>/revoke/", key_revoke_view, name="key-revoke"),
    path("developers/events/", events_view, name="events"),
    path("developers/events/<str:ref>/", event_view, name="event"),
]
