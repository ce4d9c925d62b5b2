"""Dashboard home: the month at a glance for the current tenant and mode, each figure linking to its
page, and the last 12 months of issued invoices and credit spend. Every figure comes from the selectors
of its app (the same reads as the API)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from archive import selectors as archive_selectors
from billing import selectors as billing_selectors
from invoicing import selectors as invoicing_selectors
from scell import selectors as scell_selectors
from scell.tenancy import dashboard_page
from signatures import selectors as signatures_selectors
from webhooks import selectors as webhooks_selectors

CHART_MONTHS = 12
FAILURES_SHOWN = 5


def _percent(value: Decimal | int, peak: Decimal | int) -> int:
    """Bar height in % of the tallest bar; a non-zero value stays visible (at least 2 %)."""
    if not value or not peak:
        return 0
    return max(2, int(Decimal(value) * 100 / Decimal(peak)))


def _chart(scope: Any) -> list[dict[str, Any]]:
    issued = invoicing_selectors.issued_by_month(scope=scope, months=CHART_MONTHS)
    spend = billing_selectors.credit_spend_by_month(scope=scope, months=CHART_MONTHS)
    peak_count = max(row["count"] for row in issued)
    peak_spend = max(row["amount"] for row in spend)
    return [
        {
            "month": i["month"],
            "count": i["count"],
            "count_percent": _percent(i["count"], peak_count),
            "spend": s["amount"],
            "spend_percent": _percent(s["amount"], peak_spend),
        }
        for i, s in zip(issued, spend, strict=True)
    ]


@dashboard_page
def home_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    month_start = timezone.localdate().replace(day=1)
    account = billing_selectors.credit_account(scope=scope)
    failures = webhooks_selectors.delivery_failures(scope=scope)
    context = {
        "month_start": month_start,
        "issued": invoicing_selectors.issued_summary(scope=scope, date_from=month_start),
        "balance": account.balance if account else billing_selectors.ZERO,
        "low_balance": account is not None and account.balance < account.low_balance_threshold,
        "next_lot": billing_selectors.credit_lots(scope=scope).first(),
        "waiting": signatures_selectors.signature_requests_waiting(scope=scope).count(),
        "failures": list(failures[:FAILURES_SHOWN]),
        "failure_count": failures.count(),
        "chain": archive_selectors.chain_status(scope=scope),
        "chart": _chart(scope),
        "keys": scell_selectors.api_key_list(scope=scope)
        .filter(revoked_at__isnull=True)
        .order_by("kind", "created_at"),
    }
    return render(request, "dashboard/home.html", context)
