"""A client of the AFNOR XP Z12-013 Flow Service (``pdp/spec/flow-service-1.3.0.swagger.json``).

One client for both targets: the partner PDP (live, over HTTPS) and the built-in simulator (sandbox: in
process by default, over HTTP when ``PDP_SANDBOX_URL`` is set). The in-process transport calls the
simulator's own views with a real request object, so the sandbox runs exactly the code the HTTP server
runs, without a socket and without needing this Scell to know its own address.

Errors: ``PdpError`` with ``transient`` true for what deserves a retry (network errors, timeouts, 5xx,
429) and false for the PDP's refusals (4xx), whose ``code`` and ``message`` come from its Error body.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from django.conf import settings

from pdp.models import Target

USER_AGENT = "Scell-PDP-Client/1.0"
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class PdpError(Exception):
    """A call to the PDP failed."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.transient = transient

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "transient": self.transient,
        }


class PdpNotConfigured(PdpError):
    """No live PDP is configured (SCELL_PDP_URL)."""

    def __init__(self) -> None:
        super().__init__("No PDP is configured (SCELL_PDP_URL).", code="PDP_NOT_CONFIGURED", transient=False)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


# --- Transports ---------------------------------------------------------------------------------------
class HttpTransport:
    """urllib3 with connect and total timeouts, no automatic retries (the actors own the retry policy)."""

    _pool: urllib3.PoolManager | None = None
    _lock = threading.Lock()

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    @classmethod
    def pool(cls) -> urllib3.PoolManager:
        with cls._lock:
            if cls._pool is None:
                cls._pool = urllib3.PoolManager(num_pools=8, maxsize=4, headers={"User-Agent": USER_AGENT})
            return cls._pool

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        body: bytes | None = None,
        absolute: bool = False,
    ) -> RawResponse:
        url = path if absolute else f"{self.base_url}{path}"
        timeout = urllib3.Timeout(connect=settings.PDP_CONNECT_TIMEOUT, total=settings.PDP_TIMEOUT)
        try:
            response = self.pool().request(
                method, url, body=body, headers=headers, timeout=timeout, retries=False, redirect=False
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise PdpError(f"{method} {url}: {type(exc).__name__}: {exc}", transient=True) from exc
        return RawResponse(
            response.status, {k.lower(): v for k, v in response.headers.items()}, response.data
        )


class InProcessTransport:
    """Calls the simulator's views directly (sandbox default). Same request parsing, same answers. It
    resolves against the simulator's own URLconf, so it works whether or not the simulator is also
    served over HTTP (``PDP_SIMULATOR_ENABLED``)."""

    base_path = "/flow-service"

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        body: bytes | None = None,
        absolute: bool = False,
    ) -> RawResponse:
        from django.core.handlers.wsgi import WSGIRequest
        from django.urls import Resolver404, resolve

        full = urlsplit(path if absolute else f"{self.base_path}{path}")
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": f"/pdp-sim{full.path}",
            "QUERY_STRING": full.query,
            "SERVER_NAME": "pdp-simulator.internal",
            "SERVER_PORT": "443",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body or b""),
            "CONTENT_LENGTH": str(len(body or b"")),
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            else:
                environ[f"HTTP_{key}"] = value
        request = WSGIRequest(environ)
        try:
            match = resolve(full.path, urlconf="pdp.simulator.urls")
        except Resolver404:
            return RawResponse(404, {}, b'{"errorCode":"MISSING_RESOURCE"}')
        response = match.func(request, *match.args, **match.kwargs)
        if hasattr(response, "render") and callable(response.render):
            response.render()
        content = b"".join(response) if getattr(response, "streaming", False) else response.content
        return RawResponse(response.status_code, {k.lower(): v for k, v in response.items()}, content)


# --- Authentication -----------------------------------------------------------------------------------
@dataclass
class _Token:
    value: str
    expires_at: float


_token_cache: dict[str, _Token] = {}
_token_lock = threading.Lock()


