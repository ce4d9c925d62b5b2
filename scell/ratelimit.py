"""API rate limits, per client IP (middleware, before authentication) and per key (DRF throttle), counted
in Redis so every web process shares them.

A fixed one-minute window per identity: ``INCR`` on ``ratelimit:<kind>:<id>:<minute>`` (created with its
expiry by an ``add``, Redis ``SET NX``, on its first hit), so concurrent requests on several processes
count exactly. Over the limit, the answer is 429 with the error object and ``Retry-After`` (the seconds
to the next window). Limits come from settings at call time (``SCELL_RATE_LIMIT_PER_KEY``,
``SCELL_RATE_LIMIT_PER_IP`` per minute; 0 switches one off). Without Redis (the embedded default) the
counters live in the process's memory.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from scell.errors import error_body

WINDOW_SECONDS = 60
CACHE_ALIAS = "ratelimit"


def client_ip(request: Any) -> str:
    """The client's address: ``REMOTE_ADDR``, or the address the trusted proxies saw when Scell runs behind
    ``SCELL_TRUSTED_PROXIES`` of them (the last hops of ``X-Forwarded-For`` are theirs, so the one before is
    the client's; anything a client writes itself sits further left and is ignored)."""
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXIES
    if hops <= 0:
        return remote
    forwarded = [
        part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
    ]
    if len(forwarded) >= hops:
        return forwarded[-hops]
    return forwarded[0] if forwarded else remote


def _hit(kind: str, identity: str, limit: int, now: float) -> float | None:
    """Count one request; the seconds to wait when it is over the limit, else None."""
    window = int(now // WINDOW_SECONDS)
    key = f"ratelimit:{kind}:{identity}:{window}"
    cache = caches[CACHE_ALIAS]
    # One round trip in the common case (the window's counter exists); SET NX only for its first hit.
    try:
        count = cache.incr(key)
    except ValueError:
        count = 1 if cache.add(key, 1, timeout=WINDOW_SECONDS + 5) else cache.incr(key)
    if count > limit:
        return (window + 1) * WINDOW_SECONDS - now
    return None


def too_many_requests(wait: float) -> JsonResponse:
    body = error_body(
        type="rate_limit_error", code="rate_limited", message="Too many requests; retry after the delay."
    )
    response = JsonResponse(body, status=429)
    response["Retry-After"] = str(int(wait) + 1)
    return response


class IpRateLimitMiddleware:
    """Per client IP, on every API request, before authentication: a flood of wrong keys counts too."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.RATE_LIMIT_PER_IP
        if limit > 0 and request.path.startswith("/api/"):
            wait = _hit("ip", client_ip(request) or "unknown", limit, time.time())
            if wait is not None:
                return too_many_requests(wait)
        return self.get_response(request)


class KeyRateThrottle(BaseThrottle):
    """Per API key (or, for the dashboard's own calls, per user), once authenticated."""

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = settings.RATE_LIMIT_PER_KEY
        scope = request.auth
        if limit <= 0 or scope is None:
            return True
        api_key, user = getattr(scope, "api_key", None), getattr(scope, "user", None)
        if api_key is not None:
            identity = ("key", str(api_key.pk))
        elif user is not None:
            identity = ("user", str(user.pk))
        else:
            return True
        self.wait_seconds = _hit(*identity, limit, time.time())
        return self.wait_seconds is None

    def wait(self) -> float | None:
        return self.wait_seconds
