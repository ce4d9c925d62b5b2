"""Support's view of webhooks: endpoints (never their secrets), deliveries with every attempt, and the
"replay delivery" action (the same service as the API and the dashboard). Nothing is edited here:
endpoints belong to the tenant, deliveries to the engine."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from scell.admin_base import ReadOnlyAdmin
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


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["attempted_at", "status_code", "succeeded", "duration_ms", "error", "response_body"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


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

    @admin.action(description="Replay delivery (send the same event again)", permissions=["replay"])
    def replay_deliveries(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = 0
        for delivery in queryset:
            delivery_replay(delivery=delivery)
            count += 1
        messages.success(request, f"{count} delivery(ies) replayed as new deliveries.")

    # Actions need a permission the read-only admin otherwise denies: staff who may view may replay.
    def has_replay_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "type", "tenant", "livemode", "dispatched_at"]
    list_filter = ["type", "livemode"]
    search_fields = ["type", "tenant__identifier"]
    fields = ["id", "tenant", "sub_tenant", "livemode", "type", "data", "created_at", "dispatched_at"]
    readonly_fields = fields
