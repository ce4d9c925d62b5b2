"""The four authentication modes of API.md. Each one yields a ``Scope`` as ``request.auth``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from scell.models import ApiKey, SubTenant, hash_key
from scell.tenancy import Scope, dashboard_scope


class KeyPrincipal:
    """``request.user`` for requests authenticated by a key (no person behind it)."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return str(self.api_key)


def _touch_last_used(api_key: ApiKey) -> None:
    # Written at most once a minute per key: a hot key must not turn every read into a write.
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is None or now - api_key.last_used_at >= resolution:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


class _KeyAuthentication(authentication.BaseAuthentication):
    header: str = ""
    kind: str = ""

    def authenticate(self, request: Request) -> tuple[Any, Scope] | None:
        raw = request.META.get("HTTP_" + self.header.upper().replace("-", "_"))
        if raw is None:
            return None
        raw = raw.strip()
        api_key = (
            ApiKey.objects.select_related("tenant").filter(key_hash=hash_key(raw), kind=self.kind).first()
            if raw
            else None
        )
        if api_key is None or not api_key.tenant.is_active:
            raise exceptions.AuthenticationFailed(
                {"code": "invalid_api_key", "message": f"The {self.header} key is not valid."}
            )
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                {"code": "revoked_api_key", "message": f"The {self.header} key has been revoked."}
            )
        scope = self.scope_for(request, api_key)
        _touch_last_used(api_key)
        return KeyPrincipal(api_key), scope

    def scope_for(self, request: Request, api_key: ApiKey) -> Scope:
        return Scope(tenant=api_key.tenant, livemode=api_key.livemode, api_key=api_key)

    def authenticate_header(self, request: Request) -> str:
        # A value here keeps DRF answering 401 (not 403) to an unauthenticated request.
        return self.header


class SecretKeyAuthentication(_KeyAuthentication):
    """``X-API-Key: sk_live_…/sk_test_…``: server-to-server, everything."""

    header = "X-API-Key"
    kind = ApiKey.Kind.SECRET


class PublishableKeyAuthentication(_KeyAuthentication):
    """``X-Publishable-Key: pk_…``: client-side widgets, only public-widget endpoints, only from the
    key's allowed origins."""

    header = "X-Publishable-Key"
    kind = ApiKey.Kind.PUBLISHABLE

    def scope_for(self, request: Request, api_key: ApiKey) -> Scope:
        origin = request.META.get("HTTP_ORIGIN", "")
        if origin not in (api_key.allowed_origins or []):
            raise exceptions.PermissionDenied(
                {
                    "code": "origin_not_allowed",
                    "message": "This origin is not allowed for the publishable key.",
                }
            )
        return super().scope_for(request, api_key)


class TenantKeyAuthentication(_KeyAuthentication):
    """``X-Tenant-Key`` (legacy partner key): acts on the partner's sub-tenants, one at a time when the
    request names it with ``X-Sub-Tenant`` (its id or identifier)."""

    header = "X-Tenant-Key"
    kind = ApiKey.Kind.TENANT

    def scope_for(self, request: Request, api_key: ApiKey) -> Scope:
        wanted = request.META.get("HTTP_X_SUB_TENANT", "").strip()
        sub_tenant = None
        if wanted:
            candidates = SubTenant.objects.filter(tenant=api_key.tenant, is_active=True)
            sub_tenant = candidates.filter(identifier=wanted.upper()).first()
            if sub_tenant is None:
                try:
                    sub_tenant = candidates.filter(pk=wanted).first()
                except Exception:
                    sub_tenant = None
            if sub_tenant is None:
                raise exceptions.NotFound({"code": "sub_tenant_not_found", "message": "No such sub-tenant."})
        return Scope(tenant=api_key.tenant, livemode=api_key.livemode, api_key=api_key, sub_tenant=sub_tenant)


class DashboardSessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's own calls: session cookie + CSRF token; tenant and mode from the session."""

    def authenticate(self, request: Request) -> tuple[Any, Scope] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        scope = dashboard_scope(request._request)
        if scope is None:
            raise exceptions.PermissionDenied(
                {"code": "no_tenant", "message": "This user is not a member of any tenant."}
            )
        return result[0], scope
