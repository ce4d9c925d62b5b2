"""Chain verification benchmark: how fast ``archive.chain.verify_chain`` walks a long chain, and in how
much memory.

    .venv/bin/python bench/verify_chain.py [--n 100000] [--database-url postgres://…/postgres]

Creates a throwaway PostgreSQL database ``scell_bench_chain_<random>``, migrates it, creates one tenant,
then builds a chain of N links through the real triggers: N/4 received invoices inserted with
``generate_series`` (each with a ~4 KB source file, hashed into its payload), two lines each and one
lifecycle event each, every row chained by the database as the application's rows are. Then, in a fresh
process (so that its peak RSS is the verifier's, not the builder's), it runs ``verify_chain`` — every
hash recomputed in Python, every payload compared with the canonical bytes of its current source row —
and prints links/s (target ≥ 50,000) and the process's RSS before and at peak. Drops the database at
the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
PYTHON = sys.executable
TARGET_RATE = 50_000
BATCH = 250  # invoices per build transaction (1,000 links)

BUILD_SQL = r"""
INSERT INTO invoicing_invoice (
    id, tenant_id, livemode, sub_tenant_id, status, type, number, format, profile, issue_date, due_date,
    currency, tax_currency, operation_category, vat_on_debits, buyer_reference, purchase_order_ref,
    delivery_note_ref, contract_ref, project_ref, seller, buyer, buyer_name, buyer_siren, payment, notes,
    allowances, charges, vat_exemptions, preceding_number, prepaid_amount, total_without_vat, total_vat,
    total_with_vat, amount_due, totals, vat_breakdown, cii_xml, document_sha256, source_syntax,
    source_file, import_report, created_at, updated_at
)
SELECT gen_random_uuid(), %(tenant)s, false, NULL, 'received', 'invoice',
    'SUP-2026-' || lpad(g::text, 7, '0'), 'cii', 'en16931', DATE '2026-11-20', DATE '2026-12-20', 'EUR',
    '', 'services', false, 'BR-' || g,
    'PO-' || g, '', '', '',
    jsonb_build_object('name', 'Fournisseur ' || g || ' SARL', 'siren', '552100554',
        'vat_id', 'FR40552100554',
        'address', jsonb_build_object('line1', g || ' rue de la Paix', 'postcode', '75002', 'city', 'Paris',
                                      'country', 'FR')),
    jsonb_build_object('name', 'Atelier Dupont SAS', 'siren', '732829320',
        'address', jsonb_build_object('line1', '12 rue de la Paix', 'postcode', '75002', 'city', 'Paris',
                                      'country', 'FR')),
    'Atelier Dupont SAS', '732829320',
    '{"means_code": "58", "iban": "FR7630006000011234567890189", "terms": "30 days net"}',
    '[{"subject": "AAB", "text": "Pas d''escompte pour paiement anticipé"}]', '[]', '[]', '{}', '', 0,
    1000.00, 200.00, 1200.00, 1200.00,
    '{"line_total": "1000.00", "tax_exclusive": "1000.00", "tax_total": "200.00",
      "tax_inclusive": "1200.00"}',
    '[{"category": "S", "rate": "20.00", "taxable": "1000.00", "tax": "200.00"}]',
    NULL, md5(g::text) || md5(g::text), 'cii',
    convert_to(repeat('<ram:IncludedSupplyChainTradeLineItem>' || g
                      || '</ram:IncludedSupplyChainTradeLineItem>', 90), 'UTF8'),
    '{"valid": true, "errors": []}', now(), now()
FROM generate_series(%(first)s, %(last)s) AS g;

INSERT INTO invoicing_invoiceline (
    invoice_id, position, description, detail, quantity, unit_code, unit_price, vat_category, vat_rate,
    allowances, charges, seller_item_id, net_amount
)
SELECT i.id, p, 'Prestation de conseil ' || p, '', 2, 'HUR', 250, 'S', 20.00, '[]', '[]', 'SKU-' || p, 500.00
FROM invoicing_invoice i CROSS JOIN generate_series(1, 2) AS p
WHERE i.number BETWEEN %(first_number)s AND %(last_number)s
ORDER BY i.number, p;

INSERT INTO invoicing_invoiceevent (id, invoice_id, tenant_id, livemode, type, status_code, data, created_at)
SELECT gen_random_uuid(), i.id, i.tenant_id, false, 'received', '',
       jsonb_build_object('syntax', 'cii', 'valid', true, 'sha256', i.document_sha256), now()
