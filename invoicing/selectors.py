"""Invoice reads; each takes the caller's ``scope``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, F, Prefetch, Q, QuerySet, Sum, When, prefetch_related_objects
from django.db.models.functions import TruncMonth

from invoicing.models import Invoice, InvoiceEvent, InvoiceLine
from scell.selectors import month_starts
from scell.tenancy import Scope


def _transmissions() -> Prefetch:
    from pdp.models import Flow

    # The outgoing invoice flow (its transmission to the PDP), without its file.
    flows = Flow.objects.filter(direction=Flow.Direction.OUT, kind=Flow.Kind.INVOICE).defer("content")
    return Prefetch("flows", queryset=flows.order_by("created_at"), to_attr="transmission_flows")


def invoice_list(*, scope: Scope) -> QuerySet[Invoice]:
    return (
        Invoice.objects.scoped(scope)
        .select_related("sub_tenant", "lifecycle")
        .prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")), _transmissions()
        )
        .defer("cii_xml", "source_file")
    )


def invoice_get(*, scope: Scope, pk: Any) -> Invoice:
    return invoice_list(scope=scope).get(pk=pk)


def invoice_events(*, scope: Scope, invoice: Invoice) -> QuerySet[InvoiceEvent]:
    return InvoiceEvent.objects.scoped(scope).filter(invoice=invoice)


def invoice_prefetch(invoice: Invoice) -> Invoice:
    """Attach the lines (in order) and the sub-tenant to an invoice loaded without them."""
    prefetch_related_objects(
        [invoice],
        Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")),
        "sub_tenant",
        "lifecycle",
        _transmissions(),
    )
    return invoice


# --- Figures of the dashboard home ----------------------------------------------------------------------
def issued_list(*, scope: Scope) -> QuerySet[Invoice]:
    """The invoices, corrective invoices and credit notes the caller issued (not drafts, not received)."""
    return Invoice.objects.scoped(scope).filter(status=Invoice.Status.ISSUED)


@dataclass(frozen=True)
class IssuedSummary:
    """What was issued over a period: documents counted, and the net amount excluding VAT per currency
    (a credit note, type code 381, carries positive amounts: it is deducted here)."""

    count: int
    credit_notes: int
    amounts: list[tuple[str, Decimal]]


def _net_without_vat() -> Sum:
    return Sum(
        Case(
            When(type=Invoice.Type.CREDIT_NOTE, then=-F("total_without_vat")),
            default=F("total_without_vat"),
        )
    )


def issued_summary(*, scope: Scope, date_from: dt.date, date_to: dt.date | None = None) -> IssuedSummary:
    """Issued documents whose issue date (BT-2) falls in ``date_from..date_to`` (both included)."""
    qs = issued_list(scope=scope).filter(issue_date__gte=date_from)
    if date_to is not None:
        qs = qs.filter(issue_date__lte=date_to)
    counts = qs.aggregate(
        count=Count("pk"), credit_notes=Count("pk", filter=Q(type=Invoice.Type.CREDIT_NOTE))
    )
    per_currency = qs.values("currency").annotate(net=_net_without_vat()).order_by("currency")
    return IssuedSummary(
        count=counts["count"],
        credit_notes=counts["credit_notes"],
        amounts=[(row["currency"], row["net"] or Decimal("0.00")) for row in per_currency],
    )


def issued_by_month(*, scope: Scope, months: int = 12, today: dt.date | None = None) -> list[dict[str, Any]]:
    """Documents issued per month (by issue date) over the last ``months`` months, oldest first; a month
    without any is there with 0. Each row: ``month`` (its first day), ``count``, ``credit_notes``."""
    starts = month_starts(months, today=today)
    rows = (
        issued_list(scope=scope)
        .filter(issue_date__gte=starts[0])
        .annotate(month=TruncMonth("issue_date"))
        .values("month")
        .annotate(count=Count("pk"), credit_notes=Count("pk", filter=Q(type=Invoice.Type.CREDIT_NOTE)))
        .order_by("month")
    )
    found = {row["month"]: row for row in rows}
    return [
        {
            "month": start,
            "count": found[start]["count"] if start in found else 0,
            "credit_notes": found[start]["credit_notes"] if start in found else 0,
        }
        for start in starts
    ]
