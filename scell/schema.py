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


# --- What every API operation shares (a postprocessing hook) ---------------------------------------------
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The error object of every 4xx and 5xx answer (API.md).",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "code", "message", "details"],
            "properties": {
                "type": {
                    "type": "string",
                    "description": "Family of the error.",
                    "enum": [
                        "invalid_request_error",
                        "authentication_error",
                        "permission_error",
                        "validation_error",
                        "conflict_error",
                        "billing_error",
                        "rate_limit_error",
                        "api_error",
                    ],
                },
                "code": {
                    "type": "string",
                    "description": "Stable machine code.",
                    "example": "invalid_fields",
                },
                "message": {"type": "string", "description": "For people; may change."},
                "details": {
                    "type": "array",
                    "description": "Per-field or per-rule findings (field, rule, message...).",
                    "items": {"type": "object", "additionalProperties": True},
                },
            },
        }
    },
}

_ERRORS = {
    "400": ("Malformed request: the body is not valid JSON.", "invalid_request_error", "malformed_request"),
    "401": ("No valid key: missing, unknown or revoked.", "authentication_error", "invalid_api_key"),
    "402": ("Not enough credits (live mode).", "billing_error", "insufficient_credits"),
    "403": ("The key or the member's role may not do this.", "permission_error", "forbidden"),
    "404": ("No such object for this key's tenant and mode.", "invalid_request_error", "not_found"),
    "409": ("The object's state does not allow this.", "conflict_error", "conflict"),
    "422": (
        "Invalid fields, or refused by the rules (EN 16931, BR-FR...): see details.",
        "validation_error",
        "invalid_fields",
    ),
    "429": ("Too many requests for this key or address.", "rate_limit_error", "rate_limited"),
}
_REQUEST_ID = {
    "description": "The request's id: yours when you sent a sane one, else a new one. Quote it to support.",
    "schema": {"type": "string", "example": "4bf92f3577b34da6a3ce929d0e0e4736"},
}


def _error_response(status: str, description: str | None = None) -> dict[str, Any]:
    default, err_type, code = _ERRORS.get(status, ("Error.", "api_error", "error"))
    response: dict[str, Any] = {
        "description": description or default,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Error"},
                "example": {"error": {"type": err_type, "code": code, "message": default, "details": []}},
            }
        },
        "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
    }
    if status == "429":
        response["headers"]["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    return response


def common_responses_hook(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Document on every operation what the code does for all of them: the error object on 4xx, 401 and
    429 (rate limits, ``Retry-After``), 404 on object paths, 400 on bodies, ``X-Request-Id`` on every
    answer, the optional ``X-Request-Id`` and, on POST, ``Idempotency-Key`` request headers."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components.setdefault("headers", {}).update(
        {
            "X-Request-Id": _REQUEST_ID,
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer", "example": 12},
            },
        }
    )
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            wanted = {"429"}
            if operation.get("security") != [{}] and operation.get("security") != []:
                wanted |= {"401", "403"}  # no valid key; a key kind or member role that may not do this
            if "{" in path:
                wanted.add("404")
            if method in {"post", "put", "patch"}:
                wanted |= {"400", "422"}
            for status in wanted:
                responses.setdefault(status, _error_response(status))
            for status, response in responses.items():
                if status[0] in "45" and "content" not in response:
                    responses[status] = _error_response(status, response.get("description"))
                response = responses[status]
                response.setdefault("headers", {}).setdefault(
                    "X-Request-Id", {"$ref": "#/components/headers/X-Request-Id"}
                )
            parameters = operation.setdefault("parameters", [])
            names = {p.get("name") for p in parameters if isinstance(p, dict)}
            if "X-Request-Id" not in names:
                parameters.append({"in": "header", "name": "X-Request-Id", "required": False, **_REQUEST_ID})
            if method == "post" and "Idempotency-Key" not in names:
                parameters.append(
                    {
                        "in": "header",
                        "name": "Idempotency-Key",
                        "required": False,
                        "description": "Replays the first answer for the same key and body (24 h); "
                        "another body with the same key is refused (409).",
                        "schema": {"type": "string", "maxLength": 255},
                    }
                )
    return result
