"""Reads of signature requests; every one goes through the caller's scope."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from scell.tenancy import Scope
from signatures.models import SignatureRequest, Signer


def signature_request_list(*, scope: Scope) -> QuerySet[SignatureRequest]:
    return (
        SignatureRequest.objects.scoped(scope)
        .prefetch_related(Prefetch("signers", queryset=Signer.objects.order_by("position")))
        .order_by("-created_at", "-id")
    )


def signature_request_get(*, scope: Scope, pk: Any) -> SignatureRequest:
    return signature_request_list(scope=scope).get(pk=pk)


def signature_requests_waiting(*, scope: Scope) -> QuerySet[SignatureRequest]:
    """Requests still waiting for (some of) their signers, the oldest deadline first."""
    return (
        SignatureRequest.objects.scoped(scope)
        .filter(status__in=SignatureRequest.OPEN)
        .order_by("expires_at", "created_at")
    )
