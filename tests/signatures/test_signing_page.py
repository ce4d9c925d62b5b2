"""The signer's page (``/sign/<token>/``) and the public verification page (``/verify/``), through the
Django test client: the flow, its refusals and their statuses, the security headers, framing by the
widget, and the verdicts on sealed, modified and foreign documents."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
import weasyprint
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from scell.models import ApiKey
from scell.tenancy import Scope
from signatures import services, sms
from signatures.models import SignatureRequest, Signer
from signatures.services import SignerInput

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n"
WIDGET_ORIGIN = "https://widget.example.com"  # tenant_a's publishable keys allow it (tests/conftest.py)
PEOPLE = [
    SignerInput(name="Élodie Martin", email="elodie@example.com", phone="+33612345678"),
    SignerInput(name="Jürgen Weiß", email="jurgen@example.com", phone="+33698765432"),
]


def make_pdf(pages: int = 2) -> bytes:
    body = "".join(
        f'<div style="page-break-after: always">Contrat de prestation, page {n + 1}</div>'
        for n in range(pages)
    )
    return weasyprint.HTML(string=f"<html><body>{body}</body></html>").write_pdf()


PDF = make_pdf(2)


@pytest.fixture(scope="session")
def seal_dir(tmp_path_factory):
    # One development seal for the module's session: generating the key is the slow part of sealing.
    return tmp_path_factory.mktemp("seal")


@pytest.fixture(autouse=True)
def _backends(settings, seal_dir):
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SIGNATURE_DEV_SEAL_DIR = str(seal_dir)
    sms.outbox.clear()
    cache.clear()


def create(tenant, *, order: str = "sequential", locale: str = "en", people=PEOPLE):
    created = services.signature_request_create(
        scope=Scope(tenant=tenant.tenant, livemode=False),
        document=PDF,
        filename="contract.pdf",
        title="Contrat",
        message="Please sign before Friday.",
        signers=list(people),
        order=order,
        locale=locale,
    )
    signers = list(created.request.signers.order_by("position"))
    return created.request, [urlsplit(created.links[str(s.id)]).path for s in signers]


def last_code(phone: str | None = None) -> str:
    messages = [m for m in sms.outbox if phone is None or m.to == phone]
    return re.search(r"\b(\d{6})\b", messages[-1].body).group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def send_code(client: Client, path: str, query: str = ""):
    return client.post(f"{path}code{query}")


def sign_via_page(client: Client, path: str, *, phone: str = PEOPLE[0].phone) -> None:
    assert send_code(client, path).status_code == 303
    response = client.post(f"{path}sign", {"code": last_code(phone), "consent": "1"})
    assert response.status_code == 303, response.content.decode()[:2000]


def html(response) -> str:
    return response.content.decode()


# --- The page -----------------------------------------------------------------------------------------
def test_page_shows_the_request_the_consent_text_and_every_page(client, tenant_a) -> None:
    request, (path, _) = create(tenant_a)
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = html(response)
    assert "Contrat" in page and "Alpha SAS" in page and "Please sign before Friday." in page
    signer = request.signers.get(position=1)
    assert escape(services.consent_text(signer)) in page
    assert page.count('class="page-image"') == request.page_count == 2
    assert f"{path}pages/1.png" in page and f"{path}pages/2.png" in page
    assert f'href="{path}document.pdf"' in page
    assert 'inputmode="numeric"' in page and 'autocomplete="one-time-code"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert "SANDBOX — no legal value" in page
    assert "+33 6•• ••• •78" in page  # the phone, masked
    # The first view is recorded once, however often the page is opened.
    client.get(path)
    assert request.events.filter(action="document.viewed", signer=signer).count() == 1


def test_security_headers(client, tenant_a) -> None:
    _, (path, _) = create(tenant_a)
    page, image, document = (
        client.get(path),
        client.get(f"{path}pages/1.png"),
        client.get(f"{path}document.pdf"),
    )
    # Pages: same-origin (no-referrer would make browsers post forms with "Origin: null", which fails
    # the CSRF check); the URL and its token never go to another origin either way.
    assert page["Referrer-Policy"] == "same-origin"
    assert image["Referrer-Policy"] == document["Referrer-Policy"] == "no-referrer"
    for response in (page, image, document):
        assert response["X-Robots-Tag"].startswith("noindex")
        assert response["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    page = client.get(path)
    assert page["Cache-Control"] == "no-store"
    nonce = re.search(r"script-src 'nonce-([^']+)'", page["Content-Security-Policy"]).group(1)
    assert html(page).count("<script") == html(page).count(f'<script nonce="{nonce}">') == 1
    verify = client.get("/verify/")
    assert "script-src 'none'" in verify["Content-Security-Policy"]  # no script there at all
    assert verify["X-Frame-Options"] == "DENY" and verify["Cache-Control"] == "no-store"


def test_page_images_and_the_pdf(client, tenant_a, monkeypatch) -> None:
    from signatures import views

    request, (path, _) = create(tenant_a)
    calls = []
    real = views.render_page_images

    def counting(data, **kwargs):
        calls.append(kwargs)
        return real(data, **kwargs)

    monkeypatch.setattr(views, "render_page_images", counting)
    first = client.get(f"{path}pages/1.png")
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    assert first.content.startswith(PNG)
    assert first["Cache-Control"] == "private, max-age=300"
    second = client.get(f"{path}pages/2.png")
    assert second.status_code == 200 and second.content.startswith(PNG) and second.content != first.content
    assert len(calls) == 1  # both pages rendered at once, then served from the cache
    assert client.get(f"{path}pages/3.png").status_code == 404
    assert client.get(f"{path}pages/0.png").status_code == 404

    document = client.get(f"{path}document.pdf")
    assert document.status_code == 200 and document["Content-Type"] == "application/pdf"
    assert b"".join(document.streaming_content) == PDF
    assert hashlib.sha256(PDF).hexdigest() == request.original_sha256
    # The signed PDF exists only once the request completed.
    assert client.get(f"{path}signed.pdf").status_code == 404


def test_unknown_token_is_an_html_404(client) -> None:
    response = client.get("/sign/not-a-real-token-0123456789/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "This signing link is not valid." in html(response)
    assert response["Referrer-Policy"] == "same-origin"
    assert client.post("/sign/not-a-real-token-0123456789/code").status_code == 404
    assert client.get("/sign/not-a-real-token-0123456789/pages/1.png").status_code == 404


def test_french_page(client, tenant_a) -> None:
    _, (path, _) = create(tenant_a, locale="fr")
    page = html(client.get(path))
    assert '<html lang="fr">' in page
    assert "M&#x27;envoyer un code par SMS" in page or "M'envoyer un code par SMS" in page
    assert "SANDBOX — aucune valeur juridique" in page
    assert "J&#x27;ai lu le document" in page
    refused = client.post(f"{path}sign", {"code": "123456"})
    assert refused.status_code == 400
    assert "Veuillez lire le document et accepter le texte de consentement." in html(refused)


# --- The flow ------------------------------------------------------------------------------------------
def test_send_code_then_sign_shows_the_thank_you_page(client, tenant_a) -> None:
    request, (path, _) = create(tenant_a, order="parallel")
    sent = send_code(client, path)
    assert sent.status_code == 303 and sent["Location"] == f"{path}#sign"
    page = client.get(path)
    assert "Code sent to +33 6•• ••• •78" in html(page)
    assert len(sms.outbox) == 1 and sms.outbox[0].to == PEOPLE[0].phone

    response = client.post(f"{path}sign", {"code": last_code(), "consent": "1"}, follow=True)
    assert response.redirect_chain == [(f"{path}?done=signed", 303)]
    assert response.status_code == 200
    assert "Thank you, Élodie Martin!" in html(response)
    assert "once everybody has signed" in html(response)
    signer = request.signers.get(position=1)
    assert signer.status == Signer.Status.SIGNED
    assert signer.ip == "127.0.0.1"


def test_consent_and_code_are_required(client, tenant_a) -> None:
    _, (path, _) = create(tenant_a)
    no_consent = client.post(f"{path}sign", {"code": "123456"})
    assert no_consent.status_code == 400
    assert "Please read the document and accept the consent text." in html(no_consent)
    no_code = client.post(f"{path}sign", {"code": "123456", "consent": "1"})
    assert no_code.status_code == 400 and "Ask for a code first." in html(no_code)
    assert 'id="sign-error"' in html(no_code) and 'aria-invalid="true"' in html(no_code)


def test_parallel_links_all_work_at_once(client, tenant_a) -> None:
    request, (first, second) = create(tenant_a, order="parallel")
    assert client.get(first).status_code == 200
    assert client.get(second).status_code == 200
    sign_via_page(client, second, phone=PEOPLE[1].phone)
    sign_via_page(client, first, phone=PEOPLE[0].phone)
    request.refresh_from_db()
    assert request.status == SignatureRequest.Status.FINALIZING


def test_five_wrong_codes_lock_the_link(client, tenant_a) -> None:
    request, (path, _) = create(tenant_a)
    send_code(client, path)
    code = last_code()
    for left in (4, 3, 2, 1):
        response = client.post(f"{path}sign", {"code": wrong(code), "consent": "1"})
        assert response.status_code == 400
        assert f"Wrong code. {left} attempt(s) left." in html(response)
    locked = client.post(f"{path}sign", {"code": wrong(code), "consent": "1"})
    assert locked.status_code == 423
    assert "locked after too many wrong codes" in html(locked)
    # Even the right code is refused now, and the page stays locked.
    again = client.post(f"{path}sign", {"code": code, "consent": "1"})
    assert again.status_code == 423
    assert client.get(path).status_code == 423
    assert request.signers.get(position=1).status == Signer.Status.LOCKED


def test_a_code_expires_after_ten_minutes(client, tenant_a) -> None:
    with time_machine.travel(timezone.now(), tick=False) as clock:
        _, (path, _) = create(tenant_a)
        send_code(client, path)
        code = last_code()
        clock.shift(timedelta(minutes=10, seconds=1))
        response = client.post(f"{path}sign", {"code": code, "consent": "1"})
    assert response.status_code == 400
    assert "This code has expired. Ask for a new one." in html(response)


def test_resend_cooldown_is_a_429_with_retry_after(client, tenant_a) -> None:
    with time_machine.travel(timezone.now(), tick=False) as clock:
        _, (path, _) = create(tenant_a)
        assert send_code(client, path).status_code == 303
        clock.shift(timedelta(seconds=20))
        again = send_code(client, path)
        assert again.status_code == 429
        assert again["Retry-After"] == "40"
        assert "A code was sent less than a minute ago" in html(again)
        assert 'id="code-error"' in html(again)
        clock.shift(timedelta(seconds=41))
        assert send_code(client, path).status_code == 303
    assert len(sms.outbox) == 2


def test_decline_ends_the_request_for_everybody(client, tenant_a) -> None:
    request, (first, second) = create(tenant_a, order="parallel")
    empty = client.post(f"{second}decline", {"reason": "  "})
    assert empty.status_code == 400 and "Please give a reason." in html(empty)
    assert "<details open>" in html(empty)

    response = client.post(f"{second}decline", {"reason": "Wrong amount"}, follow=True)
    assert response.redirect_chain == [(f"{second}?done=declined", 303)]
    assert response.status_code == 200 and "You declined to sign" in html(response)
    request.refresh_from_db()
    assert request.status == SignatureRequest.Status.DECLINED
    assert request.signers.get(position=2).decline_reason == "Wrong amount"
    other = client.get(first)
    assert other.status_code == 410
    assert "This signature request was declined." in html(other)
    assert client.post(f"{first}code").status_code == 410
    assert client.get(f"{first}pages/1.png").status_code == 410


def test_cancelled_request_is_gone(client, tenant_a) -> None:
    request, (path, _) = create(tenant_a)
    services.signature_request_cancel(scope=Scope(tenant=tenant_a.tenant, livemode=False), request=request)
    response = client.get(path)
    assert response.status_code == 410
    assert "This signature request was cancelled by its sender." in html(response)


def test_expired_request_is_gone(client, tenant_a) -> None:
    _, (path, _) = create(tenant_a)
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        response = client.get(path)
    assert response.status_code == 410 and "has expired" in html(response)


def test_posts_need_the_csrf_token(tenant_a) -> None:
    _, (path, _) = create(tenant_a)
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(f"{path}code").status_code == 403
    assert sms.outbox == []
    page = html(browser.get(path))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert browser.post(f"{path}code", {"csrfmiddlewaretoken": token}).status_code == 303
    assert len(sms.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_sequential_order_with_a_fresh_link_for_the_next_signer(client, tenant_a, stub_worker) -> None:
    request, (first, second) = create(tenant_a)
    waiting = client.get(second)
    assert waiting.status_code == 409
    assert "It is not your turn yet" in html(waiting)
    assert client.post(f"{second}code").status_code == 409
    assert sms.outbox == []

    sign_via_page(client, first)
    stub_worker.join("signatures")
    invitations = [m for m in mail.outbox if m.to == [PEOPLE[1].email]]
    assert len(invitations) == 1
    link = re.search(r"https?://\S+/sign/[A-Za-z0-9_-]+/", invitations[0].body).group(0)
    fresh = urlsplit(link).path
    assert fresh != second
    # The link minted at creation never reached the second signer and no longer works.
    assert client.get(second).status_code == 404
    page = client.get(fresh)
    assert page.status_code == 200 and "Send me a code by SMS" in html(page)
    # The first signer's link now says thank you.
    assert client.get(first).status_code == 200 and "Thank you" in html(client.get(first))
    assert SignatureRequest.objects.get(pk=request.pk).status == SignatureRequest.Status.PENDING


# --- Framing by the widget --------------------------------------------------------------------------
def embed_query(key: str, origin: str = WIDGET_ORIGIN) -> str:
    return f"?embed=1&pk={key}&origin={origin}"


def test_embed_with_a_valid_publishable_key_allows_its_origins(client, tenant_a) -> None:
    _, (path, _) = create(tenant_a, order="parallel")
    query = embed_query(tenant_a.keys["pk_test"])
    response = client.get(path + query)
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    csp = response["Content-Security-Policy"]
    assert f"frame-ancestors {WIDGET_ORIGIN}" in csp
    assert re.search(r"script-src 'nonce-[^']+'", csp)
    page = html(response)
    assert f'data-scell-origin="{WIDGET_ORIGIN}"' in page
    # The forms keep the framing, so their answers may be framed too.
    actions = re.findall(r'action="([^"]+)"', page)
    assert actions and all("embed=1" in a and "pk=pk_test_" in a for a in actions)

    # Signing while framed: the thank-you page tells the host page, once.
    assert client.post(f"{path}code{query}").status_code == 303
    done = client.post(f"{path}sign{query}", {"code": last_code(), "consent": "1"})
    assert done.status_code == 303
    location = done["Location"]
    assert parse_qs(urlsplit(location).query)["done"] == ["signed"]
    thanks = client.get(location)
    assert thanks.status_code == 200
    assert 'data-scell-event="signer.signed"' in html(thanks)
    assert f"frame-ancestors {WIDGET_ORIGIN}" in thanks["Content-Security-Policy"]
    assert 'id="scell-close"' in html(thanks)
    later = client.get(path + query)
    assert "data-scell-event=" not in html(later)


def test_framed_page_over_https_gets_a_cross_site_csrf_cookie(tenant_a) -> None:
    # Inside a cross-site iframe a browser withholds a SameSite=Lax cookie: the framed forms need None.
    _, (path, _) = create(tenant_a)
    framed = Client().get(path + embed_query(tenant_a.keys["pk_test"]), secure=True)
    cookie = framed.cookies["csrftoken"]
    assert cookie["samesite"] == "None" and cookie["secure"] is True
    top_level = Client().get(path, secure=True)
    assert top_level.cookies["csrftoken"]["samesite"] == "Lax"


def test_embed_refused_without_a_valid_key(client, tenant_a, tenant_b) -> None:
    _, (path, _) = create(tenant_a)
    revoked = ApiKey.objects.filter(tenant=tenant_a.tenant, kind="publishable", livemode=False)
    cases = [
        embed_query("pk_test_not-a-key"),
        embed_query(tenant_a.keys["sk_test"]),  # a secret key is not a publishable key
        embed_query(tenant_b.keys["pk_test"]),  # another tenant's key
        embed_query(tenant_a.keys["pk_live"]),  # live key, sandbox request
        embed_query(tenant_a.keys["pk_test"], origin="https://evil.example.net"),
        f"?embed=1&origin={WIDGET_ORIGIN}",
    ]
    for query in cases:
        response = client.get(path + query)
        assert response.status_code == 200
        assert response["X-Frame-Options"] == "DENY", query
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"], query
        assert "data-scell-origin" not in html(response)
    revoked.update(revoked_at=timezone.now())
    assert client.get(path + embed_query(tenant_a.keys["pk_test"]))["X-Frame-Options"] == "DENY"


# --- Completed requests and the verification page -----------------------------------------------------
@pytest.fixture
def completed(client, tenant_a):
    request, paths = create(tenant_a, order="parallel")
    sign_via_page(client, paths[0], phone=PEOPLE[0].phone)
    sign_via_page(client, paths[1], phone=PEOPLE[1].phone)
    services.signature_request_finalize(request_id=str(request.id))
    request.refresh_from_db()
    assert request.status == SignatureRequest.Status.COMPLETED
    with request.final_file.open("rb") as handle:
        final = handle.read()
    return request, paths, final


def test_completed_request_offers_the_signed_pdf(client, completed) -> None:
    _, (path, _), final = completed
    page = client.get(path)
    assert page.status_code == 200 and "Download the signed document (PDF)" in html(page)
    assert f'href="{path}signed.pdf"' in html(page)
    signed = client.get(f"{path}signed.pdf")
    assert signed.status_code == 200 and signed["Content-Type"] == "application/pdf"
    assert b"".join(signed.streaming_content) == final
    assert 'filename="contract-signed.pdf"' in signed["Content-Disposition"]


def test_verify_an_intact_sealed_pdf(client, completed) -> None:
    request, _, final = completed
    response = client.post("/verify/", {"document": SimpleUploadedFile("x.pdf", final, "application/pdf")})
    assert response.status_code == 200
    verdict = response.context["verdict"]
    assert verdict.outcome == "valid" and verdict.matched == "final" and verdict.signature == request
    page = html(response)
    assert "Sealed by Scell on" in page and "intact." in page
    assert 'data-testid="signer-count">2<' in page
    assert request.final_sha256 in page
    # Nothing personal about the request.
    for personal in ("Élodie", "Martin", "elodie@example.com", "+336", "Contrat"):
        assert personal not in page


def test_verify_a_modified_sealed_pdf(client, completed) -> None:
    _, _, final = completed
    tampered = bytearray(final)
    tampered[len(tampered) // 2] ^= 0x01
    response = client.post(
        "/verify/", {"document": SimpleUploadedFile("x.pdf", bytes(tampered), "application/pdf")}
    )
    assert response.status_code == 200
    assert response.context["verdict"].outcome == "modified"
    assert "This document was modified after it was sealed." in html(response)


def test_verify_by_hash_and_by_request_id(client, completed) -> None:
    request, _, _ = completed
    known = client.post("/verify/", {"sha256": request.final_sha256.upper()})
    assert known.status_code == 200 and known.context["verdict"].outcome == "known"
    assert "Fingerprint of the signed document" in html(known)
    evidence = client.post("/verify/", {"sha256": request.evidence_sha256})
    assert "Fingerprint of the evidence file" in html(evidence)

    lookup = client.get(f"/verify/?request={request.id}")
    assert lookup.status_code == 200
    page = html(lookup)
    assert 'data-testid="request-status">signed by everybody<' in page
    assert 'data-testid="signer-count">2<' in page
    fingerprint = services.pdf_tools.seal_certificate_info()["sha256_fingerprint"]
    assert f'data-testid="certificate-fingerprint">{fingerprint}<' in page
    assert "SANDBOX — no legal value" in page
    for personal in ("Élodie", "elodie@example.com", "Contrat", "Alpha SAS"):
        assert personal not in page


def test_verify_unknown_and_unsealed(client, tenant_a) -> None:
    unknown = client.post("/verify/", {"sha256": "ab" * 32})
    assert unknown.status_code == 200
    assert "Not a document sealed by Scell." in html(unknown)
    assert unknown["Referrer-Policy"] == "same-origin" and unknown["X-Frame-Options"] == "DENY"

    create(tenant_a)
    original = client.post("/verify/", {"document": SimpleUploadedFile("c.pdf", PDF, "application/pdf")})
    assert original.context["verdict"].outcome == "not_sealed"
    assert original.context["verdict"].matched == "original"
    assert "original, unsigned document" in html(original)

    not_pdf = client.post("/verify/", {"document": SimpleUploadedFile("n.pdf", b"hello", "application/pdf")})
    assert not_pdf.status_code == 200 and not_pdf.context["verdict"].outcome == "not_sealed"


def test_verify_rejects_bad_input(client) -> None:
    assert client.get("/verify/").status_code == 200
    assert client.post("/verify/", {}).status_code == 400
    malformed = client.post("/verify/", {"sha256": "xyz"})
    assert malformed.status_code == 400 and "64 hexadecimal characters" in html(malformed)
    big = SimpleUploadedFile("big.pdf", b"%PDF-1.7\n" + b"0" * (20 * 1024 * 1024), "application/pdf")
    too_big = client.post("/verify/", {"document": big})
    assert too_big.status_code == 413 and "larger than 20 MB" in html(too_big)
    assert client.get("/verify/?request=not-a-uuid").status_code == 404
    assert client.get("/verify/?request=4b0e7a5e-8d7c-4f43-9d55-0b9c5d8f1a2b").status_code == 404
