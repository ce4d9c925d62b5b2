from __future__ import annotations

import logging
import os
import sys
import threading

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger(__name__)
_worker_lock = threading.Lock()
_worker = None


def start_inprocess_worker() -> None:
    """Run Dramatiq actors in threads of this process (embedded default: stub broker, no Redis).

    Production runs ``manage.py rundramatiq`` against Redis instead; this only exists so that a
    newcomer's ``runserver`` renders documents and delivers webhooks without any other service."""
    global _worker
    with _worker_lock:
        if _worker is not None:
            return
        import dramatiq

        broker = dramatiq.get_broker()
        _worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        _worker.start()
        logger.info("In-process Dramatiq worker started (stub broker)")


class ScellConfig(AppConfig):
    name = "scell"
    verbose_name = "Scell: tenancy and access"

    def ready(self) -> None:
        from scell import schema  # noqa: F401 - registers the OpenAPI authentication extensions
        from scell.api.fields import strict_json_types

        strict_json_types()

        if not settings.DRAMATIQ_INPROCESS_WORKER:
            return
        argv = sys.argv[1:2]
        # runserver's autoreloader runs the app in a child (RUN_MAIN=true); start the worker there only.
        serving = argv == ["runserver"] and (os.environ.get("RUN_MAIN") == "true" or "--noreload" in sys.argv)
        if serving or os.environ.get("SCELL_START_INPROCESS_WORKER") == "1":
            start_inprocess_worker()
