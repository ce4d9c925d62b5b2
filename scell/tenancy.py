"""The one tenant-scoping path.

Every request, whatever authenticated it (secret key, publishable key, tenant key, dashboard session),
ends up with a ``Scope``: the tenant, the mode (live or sandbox) and, for a partner acting on one of
its customers, the sub-tenant. Every queryset of tenant data is narrowed with
``Model.objects.scoped(scope)``; selectors take ``scope=`` and nothing else decides what a caller sees.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

if TYPE_CHECKING:
    from scell.models import ApiKey, SubTenant, Tenant, User


@dataclass(frozen=True)
class Scope:
    """Who is acting, on which tenant's data, in which mode."""

    tenant: Tenant
    livemode: bool
    sub_tenant: SubTenant | None = None
    api_key: ApiKey | None = None
    user: User | None = None
    role: str = "admin"  # dashboard role; API keys act with full rights on their tenant

    @property
    def auth_mode(self) -> str:
        if self.api_key is not None:
            return self.api_key.kind
        return "session"

    @property
    def can_write(self) -> bool:
        return self.role != "read_only"


class ScopedQuerySet(models.QuerySet):
    """Querysets of tenant data. ``scoped(scope)`` is the only sanctioned way to read tenant rows."""

    def scoped(self, scope: Scope) -> ScopedQuerySet:
        field_names = {f.name for f in self.model._meta.get_fields()}
        qs = self.filter(tenant=scope.tenant)
        # Sandbox and live objects never mix: a test key sees only sandbox rows and the reverse.
        if "livemode" in field_names:
            qs = qs.filter(livemode=scope.livemode)
        if scope.sub_tenant is not None:
            if self.model._meta.label == "scell.SubTenant":
                qs = qs.filter(pk=scope.sub_tenant.pk)
            elif "sub_tenant" in field_names:
                qs = qs.filter(sub_tenant=scope.sub_tenant)
        return qs


class TenantOwned(models.Model):
    """Base of every tenant-owned, mode-separated row (invoices, signature requests, events...)."""

    tenant = models.ForeignKey("scell.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField()
    sub_tenant = models.ForeignKey(
        "scell.SubTenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = ScopedQuerySet.as_manager()

    class Meta:
        abstract = True


# --- Dashboard --------------------------------------------------------------------------------------
SESSION_TENANT = "scell_tenant_id"
SESSION_LIVEMODE = "scell_livemode"


def dashboard_scope(request: HttpRequest) -> Scope | None:
    """The scope of a signed-in dashboard user: the tenant chosen in the switcher (or the first one)
    among the user's memberships, and the sandbox/live switch (sandbox by default)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    from scell.models import Membership

    memberships = Membership.objects.filter(user=user, tenant__is_active=True).select_related("tenant")
    wanted = request.session.get(SESSION_TENANT)
    membership = None
    if wanted:
        membership = memberships.filter(tenant_id=wanted).first()
    if membership is None:
        membership = memberships.order_by("created_at").first()
    if membership is None:
        return None
    livemode = bool(request.session.get(SESSION_LIVEMODE, False))
    return Scope(tenant=membership.tenant, livemode=livemode, user=user, role=membership.role)


View = Callable[..., HttpResponse]


def dashboard_page(view: View) -> View:
    """THE entry of every tenant dashboard page: signed in (else the sign-in page) and with a tenant
    (else the "no tenant" page, 403), so the view always finds ``request.scope`` set."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.scope is None:
            return render(request, "dashboard/no_tenant.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


class DashboardTenantMiddleware:
    """Sets ``request.scope`` for dashboard pages from the session (API views use their own auth)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.scope = None  # type: ignore[attr-defined]
        if request.path.startswith("/api/"):
            return self.get_response(request)
        request.scope = dashboard_scope(request)  # type: ignore[attr-defined]
        # People read times in the business time zone; the API speaks UTC.
        with timezone.override(zoneinfo.ZoneInfo(settings.BUSINESS_TIME_ZONE)):
            return self.get_response(request)


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    scope = getattr(request, "scope", None)
    if scope is None or scope.user is None:
        return {"scope": None}
    from scell.models import Membership

    tenants = [
        m.tenant
        for m in Membership.objects.filter(user=scope.user, tenant__is_active=True)
        .select_related("tenant")
        .order_by("tenant__legal_name")
    ]
    return {"scope": scope, "user_tenants": tenants}
