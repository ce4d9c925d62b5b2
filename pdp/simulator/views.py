"""HTTP side of the PDP simulator: parse the request, call ``pdp.simulator.engine``, answer JSON.

Every view is CSRF-exempt (API clients, bearer tokens), uses no session, echoes the Request-Id header and
answers errors with the spec's Error body. Scell's sandbox client may also call these views in process
(``pdp.client.InProcessTransport``), without any middleware: nothing here may rely on one.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from pdp import afnor
from pdp.simulator import engine
from pdp.simulator.engine import SimError

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]


def _json(data: Any, status: int = 200) -> HttpResponse:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return HttpResponse(body, status=status, content_type="application/json")


def _error(exc: SimError) -> HttpResponse:
    response = _json(exc.body(), exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="pdp-simulator"'
    return response


def endpoint(
    *methods: str,
    operations: dict[str, str] | None = None,
    auth: bool = True,
    organization: bool = True,
) -> Callable[[View], View]:
    """Wrap a view: method check, bearer auth, Organization-Id, the lifecycle clock (``engine.tick``),
    injected faults of the operation, Error bodies for every failure, Request-Id echo.

    The view is called as ``view(request, organization_id, **kwargs)``."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise SimError(
                        405,
                        f"{request.method} is not allowed here.",
                        code="METHOD_NOT_ALLOWED",
                        headers={"Allow": ", ".join(methods)},
                    )
                if auth:
                    engine.bearer_check(request.headers.get("Authorization", ""))
                header = request.headers.get("Organization-Id")
                organization_id = (
                    engine.organization_check(header) if organization else (header or "").strip()
                )
                if auth:
                    engine.tick()
                operation = (operations or {}).get(request.method or "", "")
                fault = (
                    engine.fault_take(operation=operation, organization_id=organization_id)
                    if operation
                    else None
                )
                if fault is not None and not fault.after_store:
                    raise engine.fault_error(fault)
                response = view(request, organization_id, **kwargs)
                if fault is not None:
                    # afterStore: the work is done and committed, the answer is lost.
                    raise engine.fault_error(fault)
            except SimError as exc:
                response = _error(exc)
            except Exception:
                logger.exception("PDP simulator: %s %s failed", request.method, request.path)
                response = _error(SimError(500, "Internal error of the simulator."))
            request_id = request.headers.get("Request-Id")
            if request_id:
                response["Request-Id"] = request_id
            return response

        return wrapper

    return decorate


def _json_body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise SimError(400, "The body must be JSON.", code="INVALID_REQUEST") from None


def _check_upload_size(request: HttpRequest) -> None:
    # Refuse an oversized upload before Django reads it (multipart overhead allowed for).
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.PDP_SIMULATOR_MAX_FLOW_BYTES + 1024 * 1024:
        raise SimError(413, "The request is too large.", code="FILE_SIZE_EXCEEDED")


def _part(request: HttpRequest, name: str) -> bytes | None:
    """A multipart part as bytes, whether sent as a file (with a filename) or as a plain field."""
    uploaded = request.FILES.get(name)
    if uploaded is not None:
        if uploaded.size is not None and uploaded.size > settings.PDP_SIMULATOR_MAX_FLOW_BYTES:
            raise SimError(413, "The file is too large.", code="FILE_SIZE_EXCEEDED")
        return uploaded.read()
    value = request.POST.get(name)
    return None if value is None else value.encode("utf-8")


def _multipart(request: HttpRequest) -> None:
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise SimError(400, "The body must be multipart/form-data.", code="INVALID_REQUEST")
    _check_upload_size(request)


# --- Flow Service -----------------------------------------------------------------------------------------
@endpoint("GET", auth=False, organization=False)
def healthcheck(request: HttpRequest, organization_id: str) -> HttpResponse:
    return HttpResponse(status=200)


@endpoint("POST", operations={"POST": "createFlow"})
def flows(request: HttpRequest, organization_id: str) -> HttpResponse:
    _multipart(request)
    raw_info = _part(request, "flowInfo")
    if raw_info is None:
        raise SimError(400, "The flowInfo part is required.", code="MISSING_REQUIRED_FIELD")
    try:
        flow_info = json.loads(raw_info)
    except (ValueError, UnicodeDecodeError):
        raise SimError(400, "flowInfo must be JSON.", code="INVALID_REQUEST") from None
    content = _part(request, "file")
    if content is None:
        raise SimError(400, "The file part is required.", code="MISSING_REQUIRED_FIELD")
    flow = engine.flow_create(organization_id=organization_id, flow_info=flow_info, content=content)
    return _json(engine.full_flow_info_json(flow, flow_info), 202)


@endpoint("POST", operations={"POST": "searchFlows"})
def flows_search(request: HttpRequest, organization_id: str) -> HttpResponse:
    return _json(engine.flow_search(organization_id=organization_id, params=_json_body(request)))


@endpoint("GET", operations={"GET": "getFlow"})
def flow_detail(request: HttpRequest, organization_id: str, flow_id: str) -> HttpResponse:
    doc_type = request.GET.get("docType", "Metadata")
    if doc_type not in afnor.DocType:
        raise SimError(400, "docType must be Metadata, Original, Converted or ReadableView.")
    flow = engine.flow_get(organization_id=organization_id, flow_id=flow_id)
    if doc_type == "Metadata":
        return _json(engine.flow_json(flow))
    if doc_type != "Original":
        # The simulator converts nothing and renders no readable view.
        raise SimError(404, f"The flow {flow_id} has no {doc_type} document.", code="MISSING_RESOURCE")
    response = HttpResponse(bytes(flow.content), content_type=flow.content_type)
    filename = "".join(c for c in flow.name if c.isprintable() and c not in '";\\') or flow.flow_id
    response["Content-Disposition"] = f"attachment;filename={filename}"
    return response


