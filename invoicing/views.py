"""Dashboard: Invoices (the issued and received invoices of the current tenant and mode, their transmission
to the PDP and their lifecycle). Reads go through ``invoicing.selectors``, every write through
``pdp.services``: mark paid (212), retransmit, approve (205), dispute (207), refuse (210) and, in the
sandbox, simulated statuses and incoming invoices."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from invoicing import selectors
from invoicing.forms import IncomingInvoiceForm, ReasonForm, SimulateStatusForm, status_label
from invoicing.models import Invoice, InvoiceEvent
from pdp import cdar, services
from pdp.models import Flow, InvoiceLifecycle, Target
from scell.errors import ScellError

PER_PAGE = 50
SHOWN_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.RECEIVED)

EVENT_TITLES = {
    "created": gettext_lazy("Draft created"),
    "issued": gettext_lazy("Issued"),
    "received": gettext_lazy("Received"),
    "received_from_pdp": gettext_lazy("Received from the PDP"),
    "document_checked": gettext_lazy("Document checked"),
    "transmitted": gettext_lazy("Transmitted: accepted by the PDP"),
    "transmission_failed": gettext_lazy("Transmission failed"),
    "transmission_rejected": gettext_lazy("Transmission rejected by the PDP"),
    "transmission_retried": gettext_lazy("Transmission retried"),
    "status": gettext_lazy("Lifecycle status"),
    "status_transmitted": gettext_lazy("Status message accepted by the PDP"),
    "status_rejected": gettext_lazy("Status message rejected by the PDP"),
    "paid": gettext_lazy("Paid"),
}
SOURCES = {
    "platform": gettext_lazy("platform"),
    "buyer": gettext_lazy("buyer"),
    "seller": gettext_lazy("seller"),
}
DIRECTIONS = {
    Invoice.Status.ISSUED: gettext_lazy("issued"),
    Invoice.Status.RECEIVED: gettext_lazy("received"),
}
# Buyer statuses sent from the detail page of a received invoice, and the one seller status of an issued one.
STATUS_ACTIONS = {
    "mark-paid": (Invoice.Status.ISSUED, "212"),
    "approve": (Invoice.Status.RECEIVED, "205"),
    "dispute": (Invoice.Status.RECEIVED, "207"),
    "refuse": (Invoice.Status.RECEIVED, "210"),
}
ACTIONS = {*STATUS_ACTIONS, "retransmit", "simulate-status"}


# --- Helpers ----------------------------------------------------------------------------------------------
def _no_tenant(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/no_tenant.html", status=403)


def _invoice_or_404(request: HttpRequest, pk: UUID) -> Invoice:
    try:
        invoice = selectors.invoice_get(scope=request.scope, pk=pk)
    except Invoice.DoesNotExist:
        raise Http404 from None
    if invoice.status not in SHOWN_STATUSES:
        raise Http404  # drafts have no lifecycle; they come with the full invoice pages
    return invoice


def _lifecycle(invoice: Invoice) -> InvoiceLifecycle | None:
    try:
        return invoice.lifecycle
    except InvoiceLifecycle.DoesNotExist:
        return None


def _transmission(invoice: Invoice) -> Flow | None:
    flows = getattr(invoice, "transmission_flows", None) or []
    return flows[-1] if flows else None


def _counterparty(invoice: Invoice) -> str:
    party = invoice.seller if invoice.status == Invoice.Status.RECEIVED else invoice.buyer
    fallback = invoice.buyer_name if invoice.status == Invoice.Status.ISSUED else ""
    return str((party or {}).get("name") or fallback)


def _error_message(exc: ScellError) -> str:
    """The service's message, with the rule ids of its details when it does not name them already."""
    rules = sorted({str(d["rule"]) for d in exc.details if isinstance(d, dict) and d.get("rule")})
    missing = [rule for rule in rules if rule not in exc.message]
    if missing:
        return f"{exc.message} ({_('rules')}: {', '.join(missing)})"
    return exc.message


def _form_errors(form: Any) -> str:
    parts = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        text = " ".join(str(error) for error in errors)
        parts.append(f"{field.label}: {text}" if field is not None else text)
    return " ".join(parts)


