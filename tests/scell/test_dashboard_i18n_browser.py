"""In a real browser: the dashboard speaks French to a French tenant, the language switcher changes it and
is remembered, and a member of another tenant who opens a tenant's invoice URL gets a 404."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from rest_framework.test import APIClient

from invoicing.models import Invoice
from scell.models import Membership, User
from scell.services import tenant_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-9"


def sign_in(page, email: str, submit: str) -> None:
    page.goto("/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name=submit).click()
    page.wait_for_load_state()


def test_french_by_default_then_switched_to_english_and_remembered(browser_page, transactional_db) -> None:
    user = User.objects.create_user("camille@example.com", PASSWORD, language="")
    tenant_create(legal_name="Atelier Lumière SAS", siren="732829320", identifier="LUMIE", owner=user)
    # The browser asks for English: a French tenant's default still wins until the user chooses.
    page = browser_page(height=720)
    sign_in(page, user.email, "Sign in")  # the sign-in page follows the browser (English)

    assert page.locator("html").get_attribute("lang") == "fr"
    nav = page.get_by_role("navigation", name="Principal")
    assert nav.get_by_role("link", name="Factures").is_visible()
    assert page.get_by_role("button", name="Se déconnecter").is_visible()

    with page.expect_navigation():
        page.get_by_test_id("language").select_option("en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices").is_visible()
    user.refresh_from_db()
    assert user.language == "en"

    # Remembered on the user: a fresh browser session (no cookie) signs in to English pages.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")
    page.context.clear_cookies()
    sign_in(page, user.email, "Sign in")
    assert page.locator("html").get_attribute("lang") == "en"

    with page.expect_navigation():
        page.get_by_test_id("language").select_option("fr")
    assert page.get_by_role("button", name="Se déconnecter").is_visible()


def test_member_of_tenant_b_gets_404_on_tenant_a_invoice(browser_page, transactional_db, draft_body) -> None:
    alice = User.objects.create_user("alice@example.com", PASSWORD)
    created = tenant_create(legal_name="Alpha SAS", siren="732829320", identifier="ALPHA", owner=alice)
    tenant_a = created.tenant
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=created.keys["sk_test"].raw)
    answer = api.post("/api/v1/invoices", draft_body, format="json")
    assert answer.status_code == 201, answer.content
    invoice = Invoice.objects.get(pk=answer.json()["id"])
    bob = User.objects.create_user("bob@example.com", PASSWORD)
    tenant_create(legal_name="Beta SARL", siren="552100554", identifier="BETA2", owner=bob)

    owner_page = browser_page(height=720)
    sign_in(owner_page, alice.email, "Sign in")
    assert owner_page.goto(f"/invoices/{invoice.pk}/").status == 200

    other = owner_page.context.browser.new_context(
        base_url="{0.scheme}://{0.netloc}".format(urlsplit(owner_page.url)), locale="en-US"
    )
    try:
        page = other.new_page()
        sign_in(page, bob.email, "Sign in")
        answer = page.goto(f"/invoices/{invoice.pk}/")
        assert answer.status == 404
        assert page.get_by_test_id("not-found").is_visible()
        assert invoice.buyer["name"] not in page.content()
        # The tenant switcher offers only Bob's own tenant.
        assert page.locator("#tenant-switch option").all_inner_texts() == ["Beta SARL (BETA2)"]
        assert not Membership.objects.filter(user=bob, tenant=tenant_a).exists()
    finally:
        other.close()
