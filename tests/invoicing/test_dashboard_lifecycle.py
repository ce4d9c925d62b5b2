"""Invoices in the dashboard: the list and the detail page of issued and received invoices with their
transmission to the PDP and their lifecycle, and the lifecycle actions (mark paid, approve, dispute,
refuse, retransmit; in the sandbox, simulated statuses and incoming invoices). Scoped to the tenant and
the mode; read-only members see no form and get 403 on POST.

The last test drives Debian's Chromium through the whole sandbox story and saves a screenshot."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from invoicing.models import Invoice, InvoiceEvent
from pdp import services as pdp_services
from pdp.models import Flow
from scell.models import Membership, User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

LIST = "/invoices/"
PASSWORD = "correct-horse-battery-9"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "invoice-lifecycle.png"


# --- Helpers ----------------------------------------------------------------------------------------------
def login(user: User, *, live: bool = False) -> Client:
    client = Client()
    client.force_login(user)
    if live:
        client.post("/switch-mode/", {"mode": "live"})
    return client


def issue(tenant, body: dict[str, Any], key: str = "sk_test") -> Invoice:
    client = tenant.client(key)
    draft = client.post("/api/v1/invoices", body, format="json")
    assert draft.status_code == 201, draft.json()
    issued = client.post(f"/api/v1/invoices/{draft.json()['id']}/issue")
    assert issued.status_code == 200, issued.json()
    return Invoice.objects.get(pk=issued.json()["id"])


def poll(tenant) -> int:
    mailbox = pdp_services.mailbox_get(tenant=tenant, sub_tenant=None, livemode=False)
    return pdp_services.mailbox_poll(mailbox_id=str(mailbox.id))


def status_codes(invoice: Invoice) -> list[str]:
    return list(
        InvoiceEvent.objects.filter(invoice=invoice, type="status")
        .order_by("created_at")
        .values_list("status_code", flat=True)
    )


def detail_url(invoice: Invoice, action: str = "") -> str:
    return f"{LIST}{invoice.pk}/" + (f"{action}/" if action else "")


def page_text(response) -> str:
    return response.content.decode()


@pytest.fixture
def accepted(seller, draft_body, settings, stub_worker) -> Invoice:
    """A sandbox invoice of ``seller`` accepted by the PDP simulator, with its 200/202/203 fetched."""
    settings.PDP_SIMULATOR_STEP_SECONDS = 0
    invoice = issue(seller, draft_body)
    stub_worker.join("pdp", timeout=60_000)
    flow = Flow.objects.get(invoice=invoice, direction="out", kind="invoice")
    assert flow.state == Flow.State.ACCEPTED, (flow.state, flow.last_error)
    assert poll(seller.tenant) == 3
    assert status_codes(invoice) == ["200", "202", "203"]
    return invoice


def supplier_invoice(make_tenant, buyer_siren: str) -> bytes:
    """A CII invoice another Scell tenant issued to ``buyer_siren`` (what a supplier's PDP delivers)."""
    from billing.services import credits_grant_pack
    from tests.invoicing.conftest import DRAFT, SELLER_PROFILE

    supplier = make_tenant(
        "SUPP1",
        legal_name="Fournisseur SA",
        siren="443061841",
        **SELLER_PROFILE | {"siret": "44306184100047", "vat_id": "FR83443061841"},
    )
    credits_grant_pack(tenant=supplier.tenant, amount=Decimal("50.00"))
    body = json.loads(json.dumps(DRAFT)) | {"format": "cii"}
    body["buyer"] = body["buyer"] | {"siren": buyer_siren, "vat_id": ""}
    return bytes(issue(supplier, body).cii_xml)


# --- Django test client -----------------------------------------------------------------------------------
def test_list_and_detail_are_scoped_to_the_tenant_and_the_mode(seller, tenant_b, draft_body) -> None:
    sandbox = issue(seller, draft_body)
    live = issue(seller, draft_body, key="sk_live")
    draft = seller.client("sk_test").post("/api/v1/invoices", draft_body, format="json").json()

    owner = login(seller.owner)
    assert f'href="{LIST}"' in page_text(owner.get("/"))
    listing = page_text(owner.get(LIST))
    assert sandbox.number in listing and "Client SARL" in listing
    assert f'href="{detail_url(sandbox)}"' in listing
    assert f'href="{detail_url(live)}"' not in listing
    assert f'data-number="{draft["number"]}" data-status="draft"' in listing  # drafts are listed too
    draft_page = page_text(owner.get(f"{LIST}{draft['id']}/"))
    assert "Draft invoice" in draft_page and 'data-testid="transmission"' not in draft_page  # no lifecycle
    detail = owner.get(detail_url(sandbox))
    assert detail.status_code == 200
    assert sandbox.number in page_text(detail) and "Mark paid" in page_text(detail)
    assert owner.get(detail_url(live)).status_code == 404  # a live invoice, seen from the sandbox

    live_owner = login(seller.owner, live=True)
    listing = page_text(live_owner.get(LIST))
    assert f'href="{detail_url(live)}"' in listing and f'href="{detail_url(sandbox)}"' not in listing
    assert live_owner.get(detail_url(sandbox)).status_code == 404
    # No simulation in live mode.
    live_detail = page_text(live_owner.get(detail_url(live)))
    assert "Simulate a status" not in live_detail and "Simulate an incoming invoice" not in listing

    # Filters: direction and lifecycle status.
    assert sandbox.number in page_text(owner.get(LIST, {"status": "issued"}))
    assert "No invoice here yet." in page_text(owner.get(LIST, {"status": "received"}))
    assert "No invoice here yet." in page_text(owner.get(LIST, {"lifecycle": "212"}))

    other = login(tenant_b.owner)
    assert sandbox.number not in page_text(other.get(LIST))
    assert other.get(detail_url(sandbox)).status_code == 404
    assert other.post(detail_url(sandbox, "mark-paid")).status_code == 404
    assert status_codes(sandbox) == []


def test_read_only_member_sees_no_forms_and_gets_403(seller, draft_body) -> None:
    invoice = issue(seller, draft_body)
    reader = User.objects.create_user("reader@example.com", PASSWORD)
    Membership.objects.create(user=reader, tenant=seller.tenant, role=Membership.Role.READ_ONLY)
    client = login(reader)

    detail = client.get(detail_url(invoice))
    assert detail.status_code == 200 and invoice.number in page_text(detail)
    assert "<form" not in page_text(detail).split('data-testid="transmission"', 1)[1]
    assert "Simulate an incoming invoice" not in page_text(client.get(LIST))

    for action in ("mark-paid", "simulate-status", "retransmit", "approve"):
        response = client.post(detail_url(invoice, action), {"simulate-code": "205"})
        assert response.status_code == 403, action
        assert "Your role in this tenant is read-only." in page_text(response)
    upload = SimpleUploadedFile("x.xml", b"<x/>", content_type="application/xml")
    assert client.post(f"{LIST}simulate-incoming/", {"file": upload}).status_code == 403
    assert status_codes(invoice) == []
    assert not InvoiceEvent.objects.filter(invoice=invoice, type="paid").exists()


def test_mark_paid_records_212_and_shows_the_paid_badge(seller, accepted) -> None:
    client = login(seller.owner)
    detail = page_text(client.get(detail_url(accepted)))
    for code, label in (("200", "Deposited"), ("202", "Received by the platform"), ("203", "Made available")):
        assert f'data-code="{code}"' in detail and label in detail
    assert 'data-testid="transmission-state">accepted<' in detail
    assert accepted.flows.get(kind="invoice").flow_id in detail

    response = client.post(detail_url(accepted, "mark-paid"))
    assert response.status_code == 302 and response["Location"] == detail_url(accepted)
    assert status_codes(accepted) == ["200", "202", "203", "212"]
    event = InvoiceEvent.objects.get(invoice=accepted, type="status", status_code="212")
    assert event.data["source"] == "seller"
    assert InvoiceEvent.objects.filter(invoice=accepted, type="paid").exists()

    shown = page_text(client.get(detail_url(accepted)))
    assert "212 Cashed" in shown and 'data-testid="paid"' in shown
    assert "Mark paid</button>" not in shown
    client.post("/language/", {"language": "fr", "next": detail_url(accepted)})
    french = page_text(client.get(detail_url(accepted)))
    assert "212 Encaissée" in french and "<strong>200</strong> Déposée" in french
    client.post("/language/", {"language": "en", "next": detail_url(accepted)})
    listing = page_text(client.get(LIST, {"lifecycle": "212"}))
    assert accepted.number in listing and 'data-testid="paid"' in listing

    again = page_text(client.post(detail_url(accepted, "mark-paid"), follow=True))
    assert "is already marked paid" in again
    assert status_codes(accepted).count("212") == 1


def test_sandbox_simulated_status_appears_in_the_timeline(seller, accepted) -> None:
    client = login(seller.owner)
    assert "Simulate a status" in page_text(client.get(detail_url(accepted)))
    response = client.post(detail_url(accepted, "simulate-status"), {"simulate-code": "205"}, follow=True)
    text = page_text(response)
    assert "The simulated buyer sent status 205 (Approved)." in text
    assert 'data-code="205"' in text and "205 Approved" in text
    assert status_codes(accepted) == ["200", "202", "203", "205"]
    assert InvoiceEvent.objects.get(invoice=accepted, status_code="205").data["source"] == "buyer"

    # A status that needs a reason, without one: the simulated message would break the rules.
    refused = page_text(
        client.post(detail_url(accepted, "simulate-status"), {"simulate-code": "210"}, follow=True)
    )
    assert "needs a reason code (BR-FR-CDV-15)" in refused
    assert status_codes(accepted) == ["200", "202", "203", "205"]

    disputed = client.post(
        detail_url(accepted, "simulate-status"),
        {"simulate-code": "207", "simulate-reason_code": "TX_TVA_ERR", "simulate-reason": "Taux faux"},
        follow=True,
    )
    text = page_text(disputed)
    assert "207 Disputed" in text and "TX_TVA_ERR" in text and "Taux faux" in text


def test_received_invoice_approve_dispute_refuse(seller, make_tenant, settings, stub_worker) -> None:
    settings.PDP_SIMULATOR_STEP_SECONDS = 0
    content = supplier_invoice(make_tenant, seller.tenant.siren)
    stub_worker.join("pdp", timeout=60_000)
    client = login(seller.owner)
    assert "Simulate an incoming invoice" in page_text(client.get(LIST))
    junk = SimpleUploadedFile("notes.xml", b"<notes/>", content_type="application/xml")
    text = page_text(client.post(f"{LIST}simulate-incoming/", {"file": junk}, follow=True))
    assert "The file is not an invoice" in text
    upload = SimpleUploadedFile("supplier.xml", content, content_type="application/xml")
    response = client.post(f"{LIST}simulate-incoming/", {"file": upload})
    assert response.status_code == 302, page_text(response)[:2000]
    received = Invoice.objects.get(tenant=seller.tenant, status="received", livemode=False)
    assert response["Location"] == detail_url(received)
    detail = page_text(client.get(detail_url(received)))
    assert "Fournisseur SA" in detail and "received from the PDP" in detail
    assert "Approve</button>" in detail and "Mark paid</button>" not in detail
    assert "Simulate a status" not in detail  # for issued invoices
    assert "TX_TVA_ERR — " in detail  # the 207 reason list

    # Refusing needs a reason: the service's error names the rule, nothing is recorded.
    text = page_text(client.post(detail_url(received, "refuse"), {"refuse-reason_code": ""}, follow=True))
    assert "needs a reason code (BR-FR-CDV-15)" in text
    # A reason outside the 210 list is refused by the form.
    text = page_text(
        client.post(detail_url(received, "refuse"), {"refuse-reason_code": "COORD_BANC_ERR"}, follow=True)
    )
    assert "Select a valid choice" in text
    # Marking a received invoice paid is the seller's status, not ours.
    text = page_text(client.post(detail_url(received, "mark-paid"), follow=True))
    assert "Mark paid is for issued invoices" in text
    assert status_codes(received) == []

    client.post(detail_url(received, "approve"))
    client.post(
        detail_url(received, "dispute"),
        {"dispute-reason_code": "CMD_ERR", "dispute-reason": "Bon de commande inconnu"},
    )
    assert status_codes(received) == ["205", "207"]
    text = page_text(
        client.post(detail_url(received, "refuse"), {"refuse-reason_code": "DOUBLON"}, follow=True)
    )
    assert "210 Refused" in text and "DOUBLON" in text
    assert "its lifecycle is closed" in text and "Approve</button>" not in text
    closed = page_text(client.post(detail_url(received, "approve"), follow=True))
    assert "was refused (210)" in closed
    assert status_codes(received) == ["205", "207", "210"]


def test_a_failed_transmission_can_be_retransmitted(seller, draft_body) -> None:
    invoice = issue(seller, draft_body)
    flow = Flow.objects.get(invoice=invoice, direction="out", kind="invoice")
    Flow.objects.filter(pk=flow.pk).update(state=Flow.State.FAILED, last_error="PDP unreachable", attempts=7)
    client = login(seller.owner)
    detail = page_text(client.get(detail_url(invoice)))
    assert "PDP unreachable" in detail and "Retransmit</button>" in detail
    text = page_text(client.post(detail_url(invoice, "retransmit"), follow=True))
    assert "queued for transmission again" in text
    flow.refresh_from_db()
    assert flow.state == Flow.State.QUEUED and flow.attempts == 0
    assert InvoiceEvent.objects.filter(invoice=invoice, type="transmission_retried").exists()
    again = page_text(client.post(detail_url(invoice, "retransmit"), follow=True))
    assert "Nothing to retransmit" in again


# --- Browser ----------------------------------------------------------------------------------------------
@pytest.fixture
def page(browser_page):
    return browser_page()


@pytest.mark.browser
def test_lifecycle_in_the_browser(page, seller, accepted) -> None:
    page.goto("/login/")
    page.fill("#id_email", seller.owner.email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()

    page.get_by_role("link", name="Invoices").click()
    page.wait_for_url("**/invoices/")
    assert page.get_by_test_id("mode").inner_text() == "Sandbox"
    row = page.locator(f'[data-testid=invoice][data-number="{accepted.number}"]')
    assert "203 Made available" in row.inner_text()
    row.get_by_role("link", name=accepted.number).click()
    page.wait_for_url(f"**{detail_url(accepted)}")

    assert page.get_by_test_id("transmission-state").inner_text() == "accepted"
    timeline = page.get_by_test_id("timeline")
    for code in ("200", "202", "203"):
        assert timeline.locator(f'tr[data-code="{code}"]').count() == 1

    page.get_by_label("Status:", exact=True).select_option("205")
    page.get_by_role("button", name="Send the simulated status").click()
    page.wait_for_load_state()
    assert page.get_by_text("The simulated buyer sent status 205 (Approved).").is_visible()
    assert "205 Approved" in timeline.locator('tr[data-code="205"]').inner_text()
    assert page.get_by_test_id("lifecycle-status").inner_text().startswith("205 Approved")

    page.get_by_role("button", name="Mark paid").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("paid").inner_text() == "Paid"
    assert "212 Cashed" in timeline.locator('tr[data-code="212"][data-type="status"]').inner_text()
    assert page.get_by_role("button", name="Mark paid").count() == 0
    assert urlsplit(page.url).path == detail_url(accepted)

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert status_codes(accepted) == ["200", "202", "203", "205", "212"]
