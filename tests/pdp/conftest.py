"""Fixtures for the PDP tests: the Flow Service spec as JSON Schemas, an HTTP client of the built-in
simulator served by ``live_server``, sample invoices and a local receiver of webhook callbacks.

Kept generic: tests of the client and of the transmission logic can use them as they are."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import urllib3
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SPEC_PATH = Path(__file__).resolve().parents[2] / "pdp" / "spec" / "flow-service-1.3.0.swagger.json"
SPEC_URI = "urn:afnor:flow-service:1.3.0"

SELLER_SIREN = "732829320"  # the seller of tests.invoicing.samples
BUYER_SIREN = "552100554"  # its buyer
OTHER_SIREN = "443061841"


# --- The spec as JSON Schemas ---------------------------------------------------------------------------
@cache
def flow_spec() -> dict[str, Any]:
    """The Flow Service OpenAPI document, with one fix: ``ReasonCode`` is ``oneOf`` [ReasonCodeEnum,
    string], which no enumerated value can satisfy (it matches both branches); the intent, "a predefined
    set + ability to extend this set", is ``anyOf``."""
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    spec = copy.deepcopy(spec)
    reason = spec["components"]["schemas"]["ReasonCode"]
    reason["anyOf"] = reason.pop("oneOf")
    return spec


@cache
def _registry() -> Registry:
    return Registry().with_resource(
        SPEC_URI, Resource.from_contents(flow_spec(), default_specification=DRAFT7)
    )


def assert_schema(instance: Any, pointer: str) -> None:
    """Validate ``instance`` against the spec's schema at ``pointer``, e.g. ``"schemas/Flow"`` or
    ``"responses/WebhookListResponse/content/application~1json/schema"`` (relative to components).
    Formats (date-time, uuid) are checked."""
    schema = {"$ref": f"{SPEC_URI}#/components/{pointer}"}
    validator = jsonschema.Draft7Validator(
        schema, registry=_registry(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.fixture
def spec_schema() -> Callable[[Any, str], None]:
    return assert_schema


# --- HTTP client of the simulator -----------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SimHttp:
    """Calls the simulator over real HTTP (``live_server``) with the static token of the settings."""

    base_url: str  # ".../pdp-sim"
    token: str
    pool: urllib3.PoolManager = field(default_factory=lambda: urllib3.PoolManager(retries=False, timeout=60))

    def call(
        self,
        method: str,
        path: str,
        *,
        org: str | None = SELLER_SIREN,
        json_body: Any = None,
        fields: dict[str, Any] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Answer:
        """``path`` is relative to /pdp-sim/ (e.g. ``flow-service/v1/flows``); ``org=None`` sends no
        Organization-Id, ``token=""`` no Authorization."""
        sent: dict[str, str] = {}
        bearer = self.token if token is None else token
        if bearer:
            sent["Authorization"] = f"Bearer {bearer}"
        if org is not None:
            sent["Organization-Id"] = org
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        elif fields is not None:
            body, sent["Content-Type"] = urllib3.encode_multipart_formdata(fields)
        sent.update(headers or {})
        response = self.pool.request(method, f"{self.base_url}/{path}", body=body, headers=sent)
        return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.data)

    def submit(
        self, content: bytes, *, org: str = SELLER_SIREN, filename: str = "invoice.xml", **flow_info: Any
    ) -> Answer:
        """createFlow with ``flowInfo`` (name and flowSyntax default to ``filename`` and CII)."""
        info = {"name": filename, "flowSyntax": "CII", **flow_info}
        mime = "application/pdf" if content[:5] == b"%PDF-" else "application/xml"
        return self.call(
            "POST",
            "flow-service/v1/flows",
            org=org,
            fields={
                "flowInfo": ("flowInfo.json", json.dumps(info).encode(), "application/json"),
                "file": (filename, content, mime),
            },
        )

    def search(self, where: dict[str, Any], *, org: str = SELLER_SIREN, **params: Any) -> Answer:
        return self.call(
            "POST", "flow-service/v1/flows/search", org=org, json_body={"where": where, **params}
        )

    def search_all(self, where: dict[str, Any], *, org: str = SELLER_SIREN) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        cursor = None
        while True:
            answer = self.search(where, org=org, limit=100, **({"cursor": cursor} if cursor else {}))
            assert answer.status == 200, answer.body
            data = answer.json()
            results.extend(data["results"])
            cursor = data.get("nextCursor")
            if not cursor:
                return results

    def get(self, flow_id: str, *, org: str = SELLER_SIREN, doc_type: str | None = None) -> Answer:
        query = f"?docType={doc_type}" if doc_type else ""
        return self.call("GET", f"flow-service/v1/flows/{flow_id}{query}", org=org)


@pytest.fixture
def pdp_sim(live_server, settings) -> SimHttp:
    """The simulator on ``live_server`` with known credentials and an immediate lifecycle
    (PDP_SIMULATOR_STEP_SECONDS = 0: 200, 202 and 203 appear at submission)."""
    settings.PDP_SIMULATOR_ENABLED = True
    settings.PDP_SIMULATOR_TOKEN = "sim-static-token"
    settings.PDP_SIMULATOR_CLIENT_ID = "sim-client"
    settings.PDP_SIMULATOR_CLIENT_SECRET = "sim-secret"
    settings.PDP_SIMULATOR_STEP_SECONDS = 0
    return SimHttp(base_url=f"{live_server.url}/pdp-sim", token="sim-static-token")


# --- Sample invoices --------------------------------------------------------------------------------------
_numbers = itertools.count(1)


def invoice_xml(
    *, number: str | None = None, syntax: str = "CII", issue_date: dt.date | None = None
) -> bytes:
    """A French B2B invoice of ``SELLER_SIREN`` to ``BUYER_SIREN`` passing XSD, EN 16931 and BR-FR, in
    CII (default) or UBL, with a fresh number unless given."""
    from invoicing.computation import compute
    from invoicing.formats.cii import to_cii
    from invoicing.formats.ubl import to_ubl
    from tests.invoicing import samples

    document = samples.simple_standard()
    document.number = number or f"SIM-{next(_numbers):05d}"
    if issue_date is not None:
        document.issue_date = issue_date
    document = compute(document)
    return to_ubl(document) if syntax == "UBL" else to_cii(document)


def facturx_pdf(*, number: str | None = None) -> bytes:
    """The same invoice as a Factur-X (EN 16931) PDF."""
    from invoicing.computation import compute
    from invoicing.formats.cii import to_cii
    from invoicing.formats.facturx import to_facturx_pdf
    from tests.invoicing import samples

    document = samples.simple_standard()
    document.number = number or f"SIM-{next(_numbers):05d}"
    document = compute(document)
    return to_facturx_pdf(document, to_cii(document))


@pytest.fixture
def make_invoice() -> Callable[..., bytes]:
    return invoice_xml


# --- Webhook receiver -------------------------------------------------------------------------------------
@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class CallbackReceiver:
    """A tiny HTTP server on 127.0.0.1 recording every POST; answers ``status`` (200 by default)."""

    def __init__(self) -> None:
        self.requests: queue.Queue[Received] = queue.Queue()
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.put(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def wait(self, count: int = 1, *, timeout: float = 15.0) -> list[Received]:
        """The next ``count`` requests, failing the test if they do not come within ``timeout``."""
        got = []
        for _ in range(count):
            try:
                got.append(self.requests.get(timeout=timeout))
            except queue.Empty:
                pytest.fail(f"expected {count} callbacks, got {len(got)}")
        return got


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
