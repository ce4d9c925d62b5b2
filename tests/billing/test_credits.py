"""Prepaid credits: what a live operation costs, which lot pays, the 402, and concurrent spends."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.utils import timezone

from billing.models import CreditAccount, CreditLot, LedgerEntry
from billing.services import credits_charge, credits_grant_pack, ledger_balance
from scell.errors import PaymentRequired, UnprocessableEntity

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_lots(settings):
    """Packs are at least 50.00 in production; tests of the spending rules want small lots."""
    settings.CREDIT_PACK_MINIMUM = "0.01"


def balance_of(tenant) -> Decimal:
    return CreditAccount.objects.get(tenant=tenant).balance


def assert_consistent(tenant) -> None:
    """The cached balance equals the ledger, the lots' remainders, and is never negative."""
    account = CreditAccount.objects.get(tenant=tenant)
    assert account.balance >= 0
    assert account.balance == ledger_balance(tenant=tenant)
    lots = CreditLot.objects.filter(tenant=tenant)
    assert all(lot.remaining >= 0 for lot in lots)
    assert sum((lot.remaining for lot in lots), Decimal("0.00")) == account.balance


def test_sandbox_operation_costs_nothing_and_writes_nothing(tenant_a) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    entries_before = LedgerEntry.objects.count()
    charge = credits_charge(tenant=tenant_a.tenant, livemode=False, operation="invoice_issue")
    assert charge.amount == Decimal("0.00")
    assert charge.entries == ()
    charge = credits_charge(tenant=tenant_a.tenant, livemode=False, operation="signature_signer", quantity=3)
    assert charge.amount == Decimal("0.00")
    assert LedgerEntry.objects.count() == entries_before
    assert balance_of(tenant_a.tenant) == Decimal("50.00")
    assert_consistent(tenant_a.tenant)


def test_sandbox_operation_needs_no_credits_at_all(tenant_a) -> None:
    charge = credits_charge(tenant=tenant_a.tenant, livemode=False, operation="invoice_issue")
    assert charge.amount == Decimal("0.00")
    assert not CreditAccount.objects.filter(tenant=tenant_a.tenant).exists()
    assert not LedgerEntry.objects.filter(tenant=tenant_a.tenant).exists()


def test_platform_tenant_operations_cost_nothing(tenant_a) -> None:
    tenant = tenant_a.tenant
    tenant.is_platform = True
    tenant.save(update_fields=["is_platform"])
    charge = credits_charge(tenant=tenant, livemode=True, operation="signature_signer", quantity=3)
    assert charge.amount == Decimal("0.00")
    assert charge.entries == ()
    assert not LedgerEntry.objects.filter(tenant=tenant).exists()


def test_live_prices(tenant_a) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))

    charge = credits_charge(
        tenant=tenant_a.tenant, livemode=True, operation="invoice_issue", reference="inv-1"
    )
    assert charge.amount == Decimal("0.04")
    assert len(charge.entries) == 1
    entry = charge.entries[0]
    assert entry.kind == LedgerEntry.Kind.SPEND
    assert entry.amount == Decimal("-0.04")
    assert entry.unit_price == Decimal("0.04")
    assert entry.operation == "invoice_issue"
    assert entry.reference == "inv-1"
    assert balance_of(tenant_a.tenant) == Decimal("49.96")
    assert_consistent(tenant_a.tenant)

    charge = credits_charge(tenant=tenant_a.tenant, livemode=True, operation="signature_signer", quantity=3)
    assert charge.amount == Decimal("3.60")
    assert charge.entries[0].unit_price == Decimal("1.20")
    assert charge.entries[0].quantity == 3
    assert balance_of(tenant_a.tenant) == Decimal("46.36")
    assert_consistent(tenant_a.tenant)


def test_price_is_configuration_and_recorded_on_the_entry(tenant_a, settings) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    settings.PRICE_INVOICE_ISSUE = "0.05"
    charge = credits_charge(tenant=tenant_a.tenant, livemode=True, operation="invoice_issue")
    assert charge.amount == Decimal("0.05")
    assert charge.entries[0].unit_price == Decimal("0.05")
    assert_consistent(tenant_a.tenant)


