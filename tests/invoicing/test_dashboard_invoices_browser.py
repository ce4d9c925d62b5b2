"""Invoices in a real browser (Debian's Chromium through Playwright): a draft with two lines whose totals
the server recomputes while they are typed, issued after the confirmation step, its Factur-X downloaded;
and a draft the French rules refuse, with the rule id shown next to the field. Saves the screenshots of
the invoice pages."""

from __future__ import annotations

from pathlib import Path

import facturx
import pytest
from lxml import etree
from playwright.sync_api import expect

from invoicing.models import Invoice

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("require_postgres"),
]

PASSWORD = "correct-horse-battery-9"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def page(browser_page):
    return browser_page(timeout_ms=20_000)


def sign_in(page, email: str) -> None:
    page.goto("/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def fill_buyer(page, *, name: str) -> None:
    page.fill("#id_buyer_name", name)
    page.fill("#id_buyer_siren", "552100554")
    page.fill("#id_buyer_vat_id", "FR40552100554")
    page.fill("#id_buyer_email", "ap@client.example")
    page.fill("#id_buyer_line1", "1 rue de la Paix")
    page.fill("#id_buyer_postcode", "75002")
    page.fill("#id_buyer_city", "Paris")
    page.select_option("#id_operation_category", "services")
    page.fill("#id_purchase_order_ref", "PO-4711")


def fill_line(page, index: int, *, description: str, quantity: str, price: str, rate: str, unit: str = "C62"):
    page.fill(f"#id_lines-{index}-description", description)
    page.fill(f"#id_lines-{index}-quantity", quantity)
    page.select_option(f"#id_lines-{index}-unit_code", unit)
    page.fill(f"#id_lines-{index}-unit_price", price)
    page.fill(f"#id_lines-{index}-vat_rate", rate)


def test_create_issue_and_download_in_the_browser(page, seller) -> None:
    sign_in(page, seller.owner.email)
    page.get_by_role("link", name="Invoices", exact=True).click()
    page.wait_for_url("**/invoices/")
    page.get_by_test_id("new-invoice").click()
    page.wait_for_url("**/invoices/new/")

    fill_buyer(page, name="Client SARL")
    fill_line(page, 0, description="Consulting", quantity="2", price="450", rate="20", unit="HUR")
    totals = page.locator("#invoice-totals")
    # The server's computation answers while the user types (htmx), nothing is saved.
    expect(totals.get_by_test_id("total-with-vat")).to_have_attribute("data-amount", "1080.00")
    expect(page.locator("#lines-0-net")).to_have_text("900.00")

    page.get_by_test_id("add-line").click()  # a copy of the empty row, without a round trip
    expect(page.get_by_test_id("line-row")).to_have_count(2)
    fill_line(page, 1, description="Books", quantity="3", price="33.33", rate="5.5")
    expect(totals.get_by_test_id("total-without-vat")).to_have_attribute("data-amount", "999.99")
    expect(totals.get_by_test_id("total-vat")).to_have_attribute("data-amount", "185.50")
    expect(totals.get_by_test_id("total-with-vat")).to_have_attribute("data-amount", "1185.49")
    expect(page.locator("#lines-1-net")).to_have_text("99.99")
    assert not Invoice.objects.exists()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "invoice-edit.png"), full_page=True)

    page.get_by_test_id("save-and-issue").click()
    page.wait_for_url("**/issue/")
    draft = Invoice.objects.get()
    assert draft.status == "draft" and draft.lines.count() == 2
    expect(page.get_by_test_id("issue-confirm")).to_contain_text("1185.49")
    page.get_by_test_id("confirm-issue").click()
    page.wait_for_url(f"**/invoices/{draft.pk}/")
    invoice = Invoice.objects.get()
    assert invoice.status == "issued"
    expect(page.get_by_text(f"Invoice {invoice.number} is issued.")).to_be_visible()
    expect(page.get_by_test_id("number")).to_have_text(invoice.number)
    expect(page.get_by_test_id("total")).to_contain_text("1185.49")

    with page.expect_download() as download_info:
        page.locator("[data-testid=downloads] a[data-format=facturx]").click()
    download = download_info.value
    assert download.suggested_filename == f"{invoice.number}.pdf"
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"%PDF")
    filename, xml = facturx.get_xml_from_pdf(content, check_xsd=False)
    assert filename == "factur-x.xml"
    assert etree.fromstring(xml).findtext("{*}ExchangedDocument/{*}ID") == invoice.number
    page.screenshot(path=str(SCREENSHOTS / "invoice-detail.png"), full_page=True)


def test_a_refused_draft_shows_the_rule_next_to_the_field(page, seller) -> None:
    sign_in(page, seller.owner.email)
    page.goto("/invoices/new/")
    fill_buyer(page, name="Client SARL")
    fill_line(page, 0, description="Consulting", quantity="2", price="450", rate="19")  # not a French rate
    expect(page.locator("#invoice-totals").get_by_test_id("total-with-vat")).to_have_attribute(
        "data-amount", "1071.00"
    )
    page.get_by_test_id("save-and-issue").click()
    page.wait_for_url("**/issue/")
    page.get_by_test_id("confirm-issue").click()
    page.wait_for_load_state()

    summary = page.get_by_test_id("error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("The invoice was not issued")
    expect(summary.locator('[data-rule="BR-FR-16"]')).to_have_count(1)
    rate = page.locator("#id_lines-0-vat_rate")
    expect(rate).to_have_attribute("aria-invalid", "true")
    error = page.locator("#id_lines-0-vat_rate_error")
    expect(error).to_contain_text("BR-FR-16")
    assert rate.get_attribute("aria-describedby") == "id_lines-0-vat_rate_error"
    assert Invoice.objects.get().status == "draft"

    # Corrected next to the field, the draft is issued.
    rate.fill("20")
    page.get_by_test_id("save-and-issue").click()
    page.wait_for_url("**/issue/")
    page.get_by_test_id("confirm-issue").click()
    page.wait_for_load_state()
    assert Invoice.objects.get().status == "issued"

    page.get_by_role("link", name="Invoices", exact=True).click()
    page.wait_for_url("**/invoices/")
    page.goto("/invoices/new/")
    fill_buyer(page, name="Boulangerie Martin")
    fill_line(page, 0, description="Pain", quantity="10", price="1.20", rate="5.5")
    page.get_by_test_id("save").click()
    page.wait_for_load_state()
    page.goto("/invoices/")
    expect(page.get_by_test_id("invoice")).to_have_count(2)
    page.screenshot(path=str(SCREENSHOTS / "invoices-list.png"), full_page=True)
