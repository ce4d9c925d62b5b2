"""The dashboard shell in a real browser: sign-in (with TOTP), tenant switcher, sandbox/live switch.

Playwright drives Debian's Chromium (``/usr/bin/chromium``, installed by ``scripts/setup --dev``); the
browsers of ``playwright install`` are never used.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from scell.models import Membership, User
from scell.services import tenant_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EMAIL = "alice@example.com"
PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def page(browser_page):
    return browser_page(height=800)


@pytest.fixture
def alice(transactional_db) -> User:
    user = User.objects.create_user(EMAIL, PASSWORD, full_name="Alice")
    tenant_create(legal_name="Alpha Conseil SAS", siren="732829320", identifier="ALPHA", owner=user)
    return user


def sign_in(page, email: str = EMAIL, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")


def path_of(page) -> str:
    from urllib.parse import urlsplit

    return urlsplit(page.url).path


def test_wrong_password_shows_an_error(page, alice) -> None:
    sign_in(page, password="not-the-password")
    assert path_of(page) == "/login/"
    error = page.locator("p.error[role=alert]")
    assert error.inner_text() == "E-mail or password is incorrect."
    # Still signed out: the home page sends back to the login page.
    page.goto("/")
    assert path_of(page) == "/login/"


def test_login_lands_on_home_with_tenant_and_sandbox_badge(page, alice) -> None:
    sign_in(page, email=EMAIL.upper())
    assert path_of(page) == "/"
    assert page.locator("h1").inner_text() == "Alpha Conseil SAS"
    assert page.get_by_test_id("identifier").inner_text() == "ALPHA"
    assert page.get_by_test_id("mode").inner_text() == "Sandbox"
    assert page.locator(".sandbox-banner").is_visible()
    assert page.locator("#tenant-switch option:checked").inner_text() == "Alpha Conseil SAS (ALPHA)"
    # Sandbox keys are listed by prefix only.
    codes = page.locator("table code").all_inner_texts()
    assert codes
    assert all("_test_" in code for code in codes)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-home.png"), full_page=True)


def test_login_redirects_to_next(page, alice) -> None:
    page.goto("/settings/security/")
    assert path_of(page) == "/login/"
    page.fill("#id_email", EMAIL)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/settings/security/")


def test_switch_to_live_and_back(page, alice) -> None:
    sign_in(page)
    page.get_by_role("button", name="Switch to live").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("mode").inner_text() == "Live"
    assert page.locator(".sandbox-banner").count() == 0
    codes = page.locator("table code").all_inner_texts()
    assert codes
    assert all("_live_" in code for code in codes)
    # The mode is kept in the session.
    page.reload()
    assert page.get_by_test_id("mode").inner_text() == "Live"

    page.get_by_role("button", name="Switch to sandbox").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("mode").inner_text() == "Sandbox"
    assert page.locator(".sandbox-banner").is_visible()


def test_member_of_two_tenants_switches_with_the_selector(page, alice) -> None:
    other = tenant_create(legal_name="Beta Industrie SARL", siren="552100554", identifier="BETA2").tenant
    Membership.objects.create(user=alice, tenant=other, role=Membership.Role.MEMBER)
    # A tenant Alice does not belong to is not offered.
    tenant_create(legal_name="Gamma SA", siren="443061841", identifier="GAMMA")

    sign_in(page)
    assert page.locator("h1").inner_text() == "Alpha Conseil SAS"
    options = page.locator("#tenant-switch option").all_inner_texts()
    assert options == ["Alpha Conseil SAS (ALPHA)", "Beta Industrie SARL (BETA2)"]

    with page.expect_navigation():
        page.select_option("#tenant-switch", label="Beta Industrie SARL (BETA2)")
    assert path_of(page) == "/"
    assert page.locator("h1").inner_text() == "Beta Industrie SARL"
    assert page.get_by_test_id("identifier").inner_text() == "BETA2"
    assert page.locator("#tenant-switch option:checked").inner_text() == "Beta Industrie SARL (BETA2)"
    page.reload()
    assert page.get_by_test_id("identifier").inner_text() == "BETA2"

    with page.expect_navigation():
        page.select_option("#tenant-switch", label="Alpha Conseil SAS (ALPHA)")
    assert page.get_by_test_id("identifier").inner_text() == "ALPHA"


def totp_code(secret_b32: str, counter: int) -> str:
    return f"{hotp(base64.b32decode(secret_b32), counter, digits=6):06d}"


def test_totp_enrolment_then_sign_in_asks_for_the_code(page, alice) -> None:
    sign_in(page)
    page.goto("/settings/security/")
    assert page.get_by_test_id("totp-status").inner_text() == "Off."
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_load_state()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    assert len(base64.b32decode(secret)) == 20
    assert page.locator("img[src^='data:image/svg+xml']").is_visible()

    # A wrong code does not turn it on.
    step = int(time.time()) // 30
    valid_near = {totp_code(secret, step + d) for d in range(-2, 4)}
    wrong = next(c for c in (f"{n:06d}" for n in range(100000, 999999, 7919)) if c not in valid_near)
    page.fill("#id_token", wrong)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()
    assert page.locator("p.error[role=alert]").inner_text() == "This code is not valid."
    assert not TOTPDevice.objects.filter(user=alice, confirmed=True).exists()
    time.sleep(1.2)  # django-otp throttles the next attempt for 1 s after a failure

    step = int(time.time()) // 30
    page.fill("#id_token", totp_code(secret, step))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()
    assert page.get_by_text("Two-factor authentication is on.").is_visible()
    assert page.get_by_test_id("totp-status").is_visible()
    assert TOTPDevice.objects.filter(user=alice, confirmed=True).count() == 1
    confirmed_step = step

    sign_out(page)
    sign_in(page)
    assert path_of(page) == "/login/verify/"
    # The password alone opens no session.
    page.goto("/")
    assert path_of(page) == "/login/"
    page.goto("/login/verify/")

    page.fill("#id_token", wrong)
    page.get_by_role("button", name="Verify").click()
    page.wait_for_load_state()
    assert path_of(page) == "/login/verify/"
    assert page.locator("p.error[role=alert]").inner_text() == "This code is not valid."
    time.sleep(1.2)

    # A code is accepted once: if the enrolment code's 30-second step is not over, use the next one
    # (django-otp accepts one step of clock skew).
    step = max(int(time.time()) // 30, confirmed_step + 1)
    page.fill("#id_token", totp_code(secret, step))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(lambda url: url.endswith("/"))
    assert path_of(page) == "/"
    assert page.locator("h1").inner_text() == "Alpha Conseil SAS"
    assert page.get_by_test_id("mode").inner_text() == "Sandbox"
