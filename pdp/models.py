"""What Scell exchanges with the PDP and what it learns from it.

- ``Flow``: one file sent to or received from a PDP through the XP Z12-013 Flow Service (an issued
  invoice, a lifecycle status message we send, a status or a supplier invoice we receive), with its
  submission state. Outgoing flows are the outbox: a row is written in the transaction that decides to
  send, an actor submits it after commit, so nothing is sent for a rolled-back decision and nothing
  decided is lost.
- ``InvoiceLifecycle``: the current lifecycle status of an issued or received invoice and whether it is
  paid. The invoice row itself is frozen by triggers once issued; its lifecycle is not fiscal data and
  lives beside it. Every change is also an ``InvoiceEvent`` (append-only).
- ``Mailbox``: one organisation (SIREN) of a tenant or sub-tenant at one PDP target: where polling
  resumes and the webhook the PDP calls back.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scell.tenancy import ScopedQuerySet, TenantOwned


class Target(models.TextChoices):
    """Which PDP: the built-in simulator (sandbox) or the partner PDP (live)."""

    SIMULATOR = "simulator", _("PDP simulator (sandbox)")
    PDP = "pdp", _("partner PDP")


class Flow(TenantOwned):
    """A flow exchanged with a PDP (XP Z12-013 ``Flow``), outgoing or incoming."""

    class Direction(models.TextChoices):
        OUT = "out", _("sent")
        IN = "in", _("received")

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("invoice")
        STATUS = "status", _("lifecycle status")

    class State(models.TextChoices):
        # Outgoing: queued → submitting → submitted (PDP acknowledgement pending) → accepted | rejected;
        # retrying after a network error, a 5xx or a 429; failed when retries are exhausted or the PDP
        # answered a 4xx (then a person must act: fix the configuration and retransmit); held while no
        # live PDP is configured.
        QUEUED = "queued", _("queued")
        HELD = "held", _("held (no PDP configured)")
        SUBMITTING = "submitting", _("submitting")
        RETRYING = "retrying", _("retrying")
        SUBMITTED = "submitted", _("submitted, awaiting acknowledgement")
        ACCEPTED = "accepted", _("accepted")
        REJECTED = "rejected", _("rejected by the PDP")
        FAILED = "failed", _("failed")
        # Incoming: received → processed (applied to an invoice) | ignored (nothing of ours).
        RECEIVED = "received", _("received")
        PROCESSED = "processed", _("processed")
        IGNORED = "ignored", _("ignored")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    target = models.CharField(max_length=20, choices=Target)
    organization_id = models.CharField(max_length=20)
    direction = models.CharField(max_length=3, choices=Direction)
    kind = models.CharField(max_length=10, choices=Kind)
    invoice = models.ForeignKey(
        "invoicing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="flows"
    )
    # XP Z12-013 metadata.
    flow_id = models.CharField(max_length=64, blank=True)  # the PDP's id
    tracking_id = models.CharField(max_length=64, blank=True)  # ours (outgoing), the idempotency key
    flow_type = models.CharField(max_length=40, blank=True)
    syntax = models.CharField(max_length=20)
    profile = models.CharField(max_length=20, blank=True)
    processing_rule = models.CharField(max_length=20, blank=True)
    name = models.CharField(max_length=255, blank=True)
    # Filled at the first submission attempt for an invoice (its Factur-X is rendered after commit).
    sha256 = models.CharField(max_length=64, blank=True)
    content = models.BinaryField(null=True, blank=True)
    status_code = models.CharField(max_length=3, blank=True)  # for status flows: the CDAR code
    state = models.CharField(max_length=20, choices=State)
    ack_status = models.CharField(max_length=10, blank=True)  # Pending | Ok | Error, as the PDP says
    ack_details = models.JSONField(default=list, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        # Support actions in Django admin (scell.admin_base.ACTION_PERMISSIONS).
        permissions = [
            ("retransmit_flow", "Can retransmit a failed PDP flow"),
        ]
        constraints = [
            # Idempotency on our side: one outgoing flow per tracking id, and one row per PDP flow.
            models.UniqueConstraint(
                fields=["tracking_id"], condition=~models.Q(tracking_id=""), name="pdp_flow_tracking_unique"
            ),
            models.UniqueConstraint(
                fields=["target", "flow_id"], condition=~models.Q(flow_id=""), name="pdp_flow_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"]),
            models.Index(fields=["invoice", "direction", "kind"]),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.kind} {self.flow_id or self.tracking_id} ({self.state})"


class InvoiceLifecycle(TenantOwned):
    """The current lifecycle status of an issued or received invoice (latest CDAR status) and its payment."""

    invoice = models.OneToOneField(
        "invoicing.Invoice", primary_key=True, on_delete=models.CASCADE, related_name="lifecycle"
    )
    status_code = models.CharField(max_length=3, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)
    reason_code = models.CharField(max_length=30, blank=True)
    reason = models.TextField(blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    amount_paid = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0.00"))
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "livemode", "status_code"])]

    def __str__(self) -> str:
        return f"{self.invoice_id}: {self.status_code or '-'}"


class Mailbox(TenantOwned):
    """An organisation (SIREN) of a tenant or sub-tenant at one PDP target, polled for incoming flows."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    target = models.CharField(max_length=20, choices=Target)
    organization_id = models.CharField(max_length=20)
    # Incoming flows updated after this instant are searched next (minus an overlap: the standard's
    # updatedAfter is strict and clocks differ; flows already seen are recognised by their flow id).
    last_updated_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    webhook_id = models.CharField(max_length=64, blank=True)
    webhook_key = models.CharField(max_length=200, blank=True)  # base64 signing key from the PDP
    webhook_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "sub_tenant", "livemode", "target"],
                name="pdp_mailbox_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} @ {self.target}"
