"""Request ids, structured logs and the health endpoints.

Every request carries an id: the caller's ``X-Request-Id`` when it is sane, else a fresh one. It is echoed
on the response, attached to every log record written while the request runs and to the one access-log line
of the request (``scell.request``), so a support ticket quoting it finds every line of the request.
``/healthz`` says the process is up; ``/readyz`` that it can serve: database, broker and storages answer.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import traceback
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

REQUEST_ID_HEADER = "X-Request-Id"
# Callers' ids are echoed into our logs and headers: printable, bounded, no separators.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
access_logger = logging.getLogger("scell.request")


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """First middleware: sets the request id, times the request and writes its access-log line."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if _SANE_ID.match(offered) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            self._log(request, response.status_code, started)
            return response
        finally:
            request_id_var.reset(token)

    @staticmethod
    def _log(request: HttpRequest, status: int, started: float) -> None:
        if request.path in HEALTH_PATHS:
            return  # probes every few seconds would drown the log
        scope = getattr(request, "scope", None) or getattr(request, "auth", None)
        tenant = getattr(getattr(scope, "tenant", None), "identifier", "")
        access_logger.info(
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
                "tenant": tenant,
            },
        )


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (empty outside a request: workers, commands)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request id, the record's
    ``extra`` fields and the exception's traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", ""):
            entry["request_id"] = record.request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, default=str, ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


# --- Health -------------------------------------------------------------------------------------------
def _check_database() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_broker() -> None:
    import dramatiq

    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    if client is not None:  # Redis; the stub broker lives in this process
        client.ping()


def _check_storages() -> None:
    from django.core.files.storage import default_storage

    from archive.storage import archive_storage

    # A lookup of a name that does not exist: a round trip to the disk or the bucket, nothing written.
    for storage in (default_storage, archive_storage()):
        storage.exists(f"readyz/{uuid.uuid4().hex}")


CHECKS = {"database": _check_database, "broker": _check_broker, "storage": _check_storages}
logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz_view(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = "unavailable"
        else:
            results[name] = "ok"
    ready = all(value == "ok" for value in results.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503
    )


urlpatterns = [
    path("healthz", healthz_view, name="healthz"),
    path("readyz", readyz_view, name="readyz"),
]
HEALTH_PATHS = {"/healthz", "/readyz"}
