"""Invoices, their lines, numbering sequences, lifecycle events and rendered documents.

Once an invoice is issued its rows are frozen by database triggers (see migration 0002), not only by
this code: an UPDATE or DELETE of an issued invoice or of its lines is refused by PostgreSQL (and by
SQLite in the embedded default).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scell.tenancy import ScopedQuerySet, TenantOwned

MONEY = {"max_digits": 16, "decimal_places": 2}
QUANTITY = {"max_digits": 19, "decimal_places": 6}


class Invoice(TenantOwned):
    """An invoice or credit note: a draft being prepared, an issued (frozen) document, or a received one."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        ISSUED = "issued", _("issued")
        RECEIVED = "received", _("received")

    class Type(models.TextChoices):
        INVOICE = "invoice", _("invoice")  # 380
        CREDIT_NOTE = "credit_note", _("credit note")  # 381
        CORRECTIVE = "corrective", _("corrective invoice")  # 384

    TYPE_CODES = {Type.INVOICE: "380", Type.CREDIT_NOTE: "381", Type.CORRECTIVE: "384"}

    class Format(models.TextChoices):
        FACTURX = "facturx", "Factur-X"
        CII = "cii", "CII D16B"
        UBL = "ubl", "UBL 2.1"

    class Profile(models.TextChoices):
        MINIMUM = "minimum", "MINIMUM"
        BASIC_WL = "basicwl", "BASIC WL"
        BASIC = "basic", "BASIC"
        EN16931 = "en16931", "EN 16931"
        EXTENDED = "extended", "EXTENDED"

    class OperationCategory(models.TextChoices):
        GOODS = "goods", _("goods")
        SERVICES = "services", _("services")
        MIXED = "mixed", _("goods and services")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=20, choices=Status, default=Status.DRAFT)
    type = models.CharField(max_length=20, choices=Type, default=Type.INVOICE)
    number = models.CharField(max_length=40)
    format = models.CharField(max_length=20, choices=Format, default=Format.FACTURX)
    profile = models.CharField(max_length=20, choices=Profile, default=Profile.EN16931)
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    tax_currency = models.CharField(max_length=3, blank=True)
    tax_exchange_rate = models.DecimalField(max_digits=19, decimal_places=6, null=True, blank=True)
    operation_category = models.CharField(max_length=20, choices=OperationCategory, blank=True)
    vat_on_debits = models.BooleanField(default=False)
    buyer_reference = models.CharField(max_length=100, blank=True)
    purchase_order_ref = models.CharField(max_length=100, blank=True)
    delivery_note_ref = models.CharField(max_length=100, blank=True)
    contract_ref = models.CharField(max_length=100, blank=True)
    project_ref = models.CharField(max_length=100, blank=True)
    # The seller block is copied from the legal profile when the invoice is issued, and frozen.
    seller = models.JSONField(default=dict, blank=True)
    buyer = models.JSONField(default=dict)
    buyer_name = models.CharField(max_length=200, blank=True)
    buyer_siren = models.CharField(max_length=9, blank=True, db_index=True)
    delivery = models.JSONField(null=True, blank=True)
    payment = models.JSONField(default=dict, blank=True)
    notes = models.JSONField(default=list, blank=True)
    allowances = models.JSONField(default=list, blank=True)
    charges = models.JSONField(default=list, blank=True)
    vat_exemptions = models.JSONField(default=dict, blank=True)
    preceding_invoice = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrections"
    )
    preceding_number = models.CharField(max_length=40, blank=True)
    preceding_issue_date = models.DateField(null=True, blank=True)
    prepaid_amount = models.DecimalField(**MONEY, default=Decimal("0.00"))
    # Computed (EN 16931 BG-22), stored for lists, filters and reports.
    total_without_vat = models.DecimalField(**MONEY, default=Decimal("0.00"))
    total_vat = models.DecimalField(**MONEY, default=Decimal("0.00"))
    total_with_vat = models.DecimalField(**MONEY, default=Decimal("0.00"))
    amount_due = models.DecimalField(**MONEY, default=Decimal("0.00"))
    totals = models.JSONField(default=dict, blank=True)
    vat_breakdown = models.JSONField(default=list, blank=True)
    # For issued invoices: the CII the number was validated with and its fingerprint.
    cii_xml = models.BinaryField(null=True, blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)
    # Received invoices: which syntax they came in and the validation report at import.
    source_syntax = models.CharField(max_length=20, blank=True)
    source_file = models.BinaryField(null=True, blank=True)
    import_report = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    issued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Our own numbers are unique per issuer and mode; received invoices carry their suppliers'
            # numbers, which may coincide.
            models.UniqueConstraint(
                fields=["tenant", "livemode", "sub_tenant", "number"],
                condition=~models.Q(status="received"),
                name="invoice_number_unique_per_issuer",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "livemode", "status", "-created_at"]),
            models.Index(fields=["tenant", "livemode", "issue_date"]),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def type_code(self) -> str:
        return self.TYPE_CODES[self.Type(self.type)]

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT


