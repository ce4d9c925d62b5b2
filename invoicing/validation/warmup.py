"""Hooks that start the validation engine in a worker process, after it has been forked.

saxonche must never be started in a process that forks workers afterwards (see rules/README.md):
these hooks run in the worker itself.

* Dramatiq (django_dramatiq): add ``"invoicing.validation.warmup.WarmUpMiddleware"`` to
  ``DRAMATIQ_BROKER["MIDDLEWARE"]``.
* gunicorn: in the config file, ``from invoicing.validation.warmup import gunicorn_post_fork as post_fork``.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from invoicing.validation.engine import warm_up

logger = logging.getLogger(__name__)


class WarmUpMiddleware(dramatiq.Middleware):
    """Compiles the validation stylesheets when a Dramatiq worker process has booted."""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        timings = warm_up()
        logger.info("validation engine ready in %.2f s", sum(timings.values()))


def gunicorn_post_fork(server: Any, worker: Any) -> None:
    """gunicorn ``post_fork`` hook: runs in the new worker, in the thread its request threads will
    share the engine with."""
    timings = warm_up()
    logger.info("validation engine ready in %.2f s", sum(timings.values()))
