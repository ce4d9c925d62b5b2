"""Scell for AI agents: an MCP server (``manage.py mcp``, stdio) over the public API.

Every tool is one API operation, dispatched in-process to the very DRF view that serves it over HTTP:
same input serializers, services, output serializers, tenant scoping, rate limit and error object, so a
tool's result is the JSON the API would answer and a failure carries the API's ``code``, ``message`` and
``details``. The caller is the secret key in ``SCELL_API_KEY``, authenticated on every call by the API's
own ``SecretKeyAuthentication`` (a key revoked meanwhile stops working at once; ``last_used_at`` moves as
for HTTP calls). Sandbox by default: a live key is refused unless the server is started with ``--live``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import Http404, HttpResponseBase
from django.urls import resolve
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import BlobResourceContents, EmbeddedResource, TextResourceContents
from rest_framework import exceptions
from rest_framework.test import APIRequestFactory, force_authenticate

from scell.authentication import KeyPrincipal, SecretKeyAuthentication
from scell.errors import exception_handler
from scell.tenancy import Scope

API = "/api/v1"
KEY_ENV = "SCELL_API_KEY"
DOWNLOAD_FORMATS = ("facturx", "cii", "ubl", "json", "pdf")


class KeyRefused(Exception):
    """``SCELL_API_KEY`` cannot be used: missing, unknown, revoked, not a secret key, or live without
    ``--live``."""


def authenticate(raw_key: str, *, allow_live: bool) -> tuple[KeyPrincipal, Scope]:
    """The principal and scope of a secret key, exactly as the API's ``X-API-Key`` authentication
    resolves them (lookup by hash, active tenant, not revoked, ``last_used_at``)."""
    raw_key = (raw_key or "").strip()
    if not raw_key:
        raise KeyRefused(f"Set {KEY_ENV} to a secret API key (sk_test_… for the sandbox).")
    # The secret-key authentication reads nothing of the request but this header.
    request = SimpleNamespace(META={"HTTP_X_API_KEY": raw_key})
    try:
        result = SecretKeyAuthentication().authenticate(request)  # type: ignore[arg-type]
    except exceptions.AuthenticationFailed as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"message": str(exc.detail)}
        code = str(detail.get("code", "invalid_api_key"))
        raise KeyRefused(
            f"{KEY_ENV} was refused ({code}): {detail.get('message')} "
            "Give a secret key (sk_test_… or sk_live_…) that is not revoked."
        ) from exc
    assert result is not None  # the header is set, so the authentication answers or raises
    principal, scope = result
    if scope.livemode and not allow_live:
        raise KeyRefused(
            f"{KEY_ENV} is a live key: live invoices are real and charged. "
            "Use a sandbox key (sk_test_…), or start the server with --live."
        )
    return principal, scope


def _host() -> str:
    # Pagination builds absolute links: the in-process request must carry a host Django accepts.
    for host in settings.ALLOWED_HOSTS:
        if host != "*":
            return host.lstrip(".")
    return "localhost"


class ScellClient:
    """Calls the API views in-process as the holder of one secret key."""

    def __init__(self, raw_key: str, *, allow_live: bool) -> None:
        self.raw_key = raw_key
        self.allow_live = allow_live
        self.factory = APIRequestFactory(SERVER_NAME=_host())

    def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> HttpResponseBase:
        # A long-lived process: drop connections the database closed, as Django does around requests.
        close_old_connections()
        try:
            principal, scope = authenticate(self.raw_key, allow_live=self.allow_live)
        except KeyRefused as exc:
            raise ToolError(_error_text("authentication_error", "invalid_api_key", str(exc))) from exc
        if method == "GET":
            params = {k: v for k, v in (query or {}).items() if v is not None}
            request = self.factory.get(path, data=params)
        else:
            request = self.factory.post(path, data=body or {}, format="json")
        force_authenticate(request, user=principal, token=scope)
        match = resolve(path)
        response = match.func(request, *match.args, **match.kwargs)
        if hasattr(response, "render"):
            response.render()
        if response.status_code >= 400:
            raise ToolError(json.dumps(json.loads(response.content)["error"]))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return json.loads(self.call(method, path, **kwargs).content)


def _error_text(type: str, code: str, message: str, details: list | None = None) -> str:
    return json.dumps({"type": type, "code": code, "message": message, "details": details or []})


def _id(value: str) -> str:
    # An id from an agent goes into a path: it must stay one path segment.
    return quote(str(value).strip(), safe="")


def _in_thread(func: Any) -> Any:
    """Django's ORM refuses to run in the event loop's thread: each tool runs in one worker thread."""
    return sync_to_async(func, thread_sensitive=True)


def build_server(raw_key: str, *, allow_live: bool = False) -> FastMCP:
    """The FastMCP server of one key. Raises ``KeyRefused`` at once when the key cannot be used."""
    authenticate(raw_key, allow_live=allow_live)
    client = ScellClient(raw_key, allow_live=allow_live)
    mcp = FastMCP(
        "Scell",
        instructions=(
            "Scell e-invoicing (Factur-X, UBL, CII), electronic signatures and prepaid credits. "
            "Draft an invoice, issue it (validation, definitive number, documents), download it, and "
            "send PDFs for signature. Results and errors are the JSON of Scell's REST API (API.md)."
        ),
    )

    @mcp.tool()
    async def create_invoice(draft: dict[str, Any]) -> dict[str, Any]:
        """Create a draft invoice or credit note. `draft` is the body of POST /api/v1/invoices: type,
        format, profile, buyer {name, siren, vat_number, address...}, lines [{description, quantity,
        unit_price, vat_rate...}], currency, notes... Returns the draft (numbered DRAFT-NNNNN)."""
        return await _in_thread(client.json)("POST", f"{API}/invoices", body=draft)

    @mcp.tool()
    async def validate_invoice(invoice_id: str) -> dict[str, Any]:
        """Check a draft against every rule issuing applies (EN 16931, Factur-X profile, French rules)
        without issuing it. Errors name the broken rules; success means issue_invoice will pass them."""

        def run() -> dict[str, Any]:
            invoice = client.json("GET", f"{API}/invoices/{_id(invoice_id)}")
            _dry_run_issue(raw_key, allow_live, invoice["id"])
            return {"id": invoice["id"], "number": invoice["number"], "valid": True, "issues": []}

        return await _in_thread(run)()

    @mcp.tool()
    async def validate_document(content_base64: str) -> dict[str, Any]:
        """Validate a CII, UBL or Factur-X file (base64) without storing it (POST /invoices/validate):
        the validation report, or an error listing the broken rules."""
        body = {"document_base64": content_base64}
        return await _in_thread(client.json)("POST", f"{API}/invoices/validate", body=body)

    @mcp.tool()
    async def issue_invoice(invoice_id: str) -> dict[str, Any]:
        """Validate, number, charge (live mode) and issue a draft. Returns the issued invoice."""
        return await _in_thread(client.json)("POST", f"{API}/invoices/{_id(invoice_id)}/issue")

    @mcp.tool(structured_output=False)
    async def download_invoice(invoice_id: str, format: str = "facturx") -> list[Any]:
        """Download an issued invoice: facturx (PDF/A-3 with its XML), pdf (readable PDF), cii or ubl
        (XML text), json (the invoice object)."""

        def run() -> list[Any]:
            path = f"{API}/invoices/{_id(invoice_id)}/download"
            response = client.call("GET", path, query={"format": format})
            content_type = response.get("Content-Type", "").split(";")[0]
            uri = f"scell://invoices/{_id(invoice_id)}/{format}"
            if content_type == "application/pdf":
                blob = base64.b64encode(response.content).decode("ascii")
                resource = BlobResourceContents(uri=uri, mimeType=content_type, blob=blob)
            else:
                text = response.content.decode("utf-8")
                resource = TextResourceContents(uri=uri, mimeType=content_type, text=text)
            return [EmbeddedResource(type="resource", resource=resource)]

        return await _in_thread(run)()

    @mcp.tool()
    async def list_invoices(
        status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> dict[str, Any]:
        """List invoices, newest first (GET /api/v1/invoices): `status` (draft, issued, received...),
        `limit` (at most 100), `cursor` (the `next_cursor` of the previous page)."""
        query = {"status": status, "limit": limit, "cursor": cursor}
        return await _in_thread(client.json)("GET", f"{API}/invoices", query=query)

    @mcp.tool()
    async def create_signature_request(
        title: str,
        document_base64: str,
        signers: list[dict[str, Any]],
        order: str = "sequential",
        message: str = "",
        document_filename: str = "document.pdf",
        expires_at: str | None = None,
        external_ref: str = "",
        locale: str = "fr",
        notify_email: str = "",
    ) -> dict[str, Any]:
        """Send a PDF (base64) for signature (POST /api/v1/signature-requests). `signers`: [{name,
        email, phone (E.164), optional page/x/y of the stamp}]; `order`: sequential or parallel.
        Charged €1.20 per signer in live mode. The answer holds each signer's signing_url."""
        body: dict[str, Any] = {
            "title": title,
            "document_base64": document_base64,
            "document_filename": document_filename,
            "signers": signers,
            "order": order,
            "message": message,
            "expires_at": expires_at,
            "external_ref": external_ref,
            "locale": locale,
            "notify_email": notify_email,
        }
        return await _in_thread(client.json)("POST", f"{API}/signature-requests", body=body)

    @mcp.tool()
    async def get_signature_request(request_id: str) -> dict[str, Any]:
        """A signature request with its status and each signer's status."""
        return await _in_thread(client.json)("GET", f"{API}/signature-requests/{_id(request_id)}")

    @mcp.tool()
    async def get_credits() -> dict[str, Any]:
        """Prepaid credits: balance, lots with expiry, prices and this month's usage."""
        return await _in_thread(client.json)("GET", f"{API}/credits")

    return mcp


