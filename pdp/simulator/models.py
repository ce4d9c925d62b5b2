"""State of the built-in PDP simulator. Everything lives in the database (never in process memory): the
simulator is served by several processes and threads (gunicorn workers, the tests' live server) and the
lifecycle it plays and the faults it injects must be seen by all of them."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


def new_flow_id() -> str:
    return str(uuid.uuid4())


class SimFlow(models.Model):
    """One flow of the Flow Service as the PDP keeps it: a file submitted by an organisation (direction
    Out), or one the PDP delivers to it (direction In: lifecycle statuses, supplier invoices).

    A flow the simulator plans ahead (the next lifecycle statuses of an accepted invoice) is stored at once
    with ``due_at`` set: it is invisible to the API until ``engine.tick`` "materialises" it (clears
    ``due_at``, stamps ``submitted_at``/``updated_at``), which makes it appear as if the PDP had just
    received it.
    """

    # The sequence orders flows that share an updatedAt and anchors the search cursors.
    seq = models.BigAutoField(primary_key=True)
    flow_id = models.CharField(max_length=64, unique=True, default=new_flow_id, editable=False)
    organization_id = models.CharField(max_length=64)
    tracking_id = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=255)
    flow_syntax = models.CharField(max_length=16)
    flow_profile = models.CharField(max_length=32)
    processing_rule = models.CharField(max_length=32)
    processing_rule_source = models.CharField(max_length=16)
    flow_type = models.CharField(max_length=48)
    flow_direction = models.CharField(max_length=8)
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField()
    content_type = models.CharField(max_length=64, default="application/xml")
    ack_status = models.CharField(max_length=16)
    ack_details = models.JSONField(default=list, blank=True)
    # The invoice flow a lifecycle status (CDAR) is about.
    related_flow = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="status_flows"
    )
    status_code = models.CharField(max_length=8, blank=True, default="")  # CDAR flows: "200", "501"…
    submitted_at = models.DateTimeField(null=True, blank=True)  # null while scheduled
    updated_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)  # scheduled and not yet visible when set

    class Meta:
        indexes = [
            # Search: one organisation's visible flows in (updatedAt, seq) order.
            models.Index(fields=["organization_id", "updated_at", "seq"], name="pdp_sim_flow_search"),
            # Duplicate checks at submission.
            models.Index(fields=["organization_id", "tracking_id"], name="pdp_sim_flow_tracking"),
            models.Index(fields=["organization_id", "sha256"], name="pdp_sim_flow_sha256"),
            # tick(): only the few scheduled rows are in this partial index.
            models.Index(fields=["due_at"], condition=Q(due_at__isnull=False), name="pdp_sim_flow_due"),
        ]

    def __str__(self) -> str:
        return f"{self.flow_id} {self.flow_direction} {self.flow_type} {self.status_code}".strip()

    @property
    def visible(self) -> bool:
        return self.due_at is None


class SimWebhook(models.Model):
    """A webhook subscription of an organisation: flows of that organisation matching the filters are
    POSTed to ``callback_url``, signed with ``signing_key`` (see ``pdp.afnor.sign_callback``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization_id = models.CharField(max_length=64, db_index=True)
    callback_url = models.URLField(max_length=2000)
    signing_key = models.CharField(max_length=128)  # base64 of 32 random bytes, as given at creation
    flow_types = models.JSONField(default=list, blank=True)  # [] = any
    flow_direction = models.CharField(max_length=8, blank=True, default="")  # "" = any
    ack_status = models.CharField(max_length=16, blank=True, default="")  # "" = any
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.organization_id} → {self.callback_url}"


class SimFault(models.Model):
    """A fault injected for tests: the next ``remaining`` calls of ``operation`` answer ``status`` with an
    Error body. With ``after_store`` on createFlow the flow is stored and acknowledged first (a lost
    answer). Scoped to one organisation when ``organization_id`` is set, else to every caller."""

    operation = models.CharField(max_length=32)
    status = models.PositiveSmallIntegerField()
    remaining = models.PositiveIntegerField()
    after_store = models.BooleanField(default=False)
    organization_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["operation", "remaining"], name="pdp_sim_fault_op")]

    def __str__(self) -> str:
        return f"{self.operation} → {self.status} ×{self.remaining}"
