"""Behaviour of the built-in PDP simulator: a faithful server side of the AFNOR XP Z12-013 Flow Service
(``pdp/spec/flow-service-1.3.0.swagger.json``) for the sandbox and the tests.

Plain functions over the ``pdp_simulator`` models; the views only parse requests and render answers. A
refused call raises ``SimError`` (HTTP status + the spec's Error body).

What it plays, beyond storing flows:

* every submitted flow is acknowledged at once (empty file, checksum, duplicate, syntax, XSD and
  Schematron checks) and stored with its acknowledgement;
* an invoice acknowledged Ok gets the statuses its platforms would send, as incoming CDAR flows:
  200 Déposée at once, 202 Reçue after ``PDP_SIMULATOR_STEP_SECONDS``, 203 Mise à disposition after twice
  that; an invoice acknowledged Error gets a 501 Irrecevable. Statuses planned for later are stored
  invisible (``due_at``) and made visible by ``tick``, which every API call runs first and a periodic
  actor runs too (so webhooks fire without anyone polling);
* control operations for tests and the sandbox: push any status (``status_push``), deliver a supplier
  invoice (``inbound_create``), inject faults (``fault_add``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import logging
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.dateparse import parse_datetime
from lxml import etree

from pdp import afnor, cdar
from pdp.simulator.models import SimFault, SimFlow, SimWebhook

logger = logging.getLogger(__name__)

TOKEN_SALT = "pdp.simulator.oauth-token"  # noqa: S105 - a signing salt, not a secret
TOKEN_TTL = 3600
CURSOR_SALT = "pdp.simulator.search-cursor"
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
PLATFORM_NAME = "Scell PDP simulator"

# Operations (the spec's operationIds) a fault may be injected into.
FAULT_OPERATIONS = ("createFlow", "searchFlows", "getFlow", "listWebhooks", "createWebhook", "deleteWebhook")

# errorCode of each status, from the examples of the spec's ErrorXXXResponse.
ERROR_CODES: dict[int, str] = {
    400: "INVALID_REQUEST",
    401: "INVALID_TOKEN",
    403: "FORBIDDEN_ACCESS",
    404: "MISSING_RESOURCE",
    413: "FILE_SIZE_EXCEEDED",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    503: "RESOURCE_ERROR",
}

# Factur-X / validation profile -> the spec's FlowProfile. UBL has no Factur-X profile: an EN 16931 UBL
# invoice is the CIUS.
PROFILE_TO_FLOW_PROFILE: dict[str | None, str] = {
    "en16931": "CIUS",
    "extended": "Extended-CTC-FR",
    "basic": "Basic",
    "basicwl": "Basic",
    "minimum": "Basic",
    None: "CIUS",
}
# A lifecycle message is neither Basic nor Extended; the French CDAR profile (urn.cpro.gouv.fr:1p0:CDV) is
# a CIUS of the UN/CEFACT message, the closest of the spec's values ("Undefined" means "not known yet").
CDAR_FLOW_PROFILE = "CIUS"

# Lifecycle played after an invoice is accepted: (status, steps after the submission).
ACCEPTED_LIFECYCLE: tuple[tuple[str, int], ...] = (("200", 0), ("202", 1), ("203", 2))
# Refusals that get no 501: a duplicate is the second copy of a flow that was accepted (the spec maps
# AlreadyExistingFlow to no CDAR reason, "N/A"), and a 501 naming the same invoice would contradict the
# statuses of the first copy, which a receiver matches by invoice number and seller.
NO_IRRECEVABLE_REASONS = frozenset({"AlreadyExistingFlow"})

_SHA256 = re.compile(r"^[a-f0-9]{64}$")
_VALIDATION_SYNTAX = {"facturx": "Factur-X", "cii": "CII", "ubl": "UBL", "cdar": "CDAR"}


class SimError(Exception):
    """A refused call: the HTTP ``status`` and the spec's Error body (``errorCode``, ``errorMessage``)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "",
        details: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or ERROR_CODES.get(status, "SIMULATED_ERROR")
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        body = {"errorCode": self.code, "errorMessage": self.message}
        if self.details:
            body["details"] = self.details
        return body


class SimulatorBug(RuntimeError):
    """The simulator produced something the standard refuses (e.g. a CDAR failing BR-FR-CDV)."""


def _bad_request(message: str, *, missing: bool = False) -> SimError:
    return SimError(400, message, code="MISSING_REQUIRED_FIELD" if missing else "INVALID_REQUEST")


# --- Formatting -------------------------------------------------------------------------------------------
def format_datetime(value: dt.datetime | None) -> str:
    """RFC 3339 in UTC with ``Z``, microseconds kept: a client may pass an updatedAt back as updatedAfter
    and the strict comparison must then exclude exactly that flow."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def flow_json(flow: SimFlow) -> dict[str, Any]:
    """The spec's Flow object (every property it requires, trackingId and sha256 when known)."""
    acknowledgement: dict[str, Any] = {"status": flow.ack_status}
    if flow.ack_details:
        acknowledgement["details"] = list(flow.ack_details)
    body: dict[str, Any] = {
        "flowId": flow.flow_id,
        "submittedAt": format_datetime(flow.submitted_at),
        "updatedAt": format_datetime(flow.updated_at),
        "name": flow.name,
        "flowSyntax": flow.flow_syntax,
        "flowProfile": flow.flow_profile,
        "processingRule": flow.processing_rule,
        "processingRuleSource": flow.processing_rule_source,
        "flowType": flow.flow_type,
        "flowDirection": flow.flow_direction,
        "acknowledgement": acknowledgement,
    }
    if flow.tracking_id:
        body["trackingId"] = flow.tracking_id
    if flow.sha256:
        body["sha256"] = flow.sha256
    return body


