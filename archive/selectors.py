"""Reads of the hash chain; each takes the caller's ``scope``."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, QuerySet, Subquery

from archive.chain import chain_key_for
from archive.models import ChainCheck, ChainHead, Closure
from scell.tenancy import Scope, ScopedQuerySet

if TYPE_CHECKING:
    from archive.closures import ProofBundle
    from invoicing.models import Invoice


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


@dataclass(frozen=True)
class ChainStatus:
    """The state of the caller's chains: the tenant's archive status (set to compromised by a broken
    check, cleared only by support), its chains' heads and the latest check among them."""

    archive_status: str
    archive_status_label: str
    heads: list[ChainHead]
    last_check: ChainCheck | None
    broken: bool


def chain_checks(*, scope: Scope) -> QuerySet[ChainCheck]:
    """The health checks of the caller's chains (``archive.chain.chain_key_for``: the tenant's and its
    sub-tenants' in the caller's mode, or the one sub-tenant's in scope), newest first."""
    qs = ChainCheck.objects.filter(tenant=scope.tenant)
    if scope.sub_tenant is not None:
        key = chain_key_for(
            tenant_id=scope.tenant.pk, sub_tenant_id=scope.sub_tenant.pk, livemode=scope.livemode
        )
        qs = qs.filter(chain_key=key)
    else:
        mode = "live" if scope.livemode else "test"
        qs = qs.filter(chain_key__startswith=f"{scope.tenant.pk}/", chain_key__endswith=f"/{mode}")
    return qs.order_by("-started_at", "-id")


def chain_status(*, scope: Scope) -> ChainStatus:
    heads = list(chain_heads(scope=scope).select_related("sub_tenant"))
    last_check = chain_checks(scope=scope).first()
    # Read again: a check may have flagged the tenant since the scope was built.
    scope.tenant.refresh_from_db(fields=["archive_status"])
    return ChainStatus(
        archive_status=scope.tenant.archive_status,
        archive_status_label=scope.tenant.get_archive_status_display(),
        heads=heads,
        last_check=last_check,
        broken=any(h.last_check_result == ChainCheck.Result.BROKEN for h in heads),
    )


def archived_invoices(*, scope: Scope, number: str = "") -> QuerySet[Invoice]:
    """The caller's issued invoices and credit notes (the chained ones), newest first; ``number``
    narrows to numbers containing it."""
    from invoicing.models import Invoice

    qs = Invoice.objects.scoped(scope).filter(status=Invoice.Status.ISSUED).defer("cii_xml", "source_file")
    if number:
        qs = qs.filter(number__icontains=number.strip())
    return qs.order_by("-issued_at", "-pk")


@dataclass(frozen=True)
class InvoiceProof:
    """An invoice of the caller's and its proof bundle; ``bundle`` is None when the invoice has no chain
    entry (drafts are not chained)."""

    invoice: Invoice
    bundle: ProofBundle | None


def invoice_proof(*, scope: Scope, invoice_id: Any) -> InvoiceProof | None:
    """The proof of one invoice (API ``/archive/proofs/<id>`` and the dashboard's download); None when
    no invoice of the caller's tenant and mode has this id. Raises ``archive.closures.ClosureError`` when
    the entries no longer give the sealed root (the chain was tampered with after closing)."""
    from archive.closures import proof_bundle
    from invoicing.models import Invoice

    try:
        invoice = Invoice.objects.scoped(scope).filter(pk=invoice_id).first()
    except (ValidationError, ValueError):  # not a UUID: simply not found
        return None
    if invoice is None:
        return None
    return InvoiceProof(invoice=invoice, bundle=proof_bundle(scope=scope, invoice=invoice))


def closure_record(*, closure: Closure) -> dict[str, Any]:
    """A closure as a self-contained JSON document: its Merkle root and every leaf (entry hash) in seq
    order, so that anyone can recompute the root the ``.ots`` proof timestamps."""
    from archive.closures import closure_leaves

    return {
        "chain": closure.chain_key,
        "livemode": closure.livemode,
        "day": closure.day.isoformat(),
        "first_seq": closure.first_seq,
        "last_seq": closure.last_seq,
        "leaf_count": closure.leaf_count,
        "root": bytes(closure.root).hex(),
        "merkle": closure.meta.get("merkle", ""),
        "timezone": closure.meta.get("timezone", ""),
        "status": closure.ots_status,
        "bitcoin_block": closure.bitcoin_block,
        "tsa_token": base64.b64encode(bytes(closure.tsa_token)).decode() if closure.tsa_token else None,
        "created_at": closure.created_at.isoformat(),
        "leaves": [leaf.hex() for leaf in closure_leaves(closure)],
    }
