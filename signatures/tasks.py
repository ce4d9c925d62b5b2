"""Background work of signatures: notifications after commit, sealing, and the scheduled sweeps
(unused codes that expired, requests past their expiry, reminders). Actors take ids and call services."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq_crontab import cron, interval

from signatures import notifications, services


@dramatiq.actor(queue_name="signatures", max_retries=5, min_backoff=5_000)
def send_notification(
    kind: str, signer_ids: list[str], request_id: str | None, extra: dict[str, Any]
) -> None:
    """E-mail signers or the sender about one step (invitation, reminder, signed, ended, completed)."""
    notifications.notify(kind=kind, signer_ids=signer_ids, request_id=request_id, extra=extra)


@dramatiq.actor(queue_name="signatures", max_retries=8, min_backoff=10_000, time_limit=300_000)
def finalize_request(request_id: str) -> None:
    """Stamp and seal the signed document, seal the evidence file, archive both (idempotent)."""
    services.signature_request_finalize(request_id=request_id)


@interval(seconds=60)
@dramatiq.actor(queue_name="signatures", max_retries=0)
def sweep_signatures() -> None:
    """Every minute: record the codes that expired unused and end the requests past their expiry."""
    services.otp_expiries_record()
    services.signature_requests_expire()
    services.finalize_stalled()


@cron("0 * * * *")  # every hour
@dramatiq.actor(queue_name="signatures", max_retries=0)
def send_reminders() -> None:
    """Hourly: remind the signers whose reminder is due."""
    services.reminders_send()
