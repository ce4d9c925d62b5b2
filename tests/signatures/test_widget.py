"""The embed widget (static/scell/widget.js) in Chromium: a host page on another origin opens the signing
page in a modal iframe with ``embed=1&pk=…&origin=…``, hears the outcome through postMessage and closes;
a key that is not a publishable key throws."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache

from scell.models import ApiKey
from signatures import sms
from signatures.models import Signer
from tests.signatures.test_signing_page import create, last_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shop</title></head>
<body><h1>Checkout</h1>
<script src="{scell}/static/scell/widget.js" data-publishable-key="{key}"></script>
<script>window.scellEvents = [];</script>
</body></html>"""


@pytest.fixture(autouse=True)
def _backends(settings, tmp_path):
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    settings.SIGNATURE_DEV_SEAL_DIR = str(tmp_path / "seal")
    sms.outbox.clear()
    cache.clear()


@pytest.fixture
def host() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A customer's site on loopback: its own origin (``localhost`` like the live server, so the two are
    same-site and the CSRF cookie of the framed page is sent over plain HTTP)."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("localhost", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


def test_widget_frames_the_signing_page_and_reports_the_outcome(phone, live_server, host, tenant_a) -> None:
    origin, pages = host
    key = tenant_a.keys["pk_test"]
    ApiKey.objects.filter(tenant=tenant_a.tenant, kind=ApiKey.Kind.PUBLISHABLE, livemode=False).update(
        allowed_origins=[origin]
    )
    pages["/shop"] = HOST_PAGE.format(scell=live_server.url, key=key).encode()
    request, (path, _) = create(tenant_a, order="parallel")

    phone.goto(f"{origin}/shop")
    phone.evaluate(
        "url => { Scell.openSigning({url, onEvent: e => window.scellEvents.push(e.type)}); }",
        live_server.url + path,
    )
    src = phone.locator("iframe").get_attribute("src")
    assert src.startswith(live_server.url + path)
    query = parse_qs(urlsplit(src).query)
    assert query == {"embed": ["1"], "pk": [key], "origin": [origin]}
    assert phone.get_by_role("dialog").is_visible()

    frame = phone.frame_locator("iframe")
    assert frame.locator("h1").inner_text() == "Contrat"  # framing allowed for this origin
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "signing-widget.png"))
    frame.locator("#consent").check()
    frame.get_by_role("button", name="Send me a code by SMS").click()
    frame.get_by_test_id("code-sent").wait_for()
    frame.get_by_label("Code received by SMS (6 digits)").fill(last_code())
    frame.get_by_role("button", name="Sign", exact=True).click()
    phone.wait_for_function("() => window.scellEvents.includes('signer.signed')")
    assert request.signers.get(position=1).status == Signer.Status.SIGNED

    phone.keyboard.press("Escape")
    phone.wait_for_function("() => window.scellEvents.includes('closed')")
    assert phone.locator("iframe").count() == 0
    assert phone.evaluate("window.scellEvents") == ["signer.signed", "closed"]


def test_widget_refuses_a_key_that_is_not_publishable(phone, live_server, host, tenant_a) -> None:
    origin, pages = host
    pages["/secret"] = HOST_PAGE.format(scell=live_server.url, key=tenant_a.keys["sk_test"]).encode()
    phone.goto(f"{origin}/secret")
    attempt = """override => {
        try { Scell.openSigning({url: "https://scell.invalid/sign/x/", publishableKey: override}); }
        catch (error) { return error.message; }
        return "opened";
    }"""
    assert "publishable key (pk_...)" in phone.evaluate(attempt, None)  # the script tag's sk_ key
    assert "publishable key (pk_...)" in phone.evaluate(attempt, "tk_test_abc")
    assert phone.locator("iframe").count() == 0
