"""``Idempotency-Key`` on POST, for every app (API.md): the same key with the same body replays the
first answer; with another body it is 409.

Only successful (2xx) answers are kept: after a 4xx or 5xx the key is free again, so a client can retry
once it has fixed the body or topped up its credits. A key whose first request is still running answers
409 ``idempotency_in_progress`` instead of running the operation twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.response import Response

from scell.errors import Conflict, ScellError
from scell.models import IdempotencyRecord
from scell.tenancy import Scope

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A first request that has not finished after this long is taken to have died with its worker.
STALE_AFTER = timedelta(minutes=2)


class Replay(Exception):
    """Raised to short-circuit a view with the stored answer."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


@dataclass
class Claim:
    record: IdempotencyRecord


def fingerprint(request: HttpRequest) -> str:
    body = request.body
    if request.content_type == "application/json":
        # Key order and white space do not make a different request.
        with contextlib.suppress(ValueError):
            body = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.path.encode() + b"\n")
    digest.update(body)
    return digest.hexdigest()


def _expired(record: IdempotencyRecord) -> bool:
    return record.created_at < timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)


def claim(*, scope: Scope, key: str, request: HttpRequest) -> Claim:
    """Reserve ``key`` for this request, or raise ``Replay``/``Conflict``."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ScellError(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.",
            code="invalid_idempotency_key",
        )
    fp = fingerprint(request)
    for _attempt in range(3):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    tenant=scope.tenant,
                    livemode=scope.livemode,
                    key=key,
                    fingerprint=fp,
                    method=request.method,
                    path=request.path[:500],
                )
            return Claim(record)
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(
                tenant=scope.tenant, livemode=scope.livemode, key=key
            ).first()
            if existing is None:
                continue  # released between our insert and our read: try again
            in_flight_stale = (
                existing.completed_at is None and existing.created_at < timezone.now() - STALE_AFTER
            )
            if _expired(existing) or in_flight_stale:
                IdempotencyRecord.objects.filter(pk=existing.pk).delete()
                continue
            if existing.fingerprint != fp:
                raise Conflict(
                    f"This {HEADER} was already used with a different request.",
                    code="idempotency_key_reused",
                ) from None
            if existing.completed_at is None:
                raise Conflict(
                    f"A request with this {HEADER} is still being processed.",
                    code="idempotency_in_progress",
                ) from None
            # A plain HttpResponse: DRF must not render it again, these are the bytes first sent.
            response = HttpResponse(
                bytes(existing.response_body or b""),
                status=existing.status_code,
                content_type=existing.content_type or "application/json",
            )
            response["Idempotent-Replayed"] = "true"
            raise Replay(response) from None
    raise Conflict(f"Could not reserve this {HEADER}; retry.", code="idempotency_in_progress")


def complete(claim_: Claim, response: Response) -> None:
    """Keep a 2xx answer for replay; free the key after any other outcome."""
    record = claim_.record
    if 200 <= response.status_code < 300:
        if not response.is_rendered:
            response.render()
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            status_code=response.status_code,
            response_body=response.content,
            content_type=response.get("Content-Type", "application/json"),
            completed_at=timezone.now(),
        )
    else:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
