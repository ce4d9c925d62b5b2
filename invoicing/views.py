"""Dashboard: Invoices. The list (every invoice of the current tenant and mode: drafts, issued, received,
credit notes) with search and filters; drafts written and edited with live totals; the issue with its
confirmation and the rules' errors next to the fields; downloads; credit notes; the transmission to the PDP
and the lifecycle.

Reads go through ``invoicing.selectors``. Writes call the services the API calls: the draft form is turned
into the API's draft body and checked by the API's own input serializer before ``invoicing.services``
sees it; lifecycle actions go through ``pdp.services``: mark paid (212), retransmit, approve (205), dispute
(207), refuse (210) and, in the sandbox, simulated statuses and incoming invoices."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from invoicing import selectors
from invoicing import services as invoice_services
from invoicing.api.serializers import InvoiceInputSerializer, InvoiceSerializer, LineSerializer
from invoicing.forms import (
    LINES_PREFIX,
    VAT_RATE_SUGGESTIONS,
    CreditNoteForm,
    IncomingInvoiceForm,
    InvoiceDraftForm,
    InvoiceListFilter,
    LineFormSet,
    Problem,
    ReasonForm,
    SimulateStatusForm,
    attach_errors,
    draft_body,
    draft_initial,
    flatten_errors,
    form_problems,
    kept_line_forms,
    line_body,
    line_initial,
    status_label,
    trim_decimal,
)
from invoicing.models import Invoice, InvoiceEvent
from pdp import cdar, services
from pdp.models import Flow, InvoiceLifecycle, Target
from scell.errors import Conflict, ScellError, UnprocessableEntity
from scell.tenancy import dashboard_page

PER_PAGE = 50
# Invoices with a transmission and a lifecycle (drafts have neither).
SHOWN_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.RECEIVED)
READ_ONLY = gettext_lazy("Your role in this tenant is read-only.")

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
    Invoice.Status.DRAFT: gettext_lazy("draft"),
    Invoice.Status.ISSUED: gettext_lazy("issued"),
    Invoice.Status.RECEIVED: gettext_lazy("received"),
}
# The documents of an issued invoice, rendered by the service behind the API's download
# (``GET /invoices/{id}/download?format=``), with the API's file names.
DOWNLOADS = {
    "facturx": (gettext_lazy("Factur-X PDF"), ""),
    "pdf": (gettext_lazy("Readable PDF"), "-readable"),
    "cii": (gettext_lazy("CII XML"), "-cii"),
    "ubl": (gettext_lazy("UBL XML"), "-ubl"),
    "json": (gettext_lazy("JSON (API)"), ""),
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
def _invoice_or_404(request: HttpRequest, pk: UUID, *, statuses: tuple[str, ...] | None = None) -> Invoice:
    """An invoice of the current tenant and mode (another tenant's or mode's is a 404, never a 403)."""
    try:
        invoice = selectors.invoice_get(scope=request.scope, pk=pk)
    except Invoice.DoesNotExist:
        raise Http404 from None
    if statuses is not None and invoice.status not in statuses:
        raise Http404
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
    invoices = selectors.invoice_list(scope=scope).order_by("-created_at", "-pk")
    filters = InvoiceListFilter(request.GET or None, queryset=invoices)
    page = Paginator(filters.qs, PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "invoicing/dashboard/list.html",
        {
            "page": page,
            "rows": [_summary(invoice) for invoice in page.object_list],
            "filters": filters.form,
            "filtered": any(value for key, value in query.items()),
            "query": query.urlencode(),
            "incoming": incoming or IncomingInvoiceForm(),
        },
        status=status,
    )


@dashboard_page
def list_view(request: HttpRequest) -> HttpResponse:
    return _render_list(request)


@dashboard_page
@require_POST
def simulate_incoming_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    if not scope.can_write:
        messages.error(request, READ_ONLY)
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


# --- Drafts -----------------------------------------------------------------------------------------------
def _post_value(value: Any) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return "on"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _stored_data(invoice: Invoice) -> QueryDict:
    """A draft as the form would post it: the forms are bound to it to carry the issue's errors."""
    data = QueryDict(mutable=True)
    for name, value in draft_initial(invoice).items():
        if _post_value(value):
            data[name] = _post_value(value)
    lines = [line_initial(line) for line in invoice.lines.all()]
    data[f"{LINES_PREFIX}-TOTAL_FORMS"] = str(len(lines))
    data[f"{LINES_PREFIX}-INITIAL_FORMS"] = str(len(lines))
    for index, line in enumerate(lines):
        for name, value in line.items():
            data[f"{LINES_PREFIX}-{index}-{name}"] = _post_value(value)
    return data


