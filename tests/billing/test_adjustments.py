"""Support's manual adjustments: a mandatory reason kept with the entry and its author, positive ones as a
new lot, negative ones taken from the lots; in the service and through the Django admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.utils import timezone

from billing.models import CreditAccount, CreditLot, LedgerEntry
from billing.services import credits_adjust, credits_grant_pack, ledger_balance
from scell.errors import PaymentRequired, UnprocessableEntity
from scell.models import SupportAction, User

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/billing/creditadjustment/add/"


@pytest.fixture
def support() -> User:
    return User.objects.create_superuser("support@scell.example", "correct-horse-battery-9")


def balance_of(tenant) -> Decimal:
    return CreditAccount.objects.get(tenant=tenant).balance


def assert_consistent(tenant) -> None:
    account = CreditAccount.objects.get(tenant=tenant)
    assert account.balance >= 0
    assert account.balance == ledger_balance(tenant=tenant)
    assert sum((lot.remaining for lot in CreditLot.objects.filter(tenant=tenant)), Decimal("0.00")) == (
        account.balance
    )


# --- Service ---------------------------------------------------------------------------------------


def test_positive_adjustment_adds_a_lot_with_reason_and_author(tenant_a, support) -> None:
    entries = credits_adjust(
        tenant=tenant_a.tenant,
        amount=Decimal("12.50"),
        reason="Goodwill: outage of 3 Nov",
        created_by=support,
    )
    (entry,) = entries
    assert entry.kind == LedgerEntry.Kind.ADJUSTMENT
    assert entry.amount == Decimal("12.50")
    assert entry.reason == "Goodwill: outage of 3 Nov"
    assert entry.created_by == support
    lot = entry.lot
    assert lot.source == "adjustment"
    assert lot.amount == lot.remaining == Decimal("12.50")
    assert lot.expires_at > timezone.now() + relativedelta(months=11)
    # Below the pack minimum: an adjustment is not a pack.
    assert balance_of(tenant_a.tenant) == Decimal("12.50")
    assert_consistent(tenant_a.tenant)


def test_negative_adjustment_takes_from_the_lots_first_expiring_first(tenant_a, support) -> None:
    tenant = tenant_a.tenant
    now = timezone.now()
    older = credits_grant_pack(tenant=tenant, amount=Decimal("50.00"), now=now - relativedelta(months=6))
    newer = credits_grant_pack(tenant=tenant, amount=Decimal("100.00"))
    entries = credits_adjust(tenant=tenant, amount=Decimal("-60.00"), reason="Chargeback", created_by=support)
    assert [(e.lot_id, e.amount) for e in entries] == [
        (older.pk, Decimal("-50.00")),
        (newer.pk, Decimal("-10.00")),
    ]
    assert all(e.kind == LedgerEntry.Kind.ADJUSTMENT for e in entries)
    assert all(e.reason == "Chargeback" and e.created_by == support for e in entries)
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ADJUSTMENT).count() == 2
    assert balance_of(tenant) == Decimal("90.00")
    assert_consistent(tenant)


def test_negative_adjustment_beyond_the_balance_is_refused(tenant_a, support) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    with pytest.raises(PaymentRequired):
        credits_adjust(
            tenant=tenant_a.tenant, amount=Decimal("-50.01"), reason="too much", created_by=support
        )
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ADJUSTMENT).exists()
    assert balance_of(tenant_a.tenant) == Decimal("50.00")


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_an_adjustment_needs_a_reason(tenant_a, support, reason) -> None:
    with pytest.raises(UnprocessableEntity) as exc:
        credits_adjust(tenant=tenant_a.tenant, amount=Decimal("10.00"), reason=reason, created_by=support)
    assert exc.value.status_code == 422
    assert exc.value.details == [{"field": "reason", "message": "required"}]
    assert not LedgerEntry.objects.exists()
    assert not CreditLot.objects.exists()


def test_a_zero_adjustment_is_refused(tenant_a, support) -> None:
    with pytest.raises(UnprocessableEntity):
        credits_adjust(
            tenant=tenant_a.tenant, amount=Decimal("0.004"), reason="rounds to zero", created_by=support
        )
    assert not LedgerEntry.objects.exists()


# --- Django admin ----------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, support):
    client.force_login(support)
    return client


def test_admin_grants_an_adjustment_with_a_reason(admin_client, tenant_a, support) -> None:
    page = admin_client.get(ADD_URL)
    assert page.status_code == 200
    response = admin_client.post(
        ADD_URL, {"tenant": str(tenant_a.tenant.pk), "amount": "25.00", "reason": "Ticket #42: double charge"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"].endswith("/admin/billing/creditadjustment/")
    entry = LedgerEntry.objects.get(tenant=tenant_a.tenant)
    assert entry.kind == LedgerEntry.Kind.ADJUSTMENT
    assert entry.amount == Decimal("25.00")
    assert entry.reason == "Ticket #42: double charge"
    assert entry.created_by == support
    assert balance_of(tenant_a.tenant) == Decimal("25.00")
    assert_consistent(tenant_a.tenant)
    # The support log has the same act: who, for which tenant, why.
    logged = SupportAction.objects.get()
    assert (logged.actor, logged.action, logged.tenant) == (support, "credits.adjust", tenant_a.tenant)
    assert logged.reason == "Ticket #42: double charge" and logged.object_id == str(entry.pk)
    assert logged.details["amount"] == "25.00"

    listing = admin_client.get("/admin/billing/creditadjustment/")
    assert listing.status_code == 200
    assert "Ticket #42: double charge" in listing.content.decode()


def test_admin_negative_adjustment(admin_client, tenant_a) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    response = admin_client.post(
        ADD_URL,
        {"tenant": str(tenant_a.tenant.pk), "amount": "-20.00", "reason": "Refunded by bank transfer"},
    )
    assert response.status_code == 302
    assert balance_of(tenant_a.tenant) == Decimal("30.00")
    assert_consistent(tenant_a.tenant)


@pytest.mark.parametrize("reason", ["", "   "])
def test_admin_without_reason_errors_and_writes_nothing(admin_client, tenant_a, reason) -> None:
    response = admin_client.post(
        ADD_URL, {"tenant": str(tenant_a.tenant.pk), "amount": "25.00", "reason": reason}
    )
    assert response.status_code == 200
    assert "reason" in response.context["adminform"].form.errors
    assert not LedgerEntry.objects.exists()
    assert not CreditLot.objects.exists()
    assert not SupportAction.objects.exists()


def test_admin_refuses_zero_and_more_than_the_balance(admin_client, tenant_a) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    for amount in ("0", "-50.01"):
        response = admin_client.post(
            ADD_URL, {"tenant": str(tenant_a.tenant.pk), "amount": amount, "reason": "x"}
        )
        assert response.status_code == 200
        assert "amount" in response.context["adminform"].form.errors
    assert LedgerEntry.objects.count() == 1


def test_admin_negative_adjustment_counts_only_credit_that_can_still_be_spent(admin_client, tenant_a) -> None:
    """A lot past its expiry but not yet written off by the cron is in the cached balance, not spendable:
    the form says so instead of failing with a server error."""
    credits_grant_pack(
        tenant=tenant_a.tenant, amount=Decimal("50.00"), now=timezone.now() - relativedelta(months=13)
    )
    response = admin_client.post(
        ADD_URL, {"tenant": str(tenant_a.tenant.pk), "amount": "-10.00", "reason": "Chargeback"}
    )
    assert response.status_code == 200
    assert "amount" in response.context["adminform"].form.errors
    assert LedgerEntry.objects.count() == 1


def test_admin_adjustments_cannot_be_changed_or_deleted(admin_client, tenant_a, support) -> None:
    (entry,) = credits_adjust(tenant=tenant_a.tenant, amount=Decimal("5.00"), reason="x", created_by=support)
    change_url = f"/admin/billing/creditadjustment/{entry.pk}/change/"
    response = admin_client.post(
        change_url, {"tenant": str(tenant_a.tenant.pk), "amount": "500.00", "reason": "y"}
    )
    assert response.status_code in (302, 403)
    assert (
        admin_client.post(f"/admin/billing/creditadjustment/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    entry.refresh_from_db()
    assert entry.amount == Decimal("5.00")
    assert balance_of(tenant_a.tenant) == Decimal("5.00")


def test_admin_ledger_is_read_only(admin_client, tenant_a) -> None:
    credits_grant_pack(tenant=tenant_a.tenant, amount=Decimal("50.00"))
    assert admin_client.get("/admin/billing/ledgerentry/").status_code == 200
    assert admin_client.get("/admin/billing/ledgerentry/add/").status_code == 403
    entry = LedgerEntry.objects.get()
    assert (
        admin_client.post(f"/admin/billing/ledgerentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert admin_client.post(
        f"/admin/billing/creditaccount/{tenant_a.tenant.credit_account.pk}/change/", {"balance": "1000000.00"}
    ).status_code in (302, 403)
    assert balance_of(tenant_a.tenant) == Decimal("50.00")


def test_staff_without_permission_cannot_adjust(client, tenant_a) -> None:
    staff = User.objects.create_user("staff@scell.example", "correct-horse-battery-9", is_staff=True)
    client.force_login(staff)
    response = client.post(ADD_URL, {"tenant": str(tenant_a.tenant.pk), "amount": "1000.00", "reason": "me"})
    assert response.status_code == 403
    assert not LedgerEntry.objects.exists()
