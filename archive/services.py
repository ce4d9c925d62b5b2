"""Writes of the hash chain's health check. The chain itself is written by the database (migration
0002) or, on SQLite, by ``archive.chain``; nothing here appends a link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from archive.chain import ChainCheckResult, verify_chain
from archive.models import ChainCheck, ChainHead
from archive.selectors import chain_heads
from scell.models import Tenant
from scell.tenancy import Scope
from webhooks.services import event_emit

CHAIN_BROKEN_EVENT = "archive.chain_broken"


@dataclass(frozen=True)
class ChainCheckRun:
    """One chain checked: the stored ``ChainCheck`` row and the verifier's result."""

    check: ChainCheck
    result: ChainCheckResult


def chain_check(
    *,
    tenant: Tenant | None = None,
    scope: Scope | None = None,
    chain_keys: list[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[ChainCheckRun]:
    """Verify every chain (or one tenant's, or the chains a scope sees, or the named ones), record one
    ``ChainCheck`` per chain and raise the alarm on a break.

    Each chain is verified outside any long transaction (a chain can be millions of links); only the
    outcome is written atomically."""
    heads: QuerySet[ChainHead]
    if scope is not None:
        heads = chain_heads(scope=scope)
    else:
        heads = ChainHead.objects.order_by("chain_key")
        if tenant is not None:
            heads = heads.filter(tenant=tenant)
    if chain_keys is not None:
        heads = heads.filter(chain_key__in=chain_keys)
    runs = []
    # Listed up front (one row per tenant, sub-tenant and mode): no cursor held open across checks.
    for head in list(heads.select_related("tenant", "sub_tenant")):
        started_at = timezone.now()
        report = None
        if progress is not None:
            key = head.chain_key

            def report(done: int, total: int, key: str = key) -> None:
                progress(key, done, total)

        result = verify_chain(head.chain_key, progress=report)
        runs.append(
            ChainCheckRun(
                check=_chain_check_record(head=head, result=result, started_at=started_at), result=result
            )
        )
    return runs


def _chain_check_record(*, head: ChainHead, result: ChainCheckResult, started_at) -> ChainCheck:
    with transaction.atomic():
        previous = ChainCheck.objects.filter(chain_key=head.chain_key).order_by("-started_at", "-id").first()
        check = ChainCheck.objects.create(
            chain_key=head.chain_key,
            tenant=head.tenant,
            started_at=started_at,
            finished_at=timezone.now(),
            entries_checked=result.entries_checked,
            result=ChainCheck.Result.OK if result.ok else ChainCheck.Result.BROKEN,
            first_broken_seq=result.first_broken_seq,
            message=result.reason,
        )
        if result.ok:
            # A chain found intact again does not make the tenant healthy: support decides that, after
            # looking at what broke (the broken ChainCheck rows stay).
            return check
        Tenant.objects.filter(pk=head.tenant_id).exclude(
            archive_status=Tenant.ArchiveStatus.COMPROMISED
        ).update(archive_status=Tenant.ArchiveStatus.COMPROMISED)
        # The daily check finds a break again every day; the tenant is told once per distinct break.
        already_told = (
            previous is not None
            and previous.result == ChainCheck.Result.BROKEN
            and previous.first_broken_seq == result.first_broken_seq
            and previous.message == result.reason
        )
        if not already_told:
            event_emit(
                scope=Scope(tenant=head.tenant, livemode=head.livemode, sub_tenant=head.sub_tenant),
                type=CHAIN_BROKEN_EVENT,
                data={"chain_key": head.chain_key, "seq": result.first_broken_seq, "reason": result.reason},
            )
    return check
