"""Lots live 12 months: the remainder of an expired lot is written off once (ledger entry, event), an
expired lot is never spent, spending takes the lot that expires first, and the low-balance alert fires
once per crossing of the threshold."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.utils import timezone

from billing.models import CreditAccount, CreditLot, LedgerEntry
from billing.services import (
    credits_adjust,
    credits_charge,
    credits_expire,
    credits_grant_pack,
    credits_refund,
    ledger_balance,
)
from billing.tasks import expire_credit_lots
from scell.errors import PaymentRequired
from webhooks.models import Event

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)


def balance_of(tenant) -> Decimal:
    return CreditAccount.objects.get(tenant=tenant).balance


def events(tenant, type: str) -> list[Event]:
    return list(Event.objects.filter(tenant=tenant, type=type).order_by("created_at"))


def assert_consistent(tenant) -> None:
    account = CreditAccount.objects.get(tenant=tenant)
    assert account.balance >= 0
    assert account.balance == ledger_balance(tenant=tenant)
    remaining = sum((lot.remaining for lot in CreditLot.objects.filter(tenant=tenant)), Decimal("0.00"))
    assert remaining == account.balance


def spend(tenant, operation: str = "invoice_issue", quantity: int = 1, reference: str = ""):
    return credits_charge(
        tenant=tenant, livemode=True, operation=operation, quantity=quantity, reference=reference
    )


# --- Write-off -------------------------------------------------------------------------------------


def test_expiry_writes_off_the_remainder_once(tenant_a) -> None:
    tenant = tenant_a.tenant
    with time_machine.travel(START, tick=False):
        lot = credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))
        assert lot.expires_at == START + relativedelta(months=12)
        spend(tenant, "signature_signer", quantity=5, reference="sig-1")  # 6.00
    assert balance_of(tenant) == Decimal("44.00")

    # The day before the end of its 12 months, nothing expires.
    with time_machine.travel(START + relativedelta(months=12) - dt.timedelta(days=1), tick=False):
        assert credits_expire() == []
    assert balance_of(tenant) == Decimal("44.00")

    later = START + relativedelta(months=12, days=1)
    with time_machine.travel(later, tick=False):
        expired = credits_expire()
    assert [x.pk for x in expired] == [lot.pk]
    lot.refresh_from_db()
    assert lot.remaining == Decimal("0.00")
    assert lot.expired_at == later
    entry = LedgerEntry.objects.get(tenant=tenant, kind=LedgerEntry.Kind.EXPIRY)
    assert entry.amount == Decimal("-44.00")
    assert entry.lot_id == lot.pk
    assert entry.created_at == later
    assert entry.reason
    assert balance_of(tenant) == Decimal("0.00")
    assert_consistent(tenant)

    (event,) = events(tenant, "credits.expired")
    assert event.livemode is True
    assert event.data["amount"] == "44.00"
    assert event.data["lots"] == [str(lot.pk)]
    assert event.data["balance"] == "0.00"

    # Running again (the next day's cron, or a retry) changes nothing.
    entries = LedgerEntry.objects.count()
    with time_machine.travel(later + dt.timedelta(days=1), tick=False):
        assert credits_expire() == []
    assert LedgerEntry.objects.count() == entries
    assert len(events(tenant, "credits.expired")) == 1
    lot.refresh_from_db()
    assert lot.expired_at == later
    assert_consistent(tenant)


def test_expiry_only_touches_expired_lots_and_each_tenant_gets_its_event(tenant_a, tenant_b) -> None:
    now = timezone.now()
    old_a = credits_grant_pack(
        tenant=tenant_a.tenant, amount=Decimal("50.00"), now=now - relativedelta(months=13)
    )
    fresh_a = credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("100.00"))
    old_b = credits_grant_pack(
        tenant=tenant_b.tenant, amount=Decimal("250.00"), now=now - relativedelta(months=12, days=1)
    )
    expired = credits_expire()
    assert {lot.pk for lot in expired} == {old_a.pk, old_b.pk}
    fresh_a.refresh_from_db()
    assert fresh_a.expired_at is None
    assert fresh_a.remaining == Decimal("100.00")
    assert balance_of(tenant_a.tenant) == Decimal("100.00")
    assert balance_of(tenant_b.tenant) == Decimal("0.00")
    assert [e.data["amount"] for e in events(tenant_a.tenant, "credits.expired")] == ["50.00"]
    assert [e.data["amount"] for e in events(tenant_b.tenant, "credits.expired")] == ["250.00"]
    assert_consistent(tenant_a.tenant)
    assert_consistent(tenant_b.tenant)


def test_a_fully_spent_lot_expires_without_entry_or_event(tenant_a) -> None:
    tenant = tenant_a.tenant
    with time_machine.travel(START, tick=False):
        lot = credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))
        credits_adjust(tenant=tenant, amount=Decimal("-50.00"), reason="test: empty the lot", created_by=None)
    with time_machine.travel(START + relativedelta(months=13), tick=False):
        assert [x.pk for x in credits_expire()] == [lot.pk]
    lot.refresh_from_db()
    assert lot.expired_at is not None
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.EXPIRY).exists()
    assert not events(tenant, "credits.expired")
    assert_consistent(tenant)


def test_the_cron_actor_expires_lots(tenant_a) -> None:
    credits_grant_pack(
        tenant=tenant_a.tenant, amount=Decimal("50.00"), now=timezone.now() - relativedelta(months=13)
    )
    expire_credit_lots()  # the actor's function, run inline
    assert balance_of(tenant_a.tenant) == Decimal("0.00")
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.EXPIRY).count() == 1
    assert_consistent(tenant_a.tenant)


def test_expiry_crossing_the_threshold_alerts_low_balance(tenant_a) -> None:
    credits_grant_pack(
        tenant=tenant_a.tenant, amount=Decimal("50.00"), now=timezone.now() - relativedelta(months=13)
    )
    credits_expire()
    (alert,) = events(tenant_a.tenant, "credits.low_balance")
    assert alert.data["balance"] == "0.00"
    assert alert.data["previous_balance"] == "50.00"


# --- An expired lot is never spent ----------------------------------------------------------------


def test_expired_but_not_yet_written_off_lot_is_never_spent(tenant_a) -> None:
    tenant = tenant_a.tenant
    old = credits_grant_pack(
        tenant=tenant, amount=Decimal("50.00"), now=timezone.now() - relativedelta(months=12, days=1)
    )
    # The cron has not run yet: the lot is past its date but still holds its remainder.
    with pytest.raises(PaymentRequired) as exc:
        spend(tenant, reference="inv-1")
    assert exc.value.status_code == 402
    assert exc.value.error_code == "insufficient_credits"
    details = {d["field"]: d["message"] for d in exc.value.details}
    assert details == {"balance": "0.00", "price": "0.04"}
    old.refresh_from_db()
    assert old.remaining == Decimal("50.00")
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SPEND).exists()

    fresh = credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))
    charge = spend(tenant, reference="inv-2")
    assert [e.lot_id for e in charge.entries] == [fresh.pk]
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.remaining == Decimal("50.00")
    assert fresh.remaining == Decimal("49.96")

    credits_expire()
    old.refresh_from_db()
    assert old.remaining == Decimal("0.00")
    assert balance_of(tenant) == Decimal("49.96")
    assert_consistent(tenant)


def test_only_written_off_credit_left_is_402(tenant_a) -> None:
    credits_grant_pack(
        tenant=tenant_a.tenant, amount=Decimal("50.00"), now=timezone.now() - relativedelta(months=13)
    )
    credits_expire()
    with pytest.raises(PaymentRequired):
        spend(tenant_a.tenant, "signature_signer")
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SPEND).exists()


def test_refund_after_the_lot_expired_goes_to_a_new_valid_lot(tenant_a) -> None:
    tenant = tenant_a.tenant
    with time_machine.travel(START, tick=False):
        lot = credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))
        spend(tenant, "signature_signer", quantity=3, reference="sig-9")
    later = START + relativedelta(months=12, days=2)
    with time_machine.travel(later, tick=False):
        credits_expire()
        assert balance_of(tenant) == Decimal("0.00")
        refunded = credits_refund(
            tenant=tenant, reference="sig-9", operation="signature_signer", reason="SMS not delivered"
        )
    assert refunded == Decimal("3.60")
    lot.refresh_from_db()
    assert lot.remaining == Decimal("0.00")
    new = CreditLot.objects.get(tenant=tenant, source="refund")
    assert new.remaining == Decimal("3.60")
    assert new.expires_at == later + relativedelta(months=12)
    assert balance_of(tenant) == Decimal("3.60")
    assert_consistent(tenant)


# --- FIFO by expiry ---------------------------------------------------------------------------------


def test_spending_takes_the_lot_expiring_first_then_the_next(tenant_a, settings) -> None:
    tenant = tenant_a.tenant
    # Created first but expiring last: creation order must not matter, only the expiry date.
    settings.CREDIT_LOT_VALIDITY_MONTHS = 11
    late = credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))
    settings.CREDIT_LOT_VALIDITY_MONTHS = 1
    soon = credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))
    assert soon.expires_at < late.expires_at

    first = spend(tenant, reference="inv-1")
    assert [e.lot_id for e in first.entries] == [soon.pk]
    soon.refresh_from_db()
    late.refresh_from_db()
    assert (soon.remaining, late.remaining) == (Decimal("49.96"), Decimal("50.00"))

    # 42 signers = 50.40: the rest of the first lot (49.96), then 0.44 of the second.
    crossing = spend(tenant, "signature_signer", quantity=42, reference="sig-1")
    assert crossing.amount == Decimal("50.40")
    assert [(e.lot_id, e.amount) for e in crossing.entries] == [
        (soon.pk, Decimal("-49.96")),
        (late.pk, Decimal("-0.44")),
    ]
    assert all(e.unit_price == Decimal("1.20") and e.quantity == 42 for e in crossing.entries)
    soon.refresh_from_db()
    late.refresh_from_db()
    assert (soon.remaining, late.remaining) == (Decimal("0.00"), Decimal("49.56"))

    last = spend(tenant, reference="inv-2")
    assert [e.lot_id for e in last.entries] == [late.pk]
    assert balance_of(tenant) == Decimal("49.52")
    assert_consistent(tenant)


def test_fifo_with_lots_bought_months_apart(tenant_a) -> None:
    """A lot bought 11 months ago (1 month left) is spent before one bought a month ago (11 left)."""
    tenant = tenant_a.tenant
    now = timezone.now()
    recent = credits_grant_pack(tenant=tenant, amount=Decimal("100.00"), now=now - relativedelta(months=1))
    older = credits_grant_pack(tenant=tenant, amount=Decimal("50.00"), now=now - relativedelta(months=11))
    charge = spend(tenant, "signature_signer", reference="sig-1")
    assert [e.lot_id for e in charge.entries] == [older.pk]
    recent.refresh_from_db()
    assert recent.remaining == Decimal("100.00")


# --- Low balance ------------------------------------------------------------------------------------


def test_low_balance_alerts_once_per_crossing(tenant_a) -> None:
    tenant = tenant_a.tenant
    credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))
    assert CreditAccount.objects.get(tenant=tenant).low_balance_threshold == Decimal("5.00")

    spend(tenant, "signature_signer", quantity=37, reference="s1")  # 44.40 → 5.60
    assert balance_of(tenant) == Decimal("5.60")
    assert not events(tenant, "credits.low_balance")

    spend(tenant, "signature_signer", reference="s2")  # → 4.40: crosses
    (alert,) = events(tenant, "credits.low_balance")
    assert alert.livemode is True
    assert alert.data == {"balance": "4.40", "previous_balance": "5.60", "threshold": "5.00"}

    spend(tenant, reference="i1")  # → 4.36: still below, no second alert
    spend(tenant, "signature_signer", reference="s3")  # → 3.16
    assert len(events(tenant, "credits.low_balance")) == 1

    credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))  # → 53.16: above again
    assert CreditAccount.objects.get(tenant=tenant).low_balance_alerted_at is None
    spend(tenant, "signature_signer", quantity=40, reference="s4")  # 48.00 → 5.16
    assert len(events(tenant, "credits.low_balance")) == 1
    spend(tenant, "signature_signer", reference="s5")  # → 3.96: crosses again
    alerts = events(tenant, "credits.low_balance")
    assert len(alerts) == 2
    assert alerts[1].data["balance"] == "3.96"
    assert_consistent(tenant)


def test_low_balance_threshold_is_per_tenant(tenant_a, tenant_b) -> None:
    for fixture in (tenant_a, tenant_b):
        credits_grant_pack(tenant=fixture.tenant, amount=Decimal("50.00"))
    CreditAccount.objects.filter(tenant=tenant_a.tenant).update(low_balance_threshold=Decimal("40.00"))
    for fixture in (tenant_a, tenant_b):
        spend(fixture.tenant, "signature_signer", quantity=10, reference="s1")  # 12.00 → 38.00
    assert len(events(tenant_a.tenant, "credits.low_balance")) == 1
    assert events(tenant_a.tenant, "credits.low_balance")[0].data["threshold"] == "40.00"
    assert not events(tenant_b.tenant, "credits.low_balance")


def test_refund_back_above_the_threshold_rearms_the_alert(tenant_a) -> None:
    tenant = tenant_a.tenant
    credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))
    spend(tenant, "signature_signer", quantity=38, reference="s1")  # 45.60 → 4.40: alert
    assert len(events(tenant, "credits.low_balance")) == 1
    credits_refund(tenant=tenant, reference="s1", operation="signature_signer", reason="not sent")  # → 50.00
    assert CreditAccount.objects.get(tenant=tenant).low_balance_alerted_at is None
    spend(tenant, "signature_signer", quantity=38, reference="s2")  # → 4.40: crosses again
    assert len(events(tenant, "credits.low_balance")) == 2
    assert_consistent(tenant)


def test_sandbox_spends_never_alert(tenant_a) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    for _ in range(3):
        credits_charge(tenant=tenant_a.tenant, livemode=False, operation="signature_signer", quantity=40)
    assert balance_of(tenant_a.tenant) == Decimal("50.00")
    assert not events(tenant_a.tenant, "credits.low_balance")