def _with_new_line(data: QueryDict) -> QueryDict:
    """The posted form plus one blank line (the "add a line" button without JavaScript)."""
    data = data.copy()
    index = int(data.get(f"{LINES_PREFIX}-TOTAL_FORMS") or 0)
    blank = LineFormSet(prefix=LINES_PREFIX).empty_form
    for name, field in blank.fields.items():
        if field.initial is not None and name != "DELETE":
            data[f"{LINES_PREFIX}-{index}-{name}"] = _post_value(field.initial)
    data[f"{LINES_PREFIX}-TOTAL_FORMS"] = str(index + 1)
    return data


def _draft_forms(
    request: HttpRequest, invoice: Invoice | None, data: QueryDict | None = None
) -> tuple[Any, Any]:
    initial = draft_initial(invoice) if invoice else None
    lines = [line_initial(line) for line in invoice.lines.all()] if invoice else None
    form = InvoiceDraftForm(data, scope=request.scope, initial=initial)
    formset = LineFormSet(data, prefix=LINES_PREFIX, initial=lines)
    return form, formset


def _preview(request: HttpRequest, form: Any, formset: Any, invoice: Invoice | None) -> dict[str, Any]:
    """The totals of what is typed so far, computed by the services (``invoice_preview``) from the lines
    that are complete; the others are counted as incomplete."""
    data: dict[str, Any] = {}
    nets: dict[str, Any] = {}
    incomplete = 0
    counted: list[Any] = []
    if form.is_bound:
        form.is_valid()
        formset.is_valid()
        counted = kept_line_forms(formset, valid_only=True)
        incomplete = sum(1 for line in formset.forms if line.errors and not line["DELETE"].value())
        data["lines"] = [line_body(line.cleaned_data) for line in counted]
        cleaned = getattr(form, "cleaned_data", {})
        if cleaned.get("currency"):
            data["currency"] = cleaned["currency"]
        if "sub_tenant" in cleaned:
            data["sub_tenant"] = cleaned["sub_tenant"] or None
    elif invoice is None:
        data["lines"] = []
    else:
        counted = list(formset.forms[: formset.initial_form_count()])
    serializer = InvoiceInputSerializer(data=data, partial=True)
    doc = None
    if serializer.is_valid():
        try:
            doc = invoice_services.invoice_preview(
                scope=request.scope, data=serializer.validated_data, invoice=invoice
            )
        except ScellError:
            doc = None
    if doc is not None:
        nets = {line.prefix: computed.net_amount for line, computed in zip(counted, doc.lines, strict=False)}
    return {
        "doc": doc,
        "lines": [(line.prefix, nets.get(line.prefix)) for line in formset.forms],
        "incomplete": incomplete,
    }


