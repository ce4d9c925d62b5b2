"""Signature requests, their signers, SMS code challenges and the evidence log.

A request holds one PDF and an ordered list of signers. Each signer opens a unique link (only its SHA-256
is stored), accepts the consent text, receives a 6-digit code by SMS and signs with it. Every act is a
row of ``SignatureEvent``: append-only (database triggers refuse UPDATE and DELETE) and chained into the
tenant's hash chain by PostgreSQL (migration 0002), like issued invoices.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scell.tenancy import TenantOwned

MONEY = {"max_digits": 16, "decimal_places": 2}


class SignatureRequest(TenantOwned):
    """A PDF to be signed by one or more signers, in order (sequential) or all at once (parallel)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for signers")
        # Every signer signed; the stamped and sealed document and the evidence are being produced.
        FINALIZING = "finalizing", _("finalizing")
        COMPLETED = "completed", _("completed")
        DECLINED = "declined", _("declined")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")

    ENDED = (Status.COMPLETED, Status.DECLINED, Status.EXPIRED, Status.CANCELLED)
    OPEN = (Status.PENDING,)

    class Order(models.TextChoices):
        SEQUENTIAL = "sequential", _("sequential")
        PARALLEL = "parallel", _("parallel")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING)
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    order = models.CharField(max_length=20, choices=Order, default=Order.SEQUENTIAL)
    external_ref = models.CharField(max_length=100, blank=True)
    # Who hears of each step (the sender); defaults to the tenant's e-mail.
    notify_email = models.EmailField(blank=True)
    locale = models.CharField(max_length=5, default="fr")

    original_file = models.FileField(upload_to="signatures/", max_length=300)
    original_filename = models.CharField(max_length=200, default="document.pdf")
    original_sha256 = models.CharField(max_length=64, db_index=True)
    original_size = models.BigIntegerField()
    page_count = models.PositiveIntegerField()
    page_sizes = models.JSONField(default=list)

    final_file = models.FileField(upload_to="signatures/", max_length=300, blank=True)
    final_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    evidence_file = models.FileField(upload_to="signatures/", max_length=300, blank=True)
    evidence_sha256 = models.CharField(max_length=64, blank=True, db_index=True)

    expires_at = models.DateTimeField()
    reminder_interval_days = models.PositiveSmallIntegerField(default=3)  # 0: no reminders
    max_reminders = models.PositiveSmallIntegerField(default=3)
    charged_amount = models.DecimalField(**MONEY, default=0)

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        "scell.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "livemode", "-created_at"]),
            models.Index(fields=["status", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.id})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN


class Signer(models.Model):
    """One person who must sign a request, with the outcome of their signing act."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("waiting for the previous signers")  # sequential, not yet their turn
        PENDING = "pending", _("invited")
        SIGNED = "signed", _("signed")
        DECLINED = "declined", _("declined")
        LOCKED = "locked", _("locked after too many wrong codes")
        # The request ended (another signer declined, it expired or was cancelled) before this one acted.
        ENDED = "ended", _("request ended")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(SignatureRequest, on_delete=models.PROTECT, related_name="signers")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=200)
    email = models.EmailField()
    # E.164; blanked once the evidence period is over (GDPR, archive.gdpr.signer_phones_erase).
    phone = models.CharField(max_length=20, blank=True)
    placement_page = models.PositiveIntegerField(null=True, blank=True)
    placement_x = models.FloatField(null=True, blank=True)
    placement_y = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status, default=Status.WAITING)

    # The link token is shown once (creation answer, e-mail); only its SHA-256 is kept.
    token_hash = models.CharField(max_length=64, unique=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    reminder_count = models.PositiveSmallIntegerField(default=0)
    failed_attempts = models.PositiveSmallIntegerField(default=0)

    consent_text = models.TextField(blank=True)
    consent_at = models.DateTimeField(null=True, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True)
    document_sha256_seen = models.CharField(max_length=64, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.TextField(blank=True)
    phone_erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Support actions in Django admin (scell.admin_base.ACTION_PERMISSIONS).
        permissions = [
            ("resend_signer_notification", "Can resend a signer's invitation"),
        ]
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["request", "position"], name="signer_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    @property
    def has_placement(self) -> bool:
        return self.placement_page is not None


class OtpChallenge(models.Model):
    """One 6-digit code sent by SMS to a signer. Only a keyed hash of the code is stored; the code is
    single use, valid ``SIGNATURE_OTP_TTL`` (10 minutes), and a newer code invalidates it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    signer = models.ForeignKey(Signer, on_delete=models.PROTECT, related_name="challenges")
    phone = models.CharField(max_length=20, blank=True)  # where it went, for the hourly cap per phone
    code_hash = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    # Set once the expiry of this unused code has been recorded (evidence + signer.otp_expired).
    expiry_recorded_at = models.DateTimeField(null=True, blank=True)
    gateway_id = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["phone", "created_at"]),
            models.Index(fields=["ip", "created_at"]),
            models.Index(
                fields=["expires_at"],
                name="otp_unrecorded_expiry",
                condition=models.Q(
                    used_at__isnull=True, invalidated_at__isnull=True, expiry_recorded_at__isnull=True
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"code for {self.signer_id} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class SignatureEvent(models.Model):
    """One entry of a request's evidence log: who did what, when, from where. Append-only and chained
    (the signing act itself is the ``signer.signed`` entry, with everything the evidence needs)."""

    id = models.BigAutoField(primary_key=True)
    request = models.ForeignKey(SignatureRequest, on_delete=models.PROTECT, related_name="events")
    signer = models.ForeignKey(Signer, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=40)
    actor = models.CharField(max_length=200)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor} at {self.at:%Y-%m-%d %H:%M:%S}"
