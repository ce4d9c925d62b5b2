"""Export benchmark: GET /api/v1/archive/export?format=json of 10,000 issued invoices, time and peak RSS.

    .venv/bin/python bench/export_memory.py [--n 10000] [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Creates a throwaway PostgreSQL database ``scell_bench_export_<random>``, migrates it, creates a tenant
and bulk-inserts N issued invoices (one line each, a realistic ~5 kB CII, no validation: the export
does not care how they were issued; the chain triggers run as for any insert). Then, in a fresh
process (so that seeding does not inflate the figure), streams the export through the Django test
client (the real view, the real StreamingHttpResponse) into /dev/null and prints the wall time, the
zip size and the peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) before and after the export.
Target (issue 5): < 200 MB. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
PYTHON = str(BASE_DIR / ".venv" / "bin" / "python")
TARGET_MB = 200


def _env(database_url: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",  # no query log growing in memory, as in production
        SECRET_KEY="bench-export-memory-" + "x" * 40,
        SCELL_PAYMENT_PROVIDER="sandbox",
        SCELL_DRAMATIQ_BROKER="stub",
        SCELL_INPROCESS_WORKER="0",
        DJANGO_SETTINGS_MODULE="scell.settings",
    )
    return env


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def seed(n: int) -> None:
    import datetime as dt
    from decimal import Decimal

    import django

    django.setup()
    from django.db import transaction

    from invoicing.models import Invoice, InvoiceLine
    from scell.models import User
    from scell.services import tenant_create

    owner = User.objects.create_user("bench@example.com", "correct-horse-battery-9")
    created = tenant_create(
        legal_name="Atelier Dupont SAS",
        siren="732829320",
        identifier="BENCH",
        owner=owner,
        allowed_origins=[],
        siret="73282932000074",
        vat_id="FR44732829320",
        address_line1="12 rue de la Paix",
        postcode="75002",
        city="Paris",
    )
    tenant = created.tenant
    cii = (b'<?xml version="1.0" encoding="UTF-8"?>\n<rsm:CrossIndustryInvoice>' + b"<x>filler</x>" * 380) + (
        b"</rsm:CrossIndustryInvoice>"
    )
    seller = {"name": "Atelier Dupont SAS", "siren": "732829320", "vat_id": "FR44732829320"}
    buyer = {
        "name": "Client SARL",
        "siren": "552100554",
        "email": "ap@client.example",
        "address": {"line1": "1 rue de la Paix", "postcode": "75002", "city": "Paris", "country": "FR"},
    }
    day = dt.date(2026, 1, 1)
    batch = 1000
    for start in range(0, n, batch):
        invoices = []
        for i in range(start, min(n, start + batch)):
            issue_date = day + dt.timedelta(days=i % 300)
            invoices.append(
                Invoice(
                    tenant=tenant,
                    livemode=False,
                    # Inserted as drafts with their lines, then issued: the freeze trigger refuses lines
                    # added to an issued invoice, as it should.
                    status=Invoice.Status.DRAFT,
                    number=f"BENCH-{issue_date:%Y%m}-{i + 1:06d}",
                    issue_date=issue_date,
                    due_date=issue_date + dt.timedelta(days=30),
                    seller=seller,
                    buyer=buyer,
                    buyer_name=buyer["name"],
                    buyer_siren=buyer["siren"],
                    payment={"means_code": "58", "iban": "FR7630006000011234567890189"},
                    total_without_vat=Decimal("900.00"),
                    total_vat=Decimal("180.00"),
                    total_with_vat=Decimal("1080.00"),
                    amount_due=Decimal("1080.00"),
                    vat_breakdown=[{"category": "S", "rate": "20.00", "base": "900.00", "vat": "180.00"}],
                    cii_xml=cii,
                    document_sha256=secrets.token_hex(32),
                    issued_at=dt.datetime.combine(issue_date, dt.time(9), tzinfo=dt.UTC),
                )
            )
        with transaction.atomic():
            Invoice.objects.bulk_create(invoices)
            InvoiceLine.objects.bulk_create(
                InvoiceLine(
                    invoice=invoice,
                    position=1,
                    description="Consulting",
                    quantity=Decimal("2"),
                    unit_code="HUR",
                    unit_price=Decimal("450.00"),
                    vat_category="S",
                    vat_rate=Decimal("20.00"),
                    net_amount=Decimal("900.00"),
                )
                for invoice in invoices
            )
            Invoice.objects.filter(pk__in=[i.pk for i in invoices]).update(status=Invoice.Status.ISSUED)
    print(json.dumps({"key": created.keys["sk_test"].raw}))


def measure(key: str) -> None:
    import django

    django.setup()
    from django.test import Client

    from archive.models import ChainEntry
    from invoicing.models import Invoice

    count = Invoice.objects.filter(status="issued").count()
    chained = ChainEntry.objects.filter(source_table="invoicing_invoice").count()
    client = Client(HTTP_X_API_KEY=key)
    client.get("/api/v1/me")  # warm-up: URLconf, serializers, auth
    before = _rss_mb()
    started = time.perf_counter()
    response = client.get("/api/v1/archive/export?format=json")
    size = 0
    with open(os.devnull, "wb") as sink:
        for chunk in response.streaming_content:
            size += len(chunk)
            sink.write(chunk)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "status": response.status_code,
                "invoices": count,
                "chain_entries": chained,
                "zip_bytes": size,
                "seconds": round(elapsed, 2),
                "rss_before_mb": round(before, 1),
                "peak_rss_mb": round(_rss_mb(), 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        return seed(args.n)
    if args.measure:
        return measure(args.measure)

    import psycopg

    url = urllib.parse.urlsplit(args.database_url)
    name = f"scell_bench_export_{secrets.token_hex(4)}"
    bench_url = urllib.parse.urlunsplit(url._replace(path=f"/{name}"))
    admin = psycopg.connect(args.database_url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    env = _env(bench_url)
    try:
        started = time.perf_counter()
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True)
        print(f"database {name} migrated in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        seeded = subprocess.run(
            [PYTHON, __file__, "--seed", "--n", str(args.n)],
            cwd=BASE_DIR,
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        if seeded.returncode != 0:
            sys.exit(f"seeding failed:\n{seeded.stderr[-4000:]}")
        key = json.loads(seeded.stdout.strip().splitlines()[-1])["key"]
        print(f"{args.n} issued invoices inserted in {time.perf_counter() - started:.1f} s")
        measured = subprocess.run(
            [PYTHON, __file__, "--measure", key],
            cwd=BASE_DIR,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(measured.stdout.strip().splitlines()[-1])
        print(
            f"export json: HTTP {result['status']}, {result['invoices']} invoices "
            f"({result['chain_entries']} chain entries), {result['zip_bytes'] / 1e6:.1f} MB zip "
            f"in {result['seconds']:.1f} s ({result['invoices'] / result['seconds']:.0f} invoices/s)"
        )
        verdict = "OK" if result["peak_rss_mb"] < TARGET_MB else "OVER TARGET"
        print(
            f"peak RSS {result['peak_rss_mb']:.1f} MB"
            f" (after setup, before export: {result['rss_before_mb']:.1f} MB)"
            f" — target < {TARGET_MB} MB: {verdict}"
        )
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
