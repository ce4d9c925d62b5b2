"""Webhook writes: the outbox (events), their dispatch to endpoints, delivery attempts, replays,
secret rotation and the disabling of dead endpoints.

The flow: ``event_emit`` writes an Event in the caller's transaction and, on commit only, enqueues
``dispatch_event``; ``event_dispatch`` creates one delivery per matching endpoint and enqueues
``deliver``; ``delivery_attempt`` POSTs once and schedules the next try. Every step claims its row
with a conditional ``update()`` and goes on only if exactly one row changed, so a duplicated message
does nothing twice, and ``webhooks_sweep`` re-drives whatever a lost message or a dead worker left.
"""

from __future__ import annotations

import logging
import math
import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from scell.tenancy import Scope
from webhooks import delivery as http
from webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.signing import endpoint_secret_generate, signature_header

logger = logging.getLogger(__name__)

TEST_EVENT_PREFIX = "test."
# The previous secret keeps signing this long after a rotation (issue 6), so receivers can switch.
ROTATION_OVERLAP = timedelta(hours=24)
# A message that arrives a little before next_attempt_at (clocks of two hosts differ) still runs.
CLAIM_EARLY_TOLERANCE = timedelta(seconds=1)
# The sweeper only takes what is overdue by this much: the normal path (a message after commit, a
# delayed message at next_attempt_at) gets its chance first.
SWEEP_OVERDUE = timedelta(seconds=60)
SWEEP_BATCH = 500

ACTIVE = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING)