def full_flow_info_json(flow: SimFlow, flow_info: Mapping[str, Any]) -> dict[str, Any]:
    """The createFlow answer (FullFlowInfo): the flowInfo as submitted, the flow id, the submission time
    and the sha256 (computed when it was not given)."""
    body: dict[str, Any] = {"flowId": flow.flow_id, "submittedAt": format_datetime(flow.submitted_at)}
    for key in ("trackingId", "name", "processingRule", "flowSyntax", "flowProfile"):
        if flow_info.get(key) is not None:
            body[key] = flow_info[key]
    body["sha256"] = flow.sha256
    return body


def webhook_json(webhook: SimWebhook, *, with_key: bool = False) -> dict[str, Any]:
    """WebhookIdParam at creation (``with_key``: the only time the signing key is given), else Webhook."""
    body: dict[str, Any] = {"webhookId": str(webhook.id), "createdAt": format_datetime(webhook.created_at)}
    if with_key:
        body["signingKey"] = webhook.signing_key
        return body
    body["callbackUrl"] = webhook.callback_url
    if webhook.flow_types:
        body["flowTypes"] = list(webhook.flow_types)
    if webhook.flow_direction:
        body["flowDirection"] = webhook.flow_direction
    if webhook.ack_status:
        body["ackStatus"] = webhook.ack_status
    return body


# --- Authentication ---------------------------------------------------------------------------------------
def token_issue(*, client_id: str, client_secret: str) -> dict[str, Any]:
    """OAuth2 client credentials: a bearer token (a Django signed, timestamped value: nothing stored)."""
    if not (
        constant_time_compare(client_id or "", settings.PDP_SIMULATOR_CLIENT_ID)
        and constant_time_compare(client_secret or "", settings.PDP_SIMULATOR_CLIENT_SECRET)
    ):
        raise SimError(401, "Unknown client or wrong client secret.", code="INVALID_CLIENT")
    token = signing.dumps({"cid": client_id}, salt=TOKEN_SALT)
    return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL}


