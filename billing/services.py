"""Credit writes. ``credits_charge`` is the one function other apps call inside their own transaction.

Every movement is an immutable ``LedgerEntry``; the cached ``CreditAccount.balance`` moves in the same
transaction, under the account's row lock, so it always equals the ledger's sum (``ledger_balance``).
Locks are taken in one order everywhere: the account, then its lots.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing.models import CreditAccount, CreditLot, LedgerEntry, Purchase
from scell.errors import Conflict, PaymentRequired, ScellError, UnprocessableEntity
from scell.models import SubTenant, Tenant, User
from scell.tenancy import Scope
from webhooks.services import event_emit

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

OPERATIONS = {
    "invoice_issue": "PRICE_INVOICE_ISSUE",
    "signature_signer": "PRICE_SIGNATURE_SIGNER",
}


def price_of(operation: str) -> Decimal:
    return Decimal(getattr(settings, OPERATIONS[operation])).quantize(CENT)


def pack_catalogue() -> list[Decimal]:
    return sorted(Decimal(p).quantize(CENT) for p in settings.CREDIT_PACKS)


def _money(value: Decimal | str | int) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _locked_account(tenant: Tenant) -> CreditAccount:
    CreditAccount.objects.get_or_create(
        tenant=tenant, defaults={"low_balance_threshold": Decimal(settings.CREDIT_LOW_BALANCE_DEFAULT)}
    )
    return CreditAccount.objects.select_for_update().get(tenant=tenant)


def _live_scope(tenant: Tenant) -> Scope:
    # Credits are real money: their events belong to live mode.
    return Scope(tenant=tenant, livemode=True)


def _add_lot(
    account: CreditAccount,
    *,
    amount: Decimal,
    kind: str,
    source: str,
    now: datetime,
    reference: str = "",
    reason: str = "",
    created_by: User | None = None,
) -> CreditLot:
    lot = CreditLot.objects.create(
        tenant=account.tenant,
        amount=amount,
        remaining=amount,
        source=source,
        reference=reference,
        created_at=now,
        expires_at=now + relativedelta(months=settings.CREDIT_LOT_VALIDITY_MONTHS),
    )
    LedgerEntry.objects.create(
        tenant=account.tenant,
        kind=kind,
        amount=amount,
        lot=lot,
        reference=reference,
        reason=reason,
        created_by=created_by,
        created_at=now,
    )
    account.balance += amount
    if account.balance >= account.low_balance_threshold:
        account.low_balance_alerted_at = None
    account.save(update_fields=["balance", "low_balance_alerted_at", "updated_at"])
    return lot


def _draw(
    account: CreditAccount,
    *,
    total: Decimal,
    kind: str,
    now: datetime,
    operation: str = "",
    quantity: int = 1,
    unit_price: Decimal | None = None,
    reference: str = "",
    reason: str = "",
    sub_tenant: SubTenant | None = None,
    created_by: User | None = None,
) -> list[LedgerEntry]:
    """Take ``total`` from the live lots, the one that expires first first, or raise 402."""
    lots = list(
        CreditLot.objects.select_for_update()
        .filter(tenant=account.tenant, remaining__gt=0, expires_at__gt=now, expired_at__isnull=True)
        .order_by("expires_at", "created_at")
    )
    available = sum((lot.remaining for lot in lots), ZERO)
    if available < total:
        raise PaymentRequired(
            f"Not enough credits: this operation costs {total} EUR, the balance is {available} EUR.",
            details=[
                {"field": "balance", "message": str(available)},
                {"field": "price", "message": str(total)},
            ],
        )
    entries = []
    due = total
    for lot in lots:
        if due == 0:
            break
        take = min(lot.remaining, due)
        lot.remaining -= take
        lot.save(update_fields=["remaining"])
        entries.append(
            LedgerEntry(
                tenant=account.tenant,
                sub_tenant=sub_tenant,
                kind=kind,
                amount=-take,
                lot=lot,
                operation=operation,
                quantity=quantity,
                unit_price=unit_price,
                reference=reference,
                reason=reason,
                created_by=created_by,
                created_at=now,
            )
        )
        due -= take
    LedgerEntry.objects.bulk_create(entries)
    previous = account.balance
    account.balance -= total
    account.save(update_fields=["balance", "updated_at"])
    _maybe_alert_low_balance(account, previous)
    return entries


def _maybe_alert_low_balance(account: CreditAccount, previous: Decimal) -> None:
    """One ``credits.low_balance`` per crossing of the threshold (reset when credits are added)."""
    if account.balance < account.low_balance_threshold and account.low_balance_alerted_at is None:
        account.low_balance_alerted_at = timezone.now()
        account.save(update_fields=["low_balance_alerted_at"])
        event_emit(
            scope=_live_scope(account.tenant),
            type="credits.low_balance",
            data={
                "balance": str(account.balance),
                "previous_balance": str(previous),
                "threshold": str(account.low_balance_threshold),
            },
        )


@transaction.atomic
def credits_grant_pack(
    *,
    tenant: Tenant,
    amount: Decimal,
    source: str = "pack",
    reference: str = "",
    reason: str = "",
    created_by: User | None = None,
    now: datetime | None = None,
) -> CreditLot:
    """Credit a pack (at least ``CREDIT_PACK_MINIMUM``) valid ``CREDIT_LOT_VALIDITY_MONTHS`` from now."""
    amount = _money(amount)
    minimum = Decimal(settings.CREDIT_PACK_MINIMUM)
    if amount < minimum:
        raise UnprocessableEntity(
            f"A credit pack is at least {minimum} EUR.",
            code="pack_below_minimum",
            details=[{"field": "amount", "message": f"minimum {minimum}"}],
        )
    account = _locked_account(tenant)
    return _add_lot(
        account,
        amount=amount,
        kind=LedgerEntry.Kind.PURCHASE,
        source=source,
        now=now or timezone.now(),
        reference=reference,
        reason=reason,
        created_by=created_by,
    )


@transaction.atomic
def credits_adjust(
    *, tenant: Tenant, amount: Decimal, reason: str, created_by: User | None
) -> list[LedgerEntry]:
    """A manual adjustment by support: positive adds a lot, negative takes from the lots. The reason is
    mandatory and kept with the entry, with who made it."""
    amount = _money(amount)
    if not reason.strip():
        raise UnprocessableEntity(
            "An adjustment needs a reason.", details=[{"field": "reason", "message": "required"}]
        )
    if amount == 0:
        raise UnprocessableEntity(
            "An adjustment cannot be zero.", details=[{"field": "amount", "message": "zero"}]
        )
    account = _locked_account(tenant)
    now = timezone.now()
    if amount > 0:
        lot = _add_lot(
            account,
            amount=amount,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            source="adjustment",
            now=now,
            reason=reason,
            created_by=created_by,
        )
        return list(lot.entries.all())
    return _draw(
        account,
        total=-amount,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        now=now,
        reason=reason,
        created_by=created_by,
    )


@dataclass(frozen=True)
class Charge:
    """What one operation cost; ``entries`` is empty for sandbox and platform operations."""

    amount: Decimal
    entries: tuple[LedgerEntry, ...]


def credits_charge(
    *,
    tenant: Tenant,
    livemode: bool,
    operation: str,
    quantity: int = 1,
    reference: str = "",
    sub_tenant: SubTenant | None = None,
) -> Charge:
    """Spend credits for a live operation, atomically with the caller's transaction, or raise 402.

    Sandbox operations cost nothing and write nothing; nor do Scell's own (platform) operations. The
    price is read from configuration and recorded on each spend entry."""
    if not livemode or tenant.is_platform:
        return Charge(amount=ZERO, entries=())
    unit_price = price_of(operation)
    total = (unit_price * quantity).quantize(CENT)
    with transaction.atomic():
        account = _locked_account(tenant)
        entries = _draw(
            account,
            total=total,
            kind=LedgerEntry.Kind.SPEND,
            now=timezone.now(),
            operation=operation,
            quantity=quantity,
            unit_price=unit_price,
            reference=reference,
            sub_tenant=sub_tenant,
        )
    return Charge(amount=total, entries=tuple(entries))


@transaction.atomic
def credits_refund(*, tenant: Tenant, reference: str, operation: str, reason: str) -> Decimal:
    """Give back what was spent for ``reference`` (an operation that could not be delivered). The credits
    go back to their lot while it is valid, or to a new lot otherwise. Refunding twice refunds nothing."""
    account = _locked_account(tenant)
    spent = (
        LedgerEntry.objects.filter(
            tenant=tenant, kind=LedgerEntry.Kind.SPEND, operation=operation, reference=reference
        )
        .select_related("lot")
        .order_by("created_at", "id")
    )
    # Refund entries are positive: what was already given back for this reference.
    refunded = (
        LedgerEntry.objects.filter(
            tenant=tenant, kind=LedgerEntry.Kind.REFUND, operation=operation, reference=reference
        ).aggregate(s=Sum("amount"))["s"]
        or ZERO
    )
    due = -sum((e.amount for e in spent), ZERO) - refunded
    if due <= 0:
        return ZERO
    now = timezone.now()
    total = ZERO
    already = refunded  # earlier refunds covered the oldest spends: skip those
    for entry in spent:
        taken = -entry.amount
        skipped = min(taken, already)
        already -= skipped
        give = min(taken - skipped, due - total)
        if give <= 0:
            if total >= due:
                break
            continue
        lot = CreditLot.objects.select_for_update().get(pk=entry.lot_id)
        if lot.expired_at is None and lot.expires_at > now:
            lot.remaining += give
            lot.save(update_fields=["remaining"])
        else:
            lot = CreditLot.objects.create(
                tenant=tenant,
                amount=give,
                remaining=give,
                source="refund",
                reference=reference,
                created_at=now,
                expires_at=now + relativedelta(months=settings.CREDIT_LOT_VALIDITY_MONTHS),
            )
        LedgerEntry.objects.create(
            tenant=tenant,
            kind=LedgerEntry.Kind.REFUND,
            amount=give,
            lot=lot,
            operation=operation,
            reference=reference,
            reason=reason,
            created_at=now,
            sub_tenant=entry.sub_tenant,
        )
        total += give
    account.balance += total
    if account.balance >= account.low_balance_threshold:
        account.low_balance_alerted_at = None
    account.save(update_fields=["balance", "low_balance_alerted_at", "updated_at"])
    return total


def credits_expire(*, now: datetime | None = None) -> list[CreditLot]:
    """Write off what is left of every lot past its expiry, one tenant at a time (ledger entry
    ``expiry``, event ``credits.expired``). Safe to run twice or concurrently: a lot is expired once."""
    now = now or timezone.now()
    tenants = (
        CreditLot.objects.filter(expires_at__lte=now, expired_at__isnull=True)
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    expired: list[CreditLot] = []
    for tenant_id in list(tenants):
        with transaction.atomic():
            tenant = Tenant.objects.get(pk=tenant_id)
            account = _locked_account(tenant)
            lots = list(
                CreditLot.objects.select_for_update().filter(
                    tenant=tenant, expires_at__lte=now, expired_at__isnull=True
                )
            )
            written_off = ZERO
            for lot in lots:
                left = lot.remaining
                if left > 0:
                    LedgerEntry.objects.create(
                        tenant=tenant,
                        kind=LedgerEntry.Kind.EXPIRY,
                        amount=-left,
                        lot=lot,
                        reason=f"lot of {lot.created_at:%Y-%m-%d} expired on {lot.expires_at:%Y-%m-%d}",
                        created_at=now,
                    )
                lot.remaining = ZERO
                lot.expired_at = now
                lot.save(update_fields=["remaining", "expired_at"])
                written_off += left
                expired.append(lot)
            if written_off:
                previous = account.balance
                account.balance -= written_off
                account.save(update_fields=["balance", "updated_at"])
                event_emit(
                    scope=_live_scope(tenant),
                    type="credits.expired",
                    data={
                        "amount": str(written_off),
                        "lots": [str(lot.id) for lot in lots],
                        "balance": str(account.balance),
                    },
                )
                _maybe_alert_low_balance(account, previous)
    return expired


def ledger_balance(*, tenant: Tenant) -> Decimal:
    """The balance derived from the ledger alone (the cached balance must always equal it)."""
    total = LedgerEntry.objects.filter(tenant=tenant).aggregate(s=Sum("amount"))["s"]
    return (total or ZERO).quantize(CENT)


# --- Purchases ------------------------------------------------------------------------------------


def purchase_start(
    *,
    scope: Scope,
    amount: Decimal,
    success_url: str,
    cancel_url: str,
    card: str = "",
    created_by: User | None = None,
) -> Purchase:
    """Start buying a pack of the catalogue. Instant providers (sandbox) settle at once; Stripe returns a
    hosted checkout URL and settles on its webhook."""
    from billing.providers import get_provider

    amount = _money(amount)
    catalogue = pack_catalogue()
    if amount not in catalogue:
        raise UnprocessableEntity(
            f"Packs are {', '.join(str(p) for p in catalogue)} EUR.",
            code="unknown_pack",
            details=[{"field": "amount", "message": f"one of {[str(p) for p in catalogue]}"}],
        )
    vat_rate = Decimal(settings.CREDIT_PACK_VAT_RATE)
    provider = get_provider()
    purchase = Purchase.objects.create(
        tenant=scope.tenant,
        amount=amount,
        vat_rate=vat_rate,
        amount_with_vat=_money(amount + amount * vat_rate / 100),
        provider=provider.name,
        created_by=created_by,
    )
    try:
        result = provider.start(purchase, success_url=success_url, cancel_url=cancel_url, card=card)
    except Exception as exc:
        logger.exception("payment provider %s failed to start purchase %s", provider.name, purchase.id)
        Purchase.objects.filter(pk=purchase.pk).update(
            status=Purchase.Status.FAILED, failure_reason=f"provider_error: {type(exc).__name__}"
        )
        raise ScellError(
            "The payment provider is unavailable; nothing was charged. Try again later.",
            status_code=502,
            type="api_error",
            code="payment_provider_unavailable",
        ) from exc
    Purchase.objects.filter(pk=purchase.pk).update(
        provider_ref=result.provider_ref, checkout_url=result.checkout_url
    )
    purchase.provider_ref, purchase.checkout_url = result.provider_ref, result.checkout_url
    if result.status in {"paid", "failed"}:
        purchase = purchase_confirm(
            provider=provider.name,
            provider_ref=result.provider_ref,
            paid=result.status == "paid",
            failure_reason=result.failure_reason,
        )
    return purchase


@transaction.atomic
def purchase_confirm(
    *,
    provider: str,
    provider_ref: str,
    paid: bool,
    amount_with_vat: Decimal | None = None,
    failure_reason: str = "",
) -> Purchase:
    """Settle a purchase from the provider's answer. The purchase row is locked and a paid one is never
    credited again, so a confirmation delivered twice (webhook retries) credits the pack once."""
    purchase = (
        Purchase.objects.select_for_update()
        .select_related("tenant")
        .filter(provider=provider, provider_ref=provider_ref)
        .first()
    )
    if purchase is None:
        raise UnprocessableEntity("Unknown purchase.", code="unknown_purchase")
    if purchase.status == Purchase.Status.PAID:
        return purchase
    if not paid:
        purchase.status = Purchase.Status.FAILED
        purchase.failure_reason = failure_reason or "payment_failed"
        purchase.save(update_fields=["status", "failure_reason"])
        return purchase
    if amount_with_vat is not None and _money(amount_with_vat) != purchase.amount_with_vat:
        raise Conflict(
            f"Paid {amount_with_vat} EUR for a pack of {purchase.amount_with_vat} EUR.",
            code="amount_mismatch",
        )
    now = timezone.now()
    account = _locked_account(purchase.tenant)
    lot = _add_lot(
        account,
        amount=purchase.amount,
        kind=LedgerEntry.Kind.PURCHASE,
        source="pack",
        now=now,
        reference=f"purchase:{purchase.id}",
        created_by=purchase.created_by,
    )
    purchase.status = Purchase.Status.PAID
    purchase.paid_at = now
    purchase.lot = lot
    purchase.failure_reason = ""
    purchase.save(update_fields=["status", "paid_at", "lot", "failure_reason"])
    scope = _live_scope(purchase.tenant)
    event_emit(
        scope=scope,
        type="payment.received",
        data={
            "object": "credit_purchase",
            "purchase": str(purchase.id),
            "amount": str(purchase.amount_with_vat),
            "currency": "EUR",
            "provider": provider,
        },
    )
    event_emit(
        scope=scope,
        type="credits.purchased",
        data={
            "purchase": str(purchase.id),
            "amount": str(purchase.amount),
            "lot": str(lot.id),
            "expires_at": lot.expires_at.isoformat(),
            "balance": str(account.balance),
        },
    )
    purchase_id = str(purchase.id)
    transaction.on_commit(lambda: _enqueue_pack_invoice(purchase_id))
    return purchase


def _enqueue_pack_invoice(purchase_id: str) -> None:
    from billing.tasks import invoice_pack_purchase

    invoice_pack_purchase.send(purchase_id)


def purchase_invoice(*, purchase: Purchase) -> object | None:
    """Scell invoices every pack it sells through its own invoicing service (Factur-X, live), from the
    platform tenant to the buyer. Idempotent. Without a platform tenant configured, nothing is issued
    (logged): a self-hosted Scell that does not sell credits has no seller identity."""
    from invoicing.services import invoice_create_draft, invoice_issue

    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().select_related("tenant").get(pk=purchase.pk)
        if purchase.invoice_id or purchase.status != Purchase.Status.PAID:
            return purchase.invoice
        platform = Tenant.objects.filter(is_platform=True, is_active=True).first()
        if platform is None:
            logger.warning("No platform tenant: purchase %s is not invoiced", purchase.id)
            return None
        buyer = purchase.tenant
        scope = Scope(tenant=platform, livemode=True)
        draft = invoice_create_draft(
            scope=scope,
            data={
                "type": "invoice",
                "format": "facturx",
                "profile": "en16931",
                "currency": "EUR",
                "operation_category": "services",
                "buyer": {
                    "name": buyer.legal_name,
                    "siren": buyer.siren,
                    "siret": buyer.siret,
                    "vat_id": buyer.vat_id,
                    "email": buyer.email,
                    "address": {
                        "line1": buyer.address_line1,
                        "line2": buyer.address_line2,
                        "postcode": buyer.postcode,
                        "city": buyer.city,
                        "country": buyer.country or "FR",
                    },
                },
                "lines": [
                    {
                        "description": f"Crédits Scell – pack {purchase.amount} EUR, valables 12 mois",
                        "quantity": Decimal("1"),
                        "unit_code": "C62",
                        "unit_price": purchase.amount,
                        "vat_category": "S",
                        "vat_rate": purchase.vat_rate,
                    }
                ],
                # Paid by card at checkout: nothing is left to pay (BT-113 = BT-112).
                "payment": {"means_code": "54", "terms": "Payé par carte à la commande."},
                "prepaid_amount": purchase.amount_with_vat,
                "purchase_order_ref": str(purchase.id)[:100],
            },
        )
        invoice = invoice_issue(scope=scope, invoice=draft)
        purchase.invoice = invoice
        purchase.save(update_fields=["invoice"])
        return invoice
