"""The error object of API.md, produced in one place for every app.

``{"error": {"type": "...", "code": "...", "message": "...", "details": [...]}}``
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger("scell.api")


class ScellError(exceptions.APIException):
    """An API error with an explicit status, type, code, message and details."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 400,
        type: str = "invalid_request_error",
        code: str = "invalid_request",
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=message)
        self.status_code = status_code
        self.error_type = type
        self.error_code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


class Conflict(ScellError):
    def __init__(self, message: str, *, code: str = "conflict", details: list | None = None) -> None:
        super().__init__(message, status_code=409, type="conflict_error", code=code, details=details)


class UnprocessableEntity(ScellError):
    def __init__(self, message: str, *, code: str = "validation_failed", details: list | None = None) -> None:
        super().__init__(message, status_code=422, type="validation_error", code=code, details=details)


class PaymentRequired(ScellError):
    def __init__(
        self, message: str, *, code: str = "insufficient_credits", details: list | None = None
    ) -> None:
        super().__init__(message, status_code=402, type="billing_error", code=code, details=details)


def error_body(
    *,
    type: str,
    code: str,
    message: str,
    details: list | None = None,
) -> dict[str, Any]:
    return {"error": {"type": type, "code": code, "message": message, "details": details or []}}


def flatten_validation_errors(detail: Any, prefix: str = "") -> list[dict[str, Any]]:
    """DRF's nested error dict → ``[{"field": "lines[0].quantity", "message": ..., "code": ...}]``."""
    out: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            out.extend(flatten_validation_errors(value, path))
    elif isinstance(detail, list):
        if all(isinstance(x, exceptions.ErrorDetail | str) for x in detail):
            for item in detail:
                entry = {"field": prefix or None, "message": str(item)}
                code = getattr(item, "code", None)
                if code:
                    entry["code"] = code
                out.append(entry)
        else:
            for index, item in enumerate(detail):
                out.extend(flatten_validation_errors(item, f"{prefix}[{index}]"))
    else:
        out.append({"field": prefix or None, "message": str(detail), "code": getattr(detail, "code", None)})
    return out


_STANDARD = {
    exceptions.ParseError: (400, "invalid_request_error", "malformed_request"),
    exceptions.UnsupportedMediaType: (415, "invalid_request_error", "unsupported_media_type"),
    exceptions.NotAcceptable: (406, "invalid_request_error", "not_acceptable"),
    exceptions.MethodNotAllowed: (405, "invalid_request_error", "method_not_allowed"),
    exceptions.NotAuthenticated: (401, "authentication_error", "missing_api_key"),
    exceptions.AuthenticationFailed: (401, "authentication_error", "invalid_api_key"),
    exceptions.PermissionDenied: (403, "permission_error", "forbidden"),
    exceptions.NotFound: (404, "invalid_request_error", "not_found"),
    exceptions.Throttled: (429, "rate_limit_error", "rate_limited"),
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: every failure leaves as the error object."""
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        # Model-level validation (full_clean in services) speaks the same 422 as serializers.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )

    if isinstance(exc, ScellError):
        body = error_body(type=exc.error_type, code=exc.error_code, message=exc.message, details=exc.details)
        return Response(body, status=exc.status_code, headers=exc.headers)

    if isinstance(exc, exceptions.ValidationError):
        details = flatten_validation_errors(exc.detail)
        body = error_body(
            type="validation_error",
            code="invalid_fields",
            message="The request has invalid fields: "
            + "; ".join(
                f"{d['field']}: {d['message']}" if d.get("field") else d["message"] for d in details[:5]
            ),
            details=details,
        )
        return Response(body, status=status.HTTP_422_UNPROCESSABLE_ENTITY)

    if isinstance(exc, exceptions.APIException):
        status_code, err_type, code = exc.status_code, "invalid_request_error", exc.default_code
        for klass, triple in _STANDARD.items():
            if isinstance(exc, klass):
                status_code, err_type, code = triple
                break
        if isinstance(exc.detail, dict) and "code" in exc.detail:
            code = str(exc.detail["code"])
            message = str(exc.detail.get("message", exc.default_detail))
        else:
            message = str(exc.detail)
            detail_code = getattr(exc.detail, "code", None)
            if detail_code and detail_code not in {exc.default_code, "invalid", "error"}:
                code = str(detail_code)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        return Response(
            error_body(type=err_type, code=code, message=message), status=status_code, headers=headers
        )

    logger.exception("Unhandled API error", exc_info=exc)
    body = error_body(type="api_error", code="internal_error", message="An internal error occurred.")
    return Response(body, status=500)


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Unknown URLs under /api/ answer with the error object, not an HTML page."""
    if request.path.startswith("/api/"):
        body = error_body(type="invalid_request_error", code="not_found", message="No such endpoint.")
        return JsonResponse(body, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)  # type: ignore[arg-type]


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused CSRF check: the error object under /api/ (a session-authenticated call without its token),
    Django's page elsewhere."""
    if request.path.startswith("/api/"):
        body = error_body(
            type="permission_error", code="csrf_failed", message=f"CSRF check failed: {reason}".rstrip(": ")
        )
        return JsonResponse(body, status=403)
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)


def json_500(request: HttpRequest) -> JsonResponse:
    if request.path.startswith("/api/"):
        body = error_body(type="api_error", code="internal_error", message="An internal error occurred.")
        return JsonResponse(body, status=500)
    from django.views.defaults import server_error

    return server_error(request)  # type: ignore[return-value]