def bearer_check(authorization: str) -> None:
    """Accept ``Authorization: Bearer <token>`` with the static PDP_SIMULATOR_TOKEN or a token from
    ``token_issue`` less than TOKEN_TTL seconds old; raise a 401 SimError otherwise."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise SimError(401, "A bearer token is required.", code="MISSING_TOKEN")
    if settings.PDP_SIMULATOR_TOKEN and constant_time_compare(token, settings.PDP_SIMULATOR_TOKEN):
        return
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_TTL)
    except signing.SignatureExpired:
        raise SimError(401, "The token has expired.", code="INVALID_TOKEN") from None
    except signing.BadSignature:
        raise SimError(401, "The token is not valid.", code="INVALID_TOKEN") from None
    if not isinstance(payload, dict) or payload.get("cid") != settings.PDP_SIMULATOR_CLIENT_ID:
        raise SimError(401, "The token is not valid.", code="INVALID_TOKEN")


def organization_check(value: str | None) -> str:
    """The Organization-Id header, required by the simulator on every flow and webhook route: flows and
    webhooks belong to an organisation (a SIREN)."""
    value = (value or "").strip()
    if not value:
        raise _bad_request("The Organization-Id header is required.", missing=True)
    if len(value) > 64:
        raise _bad_request("The Organization-Id header is longer than 64 characters.")
    return value


# --- Faults -----------------------------------------------------------------------------------------------
def fault_add(
    *,
    operation: str,
    status: int,
    count: int = 1,
    after_store: bool = False,
    organization_id: str = "",
) -> SimFault:
    """Make the next ``count`` calls of ``operation`` answer ``status`` (for every organisation, or only
    for ``organization_id``)."""
    if operation not in FAULT_OPERATIONS:
        raise _bad_request(f"operation must be one of {', '.join(FAULT_OPERATIONS)}.")
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise _bad_request("status must be an HTTP error status (400-599).")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
        raise _bad_request("count must be an integer from 1 to 1000.")
    if not isinstance(after_store, bool):
        raise _bad_request("afterStore must be a boolean.")
    return SimFault.objects.create(
        operation=operation,
        status=status,
        remaining=count,
        after_store=after_store,
        organization_id=organization_id,
    )


def faults_clear(*, organization_id: str = "") -> int:
    """Remove the faults (of one organisation when given, else all of them)."""
    faults = SimFault.objects.all()
    if organization_id:
        faults = faults.filter(organization_id=organization_id)
    deleted, _ = faults.delete()
    return deleted


def fault_take(*, operation: str, organization_id: str) -> SimFault | None:
    """Consume one pending fault of ``operation`` for this caller, or None. The decrement is a conditional
    UPDATE, so concurrent calls (the tests' live server is threaded) never consume one fault twice."""
    candidates = (
        SimFault.objects.filter(operation=operation, remaining__gt=0)
        .filter(Q(organization_id="") | Q(organization_id=organization_id))
        .order_by("created_at", "id")
    )
    for fault in candidates:
        if SimFault.objects.filter(pk=fault.pk, remaining__gt=0).update(remaining=F("remaining") - 1):
            return fault
    return None


def fault_error(fault: SimFault) -> SimError:
    headers = {"Retry-After": "1"} if fault.status in (429, 503) else {}
    return SimError(fault.status, f"Injected fault on {fault.operation}.", headers=headers)


# --- Submission -------------------------------------------------------------------------------------------
@dataclass
class _Ack:
    status: str
    details: list[dict[str, str]]
    flow_type: str
    flow_profile: str = ""  # computed; "" when not known


@dataclass(frozen=True)
class InvoiceRef:
    """What a status message says about its invoice, read from the invoice file."""

    number: str
    issue_date: dt.date | None
    type_code: str
    seller_siren: str
    seller_name: str
    buyer_siren: str
    buyer_name: str


def _detail(reason_code: str, item: str, message: str, *, level: str = "Error") -> dict[str, str]:
    return {"level": level, "item": item, "reasonCode": reason_code, "reasonMessage": message}


def validate_flow_info(flow_info: Any) -> dict[str, Any]:
    """Check a flowInfo against the spec's FlowInfo schema; 400 SimError when it does not conform."""
    if not isinstance(flow_info, dict):
        raise _bad_request("flowInfo must be a JSON object.")
    for field in ("name", "flowSyntax"):
        if field not in flow_info or flow_info[field] in (None, ""):
            raise _bad_request(f"flowInfo.{field} is required.", missing=True)
    name = flow_info["name"]
    if not isinstance(name, str) or len(name) > 255:
        raise _bad_request("flowInfo.name must be a string of at most 255 characters.")
    if flow_info["flowSyntax"] not in afnor.FlowSyntax:
        raise _bad_request(f"flowInfo.flowSyntax must be one of {', '.join(afnor.FlowSyntax)}.")
    tracking_id = flow_info.get("trackingId")
    if tracking_id is not None and (not isinstance(tracking_id, str) or not 1 <= len(tracking_id) <= 64):
        raise _bad_request("flowInfo.trackingId must be a string of 1 to 64 characters.")
    rule = flow_info.get("processingRule")
    if rule is not None and rule not in afnor.ProcessingRule:
        raise _bad_request(f"flowInfo.processingRule must be one of {', '.join(afnor.ProcessingRule)}.")
    profile = flow_info.get("flowProfile")
    if profile is not None and profile not in afnor.FlowProfile:
        raise _bad_request(f"flowInfo.flowProfile must be one of {', '.join(afnor.FlowProfile)}.")
    sha = flow_info.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise _bad_request("flowInfo.sha256 must be 64 lowercase hexadecimal characters.")
    return flow_info


def _sniff(content: bytes) -> str:
    """The FlowSyntax the bytes look like ("" when neither PDF nor a known XML root). Reads the root start
    tag only, with entities and network off (the full validation refuses DOCTYPEs afterwards)."""
    if b"%PDF-" in content[:1024]:
        return "Factur-X"
    try:
        events = etree.iterparse(
            io.BytesIO(content),
            events=("start",),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        )
        _, root = next(iter(events))
    except (etree.LxmlError, StopIteration, ValueError):
        return ""
    namespace = etree.QName(root).namespace or ""
    return {
        "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100": "CII",
        "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": "UBL",
        "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": "UBL",
        "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100": "CDAR",
    }.get(namespace, "")


def _invoice_checks(content: bytes, declared: str) -> tuple[list[dict[str, str]], str]:
    """Acknowledgement details of an invoice file (XSD, EN 16931, Factur-X profile, BR-FR rules) and its
    FlowProfile."""
    from invoicing.validation import validate_document

    report = validate_document(content)
    detected = _VALIDATION_SYNTAX.get(report.syntax, "")
    if detected and detected != declared:
        return [_detail("FlowTypeError", "flowSyntax", f"The file is a {detected} flow, not {declared}.")], ""
    details = []
    for issue in report.errors:
        if issue.source in ("xsd", "syntax"):
            details.append(_detail("InvalidSchema", issue.location or issue.rule, issue.message))
        else:
            # Rule errors carry the rule id as an extensible ReasonCode (the schema allows any string).
            details.append(_detail(issue.rule, issue.location or issue.rule, issue.message))
    return details, PROFILE_TO_FLOW_PROFILE.get(report.profile, "CIUS")


def _cdar_checks(content: bytes, organization_id: str) -> tuple[list[dict[str, str]], str]:
    """Acknowledgement details of a lifecycle message, and its FlowType (customer side when the submitter
    is the seller of the invoice it is about)."""
    try:
        message = cdar.parse(content)
    except cdar.CdarError as exc:
        return [_detail("InvalidSchema", "file", str(exc))], "Undefined"
    flow_type = "CustomerInvoiceLC" if message.seller_siren == organization_id else "SupplierInvoiceLC"
    details = [
        _detail("InvoiceLCRuleError", issue.get("rule", ""), issue.get("message", ""))
        for issue in cdar.validate(content)
    ]
    return details, flow_type


def _content_checks(*, organization_id: str, syntax: str, content: bytes, sha_given: str, sha: str) -> _Ack:
    """The checks that need no database, in the spec's order: empty flow, checksum, then format."""
    default_type = "CustomerInvoice" if syntax in afnor.INVOICE_SYNTAXES else "Undefined"
    if not content:
        return _Ack("Error", [_detail("EmptyFlow", "file", "The file is empty.")], default_type)
    if sha_given and sha_given != sha:
        message = f"The sha256 of the file is {sha}, the flowInfo gives {sha_given}."
        return _Ack("Error", [_detail("ChecksumMismatch", "sha256", message)], default_type)
    sniffed = _sniff(content)
    if syntax == "FRR":
        message = "The simulator does not process e-reporting (FRR) flows."
        return _Ack("Error", [_detail("OtherTechnicalError", "flowSyntax", message)], "Undefined")
    if sniffed and sniffed != syntax:
        message = f"The file is a {sniffed} flow, not {syntax}."
        return _Ack("Error", [_detail("FlowTypeError", "flowSyntax", message)], default_type)
    if syntax == "CDAR":
        details, flow_type = _cdar_checks(content, organization_id)
        return _Ack("Error" if details else "Ok", details, flow_type, CDAR_FLOW_PROFILE)
    details, profile = _invoice_checks(content, syntax)
    return _Ack("Error" if details else "Ok", details, default_type, profile)


def _lock_organization(organization_id: str) -> None:
    # Serialises the duplicate check and the insert of one organisation's submissions (two concurrent
    # submissions of the same trackingId must not both be accepted). SQLite serialises writers anyway.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"pdp-simulator:{organization_id}"])


def _duplicate(*, organization_id: str, tracking_id: str, sha: str) -> dict[str, str] | None:
    existing = SimFlow.objects.filter(
        organization_id=organization_id, flow_direction="Out", ack_status__in=("Ok", "Pending")
    )
    if tracking_id:
        same = existing.filter(tracking_id=tracking_id).values_list("flow_id", flat=True).first()
        if same:
            return _detail(
                "AlreadyExistingFlow",
                "trackingId",
                f"The flow {same} already has the trackingId {tracking_id}.",
            )
    same = existing.filter(sha256=sha).values_list("flow_id", flat=True).first()
    if same:
        return _detail(
            "AlreadyExistingFlow", "sha256", f"The flow {same} already has this file (sha256 {sha})."
        )
    return None


def flow_create(
    *, organization_id: str, flow_info: Any, content: bytes, now: dt.datetime | None = None
) -> SimFlow:
    """createFlow: check ``flow_info`` (400) and the size (413), store the flow acknowledged, plan its
    lifecycle, notify the webhooks. The flow is returned whatever its acknowledgement."""
    flow_info = validate_flow_info(flow_info)
    content = bytes(content)
    if len(content) > settings.PDP_SIMULATOR_MAX_FLOW_BYTES:
        raise SimError(
            413,
            f"The file has {len(content)} bytes, the maximum is {settings.PDP_SIMULATOR_MAX_FLOW_BYTES}.",
            code="FILE_SIZE_EXCEEDED",
        )
    syntax = flow_info["flowSyntax"]
    tracking_id = flow_info.get("trackingId") or ""
    sha_given = flow_info.get("sha256") or ""
    sha = hashlib.sha256(content).hexdigest()
    ack = _content_checks(
        organization_id=organization_id, syntax=syntax, content=content, sha_given=sha_given, sha=sha
    )
    now = now or timezone.now()
    with transaction.atomic():
        _lock_organization(organization_id)
        # Only a flow that passed the first checks can be a duplicate: the spec's order is empty flow,
        # checksum, unicity, then the format.
        if content and not (sha_given and sha_given != sha):
            duplicate = _duplicate(organization_id=organization_id, tracking_id=tracking_id, sha=sha)
            if duplicate:
                ack = _Ack("Error", [duplicate], ack.flow_type)
        given_rule = flow_info.get("processingRule")
        flow = SimFlow.objects.create(
            organization_id=organization_id,
            tracking_id=tracking_id,
            name=flow_info["name"],
            flow_syntax=syntax,
            flow_profile=flow_info.get("flowProfile")
            or (ack.flow_profile if ack.status == "Ok" and ack.flow_profile else "Undefined"),
            processing_rule=given_rule or "B2B",
            processing_rule_source="Input" if given_rule else "Computed",
            flow_type=ack.flow_type,
            flow_direction="Out",
            sha256=sha,
            content=content,
            content_type="application/pdf" if b"%PDF-" in content[:1024] else "application/xml",
            ack_status=ack.status,
            ack_details=ack.details,
            submitted_at=now,
            updated_at=now,
        )
        _notify(flow)
        if syntax in afnor.INVOICE_SYNTAXES:
            _plan_lifecycle(flow, now=now)
    tick(now)
    return flow


def _plan_lifecycle(invoice: SimFlow, *, now: dt.datetime) -> None:
    """The statuses the platforms send about a submitted invoice, stored invisible until due."""
    ref = invoice_ref(invoice)
    if invoice.ack_status == "Ok":
        if ref is None:
            raise SimulatorBug(f"accepted invoice flow {invoice.flow_id} cannot be read")
        step = dt.timedelta(seconds=settings.PDP_SIMULATOR_STEP_SECONDS)
        for code, steps in ACCEPTED_LIFECYCLE:
            due = now + steps * step
            data = _status_cdar(code, ref, emitter="platform", issued_at=due)
            _status_flow(invoice, code, data, ref=ref, due_at=due)
        return
    reason_code = invoice.ack_details[0]["reasonCode"] if invoice.ack_details else "OtherTechnicalError"
    if reason_code in NO_IRRECEVABLE_REASONS:
        return
    # A refused file may be unreadable or carry values a CDAR refuses: the 501 then names what the sender
    # called it, with the submitter as the seller and a plain invoice type.
    fallback = (invoice.tracking_id or invoice.name)[:64]
    ref = InvoiceRef(
        number=(ref.number if ref else "") or fallback,
        issue_date=ref.issue_date if ref else None,
        type_code=ref.type_code if ref and ref.type_code in cdar.DOCUMENT_TYPE_CODES else "380",
        seller_siren=(ref.seller_siren if ref else "") or invoice.organization_id,
        seller_name=ref.seller_name if ref else "",
        buyer_siren=ref.buyer_siren if ref else "",
        buyer_name=ref.buyer_name if ref else "",
    )
    reason = "; ".join(f"{d['reasonCode']}: {d['reasonMessage']}" for d in invoice.ack_details[:3])
    irr = {"emitter": "platform", "issued_at": now, "reason_code": afnor.irrecevable_reason(reason_code)}
    try:
        data = _status_cdar("501", ref, reason=reason[:500], **irr)
    except (cdar.CdarError, SimulatorBug):
        # What the file says (a malformed SIREN, date…) broke the message: the bare minimum then.
        ref = InvoiceRef(fallback, None, "380", invoice.organization_id, "", "", "")
        data = _status_cdar("501", ref, reason=afnor.irrecevable_reason(reason_code), **irr)
    _status_flow(invoice, "501", data, ref=ref, due_at=now)


def invoice_ref(flow: SimFlow) -> InvoiceRef | None:
    """The invoice number, date, type and parties of an invoice flow, None when its file is unreadable."""
    from invoicing.formats.parse import parse_invoice

    try:
        document = parse_invoice(bytes(flow.content)).document
    except Exception:  # any unreadable file (ImportFormatError, damaged PDF…): no reference
        return None
    return InvoiceRef(
        number=document.number,
        issue_date=document.issue_date,
        type_code=str(document.type_code or "380"),
        seller_siren=document.seller.siren or (flow.organization_id if flow.flow_direction == "Out" else ""),
        seller_name=document.seller.name,
        buyer_siren=document.buyer.siren or (flow.organization_id if flow.flow_direction == "In" else ""),
        buyer_name=document.buyer.name,
    )


def _status_message(
    code: str,
    ref: InvoiceRef,
    *,
    emitter: str,
    issued_at: dt.datetime,
    reason_code: str = "",
    reason: str = "",
    amounts: tuple[cdar.Amount, ...] = (),
) -> cdar.StatusMessage:
    return cdar.status_message(
        code,
        invoice_number=ref.number,
        invoice_issue_date=ref.issue_date,
        seller_siren=ref.seller_siren,
        buyer_siren=ref.buyer_siren,
        emitter=emitter,
        message_id=f"SIM-{uuid.uuid4().hex}",
        issued_at=issued_at,
        invoice_type_code=ref.type_code,
        reason_code=reason_code,
        reason=reason,
        amounts=amounts,
        seller_name=ref.seller_name,
        buyer_name=ref.buyer_name,
        platform_name=PLATFORM_NAME,
    )


def _status_cdar(code: str, ref: InvoiceRef, **kwargs: Any) -> bytes:
    """A status the simulator plays by itself: it must be valid, or the simulator is wrong."""
    data = cdar.build(_status_message(code, ref, **kwargs))
    issues = cdar.validate(data)
    if issues:
        raise SimulatorBug(f"the simulator's CDAR {code} is invalid: {issues}")
    return data


def _status_flow(
    invoice: SimFlow, code: str, data: bytes, *, ref: InvoiceRef, due_at: dt.datetime | None
) -> SimFlow:
    """An incoming CDAR flow about ``invoice``: visible now (``due_at`` None) or planned."""
    now = timezone.now()
    number = _file_stem(ref.number)
    flow = SimFlow.objects.create(
        organization_id=invoice.organization_id,
        name=f"CDAR_{code}_{number}_{uuid.uuid4().hex[:8]}.xml",
        flow_syntax="CDAR",
        flow_profile=CDAR_FLOW_PROFILE,
        processing_rule=invoice.processing_rule if invoice.processing_rule != "Undefined" else "B2B",
        processing_rule_source="Computed",
        flow_type="SupplierInvoiceLC" if invoice.flow_type == "SupplierInvoice" else "CustomerInvoiceLC",
        flow_direction="In",
        sha256=hashlib.sha256(data).hexdigest(),
        content=data,
        content_type="application/xml",
        ack_status="Ok",
        ack_details=[],
        related_flow=invoice,
        status_code=code,
        submitted_at=None if due_at else now,
        updated_at=None if due_at else now,
        due_at=due_at,
    )
    if due_at is None:
        _notify(flow)
    return flow


def _file_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text or "invoice").strip("-")[:100] or "invoice"


