"""OpenAPI descriptions of the four authentication modes (drf-spectacular extensions)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class _HeaderKey(OpenApiAuthenticationExtension):
    header = ""
    description = ""

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": self.header, "description": self.description}


class SecretKeyScheme(_HeaderKey):
    target_class = "scell.authentication.SecretKeyAuthentication"
    name = "SecretKey"
    header = "X-API-Key"
    description = "Secret key sk_live_… / sk_test_…: server-to-server, everything."


class PublishableKeyScheme(_HeaderKey):
    target_class = "scell.authentication.PublishableKeyAuthentication"
    name = "PublishableKey"
    header = "X-Publishable-Key"
    description = "Publishable key pk_…: public-widget endpoints only, from the key's allowed origins."


class TenantKeyScheme(_HeaderKey):
    target_class = "scell.authentication.TenantKeyAuthentication"
    name = "TenantKey"
    header = "X-Tenant-Key"
    description = "Legacy partner key: acts on sub-tenants (name one with X-Sub-Tenant)."


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "scell.authentication.DashboardSessionAuthentication"
    name = "Session"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "Dashboard session + CSRF",
        }
