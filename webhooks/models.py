"""The transactional outbox: events are written in the transaction of the change they describe."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scell.tenancy import ScopedQuerySet, TenantOwned


class Event(TenantOwned):
    """Something that happened (``invoice.issued``...), as integrators see it in webhooks and
    ``GET /api/v1/events``. Written in the same transaction as the change: a rollback loses both."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=60, db_index=True)
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    # Set once deliveries were created for the matching endpoints; a sweeper dispatches any event left
    # undispatched (a worker that died after the commit), so no event is lost.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "livemode", "-created_at"]),
            models.Index(fields=["dispatched_at", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"

    @property
    def public_id(self) -> str:
        return f"evt_{self.id.hex}"


class WebhookEndpoint(TenantOwned):
    """A URL of the tenant's that receives signed events (of the listed types, or all)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(default=True)
    # Empty list: every event type.
    event_types = models.JSONField(default=list, blank=True)
    # The signing secret must be readable to sign (HMAC), so it is stored as is; it authenticates Scell
    # to the receiver and grants nothing in Scell.
    secret = models.CharField(max_length=100)
    # During a rotation the old secret signs too (a second v1) until it expires, 24 h later.
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    meta = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.url

    def accepts(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    """One event to one endpoint: tried until it succeeds or its retries run out; replays are new
    deliveries of the same event (same event id)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        RETRYING = "retrying", _("retrying")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed (retries exhausted)")
        CANCELLED = "cancelled", _("cancelled (endpoint disabled)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("scell.Tenant", on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField()
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        # Support actions in Django admin (scell.admin_base.ACTION_PERMISSIONS).
        permissions = [
            ("replay_webhookdelivery", "Can replay a webhook delivery"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["tenant", "livemode", "-created_at"]),
        ]
        constraints = [
            # The dispatcher creates one delivery per (event, endpoint); replays are the only others.
            models.UniqueConstraint(
                fields=["event", "endpoint"], condition=models.Q(replay_of__isnull=True), name="delivery_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event.type} → {self.endpoint.url} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP POST of a delivery: what the receiver answered, how fast."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["attempted_at"]

    def __str__(self) -> str:
        return f"{self.attempted_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"
