"""Webhook signatures: ``X-Scell-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256("<t>.<raw body>")>``.

The timestamp is inside the signed string, so a captured request cannot be replayed later with a fresh
``t``; receivers refuse a ``t`` outside their tolerance. During a secret rotation the header carries one
``v1`` per valid secret, so a receiver holding either secret accepts the request.

``verify_signature`` is the function the documentation shows to integrators: it depends on the standard
library only, so it can be copied as is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def endpoint_secret_generate() -> str:
    """A new signing secret: ``whsec_`` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def compute_signature(payload: bytes, timestamp: int, secret: str) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, timestamp: int, secrets_: list[str]) -> str:
    """The header value for ``payload`` signed at ``timestamp`` with each of ``secrets_`` (current first)."""
    parts = [f"t={timestamp}"]
    parts += [f"v1={compute_signature(payload, timestamp, secret)}" for secret in secrets_ if secret]
    return ",".join(parts)


def verify_signature(
    payload: bytes, header: str, secret: str, tolerance: int = 300, now: float | None = None
) -> bool:
    """True when ``header`` (the X-Scell-Signature value) signs the raw request body ``payload`` with
    ``secret`` and its timestamp is within ``tolerance`` seconds of now (5 minutes: clock skew is
    tolerated, an old captured request is not). Verify the raw bytes as received, before any JSON
    parsing: re-serialised JSON does not have the same bytes."""
    timestamp = None
    candidates = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = compute_signature(payload, timestamp, secret)
    # Constant-time comparison: timing must not reveal how much of a forged signature was right.
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
