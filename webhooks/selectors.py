"""Webhook reads; each takes the caller's ``scope``: another tenant's (or mode's) rows are not found."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, QuerySet

from scell.tenancy import Scope
from webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENT_PREFIX = "evt_"


def parse_uuid(value: Any) -> uuid.UUID | None:
    """A UUID from its canonical or hex form, or None (an unparsable id is simply not found)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def parse_event_id(value: Any) -> uuid.UUID | None:
    """``evt_<hex>`` (the public form) or the bare UUID."""
    text = str(value or "")
    if text.startswith(EVENT_PREFIX):
        text = text[len(EVENT_PREFIX) :]
    return parse_uuid(text)


# --- Endpoints ----------------------------------------------------------------------------------------
def endpoint_list(*, scope: Scope) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.scoped(scope)


def endpoint_get(*, scope: Scope, pk: Any) -> WebhookEndpoint | None:
    parsed = parse_uuid(pk)
    if parsed is None:
        return None
    return endpoint_list(scope=scope).filter(pk=parsed).first()


# --- Deliveries ---------------------------------------------------------------------------------------
def delivery_list(
    *,
    scope: Scope,
    endpoint: Any = None,
    event: Any = None,
    status: str | None = None,
) -> QuerySet[WebhookDelivery]:
    """Deliveries with their endpoint, event and attempts (oldest attempt first)."""
    qs = (
        WebhookDelivery.objects.scoped(scope)
        .select_related("endpoint", "event")
        .prefetch_related(
            Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("attempted_at", "pk"))
        )
    )
    # Deliveries carry no sub-tenant of their own: a caller acting for one sub-tenant sees those of
    # its endpoints only.
    if scope.sub_tenant is not None:
        qs = qs.filter(endpoint__sub_tenant=scope.sub_tenant)
    if endpoint is not None:
        qs = qs.filter(endpoint_id=endpoint.pk if isinstance(endpoint, WebhookEndpoint) else endpoint)
    if event is not None:
        qs = qs.filter(event_id=event.pk if isinstance(event, Event) else event)
    if status:
        qs = qs.filter(status=status)
    return qs


def delivery_get(*, scope: Scope, pk: Any) -> WebhookDelivery | None:
    parsed = parse_uuid(pk)
    if parsed is None:
        return None
    return delivery_list(scope=scope).filter(pk=parsed).first()


# --- Events -------------------------------------------------------------------------------------------
def event_list(*, scope: Scope, type: str | None = None) -> QuerySet[Event]:
    qs = Event.objects.scoped(scope)
    if type:
        qs = qs.filter(type=type)
    return qs


def event_get(*, scope: Scope, ref: Any) -> Event | None:
    parsed = parse_event_id(ref)
    if parsed is None:
        return None
    return event_list(scope=scope).filter(pk=parsed).first()


# Deliveries whose last attempt failed: still being retried, or given up.
FAILING_STATUSES = (WebhookDelivery.Status.RETRYING, WebhookDelivery.Status.FAILED)


def delivery_failures(*, scope: Scope) -> QuerySet[WebhookDelivery]:
    """Deliveries whose last attempt failed (retrying, or retries exhausted), newest first."""
    return delivery_list(scope=scope).filter(status__in=FAILING_STATUSES).order_by("-created_at", "-pk")
