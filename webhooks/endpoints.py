"""Writes of webhook endpoints (create, change, disable, delete) and the hand operations on them
(rotate the secret, send a test event, replay a delivery). The API views, the dashboard and the admin
all come through here; the delivery engine itself (signing, sending, retries) is ``webhooks.services``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from scell.errors import UnprocessableEntity
from scell.tenancy import Scope
from webhooks import services as engine
from webhooks.delivery import validate_endpoint_url
from webhooks.events import EVENT_TYPES
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.signing import endpoint_secret_generate

UNSET: Any = object()


@dataclass(frozen=True)
class CreatedEndpoint:
    """A new endpoint and its signing secret, which the caller shows once."""

    endpoint: WebhookEndpoint
    secret: str


def _check_url(url: str, *, livemode: bool) -> str:
    """Refused targets (private, loopback, link-local in live mode...) are a 422 on the ``url`` field."""
    try:
        validate_endpoint_url(url, livemode=livemode)
    except ValueError as exc:
        raise UnprocessableEntity(
            f"This URL cannot receive webhooks: {exc}",
            code="invalid_webhook_url",
            details=[{"field": "url", "message": str(exc), "code": "refused"}],
        ) from exc
    return url


def _check_event_types(event_types: list[str]) -> list[str]:
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise UnprocessableEntity(
            "Unknown event types: " + ", ".join(unknown),
            code="invalid_event_types",
            details=[{"field": "event_types", "message": f"unknown event type {t!r}"} for t in unknown],
        )
    # Order kept, duplicates dropped.
    return list(dict.fromkeys(event_types))


def endpoint_create(
    *,
    scope: Scope,
    url: str,
    description: str = "",
    event_types: list[str] | None = None,
    enabled: bool = True,
) -> CreatedEndpoint:
    """A new endpoint in the caller's tenant and mode, with a fresh ``whsec_`` secret."""
    # Checked before any transaction: a live URL is resolved (DNS), which may take a while.
    url = _check_url(url, livemode=scope.livemode)
    types = _check_event_types(list(event_types or []))
    secret = endpoint_secret_generate()
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.create(
        tenant=scope.tenant,
        livemode=scope.livemode,
        sub_tenant=scope.sub_tenant,
        url=url,
        description=description,
        event_types=types,
        enabled=enabled,
        disabled_at=None if enabled else now,
        disabled_reason="" if enabled else "created disabled",
        secret=secret,
        created_at=now,
        updated_at=now,
    )
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str = UNSET,
    description: str = UNSET,
    event_types: list[str] = UNSET,
    enabled: bool = UNSET,
) -> WebhookEndpoint:
    """Change what was given. Re-enabling an endpoint starts it afresh (no failure streak); disabling
    it by hand records when and why, like the automatic disabling does."""
    # The URL is vetted (DNS in live mode) before the row is locked.
    if url is not UNSET and url != endpoint.url:
        _check_url(url, livemode=endpoint.livemode)
    with transaction.atomic():
        return _endpoint_update_locked(
            endpoint=endpoint, url=url, description=description, event_types=event_types, enabled=enabled
        )


def _endpoint_update_locked(
    *, endpoint: WebhookEndpoint, url: str, description: str, event_types: list[str], enabled: bool
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if url is not UNSET:
        endpoint.url = url
    if description is not UNSET:
        endpoint.description = description
    if event_types is not UNSET:
        endpoint.event_types = _check_event_types(list(event_types or []))
    if enabled is not UNSET and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        if enabled:
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
            endpoint.failing_since = None
        else:
            endpoint.disabled_at = timezone.now()
            endpoint.disabled_reason = "disabled by hand"
    endpoint.updated_at = timezone.now()
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint with its delivery log (the events themselves stay)."""
    endpoint.delete()


# --- Hand operations: the engine's services -----------------------------------------------------------
def endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing (a second v1) for 24 h. Returns the new one, once."""
    return engine.endpoint_rotate_secret(endpoint=endpoint)


def endpoint_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``test.webhook`` event delivered to this endpoint only."""
    return engine.webhook_send_test(endpoint=endpoint)


def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """A new delivery of the same event (same event id) to the same endpoint."""
    return engine.delivery_replay(delivery=delivery)