# --- Outbox -------------------------------------------------------------------------------------------
def event_emit(*, scope: Scope, type: str, data: dict[str, Any]) -> Event:
    """Record an event in the caller's transaction (it must be inside one: no change, no event).
    Its dispatch is enqueued when that transaction commits; a rollback leaves nothing to send."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit must run inside the transaction of the change it describes")
    event = Event.objects.create(
        tenant=scope.tenant, livemode=scope.livemode, sub_tenant=scope.sub_tenant, type=type, data=data
    )
    event_id = str(event.id)
    transaction.on_commit(lambda: _enqueue_dispatch(event_id))
    return event


def event_dispatch(*, event_id: str) -> list[WebhookDelivery]:
    """Create the deliveries of an event (one per enabled endpoint of its tenant, mode and sub-tenant
    whose filter accepts its type) and enqueue them. Runs once per event, whoever calls it first."""
    now = timezone.now()
    with transaction.atomic():
        # The claim and the deliveries commit together: a crash between them leaves the event
        # undispatched for the sweeper, never dispatched without deliveries.
        if Event.objects.filter(pk=event_id, dispatched_at__isnull=True).update(dispatched_at=now) != 1:
            return []
        event = Event.objects.get(pk=event_id)
        if event.type.startswith(TEST_EVENT_PREFIX):
            # Test events go to the one endpoint they were made for (webhook_send_test), never to all.
            return []
        endpoints = WebhookEndpoint.objects.filter(
            tenant_id=event.tenant_id, livemode=event.livemode, enabled=True, disabled_at__isnull=True
        )
        # A tenant-level endpoint hears every event of the tenant; a sub-tenant's endpoint only that
        # sub-tenant's (a partner's customer must not see its neighbours' invoices).
        if event.sub_tenant_id is None:
            endpoints = endpoints.filter(sub_tenant__isnull=True)
        else:
            endpoints = endpoints.filter(Q(sub_tenant__isnull=True) | Q(sub_tenant_id=event.sub_tenant_id))
        deliveries = [
            WebhookDelivery.objects.create(
                tenant_id=event.tenant_id,
                livemode=event.livemode,
                endpoint=endpoint,
                event=event,
                next_attempt_at=now,
            )
            for endpoint in endpoints.order_by("created_at")
            if endpoint.accepts(event.type)
        ]
        for delivery in deliveries:
            _enqueue_deliver_on_commit(str(delivery.id))
    return deliveries


# --- Delivery -----------------------------------------------------------------------------------------
def _lease() -> timedelta:
    # While an attempt runs, next_attempt_at is pushed past its longest duration: neither a duplicate
    # message nor the sweeper takes the delivery meanwhile, and if the worker dies the sweeper takes
    # it again once the lease is over.
    return timedelta(seconds=float(settings.WEBHOOK_TIMEOUT) + 60)


def _claim(delivery_id: str) -> bool:
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status__in=ACTIVE)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLAIM_EARLY_TOLERANCE))
        .update(next_attempt_at=now + _lease(), attempt_count=F("attempt_count") + 1)
    )
    return claimed == 1


def delivery_attempt(*, delivery_id: str) -> WebhookAttempt | None:
    """Make the next attempt of a delivery if it is due and nobody else is making it; record it and
    schedule the retry (or give up). Returns the attempt, or None when there was nothing to do."""
    if not _claim(delivery_id):
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled or endpoint.disabled_at is not None:
        _delivery_close(delivery, WebhookDelivery.Status.CANCELLED)
        return None
    event = delivery.event
    body = http.event_payload(event)
    now = timezone.now()
    signing_secrets = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        signing_secrets.append(endpoint.previous_secret)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": http.USER_AGENT,
        "X-Scell-Event-Id": event.public_id,
        "X-Scell-Delivery-Id": str(delivery.id),
        "X-Scell-Signature": signature_header(body, int(now.timestamp()), signing_secrets),
    }
    # No transaction and no lock are held during the HTTP call (up to WEBHOOK_TIMEOUT).
    try:
        response = http.post(endpoint.url, livemode=delivery.livemode, body=body, headers=headers)
    except Exception as exc:
        # Recorded as a failed attempt, so the retry schedule still ends: a crash here would leave the
        # delivery to the sweeper again and again.
        logger.exception("Webhook delivery %s crashed", delivery.id)
        response = http.Response(None, b"", f"internal error: {type(exc).__name__}", 0)
    return _attempt_record(delivery=delivery, response=response, attempted_at=now)


def _attempt_record(*, delivery: WebhookDelivery, response: http.Response, attempted_at) -> WebhookAttempt:
    stored = int(settings.WEBHOOK_STORED_RESPONSE_BYTES)
    now = timezone.now()
    endpoint = delivery.endpoint
    with transaction.atomic():
        attempt = WebhookAttempt.objects.create(
            delivery=delivery,
            attempted_at=attempted_at,
            status_code=response.status_code,
            duration_ms=response.duration_ms,
            response_body=response.body[:stored].decode("utf-8", errors="replace"),
            error=response.error[:500],
            succeeded=response.succeeded,
        )
        fields: dict[str, Any] = {"last_status_code": response.status_code}
        if response.succeeded:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=WebhookDelivery.Status.SUCCEEDED, completed_at=now, next_attempt_at=None, **fields
            )
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(
                failing_since=None
            )
            return attempt
        if response.status_code == 410:
            # 410 Gone: the receiver says the endpoint is no more; retrying would only hammer it.
            WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
            endpoint_disable(endpoint=endpoint, reason="The endpoint answered 410 Gone.")
            return attempt
        schedule = list(settings.WEBHOOK_RETRY_SCHEDULE)
        if delivery.attempt_count <= len(schedule):
            # ±10 % jitter: the deliveries of an endpoint that was down do not all come back at once.
            delay = schedule[delivery.attempt_count - 1] * random.uniform(0.9, 1.1)
            next_at = now + timedelta(seconds=delay)
            # status__in=ACTIVE: a delivery cancelled meanwhile (endpoint disabled) is not revived.
            if WebhookDelivery.objects.filter(pk=delivery.pk, status__in=ACTIVE).update(
                status=WebhookDelivery.Status.RETRYING, next_attempt_at=next_at, **fields
            ):
                _enqueue_deliver_on_commit(str(delivery.pk), delay_ms=math.ceil(delay * 1000))
        else:
            WebhookDelivery.objects.filter(pk=delivery.pk, status__in=ACTIVE).update(
                status=WebhookDelivery.Status.FAILED, completed_at=now, next_attempt_at=None, **fields
            )
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
        failing_since = WebhookEndpoint.objects.values_list("failing_since", flat=True).get(pk=endpoint.pk)
        limit = timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS)
        if failing_since is not None and failing_since < now - limit:
            endpoint_disable(
                endpoint=endpoint,
                reason=f"Every delivery failed for {settings.WEBHOOK_DISABLE_AFTER_HOURS} hours.",
            )
    return attempt


def _delivery_close(delivery: WebhookDelivery, status: str) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk, status__in=ACTIVE).update(
        status=status, completed_at=timezone.now(), next_attempt_at=None
    )


def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the event of ``delivery`` again to its endpoint, as a new delivery (same event id: the
    receiver recognises a replay of what it may already have processed)."""
    with transaction.atomic():
        replay = WebhookDelivery.objects.create(
            tenant_id=delivery.tenant_id,
            livemode=delivery.livemode,
            endpoint_id=delivery.endpoint_id,
            event_id=delivery.event_id,
            replay_of=delivery,
            next_attempt_at=timezone.now(),
        )
        _enqueue_deliver_on_commit(str(replay.id))
    return replay


