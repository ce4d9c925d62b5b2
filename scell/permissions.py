"""Which authentication mode may call which endpoint."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from scell.models import ApiKey
from scell.tenancy import Scope


class HasTenantScope(permissions.BasePermission):
    """The default for every API view: an authenticated scope, publishable keys only on views marked
    ``public_widget = True``, read-only dashboard members only on safe methods."""

    def has_permission(self, request: Request, view: Any) -> bool:
        scope = request.auth
        if not isinstance(scope, Scope):
            raise exceptions.NotAuthenticated(
                {
                    "code": "missing_api_key",
                    "message": "Authenticate with an X-API-Key header (or a key of API.md).",
                }
            )
        kind = scope.api_key.kind if scope.api_key is not None else None
        if kind == ApiKey.Kind.PUBLISHABLE and not getattr(view, "public_widget", False):
            raise exceptions.PermissionDenied(
                {
                    "code": "publishable_key_not_allowed",
                    "message": "A publishable key may only call public-widget endpoints.",
                }
            )
        if getattr(view, "secret_key_only", False) and kind not in (None, ApiKey.Kind.SECRET):
            raise exceptions.PermissionDenied(
                {"code": "secret_key_required", "message": "This endpoint needs a secret key."}
            )
        if request.method not in permissions.SAFE_METHODS and not scope.can_write:
            raise exceptions.PermissionDenied(
                {"code": "read_only_member", "message": "Your role in this tenant is read-only."}
            )
        if getattr(view, "admin_only", False) and scope.api_key is None and scope.role != "admin":
            raise exceptions.PermissionDenied(
                {"code": "admin_required", "message": "Only an admin of the tenant may do this."}
            )
        return True
