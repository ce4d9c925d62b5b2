"""Webhook endpoints, deliveries and events (API.md, "Credits, webhooks, archive"). Thin: parse, call
a service or a selector, serialise."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from scell.api.base import ScopedViewSet
from scell.errors import UnprocessableEntity
from webhooks import endpoints, selectors
from webhooks.api.serializers import (
    DeliveryQuerySerializer,
    DeliverySerializer,
    EndpointCreatedSerializer,
    EndpointInputSerializer,
    EndpointSerializer,
    EndpointUpdateSerializer,
    EventQuerySerializer,
    EventSerializer,
    SecretSerializer,
)
from webhooks.models import Event, WebhookDelivery, WebhookEndpoint

EVENT_ID_PARAMETER = OpenApiParameter(
    "id", str, OpenApiParameter.PATH, description="The event id: evt_… or its UUID."
)


def _not_found() -> exceptions.NotFound:
    return exceptions.NotFound("No such object.")


class WebhookEndpointViewSet(ScopedViewSet):
    """The tenant's webhook endpoints in the caller's mode. The secret is shown at creation and after a
    rotation only."""

    model = WebhookEndpoint
    serializer_class = EndpointSerializer
    # Secrets are handed out here: server keys and dashboard admins only.
    secret_key_only = True
    admin_only = True

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return selectors.endpoint_list(scope=self.scope)

    def get_object(self) -> WebhookEndpoint:
        endpoint = selectors.endpoint_get(scope=self.scope, pk=self.kwargs["pk"])
        if endpoint is None:
            raise _not_found()
        return endpoint

    @extend_schema(responses=EndpointSerializer(many=True), summary="List endpoints")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(EndpointSerializer(page, many=True).data)

    @extend_schema(
        request=EndpointInputSerializer,
        responses={201: EndpointCreatedSerializer},
        summary="Create an endpoint (its secret is in this response only)",
    )
    def create(self, request: Request) -> Response:
        serializer = EndpointInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = endpoints.endpoint_create(scope=self.scope, **serializer.validated_data)
        data = EndpointSerializer(created.endpoint).data | {"secret": created.secret}
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=EndpointSerializer, summary="Read an endpoint (without its secret)")
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(EndpointSerializer(self.get_object()).data)

    @extend_schema(
        request=EndpointUpdateSerializer, responses=EndpointSerializer, summary="Change an endpoint"
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        endpoint = self.get_object()
        serializer = EndpointUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = endpoints.endpoint_update(endpoint=endpoint, **serializer.validated_data)
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(request=None, responses={204: None}, summary="Delete an endpoint and its delivery log")
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        endpoints.endpoint_delete(endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses=SecretSerializer,
        summary="Rotate the secret (the old one keeps signing for 24 h)",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        endpoint = self.get_object()
        secret = endpoints.endpoint_rotate_secret(endpoint=endpoint)
        endpoint.refresh_from_db()
        data = {
            "id": endpoint.id,
            "secret": secret,
            "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        }
        return Response(SecretSerializer(data).data)

    @extend_schema(
        request=None,
        responses={202: DeliverySerializer},
        summary="Send a test.webhook event to this endpoint",
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        delivery = endpoints.endpoint_send_test(endpoint=self.get_object())
        delivery = selectors.delivery_get(scope=self.scope, pk=delivery.pk) or delivery
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryViewSet(mixins.ListModelMixin, ScopedViewSet):
    """Deliveries of events to endpoints, newest first, each with its attempts."""

    model = WebhookDelivery
    serializer_class = DeliverySerializer

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        if getattr(self, "swagger_fake_view", False):
            return WebhookDelivery.objects.none()
        query = DeliveryQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        event = None
        if params.get("event"):
            event = selectors.parse_event_id(params["event"])
            if event is None:
                raise UnprocessableEntity(
                    "event is not an event id.", details=[{"field": "event", "message": "expected evt_…"}]
                )
        return selectors.delivery_list(
            scope=self.scope, endpoint=params.get("endpoint"), event=event, status=params.get("status")
        )

    def get_object(self) -> WebhookDelivery:
        delivery = selectors.delivery_get(scope=self.scope, pk=self.kwargs["pk"])
        if delivery is None:
            raise _not_found()
        return delivery

    @extend_schema(parameters=[DeliveryQuerySerializer], summary="List deliveries with their attempts")
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(responses=DeliverySerializer, summary="Read a delivery")
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(DeliverySerializer(self.get_object()).data)

    @extend_schema(
        request=None,
        responses={202: DeliverySerializer},
        summary="Send the same event again to the same endpoint (a new delivery)",
    )
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str | None = None) -> Response:
        replayed = endpoints.delivery_replay(delivery=self.get_object())
        replayed = selectors.delivery_get(scope=self.scope, pk=replayed.pk) or replayed
        return Response(DeliverySerializer(replayed).data, status=status.HTTP_202_ACCEPTED)


class EventViewSet(mixins.ListModelMixin, ScopedViewSet):
    """What happened in the caller's tenant and mode, newest first: the bodies webhooks carry."""

    model = Event
    serializer_class = EventSerializer
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Event]:
        if getattr(self, "swagger_fake_view", False):
            return Event.objects.none()
        query = EventQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.event_list(scope=self.scope, type=query.validated_data.get("type"))

    @extend_schema(parameters=[EventQuerySerializer], summary="List events")
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(parameters=[EVENT_ID_PARAMETER], responses=EventSerializer, summary="Read an event")
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        event = selectors.event_get(scope=self.scope, ref=pk)
        if event is None:
            raise _not_found()
        return Response(EventSerializer(event).data)