def _dry_run_issue(raw_key: str, allow_live: bool, invoice_id: str) -> None:
    """Run the checks of ``invoice_issue`` (everything before a number is taken) on a draft; a failure
    leaves as the API's error object."""
    from invoicing import selectors, services

    _principal, scope = authenticate(raw_key, allow_live=allow_live)
    try:
        invoice = selectors.invoice_get(scope=scope, pk=invoice_id)
        services.invoice_validate_draft(scope=scope, invoice=invoice)
    except Exception as exc:
        if isinstance(exc, selectors.Invoice.DoesNotExist):
            exc = Http404()
        raise ToolError(json.dumps(exception_handler(exc, {}).data["error"], default=str)) from exc


class _ConsoleOnStderr:
    """``sys.stdout`` while serving. Text written to it (``print``, a console logging handler, the
    development e-mail or SMS backends) goes to stderr; its ``buffer``, which the SDK's stdio transport
    wraps to write the protocol, is a private copy of the real stdout."""

    def __init__(self, protocol: io.BufferedWriter) -> None:
        self.buffer = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stderr, name)


def run(*, allow_live: bool) -> None:
    """``manage.py mcp``: serve on stdin/stdout until the client closes them.

    stdout belongs to the protocol alone. The protocol is written to a private copy of it; file
    descriptor 1 is pointed at stderr (for whatever writes there below Python) and ``sys.stdout`` is a
    console that writes to stderr too, so nothing else can corrupt the stream. Served by the SDK's own
    ``FastMCP.run("stdio")``."""
    server = build_server(os.environ.get(KEY_ENV, ""), allow_live=allow_live)
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = _ConsoleOnStderr(protocol)  # type: ignore[assignment]
    server.run("stdio")
