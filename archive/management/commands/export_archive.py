"""``manage.py export_archive --tenant ACME1 --format json --output acme.zip``: the API export, for
support (same generator as ``GET /api/v1/archive/export``), with a progress counter on stderr."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from archive.exports import FORMATS, export_zip
from scell.admin_base import tenant_by_ref
from scell.models import SubTenant
from scell.tenancy import Scope


class Command(BaseCommand):
    help = "Export every issued invoice of a tenant as a zip (Factur-X PDFs or JSON with chain hashes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant identifier (or id)")
        parser.add_argument("--format", choices=FORMATS, default="pdf")
        parser.add_argument("--output", required=True, help="zip file to write ('-' for stdout)")
        parser.add_argument("--live", action="store_true", help="live invoices (default: sandbox)")
        parser.add_argument("--sub-tenant", help="only this sub-tenant's invoices (identifier)")

    def handle(self, *args: Any, **options: Any) -> None:
        ref = options["tenant"]
        tenant = tenant_by_ref(ref)
        if tenant is None:
            raise CommandError(f"No tenant {ref!r}.")
        sub_tenant = None
        if options["sub_tenant"]:
            sub_tenant = SubTenant.objects.filter(tenant=tenant, identifier=options["sub_tenant"]).first()
            if sub_tenant is None:
                raise CommandError(f"No sub-tenant {options['sub_tenant']!r} in {tenant.identifier}.")
        scope = Scope(tenant=tenant, livemode=options["live"], sub_tenant=sub_tenant)
        started = time.monotonic()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last[0] >= 0.5:
                last[0] = now
                sys.stderr.write(f"\r{done}/{total} invoices")
                sys.stderr.flush()

        to_stdout = options["output"] == "-"
        output = sys.stdout.buffer if to_stdout else Path(options["output"]).open("wb")  # noqa: SIM115
        size = 0
        try:
            for chunk in export_zip(scope=scope, fmt=options["format"], progress=progress):
                output.write(chunk)
                size += len(chunk)
        finally:
            if not to_stdout:
                output.close()
        sys.stderr.write("\n")
        self.stderr.write(f"{size} bytes written in {time.monotonic() - started:.1f} s")
