"""Integrity of the fiscal record: the hash chain, its checks, daily closures timestamped with
OpenTimestamps, the WORM archive of documents, and backups.

The chain is written by PostgreSQL triggers (migration 0002), not by this code: a row inserted by raw
SQL is chained like any other. On SQLite the same entries are written from Python (``archive.chain``).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

GENESIS_HASH = bytes(32)


class ChainHead(models.Model):
    """The last link of one chain (tenant or sub-tenant, per mode). Locked by every append, so appends
    to one chain are serialised while different chains proceed in parallel."""

    chain_key = models.CharField(primary_key=True, max_length=120)
    tenant = models.ForeignKey("scell.Tenant", on_delete=models.PROTECT, related_name="+")
    sub_tenant = models.ForeignKey(
        "scell.SubTenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    livemode = models.BooleanField()
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.BinaryField(default=GENESIS_HASH)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.chain_key} @ {self.last_seq}"


class ChainEntry(models.Model):
    """One link: ``hash = sha256(prev_hash || payload)``, payload being the canonical bytes of the
    fiscal row as it was inserted (or issued). Append-only: the database refuses UPDATE/DELETE."""

    id = models.BigAutoField(primary_key=True)
    chain_key = models.CharField(max_length=120)
    tenant = models.ForeignKey("scell.Tenant", on_delete=models.PROTECT, related_name="+")
    sub_tenant = models.ForeignKey(
        "scell.SubTenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    livemode = models.BooleanField()
    seq = models.BigIntegerField()
    source_table = models.CharField(max_length=63)
    source_id = models.CharField(max_length=64)
    payload = models.BinaryField()
    prev_hash = models.BinaryField()
    hash = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain_key", "seq"], name="chain_entry_seq_unique")]
        indexes = [
            models.Index(fields=["source_table", "source_id"]),
            models.Index(fields=["chain_key", "created_at"]),
        ]
        verbose_name_plural = "chain entries"

    def __str__(self) -> str:
        return f"{self.chain_key}#{self.seq} {bytes(self.hash).hex()[:12]}"


class ChainCheck(models.Model):
    """One run of the health check over one chain; a broken one names the first bad entry."""

    class Result(models.TextChoices):
        OK = "ok", _("intact")
        BROKEN = "broken", _("broken")

    chain_key = models.CharField(max_length=120, db_index=True)
    tenant = models.ForeignKey("scell.Tenant", on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    entries_checked = models.BigIntegerField(default=0)
    result = models.CharField(max_length=10, choices=Result)
    first_broken_seq = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    acknowledged_by = models.ForeignKey(
        "scell.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        # Support actions in Django admin (scell.admin_base.ACTION_PERMISSIONS).
        permissions = [
            ("rerun_chaincheck", "Can re-run a chain check"),
            ("acknowledge_chaincheck", "Can acknowledge a chain check"),
        ]
        indexes = [models.Index(fields=["tenant", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.chain_key}: {self.result} ({self.entries_checked} entries)"


class Closure(models.Model):
    """A day of one chain, sealed: the Merkle root of the day's entry hashes, timestamped with
    OpenTimestamps (pending proof, then upgraded to a Bitcoin attestation) and optionally RFC 3161."""

    class OtsStatus(models.TextChoices):
        PENDING = "pending", _("pending (calendar)")
        COMPLETE = "complete", _("complete (Bitcoin)")
        FAILED = "failed", _("failed")

    chain_key = models.CharField(max_length=120)
    tenant = models.ForeignKey("scell.Tenant", on_delete=models.PROTECT, related_name="+")
    sub_tenant = models.ForeignKey(
        "scell.SubTenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    livemode = models.BooleanField()
    day = models.DateField()
    root = models.BinaryField()
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    leaf_count = models.PositiveIntegerField()
    ots_proof = models.BinaryField(null=True, blank=True)
    ots_status = models.CharField(max_length=10, choices=OtsStatus, default=OtsStatus.PENDING)
    bitcoin_block = models.PositiveIntegerField(null=True, blank=True)
    tsa_token = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    upgraded_at = models.DateTimeField(null=True, blank=True)
    meta = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain_key", "day"], name="closure_chain_day_unique")]
        indexes = [models.Index(fields=["tenant", "livemode", "-day"])]

    def __str__(self) -> str:
        return f"{self.chain_key} {self.day} ({self.ots_status})"


class ArchivedDocument(models.Model):
    """A document written once to the WORM archive: an issued invoice's (retained until issue date + 11
    years) or an ended signature request's sealed document and evidence (until it ended + 11 years)."""

    tenant = models.ForeignKey("scell.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField()
    invoice = models.ForeignKey(
        "invoicing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="archived"
    )
    signature_request = models.ForeignKey(
        "signatures.SignatureRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="archived",
    )
    kind = models.CharField(max_length=30)
    name = models.CharField(max_length=500, unique=True)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    retain_until = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)
    meta = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name


class Backup(models.Model):
    """A database dump written to the backups storage, kept 30 days."""

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")
        PRUNED = "pruned", _("pruned")

    name = models.CharField(max_length=300, unique=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.RUNNING)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)
    meta = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"