def webhook_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a ``test.webhook`` event to this endpoint only (the "send test event" button)."""
    now = timezone.now()
    with transaction.atomic():
        event = Event.objects.create(
            tenant_id=endpoint.tenant_id,
            livemode=endpoint.livemode,
            sub_tenant_id=endpoint.sub_tenant_id,
            type=f"{TEST_EVENT_PREFIX}webhook",
            data={"endpoint": str(endpoint.id), "message": "A test event sent from Scell."},
            # Dispatched already: the dispatcher and the sweeper must not spread it to other endpoints.
            dispatched_at=now,
        )
        delivery = WebhookDelivery.objects.create(
            tenant_id=endpoint.tenant_id,
            livemode=endpoint.livemode,
            endpoint=endpoint,
            event=event,
            next_attempt_at=now,
        )
        _enqueue_deliver_on_commit(str(delivery.id))
    return delivery


# --- Endpoints ----------------------------------------------------------------------------------------
def endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """Give the endpoint a new secret; the old one keeps signing (a second v1) for 24 hours."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        new_secret = endpoint_secret_generate()
        now = timezone.now()
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = now + ROTATION_OVERLAP
        locked.secret = new_secret
        locked.updated_at = now
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    endpoint.secret = locked.secret
    endpoint.previous_secret = locked.previous_secret
    endpoint.previous_secret_expires_at = locked.previous_secret_expires_at
    endpoint.updated_at = locked.updated_at
    return new_secret


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str) -> bool:
    """Disable an endpoint (410 Gone, or failing for days), cancel its pending deliveries and warn the
    tenant's admins by e-mail. Returns False if it was already disabled (nothing done, no e-mail)."""
    now = timezone.now()
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, disabled_at__isnull=True).update(
            enabled=False, disabled_at=now, disabled_reason=reason[:300], updated_at=now
        )
        if changed != 1:
            return False
        WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, status__in=ACTIVE).update(
            status=WebhookDelivery.Status.CANCELLED, completed_at=now, next_attempt_at=None
        )
        endpoint_id = str(endpoint.pk)
        transaction.on_commit(lambda: _warn_admins(endpoint_id))
    endpoint.enabled, endpoint.disabled_at, endpoint.disabled_reason = False, now, reason[:300]
    return True


def _warn_admins(endpoint_id: str) -> None:
    from scell.models import Membership, User

    endpoint = WebhookEndpoint.objects.select_related("tenant").get(pk=endpoint_id)
    recipients = list(
        User.objects.filter(
            is_active=True, memberships__tenant=endpoint.tenant, memberships__role=Membership.Role.ADMIN
        ).values_list("email", flat=True)
    )
    if not recipients:
        return
    mode = "live" if endpoint.livemode else "sandbox"
    try:
        send_mail(
            subject=f"Scell: webhook endpoint disabled ({endpoint.tenant.legal_name})",
            message=(
                f"The {mode} webhook endpoint {endpoint.url} of {endpoint.tenant.legal_name} was disabled.\n"
                f"Reason: {endpoint.disabled_reason}\n\n"
                "Events are no longer sent to it. Fix the receiver, enable the endpoint again in the "
                "dashboard, and replay the deliveries you need from the delivery log.\n"
            ),
            from_email=None,
            recipient_list=recipients,
        )
    except Exception:
        # The endpoint is disabled either way; a mail server outage must not undo or retry that.
        logger.exception(
            "Could not warn the admins of tenant %s about webhook endpoint %s",
            endpoint.tenant_id,
            endpoint_id,
        )


# --- Sweeper ------------------------------------------------------------------------------------------
def webhooks_sweep(*, overdue_after: timedelta = SWEEP_OVERDUE) -> dict[str, int]:
    """Re-drive what the normal path lost: events left undispatched (the message after commit was
    lost, or the worker died) and deliveries past their next attempt (a lost delayed message, a worker
    that died mid-attempt and whose lease ran out)."""
    cutoff = timezone.now() - overdue_after
    dispatched = 0
    event_ids = Event.objects.filter(dispatched_at__isnull=True, created_at__lte=cutoff).order_by(
        "created_at"
    )
    for event_id in event_ids.values_list("pk", flat=True)[:SWEEP_BATCH]:
        event_dispatch(event_id=str(event_id))
        dispatched += 1
    requeued = 0
    due = WebhookDelivery.objects.filter(status__in=ACTIVE, next_attempt_at__lte=cutoff).order_by(
        "next_attempt_at"
    )
    for delivery_id, next_attempt_at in due.values_list("pk", "next_attempt_at")[:SWEEP_BATCH]:
        with transaction.atomic():
            # Claimed by moving next_attempt_at to now: a second sweeper running at the same time sees
            # another value and skips it, and the next sweep leaves it alone until it is overdue again.
            claimed = WebhookDelivery.objects.filter(
                pk=delivery_id, status__in=ACTIVE, next_attempt_at=next_attempt_at
            ).update(next_attempt_at=timezone.now())
            if claimed == 1:
                _enqueue_deliver_on_commit(str(delivery_id))
                requeued += 1
    return {"events": dispatched, "deliveries": requeued}


# --- Enqueueing (after commit only) -----------------------------------------------------------------
def _enqueue_dispatch(event_id: str) -> None:
    from webhooks.tasks import dispatch_event

    dispatch_event.send(event_id)


def _enqueue_deliver_on_commit(delivery_id: str, *, delay_ms: int | None = None) -> None:
    def send() -> None:
        from webhooks.tasks import deliver

        if delay_ms:
            deliver.send_with_options(args=(delivery_id,), delay=delay_ms)
        else:
            deliver.send(delivery_id)

    transaction.on_commit(send)
