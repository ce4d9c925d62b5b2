"""Support's read-only view of the PDP simulator (sandbox flows, webhooks, injected faults)."""

from django.contrib import admin

from pdp.simulator.models import SimFault, SimFlow, SimWebhook
from scell.admin_base import ReadOnlyAdmin


@admin.register(SimFlow)
class SimFlowAdmin(ReadOnlyAdmin):
    list_display = (
        "flow_id",
        "organization_id",
        "flow_direction",
        "flow_type",
        "flow_syntax",
        "status_code",
        "ack_status",
        "updated_at",
        "due_at",
    )
    list_filter = ("flow_direction", "flow_type", "ack_status", "flow_syntax")
    search_fields = ("flow_id", "organization_id", "tracking_id", "name")
    # The file itself is downloaded through the API (docType=Original), not shown here.
    exclude = ("content",)
    raw_id_fields = ("related_flow",)


@admin.register(SimWebhook)
class SimWebhookAdmin(ReadOnlyAdmin):
    list_display = ("id", "organization_id", "callback_url", "flow_direction", "ack_status", "created_at")
    search_fields = ("organization_id", "callback_url")
    exclude = ("signing_key",)


@admin.register(SimFault)
class SimFaultAdmin(ReadOnlyAdmin):
    list_display = ("operation", "status", "remaining", "after_store", "organization_id", "created_at")