# --- Lifecycle clock --------------------------------------------------------------------------------------
def tick(now: dt.datetime | None = None) -> int:
    """Make the planned flows that are due visible (submittedAt = updatedAt = now) and notify their
    webhooks; returns how many. Safe to run concurrently: rows are claimed with SELECT … FOR UPDATE SKIP
    LOCKED and a conditional UPDATE, so a status is never materialised twice."""
    now = now or timezone.now()
    due = SimFlow.objects.filter(due_at__isnull=False, due_at__lte=now)
    # The common case (nothing due) costs one query on the partial index.
    if not due.exists():
        return 0
    claimed = 0
    with transaction.atomic():
        rows = list(due.select_for_update(skip_locked=True).order_by("due_at", "seq")[:500])
        for row in rows:
            if SimFlow.objects.filter(pk=row.pk, due_at__isnull=False).update(
                due_at=None, submitted_at=now, updated_at=now
            ):
                row.due_at, row.submitted_at, row.updated_at = None, now, now
                _notify(row)
                claimed += 1
    return claimed


# --- Reading ----------------------------------------------------------------------------------------------
def flow_get(*, organization_id: str, flow_id: str) -> SimFlow:
    """A visible flow of the organisation; 404 for any other (unknown, planned, another organisation's)."""
    flow = SimFlow.objects.filter(
        organization_id=organization_id, flow_id=flow_id, due_at__isnull=True
    ).first()
    if flow is None:
        raise SimError(404, f"No flow {flow_id}.", code="MISSING_RESOURCE")
    return flow


