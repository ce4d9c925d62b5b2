"""Credit reads; each takes the caller's ``scope``. Credits belong to the tenant (they are real money),
so sandbox and live keys read the same balance; sandbox operations simply never appear in it."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from billing.models import CreditAccount, CreditLot, LedgerEntry, Purchase
from scell.selectors import month_starts
from scell.tenancy import Scope

ZERO = Decimal("0.00")


def credit_account(*, scope: Scope) -> CreditAccount | None:
    return CreditAccount.objects.filter(tenant=scope.tenant).first()


def credit_lots(*, scope: Scope, include_spent: bool = False) -> QuerySet[CreditLot]:
    qs = CreditLot.objects.filter(tenant=scope.tenant).order_by("expires_at", "created_at")
    if not include_spent:
        qs = qs.filter(remaining__gt=0, expired_at__isnull=True, expires_at__gt=timezone.now())
    return qs


def ledger_entries(*, scope: Scope) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(tenant=scope.tenant).select_related("sub_tenant")


def _usage_filter(
    scope: Scope, date_from: dt.date | None, date_to: dt.date | None, sub_tenant_id: Any | None
) -> Q:
    q = Q(tenant=scope.tenant, kind__in=[LedgerEntry.Kind.SPEND, LedgerEntry.Kind.REFUND])
    if date_from:
        q &= Q(created_at__date__gte=date_from)
    if date_to:
        q &= Q(created_at__date__lte=date_to)
    if scope.sub_tenant is not None:
        q &= Q(sub_tenant=scope.sub_tenant)
    elif sub_tenant_id:
        q &= Q(sub_tenant_id=sub_tenant_id)
    return q


def credit_usage(
    *,
    scope: Scope,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    sub_tenant_id: Any = None,
) -> list[dict[str, Any]]:
    """Spend per operation (refunds deducted): operations counted once even when drawn from two lots."""
    q = _usage_filter(scope, date_from, date_to, sub_tenant_id)
    rows = (
        LedgerEntry.objects.filter(q)
        .values("operation")
        .annotate(
            amount=Sum("amount"),
            operations=Count("reference", filter=Q(kind=LedgerEntry.Kind.SPEND), distinct=True),
        )
        .order_by("operation")
    )
    return [
        {"operation": r["operation"], "count": r["operations"], "amount": -(r["amount"] or ZERO)}
        for r in rows
    ]


def credit_usage_by_month(
    *,
    scope: Scope,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    sub_tenant_id: Any = None,
) -> list[dict[str, Any]]:
    q = _usage_filter(scope, date_from, date_to, sub_tenant_id)
    rows = (
        LedgerEntry.objects.filter(q)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "operation")
        .annotate(
            amount=Sum("amount"),
            operations=Count("reference", filter=Q(kind=LedgerEntry.Kind.SPEND), distinct=True),
        )
        .order_by("month", "operation")
    )
    return [
        {
            "month": r["month"].strftime("%Y-%m"),
            "operation": r["operation"],
            "count": r["operations"],
            "amount": -(r["amount"] or ZERO),
        }
        for r in rows
    ]


def purchases(*, scope: Scope) -> QuerySet[Purchase]:
    return Purchase.objects.filter(tenant=scope.tenant)


# --- Usage per month and operation (dashboard chart and table, CSV exports) -------------------------------
@dataclass
class UsageMonth:
    """One month of spend: per operation (``cells``, in ``UsageMatrix.operations`` order) and in all."""

    month: dt.date
    cells: list[dict[str, Any]] = field(default_factory=list)
    total: Decimal = ZERO


@dataclass
class UsageMatrix:
    """Spend per operation and month over the last months, oldest month first, zero-filled."""

    operations: list[str]
    months: list[UsageMonth]
    totals: list[dict[str, Any]]
    total: Decimal


def credit_usage_matrix(*, scope: Scope, months: int = 12, today: dt.date | None = None) -> UsageMatrix:
    """``credit_usage_by_month`` over the last ``months`` months laid out as a table: one row per month,
    one cell (count, amount) per operation; refunds are already deducted."""
    from billing.services import OPERATIONS  # the priced operations, always shown, in their order

    starts = month_starts(months, today=today)
    rows = credit_usage_by_month(scope=scope, date_from=starts[0])
    seen = {row["operation"] for row in rows}
    operations = list(OPERATIONS) + sorted(seen - set(OPERATIONS))
    found = {(row["month"], row["operation"]): row for row in rows}
    table = []
    totals = {op: {"operation": op, "count": 0, "amount": ZERO} for op in operations}
    for start in starts:
        month = UsageMonth(month=start)
        for op in operations:
            row = found.get((start.strftime("%Y-%m"), op))
            cell = {
                "operation": op,
                "count": row["count"] if row else 0,
                "amount": row["amount"] if row else ZERO,
            }
            month.cells.append(cell)
            month.total += cell["amount"]
            totals[op]["count"] += cell["count"]
            totals[op]["amount"] += cell["amount"]
        table.append(month)
    return UsageMatrix(
        operations=operations,
        months=table,
        totals=[totals[op] for op in operations],
        total=sum((m.total for m in table), ZERO),
    )


def credit_spend_by_month(
    *, scope: Scope, months: int = 12, today: dt.date | None = None
) -> list[dict[str, Any]]:
    """Credits spent per month (all operations, refunds deducted), oldest first: ``month`` (its first
    day) and ``amount`` (EUR)."""
    matrix = credit_usage_matrix(scope=scope, months=months, today=today)
    return [{"month": m.month, "amount": m.total} for m in matrix.months]


def _csv_text(value: Any) -> str:
    """A text cell that a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text = str(value or "")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_line(row: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    return buffer.getvalue()


USAGE_CSV_HEADER = ["month", "operation", "count", "amount_eur"]


def credit_usage_csv(
    *,
    scope: Scope,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    sub_tenant_id: Any = None,
) -> str:
    """Spend per month and operation as CSV (the API's ``?format=csv`` and the dashboard's download):
    amounts in EUR with two decimals and a dot, whatever the reader's language."""
    rows = credit_usage_by_month(
        scope=scope, date_from=date_from, date_to=date_to, sub_tenant_id=sub_tenant_id
    )
    lines = [_csv_line(USAGE_CSV_HEADER)]
    for row in rows:
        lines.append(
            _csv_line([row["month"], _csv_text(row["operation"]), row["count"], f"{row['amount']:.2f}"])
        )
    return "".join(lines)


LEDGER_CSV_HEADER = [
    "date",
    "kind",
    "operation",
    "quantity",
    "unit_price_eur",
    "amount_eur",
    "lot",
    "reference",
    "sub_tenant",
    "reason",
]


def ledger_csv(
    *, scope: Scope, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> Iterator[str]:
    """Every credit movement of the period (business days of the active time zone, both ends included)
    as CSV lines, oldest first, read in chunks so that a long ledger streams in bounded memory. Amounts
    are signed: positive in, negative out.

    The query and the time zone are fixed now, not when the lines are read: a streaming response reads
    them after the view (and its time zone override) returned."""
    tz = timezone.get_current_timezone()
    qs = ledger_entries(scope=scope)
    if scope.sub_tenant is not None:
        qs = qs.filter(sub_tenant=scope.sub_tenant)
    if date_from:
        qs = qs.filter(created_at__gte=dt.datetime.combine(date_from, dt.time.min, tzinfo=tz))
    if date_to:
        end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        qs = qs.filter(created_at__lt=end)
    qs = qs.order_by("created_at", "pk")

    def lines() -> Iterator[str]:
        yield _csv_line(LEDGER_CSV_HEADER)
        for entry in qs.iterator(chunk_size=2000):
            yield _csv_line(
                [
                    entry.created_at.astimezone(tz).isoformat(timespec="seconds"),
                    entry.kind,
                    _csv_text(entry.operation),
                    entry.quantity,
                    f"{entry.unit_price:.2f}" if entry.unit_price is not None else "",
                    f"{entry.amount:.2f}",
                    entry.lot_id or "",
                    _csv_text(entry.reference),
                    entry.sub_tenant.identifier if entry.sub_tenant_id else "",
                    _csv_text(entry.reason),
                ]
            )

    return lines()
