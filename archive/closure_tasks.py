"""Archive actors: the daily closure of every chain, and the timestamping and upgrade of closures."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq_crontab import cron

from archive import closures as services
from archive.models import Closure
from archive.timestamping import TimestampingError

logger = logging.getLogger("scell.archive")

__all__ = ["close_days", "timestamp_closure", "upgrade_closures"]


# 00:20 UTC is after midnight in Europe/Paris all year round (and leaves late transactions time to
# commit); the business day to close is computed in settings.BUSINESS_TIME_ZONE, not from the clock.
@cron("20 0 * * *")
@dramatiq.actor(queue_name="archive", max_retries=3)
def close_days() -> None:
    """Seal yesterday (and any day a missed run left open) for every chain with entries."""
    for closure in services.closures_due():
        timestamp_closure.send(closure.pk)


# Calendars are down now and then: retried with backoff up to ~6 hours; after that the hourly
# upgrade run submits closures still without a proof again.
@dramatiq.actor(queue_name="archive", max_retries=12, min_backoff=30_000, max_backoff=3_600_000)
def timestamp_closure(closure_id: int) -> None:
    closure = Closure.objects.filter(pk=closure_id).first()
    if closure is not None and not closure.ots_proof:
        services.closure_timestamp(closure)


@cron("35 * * * *")  # hourly; calendars aggregate into a Bitcoin transaction every few hours
@dramatiq.actor(queue_name="archive", max_retries=0)
def upgrade_closures() -> None:
    """Upgrade pending proofs; submit again the closures no calendar quorum has stamped yet."""
    pending = Closure.objects.filter(ots_status=Closure.OtsStatus.PENDING).order_by("day")
    for closure in pending.iterator():
        try:
            if closure.ots_proof:
                services.closure_upgrade(closure)
            else:
                services.closure_timestamp(closure)
        except TimestampingError as exc:
            logger.warning("Closure %s still not timestamped: %s", closure.pk, exc)
        except Exception:  # one unreadable proof must not hold the others back
            logger.exception("Closure %s could not be upgraded", closure.pk)
