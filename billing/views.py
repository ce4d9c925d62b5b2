"""Dashboard: credits page (balance, lots, usage per operation and month with its chart, CSV exports,
buy a pack). Reads go through ``billing.selectors`` and the purchase through ``billing.services``, as
the API's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from billing import selectors, services
from billing.models import Purchase
from scell.errors import ScellError
from scell.tenancy import dashboard_page

CHART_MONTHS = 12
PURCHASES_SHOWN = 10
# How the dashboard names the priced operations (billing.services.OPERATIONS).
OPERATION_LABELS = {
    "invoice_issue": gettext_lazy("Issued invoices"),
    "signature_signer": gettext_lazy("Signers"),
}


class BuyPackForm(forms.Form):
    amount = forms.TypedChoiceField(label=gettext_lazy("Pack"), coerce=Decimal)
    card = forms.CharField(
        label=gettext_lazy("Test card number"),
        required=False,
        help_text=gettext_lazy(
            "Sandbox payments: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"].choices = [(str(p), f"{p} EUR") for p in services.pack_catalogue()]
        if settings.PAYMENT_PROVIDER != "sandbox":
            del self.fields["card"]


class ExportForm(forms.Form):
    """The period of a CSV export; both ends optional and included."""

    date_from = forms.DateField(
        label=pgettext_lazy("period", "From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=pgettext_lazy("period", "To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end of the period is before its start."))
        return data


def _operation_label(operation: str) -> str:
    return str(OPERATION_LABELS.get(operation, operation or _("other")))


def _usage(scope: Any) -> dict[str, Any]:
    """The 12-month usage table and its stacked bar chart (one segment per operation)."""
    matrix = selectors.credit_usage_matrix(scope=scope, months=CHART_MONTHS)
    peak = max((m.total for m in matrix.months), default=selectors.ZERO)
    operations = [
        {"key": op, "label": _operation_label(op), "index": i} for i, op in enumerate(matrix.operations)
    ]
    chart = []
    for month in matrix.months:
        segments = []
        for i, cell in enumerate(month.cells):
            # A month where refunds outweigh spend draws no bar; the table shows the signed figure.
            amount = max(cell["amount"], selectors.ZERO)
            percent = int(amount * 100 / peak) if peak > 0 and amount > 0 else 0
            segments.append(
                {"index": i, "amount": cell["amount"], "percent": max(percent, 1) if amount else 0}
            )
        chart.append({"month": month.month, "total": month.total, "segments": segments})
    return {"matrix": matrix, "operations": operations, "chart": chart}


def _render(
    request: HttpRequest,
    *,
    form: BuyPackForm | None = None,
    export: ExportForm | None = None,
    status: int = 200,
) -> HttpResponse:
    scope = request.scope
    account = selectors.credit_account(scope=scope)
    lots = list(selectors.credit_lots(scope=scope))
    context = {
        "balance": account.balance if account else selectors.ZERO,
        "low_balance": account is not None and account.balance < account.low_balance_threshold,
        "lots": lots,
        "next_lot": lots[0] if lots else None,
        "form": form or BuyPackForm(),
        "export": export or ExportForm(),
        "is_admin": scope.role == "admin",
        "prices": {op: services.price_of(op) for op in services.OPERATIONS},
        "purchases": selectors.purchases(scope=scope).order_by("-created_at")[:PURCHASES_SHOWN],
        **_usage(scope),
    }
    return render(request, "billing/credits.html", context, status=status)


@dashboard_page
def credits_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    if request.method != "POST":
        outcome = request.GET.get("purchase")
        if outcome == "success":
            messages.info(request, _("Thank you: the credits are added as soon as the payment is confirmed."))
        elif outcome == "cancelled":
            messages.info(request, _("The payment was cancelled; nothing was charged."))
        return _render(request)
    if scope.role != "admin":
        messages.error(request, _("Only an admin of the tenant can buy credits."))
        return _render(request, status=403)
    form = BuyPackForm(request.POST)
    if not form.is_valid():
        return _render(request, form=form, status=422)
    base = request.build_absolute_uri(reverse("billing:credits"))
    try:
        purchase = services.purchase_start(
            scope=scope,
            amount=form.cleaned_data["amount"],
            card=form.cleaned_data.get("card", ""),
            success_url=f"{base}?purchase=success",
            cancel_url=f"{base}?purchase=cancelled",
            created_by=request.user,
        )
    except ScellError as exc:
        messages.error(request, exc.message)
        return redirect("billing:credits")
    purchase.refresh_from_db()
    if purchase.checkout_url and purchase.status == Purchase.Status.PENDING:
        return redirect(purchase.checkout_url)
    if purchase.status == Purchase.Status.PAID:
        messages.success(request, _("%(amount)s EUR of credits added.") % {"amount": purchase.amount})
    else:
        messages.error(request, _("Payment failed: %(reason)s") % {"reason": purchase.failure_reason})
    return redirect("billing:credits")


def _export_period(request: HttpRequest) -> ExportForm:
    return ExportForm(request.GET)


def _filename(kind: str, form: ExportForm) -> str:
    start, end = form.cleaned_data.get("date_from"), form.cleaned_data.get("date_to")
    period = f"-{start:%Y%m%d}" if start else ""
    period += f"-{end:%Y%m%d}" if end else ("" if not start else f"-{timezone.localdate():%Y%m%d}")
    return f"scell-credit-{kind}{period}.csv"


@dashboard_page
def usage_csv_view(request: HttpRequest) -> HttpResponse:
    """Spend per month and operation, as ``GET /api/v1/credits/usage?format=csv``."""
    scope = request.scope
    form = _export_period(request)
    if not form.is_valid():
        return _render(request, export=form, status=400)
    body = selectors.credit_usage_csv(
        scope=scope, date_from=form.cleaned_data["date_from"], date_to=form.cleaned_data["date_to"]
    )
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename("usage", form)}"'
    return response


@dashboard_page
def ledger_csv_view(request: HttpRequest) -> HttpResponse:
    """Every credit movement of the period, streamed (a ledger can be long)."""
    scope = request.scope
    form = _export_period(request)
    if not form.is_valid():
        return _render(request, export=form, status=400)
    lines = selectors.ledger_csv(
        scope=scope, date_from=form.cleaned_data["date_from"], date_to=form.cleaned_data["date_to"]
    )
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename("ledger", form)}"'
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("credits/", credits_view, name="credits"),
    path("credits/usage.csv", usage_csv_view, name="usage-csv"),
    path("credits/ledger.csv", ledger_csv_view, name="ledger-csv"),
]
