"""OpenAPI descriptions of the four authentication modes (drf-spectacular extensions), and the
postprocessing hooks: what every operation shares, and each operation's examples."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import import_module
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
    "409": (
        "The object's state does not allow this, or the Idempotency-Key was used with another body.",
        "conflict_error",
        "conflict",
    ),
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


HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(path, method, operation)`` of every operation of an OpenAPI schema."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


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
    for path, method, operation in operations(result):
        responses = operation.setdefault("responses", {})
        wanted = {"429"}
        if operation.get("security") != [{}] and operation.get("security") != []:
            wanted |= {"401", "403"}  # no valid key; a key kind or member role that may not do this
        if "{" in path:
            wanted.add("404")
        if method in {"post", "put", "patch"}:
            wanted |= {"400", "422"}
        if any(p.get("in") == "query" for p in operation.get("parameters", []) if isinstance(p, dict)):
            wanted.add("422")  # a query parameter out of its range or choices
        if method == "post":
            wanted.add("409")  # at least: the Idempotency-Key was used with another body
        for status in sorted(wanted):  # a stable order: the served schema is the same on every run
            responses.setdefault(status, _error_response(status))
        for status, response in responses.items():
            if status[0] in "45" and "content" not in response:
                responses[status] = _error_response(status, response.get("description"))
            response = responses[status]
            response.setdefault("headers", {}).setdefault(
                "X-Request-Id", {"$ref": "#/components/headers/X-Request-Id"}
            )
        parameters = operation.setdefault("parameters", [])
        for parameter in parameters:
            if parameter.get("in") == "query" and not parameter.get("required"):
                # scell.api.base: an empty value is the same as leaving the parameter out.
                parameter["allowEmptyValue"] = True
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
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            )
    return result


# --- Request and response examples of every operation (a postprocessing hook) -------------------------
@dataclass(frozen=True)
class Example:
    """One named example: ``name`` is its key in the OpenAPI ``examples`` map, ``summary`` its title in
    the docs, ``value`` the JSON body itself."""

    name: str
    summary: str
    value: Any
    description: str = ""

    def as_openapi(self) -> dict[str, Any]:
        example = {"summary": self.summary, "value": copy.deepcopy(self.value)}
        if self.description:
            example["description"] = self.description
        return example


@dataclass(frozen=True)
class OperationExamples:
    """What one operation is shown with: an example of its JSON request body, one per 2xx JSON answer
    (keyed by status), and for file downloads a description of the media types (keyed by status)."""

    request: Example | None = None
    responses: dict[str, Example] = field(default_factory=dict)
    media: dict[str, str] = field(default_factory=dict)


# One module per app, each with ``EXAMPLES: dict[operationId, OperationExamples]``.
EXAMPLE_MODULES = (
    "scell.api_examples",
    "invoicing.api_examples",
    "signatures.api_examples",
    "billing.api_examples",
    "webhooks.api_examples",
    "archive.api_examples",
)


class SchemaExampleError(Exception):
    """An example names an operation, a status or a body that the schema does not have: examples must
    follow the code, never rot silently."""


def collected_examples() -> dict[str, OperationExamples]:
    """Every app's examples by operationId; an operationId claimed twice is an error."""
    merged: dict[str, OperationExamples] = {}
    for module_name in EXAMPLE_MODULES:
        for operation_id, examples in import_module(module_name).EXAMPLES.items():
            if operation_id in merged:
                raise SchemaExampleError(f"{module_name}: examples of {operation_id!r} are defined twice.")
            merged[operation_id] = examples
    return merged


def _json_content(container: dict[str, Any], where: str) -> dict[str, Any]:
    content = container.get("content", {}).get("application/json")
    if content is None:
        raise SchemaExampleError(f"{where} has no application/json content to carry an example.")
    return content


def _attach(content: dict[str, Any], example: Example, where: str) -> None:
    examples = content.setdefault("examples", {})
    if example.name in examples:
        raise SchemaExampleError(f"{where}: an example named {example.name!r} is already there.")
    examples[example.name] = example.as_openapi()


def examples_hook(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Attach the examples of ``EXAMPLE_MODULES`` to their operations: request bodies and 2xx answers
    under ``content["application/json"].examples``, media type descriptions on file downloads. Raises
    :class:`SchemaExampleError` for an example of an operation, status or body the schema lacks."""
    by_id = {operation["operationId"]: operation for _, _, operation in operations(result)}
    for operation_id, examples in collected_examples().items():
        operation = by_id.get(operation_id)
        if operation is None:
            raise SchemaExampleError(f"Examples name {operation_id!r}, which is not an operation.")
        if examples.request is not None:
            if "requestBody" not in operation:
                raise SchemaExampleError(f"{operation_id} takes no request body, yet has a request example.")
            where = f"{operation_id} request body"
            _attach(_json_content(operation["requestBody"], where), examples.request, where)
        responses = operation.get("responses", {})
        for status, example in examples.responses.items():
            where = f"{operation_id} answer {status}"
            if status not in responses:
                raise SchemaExampleError(f"{where} is not documented.")
            _attach(_json_content(responses[status], where), example, where)
        for status, description in examples.media.items():
            if status not in responses or not responses[status].get("content"):
                raise SchemaExampleError(f"{operation_id} answer {status} has no media types to describe.")
            responses[status]["description"] = description
    return result
