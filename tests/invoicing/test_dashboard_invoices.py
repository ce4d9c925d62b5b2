"""Invoices in the dashboard: the list with search and filters, drafts written with a formset of lines and
live totals (the services' own computation), the issue with the broken rules shown next to their fields,
downloads in every format, credit notes, permissions and tenancy; and the legal profile's presentation
settings (payment term, mentions, footer, logo) applied when an invoice is issued."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from lxml import etree
from PIL import Image
from pypdf import PdfReader

from invoicing import mapping
from invoicing.models import Invoice, InvoiceLine, RenderedDocument
from invoicing.services import business_today, invoice_render, issued_document
from invoicing.validation import validate_cii, validate_facturx_pdf, validate_ubl
from scell.models import Membership, User

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres")]

LIST = "/invoices/"
NEW = "/invoices/new/"
PASSWORD = "correct-horse-battery-9"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


# --- Helpers ----------------------------------------------------------------------------------------------
def login(user: User, *, live: bool = False) -> Client:
    client = Client()
    client.force_login(user)
    if live:
        client.post("/switch-mode/", {"mode": "live"})
    return client


def text(response) -> str:
    return response.content.decode()


def form_data(lines: list[dict[str, str]] | None = None, **header: str) -> dict[str, str]:
    """What the draft form posts: the header and the ``lines`` formset (two lines by default)."""
    data = {
        "buyer_name": "Client SARL",
        "buyer_siren": "552100554",
        "buyer_vat_id": "FR40552100554",
        "buyer_email": "ap@client.example",
        "buyer_electronic_scheme": "0225",
        "buyer_line1": "1 rue de la Paix",
        "buyer_postcode": "75002",
        "buyer_city": "Paris",
        "buyer_country": "FR",
        "currency": "EUR",
        "operation_category": "services",
        "format": "facturx",
        "profile": "en16931",
        "purchase_order_ref": "PO-4711",
        "delivery_note_ref": "BL-2026-118",
        "payment_means": "58",
        "payment_terms": "30 days net",
    } | header
    if lines is None:
        lines = [
            {"description": "Consulting", "quantity": "2", "unit_code": "HUR", "unit_price": "450.00"},
            {
                "description": "Books",
                "quantity": "3",
                "unit_code": "C62",
                "unit_price": "33.33",
                "vat_rate": "5.5",
                "discount_percent": "10",
            },
        ]
    data["lines-TOTAL_FORMS"] = str(len(lines))
    data["lines-INITIAL_FORMS"] = "0"
    for index, line in enumerate(lines):
        for name, value in ({"unit_code": "C62", "vat_category": "S", "vat_rate": "20"} | line).items():
            data[f"lines-{index}-{name}"] = value
    return data


def create_draft(client: Client, data: dict[str, str] | None = None) -> Invoice:
    response = client.post(NEW, data or form_data())
    assert response.status_code == 302, re.findall(
        r'data-testid="(?:problem|field-error)"[^>]*>(.*?)</', text(response), re.S
    )
    invoice = Invoice.objects.get(pk=response["Location"].split("/")[2])
    assert response["Location"] == f"{LIST}{invoice.pk}/edit/"
    return invoice


def issue(client: Client, invoice: Invoice):
    return client.post(f"{LIST}{invoice.pk}/issue/")


def amount(page: str, testid: str) -> Decimal:
    match = re.search(rf'data-testid="{testid}" data-amount="([^"]+)"', page)
    assert match, testid
    return Decimal(match.group(1))


def field_error(page: str, name: str) -> str:
    """The error block shown under the field ``name`` (its id is the one aria-describedby names)."""
    match = re.search(
        rf'<div class="error invoice-field-error" id="id_{name}_error"[^>]*>(.*?)</div>', page, re.S
    )
    assert match, f"no error next to {name}"
    return match.group(1)


def pdf_text(pdf: bytes) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages]


def api_issue(tenant, body: dict[str, Any], key: str = "sk_test") -> Invoice:
    client = tenant.client(key)
    draft = client.post("/api/v1/invoices", body, format="json")
    assert draft.status_code == 201, draft.json()
    issued = client.post(f"/api/v1/invoices/{draft.json()['id']}/issue")
    assert issued.status_code == 200, issued.json()
    return Invoice.objects.get(pk=issued.json()["id"])


# --- List -------------------------------------------------------------------------------------------------
def test_list_shows_every_invoice_with_search_and_filters(seller, draft_body) -> None:
    client = login(seller.owner)
    issued = api_issue(seller, draft_body)
    other = json.loads(json.dumps(draft_body))
    other["buyer"] |= {"name": "Boulangerie Martin", "siren": "443061841", "vat_id": "FR83443061841"}
    second = api_issue(seller, other)
    draft = create_draft(client, form_data(buyer_name="Atelier Brun", buyer_siren="", buyer_vat_id=""))
    credit_response = client.post(
        f"{LIST}{issued.pk}/credit-note/", {"credit-mode": "full", "credit-reason": "Geste"}
    )
    credit = Invoice.objects.get(type="credit_note")
    assert credit_response["Location"] == f"{LIST}{credit.pk}/"

    listing = text(client.get(LIST))
    for invoice in (issued, second, draft, credit):
        assert f'data-number="{invoice.number}"' in listing
    assert 'href="/invoices/new/"' in listing and "New invoice" in listing
    assert 'data-testid="credit-note"' in listing

    def numbers(**params: str) -> set[str]:
        page = text(client.get(LIST, params))
        return set(re.findall(r'data-testid="invoice" data-number="([^"]+)"', page))

    assert numbers(q="boulangerie") == {second.number}
    assert numbers(q="443 061 841") == {second.number}  # SIREN, typed with spaces
    assert numbers(q="fr83443061841") == {second.number}  # VAT number
    assert numbers(q=issued.number) == {issued.number}
    assert numbers(status="draft") == {draft.number, credit.number}
    assert numbers(status="issued") == {issued.number, second.number}
    assert numbers(type="credit_note") == {credit.number}
    assert numbers(status="issued", q="client") == {issued.number}
    today = business_today().isoformat()
    assert numbers(issue_date_from=today, issue_date_to=today) == {issued.number, second.number}
    assert numbers(issue_date_to="2000-01-01") == set()
    assert numbers(paid="true") == set()
    assert numbers(paid="false") == {issued.number, second.number, draft.number, credit.number}
    assert numbers(lifecycle="212") == set()
    assert numbers(status="bogus") == {issued.number, second.number, draft.number, credit.number}


def test_list_paginates(seller, draft_body, monkeypatch) -> None:
    from invoicing import views

    monkeypatch.setattr(views, "PER_PAGE", 2)
    client = login(seller.owner)
    for _index in range(3):
        seller.client("sk_test").post("/api/v1/invoices", draft_body, format="json")
    first = text(client.get(LIST, {"status": "draft"}))
    assert first.count('data-testid="invoice"') == 2 and "Page 1 of 2" in first
    assert 'href="?status=draft&amp;page=2"' in first
    second = text(client.get(LIST, {"status": "draft", "page": "2"}))
    assert second.count('data-testid="invoice"') == 1 and "Page 2 of 2" in second


# --- Drafts -----------------------------------------------------------------------------------------------
def test_create_and_edit_a_draft_with_lines(seller) -> None:
    client = login(seller.owner)
    page = text(client.get(NEW))
    assert 'name="lines-TOTAL_FORMS"' in page and 'id="invoice-line-template"' in page
    assert 'hx-post="/invoices/totals/"' in page

    draft = create_draft(client)
    assert draft.status == "draft" and draft.number.startswith("DRAFT-")
    assert draft.buyer["name"] == "Client SARL" and draft.buyer["address"]["country"] == "FR"
    assert draft.payment["terms"] == "30 days net" and draft.purchase_order_ref == "PO-4711"
    lines = list(draft.lines.order_by("position"))
    assert [(line.description, line.quantity, line.unit_code) for line in lines] == [
        ("Consulting", Decimal("2"), "HUR"),
        ("Books", Decimal("3"), "C62"),
    ]
    [discount] = lines[1].allowances
    assert (Decimal(discount["percent"]), discount["reason"], discount["reason_code"]) == (10, "Remise", "95")
    # 900 + (99.99 − 10 %: 89.99); VAT 180 + 4.95.
    assert (draft.total_without_vat, draft.total_vat, draft.total_with_vat) == (
        Decimal("989.99"),
        Decimal("184.95"),
        Decimal("1174.94"),
    )

    edit = text(client.get(f"{LIST}{draft.pk}/edit/"))
    assert (
        'value="Consulting"' in edit
        and 'value="33.33"' in edit
        and 'name="lines-1-discount_percent" value="10"' in edit
    )
    assert 'data-testid="total-with-vat" data-amount="1174.94"' in edit

    # Edit: change a line, remove the other, add a third; the discount's reason is kept.
    data = form_data(
        [
            {"description": "Consulting", "quantity": "3", "unit_code": "HUR", "unit_price": "450.00"},
            {"description": "Books", "quantity": "3", "unit_price": "33.33", "DELETE": "on"},
            {
                "description": "Training",
                "quantity": "1",
                "unit_code": "DAY",
                "unit_price": "800",
                "vat_rate": "10",
            },
        ],
        buyer_name="Client SAS",
        notes="Merci pour votre confiance.",
    )
    data["lines-INITIAL_FORMS"] = "2"
    response = client.post(f"{LIST}{draft.pk}/edit/", data)
    assert response.status_code == 302 and response["Location"] == f"{LIST}{draft.pk}/edit/"
    draft.refresh_from_db()
    assert draft.buyer["name"] == "Client SAS" and draft.buyer_name == "Client SAS"
    assert draft.notes == [{"text": "Merci pour votre confiance.", "subject": ""}]
    assert [(line.position, line.description) for line in draft.lines.order_by("position")] == [
        (1, "Consulting"),
        (2, "Training"),
    ]
    assert draft.total_with_vat == Decimal("1620.00") + Decimal("880.00")


def test_edit_keeps_what_the_form_does_not_show(seller, draft_body) -> None:
    """A draft made through the API keeps its contact, allowances and line details when edited here."""
    draft_body["buyer"]["contact_name"] = "Mme Martin"
    draft_body["allowances"] = [
        {"amount": "10.00", "reason": "Fidélité", "vat_category": "S", "vat_rate": "20"}
    ]
    draft_body["lines"][0] |= {"detail": "Audit", "charges": [{"amount": "5", "reason": "Frais"}]}
    created = seller.client("sk_test").post("/api/v1/invoices", draft_body, format="json").json()
    client = login(seller.owner)
    page = text(client.get(f"{LIST}{created['id']}/edit/"))
    extra = re.search(r'name="lines-0-extra" value="([^"]*)"', page).group(1)
    assert "Audit" in extra.replace("&quot;", '"')
    data = form_data(
        [
            {
                "description": "Consulting",
                "quantity": "4",
                "unit_code": "HUR",
                "unit_price": "450.00",
                "extra": json.loads(json.dumps(extra)).replace("&quot;", '"'),
            }
        ]
    )
    data["lines-INITIAL_FORMS"] = "1"
    assert client.post(f"{LIST}{created['id']}/edit/", data).status_code == 302
    invoice = Invoice.objects.get(pk=created["id"])
    assert invoice.buyer["contact_name"] == "Mme Martin"
    assert invoice.allowances[0]["reason"] == "Fidélité"
    line = invoice.lines.get()
    assert (line.quantity, line.detail, line.charges[0]["reason"]) == (Decimal("4"), "Audit", "Frais")
    assert invoice.total_without_vat == Decimal("1800.00") + Decimal("5.00") - Decimal("10.00")


def test_a_draft_that_cannot_be_saved_shows_the_errors_next_to_the_fields(seller) -> None:
    client = login(seller.owner)
    data = form_data(
        [{"description": "", "quantity": "2", "unit_price": "-4"}],
        buyer_name="",
        buyer_siren="123456789",
        buyer_country="F1",
    )
    response = client.post(NEW, data)
    assert response.status_code == 422
    page = text(response)
    assert 'data-testid="error-summary"' in page and "The draft was not saved" in page
    assert "required" in field_error(page, "buyer_name")
    assert "not a valid SIREN" in field_error(page, "buyer_siren")
    assert "two-letter" in field_error(page, "buyer_country")
    assert "required" in field_error(page, "lines-0-description")
    assert "greater than or equal to 0" in field_error(page, "lines-0-unit_price")
    assert 'aria-describedby="id_buyer_name_error"' in page and 'aria-invalid="true"' in page
    assert 'href="#id_lines-0-unit_price"' in page  # the summary links to the field
    assert not Invoice.objects.exists()


def test_add_a_line_without_javascript(seller) -> None:
    client = login(seller.owner)
    data = form_data([{"description": "Consulting", "quantity": "2", "unit_price": "450"}]) | {
        "add_line": "1"
    }
    page = text(client.post(NEW, data))
    assert 'name="lines-TOTAL_FORMS" value="2"' in page and 'name="lines-1-description"' in page
    assert 'data-testid="error-summary"' not in page and not Invoice.objects.exists()
    # The new, untouched line is left out when the draft is saved.
    data = form_data(
        [
            {"description": "Consulting", "quantity": "2", "unit_price": "450"},
            {"quantity": "1", "unit_code": "C62"},
        ]
    )
    draft = create_draft(client, data)
    assert draft.lines.count() == 1


def test_delete_a_draft(seller) -> None:
    client = login(seller.owner)
    draft = create_draft(client)
    response = client.post(f"{LIST}{draft.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == LIST
    assert not Invoice.objects.filter(pk=draft.pk).exists()


# --- Live totals ------------------------------------------------------------------------------------------
def test_totals_endpoint_equals_the_services_totals(seller) -> None:
    client = login(seller.owner)
    lines = [
        {"description": "A", "quantity": "3", "unit_price": "19.99", "vat_rate": "20"},
        {
            "description": "B",
            "quantity": "1.5",
            "unit_price": "7.333",
            "vat_rate": "5.5",
            "discount_percent": "12.5",
        },
        {"description": "C", "quantity": "7", "unit_price": "0.15", "vat_rate": "10"},
        {"description": "D", "quantity": "1", "unit_price": "100", "vat_category": "E", "vat_rate": "0"},
    ]
    response = client.post("/invoices/totals/", form_data(lines), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = text(response)
    draft = create_draft(client, form_data(lines, exemption_reason="Article 261 du CGI"))
    assert amount(page, "total-without-vat") == draft.total_without_vat
    assert amount(page, "total-vat") == draft.total_vat
    assert amount(page, "total-with-vat") == draft.total_with_vat
    assert amount(page, "amount-due") == draft.amount_due
    assert [Decimal(row["tax_amount"]) for row in draft.vat_breakdown] == [
        Decimal(value)
        for value in re.findall(r'data-testid="vat-row" data-category="\w+" data-amount="([^"]+)"', page)
    ]
    # The line nets come back out of band, one per row of the form.
    nets = re.findall(r'<output id="lines-(\d)-net" data-testid="line-net" hx-swap-oob="true">([^<]+)<', page)
    assert [Decimal(net) for _index, net in nets] == [
        line.net_amount for line in draft.lines.order_by("position")
    ]

    # Incomplete lines are not counted (and said so); removed ones neither; nothing is saved.
    typing = form_data(
        [
            lines[0],
            {"description": "half typed", "quantity": "", "unit_price": ""},
            lines[2] | {"DELETE": "on"},
        ]
    )
    page = text(client.post("/invoices/totals/", typing))
    assert amount(page, "total-without-vat") == Decimal("59.97")
    assert "One line is incomplete" in page
    assert Invoice.objects.count() == 1

    # On an existing draft, the draft's own allowances (set through the API) count too.
    Invoice.objects.filter(pk=draft.pk).update(
        allowances=[{"amount": "10.00", "reason": "Fidélité", "vat_category": "S", "vat_rate": "20"}]
    )
    page = text(client.post(f"{LIST}{draft.pk}/totals/", form_data(lines[:1]) | {"lines-INITIAL_FORMS": "1"}))
    assert amount(page, "total-without-vat") == Decimal("49.97")


# --- Issue ------------------------------------------------------------------------------------------------
def test_issue_a_draft_from_the_dashboard(seller) -> None:
    client = login(seller.owner)
    draft = create_draft(client)
    response = client.post(
        f"{LIST}{draft.pk}/edit/", form_data() | {"lines-INITIAL_FORMS": "2", "next": "issue"}
    )
    assert response["Location"] == f"{LIST}{draft.pk}/issue/"
    confirm = text(client.get(f"{LIST}{draft.pk}/issue/"))
    assert (
        "Issue this invoice?" in confirm
        and "Sandbox: free" in confirm
        and 'data-testid="confirm-issue"' in confirm
    )
    assert Invoice.objects.get(pk=draft.pk).status == "draft"  # the confirmation step changes nothing

    response = issue(client, draft)
    assert response.status_code == 302 and response["Location"] == f"{LIST}{draft.pk}/"
    invoice = Invoice.objects.get(pk=draft.pk)
    assert invoice.status == "issued" and re.fullmatch(r"SELL1-\d{6}-00001", invoice.number)
    detail = text(client.get(response["Location"]))
    assert f"Invoice {invoice.number} is issued." in detail
    assert 'data-testid="downloads"' in detail and 'data-testid="credit-note-form"' in detail
    # An issued invoice is no longer a draft: editing and issuing again go back to the detail.
    assert client.get(f"{LIST}{draft.pk}/edit/")["Location"] == f"{LIST}{draft.pk}/"
    assert issue(client, invoice)["Location"] == f"{LIST}{draft.pk}/"


def test_issue_failure_shows_the_rule_ids_next_to_the_fields_and_changes_nothing(seller) -> None:
    client = login(seller.owner)
    data = form_data(
        [
            {"description": "Consulting", "quantity": "2", "unit_price": "450"},
            {"description": "Books", "quantity": "1.123456", "unit_price": "10", "vat_rate": "19"},
        ],
        operation_category="",
        buyer_siren="",
        buyer_vat_id="FR40552100554",
    )
    draft = create_draft(client, data)
    before = (draft.number, draft.updated_at, draft.total_with_vat)
    response = issue(client, draft)
    assert response.status_code == 422
    page = text(response)
    assert 'data-testid="error-summary"' in page and "The invoice was not issued" in page
    assert "BR-FR-08" in field_error(page, "operation_category")
    assert "BR-FR-11" in field_error(page, "buyer_siren")
    assert "BR-FR-16" in field_error(page, "lines-1-vat_rate")
    assert "BR-FR-DEC-02" in field_error(page, "lines-1-quantity")
    assert "BR-FR-16" not in page.split('id="id_lines-0-vat_rate"', 1)[1].split("</td>", 1)[0]
    for rule in ("BR-FR-08", "BR-FR-11", "BR-FR-16", "BR-FR-DEC-02"):
        assert f'data-rule="{rule}"' in page  # and in the summary at the top
    assert 'href="#id_lines-1-vat_rate"' in page
    assert 'aria-describedby="id_lines-1-vat_rate_error"' in page
    # The form shows the draft as saved, ready to correct, with its totals.
    assert amount(page, "total-with-vat") == draft.total_with_vat and 'data-testid="incomplete"' not in page
    assert 'name="lines-1-vat_rate" value="19"' in page and f'action="{LIST}{draft.pk}/edit/"' in page
    draft.refresh_from_db()
    assert (draft.status, draft.number, draft.updated_at, draft.total_with_vat) == ("draft", *before)
    assert not RenderedDocument.objects.exists()


def test_issue_failure_without_a_field_goes_to_the_summary(seller, settings) -> None:
    """A rule about the seller (here BR-FR-10 / BR-CO-26: its SIREN) is not a field of the draft."""
    client = login(seller.owner)
    draft = create_draft(client)
    type(seller.tenant).objects.filter(pk=seller.tenant.pk).update(siren="12345")
    page = text(issue(client, draft))
    assert 'data-rule="BR-FR-10"' in page
    assert Invoice.objects.get(pk=draft.pk).status == "draft"


def test_issue_in_live_mode_spends_a_credit_and_402_without(seller, make_tenant) -> None:
    client = login(seller.owner, live=True)
    draft = create_draft(client)
    assert draft.livemode is True
    assert "Issuing costs 0.04 EUR of credits." in text(client.get(f"{LIST}{draft.pk}/issue/"))
    assert issue(client, draft).status_code == 302
    assert Invoice.objects.get(pk=draft.pk).status == "issued"

    poor = make_tenant(
        "POOR1",
        siren="542107651",
        siret="54210765100011",
        vat_id="FR21542107651",
        address_line1="1 rue",
        postcode="75001",
        city="Paris",
        iban="FR7630006000011234567890189",
    )
    client = login(poor.owner, live=True)
    draft = create_draft(client)
    page = text(client.post(f"{LIST}{draft.pk}/issue/", follow=True))
    assert "credit" in page.lower()
    assert Invoice.objects.get(pk=draft.pk).status == "draft"


# --- Downloads and credit notes ---------------------------------------------------------------------------
def test_downloads_in_every_format(seller) -> None:
    client = login(seller.owner)
    draft = create_draft(client)
    issue(client, draft)
    invoice = Invoice.objects.get(pk=draft.pk)
    detail = text(client.get(f"{LIST}{invoice.pk}/"))
    for fmt in ("facturx", "pdf", "cii", "ubl", "json"):
        assert f'href="{LIST}{invoice.pk}/download/{fmt}/"' in detail
    assert "Factur-X PDF (EN 16931)" in detail

    def get(fmt: str):
        response = client.get(f"{LIST}{invoice.pk}/download/{fmt}/")
        assert response.status_code == 200, fmt
        return response, b"".join(response.streaming_content) if response.streaming else response.content

    response, facturx = get("facturx")
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    assert validate_facturx_pdf(facturx).valid
    response, pdf = get("pdf")
    assert response["Content-Type"] == "application/pdf" and "SANDBOX" in "".join(pdf_text(pdf))
    assert f'filename="{invoice.number}-readable.pdf"' in response["Content-Disposition"]
    response, cii = get("cii")
    assert response["Content-Type"] == "application/xml" and cii == bytes(invoice.cii_xml)
    assert validate_cii(cii, profile="en16931").valid
    response, ubl = get("ubl")
    assert response["Content-Type"] == "application/xml" and validate_ubl(ubl).valid
    assert etree.fromstring(ubl).findtext("{*}ID") == invoice.number
    response, body = get("json")
    assert response["Content-Type"] == "application/json" and json.loads(body)["number"] == invoice.number
    # The same stored document as the API's download.
    api = seller.client("sk_test").get(f"/api/v1/invoices/{invoice.pk}/download", {"format": "cii"})
    assert api.content == cii
    assert client.get(f"{LIST}{invoice.pk}/download/docx/").status_code == 404
    assert client.get(f"{LIST}{create_draft(client).pk}/download/pdf/").status_code == 404  # drafts have none


def test_credit_notes_full_lines_and_amount(seller) -> None:
    client = login(seller.owner)
    draft = create_draft(client)
    issue(client, draft)
    original = Invoice.objects.get(pk=draft.pk)
    url = f"{LIST}{original.pk}/credit-note/"

    # A reason is required; a credited quantity above the invoiced one is refused by the service.
    page = text(client.post(url, {"credit-mode": "full", "credit-reason": ""}))
    assert "This field is required." in page
    page = text(client.post(url, {"credit-mode": "lines", "credit-reason": "Retour", "credit-line_2": "5"}))
    assert "0 &lt; q ≤ 3" in page and 'id="id_credit-line_2_error"' in page
    assert not Invoice.objects.filter(type="credit_note").exists()

    response = client.post(
        url, {"credit-mode": "lines", "credit-reason": "Retour de 2 livres", "credit-line_2": "2"}
    )
    partial = Invoice.objects.get(type="credit_note")
    assert response["Location"] == f"{LIST}{partial.pk}/"
    assert partial.preceding_invoice_id == original.pk and partial.status == "draft"
    assert [(line.description, line.quantity) for line in partial.lines.all()] == [("Books", Decimal("2"))]
    assert partial.notes[0] == {"text": "Retour de 2 livres", "subject": ""}
    detail = text(client.get(f"{LIST}{partial.pk}/"))
    assert "Draft credit note" in detail and original.number in detail
    assert issue(client, partial).status_code == 302
    partial.refresh_from_db()
    assert partial.status == "issued" and partial.total_with_vat == Decimal("63.29")  # 66.66 − 6.67 + 5.5 %

    response = client.post(
        url,
        {
            "credit-mode": "amount",
            "credit-reason": "Remise commerciale",
            "credit-amount": "100.00",
            "credit-vat": "S|20.00",
        },
    )
    by_amount = Invoice.objects.filter(type="credit_note").latest("created_at")
    line = by_amount.lines.get()
    assert (line.description, line.unit_price, line.vat_rate) == (
        "Remise commerciale",
        Decimal("100"),
        Decimal("20"),
    )
    assert by_amount.total_with_vat == Decimal("120.00")

    client.post(url, {"credit-mode": "full", "credit-reason": "Annulation"})
    full = Invoice.objects.filter(type="credit_note").latest("created_at")
    assert full.total_with_vat == original.total_with_vat and full.lines.count() == 2
    listing = text(client.get(f"{LIST}{original.pk}/"))
    assert all(c.number in listing for c in (partial, by_amount, full))
    # A credit note is not credited again.
    assert "credit-note-form" not in text(client.get(f"{LIST}{partial.pk}/"))
    client.post(f"{LIST}{partial.pk}/credit-note/", {"credit-mode": "full", "credit-reason": "x"})
    assert Invoice.objects.filter(type="credit_note").count() == 3


# --- Permissions and tenancy ------------------------------------------------------------------------------
def test_read_only_member_gets_403_on_every_write(seller) -> None:
    owner = login(seller.owner)
    draft = create_draft(owner)
    issued = create_draft(owner)
    issue(owner, issued)
    reader = User.objects.create_user("reader@example.com", PASSWORD)
    Membership.objects.create(user=reader, tenant=seller.tenant, role=Membership.Role.READ_ONLY)
    client = login(reader)

    listing = text(client.get(LIST))
    assert draft.number in listing and "New invoice" not in listing
    detail = text(client.get(f"{LIST}{draft.pk}/"))
    assert "Delete draft" not in detail and '<form method="post"' not in detail.split("<main", 1)[1]
    assert client.get(f"{LIST}{issued.pk}/download/cii/").status_code == 200  # reading is allowed
    assert "credit-note-form" not in text(client.get(f"{LIST}{issued.pk}/"))
    for method, url, data in (
        ("get", NEW, {}),
        ("post", NEW, form_data()),
        ("get", f"{LIST}{draft.pk}/edit/", {}),
        ("post", f"{LIST}{draft.pk}/edit/", form_data()),
        ("post", "/invoices/totals/", form_data()),
        ("get", f"{LIST}{draft.pk}/issue/", {}),
        ("post", f"{LIST}{draft.pk}/issue/", {}),
        ("post", f"{LIST}{draft.pk}/delete/", {}),
        ("post", f"{LIST}{issued.pk}/credit-note/", {"credit-mode": "full", "credit-reason": "x"}),
    ):
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, (method, url)
    assert Invoice.objects.count() == 2
    assert Invoice.objects.get(pk=draft.pk).status == "draft"


def test_another_tenants_or_modes_invoice_is_a_404(seller, tenant_b) -> None:
    owner = login(seller.owner)
    draft = create_draft(owner)
    issued = create_draft(owner)
    issue(owner, issued)
    other = login(tenant_b.owner)
    assert f'data-number="{draft.number}"' not in text(other.get(LIST, {"q": draft.number}))
    for method, url in (
        ("get", f"{LIST}{draft.pk}/"),
        ("get", f"{LIST}{draft.pk}/edit/"),
        ("post", f"{LIST}{draft.pk}/edit/"),
        ("post", f"{LIST}{draft.pk}/totals/"),
        ("get", f"{LIST}{draft.pk}/issue/"),
        ("post", f"{LIST}{draft.pk}/issue/"),
        ("post", f"{LIST}{draft.pk}/delete/"),
        ("get", f"{LIST}{issued.pk}/download/pdf/"),
        ("post", f"{LIST}{issued.pk}/credit-note/"),
    ):
        assert getattr(other, method)(url).status_code == 404, (method, url)
    live = login(seller.owner, live=True)
    assert live.get(f"{LIST}{draft.pk}/edit/").status_code == 404
    assert live.get(f"{LIST}{issued.pk}/download/pdf/").status_code == 404
    assert Invoice.objects.get(pk=draft.pk).status == "draft"


# --- The legal profile's presentation settings ------------------------------------------------------------
def png(color: tuple[int, int, int, int], size: tuple[int, int] = (120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, color).save(out, format="PNG")
    return out.getvalue()


def test_profile_presentation_settings_are_applied_and_frozen_at_issue(seller) -> None:
    tenant = seller.tenant
    tenant.logo = SimpleUploadedFile("logo.png", png((200, 30, 30, 128)), content_type="image/png")
    tenant.invoice_footer = "Atelier Dupont – merci de votre confiance"
    tenant.payment_days = 45
    tenant.payment_terms = "Paiement à 45 jours par virement"
    tenant.late_penalty_note = "Pénalités : 10 % l'an."
    tenant.save()

    client = login(seller.owner)
    # No due date and no payment terms: the profile's term and text.
    draft = create_draft(client, form_data(payment_terms=""))
    assert issue(client, draft).status_code == 302
    invoice = Invoice.objects.get(pk=draft.pk)
    assert invoice.due_date == invoice.issue_date + dt.timedelta(days=45)
    assert invoice.payment["terms"] == "Paiement à 45 jours par virement"
    presentation = invoice.seller["presentation"]
    assert presentation["footer"] == "Atelier Dupont – merci de votre confiance"
    assert presentation["notes"] == {"PMD": "Pénalités : 10 % l'an."}
    assert presentation["logo"].startswith(f"logos/frozen/{tenant.pk}/")

    cii = etree.fromstring(bytes(invoice.cii_xml))
    notes = {
        note.findtext("ram:SubjectCode", namespaces=NS): note.findtext("ram:Content", namespaces=NS)
        for note in cii.iterfind(".//ram:IncludedNote", NS)
    }
    assert notes["PMD"] == "Pénalités : 10 % l'an."
    assert notes["PMT"] == mapping.DEFAULT_NOTES["PMT"] and notes["AAB"] == mapping.DEFAULT_NOTES["AAB"]
    due = cii.findtext(
        ".//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString", namespaces=NS
    )
    assert due == f"{invoice.due_date:%Y%m%d}"
    assert validate_cii(bytes(invoice.cii_xml), profile="en16931").valid

    facturx = invoice_render(invoice=invoice, fmt="facturx").file.read()
    report = validate_facturx_pdf(facturx)
    assert report.valid, sorted(report.rules())
    pages = pdf_text(facturx)
    assert all("merci de votre confiance" in page for page in pages)
    assert "Paiement à 45 jours par virement" in pages[0] or "Paiement à 45 jours par virement" in "".join(
        pages
    )
    reader = PdfReader(io.BytesIO(facturx))
    images = [x.get_object() for x in reader.pages[0]["/Resources"]["/XObject"].values()]
    assert any(image["/Subtype"] == "/Image" for image in images)
    assert all("/SMask" not in image for image in images)  # flattened: PDF/A without transparency
    ubl = invoice_render(invoice=invoice, fmt="ubl").file.read()
    assert b"P\xc3\xa9nalit\xc3\xa9s : 10 % l'an." in ubl and validate_ubl(ubl).valid

    # The profile changes afterwards: the issued invoice renders as it was issued.
    tenant.logo = SimpleUploadedFile("new.png", png((0, 0, 0, 255)), content_type="image/png")
    tenant.invoice_footer = "Nouveau pied de page"
    tenant.late_penalty_note = "Autre mention"
    tenant.save()
    RenderedDocument.objects.filter(invoice=invoice).delete()
    again = Invoice.objects.get(pk=invoice.pk)
    rendered = invoice_render(invoice=again, fmt="pdf").file.read()
    text_again = "".join(pdf_text(rendered))
    assert "merci de votre confiance" in text_again and "Nouveau pied de page" not in text_again
    assert "Pénalités : 10 % l'an." in text_again.replace("\n", " ")
    assert [n.text for n in issued_document(again).notes if n.subject == "PMD"] == ["Pénalités : 10 % l'an."]

    # A draft with its own due date or terms keeps them; the next issue uses the new settings.
    second = create_draft(client, form_data(due_date=(business_today() + dt.timedelta(days=10)).isoformat()))
    issue(client, second)
    second.refresh_from_db()
    assert second.due_date == business_today() + dt.timedelta(days=10)
    assert second.payment["terms"] == "30 days net"
    assert second.seller["presentation"]["footer"] == "Nouveau pied de page"
    assert second.seller["presentation"]["logo"] != presentation["logo"]


def test_profile_defaults_and_sub_tenant_profiles(seller, draft_body) -> None:
    """Blank overrides give the standard mentions; a sub-tenant issues with its own settings."""
    from scell.models import SubTenant

    sub = SubTenant.objects.create(
        tenant=seller.tenant,
        legal_name="Filiale SARL",
        identifier="FILI1",
        siren="443061841",
        siret="44306184100047",
        vat_id="FR83443061841",
        address_line1="2 rue",
        postcode="69001",
        city="Lyon",
        country="FR",
        iban="FR7630006000011234567890189",
        payment_days=15,
        discount_note="Escompte de 2 % pour paiement à 8 jours.",
        invoice_footer="Filiale",
    )
    client = login(seller.owner)
    page = text(client.get(NEW))
    assert "Filiale SARL (FILI1)" in page  # the issuer choice
    draft = create_draft(client, form_data(payment_terms="", sub_tenant=str(sub.pk)))
    assert draft.sub_tenant_id == sub.pk
    issue(client, draft)
    invoice = Invoice.objects.get(pk=draft.pk)
    assert invoice.number.startswith("FILI1-")
    assert invoice.due_date == invoice.issue_date + dt.timedelta(days=15)
    assert invoice.payment["terms"] == ""  # the sub-tenant has no terms text: the due date is enough
    notes = {n.subject: n.text for n in issued_document(invoice).notes}
    assert notes["AAB"] == "Escompte de 2 % pour paiement à 8 jours."
    assert notes["PMD"] == mapping.DEFAULT_NOTES["PMD"]
    assert invoice.seller["presentation"] == {
        "footer": "Filiale",
        "logo": "",
        "notes": {"AAB": "Escompte de 2 % pour paiement à 8 jours."},
    }
    assert "Filiale" in "".join(pdf_text(invoice_render(invoice=invoice, fmt="pdf").file.read()))


def test_an_unreadable_logo_does_not_block_the_issue(seller, caplog) -> None:
    tenant = seller.tenant
    tenant.logo = SimpleUploadedFile("logo.png", b"not an image", content_type="image/png")
    tenant.save()
    client = login(seller.owner)
    draft = create_draft(client)
    assert issue(client, draft).status_code == 302
    invoice = Invoice.objects.get(pk=draft.pk)
    assert invoice.status == "issued" and invoice.seller["presentation"]["logo"] == ""
    assert "cannot be used" in caplog.text


def test_invoices_issued_before_presentation_settings_render_as_before(seller, draft_body) -> None:
    invoice = api_issue(seller, draft_body)
    legacy = {k: v for k, v in invoice.seller.items() if k != "presentation"}
    doc = mapping.build_document(invoice, seller=legacy)
    assert {
        n.subject: n.text for n in doc.notes if n.subject in mapping.DEFAULT_NOTES
    } == mapping.DEFAULT_NOTES
    assert InvoiceLine.objects.filter(invoice=invoice).count() == 1


def test_received_invoice_downloads_its_original_file(seller, make_tenant, draft_body) -> None:
    from tests.invoicing.conftest import SELLER_PROFILE

    supplier = make_tenant(
        "SUPP1",
        legal_name="Fournisseur SA",
        siren="443061841",
        **SELLER_PROFILE | {"siret": "44306184100047", "vat_id": "FR83443061841"},
    )
    from billing.services import credits_grant_pack

    credits_grant_pack(tenant=supplier.tenant, amount=Decimal("50.00"))
    body = json.loads(json.dumps(draft_body)) | {"format": "cii"}
    body["buyer"] |= {"siren": seller.tenant.siren, "vat_id": ""}
    content = bytes(api_issue(supplier, body).cii_xml)
    imported = seller.client("sk_test").post(
        "/api/v1/invoices/import", content, content_type="application/xml"
    )
    assert imported.status_code == 201, imported.json()
    client = login(seller.owner)
    url = f"{LIST}{imported.json()['id']}/"
    detail = text(client.get(url))
    assert "Received invoice" in detail and f'href="{url}download/original/"' in detail
    assert "credit-note-form" not in detail and f'href="{url}download/pdf/"' not in detail
    response = client.get(f"{url}download/original/")
    assert response["Content-Type"] == "application/xml" and response.content == content
    assert client.get(f"{url}download/pdf/").status_code == 404
    assert client.get(f"{url}edit/")["Location"] == url  # not a draft


def test_pages_render_in_french(seller) -> None:
    client = login(seller.owner)
    draft = create_draft(client)
    client.post("/language/", {"language": "fr", "next": LIST})
    for url in (LIST, NEW, f"{LIST}{draft.pk}/", f"{LIST}{draft.pk}/edit/", f"{LIST}{draft.pk}/issue/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert '<html lang="fr">' in text(response)
    page = text(client.post("/invoices/totals/", form_data()))
    assert amount(page, "total-with-vat") == Decimal("1174.94")
    # Decimals typed the French way.
    typed = form_data(
        [{"description": "Audit", "quantity": "2", "unit_price": "1 000,50", "vat_rate": "5,5"}]
    )
    page = text(client.post("/invoices/totals/", typed))
    assert amount(page, "total-without-vat") == Decimal("2001.00")
    assert amount(page, "total-vat") == Decimal("110.06")