def _parse_when(value: Any, field: str) -> dt.datetime:
    when = parse_datetime(value) if isinstance(value, str) else None
    if when is None or when.tzinfo is None:
        raise _bad_request(f"where.{field} must be an RFC 3339 date-time with a time zone.")
    return when


def _enum_list(value: Any, field: str, allowed: tuple[str, ...]) -> list[str]:
    if not isinstance(value, list) or any(item not in allowed for item in value):
        raise _bad_request(f"where.{field} must be a list of {', '.join(allowed)}.")
    return value


def _cursor_encode(organization_id: str, flow: SimFlow) -> str:
    return signing.dumps(
        {"o": organization_id, "u": format_datetime(flow.updated_at), "s": flow.seq}, salt=CURSOR_SALT
    )


def _cursor_decode(organization_id: str, cursor: Any) -> tuple[dt.datetime, int]:
    if not isinstance(cursor, str) or not cursor:
        raise _bad_request("cursor must be a nextCursor returned by a previous search.")
    try:
        position = signing.loads(cursor, salt=CURSOR_SALT)
        updated = parse_datetime(position["u"])
        seq = int(position["s"])
        if position["o"] != organization_id or updated is None:
            raise ValueError("foreign cursor")
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise _bad_request("cursor is not a nextCursor returned by a previous search.") from None
    return updated, seq


