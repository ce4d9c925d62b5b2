"""The built-in PDP simulator, driven over real HTTP (``live_server``) like a partner PDP would be.

Every JSON answer is validated against the schemas of ``pdp/spec/flow-service-1.3.0.swagger.json``, so
a drift from the standard fails here before it fails against a real PDP."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.core import signing
from django.db import connection
from django.utils import timezone

from pdp import afnor, cdar
from pdp.simulator import engine
from pdp.simulator.models import SimFault, SimFlow, SimWebhook
from tests.pdp.conftest import (
    BUYER_SIREN,
    OTHER_SIREN,
    SELLER_SIREN,
    assert_schema,
    facturx_pdf,
    flow_spec,
    invoice_xml,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

FLOWS = "flow-service/v1/flows"
SEARCH = "flow-service/v1/flows/search"
WEBHOOKS = "flow-service/v1/webhooks"
LIST_SCHEMA = "responses/WebhookListResponse/content/application~1json/schema"


def _error(answer, status: int, code: str | None = None) -> dict:
    assert answer.status == status, (answer.status, answer.body)
    body = answer.json()
    assert_schema(body, "schemas/Error")
    if code:
        assert body["errorCode"] == code, body
    return body


def _accepted(answer) -> dict:
    assert answer.status == 202, answer.body
    body = answer.json()
    assert_schema(body, "schemas/FullFlowInfo")
    return body


def _flow(pdp_sim, flow_id: str, org: str = SELLER_SIREN) -> dict:
    answer = pdp_sim.get(flow_id, org=org)
    assert answer.status == 200, answer.body
    body = answer.json()
    assert_schema(body, "schemas/Flow")
    return body


def _search(pdp_sim, where: dict, org: str = SELLER_SIREN, **params) -> dict:
    answer = pdp_sim.search(where, org=org, **params)
    assert answer.status == 200, answer.body
    body = answer.json()
    assert_schema(body, "schemas/SearchFlowContent")
    return body


def _statuses(pdp_sim, org: str = SELLER_SIREN) -> list[tuple[dict, cdar.StatusMessage]]:
    """The incoming lifecycle flows of ``org``, each with its CDAR (downloaded and checked)."""
    found = []
    for flow in pdp_sim.search_all({"flowType": ["CustomerInvoiceLC", "SupplierInvoiceLC"]}, org=org):
        assert_schema(flow, "schemas/Flow")
        original = pdp_sim.get(flow["flowId"], org=org, doc_type="Original")
        assert original.status == 200
        assert original.headers["content-type"] == "application/xml"
        assert original.headers["content-disposition"] == f"attachment;filename={flow['name']}"
        assert cdar.validate(original.body) == [], flow["name"]
        assert hashlib.sha256(original.body).hexdigest() == flow["sha256"]
        found.append((flow, cdar.parse(original.body)))
    return found


# --- Authentication, headers ------------------------------------------------------------------------------
def test_healthcheck_needs_no_token(pdp_sim) -> None:
    answer = pdp_sim.call("GET", "flow-service/v1/healthcheck", org=None, token="")
    assert answer.status == 200


def test_bearer_tokens_and_oauth_client_credentials(pdp_sim) -> None:
    where = {"flowDirection": ["Out"]}
    _error(pdp_sim.call("POST", SEARCH, json_body={"where": where}, token=""), 401, "MISSING_TOKEN")
    _error(pdp_sim.call("POST", SEARCH, json_body={"where": where}, token="forged"), 401, "INVALID_TOKEN")
    assert pdp_sim.call("POST", SEARCH, json_body={"where": where}).status == 200  # the static token

    # OAuth2 client credentials, secret in the form...
    form = "grant_type=client_credentials&client_id=sim-client&client_secret=sim-secret"
    answer = pdp_sim.call(
        "POST",
        "auth/token",
        org=None,
        token="",
        body=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status == 200, answer.body
    issued = answer.json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 3600
    assert (
        pdp_sim.call("POST", SEARCH, json_body={"where": where}, token=issued["access_token"]).status == 200
    )
    # ...or in HTTP Basic.
    basic = base64.b64encode(b"sim-client:sim-secret").decode()
    answer = pdp_sim.call(
        "POST",
        "auth/token",
        org=None,
        token="",
        body=b"grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"},
    )
    assert answer.status == 200 and answer.json()["access_token"]

    wrong = form.replace("sim-secret", "guess")
    answer = pdp_sim.call(
        "POST",
        "auth/token",
        org=None,
        token="",
        body=wrong.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    body = _error(answer, 401)
    assert body["error"] == "invalid_client"
    answer = pdp_sim.call(
        "POST",
        "auth/token",
        org=None,
        token="",
        body=b"grant_type=password",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert _error(answer, 400)["error"] == "unsupported_grant_type"


def test_expired_oauth_token_is_refused(pdp_sim, monkeypatch) -> None:
    issued_at = int(time.time()) - engine.TOKEN_TTL - 5
    with monkeypatch.context() as patch:
        patch.setattr(signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(issued_at))
        token = engine.token_issue(client_id="sim-client", client_secret="sim-secret")["access_token"]
    with pytest.raises(engine.SimError) as refused:
        engine.bearer_check(f"Bearer {token}")
    assert refused.value.status == 401 and refused.value.code == "INVALID_TOKEN"
    where = {"ackStatus": "Ok"}
    _error(pdp_sim.call("POST", SEARCH, json_body={"where": where}, token=token), 401, "INVALID_TOKEN")


def test_organization_id_is_required_and_request_id_echoed(pdp_sim) -> None:
    request_id = str(uuid.uuid4())
    answer = pdp_sim.call(
        "POST", SEARCH, org=None, json_body={"where": {"ackStatus": "Ok"}}, headers={"Request-Id": request_id}
    )
    _error(answer, 400, "MISSING_REQUIRED_FIELD")
    assert answer.headers["request-id"] == request_id
    answer = pdp_sim.call(
        "POST", SEARCH, json_body={"where": {"ackStatus": "Ok"}}, headers={"Request-Id": request_id}
    )
    assert answer.status == 200 and answer.headers["request-id"] == request_id
    _error(pdp_sim.call("PUT", SEARCH, json_body={}), 405)


# --- Submission and lifecycle -----------------------------------------------------------------------------
def test_a_valid_invoice_is_accepted_and_its_lifecycle_played(pdp_sim) -> None:
    content = invoice_xml(number="FA-OK-1")
    accepted = _accepted(pdp_sim.submit(content, filename="FA-OK-1.xml", trackingId="inv-1"))
    assert accepted["sha256"] == hashlib.sha256(content).hexdigest()
    assert accepted["trackingId"] == "inv-1" and accepted["name"] == "FA-OK-1.xml"
    assert "processingRule" not in accepted  # an echo of the flowInfo, nothing more

    flow = _flow(pdp_sim, accepted["flowId"])
    assert flow["acknowledgement"] == {"status": "Ok"}
    assert flow["flowType"] == "CustomerInvoice" and flow["flowDirection"] == "Out"
    assert flow["flowProfile"] == "CIUS" and flow["flowSyntax"] == "CII"
    assert flow["processingRule"] == "B2B" and flow["processingRuleSource"] == "Computed"
    assert flow["submittedAt"] == flow["updatedAt"] == accepted["submittedAt"]
    original = pdp_sim.get(accepted["flowId"], doc_type="Original")
    assert original.status == 200 and original.body == content
    assert original.headers["content-disposition"] == "attachment;filename=FA-OK-1.xml"
    for doc_type in ("Converted", "ReadableView"):
        _error(pdp_sim.get(accepted["flowId"], doc_type=doc_type), 404, "MISSING_RESOURCE")
    _error(pdp_sim.get(accepted["flowId"], doc_type="Nonsense"), 400)

    # PDP_SIMULATOR_STEP_SECONDS = 0: 200, 202 and 203 are all there, in that order.
    statuses = _statuses(pdp_sim)
    assert [message.status_code for _, message in statuses] == ["200", "202", "203"]
    for lc_flow, message in statuses:
        assert lc_flow["flowDirection"] == "In" and lc_flow["flowType"] == "CustomerInvoiceLC"
        assert lc_flow["flowSyntax"] == "CDAR" and lc_flow["acknowledgement"]["status"] == "Ok"
        assert message.invoice_number == "FA-OK-1" and message.seller_siren == SELLER_SIREN
        assert message.invoice_issue_date == dt.date(2025, 3, 14)


def test_processing_rule_and_profile_given_are_kept(pdp_sim) -> None:
    accepted = _accepted(
        pdp_sim.submit(invoice_xml(syntax="UBL"), flowSyntax="UBL", processingRule="B2B", flowProfile="CIUS")
    )
    flow = _flow(pdp_sim, accepted["flowId"])
    assert flow["processingRuleSource"] == "Input" and flow["flowProfile"] == "CIUS"
    assert flow["acknowledgement"]["status"] == "Ok" and flow["flowSyntax"] == "UBL"


def test_a_facturx_pdf_is_accepted(pdp_sim) -> None:
    content = facturx_pdf(number="FA-PDF-1")
    accepted = _accepted(pdp_sim.submit(content, filename="FA-PDF-1.pdf", flowSyntax="Factur-X"))
    flow = _flow(pdp_sim, accepted["flowId"])
    assert flow["acknowledgement"] == {"status": "Ok"} and flow["flowSyntax"] == "Factur-X"
    assert flow["flowProfile"] == "CIUS"
    original = pdp_sim.get(accepted["flowId"], doc_type="Original")
    assert original.headers["content-type"] == "application/pdf" and original.body == content
    assert [m.status_code for _, m in _statuses(pdp_sim)] == ["200", "202", "203"]
    # The same PDF declared as CII is a flow type error.
    refused = _accepted(pdp_sim.submit(facturx_pdf(), flowSyntax="CII"))
    assert _flow(pdp_sim, refused["flowId"])["acknowledgement"]["details"][0]["reasonCode"] == "FlowTypeError"


def test_the_lifecycle_follows_the_step_and_tick_never_doubles_a_status(pdp_sim, settings) -> None:
    settings.PDP_SIMULATOR_STEP_SECONDS = 3600
    accepted = _accepted(pdp_sim.submit(invoice_xml()))
    assert [m.status_code for _, m in _statuses(pdp_sim)] == ["200"]
    invoice = SimFlow.objects.get(flow_id=accepted["flowId"])
    assert invoice.status_flows.filter(due_at__isnull=False).count() == 2

    # Two ticks at once, each in its own thread and connection: each status is materialised once.
    later = timezone.now() + dt.timedelta(hours=1, minutes=1)
    barrier = threading.Barrier(2)
    claimed: list[int] = []

    def run() -> None:
        try:
            barrier.wait()
            claimed.append(engine.tick(later))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [0, 1]  # the 202 is due, the 203 is not yet
    assert engine.tick(later) == 0
    assert engine.tick(later + dt.timedelta(hours=1)) == 1
    assert engine.tick(later + dt.timedelta(hours=1)) == 0
    assert [m.status_code for _, m in _statuses(pdp_sim)] == ["200", "202", "203"]
    codes = list(invoice.status_flows.values_list("status_code", flat=True))
    assert sorted(codes) == ["200", "202", "203"]


def test_an_invalid_invoice_is_refused_with_its_rules_and_a_501(pdp_sim) -> None:
    # A 10-digit SIREN: BR-FR rules fail (the XSD does not care).
    content = invoice_xml(number="FA-BAD-1").replace(SELLER_SIREN.encode(), b"7328293201", 1)
    accepted = _accepted(pdp_sim.submit(content, trackingId="bad-1"))
    flow = _flow(pdp_sim, accepted["flowId"])
    ack = flow["acknowledgement"]
    assert ack["status"] == "Error" and flow["flowProfile"] == "Undefined"
    reason_codes = {detail["reasonCode"] for detail in ack["details"]}
    assert reason_codes and all(code.startswith("BR-") for code in reason_codes), reason_codes
    assert all(detail["level"] == "Error" and detail["reasonMessage"] for detail in ack["details"])

    statuses = _statuses(pdp_sim)
    assert [m.status_code for _, m in statuses] == ["501"]
    message = statuses[0][1]
    assert message.reason_code == "IRR_SYNTAX" and message.invoice_number == "FA-BAD-1"
    # An Error flow blocks nothing: the corrected invoice may reuse its trackingId.
    assert _flow(pdp_sim, _accepted(pdp_sim.submit(invoice_xml(), trackingId="bad-1"))["flowId"])[
        "acknowledgement"
    ] == {"status": "Ok"}


@pytest.mark.parametrize(
    ("content", "flow_info", "reason_code", "irr"),
    [
        (b"", {}, "EmptyFlow", "IRR_VIDE_F"),
        (b"<not-an-invoice/>", {}, "InvalidSchema", "IRR_SYNTAX"),
        (b"<broken", {}, "InvalidSchema", "IRR_SYNTAX"),
        (None, {"flowSyntax": "UBL"}, "FlowTypeError", "IRR_TYPE_F"),
        (None, {"flowSyntax": "CDAR"}, "FlowTypeError", None),
        (None, {"sha256": "0" * 64}, "ChecksumMismatch", "IRR_SYNTAX"),
        (b"<a/>", {"flowSyntax": "FRR"}, "OtherTechnicalError", None),
        ("bad-siren", {}, None, "IRR_SYNTAX"),  # rule errors; the 501 copes with a malformed SIREN
    ],
)
def test_acknowledgement_errors(pdp_sim, content, flow_info, reason_code, irr) -> None:
    if content == "bad-siren":
        content = invoice_xml().replace(SELLER_SIREN.encode(), b"ABCDEFGHI")
    content = invoice_xml() if content is None else content
    accepted = _accepted(pdp_sim.submit(content, **flow_info))
    ack = _flow(pdp_sim, accepted["flowId"])["acknowledgement"]
    assert ack["status"] == "Error", ack
    assert ack["details"][0]["reasonCode"] == reason_code or reason_code is None, ack
    statuses = _statuses(pdp_sim)
    if irr is None:  # a lifecycle message refused: no lifecycle about it
        assert statuses == []
    else:
        assert [(m.status_code, m.reason_code) for _, m in statuses] == [("501", irr)]


def test_duplicates_are_refused_without_touching_the_first_flow(pdp_sim) -> None:
    content = invoice_xml(number="FA-DUP-1")
    first = _accepted(pdp_sim.submit(content, trackingId="dup-1"))
    by_tracking = _accepted(pdp_sim.submit(invoice_xml(number="FA-DUP-2"), trackingId="dup-1"))
    by_content = _accepted(pdp_sim.submit(content, trackingId="dup-other"))
    for accepted, item in ((by_tracking, "trackingId"), (by_content, "sha256")):
        ack = _flow(pdp_sim, accepted["flowId"])["acknowledgement"]
        assert ack["status"] == "Error"
        assert ack["details"][0]["reasonCode"] == "AlreadyExistingFlow"
        assert ack["details"][0]["item"] == item and first["flowId"] in ack["details"][0]["reasonMessage"]
    # A duplicate gets no 501: it would name the invoice the first flow delivered.
    assert [m.status_code for _, m in _statuses(pdp_sim)] == ["200", "202", "203"]
    # Another organisation may submit the same file.
    other = _accepted(pdp_sim.submit(content, org=OTHER_SIREN, trackingId="dup-1"))
    assert _flow(pdp_sim, other["flowId"], org=OTHER_SIREN)["acknowledgement"]["status"] == "Ok"


@pytest.mark.parametrize(
    ("flow_info", "code"),
    [
        ({"name": None}, "MISSING_REQUIRED_FIELD"),
        ({"flowSyntax": None}, "MISSING_REQUIRED_FIELD"),
        ({"flowSyntax": "PDF"}, "INVALID_REQUEST"),
        ({"trackingId": "x" * 65}, "INVALID_REQUEST"),
        ({"processingRule": "B3B"}, "INVALID_REQUEST"),
        ({"flowProfile": "Full"}, "INVALID_REQUEST"),
        ({"sha256": "ABC"}, "INVALID_REQUEST"),
    ],
)
def test_bad_flow_info_is_a_400(pdp_sim, flow_info, code) -> None:
    info = {"name": "x.xml", "flowSyntax": "CII", **flow_info}
    info = {k: v for k, v in info.items() if v is not None}
    answer = pdp_sim.call(
        "POST",
        FLOWS,
        fields={
            "flowInfo": ("flowInfo.json", json.dumps(info).encode(), "application/json"),
            "file": ("x.xml", invoice_xml(), "application/xml"),
        },
    )
    _error(answer, 400, code)
    assert not SimFlow.objects.exists()


def test_malformed_submissions(pdp_sim, settings) -> None:
    _error(pdp_sim.call("POST", FLOWS, fields={"file": ("x.xml", b"<a/>", "application/xml")}), 400)
    _error(pdp_sim.call("POST", FLOWS, fields={"flowInfo": "{not json", "file": ("x.xml", b"<a/>")}), 400)
    _error(pdp_sim.call("POST", FLOWS, fields={"flowInfo": '{"name": "x", "flowSyntax": "CII"}'}), 400)
    _error(pdp_sim.call("POST", FLOWS, json_body={"name": "x"}), 400)
    settings.PDP_SIMULATOR_MAX_FLOW_BYTES = 1000
    _error(pdp_sim.submit(invoice_xml()), 413, "FILE_SIZE_EXCEEDED")
    assert not SimFlow.objects.exists()


def test_submitted_lifecycle_messages(pdp_sim) -> None:
    accepted = _accepted(pdp_sim.submit(invoice_xml(number="FA-LC-1")))
    invoice = SimFlow.objects.get(flow_id=accepted["flowId"])
    ref = engine.invoice_ref(invoice)

    def status(code: str, emitter: str, **kwargs) -> bytes:
        message = cdar.status_message(
            code,
            invoice_number=ref.number,
            invoice_issue_date=ref.issue_date,
            seller_siren=SELLER_SIREN,
            buyer_siren=BUYER_SIREN,
            emitter=emitter,
            message_id=f"T-{uuid.uuid4().hex}",
            issued_at=timezone.now(),
            **kwargs,
        )
        return cdar.build(message)

    # The seller reports its invoice cashed: a CustomerInvoiceLC.
    cashed = status("212", "seller", amounts=(cdar.Amount(Decimal("120.00"), Decimal("20.00")),))
    flow = _flow(pdp_sim, _accepted(pdp_sim.submit(cashed, flowSyntax="CDAR"))["flowId"])
    assert flow["flowType"] == "CustomerInvoiceLC" and flow["acknowledgement"]["status"] == "Ok"
    assert flow["flowDirection"] == "Out"
    # The buyer approves it: for the buyer's organisation that is a SupplierInvoiceLC.
    approved = status("205", "buyer")
    flow = _flow(
        pdp_sim,
        _accepted(pdp_sim.submit(approved, org=BUYER_SIREN, flowSyntax="CDAR"))["flowId"],
        BUYER_SIREN,
    )
    assert flow["flowType"] == "SupplierInvoiceLC" and flow["acknowledgement"]["status"] == "Ok"
    # A refusal stripped of its reason breaks BR-FR-CDV-15.
    refused = status("210", "buyer", reason_code="DOUBLON")
    start = refused.index(b"<ram:ReasonCode>")
    end = refused.index(b"</ram:ReasonCode>") + len(b"</ram:ReasonCode>")
    broken = refused[:start] + refused[end:]
    flow = _flow(
        pdp_sim, _accepted(pdp_sim.submit(broken, org=BUYER_SIREN, flowSyntax="CDAR"))["flowId"], BUYER_SIREN
    )
    details = flow["acknowledgement"]["details"]
    assert flow["acknowledgement"]["status"] == "Error"
    assert {d["reasonCode"] for d in details} == {"InvoiceLCRuleError"}
    assert any(d["item"].startswith("BR-FR-CDV-15") for d in details), details
    # Not a CDAR at all.
    garbage = _flow(
        pdp_sim, _accepted(pdp_sim.submit(b"<x/>", org=BUYER_SIREN, flowSyntax="CDAR"))["flowId"], BUYER_SIREN
    )
    assert garbage["acknowledgement"]["details"][0]["reasonCode"] == "InvalidSchema"
    assert garbage["flowType"] == "Undefined"


# --- Search -----------------------------------------------------------------------------------------------
def test_search_filters_and_cursor_pagination(pdp_sim) -> None:
    ok = [_accepted(pdp_sim.submit(invoice_xml(), trackingId=f"t-{n}")) for n in range(3)]
    bad = _accepted(pdp_sim.submit(b"", trackingId="t-empty"))
    # 3 accepted invoices with 3 statuses each, 1 refused one with its 501.
    everything = pdp_sim.search_all({"flowDirection": ["In", "Out"]})
    assert len(everything) == 3 + 9 + 1 + 1
    assert [f["flowId"] for f in everything][:1] == [ok[0]["flowId"]]

    page = _search(pdp_sim, {"flowDirection": ["In", "Out"]}, limit=5)
    assert page["limit"] == 5 and page["filters"] == {"flowDirection": ["In", "Out"]}
    seen = [f["flowId"] for f in page["results"]]
    while "nextCursor" in page:
        page = _search(pdp_sim, {"flowDirection": ["In", "Out"]}, limit=5, cursor=page["nextCursor"])
        seen += [f["flowId"] for f in page["results"]]
    assert seen == [f["flowId"] for f in everything] and len(set(seen)) == len(seen)
    assert len(page["results"]) == 4  # the last page: no nextCursor

    assert [f["flowId"] for f in _search(pdp_sim, {"trackingId": "t-1"})["results"]] == [ok[1]["flowId"]]
    errors = _search(pdp_sim, {"ackStatus": "Error"})["results"]
    assert [f["flowId"] for f in errors] == [bad["flowId"]]
    invoices = _search(pdp_sim, {"flowType": ["CustomerInvoice"], "flowDirection": ["Out"]})["results"]
    assert {f["flowId"] for f in invoices} == {a["flowId"] for a in [*ok, bad]}
    assert _search(pdp_sim, {"processingRule": ["B2C"]})["results"] == []
    assert len(_search(pdp_sim, {"processingRule": ["B2B"]}, limit=100)["results"]) == 14

    # updatedAfter is strict: the last flow's own updatedAt excludes it.
    last = everything[-1]
    assert _search(pdp_sim, {"updatedAfter": last["updatedAt"]})["results"] == []
    before_last = _search(pdp_sim, {"updatedAfter": everything[0]["updatedAt"]}, limit=100)["results"]
    assert everything[0]["flowId"] not in {f["flowId"] for f in before_last}
    assert _search(pdp_sim, {"updatedBefore": everything[0]["submittedAt"]})["results"] == []


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"where": {}},
        {"where": {"flowType": []}},
        {"where": {"ackStatus": "Ok"}, "limit": 101},
        {"where": {"ackStatus": "Ok"}, "limit": 0},
        {"where": {"ackStatus": "Ok"}, "limit": "10"},
        {"where": {"ackStatus": "Ok"}, "cursor": "garbage"},
        {"where": {"ackStatus": "Ok"}, "cursor": base64.b64encode(b'{"u": "2025-01-01", "s": 1}').decode()},
        {"where": {"ackStatus": "Fine"}},
        {"where": {"flowType": ["Invoice"]}},
        {"where": {"updatedAfter": "yesterday"}},
        {"where": {"updatedAfter": "2025-01-01T00:00:00"}},  # no time zone
        {"where": {"unknown": 1}},
    ],
)
def test_bad_searches_are_400(pdp_sim, params) -> None:
    _error(pdp_sim.call("POST", SEARCH, json_body=params), 400)


def test_a_cursor_belongs_to_its_organization(pdp_sim) -> None:
    for _ in range(2):
        pdp_sim.submit(invoice_xml())
    page = _search(pdp_sim, {"flowDirection": ["Out"]}, limit=1)
    assert page["nextCursor"]
    _error(pdp_sim.search({"flowDirection": ["Out"]}, org=OTHER_SIREN, cursor=page["nextCursor"]), 400)


def test_organizations_never_see_each_others_flows(pdp_sim) -> None:
    accepted = _accepted(pdp_sim.submit(invoice_xml()))
    _error(pdp_sim.get(accepted["flowId"], org=OTHER_SIREN), 404, "MISSING_RESOURCE")
    _error(pdp_sim.get(accepted["flowId"], org=OTHER_SIREN, doc_type="Original"), 404)
    assert _search(pdp_sim, {"flowDirection": ["In", "Out"]}, org=OTHER_SIREN)["results"] == []
    _error(pdp_sim.get(str(uuid.uuid4())), 404, "MISSING_RESOURCE")


# --- Faults -----------------------------------------------------------------------------------------------
def test_injected_faults(pdp_sim) -> None:
    answer = pdp_sim.call(
        "POST", "_control/faults", org=None, json_body={"operation": "createFlow", "status": 503, "count": 2}
    )
    assert answer.status == 201, answer.body
    for _ in range(2):
        failed = pdp_sim.submit(invoice_xml())
        _error(failed, 503, "RESOURCE_ERROR")
        assert failed.headers["retry-after"] == "1"
    assert not SimFlow.objects.exists()
    _accepted(pdp_sim.submit(invoice_xml()))

    # afterStore: the flow is stored and acknowledged, the answer is lost.
    pdp_sim.call(
        "POST",
        "_control/faults",
        org=None,
        json_body={"operation": "createFlow", "status": 500, "count": 1, "afterStore": True},
    )
    content = invoice_xml()
    _error(pdp_sim.submit(content, trackingId="lost-1"), 500, "INTERNAL_ERROR")
    stored = _search(pdp_sim, {"trackingId": "lost-1"})["results"]
    assert len(stored) == 1 and stored[0]["acknowledgement"]["status"] == "Ok"
    again = _accepted(pdp_sim.submit(content, trackingId="lost-1"))
    assert (
        _flow(pdp_sim, again["flowId"])["acknowledgement"]["details"][0]["reasonCode"]
        == "AlreadyExistingFlow"
    )

    # Other operations, scoped to one organisation; DELETE clears.
    pdp_sim.call("POST", "_control/faults", json_body={"operation": "searchFlows", "status": 429, "count": 5})
    _error(pdp_sim.search({"ackStatus": "Ok"}), 429, "TOO_MANY_REQUESTS")
    assert pdp_sim.search({"ackStatus": "Ok"}, org=OTHER_SIREN).status == 200
    assert pdp_sim.call("DELETE", "_control/faults", org=None).status == 204
    assert not SimFault.objects.exists()
    assert pdp_sim.search({"ackStatus": "Ok"}).status == 200
    engine.fault_add(operation="getFlow", status=404)
    _error(pdp_sim.get(again["flowId"]), 404)
    assert pdp_sim.get(again["flowId"]).status == 200

    _error(pdp_sim.call("POST", "_control/faults", json_body={"operation": "nope", "status": 503}), 400)
    _error(pdp_sim.call("POST", "_control/faults", json_body={"operation": "getFlow", "status": 200}), 400)


# --- Control: statuses and incoming invoices --------------------------------------------------------------
def test_pushed_statuses(pdp_sim) -> None:
    accepted = _accepted(pdp_sim.submit(invoice_xml(number="FA-PUSH-1")))
    path = f"_control/flows/{accepted['flowId']}/statuses"

    answer = pdp_sim.call("POST", path, json_body={"statusCode": "205", "emitter": "buyer"})
    assert answer.status == 201, answer.body
    pushed = answer.json()
    assert_schema(pushed, "schemas/Flow")
    assert pushed["flowType"] == "CustomerInvoiceLC" and pushed["flowDirection"] == "In"
    message = cdar.parse(pdp_sim.get(pushed["flowId"], doc_type="Original").body)
    assert message.status_code == "205" and message.invoice_number == "FA-PUSH-1"

    cashed = pdp_sim.call(
        "POST",
        path,
        json_body={"statusCode": "212", "amounts": [{"amount": "120.00", "vatRate": "20.00"}]},
    )
    assert cashed.status == 201, cashed.body
    message = cdar.parse(pdp_sim.get(cashed.json()["flowId"], doc_type="Original").body)
    assert message.amounts[0].amount == Decimal("120.00") and message.sender.role == "SE"

    refused = pdp_sim.call("POST", path, json_body={"statusCode": "210", "emitter": "buyer"})
    assert "210" in _error(refused, 422, "UNPROCESSABLE_ENTITY")["errorMessage"]
    _error(pdp_sim.call("POST", path, json_body={"statusCode": "999"}), 422)
    _error(pdp_sim.call("POST", path, json_body={"statusCode": "210", "reasonCode": "IRR_SYNTAX"}), 422)
    _error(pdp_sim.call("POST", path, json_body={"statusCode": "212", "amounts": [{"amount": "x"}]}), 400)
    _error(pdp_sim.call("POST", path, json_body={}), 400, "MISSING_REQUIRED_FIELD")
    _error(pdp_sim.call("POST", path, org=OTHER_SIREN, json_body={"statusCode": "205"}), 404)
    _error(
        pdp_sim.call("POST", f"_control/flows/{pushed['flowId']}/statuses", json_body={"statusCode": "205"}),
        422,
    )

    refused = pdp_sim.call(
        "POST", path, json_body={"statusCode": "210", "reasonCode": "DOUBLON", "reason": "Déjà reçue"}
    )
    assert refused.status == 201
    message = cdar.parse(pdp_sim.get(refused.json()["flowId"], doc_type="Original").body)
    assert (message.reason_code, message.reason) == ("DOUBLON", "Déjà reçue")
    codes = [m.status_code for _, m in _statuses(pdp_sim)]
    assert codes == ["200", "202", "203", "205", "212", "210"]


def test_incoming_supplier_invoices(pdp_sim) -> None:
    content = invoice_xml(number="FA-IN-1")
    answer = pdp_sim.call(
        "POST",
        "_control/inbound",
        org=BUYER_SIREN,
        fields={"file": ("FA-IN-1.xml", content, "application/xml")},
    )
    assert answer.status == 201, answer.body
    flow = answer.json()
    assert_schema(flow, "schemas/Flow")
    assert flow["flowType"] == "SupplierInvoice" and flow["flowDirection"] == "In"
    assert flow["flowSyntax"] == "CII" and flow["acknowledgement"] == {"status": "Ok"}
    assert flow["name"] == "FA-IN-1.xml"
    assert pdp_sim.get(flow["flowId"], org=BUYER_SIREN, doc_type="Original").body == content
    received = _search(pdp_sim, {"flowType": ["SupplierInvoice"]}, org=BUYER_SIREN)["results"]
    assert [f["flowId"] for f in received] == [flow["flowId"]]

    # The buyer can have statuses on it (e.g. the seller's platform); they are SupplierInvoiceLC.
    pushed = pdp_sim.call(
        "POST",
        f"_control/flows/{flow['flowId']}/statuses",
        org=BUYER_SIREN,
        json_body={"statusCode": "212", "amounts": [{"amount": "120.00", "vatRate": "20.00"}]},
    )
    assert pushed.status == 201 and pushed.json()["flowType"] == "SupplierInvoiceLC"

    # An invoice breaking rules is delivered all the same (the buyer must be able to refuse it).
    broken = invoice_xml(number="FA-IN-2").replace(SELLER_SIREN.encode(), b"7328293201", 1)
    flow = engine.inbound_create(BUYER_SIREN, broken)
    assert flow.ack_status == "Ok" and flow.ack_details
    assert {d["level"] for d in flow.ack_details} == {"Warning"}
    assert flow.name == "FA-IN-2.xml"

    answer = pdp_sim.call("POST", "_control/inbound", org=BUYER_SIREN, fields={"file": ("x.xml", b"<x/>")})
    _error(answer, 422)
    _error(pdp_sim.call("POST", "_control/inbound", org=BUYER_SIREN, fields={"name": "x"}), 400)


# --- Webhooks ---------------------------------------------------------------------------------------------
def test_webhooks_are_managed_and_called_back_signed(pdp_sim, callback_receiver, stub_worker) -> None:
    answer = pdp_sim.call(
        "POST", WEBHOOKS, json_body={"callbackUrl": f"{callback_receiver.url}/hook", "flowDirection": "In"}
    )
    assert answer.status == 201, answer.body
    created = answer.json()
    assert_schema(created, "schemas/WebhookIdParam")
    assert set(created) == {"webhookId", "signingKey", "createdAt"}
    key = afnor.signing_key_bytes(created["signingKey"])
    assert len(key) == 32

    other = pdp_sim.call(
        "POST",
        WEBHOOKS,
        json_body={"callbackUrl": "https://example.invalid/x", "flowTypes": ["SupplierInvoice"]},
    )
    assert other.status == 201
    listed = pdp_sim.call("GET", WEBHOOKS)
    assert listed.status == 200
    body = listed.json()
    assert_schema(body, LIST_SCHEMA)
    assert body["count"] == 2 and body["webhookIds"] == [created["webhookId"], other.json()["webhookId"]]
    assert body["webhooks"][0] == {
        "webhookId": created["webhookId"],
        "createdAt": created["createdAt"],
        "callbackUrl": f"{callback_receiver.url}/hook",
        "flowDirection": "In",
    }
    for item in body["webhooks"]:
        assert_schema(item, "schemas/Webhook")
        assert "signingKey" not in item
    assert pdp_sim.call("GET", WEBHOOKS, org=OTHER_SIREN).json() == {
        "count": 0,
        "webhookIds": [],
        "webhooks": [],
    }

    # An accepted invoice: its three incoming statuses are called back (the Out flow does not match).
    accepted = _accepted(pdp_sim.submit(invoice_xml()))
    calls = callback_receiver.wait(3)
    received_ids = []
    for call in calls:
        assert call.path == "/hook"
        assert call.headers["content-type"] == "application/json"
        assert uuid.UUID(call.headers["request-id"])
        assert afnor.verify_callback(
            call.body, call.headers["afnor-signature"], call.headers["afnor-signature-timestamp"], key
        )
        assert not afnor.verify_callback(
            call.body + b" ", call.headers["afnor-signature"], call.headers["afnor-signature-timestamp"], key
        )
        flow = json.loads(call.body)
        assert_schema(flow, "schemas/Flow")
        assert flow["flowDirection"] == "In"
        received_ids.append(flow["flowId"])
    lifecycle = _search(pdp_sim, {"flowDirection": ["In"]})["results"]
    assert sorted(received_ids) == sorted(f["flowId"] for f in lifecycle)
    assert accepted["flowId"] not in received_ids

    # Deleting: 204, then 404; never another organisation's.
    webhook_id = created["webhookId"]
    _error(pdp_sim.call("DELETE", f"{WEBHOOKS}/{webhook_id}", org=OTHER_SIREN), 404, "MISSING_RESOURCE")
    assert pdp_sim.call("DELETE", f"{WEBHOOKS}/{webhook_id}").status == 204
    _error(pdp_sim.call("DELETE", f"{WEBHOOKS}/{webhook_id}"), 404, "MISSING_RESOURCE")
    _error(pdp_sim.call("DELETE", f"{WEBHOOKS}/not-a-uuid"), 400)
    assert SimWebhook.objects.count() == 1
    pdp_sim.call("POST", f"_control/flows/{accepted['flowId']}/statuses", json_body={"statusCode": "205"})
    stub_worker.join("pdp", timeout=30_000)
    assert callback_receiver.requests.empty()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"callbackUrl": "ftp://example.com/x"},
        {"callbackUrl": "not a url"},
        {"callbackUrl": "https://example.com/x", "flowTypes": ["Invoice"]},
        {"callbackUrl": "https://example.com/x", "flowDirection": "Up"},
        {"callbackUrl": "https://example.com/x", "ackStatus": "Fine"},
    ],
)
def test_bad_webhooks_are_400(pdp_sim, params) -> None:
    _error(pdp_sim.call("POST", WEBHOOKS, json_body=params), 400)


def test_a_failed_callback_is_retried(pdp_sim, callback_receiver, stub_worker, monkeypatch) -> None:
    from pdp.simulator import tasks

    # Short backoff for the test: Dramatiq's own retry middleware, with the actor's options.
    monkeypatch.setitem(tasks.deliver_callback.options, "min_backoff", 10)
    monkeypatch.setitem(tasks.deliver_callback.options, "max_backoff", 50)
    callback_receiver.status = 500
    pdp_sim.call(
        "POST", WEBHOOKS, json_body={"callbackUrl": callback_receiver.url, "flowTypes": ["CustomerInvoice"]}
    )
    pdp_sim.submit(invoice_xml())
    first = callback_receiver.wait(1)[0]
    callback_receiver.status = 200
    second = callback_receiver.wait(1)[0]
    assert first.headers["request-id"] == second.headers["request-id"]
    assert first.body == second.body


# --- afnor ------------------------------------------------------------------------------------------------
def test_callback_signature() -> None:
    key, payload, ts = b"k" * 32, b'{"flowId":"1"}', 1_750_000_000
    signature = afnor.sign_callback(payload, key, ts)
    fingerprint = hashlib.sha256(payload + b"@1750000000").hexdigest().encode()
    assert signature == base64.b64encode(hmac.new(key, fingerprint, hashlib.sha256).digest()).decode()
    assert afnor.verify_callback(payload, signature, str(ts), key, now=ts + 10)
    assert not afnor.verify_callback(payload, signature, ts, key, now=ts + 301)  # stale
    assert not afnor.verify_callback(payload, signature, ts, key, now=ts - 301)  # from the future
    assert not afnor.verify_callback(payload, signature, ts + 1, key, now=ts)
    assert not afnor.verify_callback(payload, signature, ts, b"x" * 32, now=ts)
    assert not afnor.verify_callback(payload, "not base64!", ts, key, now=ts)
    assert not afnor.verify_callback(payload, signature, "soon", key, now=ts)


def test_enumerations_are_the_specs() -> None:
    schemas = flow_spec()["components"]["schemas"]
    for name in ("FlowSyntax", "FlowProfile", "FlowType", "FlowDirection", "FlowAckStatus", "ProcessingRule"):
        assert getattr(afnor, name) == tuple(schemas[name]["enum"]), name
    assert afnor.ReasonCodeEnum == tuple(schemas["ReasonCodeEnum"]["enum"])


def test_reason_mapping() -> None:
    assert afnor.irrecevable_reason("EmptyFlow") == "IRR_VIDE_F"
    assert afnor.irrecevable_reason("VirusFound") == "IRR_ANTIVIRUS"
    assert afnor.irrecevable_reason("FileSizeExceeded") == "IRR_TAILLE_F"
    assert afnor.irrecevable_reason("OtherTechnicalError") == "IRR_SYNTAX"  # AUTRE is refused on a 501
    assert afnor.irrecevable_reason("BR-FR-09_BT-29") == "IRR_SYNTAX"
    assert set(afnor.IRRECEVABLE_REASONS) == set(cdar.STATUSES["501"].reasons)
