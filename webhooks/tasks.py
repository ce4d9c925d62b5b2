"""Background work of webhooks: dispatch after commit, one delivery attempt per message, and a
sweeper that re-drives whatever a lost message left behind. Actors take ids and call services."""

from __future__ import annotations

import dramatiq
from dramatiq_crontab import interval

from webhooks import services


@dramatiq.actor(queue_name="webhooks", max_retries=5, min_backoff=1_000)
def dispatch_event(event_id: str) -> None:
    """Create and enqueue the deliveries of one event (idempotent: claimed once)."""
    services.event_dispatch(event_id=event_id)


# No Dramatiq retries: the retry schedule is the delivery's own (next_attempt_at, delayed messages),
# and a crash mid-attempt is picked up again by the sweeper when the attempt's lease runs out.
@dramatiq.actor(queue_name="webhooks", max_retries=0)
def deliver(delivery_id: str) -> None:
    """Make the due attempt of one delivery (does nothing if it is not due or already taken)."""
    services.delivery_attempt(delivery_id=delivery_id)


@interval(seconds=60)
@dramatiq.actor(queue_name="webhooks", max_retries=0)
def sweep_webhooks() -> None:
    """Every minute: dispatch events left undispatched and re-enqueue overdue deliveries."""
    services.webhooks_sweep()