def _render_edit(
    request: HttpRequest,
    form: Any,
    formset: Any,
    *,
    invoice: Invoice | None,
    problems: list[Problem] | None = None,
    failure: str = "",
    totals: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The draft form. ``totals`` is given when errors were attached to valid forms after the fact (the
    services' errors): the totals are those of the draft as it is, not of its lines without errors."""
    action = (
        reverse("invoicing_dashboard:edit", args=[invoice.pk])
        if invoice
        else reverse("invoicing_dashboard:new")
    )
    totals_url = (
        reverse("invoicing_dashboard:draft-totals", args=[invoice.pk])
        if invoice
        else reverse("invoicing_dashboard:totals")
    )
    totals = totals or _preview(request, form, formset, invoice)
    context = {
        "invoice": invoice,
        "form": form,
        "formset": formset,
        "action": action,
        "totals_url": totals_url,
        "problems": problems or [],
        "line_problems": [p for p in problems or [] if p.near == "lines"],
        "failure": failure,
        "vat_rates": VAT_RATE_SUGGESTIONS,
        "totals": totals,
        "rows": [(line, net) for line, (_prefix, net) in zip(formset.forms, totals["lines"], strict=True)],
    }
    return render(request, "invoicing/dashboard/edit.html", context, status=status)


def _read_only(request: HttpRequest, invoice: Invoice | None = None) -> HttpResponse:
    messages.error(request, READ_ONLY)
    if invoice is None:
        return _render_list(request, status=403)
    return _render_detail(request, invoice, status=403)


def _save(request: HttpRequest, invoice: Invoice | None) -> HttpResponse:
    """Create or update a draft from the posted forms, through the API's serializer and the services."""
    scope = request.scope
    if "add_line" in request.POST:
        form, formset = _draft_forms(request, invoice, _with_new_line(request.POST))
        return _render_edit(request, form, formset, invoice=invoice)
    form, formset = _draft_forms(request, invoice, request.POST)
    if not (form.is_valid() & formset.is_valid()):
        problems = form_problems(form, [line for line in formset.forms if not line["DELETE"].value()])
        problems += [Problem(message=str(error)) for error in formset.non_form_errors()]
        return _render_edit(request, form, formset, invoice=invoice, problems=problems, status=422)
    line_forms = kept_line_forms(formset)
    body = draft_body(form, line_forms, invoice=invoice)
    # The API's own input check: the dashboard and the API hand the services the same data.
    serializer = InvoiceInputSerializer(data=body, partial=invoice is not None)
    try:
        if not serializer.is_valid():
            raise UnprocessableEntity(_("The draft is not valid."), details=flatten_errors(serializer.errors))
        if invoice is None:
            invoice = invoice_services.invoice_create_draft(scope=scope, data=serializer.validated_data)
        else:
            invoice = invoice_services.invoice_update_draft(
                scope=scope, invoice=invoice, data=serializer.validated_data
            )
    except Conflict as exc:
        messages.error(request, _error_message(exc))
        return redirect("invoicing_dashboard:detail", pk=invoice.pk)  # type: ignore[union-attr]
    except ScellError as exc:
        totals = _preview(request, form, formset, invoice)
        problems = attach_errors(exc.details or [{"message": exc.message}], form=form, line_forms=line_forms)
        return _render_edit(
            request, form, formset, invoice=invoice, problems=problems, totals=totals, status=422
        )
    if request.POST.get("next") == "issue":
        return redirect("invoicing_dashboard:issue", pk=invoice.pk)
    messages.success(request, _("Draft %(number)s saved.") % {"number": invoice.number})
    return redirect("invoicing_dashboard:edit", pk=invoice.pk)


@dashboard_page
@require_http_methods(["GET", "POST"])
def create_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    if not scope.can_write:
        return _read_only(request)
    if request.method == "POST":
        return _save(request, None)
    form, formset = _draft_forms(request, None)
    return _render_edit(request, form, formset, invoice=None)


@dashboard_page
@require_http_methods(["GET", "POST"])
def edit_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    scope = request.scope
    invoice = _invoice_or_404(request, pk)
    if not scope.can_write:
        return _read_only(request, invoice)
    if invoice.status != Invoice.Status.DRAFT:
        messages.error(
            request, _("Invoice %(number)s is not a draft: it cannot change.") % {"number": invoice.number}
        )
        return redirect("invoicing_dashboard:detail", pk=invoice.pk)
    if request.method == "POST":
        return _save(request, invoice)
    form, formset = _draft_forms(request, invoice)
    return _render_edit(request, form, formset, invoice=invoice)


@dashboard_page
@require_POST
def totals_view(request: HttpRequest, pk: UUID | None = None) -> HttpResponse:
    """The live totals of the draft form (htmx): the service's computation, nothing saved."""
    scope = request.scope
    invoice = _invoice_or_404(request, pk, statuses=(Invoice.Status.DRAFT,)) if pk else None
    if not scope.can_write:
        return HttpResponse(READ_ONLY, status=403)
    form, formset = _draft_forms(request, invoice, request.POST)
    context = {"totals": _preview(request, form, formset, invoice), "oob": True}
    return render(request, "invoicing/dashboard/_totals.html", context)


@dashboard_page
@require_http_methods(["GET", "POST"])
def issue_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    """GET: what issuing does, to confirm. POST: issue; when the rules refuse the draft, the edit page
    with each broken rule next to its field, and nothing issued."""
    scope = request.scope
    invoice = _invoice_or_404(request, pk)
    if not scope.can_write:
        return _read_only(request, invoice)
    if invoice.status != Invoice.Status.DRAFT:
        messages.info(request, _("Invoice %(number)s is already issued.") % {"number": invoice.number})
        return redirect("invoicing_dashboard:detail", pk=invoice.pk)
    if request.method == "GET":
        from billing.services import price_of

        context = {"invoice": invoice, "lines": list(invoice.lines.all()), "price": price_of("invoice_issue")}
        return render(request, "invoicing/dashboard/issue.html", context)
    try:
        issued = invoice_services.invoice_issue(scope=scope, invoice=invoice)
    except UnprocessableEntity as exc:
        form, formset = _draft_forms(request, invoice, _stored_data(invoice))
        totals = _preview(request, form, formset, invoice)  # validates the forms too
        problems = attach_errors(
            exc.details or [{"message": exc.message}], form=form, line_forms=kept_line_forms(formset)
        )
        return _render_edit(
            request,
            form,
            formset,
            invoice=invoice,
            problems=problems,
            failure=exc.message,
            totals=totals,
            status=422,
        )
    except ScellError as exc:
        messages.error(request, _error_message(exc))
        return redirect("invoicing_dashboard:detail", pk=invoice.pk)
    messages.success(request, _("Invoice %(number)s is issued.") % {"number": issued.number})
    return redirect("invoicing_dashboard:detail", pk=issued.pk)


@dashboard_page
@require_POST
def delete_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    scope = request.scope
    invoice = _invoice_or_404(request, pk)
    if not scope.can_write:
        return _read_only(request, invoice)
    try:
        invoice_services.invoice_delete_draft(scope=scope, invoice=invoice)
    except ScellError as exc:
        messages.error(request, _error_message(exc))
        return redirect("invoicing_dashboard:detail", pk=invoice.pk)
    messages.success(request, _("Draft %(number)s deleted.") % {"number": invoice.number})
    return redirect("invoicing_dashboard:list")


# --- Issued invoices: documents and credit notes --------------------------------------------------------
@dashboard_page
def download_view(request: HttpRequest, pk: UUID, fmt: str) -> HttpResponse:
    invoice = _invoice_or_404(request, pk)
    if fmt == "original" and invoice.status == Invoice.Status.RECEIVED and invoice.source_file:
        pdf = invoice.source_syntax == "facturx"
        response = HttpResponse(
            bytes(invoice.source_file), content_type="application/pdf" if pdf else "application/xml"
        )
        name = f"{invoice.number}-original.{'pdf' if pdf else 'xml'}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    if fmt not in DOWNLOADS or invoice.status != Invoice.Status.ISSUED:
        raise Http404
    if fmt == "json":
        content = json.dumps(
            InvoiceSerializer(invoice).data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2
        )
        response = HttpResponse(content, content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.json"'
        return response
    try:
        document = invoice_services.invoice_render(invoice=invoice, fmt=fmt)
    except ScellError as exc:
        messages.error(request, _error_message(exc))
        return redirect("invoicing_dashboard:detail", pk=invoice.pk)
    extension = "pdf" if document.content_type == "application/pdf" else "xml"
    response = FileResponse(
        document.file.open("rb"),
        as_attachment=True,
        filename=f"{invoice.number}{DOWNLOADS[fmt][1]}.{extension}",
        content_type=document.content_type,
    )
    response["X-Content-SHA256"] = document.sha256
    return response


def _creditable(invoice: Invoice) -> bool:
    return invoice.status == Invoice.Status.ISSUED and invoice.type != Invoice.Type.CREDIT_NOTE


@dashboard_page
@require_POST
def credit_note_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    scope = request.scope
    invoice = _invoice_or_404(request, pk)
    if not scope.can_write:
        return _read_only(request, invoice)
    if not _creditable(invoice):
        messages.error(request, _("Only an issued invoice can be credited."))
        return redirect("invoicing_dashboard:detail", pk=invoice.pk)
    form = CreditNoteForm(request.POST, invoice=invoice, prefix="credit")
    if not form.is_valid():
        return _render_detail(request, invoice, credit=form, status=422)
    lines, sources = form.service_lines()
    reason = form.cleaned_data["reason"].strip()
    try:
        if form.cleaned_data["mode"] == "amount":
            # A free line: the API's line check, as for any line of a draft.
            line = LineSerializer(data=lines[0])  # type: ignore[index]
            if not line.is_valid():
                raise UnprocessableEntity(
                    _("The amount cannot be credited."), details=flatten_errors(line.errors, "lines[0]")
                )
            lines = [line.validated_data]
        notes = [{"text": reason, "subject": ""}, *(invoice.notes or [])]
        credit = invoice_services.invoice_create_credit_note(
            scope=scope, original=invoice, lines=lines, data={"notes": notes}
        )
    except ScellError as exc:
        placed = False
        for detail in exc.details:
            field = str(detail.get("field") or "") if isinstance(detail, dict) else ""
            index = field[len("lines[") :].split("]", 1)[0] if field.startswith("lines[") else ""
            if index.isdigit() and int(index) < len(sources):
                form.add_error(sources[int(index)], str(detail.get("message") or exc.message))
                placed = True
        if not placed:
            form.add_error(None, _error_message(exc))
        return _render_detail(request, invoice, credit=form, status=422)
    messages.success(
        request,
        _("Draft credit note %(number)s created: check it, then issue it.") % {"number": credit.number},
    )
    return redirect("invoicing_dashboard:detail", pk=credit.pk)


# --- Detail -----------------------------------------------------------------------------------------------
def _render_detail(
    request: HttpRequest, invoice: Invoice, *, credit: CreditNoteForm | None = None, status: int = 200
) -> HttpResponse:
    scope = request.scope
    timeline = _timeline(selectors.invoice_events(scope=scope, invoice=invoice).order_by("created_at", "pk"))
    summary = _summary(invoice)
    flow = summary["flow"]
    lifecycle = summary["lifecycle"]
    closed = bool(lifecycle and lifecycle.status_code in services.FINAL_BUYER_STATUSES)
    downloads = []
    if invoice.status == Invoice.Status.ISSUED:
        downloads = [
            {
                "format": fmt,
                "label": label,
                "url": reverse("invoicing_dashboard:download", args=[invoice.pk, fmt]),
            }
            for fmt, (label, _suffix) in DOWNLOADS.items()
        ]
    elif invoice.status == Invoice.Status.RECEIVED and invoice.source_syntax:
        downloads = [
            {
                "format": "original",
                "label": _("Original file (%(syntax)s)") % {"syntax": invoice.source_syntax},
                "url": reverse("invoicing_dashboard:download", args=[invoice.pk, "original"]),
            }
        ]
    corrections = (
        list(Invoice.objects.scoped(scope).filter(preceding_invoice=invoice).order_by("created_at"))
        if invoice.status == Invoice.Status.ISSUED
        else []
    )
    lines = list(invoice.lines.all())
    for line in lines:
        line.quantity_display = trim_decimal(line.quantity)
        line.unit_price_display = trim_decimal(line.unit_price, 2)
    context = {
        **summary,
        "lines": lines,
        "timeline": timeline,
        "target": Target(flow.target).label if flow and flow.target in Target.values else "",
        "rejection": [_rejection_text(d) for d in flow.ack_details]
        if flow and flow.ack_status == "Error"
        else [],
        "received_from": _received_from(timeline),
        "can_retransmit": bool(flow and flow.state == Flow.State.FAILED),
        "closed": closed,
        "downloads": downloads,
        "corrections": corrections,
        "credit": credit
        or (CreditNoteForm(invoice=invoice, prefix="credit") if _creditable(invoice) else None),
        "dispute": ReasonForm(code="207", prefix="dispute"),
        "refuse": ReasonForm(code="210", prefix="refuse"),
        "simulate": SimulateStatusForm(prefix="simulate"),
        "simulate_ready": bool(flow and flow.flow_id),
    }
    return render(request, "invoicing/dashboard/detail.html", context, status=status)


@dashboard_page
def detail_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _render_detail(request, _invoice_or_404(request, pk))


@dashboard_page
@require_POST
def action_view(request: HttpRequest, pk: UUID, action: str) -> HttpResponse:
    scope = request.scope
    invoice = _invoice_or_404(request, pk, statuses=SHOWN_STATUSES)
    if action not in ACTIONS:
        raise Http404
    if not scope.can_write:
        messages.error(request, READ_ONLY)
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
