"""Support's view of PDP exchanges: read-only, with one action — retransmit failed flows (the same
service as the API's ``/transmit``), with a reason, logged with who asked. The invoice lifecycle is a
fiscal record: read-only for everyone."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from pdp.models import Flow, InvoiceLifecycle, Mailbox
from scell.admin_base import ReadOnlyAdmin, action_with_reason, support_action_record


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

    @action_with_reason(
        description=_("Retransmit the selected failed flows"),
        permissions=["retransmit"],
        note=_("Only failed outgoing flows are queued again; the others are left as they are."),
    )
    def retransmit(self, request: HttpRequest, queryset: QuerySet[Flow], reason: str) -> None:
        from pdp.services import flow_requeue

        count = 0
        for flow in queryset.filter(state=Flow.State.FAILED, direction=Flow.Direction.OUT).select_related(
            "tenant"
        ):
            with transaction.atomic():
                if not flow_requeue(flow_id=str(flow.pk)):
                    continue  # it moved on meanwhile
                support_action_record(
                    actor=request.user,
                    action="flow.retransmit",
                    obj=flow,
                    reason=reason,
                    details={"kind": flow.kind, "invoice": str(flow.invoice_id) if flow.invoice_id else None},
                )
            count += 1
        messages.info(request, ngettext("%d flow queued again.", "%d flows queued again.", count) % count)

    def has_retransmit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("pdp.retransmit_flow")


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
