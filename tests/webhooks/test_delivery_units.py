"""Signatures, the payload bytes and the SSRF guard, without a worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from webhooks.delivery import UnsafeURL, resolve_target, validate_endpoint_url
from webhooks.signing import endpoint_secret_generate, signature_header, verify_signature

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1","type":"invoice.issued"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    t = int(time.time())
    header = signature_header(BODY, t, [SECRET])
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={t},v1={expected}"
    assert verify_signature(BODY, header, SECRET)


def test_verify_rejects_old_timestamp_tampered_body_and_wrong_secret() -> None:
    now = time.time()
    old = signature_header(BODY, int(now) - 301, [SECRET])
    assert not verify_signature(BODY, old, SECRET, now=now)
    # Within the 5 minutes of tolerance, clock skew either way is accepted.
    assert verify_signature(BODY, signature_header(BODY, int(now) - 290, [SECRET]), SECRET, now=now)
    assert verify_signature(BODY, signature_header(BODY, int(now) + 60, [SECRET]), SECRET, now=now)
    fresh = signature_header(BODY, int(now), [SECRET])
    assert not verify_signature(BODY.replace(b"issued", b"paid"), fresh, SECRET, now=now)
    assert not verify_signature(BODY, fresh, "whsec_other", now=now)
    assert not verify_signature(BODY, "garbage", SECRET, now=now)
    assert not verify_signature(BODY, f"t={int(now)}", SECRET, now=now)
    assert not verify_signature(BODY, "t=abc,v1=00", SECRET, now=now)


def test_rotation_header_carries_one_v1_per_secret() -> None:
    t = int(time.time())
    header = signature_header(BODY, t, ["whsec_new", "whsec_old"])
    assert header.count("v1=") == 2
    assert verify_signature(BODY, header, "whsec_new")
    assert verify_signature(BODY, header, "whsec_old")


def test_secret_format() -> None:
    secret = endpoint_secret_generate()
    assert secret.startswith("whsec_")
    assert len(secret) == len("whsec_") + 43  # 32 bytes, URL-safe base64 without padding
    assert secret != endpoint_secret_generate()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
    ],
)
def test_live_urls_to_private_addresses_are_refused(url, settings) -> None:
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    settings.WEBHOOK_ALLOWED_PRIVATE_CIDRS = []
    with pytest.raises(ValueError, match="public addresses"):
        validate_endpoint_url(url, livemode=True)
    # Sandbox endpoints may target them: integrators test against their own machine.
    validate_endpoint_url(url, livemode=False)


def test_public_address_passes_and_allow_list_exempts(settings) -> None:
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    settings.WEBHOOK_ALLOWED_PRIVATE_CIDRS = []
    target = resolve_target("https://93.184.215.14:8443/in?x=1", livemode=True)
    assert target.addresses == ("93.184.215.14",)
    assert target.host_header == "93.184.215.14:8443"
    assert target.path == "/in?x=1"
    settings.WEBHOOK_ALLOWED_PRIVATE_CIDRS = ["127.0.0.0/8"]
    validate_endpoint_url("http://127.0.0.1:9000/hook", livemode=True)
    settings.WEBHOOK_ALLOWED_PRIVATE_CIDRS = []
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["localhost"]
    validate_endpoint_url("http://localhost:9000/hook", livemode=True)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://example.com",
        "http:///nohost",
        "http://h:99999/",
    ],
)
def test_only_http_and_https_urls(url) -> None:
    with pytest.raises(UnsafeURL):
        validate_endpoint_url(url, livemode=False)


def test_basic_auth_in_url_becomes_a_header_not_a_host() -> None:
    target = resolve_target("http://user:p%40ss@127.0.0.1:8080/h", livemode=False)
    assert target.hostname == "127.0.0.1"
    assert target.authorization == "Basic dXNlcjpwQHNz"


def test_payload_is_deterministic(tenant_a) -> None:
    from webhooks.delivery import event_payload
    from webhooks.models import Event

    event = Event.objects.create(
        tenant=tenant_a.tenant,
        livemode=False,
        type="invoice.issued",
        data={"b": 1, "a": {"z": 2, "y": [1, "é"]}},
    )
    first = event_payload(event)
    again = event_payload(Event.objects.get(pk=event.pk))
    assert first == again
    parsed = json.loads(first)
    assert list(parsed) == ["id", "type", "created", "livemode", "data"]
    assert parsed["id"] == f"evt_{event.id.hex}"
    assert parsed["created"].endswith("Z")
    assert list(parsed["data"]) == ["a", "b"]
    assert parsed["livemode"] is False
