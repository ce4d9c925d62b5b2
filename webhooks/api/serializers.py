"""Input and output shapes of the webhook endpoints. No logic: validation of URLs (per mode) and
event types is the services' (webhooks.endpoints)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from webhooks.delivery import format_created
from webhooks.events import EVENT_TYPES
from webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class EndpointInputSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    description = serializers.CharField(max_length=300, allow_blank=True, required=False, default="")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES),
        required=False,
        default=list,
        help_text="Event types sent to this endpoint; empty: every type.",
    )
    enabled = serializers.BooleanField(required=False, default=True)


class EndpointUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, required=False)
    description = serializers.CharField(max_length=300, allow_blank=True, required=False)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES), required=False)
    enabled = serializers.BooleanField(
        required=False, help_text="true re-enables a disabled endpoint (its failure streak is forgotten)."
    )


class EndpointSerializer(serializers.ModelSerializer):
    """An endpoint as read back: never its secret."""

    secret_rotation_ends_at = serializers.DateTimeField(
        source="previous_secret_expires_at",
        read_only=True,
        allow_null=True,
        help_text="While set, the previous secret also signs (a second v1) until then.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "livemode",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "secret_rotation_ends_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EndpointCreatedSerializer(EndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="whsec_… signing secret: shown only in this response."
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class SecretSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    secret = serializers.CharField(read_only=True, help_text="The new whsec_… secret: shown only here.")
    previous_secret_expires_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="The old secret keeps signing until then."
    )


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["attempted_at", "status_code", "duration_ms", "succeeded", "error", "response_body"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    endpoint = serializers.UUIDField(source="endpoint_id", read_only=True)
    event = serializers.CharField(source="event.public_id", read_only=True, help_text="evt_…")
    event_type = serializers.CharField(source="event.type", read_only=True)
    replay_of = serializers.UUIDField(source="replay_of_id", read_only=True, allow_null=True)
    attempts = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event",
            "event_type",
            "status",
            "livemode",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "replay_of",
            "created_at",
            "completed_at",
            "attempts",
        ]
        read_only_fields = fields


class DeliveryQuerySerializer(serializers.Serializer):
    endpoint = serializers.UUIDField(required=False, help_text="Only the deliveries to this endpoint.")
    event = serializers.CharField(
        required=False, help_text="Only the deliveries of this event (evt_… or UUID)."
    )
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)


class EventQuerySerializer(serializers.Serializer):
    type = serializers.CharField(required=False, help_text="Only events of this type (e.g. invoice.issued).")


class EventSerializer(serializers.ModelSerializer):
    """An event as the webhook body carries it."""

    id = serializers.CharField(source="public_id", read_only=True, help_text="evt_…")
    created = serializers.SerializerMethodField()
    data = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = ["id", "type", "created", "livemode", "data"]
        read_only_fields = fields

    # The same rendering as the webhook body, so that an event read here and one received match.
    @extend_schema_field({"type": "string", "format": "date-time"})
    def get_created(self, event: Event) -> str:
        return format_created(event)

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_data(self, event: Event) -> dict:
        return event.data
