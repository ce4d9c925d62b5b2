"""``manage.py add_credits --tenant ACME1 --amount 50.00``: grant a prepaid pack (support use)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services import credits_grant_pack
from scell.admin_base import tenant_by_ref
from scell.errors import ScellError


class Command(BaseCommand):
    help = "Grant a prepaid credit pack to a tenant (valid 12 months)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant identifier (or id)")
        parser.add_argument("--amount", required=True, help="EUR, e.g. 50.00")
        parser.add_argument("--reason", default="granted by support (add_credits)")

    def handle(self, *args: Any, **options: Any) -> None:
        ref = options["tenant"]
        tenant = tenant_by_ref(ref)
        if tenant is None:
            raise CommandError(f"No tenant {ref!r}.")
        try:
            amount = Decimal(options["amount"])
        except InvalidOperation as exc:
            raise CommandError(f"Invalid amount {options['amount']!r}.") from exc
        # NaN/Infinity parse as decimals but cannot be compared or stored; nor can more than 12 digits
        # before the point (amounts are NUMERIC(14, 2)).
        if not amount.is_finite() or abs(amount) >= Decimal("1e12"):
            raise CommandError(f"Invalid amount {options['amount']!r}.")
        try:
            lot = credits_grant_pack(
                tenant=tenant, amount=amount, reason=options["reason"], reference="add_credits"
            )
        except ScellError as exc:
            raise CommandError(exc.message) from exc
        tenant.credit_account.refresh_from_db()
        self.stdout.write(
            self.style.SUCCESS(
                f"{lot.amount} EUR credited to {tenant.identifier}, valid until {lot.expires_at:%Y-%m-%d}; "
                f"balance {tenant.credit_account.balance} EUR."
            )
        )