SEARCH_CRITERIA = (
    "updatedAfter",
    "updatedBefore",
    "processingRule",
    "flowType",
    "flowDirection",
    "trackingId",
    "ackStatus",
)


def flow_search(*, organization_id: str, params: Any) -> dict[str, Any]:
    """searchFlows: the SearchFlowContent of one page, ordered by (updatedAt, sequence)."""
    if not isinstance(params, dict):
        raise _bad_request("The body must be a SearchFlowParams JSON object.")
    unknown = set(params) - {"where", "limit", "cursor"}
    if unknown:
        raise _bad_request(f"Unknown search parameters: {', '.join(sorted(unknown))}.")
    where = params.get("where")
    if where is None:
        raise _bad_request("where is required.", missing=True)
    if not isinstance(where, dict):
        raise _bad_request("where must be a JSON object.")
    unknown = set(where) - set(SEARCH_CRITERIA)
    if unknown:
        raise _bad_request(f"Unknown search criteria: {', '.join(sorted(unknown))}.")
    limit = params.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise _bad_request(f"limit must be an integer from 1 to {MAX_LIMIT}.")

    flows = SimFlow.objects.filter(organization_id=organization_id, due_at__isnull=True)
    filters: dict[str, Any] = {}
    if where.get("updatedAfter") is not None:
        flows = flows.filter(updated_at__gt=_parse_when(where["updatedAfter"], "updatedAfter"))
        filters["updatedAfter"] = where["updatedAfter"]
    if where.get("updatedBefore") is not None:
        flows = flows.filter(updated_at__lt=_parse_when(where["updatedBefore"], "updatedBefore"))
        filters["updatedBefore"] = where["updatedBefore"]
    for field, column, allowed in (
        ("processingRule", "processing_rule", afnor.ProcessingRule),
        ("flowType", "flow_type", afnor.FlowType),
        ("flowDirection", "flow_direction", afnor.FlowDirection),
    ):
        if where.get(field):  # an empty list is no criterion
            values = _enum_list(where[field], field, allowed)
            flows = flows.filter(**{f"{column}__in": values})
            filters[field] = values
    if where.get("trackingId") is not None:
        tracking_id = where["trackingId"]
        if not isinstance(tracking_id, str) or not 1 <= len(tracking_id) <= 64:
            raise _bad_request("where.trackingId must be a string of 1 to 64 characters.")
        flows = flows.filter(tracking_id=tracking_id)
        filters["trackingId"] = tracking_id
    if where.get("ackStatus") is not None:
        if where["ackStatus"] not in afnor.FlowAckStatus:
            raise _bad_request(f"where.ackStatus must be one of {', '.join(afnor.FlowAckStatus)}.")
        flows = flows.filter(ack_status=where["ackStatus"])
        filters["ackStatus"] = where["ackStatus"]
    if not filters:
        raise _bad_request("where needs at least one criterion.", missing=True)
    if params.get("cursor") is not None:
        updated, seq = _cursor_decode(organization_id, params["cursor"])
        flows = flows.filter(Q(updated_at__gt=updated) | Q(updated_at=updated, seq__gt=seq))

    rows = list(flows.order_by("updated_at", "seq")[: limit + 1])
    page = rows[:limit]
    content: dict[str, Any] = {"limit": limit, "filters": filters, "results": [flow_json(f) for f in page]}
    if len(rows) > limit:
        content["nextCursor"] = _cursor_encode(organization_id, page[-1])
    return content


