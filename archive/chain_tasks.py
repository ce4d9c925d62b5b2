"""Daily health check of every hash chain (see archive/tasks.py for discovery)."""

from __future__ import annotations

import dramatiq
from dramatiq_crontab import cron

from archive import services

# Verifying runs at tens of thousands of links per second, but all chains of a large installation can
# take far longer than Dramatiq's default 10-minute limit.
CHECK_TIME_LIMIT_MS = 6 * 60 * 60 * 1000


@cron("30 2 * * *")  # every day at 02:30 (settings TIME_ZONE), after the night's closures and backups
@dramatiq.actor(queue_name="archive", max_retries=1, time_limit=CHECK_TIME_LIMIT_MS)
def verify_chains() -> None:
    """Recompute every chain; a break marks the tenant compromised and emits archive.chain_broken."""
    services.chain_check()


__all__ = ["verify_chains"]