def test_spends_the_lot_that_expires_first(tenant_a, small_lots) -> None:
    tenant = tenant_a.tenant
    now = timezone.now()
    # Bought later, expires later.
    late = credits_grant_pack(tenant=tenant, amount=Decimal("10.00"), now=now - timedelta(days=1))
    # Bought earlier, expires first: pays first, even though it was created second.
    early = credits_grant_pack(tenant=tenant, amount=Decimal("1.00"), now=now - timedelta(days=100))
    assert early.expires_at < late.expires_at

    charge = credits_charge(tenant=tenant, livemode=True, operation="invoice_issue")
    early.refresh_from_db()
    late.refresh_from_db()
    assert [e.lot_id for e in charge.entries] == [early.id]
    assert early.remaining == Decimal("0.96")
    assert late.remaining == Decimal("10.00")
    assert_consistent(tenant)

    # 3 signers = 3.60: the 0.96 left in the first lot, then 2.64 from the second, two entries.
    charge = credits_charge(tenant=tenant, livemode=True, operation="signature_signer", quantity=3)
    early.refresh_from_db()
    late.refresh_from_db()
    assert charge.amount == Decimal("3.60")
    assert [(e.lot_id, e.amount) for e in charge.entries] == [
        (early.id, Decimal("-0.96")),
        (late.id, Decimal("-2.64")),
    ]
    assert early.remaining == Decimal("0.00")
    assert late.remaining == Decimal("7.36")
    assert sum(e.amount for e in charge.entries) == -charge.amount
    assert balance_of(tenant) == Decimal("7.36")
    assert_consistent(tenant)


def test_not_enough_credits_is_402_and_writes_nothing(tenant_a, small_lots) -> None:
    tenant = tenant_a.tenant
    lot = credits_grant_pack(tenant=tenant, amount=Decimal("1.00"))
    entries_before = LedgerEntry.objects.filter(tenant=tenant).count()

    with pytest.raises(PaymentRequired) as excinfo:
        credits_charge(tenant=tenant, livemode=True, operation="signature_signer", quantity=1)
    error = excinfo.value
    assert error.status_code == 402
    assert error.error_code == "insufficient_credits"
    details = {d["field"]: d["message"] for d in error.details}
    assert Decimal(details["balance"]) == Decimal("1.00")
    assert Decimal(details["price"]) == Decimal("1.20")

    lot.refresh_from_db()
    assert lot.remaining == Decimal("1.00")
    assert LedgerEntry.objects.filter(tenant=tenant).count() == entries_before
    assert balance_of(tenant) == Decimal("1.00")
    assert_consistent(tenant)


def test_402_inside_the_callers_transaction_rolls_nothing_half_way(tenant_a, small_lots) -> None:
    """Two lots that together do not cover the price: neither is touched."""
    tenant = tenant_a.tenant
    credits_grant_pack(tenant=tenant, amount=Decimal("0.50"), now=timezone.now() - timedelta(days=10))
    credits_grant_pack(tenant=tenant, amount=Decimal("0.60"))
    with pytest.raises(PaymentRequired), transaction.atomic():
        credits_charge(tenant=tenant, livemode=True, operation="signature_signer")
    assert sorted(CreditLot.objects.filter(tenant=tenant).values_list("remaining", flat=True)) == [
        Decimal("0.50"),
        Decimal("0.60"),
    ]
    assert balance_of(tenant) == Decimal("1.10")
    assert_consistent(tenant)


def test_no_credit_account_at_all_is_402(tenant_a) -> None:
    with pytest.raises(PaymentRequired) as excinfo:
        credits_charge(tenant=tenant_a.tenant, livemode=True, operation="invoice_issue")
    details = {d["field"]: d["message"] for d in excinfo.value.details}
    assert Decimal(details["balance"]) == Decimal("0.00")
    assert Decimal(details["price"]) == Decimal("0.04")
    assert not LedgerEntry.objects.filter(tenant=tenant_a.tenant).exists()


def test_expired_lots_are_not_spent(tenant_a, small_lots) -> None:
    tenant = tenant_a.tenant
    now = timezone.now()
    expired = credits_grant_pack(tenant=tenant, amount=Decimal("10.00"), now=now - relativedelta(months=13))
    assert expired.expires_at < now
    fresh = credits_grant_pack(tenant=tenant, amount=Decimal("1.00"))

    charge = credits_charge(tenant=tenant, livemode=True, operation="invoice_issue")
    assert [e.lot_id for e in charge.entries] == [fresh.id]
    expired.refresh_from_db()
    assert expired.remaining == Decimal("10.00")

    # The expired lot does not count towards what can be spent.
    with pytest.raises(PaymentRequired) as excinfo:
        credits_charge(tenant=tenant, livemode=True, operation="signature_signer")
    details = {d["field"]: d["message"] for d in excinfo.value.details}
    assert Decimal(details["balance"]) == Decimal("0.96")
    expired.refresh_from_db()
    assert expired.remaining == Decimal("10.00")
    assert balance_of(tenant) == ledger_balance(tenant=tenant)


