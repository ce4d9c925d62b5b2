"""Support's view of webhooks: endpoints (never their secrets), deliveries with every attempt, and the
"replay delivery" action (the same service as the API and the dashboard; with a reason, logged). Nothing
is edited here: endpoints belong to the tenant, deliveries to the engine."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from scell.admin_base import ReadOnlyAdmin, ReadOnlyInline, action_with_reason, support_action_record
from webhooks.endpoints import delivery_replay
from webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ["url", "tenant", "livemode", "enabled", "failing_since", "disabled_at", "created_at"]
    list_filter = ["livemode", "enabled"]
    search_fields = ["url", "description", "tenant__identifier", "tenant__legal_name"]
    # The signing secrets authenticate Scell to the tenant's server: support never sees them.
    fields = [
        "id",
        "tenant",
        "sub_tenant",
        "livemode",
        "url",
        "description",
        "event_types",
        "enabled",
        "failing_since",
        "disabled_at",
        "disabled_reason",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
        "meta",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant").defer("secret", "previous_secret")


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = ["attempted_at", "status_code", "succeeded", "duration_ms", "error", "response_body"]
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "livemode",
        "event_type",
        "endpoint_url",
        "status",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
    ]
    list_filter = ["status", "livemode"]
    search_fields = ["tenant__identifier", "endpoint__url", "event__type"]
    fields = [
        "id",
        "tenant",
        "livemode",
        "endpoint_url",
        "event",
        "event_type",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "replay_of",
        "created_at",
        "completed_at",
    ]
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["replay_deliveries"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant", "endpoint", "event")

    @admin.display(description="event type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    @admin.display(description="endpoint")
    def endpoint_url(self, obj: WebhookDelivery) -> str:
        return obj.endpoint.url

    @action_with_reason(
        description=_("Replay delivery (send the same event again)"),
        permissions=["replay"],
        note=_("Each selected delivery is sent again as a new delivery of the same event."),
    )
    def replay_deliveries(
        self, request: HttpRequest, queryset: QuerySet[WebhookDelivery], reason: str
    ) -> None:
        count = 0
        for delivery in queryset.select_related("tenant"):
            with transaction.atomic():
                replay = delivery_replay(delivery=delivery)
                support_action_record(
                    actor=request.user,
                    action="webhook_delivery.replay",
                    obj=delivery,
                    reason=reason,
                    details={"replay": str(replay.pk), "event": str(delivery.event_id)},
                )
            count += 1
        messages.success(
            request,
            ngettext(
                "%d delivery replayed as a new delivery.", "%d deliveries replayed as new deliveries.", count
            )
            % count,
        )

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.replay_webhookdelivery")


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "type", "tenant", "livemode", "dispatched_at"]
    list_filter = ["type", "livemode"]
    search_fields = ["type", "tenant__identifier"]
    fields = ["id", "tenant", "sub_tenant", "livemode", "type", "data", "created_at", "dispatched_at"]
    readonly_fields = fields
