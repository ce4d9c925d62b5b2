"""Transmission to the PDP and the invoice lifecycle, end to end: Scell's client against the PDP simulator
served by a live server over real HTTP (the live target), and in process (the sandbox target).

Issue #8 "Done when": submit, a duplicate retry sends once, 5xx retried, rejection recorded with reason,
statuses flow to events and webhooks, payment status marks paid, a received invoice is imported and
answered."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import urllib3
from django.conf import settings as django_settings

from invoicing.models import Invoice, InvoiceEvent
from pdp import cdar, services
from pdp.models import Flow, InvoiceLifecycle, Mailbox
from pdp.simulator.models import SimFault, SimFlow
from webhooks.models import Event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

HTTP = urllib3.PoolManager()


@pytest.fixture
def live_pdp(settings, live_server):
    """The partner PDP is the simulator behind the live server, reached over HTTP with OAuth2 client
    credentials, as a real PDP would be."""
    settings.PDP_URL = f"{live_server.url}/pdp-sim/flow-service"
    settings.PDP_TOKEN = ""
    settings.PDP_TOKEN_URL = f"{live_server.url}/pdp-sim/auth/token"
    settings.PDP_CLIENT_ID = settings.PDP_SIMULATOR_CLIENT_ID
    settings.PDP_CLIENT_SECRET = settings.PDP_SIMULATOR_CLIENT_SECRET
    settings.PDP_SIMULATOR_STEP_SECONDS = 0
    settings.PDP_RETRY_SCHEDULE = [0.05, 0.05, 0.05]
    return live_server


def _control(live_server, method: str, path: str, organization: str, body: dict | None = None):
    response = HTTP.request(
        method,
        f"{live_server.url}/pdp-sim/_control/{path}",
        body=json.dumps(body or {}).encode(),
        headers={
            "Authorization": f"Bearer {django_settings.PDP_SIMULATOR_TOKEN}",
            "Organization-Id": organization,
            "Content-Type": "application/json",
        },
    )
    return response


def _issue(client, body) -> dict:
    draft = client.post("/api/v1/invoices", body, format="json")
    assert draft.status_code == 201, draft.json()
    issued = client.post(f"/api/v1/invoices/{draft.json()['id']}/issue")
    assert issued.status_code == 200, issued.json()
    return issued.json()


def _invoice_flow(invoice_id: str) -> Flow:
    return Flow.objects.get(invoice_id=invoice_id, direction="out", kind="invoice")


def _event_types(invoice_id: str) -> list[str]:
    return list(
        InvoiceEvent.objects.filter(invoice_id=invoice_id)
        .order_by("created_at")
        .values_list("type", flat=True)
    )


def _status_codes(invoice_id: str) -> list[str]:
    return list(
        InvoiceEvent.objects.filter(invoice_id=invoice_id, type="status")
        .order_by("created_at")
        .values_list("status_code", flat=True)
    )


def _webhooks(tenant, type_: str, livemode: bool) -> list[Event]:
    return list(Event.objects.filter(tenant=tenant, type=type_, livemode=livemode).order_by("created_at"))


def _poll(tenant, livemode: bool) -> int:
    mailbox = services.mailbox_get(tenant=tenant, sub_tenant=None, livemode=livemode)
    return services.mailbox_poll(mailbox_id=str(mailbox.id))


def test_live_invoice_goes_to_the_pdp_and_its_statuses_become_events_and_webhooks(
    seller, draft_body, live_pdp, stub_worker
) -> None:
    client = seller.client("sk_live")
    invoice = _issue(client, draft_body)
    stub_worker.join("pdp", timeout=60_000)

    flow = _invoice_flow(invoice["id"])
    assert flow.state == Flow.State.ACCEPTED
    assert flow.target == "pdp" and flow.flow_id and flow.attempts == 1
    at_pdp = SimFlow.objects.get(flow_id=flow.flow_id)
    assert at_pdp.tracking_id == str(invoice["id"])
    assert at_pdp.organization_id == seller.tenant.siren
    assert at_pdp.flow_syntax == "Factur-X" and at_pdp.ack_status == "Ok"
    assert at_pdp.sha256 == flow.sha256
    assert "transmitted" in _event_types(invoice["id"])
    transmitted = _webhooks(seller.tenant, "invoice.transmitted", True)
    assert [e.data["number"] for e in transmitted] == [invoice["number"]]

    # The PDP's own statuses (200 Déposée, 202 Reçue, 203 Mise à disposition) come back as CDAR flows.
    assert _poll(seller.tenant, True) == 3
    assert _status_codes(invoice["id"]) == ["200", "202", "203"]
    assert _poll(seller.tenant, True) == 0  # each flow is applied once
    changed = _webhooks(seller.tenant, "invoice.status_changed", True)
    assert [e.data["lifecycle"]["status_code"] for e in changed] == ["200", "202", "203"]
    assert changed[-1].data["previous_status_code"] == "202"

    # The buyer disputes it, with a reason code.
    answer = _control(
        live_pdp,
        "POST",
        f"flows/{flow.flow_id}/statuses",
        seller.tenant.siren,
        {"statusCode": "207", "reasonCode": "TX_TVA_ERR", "reason": "Taux de TVA erroné", "emitter": "buyer"},
    )
    assert answer.status == 201, answer.data
    assert _poll(seller.tenant, True) == 1
    body = client.get(f"/api/v1/invoices/{invoice['id']}").json()
    assert body["lifecycle"]["status_code"] == "207"
    assert body["lifecycle"]["status"] == "disputed"
    assert body["lifecycle"]["reason_code"] == "TX_TVA_ERR"
    assert body["transmission"]["state"] == "accepted"
    event = InvoiceEvent.objects.filter(invoice_id=invoice["id"], status_code="207").get()
    assert event.data["source"] == "buyer" and event.data["reason"] == "Taux de TVA erroné"

    # The seller cashes the payment: 212 Encaissée marks it paid and goes to the PDP as a CDAR.
    paid = client.post(f"/api/v1/invoices/{invoice['id']}/mark-paid", {}, format="json")
    assert paid.status_code == 200, paid.json()
    assert paid.json()["lifecycle"]["paid"] is True
    assert Decimal(paid.json()["lifecycle"]["amount_paid"]) == Decimal(invoice["amount_due"])
    assert [e.data["payment"]["amount"] for e in _webhooks(seller.tenant, "invoice.paid", True)] == [
        invoice["amount_due"]
    ]
    received = _webhooks(seller.tenant, "payment.received", True)
    assert received[-1].data["object"] == "invoice" and received[-1].data["invoice"] == invoice["id"]
    stub_worker.join("pdp", timeout=60_000)
    status_flow = Flow.objects.get(invoice_id=invoice["id"], kind="status", direction="out")
    assert status_flow.state == Flow.State.ACCEPTED, status_flow.last_error
    cdar_at_pdp = SimFlow.objects.get(flow_id=status_flow.flow_id)
    assert cdar_at_pdp.flow_type == "CustomerInvoiceLC" and cdar_at_pdp.ack_status == "Ok"
    message = cdar.parse(bytes(cdar_at_pdp.content))
    assert message.status_code == "212" and message.invoice_number == invoice["number"]
    assert sum(a.amount for a in message.amounts) == Decimal(invoice["amount_due"])
    again = client.post(f"/api/v1/invoices/{invoice['id']}/mark-paid", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_paid"


def test_a_lost_answer_is_not_submitted_twice(seller, draft_body, live_pdp, stub_worker) -> None:
    # The PDP stores the flow, then the answer is lost (503): the retry finds it by tracking id.
    SimFault.objects.create(operation="createFlow", status=503, remaining=1, after_store=True)
    invoice = _issue(seller.client("sk_live"), draft_body)
    stub_worker.join("pdp", timeout=60_000)
    flow = _invoice_flow(invoice["id"])
    assert flow.state == Flow.State.ACCEPTED
    assert flow.attempts == 2
    assert SimFlow.objects.filter(tracking_id=str(invoice["id"])).count() == 1
    assert SimFlow.objects.get(tracking_id=str(invoice["id"])).flow_id == flow.flow_id


def test_5xx_are_retried_with_backoff(seller, draft_body, live_pdp, stub_worker) -> None:
    SimFault.objects.create(operation="createFlow", status=503, remaining=2, after_store=False)
    invoice = _issue(seller.client("sk_live"), draft_body)
    stub_worker.join("pdp", timeout=60_000)
    flow = _invoice_flow(invoice["id"])
    assert flow.state == Flow.State.ACCEPTED and flow.attempts == 3
    assert SimFlow.objects.filter(tracking_id=str(invoice["id"])).count() == 1


def test_exhausted_retries_fail_visibly_and_can_be_retransmitted(
    seller, draft_body, live_pdp, stub_worker
) -> None:
    SimFault.objects.create(operation="createFlow", status=503, remaining=100, after_store=False)
    client = seller.client("sk_live")
    invoice = _issue(client, draft_body)
    stub_worker.join("pdp", timeout=60_000)
    flow = _invoice_flow(invoice["id"])
    assert flow.state == Flow.State.FAILED
    assert flow.attempts == len(django_settings.PDP_RETRY_SCHEDULE) + 1
    assert "503" in flow.last_error
    body = client.get(f"/api/v1/invoices/{invoice['id']}").json()
    assert body["transmission"]["state"] == "failed" and "503" in body["transmission"]["last_error"]
    failed = _webhooks(seller.tenant, "invoice.transmission_failed", True)
    assert failed and failed[0].data["reason"]["status"] == 503
    assert SimFlow.objects.filter(tracking_id=str(invoice["id"])).count() == 0

    SimFault.objects.all().delete()
    retried = client.post(f"/api/v1/invoices/{invoice['id']}/transmit")
    assert retried.status_code == 200
    stub_worker.join("pdp", timeout=60_000)
    assert _invoice_flow(invoice["id"]).state == Flow.State.ACCEPTED
    assert client.post(f"/api/v1/invoices/{invoice['id']}/transmit").status_code == 409


def test_a_4xx_answer_is_a_permanent_failure_with_the_pdps_reason(
    seller, draft_body, live_pdp, stub_worker
) -> None:
    SimFault.objects.create(operation="createFlow", status=422, remaining=1, after_store=False)
    invoice = _issue(seller.client("sk_live"), draft_body)
    stub_worker.join("pdp", timeout=60_000)
    flow = _invoice_flow(invoice["id"])
    assert flow.state == Flow.State.FAILED and flow.attempts == 1
    assert "422" in flow.last_error


def test_a_rejected_flow_records_the_pdps_reasons_and_the_501_status(seller, draft_body, live_pdp) -> None:
    # No worker: the flow waits in the outbox; we make its file unreadable, as a broken renderer would,
    # then submit it the way the actor does.
    invoice = _issue(seller.client("sk_live"), draft_body)
    flow = _invoice_flow(invoice["id"])
    broken = b"<not-an-invoice/>"
    Flow.objects.filter(pk=flow.pk).update(
        content=broken, name="broken.xml", sha256=services.hashlib.sha256(broken).hexdigest(), syntax="CII"
    )
    services.flow_submit(flow_id=str(flow.pk))
    flow.refresh_from_db()
    assert flow.state == Flow.State.REJECTED
    assert flow.ack_status == "Error" and flow.ack_details
    assert flow.ack_details[0]["reasonCode"] in {"InvalidSchema", "FlowTypeError"}
    event = InvoiceEvent.objects.get(invoice_id=invoice["id"], type="transmission_rejected")
    assert event.data["details"] == flow.ack_details
    failed = _webhooks(seller.tenant, "invoice.transmission_failed", True)
    assert failed[0].data["rejected"] is True and failed[0].data["details"] == flow.ack_details
    assert "transmitted" not in _event_types(invoice["id"])
    # The PDP says why in its lifecycle too: 501 Irrecevable with an IRR_* reason.
    _poll(seller.tenant, True)
    lifecycle = InvoiceLifecycle.objects.get(invoice_id=invoice["id"])
    assert lifecycle.status_code == "501" and lifecycle.reason_code.startswith("IRR_")
    # A rejection is final: retransmitting is refused (correct it with a credit note and a new invoice).
    assert seller.client("sk_live").post(f"/api/v1/invoices/{invoice['id']}/transmit").status_code == 409


def test_live_invoices_wait_for_a_configured_pdp_and_sandbox_ones_never_go_there(
    seller, draft_body, settings, live_server, stub_worker
) -> None:
    settings.PDP_URL = ""
    live = _issue(seller.client("sk_live"), draft_body)
    sandbox = _issue(seller.client("sk_test"), draft_body)
    stub_worker.join("pdp", timeout=60_000)
    assert _invoice_flow(live["id"]).state == Flow.State.HELD
    sandbox_flow = _invoice_flow(sandbox["id"])
    assert sandbox_flow.target == "simulator" and sandbox_flow.state == Flow.State.ACCEPTED

    settings.PDP_URL = f"{live_server.url}/pdp-sim/flow-service"
    settings.PDP_TOKEN = settings.PDP_SIMULATOR_TOKEN
    services.flows_sweep()
    stub_worker.join("pdp", timeout=60_000)
    live_flow = _invoice_flow(live["id"])
    assert live_flow.state == Flow.State.ACCEPTED and live_flow.target == "pdp"
    # The sandbox invoice reached only the simulator's in-process side: one flow per tracking id.
    assert SimFlow.objects.filter(tracking_id=str(sandbox["id"])).count() == 1


def test_sandbox_status_simulation_through_the_api(seller, draft_body, settings, stub_worker) -> None:
    settings.PDP_SIMULATOR_STEP_SECONDS = 0
    client = seller.client("sk_test")
    invoice = _issue(client, draft_body)
    stub_worker.join("pdp", timeout=60_000)
    answer = client.post(
        f"/api/v1/invoices/{invoice['id']}/simulate-status",
        {"code": "210", "reason_code": "MONTANTTOTAL_ERR", "reason": "Montant erroné"},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["lifecycle"]["status_code"] == "210"
    assert _status_codes(invoice["id"]) == ["200", "202", "203", "210"]
    bad = client.post(f"/api/v1/invoices/{invoice['id']}/simulate-status", {"code": "210"}, format="json")
    assert bad.status_code == 422
    assert _status_codes(invoice["id"]) == ["200", "202", "203", "210"]
    live = seller.client("sk_live").post(
        "/api/v1/invoices/simulate-incoming", data=b"<x/>", content_type="application/xml"
    )
    assert live.status_code == 409 and live.json()["error"]["code"] == "sandbox_only"


def _supplier_invoice(make_tenant, buyer_siren: str) -> bytes:
    """A CII invoice issued by another Scell tenant to ``buyer_siren`` (what a supplier's PDP delivers)."""
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
    issued = _issue(supplier.client("sk_test"), body)
    return bytes(Invoice.objects.get(pk=issued["id"]).cii_xml)


def test_a_received_invoice_is_imported_and_answered(
    seller, make_tenant, settings, live_pdp, stub_worker
) -> None:
    settings.PDP_SANDBOX_URL = f"{live_pdp.url}/pdp-sim/flow-service"  # the sandbox over HTTP too
    content = _supplier_invoice(make_tenant, seller.tenant.siren)
    stub_worker.join("pdp", timeout=60_000)
    answer = _control_inbound(live_pdp, seller.tenant.siren, content)
    assert answer.status == 201, answer.data
    assert _poll(seller.tenant, False) >= 1
    received = Invoice.objects.get(tenant=seller.tenant, status="received", livemode=False)
    assert "received_from_pdp" in _event_types(str(received.id))
    assert _webhooks(seller.tenant, "invoice.received", False)
    client = seller.client("sk_test")

    # Statuses without the required reason are refused before anything is sent.
    missing = client.post(f"/api/v1/invoices/{received.id}/refuse", {}, format="json")
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["field"] == "reason_code"
    wrong = client.post(f"/api/v1/invoices/{received.id}/statuses", {"code": "212"}, format="json")
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "status_not_allowed"
    assert not Flow.objects.filter(invoice=received, direction="out").exists()

    assert (
        client.post(f"/api/v1/invoices/{received.id}/statuses", {"code": "204"}, format="json").status_code
        == 200
    )
    disputed = client.post(
        f"/api/v1/invoices/{received.id}/dispute",
        {"reason_code": "CMD_ERR", "reason": "Bon de commande inconnu"},
        format="json",
    )
    assert disputed.status_code == 200, disputed.json()
    assert disputed.json()["lifecycle"]["status_code"] == "207"
    approved = client.post(f"/api/v1/invoices/{received.id}/approve")
    assert approved.status_code == 200 and approved.json()["lifecycle"]["status"] == "approved"
    stub_worker.join("pdp", timeout=60_000)
    sent = Flow.objects.filter(invoice=received, direction="out", kind="status").order_by("created_at")
    assert [f.status_code for f in sent] == ["204", "207", "205"]
    assert {f.state for f in sent} == {Flow.State.ACCEPTED}
    for flow in sent:
        at_pdp = SimFlow.objects.get(flow_id=flow.flow_id)
        assert at_pdp.flow_type == "SupplierInvoiceLC" and at_pdp.ack_status == "Ok"
        assert cdar.validate(bytes(at_pdp.content)) == []
    refused = client.post(f"/api/v1/invoices/{received.id}/refuse", {"reason_code": "DOUBLON"}, format="json")
    assert refused.status_code == 200
    closed = client.post(f"/api/v1/invoices/{received.id}/approve")
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "status_final"


def _control_inbound(live_server, organization: str, content: bytes):
    body, content_type = urllib3.encode_multipart_formdata(
        {"file": ("supplier.xml", content, "application/xml")}
    )
    return HTTP.request(
        "POST",
        f"{live_server.url}/pdp-sim/_control/inbound",
        body=body,
        headers={
            "Authorization": f"Bearer {django_settings.PDP_SIMULATOR_TOKEN}",
            "Organization-Id": organization,
            "Content-Type": content_type,
        },
    )


def test_the_pdps_webhook_makes_scell_fetch_at_once(
    seller, draft_body, settings, live_pdp, stub_worker
) -> None:
    settings.PDP_CALLBACK_URL = live_pdp.url
    invoice = _issue(seller.client("sk_live"), draft_body)
    stub_worker.join("pdp", timeout=60_000)
    _poll(seller.tenant, True)  # subscribes this organisation's webhook, takes 200/202/203
    mailbox = Mailbox.objects.get(tenant=seller.tenant, livemode=True)
    assert mailbox.webhook_id and mailbox.webhook_key
    assert mailbox.webhook_url.endswith(f"/pdp/webhooks/{mailbox.id}")

    flow = _invoice_flow(invoice["id"])
    pushed = _control(
        live_pdp,
        "POST",
        f"flows/{flow.flow_id}/statuses",
        seller.tenant.siren,
        {"statusCode": "205", "emitter": "buyer"},
    )
    assert pushed.status == 201, pushed.data
    # The simulator calls back, the receiver checks the signature and enqueues the fetch.
    stub_worker.join("pdp", timeout=60_000)
    stub_worker.join("pdp", timeout=60_000)
    assert InvoiceLifecycle.objects.get(invoice_id=invoice["id"]).status_code == "205"

    forged = HTTP.request(
        "POST",
        f"{live_pdp.url}/pdp/webhooks/{mailbox.id}",
        body=b"{}",
        headers={
            "Afnor-Signature": "AAAA",
            "Afnor-Signature-Timestamp": "1",
            "Content-Type": "application/json",
        },
    )
    assert forged.status == 401


def test_another_tenant_cannot_send_statuses_on_my_invoice(
    seller, tenant_b, draft_body, settings, stub_worker
) -> None:
    invoice = _issue(seller.client("sk_test"), draft_body)
    answer = tenant_b.client("sk_test").post(f"/api/v1/invoices/{invoice['id']}/mark-paid", {}, format="json")
    assert answer.status_code == 404
    assert not InvoiceEvent.objects.filter(invoice_id=invoice["id"], type="status").exists()