def _summary(invoice: Invoice) -> dict[str, Any]:
    """What the list and the detail show of an invoice besides its own fields."""
    lifecycle = _lifecycle(invoice)
    flow = _transmission(invoice)
    code = lifecycle.status_code if lifecycle else ""
    return {
        "invoice": invoice,
        "direction": DIRECTIONS.get(invoice.status, invoice.status),
        "counterparty": _counterparty(invoice),
        "flow": flow,
        "transmission": flow.get_state_display() if flow else "",
        "lifecycle": lifecycle,
        "status_code": code,
        "status_label": status_label(code) if code else "",
        "reason_label": cdar.REASONS.get(lifecycle.reason_code, "") if lifecycle else "",
        "paid": bool(lifecycle and lifecycle.paid_at),
    }


def _event_detail(event: InvoiceEvent) -> str:
    data = event.data or {}
    if event.type == "transmission_failed":
        error = data.get("error") or {}
        return str(error.get("message") or "")
    if event.type in ("transmission_rejected", "status_rejected"):
        return "; ".join(_rejection_text(d) for d in data.get("details") or [])
    if event.type == "paid":
        return f"{data.get('amount', '')} {data.get('currency', '')}".strip()
    if event.type in ("transmitted", "status_transmitted", "received_from_pdp"):
        return str(data.get("flow_id") or "")
    if event.type == "issued":
        return str(data.get("number") or "")
    return ""


def _rejection_text(detail: Any) -> str:
    if not isinstance(detail, dict):
        return str(detail)
    code = detail.get("reasonCode") or detail.get("code") or detail.get("rule") or ""
    message = detail.get("reasonMessage") or detail.get("message") or ""
    item = detail.get("item") or ""
    return " ".join(part for part in (str(code), f"({item})" if item else "", str(message)) if part)


def _timeline(events: Any) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        data = event.data or {}
        code = event.status_code
        at = event.created_at
        reason_code = reason = source = ""
        if event.type == "status":
            at = parse_datetime(str(data.get("at") or "")) or at
            reason_code = str(data.get("reason_code") or "")
            reason = str(data.get("reason") or "")
            source = data.get("source") or ""
        reason_label = cdar.REASONS.get(reason_code, "")
        rows.append(
            {
                "event": event,
                "type": event.type,
                "title": EVENT_TITLES.get(event.type, event.type),
                "at": at,
                "code": code,
                "label": status_label(code) if code else "",
                "reason_code": reason_code,
                "reason_label": reason_label,
                # The free text, unless it only repeats the code's label (the CDAR default).
                "reason": "" if reason == reason_label else reason,
                "source": SOURCES.get(source, source),
                "detail": _event_detail(event),
            }
        )
    return rows


def _received_from(timeline: list[dict[str, Any]]) -> dict[str, Any] | None:
    for row in timeline:
        if row["type"] == "received_from_pdp":
            data = row["event"].data or {}
            target = data.get("target") or ""
            return {
                "flow_id": data.get("flow_id") or "",
                "target": Target(target).label if target in Target.values else target,
            }
    return None


# --- Views ------------------------------------------------------------------------------------------------
def _render_list(request: HttpRequest, *, incoming: IncomingInvoiceForm | None = None, status: int = 200):
    scope = request.scope
    direction = request.GET.get("status") or ""
    code = request.GET.get("lifecycle") or ""
    invoices = selectors.invoice_list(scope=scope).filter(status__in=SHOWN_STATUSES)
    if direction in SHOWN_STATUSES:
        invoices = invoices.filter(status=direction)
    if code in cdar.STATUSES:
        invoices = invoices.filter(lifecycle__status_code=code)
    page = Paginator(invoices.order_by("-created_at", "-pk"), PER_PAGE).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    filters.pop("page", None)
    return render(
        request,
        "invoicing/dashboard/list.html",
        {
            "page": page,
            "rows": [_summary(invoice) for invoice in page.object_list],
            "direction": direction,
            "directions": [(value, DIRECTIONS[value]) for value in SHOWN_STATUSES],
            "lifecycle": code,
            "lifecycle_choices": [(c, f"{c} — {status_label(c)}") for c in cdar.STATUSES],
            "query": filters.urlencode(),
            "incoming": incoming or IncomingInvoiceForm(),
        },
        status=status,
    )


@login_required
def list_view(request: HttpRequest) -> HttpResponse:
    if request.scope is None:
        return _no_tenant(request)
    return _render_list(request)


