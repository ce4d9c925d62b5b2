"""Recompute the hash chains (all, or one tenant's) and exit non-zero on a break: support's tool, and
what a monitoring job can run."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from archive.services import chain_check
from scell.models import Tenant


class Command(BaseCommand):
    help = "Verify the hash chains and report the first broken link of each; exit 1 on a break."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="identifier or id of one tenant (default: every chain)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if options["tenant"]:
            tenant = _tenant(options["tenant"])
        err = self.stderr
        line_open = {"value": False}

        def progress(chain_key: str, done: int, total: int) -> None:
            # One line per chain, rewritten in place (stderr, so stdout stays a clean report).
            percent = 100 if total == 0 else done * 100 // total
            bar = "#" * (percent // 5)
            err.write(f"\r{chain_key} [{bar:<20}] {done}/{total} ({percent}%)", ending="")
            line_open["value"] = done < total
            if not line_open["value"]:
                err.write("")
            err.flush()

        runs = chain_check(tenant=tenant, progress=progress)
        if line_open["value"]:  # a chain stopped at its break, before 100%
            err.write("")
        broken = 0
        for run in runs:
            result = run.result
            if result.ok:
                self.stdout.write(f"{result.chain_key}: ok, {result.entries_checked} links")
            else:
                broken += 1
                self.stdout.write(
                    f"{result.chain_key}: BROKEN at link {result.first_broken_seq}: {result.reason}"
                )
        self.stdout.write(f"{len(runs)} chain(s) checked, {broken} broken")
        if broken:
            raise CommandError(f"{broken} chain(s) broken")


def _tenant(ref: str) -> Tenant:
    tenant = Tenant.objects.filter(identifier=ref.upper()).first()
    if tenant is None:
        try:
            tenant = Tenant.objects.filter(pk=ref).first()
        except (ValueError, ValidationError):
            tenant = None
    if tenant is None:
        raise CommandError(f"no tenant {ref!r}")
    return tenant