# --- Client ---------------------------------------------------------------------------------------------
class FlowClient:
    """The Flow Service operations Scell uses. ``organization_id`` is the tenant's SIREN (the standard's
    Organization-Id header: one operator account acting for many organisations)."""

    def __init__(
        self,
        *,
        target: str,
        transport: HttpTransport | InProcessTransport,
        token: str = "",
        token_url: str = "",
        client_id: str = "",
        client_secret: str = "",
    ) -> None:
        self.target = target
        self.transport = transport
        self._static_token = token
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret

    # Authentication: a static bearer token, or OAuth2 client credentials cached until shortly before
    # they expire (and fetched again once if the PDP answers 401).
    def _bearer(self, *, refresh: bool = False) -> str:
        if self._static_token or not self._token_url:
            return self._static_token
        key = f"{self._token_url}|{self._client_id}"
        with _token_lock:
            cached = _token_cache.get(key)
            if cached and not refresh and cached.expires_at > time.monotonic() + 30:
                return cached.value
        body = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            }
        ).encode()
        response = self.transport.request(
            "POST",
            self._token_url,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            body=body,
            absolute=True,
        )
        if response.status != 200:
            raise _error_from(response, "token")
        try:
            data = response.json()
            token = _Token(str(data["access_token"]), time.monotonic() + float(data.get("expires_in", 300)))
        except (ValueError, KeyError, TypeError) as exc:
            raise PdpError(f"Unreadable token answer: {exc}", status=200, transient=True) from exc
        with _token_lock:
            _token_cache[key] = token
        return token.value

    def _call(
        self,
        method: str,
        path: str,
        *,
        organization_id: str = "",
        body: bytes | None = None,
        content_type: str = "",
        accept: str = "application/json",
        operation: str,
    ) -> RawResponse:
        for attempt in (1, 2):
            headers = {"Accept": accept, "Request-Id": str(uuid.uuid4())}
            bearer = self._bearer(refresh=attempt == 2)
            if bearer:
                headers["Authorization"] = f"Bearer {bearer}"
            if organization_id:
                headers["Organization-Id"] = organization_id
            if content_type:
                headers["Content-Type"] = content_type
            response = self.transport.request(method, path, headers=headers, body=body)
            if response.status == 401 and attempt == 1 and self._token_url and not self._static_token:
                continue  # an expired OAuth token: fetch a new one once
            if response.status >= 400:
                raise _error_from(response, operation)
            return response
        raise AssertionError("unreachable")

    def create_flow(
        self, organization_id: str, *, content: bytes, flow_info: dict[str, Any]
    ) -> dict[str, Any]:
        """POST /v1/flows (multipart ``flowInfo`` JSON + ``file``): the PDP's FullFlowInfo."""
        content_type_of_file = "application/pdf" if content[:5] == b"%PDF-" else "application/xml"
        body, content_type = urllib3.encode_multipart_formdata(
            {
                "flowInfo": ("flowInfo.json", json.dumps(flow_info).encode(), "application/json"),
                "file": (flow_info["name"], content, content_type_of_file),
            }
        )
        response = self._call(
            "POST",
            "/v1/flows",
            organization_id=organization_id,
            body=body,
            content_type=content_type,
            operation="createFlow",
        )
        return _json(response, "createFlow")

    def search_flows(
        self, organization_id: str, *, where: dict[str, Any], limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        """POST /v1/flows/search: ``{"results": [Flow...], "nextCursor"?: ...}``."""
        params: dict[str, Any] = {"where": where, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = self._call(
            "POST",
            "/v1/flows/search",
            organization_id=organization_id,
            body=json.dumps(params).encode(),
            content_type="application/json",
            operation="searchFlows",
        )
        return _json(response, "searchFlows")

    def get_flow(self, organization_id: str, flow_id: str) -> dict[str, Any]:
        """GET /v1/flows/{id} (Metadata): the Flow with its acknowledgement."""
        response = self._call(
            "GET", f"/v1/flows/{flow_id}", organization_id=organization_id, operation="getFlow"
        )
        return _json(response, "getFlow")

    def download(self, organization_id: str, flow_id: str, *, doc_type: str = "Original") -> bytes:
        """GET /v1/flows/{id}?docType=Original: the file itself."""
        response = self._call(
            "GET",
            f"/v1/flows/{flow_id}?{urlencode({'docType': doc_type})}",
            organization_id=organization_id,
            accept="application/octet-stream, application/pdf, application/xml",
            operation="getFlow",
        )
        return response.body

    def create_webhook(self, organization_id: str, *, callback_url: str, **filters: Any) -> dict[str, Any]:
        """POST /v1/webhooks: ``{"webhookId", "signingKey", "createdAt"}``."""
        response = self._call(
            "POST",
            "/v1/webhooks",
            organization_id=organization_id,
            body=json.dumps({"callbackUrl": callback_url, **filters}).encode(),
            content_type="application/json",
            operation="createWebhook",
        )
        return _json(response, "createWebhook")

    def delete_webhook(self, organization_id: str, webhook_id: str) -> None:
        self._call(
            "DELETE", f"/v1/webhooks/{webhook_id}", organization_id=organization_id, operation="deleteWebhook"
        )


def _json(response: RawResponse, operation: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise PdpError(
            f"{operation}: the PDP answered {response.status} with a body that is not JSON.",
            status=response.status,
            transient=True,
        ) from exc


def _error_from(response: RawResponse, operation: str) -> PdpError:
    code, message = "", ""
    try:
        data = response.json()
        if isinstance(data, dict):
            code = str(data.get("errorCode") or data.get("error") or "")
            message = str(
                data.get("errorMessage") or data.get("details") or data.get("error_description") or ""
            )
    except ValueError:
        message = response.body[:300].decode("utf-8", "replace")
    text = f"{operation}: the PDP answered {response.status}" + (f" {code}" if code else "")
    if message:
        text += f": {message}"
    return PdpError(text, status=response.status, code=code, transient=response.status in TRANSIENT_STATUSES)


def target_for(livemode: bool) -> str:
    return Target.PDP if livemode else Target.SIMULATOR


def client_for(livemode: bool) -> FlowClient:
    """The client of the PDP that serves ``livemode``: the partner PDP for live, the simulator for the
    sandbox (sandbox objects never reach the partner PDP). Raises ``PdpNotConfigured`` for live when no
    PDP is configured."""
    if not livemode:
        if settings.PDP_SANDBOX_URL:
            return FlowClient(
                target=Target.SIMULATOR,
                transport=HttpTransport(settings.PDP_SANDBOX_URL),
                token=settings.PDP_SIMULATOR_TOKEN,
            )
        return FlowClient(
            target=Target.SIMULATOR, transport=InProcessTransport(), token=settings.PDP_SIMULATOR_TOKEN
        )
    if not settings.PDP_URL:
        raise PdpNotConfigured()
    return FlowClient(
        target=Target.PDP,
        transport=HttpTransport(settings.PDP_URL),
        token=settings.PDP_TOKEN,
        token_url=settings.PDP_TOKEN_URL,
        client_id=settings.PDP_CLIENT_ID,
        client_secret=settings.PDP_CLIENT_SECRET,
    )