FROM invoicing_invoice i
WHERE i.number BETWEEN %(first_number)s AND %(last_number)s
ORDER BY i.number;
"""


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def django_setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SCELL_DRAMATIQ_BROKER", "stub")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scell.settings")
    import django

    django.setup()


def stage_build(database_url: str, n: int) -> None:
    django_setup(database_url)
    from django.db import connection, transaction

    from scell.models import User
    from scell.services import tenant_create

    owner = User.objects.create_user("bench@scell.example", "bench-verify-chain-2026")
    tenant = tenant_create(
        legal_name="Atelier Dupont SAS", siren="732829320", identifier="BENCH", owner=owner
    ).tenant
    invoices = n // 4
    started = time.perf_counter()
    # Batches of BATCH invoices, one transaction each: every append updates the chain head, and
    # PostgreSQL walks all of a row's versions updated in the same transaction, so one giant
    # transaction would be quadratic (an application transaction appends a handful of links).
    for first in range(1, invoices + 1, BATCH):
        last = min(first + BATCH - 1, invoices)
        params = {
            "tenant": str(tenant.pk),
            "first": first,
            "last": last,
            "first_number": f"SUP-2026-{first:07d}",
            "last_number": f"SUP-2026-{last:07d}",
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(BUILD_SQL, params)
    with transaction.atomic(), connection.cursor() as cursor:
        # N not a multiple of 4: the remainder as extra events of the first invoice.
        for _ in range(n - 4 * invoices):
            cursor.execute(
                "INSERT INTO invoicing_invoiceevent (id, invoice_id, tenant_id, livemode, type, status_code,"
                " data, created_at) SELECT gen_random_uuid(), id, tenant_id, false, 'paid', '', '{}', now()"
                " FROM invoicing_invoice ORDER BY number LIMIT 1"
            )
    elapsed = time.perf_counter() - started
    cursor = connection.cursor()
    cursor.execute("VACUUM ANALYZE")
    cursor.execute("SELECT chain_key, last_seq FROM archive_chainhead")
    key, seq = cursor.fetchone()
    cursor.execute("SELECT avg(length(payload))::int FROM archive_chainentry")
    avg_payload = cursor.fetchone()[0]
    print(json.dumps({"chain_key": key, "links": seq, "build_s": elapsed, "avg_payload": avg_payload}))


def stage_verify(database_url: str, chain_key: str) -> None:
    django_setup(database_url)
    from django.db import connection

    from archive.chain import verify_chain

    connection.ensure_connection()
    rss_before = rss_kb()
    started = time.perf_counter()
    result = verify_chain(chain_key)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "ok": result.ok,
                "checked": result.entries_checked,
                "seconds": elapsed,
                "rss_before_kb": rss_before,
                "peak_rss_kb": peak,
            }
        )
    )


def run_stage(*args: str) -> dict:
    done = subprocess.run(
        [PYTHON, __file__, *args], cwd=BASE_DIR, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"stage {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="links in the chain (default 100,000)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=3, help="verification runs (best and median shown)")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    parser.add_argument("--stage", choices=["build", "verify"], help=argparse.SUPPRESS)
    parser.add_argument("--chain-key", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage == "build":
        return stage_build(args.database_url, args.n)
    if args.stage == "verify":
        return stage_verify(args.database_url, args.chain_key)

    import psycopg

    admin_url = args.database_url
    name = f"scell_bench_chain_{secrets.token_hex(4)}"
    bench_url = admin_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "DATABASE_URL": bench_url, "SCELL_DRAMATIQ_BROKER": "stub"}
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=BASE_DIR, env=env, check=True
        )
        built = run_stage("--stage", "build", "--database-url", bench_url, "--n", str(args.n))
        print(
            f"built {built['links']:,} links in {built['build_s']:.1f} s through the triggers "
            f"({built['links'] / built['build_s']:,.0f} appends/s), average payload {built['avg_payload']} B"
        )
        runs = []
        for _ in range(args.runs):
            runs.append(
                run_stage("--stage", "verify", "--database-url", bench_url, "--chain-key", built["chain_key"])
            )
            assert runs[-1]["ok"] and runs[-1]["checked"] == built["links"], runs[-1]
        rates = sorted(r["checked"] / r["seconds"] for r in runs)
        best, median = rates[-1], rates[len(rates) // 2]
        peak = max(r["peak_rss_kb"] for r in runs)
        before = max(r["rss_before_kb"] for r in runs)
        print(
            f"verify_chain: {built['links']:,} links, median {median:,.0f} links/s, best {best:,.0f} links/s "
            f"(target ≥ {TARGET_RATE:,}) — {'OK' if median >= TARGET_RATE else 'BELOW TARGET'}"
        )
        print(
            f"memory: RSS {before / 1024:.0f} MB after Django set-up, peak {peak / 1024:.0f} MB during the "
            f"check (+{(peak - before) / 1024:.0f} MB)"
        )
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
