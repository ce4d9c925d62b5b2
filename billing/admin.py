"""Support's view of credits. Balances and the ledger are read-only: credits move through the billing
services only; support grants or removes credits with an adjustment, whose reason is mandatory."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Sum
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from billing.models import CreditAccount, CreditAdjustment, CreditLot, LedgerEntry, Purchase
from billing.services import credits_adjust
from scell.admin_base import ReadOnlyAdmin, support_action_record


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "balance", "low_balance_threshold", "updated_at"]
    search_fields = ["tenant__identifier", "tenant__legal_name"]


@admin.register(CreditLot)
class CreditLotAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "amount", "remaining", "source", "created_at", "expires_at", "expired_at"]
    list_filter = ["source"]
    search_fields = ["tenant__identifier"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "kind",
        "amount",
        "operation",
        "reference",
        "reason",
        "created_by",
    ]
    list_filter = ["kind", "operation"]
    search_fields = ["tenant__identifier", "reference", "reason"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant", "created_by")


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "amount", "amount_with_vat", "provider", "status", "paid_at"]
    list_filter = ["status", "provider"]
    search_fields = ["tenant__identifier", "provider_ref"]


class AdjustmentForm(forms.ModelForm):
    amount = forms.DecimalField(
        max_digits=14, decimal_places=2, help_text="EUR; negative to remove credits (taken from the lots)"
    )
    reason = forms.CharField(widget=forms.Textarea, required=True, help_text="mandatory; kept in the ledger")

    class Meta:
        model = CreditAdjustment
        fields = ["tenant", "amount", "reason"]

    def clean(self) -> dict:
        data = super().clean()
        tenant, amount = data.get("tenant"), data.get("amount")
        if amount == 0:
            self.add_error("amount", "An adjustment cannot be zero.")
        if tenant is not None and amount is not None and amount < 0:
            # What can still be taken: lots past their expiry (not yet written off by the cron) are in
            # the cached balance but are never spent, so credits_adjust would refuse them (402).
            available = CreditLot.objects.filter(
                tenant=tenant, remaining__gt=0, expired_at__isnull=True, expires_at__gt=timezone.now()
            ).aggregate(s=Sum("remaining"))["s"] or Decimal("0.00")
            if -amount > available:
                self.add_error("amount", f"The spendable balance is only {available} EUR.")
        return data


@admin.register(CreditAdjustment)
class CreditAdjustmentAdmin(admin.ModelAdmin):
    form = AdjustmentForm
    list_display = ["created_at", "tenant", "amount", "reason", "created_by"]
    autocomplete_fields = ["tenant"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind=LedgerEntry.Kind.ADJUSTMENT).select_related("tenant")

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        tenant, amount, reason = (form.cleaned_data[k] for k in ("tenant", "amount", "reason"))
        with transaction.atomic():
            entries = credits_adjust(tenant=tenant, amount=amount, reason=reason, created_by=request.user)
            support_action_record(
                actor=request.user,
                action="credits.adjust",
                obj=entries[0],
                tenant=tenant,
                reason=reason,
                details={"amount": str(amount), "entries": [str(e.pk) for e in entries]},
            )
        # The service wrote the entries; show the first as the created object.
        obj.pk = entries[0].pk
        obj._state.adding = False

    def response_add(self, request, obj, post_url_continue=None):
        messages.success(request, f"Adjustment recorded for {obj.tenant}.")
        return HttpResponseRedirect(reverse("admin:billing_creditadjustment_changelist"))