class InvoiceLine(models.Model):
    """An invoice line (EN 16931 BG-25); frozen with its invoice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    description = models.CharField(max_length=500)
    detail = models.TextField(blank=True)
    quantity = models.DecimalField(**QUANTITY)
    unit_code = models.CharField(max_length=10, default="C62")
    unit_price = models.DecimalField(max_digits=19, decimal_places=6)
    price_base_quantity = models.DecimalField(**QUANTITY, null=True, blank=True)
    vat_category = models.CharField(max_length=3)
    vat_rate = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    allowances = models.JSONField(default=list, blank=True)
    charges = models.JSONField(default=list, blank=True)
    seller_item_id = models.CharField(max_length=100, blank=True)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    net_amount = models.DecimalField(**MONEY, default=Decimal("0.00"))

    # What a draft's author writes (the API input); position and net_amount are Scell's.
    EDITABLE_FIELDS = (
        "description",
        "detail",
        "quantity",
        "unit_code",
        "unit_price",
        "price_base_quantity",
        "vat_category",
        "vat_rate",
        "allowances",
        "charges",
        "seller_item_id",
        "period_start",
        "period_end",
    )

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.description}"


class NumberSequence(models.Model):
    """The counter of one numbering sequence, locked (SELECT … FOR UPDATE) by whoever takes a number.

    Issued numbers: one sequence per issuer (tenant or sub-tenant) and mode; the number is taken in the
    transaction that issues the invoice, so a rollback gives it back and the sequence never skips
    (French CGI art. 242 nonies A: a unique, chronological, unbroken sequence)."""

    class Kind(models.TextChoices):
        DRAFT = "draft", _("draft")
        ISSUED = "issued", _("issued")

    tenant = models.ForeignKey("scell.Tenant", on_delete=models.PROTECT, related_name="+")
    sub_tenant = models.ForeignKey(
        "scell.SubTenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    livemode = models.BooleanField()
    kind = models.CharField(max_length=10, choices=Kind)
    last_value = models.PositiveBigIntegerField(default=0)
    last_issue_date = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "sub_tenant", "livemode", "kind"],
                name="number_sequence_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} sequence of {self.tenant_id}/{self.sub_tenant_id} ({self.last_value})"


class InvoiceEvent(models.Model):
    """A lifecycle event of an invoice (created, issued, transmitted, PDP statuses, paid). Append-only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events")
    tenant = models.ForeignKey("scell.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField()
    type = models.CharField(max_length=40)
    status_code = models.CharField(max_length=10, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.created_at:%Y-%m-%d %H:%M}"


def rendered_document_path(instance: RenderedDocument, filename: str) -> str:
    invoice = instance.invoice
    return f"invoices/{invoice.tenant_id}/{invoice.id}/{filename}"


class RenderedDocument(models.Model):
    """A document rendered from an issued invoice (Factur-X PDF, CII, UBL...), written once."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="documents")
    format = models.CharField(max_length=20)
    file = models.FileField(upload_to=rendered_document_path, max_length=300)
    content_type = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["invoice", "format"], name="rendered_document_unique")]

    def __str__(self) -> str:
        return f"{self.invoice} ({self.format})"
