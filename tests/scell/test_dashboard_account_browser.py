"""The account area in a real browser: an admin enrols an authenticator app, signs in again with password
and code, fills in the legal profile (with a logo), invites a teammate, who accepts in another browser.

Playwright drives Debian's Chromium (``/usr/bin/chromium``); screenshots go to docs/screenshots."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice
from PIL import Image

from scell.models import Invitation, Membership, Tenant, User
from scell.services import tenant_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
EMAIL = "alice@example.com"
PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def alice(transactional_db) -> User:
    user = User.objects.create_user(EMAIL, PASSWORD, full_name="Alice Martin")
    tenant_create(legal_name="Alpha Conseil SAS", siren="732829320", identifier="ALPHA", owner=user)
    return user


def path_of(page) -> str:
    return urlsplit(page.url).path


def code_at(device: TOTPDevice, counter: int) -> str:
    """The code of time step ``counter`` (TOTP is HOTP of the step number, RFC 6238)."""
    return f"{hotp(device.bin_key, counter - device.t0 // device.step, digits=device.digits):06d}"


def png_logo() -> bytes:
    image = Image.new("RGB", (240, 80), (37, 70, 214))
    for x in range(20, 60):
        for y in range(20, 60):
            image.putpixel((x, y), (255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def sign_in(page, email: str = EMAIL, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_totp_sign_in_profile_and_invitation(browser_page, alice) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser_page()

    # 1. Enrol an authenticator app.
    sign_in(page)
    assert path_of(page) == "/"
    page.get_by_role("link", name="Security").click()
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_load_state()
    device = TOTPDevice.objects.get(user=alice, confirmed=False)
    assert page.get_by_test_id("totp-secret").inner_text().strip()
    enrol_step = int(time.time()) // device.step
    page.get_by_label("6-digit code from your authenticator app").fill(code_at(device, enrol_step))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()
    assert page.get_by_text("Two-factor authentication is on.").is_visible()

    # 2. Sign out; signing in again asks for a code after the password.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")
    assert page.get_by_test_id("forgot-password").is_visible()
    sign_in(page)
    assert path_of(page) == "/login/verify/"
    page.goto("/settings/")  # the password alone opens no session
    assert path_of(page) == "/login/"
    page.goto("/login/verify/")
    device.refresh_from_db()
    # A code is accepted once: use the step after the enrolment's (one step of clock skew is allowed).
    step = max(int(time.time()) // device.step, enrol_step + 1)
    page.get_by_label("6-digit code from your authenticator app").fill(code_at(device, step))
    page.screenshot(path=str(SCREENSHOTS / "login-totp.png"), full_page=True)
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/")

    # 3. The legal profile, with a logo.
    page.get_by_role("link", name="Legal profile").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("identifier").inner_text() == "ALPHA"
    assert page.locator("#id_identifier").count() == 0
    form = page.get_by_test_id("profile-form")
    form.get_by_label("SIRET").fill("732 829 320 00074")
    form.get_by_label("VAT id").fill("FR 44 732829320")
    form.get_by_label("Legal form and capital").fill("SAS au capital de 10 000 €")
    form.get_by_label("Trade register (RCS)").fill("RCS Paris 732 829 320")
    form.get_by_label("Address", exact=True).fill("12 rue de la Paix")
    form.get_by_label("Postcode").fill("75002")
    form.get_by_label("City").fill("Paris")
    form.get_by_label("Billing e-mail").fill("facturation@alpha.example")
    form.get_by_label("IBAN").fill("FR76 3000 6000 0112 3456 7890 189")
    form.get_by_label("BIC").fill("AGRIFRPP")
    form.get_by_label("Invoice footer").fill("Alpha Conseil SAS – 12 rue de la Paix, 75002 Paris")
    form.get_by_label("Default payment term (days)").fill("45")
    form.get_by_label("Payment terms text").fill("Paiement à 45 jours par virement")
    penalty = form.get_by_label("Late payment penalties (PMD)")
    assert "trois fois le taux d'intérêt légal" in (penalty.get_attribute("placeholder") or "")
    page.set_input_files(
        "#id_logo", files=[{"name": "logo.png", "mimeType": "image/png", "buffer": png_logo()}]
    )
    page.get_by_role("button", name="Save the legal profile").click()
    page.wait_for_load_state()
    assert page.get_by_text("Legal profile saved.").is_visible()
    logo = page.get_by_test_id("logo")
    assert logo.is_visible()
    assert logo.evaluate("img => img.naturalWidth") == 240
    tenant = Tenant.objects.get(identifier="ALPHA")
    assert (tenant.siret, tenant.vat_id, tenant.iban, tenant.payment_days) == (
        "73282932000074",
        "FR44732829320",
        "FR7630006000011234567890189",
        45,
    )
    page.screenshot(path=str(SCREENSHOTS / "settings-profile.png"), full_page=True)

    # 4. Invite a teammate.
    mail.outbox.clear()
    page.get_by_role("link", name="Team").click()
    page.wait_for_load_state()
    invite = page.get_by_test_id("invite-form")
    invite.get_by_label("E-mail").fill("nina@example.com")
    invite.get_by_label("Role").select_option("member")
    page.get_by_role("button", name="Send the invitation").click()
    page.wait_for_load_state()
    assert page.get_by_text("Invitation sent to nina@example.com.").is_visible()
    row = page.locator("[data-testid=invitation][data-email='nina@example.com']")
    assert row.is_visible()
    assert "member" in row.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "settings-team.png"), full_page=True)

    # 5. The teammate accepts in another browser.
    deadline = time.time() + 10
    while not mail.outbox and time.time() < deadline:
        time.sleep(0.1)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["nina@example.com"]
    link = re.search(r"https?://\S+/invite/\S+/", mail.outbox[0].body).group(0)
    nina = browser_page()
    nina.goto(urlsplit(link).path)
    assert nina.get_by_role("heading", name="Join Alpha Conseil SAS").is_visible()
    nina.get_by_label("Full name").fill("Nina Simone")
    nina.get_by_label(re.compile(r"^Password\W*$")).fill("blue-velvet-piano-77")
    nina.get_by_label("Password (again)").fill("blue-velvet-piano-77")
    nina.get_by_role("button", name="Create my account and join").click()
    nina.wait_for_url(lambda url: urlsplit(url).path == "/")
    assert nina.get_by_text("Welcome to Alpha Conseil SAS.").is_visible()
    assert nina.locator("#tenant-switch option:checked").inner_text() == "Alpha Conseil SAS (ALPHA)"
    assert Membership.objects.get(user__email="nina@example.com").role == "member"
    assert Invitation.objects.get().accepted_at is not None

    # The admin sees the new member; the link no longer works.
    page.reload()
    assert page.locator("[data-testid=member][data-email='nina@example.com']").is_visible()
    assert page.locator("[data-testid=invitation]").count() == 0
    again = browser_page()
    again.goto(urlsplit(link).path)
    assert again.get_by_test_id("invite-problem").inner_text() == "This invitation has already been used."