@endpoint("GET", "POST", operations={"GET": "listWebhooks", "POST": "createWebhook"})
def webhooks(request: HttpRequest, organization_id: str) -> HttpResponse:
    if request.method == "POST":
        webhook = engine.webhook_create(organization_id=organization_id, params=_json_body(request))
        return _json(engine.webhook_json(webhook, with_key=True), 201)
    items = engine.webhook_list(organization_id=organization_id)
    # The spec's WebhookListResponse requires "webhookIds" but describes "webhooks": both are given.
    return _json(
        {
            "count": len(items),
            "webhookIds": [str(w.id) for w in items],
            "webhooks": [engine.webhook_json(w) for w in items],
        }
    )


@endpoint("DELETE", operations={"DELETE": "deleteWebhook"})
def webhook_detail(request: HttpRequest, organization_id: str, webhook_id: str) -> HttpResponse:
    engine.webhook_delete(organization_id=organization_id, webhook_id=webhook_id)
    return HttpResponse(status=204)


# --- OAuth2 -----------------------------------------------------------------------------------------------
@csrf_exempt
def token(request: HttpRequest) -> HttpResponse:
    """OAuth2 client credentials (RFC 6749 §4.4). Errors carry both the RFC's ``error`` and the Flow
    Service's ``errorCode``, so either kind of client reads them."""
    try:
        if request.method != "POST":
            raise SimError(405, "POST only.", code="METHOD_NOT_ALLOWED", headers={"Allow": "POST"})
        form: Any = request.POST
        if (request.content_type or "") == "application/json":
            form = _json_body(request)
            if not isinstance(form, dict):
                raise SimError(400, "The body must be a form.", code="INVALID_REQUEST")
        if form.get("grant_type") != "client_credentials":
            raise SimError(400, "grant_type must be client_credentials.", code="UNSUPPORTED_GRANT_TYPE")
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic" and credentials:
            try:
                client_id, _, client_secret = base64.b64decode(credentials).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise SimError(401, "Unreadable Basic credentials.", code="INVALID_CLIENT") from None
        response = _json(engine.token_issue(client_id=client_id, client_secret=client_secret))
    except SimError as exc:
        response = _error(exc)
        oauth_error = {"INVALID_CLIENT": "invalid_client", "UNSUPPORTED_GRANT_TYPE": "unsupported_grant_type"}
        body = {
            **exc.body(),
            "error": oauth_error.get(exc.code, "invalid_request"),
            "error_description": exc.message,
        }
        response.content = json.dumps(body).encode("utf-8")
    response["Cache-Control"] = "no-store"
    if request.headers.get("Request-Id"):
        response["Request-Id"] = request.headers["Request-Id"]
    return response


# --- Control (tests and sandbox) --------------------------------------------------------------------------
@endpoint("POST")
def control_status(request: HttpRequest, organization_id: str, flow_id: str) -> HttpResponse:
    body = _json_body(request)
    if not isinstance(body, dict) or not body.get("statusCode"):
        raise SimError(400, "statusCode is required.", code="MISSING_REQUIRED_FIELD")
    amounts = body.get("amounts") or []
    if not isinstance(amounts, list):
        raise SimError(400, "amounts must be a list.", code="INVALID_REQUEST")
    flow = engine.status_push(
        organization_id,
        flow_id,
        str(body["statusCode"]),
        reason_code=str(body.get("reasonCode") or ""),
        reason=str(body.get("reason") or ""),
        amounts=amounts,
        emitter=body.get("emitter") or None,
    )
    return _json(engine.flow_json(flow), 201)


@endpoint("POST")
def control_inbound(request: HttpRequest, organization_id: str) -> HttpResponse:
    _multipart(request)
    content = _part(request, "file")
    if content is None:
        raise SimError(400, "The file part is required.", code="MISSING_REQUIRED_FIELD")
    name = request.POST.get("name") or ""
    uploaded = request.FILES.get("file")
    if not name and uploaded is not None and uploaded.name not in ("", "file", "blob"):
        name = uploaded.name
    flow = engine.inbound_create(organization_id, content, name=name)
    return _json(engine.flow_json(flow), 201)


@endpoint("POST", "DELETE", organization=False)
def control_faults(request: HttpRequest, organization_id: str) -> HttpResponse:
    """Faults apply to every organisation, or only to the one named by an Organization-Id header."""
    if request.method == "DELETE":
        engine.faults_clear(organization_id=organization_id)
        return HttpResponse(status=204)
    body = _json_body(request)
    if not isinstance(body, dict):
        raise SimError(400, "The body must be a JSON object.", code="INVALID_REQUEST")
    fault = engine.fault_add(
        operation=body.get("operation", ""),
        status=body.get("status", 503),
        count=body.get("count", 1),
        after_store=body.get("afterStore", False),
        organization_id=organization_id,
    )
    return _json(
        {
            "operation": fault.operation,
            "status": fault.status,
            "count": fault.remaining,
            "afterStore": fault.after_store,
        },
        201,
    )