# --- Webhooks ---------------------------------------------------------------------------------------------
def webhook_create(*, organization_id: str, params: Any) -> SimWebhook:
    """createWebhook: a subscription with a fresh 256-bit signing key."""
    if not isinstance(params, dict):
        raise _bad_request("The body must be a WebhookParams JSON object.")
    url = params.get("callbackUrl")
    if not url:
        raise _bad_request("callbackUrl is required.", missing=True)
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise _bad_request("callbackUrl must be an http or https URL.")
    flow_types = params.get("flowTypes") or []
    if not isinstance(flow_types, list) or any(t not in afnor.FlowType for t in flow_types):
        raise _bad_request(f"flowTypes must be a list of {', '.join(afnor.FlowType)}.")
    direction = params.get("flowDirection") or ""
    if direction and direction not in afnor.FlowDirection:
        raise _bad_request("flowDirection must be In or Out.")
    ack_status = params.get("ackStatus") or ""
    if ack_status and ack_status not in afnor.FlowAckStatus:
        raise _bad_request(f"ackStatus must be one of {', '.join(afnor.FlowAckStatus)}.")
    return SimWebhook.objects.create(
        organization_id=organization_id,
        callback_url=url,
        signing_key=base64.b64encode(secrets.token_bytes(32)).decode("ascii"),
        flow_types=flow_types,
        flow_direction=direction,
        ack_status=ack_status,
    )


def webhook_list(*, organization_id: str) -> list[SimWebhook]:
    return list(SimWebhook.objects.filter(organization_id=organization_id).order_by("created_at", "id"))


def webhook_delete(*, organization_id: str, webhook_id: str) -> None:
    try:
        key = uuid.UUID(str(webhook_id))
    except ValueError:
        raise _bad_request("webhookUid must be a UUID.") from None
    deleted, _ = SimWebhook.objects.filter(organization_id=organization_id, id=key).delete()
    if not deleted:
        raise SimError(404, f"No webhook {webhook_id}.", code="MISSING_RESOURCE")


def _matches(webhook: SimWebhook, flow: SimFlow) -> bool:
    return (
        (not webhook.flow_types or flow.flow_type in webhook.flow_types)
        and (not webhook.flow_direction or flow.flow_direction == webhook.flow_direction)
        and (not webhook.ack_status or flow.ack_status == webhook.ack_status)
    )


def _notify(flow: SimFlow) -> None:
    """Enqueue the callbacks of the organisation's matching webhooks once the flow is committed."""
    from pdp.simulator import tasks

    for webhook in SimWebhook.objects.filter(organization_id=flow.organization_id):
        if _matches(webhook, flow):
            args = (str(webhook.id), flow.flow_id, str(uuid.uuid4()))
            transaction.on_commit(lambda args=args: tasks.deliver_callback.send(*args))


@dataclass(frozen=True)
class Callback:
    """One callback request, signed and ready to POST."""

    url: str
    body: bytes
    headers: dict[str, str]


