"""Credit reads; each takes the caller's ``scope``. Credits belong to the tenant (they are real money),
so sandbox and live keys read the same balance; sandbox operations simply never appear in it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from billing.models import CreditAccount, CreditLot, LedgerEntry, Purchase
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
