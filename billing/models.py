"""Prepaid credits: lots bought in packs, and the immutable ledger the balance derives from."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scell.tenancy import ScopedQuerySet

MONEY = {"max_digits": 14, "decimal_places": 2}


class CreditAccount(models.Model):
    """One per tenant: the cached balance, locked (SELECT … FOR UPDATE) by every spend so that
    concurrent spends are serialised and the balance can never go below zero."""

    tenant = models.OneToOneField("scell.Tenant", on_delete=models.CASCADE, related_name="credit_account")
    balance = models.DecimalField(**MONEY, default=Decimal("0.00"))
    low_balance_threshold = models.DecimalField(**MONEY, default=Decimal("5.00"))
    # Set when credits.low_balance was sent, cleared when the balance goes back above the threshold:
    # one alert per crossing, not one per spend.
    low_balance_alerted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(balance__gte=0), name="credit_balance_non_negative")
        ]

    def __str__(self) -> str:
        return f"{self.tenant.identifier}: {self.balance} EUR"


class CreditLot(models.Model):
    """Credits bought together (a pack) or granted by support, valid 12 months from purchase."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("scell.Tenant", on_delete=models.PROTECT, related_name="credit_lots")
    amount = models.DecimalField(**MONEY)
    remaining = models.DecimalField(**MONEY)
    source = models.CharField(max_length=20, default="pack")
    reference = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    expired_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(remaining__gte=0) & models.Q(remaining__lte=models.F("amount")),
                name="credit_lot_remaining_in_range",
            )
        ]
        indexes = [models.Index(fields=["tenant", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.amount} EUR, {self.remaining} left, until {self.expires_at:%Y-%m-%d}"


class LedgerEntry(models.Model):
    """An immutable movement of credits; the balance is the sum of these (positive in, negative out)."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("purchase")
        SPEND = "spend", _("spend")
        REFUND = "refund", _("refund")
        EXPIRY = "expiry", _("expiry")
        ADJUSTMENT = "adjustment", _("adjustment")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("scell.Tenant", on_delete=models.PROTECT, related_name="ledger_entries")
    sub_tenant = models.ForeignKey(
        "scell.SubTenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind)
    amount = models.DecimalField(**MONEY)
    lot = models.ForeignKey(
        CreditLot, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    operation = models.CharField(max_length=40, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(**MONEY, null=True, blank=True)
    reference = models.CharField(max_length=100, blank=True)
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "scell.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["tenant", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} EUR"


class Purchase(models.Model):
    """A credit pack being bought through a payment provider; credited once, whatever happens."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        PAID = "paid", _("paid")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("scell.Tenant", on_delete=models.PROTECT, related_name="credit_purchases")
    amount = models.DecimalField(**MONEY, help_text="credits bought (EUR, excluding VAT)")
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    amount_with_vat = models.DecimalField(**MONEY)
    provider = models.CharField(max_length=20)
    provider_ref = models.CharField(max_length=255, blank=True)
    checkout_url = models.URLField(max_length=1000, blank=True)
    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING)
    failure_reason = models.CharField(max_length=500, blank=True)
    lot = models.OneToOneField(
        CreditLot, null=True, blank=True, on_delete=models.PROTECT, related_name="purchase"
    )
    invoice = models.ForeignKey(
        "invoicing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        "scell.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=~models.Q(provider_ref=""),
                name="purchase_provider_ref_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.amount} EUR pack ({self.status})"


class CreditAdjustment(LedgerEntry):
    """Support's view for granting or removing credits by hand (admin), with a mandatory reason."""

    class Meta:
        proxy = True
        verbose_name = "credit adjustment"
