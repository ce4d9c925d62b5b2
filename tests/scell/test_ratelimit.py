"""Rate limits per key and per client IP, counted in Redis (the test command's REDIS_URL): 429 with the
error object and Retry-After, nothing done for the refused request, other keys and addresses unaffected."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import caches
from django.test import RequestFactory

from invoicing.models import Invoice
from scell import ratelimit
from scell.ratelimit import client_ip

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_counters(monkeypatch):
    """Each test counts under its own names in the shared Redis, as if alone on the server."""
    namespace = uuid.uuid4().hex
    original = ratelimit._hit

    def hit(kind, identity, limit, now):
        return original(kind, f"{namespace}:{identity}", limit, now)

    monkeypatch.setattr(ratelimit, "_hit", hit)


def test_the_counters_live_in_redis(settings) -> None:
    assert "redis" in settings.CACHES["ratelimit"]["BACKEND"].lower()
    caches["ratelimit"].set("ratelimit:probe", 1, 5)
    assert caches["ratelimit"].incr("ratelimit:probe") == 2


def test_a_key_over_its_limit_gets_429_with_retry_after_and_nothing_is_done(
    settings, seller, draft_body
) -> None:
    settings.RATE_LIMIT_PER_KEY = 3
    settings.RATE_LIMIT_PER_IP = 0
    client = seller.client("sk_test")
    for _ in range(3):
        assert client.get("/api/v1/me").status_code == 200
    before = Invoice.objects.count()
    refused = client.post("/api/v1/invoices", draft_body, format="json")
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert Invoice.objects.count() == before
    # Another key of the same tenant has its own budget.
    assert seller.client("sk_live").get("/api/v1/me").status_code == 200


def test_an_ip_over_its_limit_gets_429_before_authentication(settings, tenant_a) -> None:
    settings.RATE_LIMIT_PER_KEY = 0
    settings.RATE_LIMIT_PER_IP = 4
    wrong = tenant_a.client("sk_test")
    wrong.credentials(HTTP_X_API_KEY="sk_test_not-a-key")
    for _ in range(4):
        assert wrong.get("/api/v1/me").status_code == 401
    # Guessing keys counts: the next call is refused whatever its key.
    refused = tenant_a.client("sk_test").get("/api/v1/me")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited" and refused["Retry-After"]
    other_address = tenant_a.client("sk_test").get("/api/v1/me", REMOTE_ADDR="203.0.113.9")
    assert other_address.status_code == 200
    # The dashboard and the health probes are not API calls.
    assert tenant_a.client("sk_test").get("/healthz").status_code == 200


def test_zero_switches_the_limits_off(settings, tenant_a) -> None:
    settings.RATE_LIMIT_PER_KEY = 0
    settings.RATE_LIMIT_PER_IP = 0
    client = tenant_a.client("sk_test")
    assert all(client.get("/api/v1/me").status_code == 200 for _ in range(10))


def test_client_ip_trusts_only_the_configured_proxies(settings) -> None:
    factory = RequestFactory()
    forged = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7")
    settings.TRUSTED_PROXIES = 0
    assert client_ip(forged) == "10.0.0.2"  # no proxy: the header is the client's own writing
    settings.TRUSTED_PROXIES = 1
    assert client_ip(forged) == "198.51.100.7"  # the hop our proxy appended, not the forged one
    settings.TRUSTED_PROXIES = 2
    assert client_ip(forged) == "6.6.6.6"
    bare = factory.get("/", REMOTE_ADDR="10.0.0.2")
    assert client_ip(bare) == "10.0.0.2"