def callback_request(*, webhook_id: str, flow_id: str, request_id: str, timestamp: int) -> Callback | None:
    """The signed callback of ``flow_id`` for ``webhook_id``; None when either is gone (deleted webhook)."""
    webhook = SimWebhook.objects.filter(id=webhook_id).first()
    if webhook is None:
        return None
    flow = SimFlow.objects.filter(
        flow_id=flow_id, organization_id=webhook.organization_id, due_at__isnull=True
    ).first()
    if flow is None:
        return None
    body = json.dumps(flow_json(flow), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    signature = afnor.sign_callback(body, afnor.signing_key_bytes(webhook.signing_key), timestamp)
    headers = {
        "Content-Type": "application/json",
        afnor.SIGNATURE_HEADER: signature,
        afnor.TIMESTAMP_HEADER: str(timestamp),
        "Request-Id": request_id,
    }
    return Callback(webhook.callback_url, body, headers)


# --- Control operations (tests, sandbox) ------------------------------------------------------------------
def _amounts(amounts: Iterable[Any]) -> tuple[cdar.Amount, ...]:
    parsed = []
    for item in amounts or ():
        if isinstance(item, cdar.Amount):
            parsed.append(item)
            continue
        if not isinstance(item, Mapping) or "amount" not in item:
            raise _bad_request('Each amount must be an object with "amount" (and "vatRate").')
        try:
            vat_rate = item.get("vatRate")
            parsed.append(
                cdar.Amount(
                    amount=Decimal(str(item["amount"])),
                    vat_rate=None if vat_rate in (None, "") else Decimal(str(vat_rate)),
                    currency=str(item.get("currency") or "EUR"),
                    type_code=str(item.get("typeCode") or "MEN"),
                )
            )
        except (InvalidOperation, ValueError) as exc:
            raise _bad_request(f"Invalid amount: {exc}") from None
    return tuple(parsed)


def status_push(
    organization_id: str,
    flow_id: str,
    code: str,
    *,
    reason_code: str = "",
    reason: str = "",
    amounts: Sequence[Any] = (),
    emitter: str | None = None,
) -> SimFlow:
    """Deliver at once a status ``code`` about the invoice flow ``flow_id`` of the organisation, as an
    incoming CDAR flow (CustomerInvoiceLC for its own invoices, SupplierInvoiceLC for invoices it
    received). 404 for an unknown flow, 422 when the status message would be invalid."""
    invoice = flow_get(organization_id=organization_id, flow_id=flow_id)
    if invoice.flow_type not in ("CustomerInvoice", "SupplierInvoice"):
        raise SimError(422, f"The flow {flow_id} is not an invoice ({invoice.flow_type}).")
    code = str(code or "")
    if code not in cdar.STATUSES:
        raise SimError(422, f"Unknown status code {code!r}.")
    emitter = emitter or cdar.STATUSES[code].emitter
    if emitter not in ("buyer", "seller", "platform"):
        raise _bad_request("emitter must be buyer, seller or platform.")
    ref = invoice_ref(invoice)
    if ref is None:
        raise SimError(422, f"The file of flow {flow_id} is not a readable invoice.")
    try:
        message = _status_message(
            code,
            ref,
            emitter=emitter,
            issued_at=timezone.now(),
            reason_code=reason_code or "",
            reason=reason or "",
            amounts=_amounts(amounts),
        )
        data = cdar.build(message)
    except cdar.CdarError as exc:
        raise SimError(422, str(exc)) from None
    issues = cdar.validate(data)
    if issues:
        details = "; ".join(f"{i.get('rule', '')}: {i.get('message', '')}" for i in issues)
        rules = ", ".join(i.get("rule", "") for i in issues)
        raise SimError(422, f"The status message breaks {rules}.", details=details)
    with transaction.atomic():
        return _status_flow(invoice, code, data, ref=ref, due_at=None)


def inbound_create(organization_id: str, content: bytes, name: str = "") -> SimFlow:
    """Deliver a supplier invoice to the organisation (its buyer) as an incoming SupplierInvoice flow.

    It is checked like a submission, but an invoice breaking rules is still delivered with ack Ok and the
    broken rules as Warning details: the buyer must receive it to be able to refuse it (status 210)."""
    content = bytes(content or b"")
    if not content:
        raise _bad_request("The file is empty.", missing=True)
    if len(content) > settings.PDP_SIMULATOR_MAX_FLOW_BYTES:
        raise SimError(413, "The file is too large.", code="FILE_SIZE_EXCEEDED")
    syntax = _sniff(content)
    if syntax not in afnor.INVOICE_SYNTAXES:
        raise SimError(422, "The file is not an invoice (CII, UBL or Factur-X).")
    details, profile = _invoice_checks(content, syntax)
    details = [{**detail, "level": "Warning"} for detail in details]
    is_pdf = syntax == "Factur-X"
    if not name:
        flow = SimFlow(organization_id=organization_id, content=content, flow_direction="In")
        ref = invoice_ref(flow)
        name = f"{_file_stem(ref.number if ref else '')}.{'pdf' if is_pdf else 'xml'}"
    now = timezone.now()
    with transaction.atomic():
        flow = SimFlow.objects.create(
            organization_id=organization_id,
            name=str(name)[:255],
            flow_syntax=syntax,
            flow_profile=profile or "CIUS",
            processing_rule="B2B",
            processing_rule_source="Computed",
            flow_type="SupplierInvoice",
            flow_direction="In",
            sha256=hashlib.sha256(content).hexdigest(),
            content=content,
            content_type="application/pdf" if is_pdf else "application/xml",
            ack_status="Ok",
            ack_details=details,
            submitted_at=now,
            updated_at=now,
        )
        _notify(flow)
    return flow