def test_lot_expires_with_time(tenant_a, small_lots) -> None:
    tenant = tenant_a.tenant
    lot = credits_grant_pack(tenant=tenant, amount=Decimal("1.00"))
    assert lot.expires_at == lot.created_at + relativedelta(months=12)
    after_expiry = time_machine.travel(lot.expires_at + timedelta(seconds=1), tick=False)
    with after_expiry, pytest.raises(PaymentRequired):
        credits_charge(tenant=tenant, livemode=True, operation="invoice_issue")
    with time_machine.travel(lot.expires_at - timedelta(seconds=1), tick=False):
        charge = credits_charge(tenant=tenant, livemode=True, operation="invoice_issue")
    assert charge.amount == Decimal("0.04")


def test_pack_below_minimum_is_refused(tenant_a) -> None:
    with pytest.raises(UnprocessableEntity) as excinfo:
        credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("49.99"))
    assert excinfo.value.status_code == 422
    assert excinfo.value.error_code == "pack_below_minimum"
    assert not CreditLot.objects.filter(tenant=tenant_a.tenant).exists()
    assert not LedgerEntry.objects.filter(tenant=tenant_a.tenant).exists()


def test_pack_is_valid_twelve_months_and_writes_a_purchase(tenant_a) -> None:
    lot = credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("100"), reference="pack-1")
    assert lot.amount == lot.remaining == Decimal("100.00")
    assert lot.expires_at == lot.created_at + relativedelta(months=12)
    (entry,) = LedgerEntry.objects.filter(tenant=tenant_a.tenant)
    assert entry.kind == LedgerEntry.Kind.PURCHASE
    assert entry.amount == Decimal("100.00")
    assert entry.lot_id == lot.id
    assert_consistent(tenant_a.tenant)


def test_balance_matches_ledger_after_every_operation(tenant_a, small_lots) -> None:
    tenant = tenant_a.tenant
    credits_grant_pack(tenant=tenant, amount=Decimal("5.00"))
    assert_consistent(tenant)
    steps = [("invoice_issue", 1), ("signature_signer", 2), ("invoice_issue", 1), ("signature_signer", 1)]
    for operation, quantity in steps:
        credits_charge(tenant=tenant, livemode=True, operation=operation, quantity=quantity)
        assert_consistent(tenant)
    # 5.00 - 0.04 - 2.40 - 0.04 - 1.20 = 1.32
    assert balance_of(tenant) == Decimal("1.32")
    credits_grant_pack(tenant=tenant, amount=Decimal("2.00"), source="support")
    assert_consistent(tenant)
    for _ in range(2):
        with pytest.raises(PaymentRequired):
            credits_charge(tenant=tenant, livemode=True, operation="signature_signer", quantity=3)
        assert_consistent(tenant)
    assert balance_of(tenant) == Decimal("3.32")


def test_credits_of_one_tenant_are_not_spent_by_another(tenant_a, tenant_b) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    with pytest.raises(PaymentRequired):
        credits_charge(tenant=tenant_b.tenant, livemode=True, operation="invoice_issue")
    assert balance_of(tenant_a.tenant) == Decimal("50.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_spends_never_overdraw(make_tenant, require_postgres, settings) -> None:
    """2.40 of credit, 100 concurrent live invoice issues at 0.04: exactly 60 are charged, 40 get 402."""
    settings.CREDIT_PACK_MINIMUM = "0.01"
    tenant = make_tenant("CONC1").tenant
    credits_grant_pack(tenant=tenant, amount=Decimal("2.40"))

    # PostgreSQL allows 100 connections: 100 spends run on a pool of 40 threads (each with its own
    # connection), released together so that they contend for the account row lock.
    start = threading.Event()
    outcomes: list[str] = []
    lock = threading.Lock()

    def spend(_: int) -> None:
        start.wait(timeout=30)
        try:
            with transaction.atomic():
                credits_charge(tenant=tenant, livemode=True, operation="invoice_issue")
            result = "ok"
        except PaymentRequired:
            result = "402"
        except Exception as exc:  # anything else is a failure of the test
            result = f"error: {exc!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    with ThreadPoolExecutor(max_workers=40) as pool:
        futures = [pool.submit(spend, i) for i in range(100)]
        start.set()
        for future in futures:
            future.result(timeout=120)

    errors = [o for o in outcomes if o.startswith("error")]
    assert not errors, errors[:3]
    assert outcomes.count("ok") == 60
    assert outcomes.count("402") == 40
    account = CreditAccount.objects.get(tenant=tenant)
    assert account.balance == Decimal("0.00")
    assert ledger_balance(tenant=tenant) == Decimal("0.00")
    assert LedgerEntry.objects.filter(tenant=tenant, kind=LedgerEntry.Kind.SPEND).count() == 60
    assert CreditLot.objects.get(tenant=tenant).remaining == Decimal("0.00")
