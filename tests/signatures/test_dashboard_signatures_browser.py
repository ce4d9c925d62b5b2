"""The whole story in Chromium: the sender creates a request in the dashboard (PDF, one signer), the
signer opens the link from the invitation e-mail, receives the SMS code (the sandbox's in-memory SMS
outbox, as in test_signing_browser) and signs; the sender sees the request completed, each signer's
state, and downloads the sealed PDF."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.cache import cache

from signatures import sms
from signatures.models import SignatureRequest
from tests.signatures.test_signing_page import PDF, last_code

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("require_postgres"),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct-horse-battery-9"


@pytest.fixture(autouse=True)
def _backends(settings, tmp_path):
    # live_server answers from another thread of this process: it sees these settings and fills the
    # same in-memory SMS and e-mail outboxes.
    settings.SIGNATURE_SMS_BACKEND = "signatures.sms.LocmemSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SIGNATURE_DEV_SEAL_DIR = str(tmp_path / "seal")
    sms.outbox.clear()
    cache.clear()


@pytest.fixture
def sender(browser_page):
    return browser_page()


@pytest.fixture
def signer_page(browser_page):
    return browser_page(width=390, height=844)


def test_create_sign_and_download(sender, signer_page, tenant_a, stub_worker, tmp_path) -> None:
    sender.goto("/login/")
    sender.fill("#id_email", tenant_a.owner.email)
    sender.fill("#id_password", PASSWORD)
    sender.get_by_role("button", name="Sign in").click()
    sender.wait_for_load_state()
    sender.get_by_role("link", name="Signatures", exact=True).click()
    sender.wait_for_url("**/signatures/")

    # A request with an error first: it is shown next to the phone field, and the rest is kept.
    create = sender.get_by_test_id("create-signature-request")
    create.get_by_label("PDF document").set_input_files(
        {"name": "contrat.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    create.get_by_label("Title").fill("Contrat de prestation")
    create.get_by_label("Sequential").check()
    create.get_by_label("Language of the e-mails and the signing page").select_option("en")
    row = create.get_by_test_id("signer-row").first
    row.get_by_label("Name").fill("Élodie Martin")
    row.get_by_label("E-mail").fill("elodie@example.com")
    row.get_by_label("Mobile phone").fill("0612345678")
    create.get_by_role("button", name="Send for signature").click()
    sender.wait_for_load_state()
    phone = sender.locator("#id_signers-0-phone")
    assert phone.get_attribute("aria-invalid") == "true"
    assert "E.164" in sender.locator("#id_signers-0-phone_error").inner_text()
    assert not SignatureRequest.objects.exists()

    create = sender.get_by_test_id("create-signature-request")
    assert create.get_by_test_id("signer-row").first.get_by_label("Name").input_value() == "Élodie Martin"
    create.get_by_label("PDF document").set_input_files(
        {"name": "contrat.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    phone.fill("+33 6 12 34 56 78")
    create.get_by_role("button", name="Send for signature").click()
    sender.wait_for_url(re.compile(r"/signatures/[0-9a-f-]{36}/$"))
    assert sender.get_by_text("The signature request was sent.").is_visible()
    assert sender.get_by_test_id("status").inner_text() == "waiting for signers"
    signer_row = sender.get_by_test_id("signer")
    assert "invited" in signer_row.get_by_test_id("signer-status").inner_text()
    request = SignatureRequest.objects.get()
    assert request.order == "sequential" and request.locale == "en"

    # The signer: the link of the invitation e-mail (sent by the notification actor after commit).
    stub_worker.join("signatures")
    invitation = next(m for m in mail.outbox if m.to == ["elodie@example.com"])
    link = urlsplit(re.search(r"https?://\S+/sign/[A-Za-z0-9_-]+/", invitation.body).group(0)).path
    assert signer_page.goto(link).status == 200
    signer_page.locator("#consent").check()
    signer_page.get_by_role("button", name="Send me a code by SMS").click()
    signer_page.get_by_test_id("code-sent").wait_for()
    signer_page.get_by_label("Code received by SMS (6 digits)").fill(last_code("+33612345678"))
    signer_page.get_by_role("button", name="Sign", exact=True).click()
    signer_page.wait_for_url(re.compile(r"\?done=signed$"))

    # Sealing runs in an actor once the last signature is committed.
    stub_worker.join("signatures")
    request.refresh_from_db()
    assert request.status == SignatureRequest.Status.COMPLETED, request.status
    sender.reload()
    assert sender.get_by_test_id("status").inner_text() == "completed"
    assert "signed" in sender.get_by_test_id("signer-status").inner_text()
    assert sender.get_by_test_id("completed-at").is_visible()
    events = sender.get_by_test_id("events").inner_text()
    for action in ("signer.signed", "document.sealed", "request.completed"):
        assert action in events
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sender.screenshot(path=str(SCREENSHOTS / "signatures.png"), full_page=True)

    with sender.expect_download() as download_info:
        sender.get_by_role("link", name="Download the signed PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"{request.pk}-signed.pdf"
    saved = tmp_path / "signed.pdf"
    download.save_as(saved)
    content = saved.read_bytes()
    assert content.startswith(b"%PDF")
    assert hashlib.sha256(content).hexdigest() == request.final_sha256
