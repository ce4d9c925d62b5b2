"""PDP transmission and the invoice lifecycle: the writes. Called by invoicing (on issue), the API, the
dashboard, the PDP webhook receiver and the actors alike.

Outgoing flows follow the outbox pattern: ``Flow`` rows are written in the transaction that decides to
send (issuing an invoice, sending a status), an actor submits them after commit. Submission is
idempotent on our side: each outgoing flow has a tracking id (XP Z12-013 ``trackingId``), and a retry
after an attempt whose answer was lost first asks the PDP whether it already holds that tracking id, so
a flow is never submitted twice because a network answer went missing.

Incoming flows (statuses about our invoices, supplier invoices, statuses about those) are polled per
organisation and also pulled at once when the PDP calls our webhook; each is applied exactly once (one
``Flow`` row per PDP flow id, unique in the database).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from invoicing.models import Invoice, InvoiceEvent
from pdp import cdar
from pdp.client import FlowClient, PdpError, PdpNotConfigured, client_for, target_for
from pdp.models import Flow, InvoiceLifecycle, Mailbox, Target
from scell.errors import Conflict, UnprocessableEntity
from scell.models import SubTenant, Tenant
from scell.tenancy import Scope
from webhooks.services import event_emit

logger = logging.getLogger(__name__)

# XP Z12-013 FlowProfile of each Factur-X/CII profile we issue: EN 16931 is the French CIUS.
FLOW_PROFILES = {
    "minimum": "Basic",
    "basicwl": "Basic",
    "basic": "Basic",
    "en16931": "CIUS",
    "extended": "Extended-CTC-FR",
}
FLOW_SYNTAX = {"facturx": "Factur-X", "cii": "CII", "ubl": "UBL"}
# How far back each poll looks again: the standard's updatedAfter is strict and a flow may become
# visible at the PDP with an updatedAt slightly older than the newest one already seen.
POLL_OVERLAP = dt.timedelta(minutes=2)
# A "submitting" claim older than this was left by a worker that died mid-call: it may be taken again.
STALE_CLAIM = dt.timedelta(minutes=5)
FINAL_BUYER_STATUSES = {"210"}  # a refused invoice takes no further buyer status (XP Z12-012)


def _scope_of(obj: Any) -> Scope:
    return Scope(tenant=obj.tenant, livemode=obj.livemode, sub_tenant=obj.sub_tenant)


def _organization_of(tenant: Tenant, sub_tenant: SubTenant | None) -> str:
    return (sub_tenant or tenant).siren


def processing_rule(invoice: Invoice) -> str:
    """B2B for a French business buyer (SIREN), B2BInt for a foreign business, B2C otherwise."""
    buyer = invoice.buyer or {}
    country = str((buyer.get("address") or {}).get("country") or "FR").upper()
    if buyer.get("siren") and country == "FR":
        return "B2B"
    if buyer.get("vat_id") or buyer.get("siren"):
        return "B2BInt"
    return "B2C"


def _now_iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- Queueing (inside the caller's transaction) ----------------------------------------------------------
def transmission_queue(*, invoice: Invoice) -> Flow:
    """Record that a freshly issued invoice must go to the PDP (inside the issuing transaction) and
    submit it after commit. Sandbox invoices go to the simulator, live ones to the partner PDP."""
    InvoiceLifecycle.objects.get_or_create(
        invoice=invoice,
        defaults={"tenant": invoice.tenant, "livemode": invoice.livemode, "sub_tenant": invoice.sub_tenant},
    )
    flow = _outgoing_flow(
        invoice,
        kind=Flow.Kind.INVOICE,
        tracking_id=str(invoice.id),
        flow_type="CustomerInvoice",
        syntax=FLOW_SYNTAX[invoice.format],
        profile=FLOW_PROFILES.get(invoice.profile, "CIUS"),
        processing_rule=processing_rule(invoice),
    )
    _submit_on_commit(flow)
    return flow


def _outgoing_flow(invoice: Invoice, **fields: Any) -> Flow:
    """A new outgoing flow about ``invoice`` in the outbox (inside the caller's transaction)."""
    return Flow.objects.create(
        tenant=invoice.tenant,
        livemode=invoice.livemode,
        sub_tenant=invoice.sub_tenant,
        target=target_for(invoice.livemode),
        organization_id=_organization_of(invoice.tenant, invoice.sub_tenant),
        direction=Flow.Direction.OUT,
        invoice=invoice,
        state=Flow.State.QUEUED,
        **fields,
    )


def _submit_on_commit(flow: Flow) -> None:
    flow_id = str(flow.id)

    def enqueue() -> None:
        from pdp.tasks import submit_flow

        submit_flow.send(flow_id)

    transaction.on_commit(enqueue)


# --- Submission (actor side, outside any transaction: it calls the network) -------------------------------
def _claim(flow_id: str) -> bool:
    """Take the flow for one submission attempt; False if another worker has it or it is done."""
    now = timezone.now()
    claimable = Q(state__in=[Flow.State.QUEUED, Flow.State.RETRYING, Flow.State.HELD]) | Q(
        state=Flow.State.SUBMITTING, updated_at__lt=now - STALE_CLAIM
    )
    changed = Flow.objects.filter(claimable, pk=flow_id, direction=Flow.Direction.OUT).update(
        state=Flow.State.SUBMITTING, attempts=F("attempts") + 1, updated_at=now, next_attempt_at=None
    )
    return changed == 1


def _invoice_content(flow: Flow) -> tuple[bytes, str]:
    from invoicing.services import invoice_render

    invoice = flow.invoice
    if invoice.format == Invoice.Format.CII:
        return bytes(invoice.cii_xml), f"{invoice.number}.xml"
    document = invoice_render(invoice=invoice, fmt=invoice.format)
    with document.file.open("rb") as handle:
        content = handle.read()
    extension = "pdf" if invoice.format == Invoice.Format.FACTURX else "xml"
    return content, f"{invoice.number}.{extension}"


def flow_submit(*, flow_id: str) -> None:
    """One submission attempt of an outgoing flow (idempotent; see the module docstring)."""
    if not _claim(flow_id):
        return
    flow = Flow.objects.select_related("invoice", "tenant", "sub_tenant").get(pk=flow_id)
    try:
        client = client_for(flow.livemode)
    except PdpNotConfigured as exc:
        # Live invoices wait for the PDP to be configured; the sweeper submits them once it is.
        Flow.objects.filter(pk=flow.pk).update(
            state=Flow.State.HELD, last_error=exc.message, updated_at=timezone.now()
        )
        return
    try:
        if not flow.content:
            content, name = _invoice_content(flow)
            flow.content, flow.name, flow.sha256 = content, name, hashlib.sha256(content).hexdigest()
            Flow.objects.filter(pk=flow.pk).update(content=content, name=name, sha256=flow.sha256)
        info = _already_submitted(client, flow) if flow.attempts > 1 else None
        if info is None:
            flow_info = {
                "trackingId": flow.tracking_id,
                "name": flow.name,
                "processingRule": flow.processing_rule,
                "flowSyntax": flow.syntax,
                "sha256": flow.sha256,
            }
            if flow.profile:
                flow_info["flowProfile"] = flow.profile
            info = client.create_flow(flow.organization_id, content=bytes(flow.content), flow_info=flow_info)
        flow_id_at_pdp = str(info.get("flowId") or "")
        if not flow_id_at_pdp:
            raise PdpError("createFlow: the answer has no flowId.", transient=True)
    except PdpError as exc:
        _submission_failed(flow, exc)
        return
    now = timezone.now()
    Flow.objects.filter(pk=flow.pk).update(
        flow_id=flow_id_at_pdp,
        state=Flow.State.SUBMITTED,
        submitted_at=now,
        updated_at=now,
        last_error="",
    )
    flow.flow_id = flow_id_at_pdp
    try:
        ack_check(flow=flow, client=client)
    except PdpError as exc:
        # Submitted; the acknowledgement is read again by the sweeper.
        logger.warning("Acknowledgement of flow %s not read yet: %s", flow.flow_id, exc)


def _already_submitted(client: FlowClient, flow: Flow) -> dict[str, Any] | None:
    """The PDP's flow for our tracking id, if an earlier attempt reached it though its answer was lost."""
    page = client.search_flows(
        flow.organization_id, where={"trackingId": flow.tracking_id, "flowDirection": ["Out"]}, limit=10
    )
    for item in page.get("results") or []:
        if item.get("trackingId") == flow.tracking_id:
            return item
    return None


def _submission_failed(flow: Flow, exc: PdpError) -> None:
    schedule = settings.PDP_RETRY_SCHEDULE
    now = timezone.now()
    if exc.transient and flow.attempts <= len(schedule):
        delay = schedule[flow.attempts - 1]
        Flow.objects.filter(pk=flow.pk).update(
            state=Flow.State.RETRYING,
            last_error=exc.message,
            next_attempt_at=now + dt.timedelta(seconds=delay),
            updated_at=now,
        )
        from pdp.tasks import submit_flow

        submit_flow.send_with_options(args=(str(flow.pk),), delay=int(delay * 1000))
        return
    with transaction.atomic():
        locked = Flow.objects.select_for_update().get(pk=flow.pk)
        locked.state = Flow.State.FAILED
        locked.last_error = exc.message
        locked.updated_at = now
        locked.save(update_fields=["state", "last_error", "updated_at"])
        if locked.invoice_id:
            data = {
                "flow": str(locked.id),
                "kind": locked.kind,
                "error": exc.to_dict(),
                "attempts": locked.attempts,
            }
            _invoice_event(locked.invoice, "transmission_failed", data=data)
            event_emit(
                scope=_scope_of(locked),
                type="invoice.transmission_failed",
                data=_invoice_data(locked.invoice) | {"kind": locked.kind, "reason": exc.to_dict()},
            )


def ack_check(*, flow: Flow, client: FlowClient | None = None) -> None:
    """Read the PDP's acknowledgement of a submitted flow and apply it (Ok → accepted, Error → rejected
    with the PDP's reasons). Pending leaves it for the next check."""
    client = client or client_for(flow.livemode)
    meta = client.get_flow(flow.organization_id, flow.flow_id)
    acknowledgement = meta.get("acknowledgement") or {}
    status = acknowledgement.get("status", "")
    details = acknowledgement.get("details") or []
    if status not in {"Ok", "Error"}:
        Flow.objects.filter(pk=flow.pk).update(ack_status=status or "Pending", updated_at=timezone.now())
        return
    with transaction.atomic():
        locked = Flow.objects.select_for_update(of=("self",)).select_related("invoice").get(pk=flow.pk)
        if locked.state != Flow.State.SUBMITTED:
            return  # applied by a concurrent check
        locked.ack_status = status
        locked.ack_details = details
        locked.state = Flow.State.ACCEPTED if status == "Ok" else Flow.State.REJECTED
        locked.updated_at = timezone.now()
        locked.save(update_fields=["ack_status", "ack_details", "state", "updated_at"])
        invoice = locked.invoice
        if invoice is None:
            return
        scope = _scope_of(locked)
        base = {"flow": str(locked.id), "flow_id": locked.flow_id, "target": locked.target}
        if locked.kind == Flow.Kind.INVOICE and status == "Ok":
            _invoice_event(
                invoice, "transmitted", data=base | {"sha256": locked.sha256, "syntax": locked.syntax}
            )
            event_emit(
                scope=scope,
                type="invoice.transmitted",
                data=_invoice_data(invoice) | {"flow_id": locked.flow_id, "target": locked.target},
            )
        elif locked.kind == Flow.Kind.INVOICE:
            _invoice_event(invoice, "transmission_rejected", data=base | {"details": details})
            event_emit(
                scope=scope,
                type="invoice.transmission_failed",
                data=_invoice_data(invoice) | {"kind": "invoice", "rejected": True, "details": details},
            )
        elif status == "Ok":
            _invoice_event(invoice, "status_transmitted", status_code=locked.status_code, data=base)
        else:
            _invoice_event(
                invoice, "status_rejected", status_code=locked.status_code, data=base | {"details": details}
            )
            event_emit(
                scope=scope,
                type="invoice.transmission_failed",
                data=_invoice_data(invoice)
                | {"kind": "status", "status_code": locked.status_code, "rejected": True, "details": details},
            )


def transmission_retry(*, scope: Scope, invoice: Invoice) -> Flow:
    """Submit again a flow of ``invoice`` that failed (a person fixed the cause, e.g. the PDP credentials).
    A flow the PDP rejected is final: the invoice must be corrected by a credit note and a new invoice."""
    flow = (
        Flow.objects.scoped(scope)
        .filter(invoice=invoice, direction=Flow.Direction.OUT, state=Flow.State.FAILED)
        .order_by("created_at")
        .first()
    )
    if flow is None or not flow_requeue(flow_id=str(flow.pk)):
        raise Conflict(
            "Nothing to retransmit: no failed transmission for this invoice.", code="nothing_to_retry"
        )
    return flow


def flow_requeue(*, flow_id: str) -> bool:
    """Put a failed outgoing flow back in the outbox (API ``/transmit``, support's admin action)."""
    with transaction.atomic():
        flow = (
            Flow.objects.select_for_update(of=("self",))
            .select_related("invoice")
            .filter(pk=flow_id, direction=Flow.Direction.OUT, state=Flow.State.FAILED)
            .first()
        )
        if flow is None:
            return False
        flow.state = Flow.State.QUEUED
        flow.attempts = 0
        flow.updated_at = timezone.now()
        flow.save(update_fields=["state", "attempts", "updated_at"])
        if flow.invoice is not None:
            _invoice_event(
                flow.invoice, "transmission_retried", data={"flow": str(flow.id), "kind": flow.kind}
            )
        _submit_on_commit(flow)
    return True


def flows_sweep() -> dict[str, int]:
    """The safety net under the actors (every minute): resubmit what a lost message left behind, read
    pending acknowledgements, release held live flows once a PDP is configured."""
    now = timezone.now()
    counts = {"submitted": 0, "acks": 0}
    from pdp.tasks import submit_flow

    due = Q(state=Flow.State.RETRYING, next_attempt_at__lte=now) | Q(
        state=Flow.State.QUEUED, created_at__lt=now - dt.timedelta(minutes=1)
    )
    due |= Q(state=Flow.State.SUBMITTING, updated_at__lt=now - STALE_CLAIM)
    if settings.PDP_URL:
        due |= Q(state=Flow.State.HELD)
    for flow_id in Flow.objects.filter(due, direction=Flow.Direction.OUT).values_list("pk", flat=True)[:500]:
        submit_flow.send(str(flow_id))
        counts["submitted"] += 1
    for flow in Flow.objects.filter(state=Flow.State.SUBMITTED).exclude(flow_id="")[:500]:
        try:
            ack_check(flow=flow)
            counts["acks"] += 1
        except PdpError as exc:
            logger.warning("Acknowledgement of flow %s not read: %s", flow.flow_id, exc)
    return counts


# --- Lifecycle ------------------------------------------------------------------------------------------
def _invoice_event(
    invoice: Invoice, type: str, *, status_code: str = "", data: dict[str, Any]
) -> InvoiceEvent:
    return InvoiceEvent.objects.create(
        invoice=invoice,
        tenant_id=invoice.tenant_id,
        livemode=invoice.livemode,
        type=type,
        status_code=status_code,
        data=data,
    )


def _invoice_data(invoice: Invoice) -> dict[str, Any]:
    from invoicing.services import _event_data

    return _event_data(invoice)


def _locked_lifecycle(invoice: Invoice) -> InvoiceLifecycle:
    InvoiceLifecycle.objects.get_or_create(
        invoice=invoice,
        defaults={
            "tenant_id": invoice.tenant_id,
            "livemode": invoice.livemode,
            "sub_tenant_id": invoice.sub_tenant_id,
        },
    )
    return InvoiceLifecycle.objects.select_for_update().get(invoice=invoice)


def status_payload(code: str) -> dict[str, str]:
    info = cdar.STATUSES.get(code)
    if info is None:
        return {"status_code": code, "status": "", "label": code, "label_fr": code}
    return {"status_code": code, "status": info.slug, "label": info.label_en, "label_fr": info.label_fr}


def lifecycle_status_record(
    *,
    invoice: Invoice,
    code: str,
    at: dt.datetime,
    source: str,
    reason_code: str = "",
    reason: str = "",
    amounts: tuple[cdar.Amount, ...] = (),
    flow: Flow | None = None,
    message_id: str = "",
) -> InvoiceEvent:
    """Record one lifecycle status of ``invoice`` (inside the caller's transaction): an invoice event, the
    current status (the latest by its own time: statuses may arrive out of order), the
    ``invoice.status_changed`` webhook, and for 212 Encaissée the payment (``invoice.paid`` and
    ``payment.received``)."""
    lifecycle = _locked_lifecycle(invoice)
    previous = lifecycle.status_code
    data = status_payload(code) | {
        "source": source,
        "reason_code": reason_code,
        "reason": reason,
        "at": _now_iso(at),
        "message_id": message_id,
        "flow": str(flow.id) if flow else None,
        "flow_id": flow.flow_id if flow else "",
        "amounts": [
            {
                "amount": str(a.amount),
                "vat_rate": None if a.vat_rate is None else str(a.vat_rate),
                "type": a.type_code,
            }
            for a in amounts
        ],
    }
    event = _invoice_event(invoice, "status", status_code=code, data=data)
    now = timezone.now()
    if lifecycle.status_at is None or at >= lifecycle.status_at:
        lifecycle.status_code = code
        lifecycle.status_at = at
        lifecycle.reason_code = reason_code
        lifecycle.reason = reason
    scope = _scope_of(invoice)
    event_emit(
        scope=scope,
        type="invoice.status_changed",
        data=_invoice_data(invoice)
        | {
            "lifecycle": status_payload(code)
            | {"reason_code": reason_code, "reason": reason, "source": source, "at": _now_iso(at)},
            "previous_status_code": previous or None,
        },
    )
    if code == "212" and lifecycle.paid_at is None:
        paid = sum((a.amount for a in amounts if a.type_code == "MEN"), Decimal("0.00")) or invoice.amount_due
        lifecycle.paid_at = at
        lifecycle.amount_paid = paid
        _invoice_event(
            invoice, "paid", status_code=code, data={"amount": str(paid), "currency": invoice.currency}
        )
        payment = {
            "object": "invoice",
            "invoice": str(invoice.id),
            "number": invoice.number,
            "direction": "incoming" if invoice.status == Invoice.Status.ISSUED else "outgoing",
            "amount": str(paid),
            "currency": invoice.currency,
            "paid_at": _now_iso(at),
        }
        event_emit(scope=scope, type="invoice.paid", data=_invoice_data(invoice) | {"payment": payment})
        event_emit(scope=scope, type="payment.received", data=payment)
    lifecycle.updated_at = now
    lifecycle.save()
    return event


def _default_paid_amounts(invoice: Invoice) -> tuple[cdar.Amount, ...]:
    """What 212 Encaissée reports when the caller gives no amounts: the amount due, spread over the VAT
    rates as the invoice's VAT breakdown does (the VAT due on receipt is per rate, BR-FR-CDV-14)."""
    rows = [r for r in invoice.vat_breakdown or [] if r.get("rate") is not None]
    gross = [(Decimal(r["rate"]), Decimal(r["taxable_amount"]) + Decimal(r["tax_amount"])) for r in rows]
    total = sum((g for _, g in gross), Decimal("0"))
    if not gross or total == 0:
        return (cdar.Amount(amount=invoice.amount_due, vat_rate=Decimal("0.00"), currency=invoice.currency),)
    due = invoice.amount_due
    amounts: list[cdar.Amount] = []
    remaining = due
    for index, (rate, amount) in enumerate(gross):
        share = remaining if index == len(gross) - 1 else (due * amount / total).quantize(Decimal("0.01"))
        remaining -= share
        amounts.append(cdar.Amount(amount=share, vat_rate=rate, currency=invoice.currency))
    return tuple(amounts)


def invoice_status_send(
    *,
    scope: Scope,
    invoice: Invoice,
    code: str,
    reason_code: str = "",
    reason: str = "",
    amounts: list[dict[str, Any]] | None = None,
) -> InvoiceEvent:
    """Send a lifecycle status about ``invoice`` as its seller (issued invoices: 212 Encaissée…) or its
    buyer (received invoices: 204 Prise en charge, 205 Approuvée, 207 En litige, 210 Refusée…). The CDAR
    message must pass the BR-FR-CDV rules (422 with the rule ids otherwise); the status is recorded at
    once and the message goes to the PDP after commit."""
    info = cdar.STATUSES.get(code)
    if info is None:
        raise UnprocessableEntity(
            f"Unknown lifecycle status {code!r}.",
            details=[{"field": "code", "message": "unknown status code"}],
        )
    if invoice.status == Invoice.Status.ISSUED:
        emitter, role = "seller", "issued"
    elif invoice.status == Invoice.Status.RECEIVED:
        emitter, role = "buyer", "received"
    else:
        raise Conflict("Drafts have no lifecycle: issue the invoice first.", code="invoice_not_issued")
    if info.emitter != emitter:
        allowed = sorted(c for c, i in cdar.STATUSES.items() if i.emitter == emitter)
        raise UnprocessableEntity(
            f"Status {code} ({info.label_fr}) is sent by the {info.emitter}; on a {role} invoice you are the "
            f"{emitter} and may send: {', '.join(allowed)}.",
            code="status_not_allowed",
            details=[{"field": "code", "message": f"not a {emitter} status"}],
        )
    parsed_amounts: tuple[cdar.Amount, ...] = ()
    if amounts:
        try:
            parsed_amounts = tuple(
                cdar.Amount(
                    amount=Decimal(str(a["amount"])).quantize(Decimal("0.01")),
                    vat_rate=None if a.get("vat_rate") is None else Decimal(str(a["vat_rate"])),
                    currency=invoice.currency,
                )
                for a in amounts
            )
        except (KeyError, ArithmeticError, TypeError, ValueError) as exc:
            raise UnprocessableEntity(
                "amounts must be a list of {amount, vat_rate}.",
                details=[{"field": "amounts", "message": str(exc)}],
            ) from exc
    elif code == "212":
        parsed_amounts = _default_paid_amounts(invoice)
    seller = invoice.seller or {}
    buyer = invoice.buyer or {}
    now = timezone.now()
    message_id = f"{invoice.number}-{code}-{uuid.uuid4().hex[:12]}"[:64]
    try:
        message = cdar.status_message(
            code,
            invoice_number=invoice.number,
            invoice_issue_date=invoice.issue_date,
            seller_siren=str(seller.get("siren") or ""),
            buyer_siren=str(buyer.get("siren") or ""),
            emitter=emitter,
            message_id=message_id,
            issued_at=now,
            invoice_type_code=invoice.type_code,
            reason_code=reason_code,
            reason=reason,
            amounts=parsed_amounts,
            seller_name=str(seller.get("name") or ""),
            buyer_name=str(buyer.get("name") or ""),
        )
    except cdar.CdarError as exc:
        raise UnprocessableEntity(
            str(exc),
            code="status_invalid",
            details=[
                {
                    "field": "reason_code" if reason_code or info.reason_required else "code",
                    "message": str(exc),
                }
            ],
        ) from exc
    xml = cdar.build(message)
    problems = cdar.validate(xml)
    if problems:
        rules = ", ".join(sorted({p.get("rule", "?") for p in problems}))
        raise UnprocessableEntity(
            f"The status message breaks the BR-FR CDAR rules: {rules}.",
            code="status_invalid",
            details=problems,
        )
    with transaction.atomic():
        lifecycle = _locked_lifecycle(invoice)
        if emitter == "buyer" and lifecycle.status_code in FINAL_BUYER_STATUSES:
            raise Conflict(
                f"Invoice {invoice.number} was refused (210): its lifecycle is closed.", code="status_final"
            )
        if code == "212" and lifecycle.paid_at is not None:
            raise Conflict(f"Invoice {invoice.number} is already marked paid.", code="already_paid")
        flow = _outgoing_flow(
            invoice,
            kind=Flow.Kind.STATUS,
            tracking_id=message_id,
            flow_type="CustomerInvoiceLC" if emitter == "seller" else "SupplierInvoiceLC",
            syntax="CDAR",
            processing_rule=processing_rule(invoice) if emitter == "seller" else "B2B",
            name=f"{message_id}.xml",
            content=xml,
            sha256=hashlib.sha256(xml).hexdigest(),
            status_code=code,
        )
        event = lifecycle_status_record(
            invoice=invoice,
            code=code,
            at=now,
            source=emitter,
            reason_code=reason_code,
            reason=reason,
            amounts=parsed_amounts,
            flow=flow,
            message_id=message_id,
        )
        _submit_on_commit(flow)
    return event


# --- Incoming flows ----------------------------------------------------------------------------------------
def mailbox_get(*, tenant: Tenant, sub_tenant: SubTenant | None, livemode: bool) -> Mailbox:
    target = target_for(livemode)
    mailbox, _ = Mailbox.objects.get_or_create(
        tenant=tenant,
        sub_tenant=sub_tenant,
        livemode=livemode,
        target=target,
        defaults={"organization_id": _organization_of(tenant, sub_tenant)},
    )
    return mailbox


def _subscribe(mailbox: Mailbox, client: FlowClient) -> None:
    """Ask the PDP to call us back when a flow arrives for this organisation (polling stays the net)."""
    base = settings.PDP_CALLBACK_URL
    if not base or mailbox.webhook_id:
        return
    from django.urls import reverse

    url = base + reverse("pdp:webhook", kwargs={"mailbox_id": mailbox.id})
    try:
        answer = client.create_webhook(mailbox.organization_id, callback_url=url, flowDirection="In")
    except PdpError as exc:
        logger.warning("Webhook subscription for %s failed: %s", mailbox, exc)
        return
    Mailbox.objects.filter(pk=mailbox.pk).update(
        webhook_id=str(answer.get("webhookId") or ""),
        webhook_key=str(answer.get("signingKey") or ""),
        webhook_url=url,
    )


def mailbox_poll(*, mailbox_id: str) -> int:
    """Fetch and apply the incoming flows of one organisation; returns how many were new."""
    mailbox = Mailbox.objects.select_related("tenant", "sub_tenant").get(pk=mailbox_id)
    try:
        client = client_for(mailbox.livemode)
    except PdpNotConfigured:
        return 0
    _subscribe(mailbox, client)
    where: dict[str, Any] = {"flowDirection": ["In"]}
    if mailbox.last_updated_at:
        where["updatedAfter"] = _now_iso(mailbox.last_updated_at - POLL_OVERLAP)
    newest = mailbox.last_updated_at
    new = 0
    cursor: str | None = None
    try:
        for _page in range(1000):
            page = client.search_flows(mailbox.organization_id, where=where, limit=100, cursor=cursor)
            for item in page.get("results") or []:
                if flow_receive(mailbox=mailbox, item=item, client=client):
                    new += 1
                updated = parse_datetime(str(item.get("updatedAt") or ""))
                if updated and (newest is None or updated > newest):
                    newest = updated
            cursor = page.get("nextCursor")
            if not cursor:
                break
    except PdpError as exc:
        Mailbox.objects.filter(pk=mailbox.pk).update(last_error=exc.message, last_polled_at=timezone.now())
        if newest != mailbox.last_updated_at:
            Mailbox.objects.filter(pk=mailbox.pk).update(last_updated_at=newest)
        raise
    Mailbox.objects.filter(pk=mailbox.pk).update(
        last_updated_at=newest, last_polled_at=timezone.now(), last_error=""
    )
    return new


def flow_receive(*, mailbox: Mailbox, item: dict[str, Any], client: FlowClient) -> bool:
    """Download and apply one incoming flow, exactly once (False if already known or not ready)."""
    flow_id = str(item.get("flowId") or "")
    if not flow_id or (item.get("acknowledgement") or {}).get("status") not in {"Ok", None}:
        return False  # pending or refused at the PDP: nothing addressed to us yet
    if Flow.objects.filter(target=mailbox.target, flow_id=flow_id).exists():
        return False
    content = client.download(mailbox.organization_id, flow_id)
    with transaction.atomic():
        try:
            with transaction.atomic():
                flow = Flow.objects.create(
                    tenant=mailbox.tenant,
                    livemode=mailbox.livemode,
                    sub_tenant=mailbox.sub_tenant,
                    target=mailbox.target,
                    organization_id=mailbox.organization_id,
                    direction=Flow.Direction.IN,
                    kind=Flow.Kind.STATUS if item.get("flowSyntax") == "CDAR" else Flow.Kind.INVOICE,
                    flow_id=flow_id,
                    tracking_id="",
                    flow_type=str(item.get("flowType") or ""),
                    syntax=str(item.get("flowSyntax") or ""),
                    profile=str(item.get("flowProfile") or ""),
                    processing_rule=str(item.get("processingRule") or ""),
                    name=str(item.get("name") or "")[:255],
                    sha256=hashlib.sha256(content).hexdigest(),
                    content=content,
                    state=Flow.State.RECEIVED,
                    ack_status="Ok",
                    submitted_at=parse_datetime(str(item.get("submittedAt") or "")),
                )
        except IntegrityError:
            return False  # taken by a concurrent poll or webhook
        try:
            with transaction.atomic():
                if flow.kind == Flow.Kind.STATUS:
                    _receive_status(flow)
                else:
                    _receive_invoice(flow)
        except (cdar.CdarError, UnprocessableEntity, _Unmatched) as exc:
            flow.state = Flow.State.IGNORED
            flow.last_error = str(getattr(exc, "message", exc))[:2000]
        flow.updated_at = timezone.now()
        flow.save(update_fields=["state", "last_error", "invoice", "status_code", "updated_at"])
    return True


class _Unmatched(Exception):
    """An incoming status about an invoice we do not have."""


def _receive_status(flow: Flow) -> None:
    message = cdar.parse(bytes(flow.content))
    scope = _scope_of(flow)
    incoming = flow.flow_type == "SupplierInvoiceLC" or (
        flow.flow_type != "CustomerInvoiceLC" and message.seller_siren != flow.organization_id
    )
    invoices = Invoice.objects.scoped(scope).filter(number=message.invoice_number, sub_tenant=flow.sub_tenant)
    if incoming:
        invoices = invoices.filter(status=Invoice.Status.RECEIVED, seller__siren=message.seller_siren)
    else:
        invoices = invoices.filter(status=Invoice.Status.ISSUED)
    invoice = invoices.order_by("-created_at").first()
    if invoice is None and not incoming:
        # A PDP that could not read our file (501) names the flow as we did: our tracking id.
        sent = (
            Flow.objects.scoped(scope)
            .filter(
                tracking_id=message.invoice_number, direction=Flow.Direction.OUT, sub_tenant=flow.sub_tenant
            )
            .select_related("invoice")
            .first()
        )
        invoice = sent.invoice if sent else None
    if invoice is None:
        raise _Unmatched(f"No {'received' if incoming else 'issued'} invoice {message.invoice_number} here.")
    flow.invoice = invoice
    flow.status_code = message.status_code
    source = {"WK": "platform", "BY": "buyer", "SE": "seller"}.get(
        message.issuer.role, message.issuer.role.lower()
    )
    lifecycle_status_record(
        invoice=invoice,
        code=message.status_code,
        at=message.issued_at,
        source=source,
        reason_code=message.reason_code,
        reason=message.reason,
        amounts=message.amounts,
        flow=flow,
        message_id=message.message_id,
    )
    flow.state = Flow.State.PROCESSED


def _receive_invoice(flow: Flow) -> None:
    from invoicing.services import invoice_import

    invoice = invoice_import(scope=_scope_of(flow), data=bytes(flow.content))
    InvoiceLifecycle.objects.get_or_create(
        invoice=invoice,
        defaults={
            "tenant_id": invoice.tenant_id,
            "livemode": invoice.livemode,
            "sub_tenant_id": invoice.sub_tenant_id,
        },
    )
    _invoice_event(
        invoice,
        "received_from_pdp",
        data={"flow": str(flow.id), "flow_id": flow.flow_id, "target": flow.target},
    )
    flow.invoice = invoice
    flow.state = Flow.State.PROCESSED


def mailboxes_poll_due() -> int:
    """Enqueue a poll of every organisation (tenants and sub-tenants with a SIREN), sandbox always and
    live when a PDP is configured. Runs every PDP_POLL_SECONDS."""
    from pdp.tasks import poll_mailbox

    modes = [False, True] if settings.PDP_URL else [False]
    count = 0
    for tenant in Tenant.objects.filter(is_active=True).exclude(siren=""):
        subs: list[SubTenant | None] = [None, *SubTenant.objects.filter(tenant=tenant).exclude(siren="")]
        for sub in subs:
            for livemode in modes:
                mailbox = mailbox_get(tenant=tenant, sub_tenant=sub, livemode=livemode)
                poll_mailbox.send(str(mailbox.id))
                count += 1
    return count


def webhook_verify(*, mailbox: Mailbox, body: bytes, signature: str, timestamp: str) -> bool:
    from pdp.afnor import verify_callback

    if not mailbox.webhook_key:
        return False
    try:
        key = base64.b64decode(mailbox.webhook_key)
    except ValueError:
        return False
    return verify_callback(body, signature, timestamp, key)


# --- Sandbox helpers (the simulator plays the other side) -----------------------------------------------
def _sandbox_only(scope: Scope) -> None:
    if scope.livemode:
        raise Conflict("Simulation is for sandbox (sk_test_) objects only.", code="sandbox_only")


def sandbox_status_simulate(
    *,
    scope: Scope,
    invoice: Invoice,
    code: str,
    reason_code: str = "",
    reason: str = "",
    amounts: list[dict[str, Any]] | None = None,
) -> InvoiceLifecycle:
    """Make the simulated PDP/buyer send ``code`` about a sandbox invoice, then fetch it at once."""
    from pdp.simulator import engine

    _sandbox_only(scope)
    flow = (
        Flow.objects.scoped(scope)
        .filter(invoice=invoice, direction=Flow.Direction.OUT, kind=Flow.Kind.INVOICE)
        .exclude(flow_id="")
        .first()
    )
    if flow is None:
        raise Conflict("The invoice has not reached the PDP simulator yet.", code="not_transmitted")
    try:
        engine.status_push(
            organization_id=flow.organization_id,
            flow_id=flow.flow_id,
            code=code,
            reason_code=reason_code,
            reason=reason,
            amounts=[
                {
                    "amount": str(a["amount"]),
                    "vatRate": None if a.get("vat_rate") is None else str(a["vat_rate"]),
                }
                for a in amounts or []
            ],
        )
    except engine.SimError as exc:
        raise UnprocessableEntity(
            exc.message,
            code="status_invalid",
            details=[{"field": "code", "message": exc.details or exc.message}],
        ) from exc
    mailbox = mailbox_get(tenant=scope.tenant, sub_tenant=invoice.sub_tenant, livemode=False)
    mailbox_poll(mailbox_id=str(mailbox.id))
    return InvoiceLifecycle.objects.get(invoice=invoice)


def sandbox_incoming_simulate(*, scope: Scope, content: bytes, name: str = "") -> Invoice:
    """Make the simulator deliver a supplier invoice to this sandbox organisation, then fetch it at once."""
    from pdp.simulator import engine

    _sandbox_only(scope)
    mailbox = mailbox_get(tenant=scope.tenant, sub_tenant=scope.sub_tenant, livemode=False)
    try:
        sim_flow = engine.inbound_create(organization_id=mailbox.organization_id, content=content, name=name)
    except engine.SimError as exc:
        raise UnprocessableEntity(
            exc.message,
            code="import_failed",
            details=[{"field": "file", "message": exc.details or exc.message}],
        ) from exc
    mailbox_poll(mailbox_id=str(mailbox.id))
    flow = Flow.objects.filter(target=Target.SIMULATOR, flow_id=sim_flow.flow_id).first()
    if flow is None or flow.invoice is None:
        raise UnprocessableEntity(
            "The simulator delivered the file but it could not be imported: "
            + (flow.last_error if flow else "not received"),
            code="import_failed",
            details=[{"field": "file", "message": flow.last_error if flow else "not received"}],
        )
    return flow.invoice
