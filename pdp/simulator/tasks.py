"""Background work of the PDP simulator: webhook callbacks (enqueued on commit by the engine) and the
lifecycle clock. Actors take ids and call the engine."""

from __future__ import annotations

import logging
import threading
import time

import dramatiq
import urllib3
from django.conf import settings
from dramatiq_crontab import interval

from pdp.simulator import engine

logger = logging.getLogger(__name__)

CALLBACK_TIMEOUT = urllib3.Timeout(connect=5.0, read=15.0)
USER_AGENT = "Scell-PDP-Simulator/1.0"

_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


class CallbackFailed(Exception):
    """The receiver did not answer 2xx: Dramatiq retries the message with backoff."""


def _http() -> urllib3.PoolManager:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = urllib3.PoolManager(num_pools=8, maxsize=2, headers={"User-Agent": USER_AGENT})
        return _pool


# A few retries with exponential backoff (2 s, 4 s, 8 s, 16 s... capped at a minute); the flow can always
# be found by searching, webhooks are a convenience on top of it.
@dramatiq.actor(queue_name="pdp", max_retries=4, min_backoff=2_000, max_backoff=60_000, time_limit=60_000)
def deliver_callback(webhook_id: str, flow_id: str, request_id: str) -> None:
    """POST the Flow ``flow_id`` to the callback URL of ``webhook_id``, signed at the time of the attempt
    (a retry carries a fresh timestamp, the same Request-Id)."""
    callback = engine.callback_request(
        webhook_id=webhook_id, flow_id=flow_id, request_id=request_id, timestamp=int(time.time())
    )
    if callback is None:  # the webhook was deleted meanwhile
        return
    response = _http().request(
        "POST",
        callback.url,
        body=callback.body,
        headers=callback.headers,
        timeout=CALLBACK_TIMEOUT,
        retries=False,
        redirect=False,
    )
    if not 200 <= response.status < 300:
        raise CallbackFailed(f"{callback.url} answered {response.status} to the callback of flow {flow_id}")
    logger.info("PDP simulator: callback of flow %s delivered to %s", flow_id, callback.url)


@interval(seconds=30)
@dramatiq.actor(queue_name="pdp", max_retries=0)
def simulator_tick() -> None:
    """Every 30 s: materialise the lifecycle statuses that are due, so their webhooks fire unprompted."""
    if settings.PDP_SIMULATOR_ENABLED:
        engine.tick()
