"""Reads of the hash chain; each takes the caller's ``scope``."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from archive.models import ChainCheck, ChainHead
from scell.tenancy import Scope, ScopedQuerySet


def chain_heads(*, scope: Scope) -> QuerySet[ChainHead]:
    """The caller's chains (its own and, without a sub-tenant in scope, its sub-tenants'), each with
    its last check's result and time annotated (``last_check_result``, ``last_check_at``)."""
    # ChainHead has the tenancy columns but not the scoped manager: the same scoping path applies.
    qs = ScopedQuerySet(model=ChainHead).scoped(scope)
    last = ChainCheck.objects.filter(chain_key=OuterRef("chain_key")).order_by("-started_at", "-id")
    return qs.annotate(
        last_check_result=Subquery(last.values("result")[:1]),
        last_check_at=Subquery(last.values("finished_at")[:1]),
        last_check_broken_seq=Subquery(last.values("first_broken_seq")[:1]),
    ).order_by("chain_key")