@login_required
@require_POST
def simulate_incoming_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    if scope is None:
        return _no_tenant(request)
    if not scope.can_write:
        messages.error(request, _("Your role in this tenant is read-only."))
        return _render_list(request, status=403)
    form = IncomingInvoiceForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return redirect("invoicing_dashboard:list")
    upload = form.cleaned_data["file"]
    try:
        invoice = services.sandbox_incoming_simulate(scope=scope, content=upload.read(), name=upload.name)
    except ScellError as exc:
        messages.error(request, _error_message(exc))
        return redirect("invoicing_dashboard:list")
    messages.success(
        request, _("The simulated PDP delivered invoice %(number)s.") % {"number": invoice.number}
    )
    return redirect("invoicing_dashboard:detail", pk=invoice.pk)


def _render_detail(request: HttpRequest, invoice: Invoice, *, status: int = 200) -> HttpResponse:
    scope = request.scope
    timeline = _timeline(selectors.invoice_events(scope=scope, invoice=invoice).order_by("created_at", "pk"))
    summary = _summary(invoice)
    flow = summary["flow"]
    lifecycle = summary["lifecycle"]
    closed = bool(lifecycle and lifecycle.status_code in services.FINAL_BUYER_STATUSES)
    context = {
        **summary,
        "timeline": timeline,
        "target": Target(flow.target).label if flow and flow.target in Target.values else "",
        "rejection": [_rejection_text(d) for d in flow.ack_details]
        if flow and flow.ack_status == "Error"
        else [],
        "received_from": _received_from(timeline),
        "can_retransmit": bool(flow and flow.state == Flow.State.FAILED),
        "closed": closed,
        "dispute": ReasonForm(code="207", prefix="dispute"),
        "refuse": ReasonForm(code="210", prefix="refuse"),
        "simulate": SimulateStatusForm(prefix="simulate"),
        "simulate_ready": bool(flow and flow.flow_id),
    }
    return render(request, "invoicing/dashboard/detail.html", context, status=status)


@login_required
def detail_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    if request.scope is None:
        return _no_tenant(request)
    return _render_detail(request, _invoice_or_404(request, pk))


@login_required
@require_POST
def action_view(request: HttpRequest, pk: UUID, action: str) -> HttpResponse:
    scope = request.scope
    if scope is None:
        return _no_tenant(request)
    invoice = _invoice_or_404(request, pk)
    if action not in ACTIONS:
        raise Http404
    if not scope.can_write:
        messages.error(request, _("Your role in this tenant is read-only."))
        return _render_detail(request, invoice, status=403)
    back = redirect("invoicing_dashboard:detail", pk=invoice.pk)
    try:
        if action in STATUS_ACTIONS:
            direction, code = STATUS_ACTIONS[action]
            if invoice.status != direction:
                messages.error(
                    request,
                    _("Mark paid is for issued invoices; approve, dispute and refuse for received ones."),
                )
                return back
            fields: dict[str, str] = {}
            if action in ("dispute", "refuse"):
                form = ReasonForm(request.POST, code=code, prefix=action)
                if not form.is_valid():
                    messages.error(request, _form_errors(form))
                    return back
                fields = form.cleaned_data
            services.invoice_status_send(scope=scope, invoice=invoice, code=code, **fields)
            messages.success(
                request,
                _("Status %(code)s (%(label)s) recorded; its message goes to the PDP.")
                % {"code": code, "label": status_label(code)},
            )
        elif action == "retransmit":
            services.transmission_retry(scope=scope, invoice=invoice)
            messages.success(request, _("The invoice is queued for transmission again."))
        else:  # simulate-status
            form = SimulateStatusForm(request.POST, prefix="simulate")
            if not form.is_valid():
                messages.error(request, _form_errors(form))
                return back
            data = form.cleaned_data
            services.sandbox_status_simulate(
                scope=scope,
                invoice=invoice,
                code=data["code"],
                reason_code=data["reason_code"],
                reason=data["reason"],
            )
            messages.success(
                request,
                _("The simulated %(source)s sent status %(code)s (%(label)s).")
                % {
                    "source": SOURCES[cdar.STATUSES[data["code"]].emitter],
                    "code": data["code"],
                    "label": status_label(data["code"]),
                },
            )
    except ScellError as exc:
        messages.error(request, _error_message(exc))
    return back
