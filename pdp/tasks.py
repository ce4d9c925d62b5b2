"""Background work of PDP transmission: submit outgoing flows, poll incoming ones, the sweeper.
Actors take ids and call services (pdp/services.py); every one of them is idempotent."""

from __future__ import annotations

import dramatiq
from django.conf import settings
from dramatiq_crontab import interval

from pdp import services


@dramatiq.actor(queue_name="pdp", max_retries=0, time_limit=300_000)
def submit_flow(flow_id: str) -> None:
    """One submission attempt of an outgoing flow; the service schedules its own retries (visible state,
    PDP_RETRY_SCHEDULE), so Dramatiq's are off."""
    services.flow_submit(flow_id=flow_id)


@dramatiq.actor(queue_name="pdp", max_retries=3, min_backoff=10_000, time_limit=600_000)
def poll_mailbox(mailbox_id: str) -> None:
    """Fetch and apply the incoming flows of one organisation (statuses, supplier invoices)."""
    services.mailbox_poll(mailbox_id=mailbox_id)


@interval(seconds=60)
@dramatiq.actor(queue_name="pdp", max_retries=0)
def sweep_flows() -> None:
    """Every minute: resubmit flows a lost message left behind, read pending acknowledgements."""
    services.flows_sweep()


@interval(seconds=settings.PDP_POLL_SECONDS)
@dramatiq.actor(queue_name="pdp", max_retries=0)
def poll_mailboxes() -> None:
    """Every PDP_POLL_SECONDS: poll every organisation (the safety net under the PDP's webhooks)."""
    services.mailboxes_poll_due()
