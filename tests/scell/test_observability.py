"""Request ids (echoed, logged), structured JSON logs, /healthz and /readyz."""

from __future__ import annotations

import io
import json
import logging
import os
import sys

import pytest
from django.test import Client
from dramatiq.brokers.redis import RedisBroker

from scell import observability

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log():
    """What the access logger writes, through the production filter and formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(observability.RequestIdFilter())
    handler.setFormatter(observability.JsonFormatter())
    logger = logging.getLogger("scell.request")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def test_each_response_carries_a_fresh_request_id_that_the_access_log_repeats(tenant_a, json_log) -> None:
    client = tenant_a.client("sk_test")
    first, second = client.get("/api/v1/me"), client.get("/api/v1/me")
    assert first.status_code == 200
    ids = [first["X-Request-Id"], second["X-Request-Id"]]
    assert all(len(i) == 32 for i in ids) and ids[0] != ids[1]
    lines = json_log()
    assert [line["request_id"] for line in lines] == ids
    line = lines[0]
    assert line["logger"] == "scell.request" and line["level"] == "INFO"
    assert line["message"] == "GET /api/v1/me 200"
    assert line["http"]["method"] == "GET" and line["http"]["status"] == 200
    assert line["http"]["duration_ms"] >= 0
    assert line["tenant"] == tenant_a.tenant.identifier
    assert line["time"].endswith("Z")


def test_a_sane_caller_id_is_kept_and_a_hostile_one_replaced(tenant_a, json_log) -> None:
    client = tenant_a.client("sk_test")
    kept = client.get("/api/v1/me", HTTP_X_REQUEST_ID="ticket-4711.retry:2")
    assert kept["X-Request-Id"] == "ticket-4711.retry:2"
    hostile = client.get("/api/v1/me", HTTP_X_REQUEST_ID="abc\r\nSet-Cookie: x=1")
    assert hostile["X-Request-Id"] != "abc\r\nSet-Cookie: x=1" and len(hostile["X-Request-Id"]) == 32
    too_long = client.get("/api/v1/me", HTTP_X_REQUEST_ID="a" * 200)
    assert len(too_long["X-Request-Id"]) == 32
    assert [line["request_id"] for line in json_log()] == [
        "ticket-4711.retry:2",
        hostile["X-Request-Id"],
        too_long["X-Request-Id"],
    ]


def test_errors_keep_their_request_id(tenant_a, json_log) -> None:
    answer = tenant_a.client("sk_test").get("/api/v1/invoices/00000000-0000-0000-0000-000000000000")
    assert answer.status_code == 404 and answer["X-Request-Id"]
    assert json_log()[0]["http"]["status"] == 404


def test_json_formatter_writes_extra_fields_and_the_traceback() -> None:
    formatter = observability.JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("scell.test").makeRecord(
            "scell.test",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("x",),
            exc_info=True,
            extra={"invoice": "A-1"},
        )
        record.exc_info = sys.exc_info()
    observability.RequestIdFilter().filter(record)
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "failed x" and entry["level"] == "ERROR" and entry["invoice"] == "A-1"
    assert "ValueError: boom" in entry["exception"]
    assert "request_id" not in entry  # outside a request


def test_healthz_answers_without_authentication_and_is_not_logged(json_log) -> None:
    answer = Client().get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert "no-cache" in answer["Cache-Control"]
    assert Client().post("/healthz").status_code == 405
    assert json_log() == []


def test_readyz_checks_database_broker_and_storage() -> None:
    answer = Client().get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }


def test_readyz_pings_a_redis_broker_and_reports_it_down(monkeypatch) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setattr("dramatiq.get_broker", lambda: RedisBroker(url=url))
    assert Client().get("/readyz").json()["checks"]["broker"] == "ok"

    monkeypatch.setattr(
        "dramatiq.get_broker", lambda: RedisBroker(url="redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    )
    answer = Client().get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "unavailable", "storage": "ok"},
    }


def test_readyz_reports_an_unreachable_database(monkeypatch) -> None:
    from django.db import connection

    def refuse(*args, **kwargs):
        raise connection.Database.OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    answer = Client().get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"] == "unavailable"
