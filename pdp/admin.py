"""Support's view of PDP exchanges: read-only, with one action — retransmit failed flows (the same
service as the API's ``/transmit``), logged with who asked."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from pdp.models import Flow, InvoiceLifecycle, Mailbox
from scell.admin_base import ReadOnlyAdmin


@admin.register(Flow)
class FlowAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "livemode",
        "direction",
        "kind",
        "flow_type",
        "status_code",
        "state",
        "attempts",
        "flow_id",
    ]
    list_filter = ["state", "direction", "kind", "target", "livemode"]
    search_fields = ["flow_id", "tracking_id", "tenant__identifier", "invoice__number"]
    list_select_related = ["tenant", "invoice"]
    exclude = ["content"]
    actions = ["retransmit"]

    @admin.action(description="Retransmit the selected failed flows")
    def retransmit(self, request, queryset):
        from pdp.services import flow_requeue

        count = 0
        for flow in queryset.filter(state=Flow.State.FAILED, direction=Flow.Direction.OUT):
            if flow_requeue(flow_id=str(flow.pk)):
                LogEntry.objects.log_action(
                    user_id=request.user.pk,
                    content_type_id=ContentType.objects.get_for_model(Flow).pk,
                    object_id=str(flow.pk),
                    object_repr=str(flow)[:200],
                    action_flag=CHANGE,
                    change_message="Retransmitted a failed flow",
                )
                count += 1
        messages.info(request, f"{count} flow(s) queued again.")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(InvoiceLifecycle)
class InvoiceLifecycleAdmin(ReadOnlyAdmin):
    list_display = ["invoice", "tenant", "livemode", "status_code", "status_at", "paid_at", "amount_paid"]
    list_filter = ["status_code", "livemode"]
    search_fields = ["invoice__number", "tenant__identifier"]
    list_select_related = ["invoice", "tenant"]


@admin.register(Mailbox)
class MailboxAdmin(ReadOnlyAdmin):
    list_display = ["organization_id", "tenant", "livemode", "target", "last_polled_at", "last_error"]
    list_filter = ["target", "livemode"]
    search_fields = ["organization_id", "tenant__identifier"]
    exclude = ["webhook_key"]
