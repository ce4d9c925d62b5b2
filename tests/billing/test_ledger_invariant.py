"""The balance is derived from an immutable ledger: after any sequence of grants, spends, refunds,
adjustments and expiries, the cached balance equals the ledger's sum and the lots' remainders, is never
negative, and the database refuses to change or delete a ledger entry."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
import time_machine
from django.db import DatabaseError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.models import CreditAccount, CreditLot, LedgerEntry
from billing.services import (
    credits_adjust,
    credits_charge,
    credits_expire,
    credits_grant_pack,
    credits_refund,
    ledger_balance,
    pack_catalogue,
    price_of,
)
from scell.errors import PaymentRequired
from scell.services import sub_tenant_create
from scell.tenancy import Scope

pytestmark = pytest.mark.django_db

ZERO = Decimal("0.00")
START = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def spendable(tenant) -> Decimal:
    return (
        CreditLot.objects.filter(
            tenant=tenant, remaining__gt=0, expired_at__isnull=True, expires_at__gt=timezone.now()
        ).aggregate(s=Sum("remaining"))["s"]
        or ZERO
    )


def assert_invariant(tenant, expected: Decimal) -> None:
    account = CreditAccount.objects.filter(tenant=tenant).first()
    balance = account.balance if account else ZERO
    lots = list(CreditLot.objects.filter(tenant=tenant))
    assert balance >= 0
    assert balance == expected
    assert balance == ledger_balance(tenant=tenant)
    assert balance == sum((lot.remaining for lot in lots), ZERO)
    for lot in lots:
        assert ZERO <= lot.remaining <= lot.amount
        if lot.expired_at is not None:
            assert lot.remaining == ZERO
        # Each lot's remainder is its own history in the ledger: credited, minus what left it.
        # (a lot made by a refund after its original expired starts with that refund entry).
        moved = LedgerEntry.objects.filter(lot=lot).aggregate(s=Sum("amount"))["s"] or ZERO
        assert moved == lot.remaining, lot


@pytest.mark.parametrize("seed", [7, 2026, 31337])
def test_random_sequences_keep_balance_ledger_and_lots_equal(tenant_a, tenant_b, seed) -> None:
    rng = random.Random(seed)
    tenants = [tenant_a.tenant, tenant_b.tenant]
    sub = sub_tenant_create(
        scope=Scope(tenant=tenant_a.tenant, livemode=True),
        legal_name="Filiale SAS",
        siren="552100554",
        identifier="SUB01",
    )
    expected = {t.pk: ZERO for t in tenants}
    charged: dict[object, list[tuple[str, str]]] = {t.pk: [] for t in tenants}
    counts = {"grant": 0, "charge": 0, "refused": 0, "refund": 0, "adjust": 0, "expire": 0, "sandbox": 0}
    catalogue = pack_catalogue()[:2]  # 50 and 100: enough to run dry now and then

    with time_machine.travel(START, tick=False) as clock:
        for step in range(220):
            tenant = rng.choice(tenants)
            roll = rng.random()
            if roll < 0.10:
                amount = rng.choice(catalogue)
                credits_grant_pack(tenant=tenant, amount=amount, reference=f"grant-{step}")
                expected[tenant.pk] += amount
                counts["grant"] += 1
            elif roll < 0.62:
                operation = rng.choice(["invoice_issue", "invoice_issue", "signature_signer"])
                quantity = rng.randint(1, 40) if operation == "signature_signer" else rng.randint(1, 3)
                total = price_of(operation) * quantity
                reference = f"op-{step}"
                available = spendable(tenant)
                entries_before = LedgerEntry.objects.count()
                try:
                    charge = credits_charge(
                        tenant=tenant,
                        livemode=True,
                        operation=operation,
                        quantity=quantity,
                        reference=reference,
                        sub_tenant=sub if tenant == tenant_a.tenant and rng.random() < 0.3 else None,
                    )
                except PaymentRequired:
                    assert available < total, (available, total)
                    assert LedgerEntry.objects.count() == entries_before
                    counts["refused"] += 1
                else:
                    assert available >= total
                    assert charge.amount == total
                    assert sum((-e.amount for e in charge.entries), ZERO) == total
                    expected[tenant.pk] -= total
                    charged[tenant.pk].append((reference, operation))
                    counts["charge"] += 1
            elif roll < 0.67:
                credits_charge(tenant=tenant, livemode=False, operation="signature_signer", quantity=5)
                counts["sandbox"] += 1
            elif roll < 0.77 and charged[tenant.pk]:
                reference, operation = rng.choice(charged[tenant.pk])
                refunded = credits_refund(
                    tenant=tenant, reference=reference, operation=operation, reason="undelivered"
                )
                expected[tenant.pk] += refunded
                # A second refund of the same operation gives nothing back.
                assert (
                    credits_refund(tenant=tenant, reference=reference, operation=operation, reason="again")
                    == ZERO
                )
                counts["refund"] += 1
            elif roll < 0.87:
                if rng.random() < 0.5:
                    amount = Decimal(rng.randint(1, 3000)) / 100
                else:
                    amount = -min(spendable(tenant), Decimal(rng.randint(1, 3000)) / 100)
                if amount:
                    credits_adjust(
                        tenant=tenant, amount=amount, reason=f"support step {step}", created_by=None
                    )
                    expected[tenant.pk] += amount
                    counts["adjust"] += 1
            else:
                # Let time pass, sometimes far enough for lots to reach their 12 months, and run the cron.
                clock.shift(dt.timedelta(days=rng.randint(1, 120)))
                before = {
                    t.pk: sum(
                        (
                            lot.remaining
                            for lot in CreditLot.objects.filter(
                                tenant=t, expires_at__lte=timezone.now(), expired_at__isnull=True
                            )
                        ),
                        ZERO,
                    )
                    for t in tenants
                }
                credits_expire()
                for t in tenants:
                    expected[t.pk] -= before[t.pk]
                counts["expire"] += 1
            for t in tenants:
                assert_invariant(t, expected[t.pk])

        clock.shift(dt.timedelta(days=800))
        credits_expire()
        for t in tenants:
            assert_invariant(t, ZERO)
            assert not CreditLot.objects.filter(tenant=t, remaining__gt=0).exists()

    # The sequence exercised every kind of movement.
    assert all(counts[k] > 0 for k in ("grant", "charge", "refused", "refund", "adjust", "expire")), counts
    kinds = set(LedgerEntry.objects.values_list("kind", flat=True))
    assert kinds == {k.value for k in LedgerEntry.Kind}


# --- The database keeps the ledger append-only -----------------------------------------------------


@pytest.fixture
def entry(tenant_a, require_postgres) -> LedgerEntry:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    credits_charge(tenant=tenant_a.tenant, livemode=True, operation="invoice_issue", reference="inv-1")
    return LedgerEntry.objects.get(tenant=tenant_a.tenant, kind=LedgerEntry.Kind.SPEND)


def refused(sql: str, params: list) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


def test_database_refuses_update_of_a_ledger_entry(entry) -> None:
    refused("UPDATE billing_ledgerentry SET amount = 1000 WHERE id = %s", [entry.pk])
    refused("UPDATE billing_ledgerentry SET reason = 'edited' WHERE tenant_id = %s", [entry.tenant_id])
    entry.refresh_from_db()
    assert entry.amount == Decimal("-0.04")
    assert entry.reason == ""


def test_database_refuses_delete_of_a_ledger_entry(entry) -> None:
    refused("DELETE FROM billing_ledgerentry WHERE id = %s", [entry.pk])
    refused("DELETE FROM billing_ledgerentry WHERE tenant_id = %s", [entry.tenant_id])
    assert LedgerEntry.objects.filter(tenant=entry.tenant).count() == 2


def test_orm_writes_to_an_entry_are_refused_too(entry) -> None:
    entry.amount = Decimal("1000.00")
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=Decimal("0.00"))
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert ledger_balance(tenant=entry.tenant) == Decimal("49.96")
    assert LedgerEntry.objects.filter(tenant=entry.tenant).count() == 2


def test_appending_entries_still_works(entry) -> None:
    credits_charge(tenant=entry.tenant, livemode=True, operation="invoice_issue", reference="inv-2")
    assert LedgerEntry.objects.filter(tenant=entry.tenant).count() == 3
    assert ledger_balance(tenant=entry.tenant) == Decimal("49.92")


# --- Refunds ---------------------------------------------------------------------------------------


def test_refunding_twice_refunds_once(tenant_a) -> None:
    tenant = tenant_a.tenant
    lot = credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))
    credits_charge(tenant=tenant, livemode=True, operation="signature_signer", quantity=3, reference="sig-1")
    assert credits_refund(
        tenant=tenant, reference="sig-1", operation="signature_signer", reason="SMS failed"
    ) == (Decimal("3.60"))
    for _ in range(2):
        assert (
            credits_refund(tenant=tenant, reference="sig-1", operation="signature_signer", reason="again")
            == ZERO
        )
    lot.refresh_from_db()
    assert lot.remaining == lot.amount == Decimal("50.00")
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND).count() == 1
    assert_invariant(tenant, Decimal("50.00"))


def test_refund_of_a_reference_spent_again_goes_back_to_the_lot_it_came_from(tenant_a) -> None:
    tenant = tenant_a.tenant
    small = credits_adjust(tenant=tenant, amount=Decimal("1.20"), reason="goodwill", created_by=None)[0].lot
    pack = credits_grant_pack(tenant=tenant, amount=Decimal("50.00"))
    assert small.expires_at < pack.expires_at
    credits_charge(
        tenant=tenant, livemode=True, operation="signature_signer", reference="sig-1"
    )  # from small
    credits_refund(
        tenant=tenant, reference="sig-1", operation="signature_signer", reason="failed"
    )  # to small
    credits_charge(
        tenant=tenant, livemode=True, operation="signature_signer", reference="sig-2"
    )  # from small
    credits_charge(tenant=tenant, livemode=True, operation="signature_signer", reference="sig-1")  # from pack
    assert credits_refund(
        tenant=tenant, reference="sig-1", operation="signature_signer", reason="failed"
    ) == (Decimal("1.20"))
    small.refresh_from_db()
    pack.refresh_from_db()
    assert (small.remaining, pack.remaining) == (ZERO, Decimal("50.00"))
    assert_invariant(tenant, Decimal("50.00"))


def test_refund_of_nothing_spent_is_zero(tenant_a) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    assert (
        credits_refund(tenant=tenant_a.tenant, reference="nope", operation="invoice_issue", reason="x")
        == ZERO
    )
    assert_invariant(tenant_a.tenant, Decimal("50.00"))
