"""A real signing in Chromium on a phone-sized screen (390 x 844): read the pages, accept, get the SMS
code, sign; and the second signer of a sequential request, who must wait for the first."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.cache import cache

from signatures import sms
from signatures.models import Signer
from tests.signatures.test_signing_page import PEOPLE, create, last_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(autouse=True)
def _backends(settings, tmp_path):
    # live_server answers from another thread of this process: it sees these settings and fills the
    # same locmem SMS outbox.
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SIGNATURE_DEV_SEAL_DIR = str(tmp_path / "seal")
    sms.outbox.clear()
    cache.clear()


def real_errors(errors: list[str]) -> list[str]:
    # Chromium logs every non-2xx document as "Failed to load resource"; a 409 page is expected here.
    return [e for e in errors if not e.startswith("Failed to load resource")]


def test_sign_on_a_phone(phone, tenant_a, browser_errors) -> None:
    request, (path, _) = create(tenant_a)
    response = phone.goto(path)
    assert response.status == 200
    assert phone.locator("h1").inner_text() == "Contrat"
    assert phone.get_by_text("SANDBOX — no legal value").is_visible()
    images = phone.locator("img.page-image")
    assert images.count() == 2
    phone.wait_for_function(
        "() => { const i = document.querySelector('img.page-image');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    # Made for the phone: the page image fits the screen and nothing scrolls sideways.
    box = images.first.bounding_box()
    assert box["width"] <= 390
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390

    phone.locator("#consent").check()
    phone.get_by_role("button", name="Send me a code by SMS").click()
    sent = phone.get_by_test_id("code-sent")
    sent.wait_for()
    assert "Code sent to +33 6•• ••• •78" in sent.inner_text()
    # The code was asked for in the background: the consent box is still ticked.
    assert phone.locator("#consent").is_checked()
    assert len(sms.outbox) == 1

    phone.get_by_label("Code received by SMS (6 digits)").fill(last_code())
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "signing-phone.png"), full_page=True)
    phone.get_by_role("button", name="Sign", exact=True).click()
    phone.wait_for_url(re.compile(r"\?done=signed$"))
    assert phone.locator("h1").inner_text() == "Thank you, Élodie Martin!"
    phone.screenshot(path=str(ARTIFACTS / "signing-phone-done.png"), full_page=True)
    signer = request.signers.get(position=1)
    assert signer.status == Signer.Status.SIGNED
    assert signer.user_agent  # the browser's, recorded for the evidence
    assert real_errors(browser_errors) == []


def test_sign_without_javascript(browser_page, tenant_a) -> None:
    """The plain forms alone are enough (the code request reloads the page)."""
    # Playwright's defaults otherwise: the browser's own locale, 30 s timeouts.
    page = browser_page(locale=None, width=390, height=844, timeout_ms=30_000, java_script_enabled=False)
    request, (path, _) = create(tenant_a)
    page.goto(path)
    page.get_by_role("button", name="Send me a code by SMS").click()
    page.get_by_test_id("code-sent").wait_for()
    page.locator("#consent").check()
    page.get_by_label("Code received by SMS (6 digits)").fill(last_code())
    page.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_url(re.compile(r"\?done=signed$"))
    assert page.locator("h1").inner_text() == "Thank you, Élodie Martin!"
    assert request.signers.get(position=1).status == Signer.Status.SIGNED


def test_second_signer_waits_for_the_first(phone, tenant_a, stub_worker, browser_errors) -> None:
    _, (first, second) = create(tenant_a)
    response = phone.goto(second)
    assert response.status == 409
    assert phone.locator("h1").inner_text() == "Not your turn yet"
    assert "It is not your turn yet" in phone.get_by_test_id("state-message").inner_text()

    phone.goto(first)
    phone.locator("#consent").check()
    phone.get_by_role("button", name="Send me a code by SMS").click()
    phone.get_by_test_id("code-sent").wait_for()
    phone.get_by_label("Code received by SMS (6 digits)").fill(last_code(PEOPLE[0].phone))
    phone.get_by_role("button", name="Sign", exact=True).click()
    phone.wait_for_url(re.compile(r"\?done=signed$"))

    # The second signer is e-mailed a fresh link (by the notification actor, after commit).
    stub_worker.join("signatures")
    invitation = next(m for m in mail.outbox if m.to == [PEOPLE[1].email])
    fresh = urlsplit(re.search(r"https?://\S+/sign/[A-Za-z0-9_-]+/", invitation.body).group(0)).path
    assert phone.goto(fresh).status == 200
    assert phone.locator("h1").inner_text() == "Contrat"
    assert phone.get_by_role("button", name="Send me a code by SMS").is_visible()
    assert real_errors(browser_errors) == []
