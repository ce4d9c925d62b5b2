"""Dashboard: credits page (balance, lots, usage over 12 months, buy a pack)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import selectors, services
from billing.models import Purchase
from scell.errors import ScellError


class BuyPackForm(forms.Form):
    amount = forms.TypedChoiceField(label=gettext_lazy("Pack"), coerce=Decimal)
    card = forms.CharField(
        label=gettext_lazy("Test card number"),
        required=False,
        help_text=gettext_lazy(
            "Sandbox payments: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined."
        ),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"].choices = [(str(p), f"{p} EUR") for p in services.pack_catalogue()]
        if settings.PAYMENT_PROVIDER != "sandbox":
            del self.fields["card"]


def _months_back(count: int) -> list[str]:
    today = timezone.localdate()
    year, month = today.year, today.month
    out = []
    for _step in range(count):
        out.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(out))


@login_required
def credits_view(request: HttpRequest) -> HttpResponse:
    scope = request.scope
    if scope is None:
        return render(request, "dashboard/no_tenant.html", status=403)
    form = BuyPackForm(request.POST or None)
    if request.method == "POST":
        if scope.role != "admin":
            messages.error(request, _("Only an admin of the tenant can buy credits."))
            return redirect("billing:credits")
        if form.is_valid():
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
    months = _months_back(12)
    monthly = {m: Decimal("0.00") for m in months}
    for row in selectors.credit_usage_by_month(scope=scope):
        if row["month"] in monthly:
            monthly[row["month"]] += row["amount"]
    peak = max(monthly.values()) or Decimal("1")
    chart = [
        {"month": m, "amount": a, "percent": int(a / peak * 100) if a else 0} for m, a in monthly.items()
    ]
    account = selectors.credit_account(scope=scope)
    context = {
        "balance": account.balance if account else Decimal("0.00"),
        "lots": selectors.credit_lots(scope=scope),
        "usage": selectors.credit_usage(scope=scope),
        "chart": chart,
        "form": form,
        "prices": {op: services.price_of(op) for op in services.OPERATIONS},
        "purchases": selectors.purchases(scope=scope).order_by("-created_at")[:10],
    }
    return render(request, "billing/credits.html", context)


urlpatterns = [path("credits/", credits_view, name="credits")]
