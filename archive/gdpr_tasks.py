"""Daily GDPR erasure (see archive/tasks.py for discovery)."""

from __future__ import annotations

import dramatiq
from dramatiq_crontab import cron

from archive import gdpr


@cron("50 2 * * *")  # every day at 02:50 (settings TIME_ZONE), after the chain check
@dramatiq.actor(queue_name="archive", max_retries=3, time_limit=60 * 60 * 1000)
def erase_signer_phones() -> None:
    """Erase the phone numbers of signers whose request ended more than the retention period ago."""
    gdpr.signer_phones_erase()


__all__ = ["erase_signer_phones"]
