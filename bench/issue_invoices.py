"""Issue benchmark: POST /api/v1/invoices/{id}/issue through gunicorn, on PostgreSQL, one tenant.

    .venv/bin/python bench/issue_invoices.py [--n 200] [--concurrency 8]

Creates a throwaway PostgreSQL database, migrates it, creates a tenant with a full French legal profile,
starts gunicorn (the project's gunicorn.conf.py: gthread, post_fork warm-up) with the Redis Dramatiq
broker, then for each format (Factur-X EN16931, CII, UBL) and for 1 and ``--concurrency`` clients:
creates N drafts (not measured) and issues them, measuring each POST /issue (latency) and the wall time
of the batch (throughput). Then the one-page Factur-X PDF: GET download?format=facturx of invoices not
rendered yet (through gunicorn), and ``to_facturx_pdf`` called in this process after a warm-up. Last,
an in-process breakdown of one issue: time per stage, per Schematron XSLT, and SQL queries per request.
Everything it created (database, Redis keys, media files, processes) is removed at the end.

No Dramatiq worker runs unless ``--with-worker``: issue only enqueues the rendering, so the figures are
those of the issue path. With ``--with-worker`` a real worker renders the PDFs meanwhile, on the same
CPUs, as it would in a one-machine deployment.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import json
import os
import platform
import pstats
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
PYTHON = str(BASE_DIR / ".venv" / "bin" / "python")
GUNICORN = str(BASE_DIR / ".venv" / "bin" / "gunicorn")
IDENTIFIER = "BENCH"
TENANT_ARGS = [
    "--name", "Atelier Dupont SAS", "--siren", "732829320", "--identifier", IDENTIFIER,
    "--siret", "73282932000074", "--vat-id", "FR44732829320", "--legal-form", "SAS au capital de 10 000 €",
    "--address", "12 rue de la Paix", "--postcode", "75002", "--city", "Paris", "--country", "FR",
    "--email", "facturation@seller.example", "--iban", "FR7630006000011234567890189", "--bic", "AGRIFRPP",
]  # fmt: skip
FORMATS = [("facturx", "en16931"), ("cii", "en16931"), ("ubl", "en16931")]
TARGET_P50_MS = 60.0
TARGET_RATE = 40.0
TARGET_PDF_MS = 300.0


def draft_body(fmt: str, profile: str, n: int) -> dict[str, Any]:
    """The French draft of tests/invoicing/conftest.py (one line, standard rate)."""
    return {
        "type": "invoice",
        "format": fmt,
        "profile": profile,
        "due_date": "2026-12-24",
        "currency": "EUR",
        "buyer": {
            "name": "Client SARL",
            "siren": "552100554",
            "vat_id": "FR40552100554",
            "email": "ap@client.example",
            "address": {"line1": "1 rue de la Paix", "postcode": "75002", "city": "Paris", "country": "FR"},
        },
        "delivery": {
            "date": "2026-11-20",
            "address": {"line1": "3 quai Ouest", "postcode": "69002", "city": "Lyon", "country": "FR"},
        },
        "operation_category": "services",
        "vat_on_debits": False,
        "purchase_order_ref": f"PO-{n}",
        "delivery_note_ref": "BL-2026-118",
        "contract_ref": None,
        "lines": [
            {
                "description": "Consulting",
                "quantity": str(1 + n % 9),
                "unit_code": "HUR",
                "unit_price": "450.00",
                "vat_category": "S",
                "vat_rate": "20.00",
                "allowances": [],
                "charges": [],
            }
        ],
        "allowances": [],
        "charges": [],
        "payment": {
            "means_code": "58",
            "iban": "FR7630006000011234567890189",
            "bic": "AGRIFRPP",
            "terms": "30 days net",
        },
        "notes": [],
        "sub_tenant": None,
    }


# --- Services -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL what is left after 10 s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@dataclass
class Stack:
    base_url: str = ""
    database_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    logs: Path = Path()
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]
                raise SystemExit(f"{name} exited with {process.returncode}:\n{log}")


@contextlib.contextmanager
def services(args: argparse.Namespace) -> Iterator[Stack]:
    import psycopg
    import redis

    admin_url = args.database_url
    dbname = f"scell_bench_{secrets.token_hex(4)}"
    parts = urllib.parse.urlsplit(admin_url)
    own_url = urllib.parse.urlunsplit(parts._replace(path=f"/{dbname}"))
    redis_url = f"{args.redis_url.rstrip('/')}/{args.redis_db}"
    redis_client = redis.Redis.from_url(redis_url, socket_timeout=5)
    if redis_client.dbsize():
        raise SystemExit(f"Redis database {redis_url} is not empty: pick another one with --redis-db")
    tmp = Path(tempfile.mkdtemp(prefix="scell-bench-"))
    env = {k: v for k, v in os.environ.items() if k != "SCELL_START_INPROCESS_WORKER"}
    env |= {
        "DATABASE_URL": own_url,
        "REDIS_URL": redis_url,
        "SCELL_DRAMATIQ_BROKER": "redis",
        "SCELL_INPROCESS_WORKER": "0",
        "DEBUG": "1",
        "MEDIA_ROOT": str(tmp / "media"),
        "DJANGO_SETTINGS_MODULE": "scell.settings",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    stack = Stack(database_url=own_url, env=env, logs=tmp)
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    print(f"database {dbname}, Redis {redis_url}, files in {tmp}")

    def manage(*argv: str) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *argv], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300
        )
        if result.returncode:
            raise SystemExit(f"manage.py {argv[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start(name: str, argv: list[str]) -> None:
        with (tmp / f"{name}.log").open("wb") as log:
            stack.processes[name] = subprocess.Popen(
                argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    try:
        manage("migrate", "--no-input", "-v", "0")
        stack.keys = json.loads(manage("create_tenant", "--json", *TENANT_ARGS).strip().splitlines()[-1])
        port = free_port()
        stack.base_url = f"http://127.0.0.1:{port}"
        start(
            "gunicorn",
            [GUNICORN, "scell.wsgi", "-c", "gunicorn.conf.py", "-w", str(args.workers),
             "--threads", str(args.threads), "-b", f"127.0.0.1:{port}", "--timeout", "120"],
        )  # fmt: skip
        if args.with_worker:
            start(
                "dramatiq",
                [PYTHON, "manage.py", "rundramatiq", "--processes", "1", "--threads", "2",
                 "--worker-shutdown-timeout", "5000"],
            )  # fmt: skip
        deadline = time.monotonic() + 120
        client = Client(stack)
        while True:
            stack.check_alive()
            with contextlib.suppress(OSError, http.client.HTTPException):
                if client.call("GET", "/api/v1/invoices")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not answer within 120 s")
            time.sleep(0.3)
        yield stack
    finally:
        for process in stack.processes.values():
            stop(process)
        if args.keep_logs:
            print(f"logs kept in {tmp}")
        with contextlib.suppress(Exception):
            keys = list(redis_client.scan_iter("*"))
            if keys:
                redis_client.delete(*keys)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if not args.keep_logs:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)
        print(f"dropped {dbname}, cleaned Redis db {args.redis_db}")


# --- HTTP client ----------------------------------------------------------------------------------


class Client:
    """Keep-alive HTTP/1.1 connections, one per thread."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        parsed = urllib.parse.urlsplit(stack.base_url)
        self.host, self.port = parsed.hostname, parsed.port
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        return conn

    def call(self, method: str, path: str, body: Any = None, key: str = "sk_test") -> tuple[int, bytes]:
        headers = {"X-API-Key": self.stack.keys[key]} if self.stack.keys else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None, expect: int = 200) -> dict[str, Any]:
        status, content = self.call(method, path, body)
        if status != expect:
            raise SystemExit(f"{method} {path} -> {status}: {content[:2000]!r}")
        return json.loads(content)


def run_parallel(fn: Callable[[Any], Any], items: list[Any], concurrency: int) -> tuple[list[Any], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(fn, items))
    return results, time.perf_counter() - started


# --- CPU accounting -------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def foreign_backends(database_url: str) -> set[int]:
    """PostgreSQL backends connected to another database than the bench's (other jobs on the server)."""
    import psycopg

    dbname = urllib.parse.urlsplit(database_url).path.lstrip("/")
    with contextlib.suppress(Exception), psycopg.connect(database_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname IS NOT NULL AND datname <> %s", (dbname,)
        ).fetchall()
        return {pid for (pid,) in rows}
    return set()


def cpu_snapshot(
    gunicorn_pgid: int, worker_pgid: int | None, database_url: str = ""
) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) used so far by each process alive now, with its group."""
    snapshot: dict[int, tuple[str, float]] = {}
    me = os.getpid()
    foreign = foreign_backends(database_url) if database_url else set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        pid = int(raw.split(" ", 1)[0])
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        pgid, utime, stime = int(fields[2]), int(fields[11]), int(fields[12])
        if pid == me:
            group = "bench client"
        elif pgid == gunicorn_pgid:
            group = "gunicorn"
        elif worker_pgid is not None and pgid == worker_pgid:
            group = "dramatiq"
        elif comm.startswith("postgres") and pid not in foreign:
            group = "postgres"  # the bench database's backends and the server's own processes
        elif comm.startswith("redis"):
            group = "redis"
        else:
            group = "other"
        snapshot[pid] = (group, (utime + stime) / CLOCK_TICKS)
    return snapshot


def cpu_delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds used between two snapshots, by group (processes that exited meanwhile are missed)."""
    groups: dict[str, float] = {}
    for pid, (group, seconds) in after.items():
        previous = before.get(pid)
        used = seconds - previous[1] if previous and previous[0] == group else seconds
        groups[group] = groups.get(group, 0.0) + max(0.0, used)
    return groups


def wait_quiet(stack: Stack, timeout: float) -> float:
    """Wait (up to ``timeout`` s) until the machine is idle apart from us: the figures of a shared machine
    mean little while another job runs. Returns the foreign CPU load (in CPUs) of the last second."""
    worker = stack.processes.get("dramatiq")
    pgids = (stack.processes["gunicorn"].pid, worker.pid if worker else None, stack.database_url)
    end = time.monotonic() + timeout
    while True:
        before = cpu_snapshot(*pgids)
        time.sleep(1.0)
        used = cpu_delta(before, cpu_snapshot(*pgids))
        foreign = sum(seconds for group, seconds in used.items() if group != "bench client")
        if foreign < 0.1 or time.monotonic() > end:
            return foreign


def gunicorn_rss_mib(stack: Stack) -> list[float]:
    """Resident memory of each gunicorn worker process (the master excluded)."""
    master = stack.processes["gunicorn"].pid
    sizes = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError):
            text = status.read_text()
            pid = int(status.parent.name)
            ppid = int(re.search(r"^PPid:\s*(\d+)", text, re.M).group(1))
            if ppid == master and pid != master:
                sizes.append(int(re.search(r"^VmRSS:\s*(\d+)", text, re.M).group(1)) / 1024)
    return sizes


# --- Measurements ---------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Row:
    fmt: str
    concurrency: int
    n: int
    p50: float
    p90: float
    p99: float
    rate: float
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU per issue, by process group
    foreign_load: float = 0.0  # CPUs used by other jobs just before the batch


def create_drafts(client: Client, fmt: str, profile: str, n: int, concurrency: int) -> list[str]:
    bodies = [draft_body(fmt, profile, i) for i in range(n)]
    drafts, _ = run_parallel(
        lambda body: client.json("POST", "/api/v1/invoices", body, expect=201)["id"], bodies, concurrency
    )
    return drafts


def issue_batch(client: Client, ids: list[str], concurrency: int) -> tuple[list[float], float]:
    def issue(invoice_id: str) -> float:
        started = time.perf_counter()
        status, content = client.call("POST", f"/api/v1/invoices/{invoice_id}/issue")
        elapsed = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"issue {invoice_id} -> {status}: {content[:2000]!r}")
        return elapsed * 1000

    return run_parallel(issue, ids, concurrency)


def bench_issue(client: Client, stack: Stack, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    n, concurrency = args.n, args.concurrency
    rows: list[Row] = []
    issued: list[str] = []
    worker = stack.processes.get("dramatiq")
    pgids = (stack.processes["gunicorn"].pid, worker.pid if worker else None, stack.database_url)
    for fmt, profile in FORMATS:
        # Warm-up, not measured: every request thread of every worker has cloned its stylesheets.
        warm = create_drafts(client, fmt, profile, 4 * concurrency, concurrency)
        issue_batch(client, warm, concurrency)
        issued += warm
        for clients in sorted({1, concurrency}):
            for attempt in range(1, args.retries + 2):
                ids = create_drafts(client, fmt, profile, n, concurrency)
                stack.check_alive()
                foreign = wait_quiet(stack, args.quiet_timeout)
                before = cpu_snapshot(*pgids)
                latencies, wall = issue_batch(client, ids, clients)
                used = cpu_delta(before, cpu_snapshot(*pgids))
                issued += ids
                row = Row(
                    fmt=f"{fmt}/{profile}" if fmt == "facturx" else fmt,
                    concurrency=clients,
                    n=n,
                    p50=statistics.median(latencies),
                    p90=percentile(latencies, 90),
                    p99=percentile(latencies, 99),
                    rate=n / wall,
                    foreign_load=foreign,
                    cpu_ms={group: seconds * 1000 / n for group, seconds in used.items()},
                )
                print(
                    f"  {row.fmt:16} x{clients}: p50 {row.p50:6.1f} ms  p99 {row.p99:6.1f} ms  "
                    f"{row.rate:6.1f} invoices/s  CPU ms/issue "
                    + ", ".join(f"{g} {ms:.1f}" for g, ms in sorted(row.cpu_ms.items()))
                )
                # Another job took CPU during the batch: measure again (up to --retries times).
                if row.cpu_ms.get("other", 0.0) <= args.max_other_ms:
                    break
                if attempt <= args.retries:
                    print(f"    other processes used {row.cpu_ms['other']:.1f} ms per issue: again")
            rows.append(row)
    return rows, issued


def bench_pdf_http(client: Client, ids: list[str], count: int) -> dict[str, float]:
    """GET download?format=facturx of issued invoices whose Factur-X was not rendered yet."""

    def download(invoice_id: str) -> float:
        started = time.perf_counter()
        status, content = client.call("GET", f"/api/v1/invoices/{invoice_id}/download?format=facturx")
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200 or not content.startswith(b"%PDF-"):
            raise SystemExit(f"download {invoice_id} -> {status}: {content[:300]!r}")
        return elapsed

    # The first render of each worker loads WeasyPrint's fonts: two per worker, in parallel, first.
    first, _ = run_parallel(download, ids[:4], 4)
    timings = [download(invoice_id) for invoice_id in ids[4 : 4 + count]]
    return {
        "first": max(first),
        "p50": statistics.median(timings),
        "p90": percentile(timings, 90),
        "n": len(timings),
    }


def in_process(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Breakdown in this process (Django set up on the bench database; nothing forks after this)."""
    os.environ.update(stack.env)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    from invoicing import services as invoice_services
    from invoicing.formats.facturx import embed_cii, pdf_metadata, to_facturx_pdf
    from invoicing.formats.pdf import render_invoice_pdf
    from invoicing.models import Invoice
    from invoicing.validation import engine, warm_up
    from invoicing.validation.validators import _parse, _saxon_text

    out: dict[str, Any] = {}
    compile_seconds = warm_up()
    out["compile_s"] = compile_seconds

    # Factur-X PDF, in process.
    invoice = Invoice.objects.filter(status="issued", format="facturx").order_by("issued_at").first()
    doc = invoice_services.issued_document(invoice)
    cii = bytes(invoice.cii_xml)
    for _ in range(3):
        to_facturx_pdf(doc, cii, check_xsd=False)

    def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
        values = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            values.append((time.perf_counter() - started) * 1000)
        return values

    out["pdf_total"] = statistics.median(timed(lambda: to_facturx_pdf(doc, cii, check_xsd=False), 20))
    out["pdf_weasyprint"] = statistics.median(timed(lambda: render_invoice_pdf(doc), 20))
    pdf = render_invoice_pdf(doc)
    out["pdf_embed"] = statistics.median(
        timed(
            lambda: embed_cii(pdf, cii, profile=doc.profile, metadata=pdf_metadata(doc), check_xsd=False), 20
        )
    )

    # One Schematron stylesheet at a time on the documents just issued.
    xslt: dict[str, dict[str, float]] = {}
    for fmt, keys in (
        ("facturx", ["en16931-cii", "facturx-en16931", "br-fr-cii"]),
        ("ubl", ["en16931-ubl", "br-fr-ubl"]),
    ):
        inv = Invoice.objects.filter(status="issued", format=fmt).first()
        xml = (
            bytes(inv.cii_xml)
            if fmt == "facturx"
            else invoice_services.render_xml(invoice_services.issued_document(inv), "ubl")
        )
        text = _saxon_text(_parse(xml))
        for key in keys:
            engine.run([key], text)
            xslt[key] = {
                "ms": statistics.median(timed(lambda key=key, text=text: engine.run([key], text), 30)),
                "kib": len(text.encode()) / 1024,
            }
        xslt[f"{fmt}: whole validate_xml"] = {
            "ms": statistics.median(
                timed(
                    lambda xml=xml, fmt=fmt: invoice_services.validate_xml(xml, fmt=fmt, profile="en16931"),
                    30,
                )
            ),
            "kib": len(xml) / 1024,
        }
    out["xslt"] = xslt

    # Stages of one issue request, in process (Django test client: no HTTP, no gunicorn).
    stage_totals: dict[str, list[float]] = {}
    current: dict[str, float] = {}  # per issue: a stage may run twice (to_cii for a CII invoice)
    originals: dict[tuple[Any, str], Any] = {}

    def wrap(module: Any, name: str, label: str) -> None:
        original = getattr(module, name)
        originals[(module, name)] = original

        def wrapper(*a: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                current[label] = current.get(label, 0.0) + (time.perf_counter() - started) * 1000

        setattr(module, name, wrapper)

    wrap(invoice_services, "render_xml", "render XML (UBL/CII) for validation")
    wrap(invoice_services, "validate_xml", "validate (XSD + Schematrons)")
    wrap(invoice_services, "to_cii", "to_cii (x2 for Factur-X/CII: validated, then stored)")
    wrap(invoice_services, "credits_charge", "credits_charge")
    wrap(invoice_services.mapping, "build_document", "mapping.build_document")
    wrap(invoice_services.computation, "check", "computation.check")
    wrap(invoice_services, "invoice_issue", "services.invoice_issue (all of the above + DB)")
    django_client = DjangoClient(HTTP_X_API_KEY=stack.keys["sk_test"])
    per_format: dict[str, dict[str, Any]] = {}
    profile_stats = cProfile.Profile() if args.profile else None
    try:
        for fmt, profile in FORMATS:
            stage_totals.clear()
            requests: list[float] = []
            queries: list[int] = []
            for i in range(args.inprocess_n):
                created = django_client.post(
                    "/api/v1/invoices", draft_body(fmt, profile, i), content_type="application/json"
                )
                invoice_id = created.json()["id"]
                current.clear()
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    if profile_stats is not None:
                        profile_stats.enable()
                    response = django_client.post(f"/api/v1/invoices/{invoice_id}/issue")
                    if profile_stats is not None:
                        profile_stats.disable()
                    requests.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.content
                queries.append(len(captured.captured_queries))
                for label, ms in current.items():
                    stage_totals.setdefault(label, []).append(ms)
                if i == 0:
                    per_format.setdefault(fmt, {})["sql"] = [
                        q["sql"][:140] for q in captured.captured_queries
                    ]
            per_format[fmt] |= {
                "request": statistics.median(requests[1:]),
                "queries": statistics.median(queries),
                "stages": {label: statistics.median(values[1:]) for label, values in stage_totals.items()},
            }
    finally:
        for (module, name), original in originals.items():
            setattr(module, name, original)
    out["per_format"] = per_format
    if profile_stats is not None:
        buffer = io.StringIO()
        pstats.Stats(profile_stats, stream=buffer).sort_stats("cumulative").print_stats(45)
        out["profile"] = buffer.getvalue()
    connection.close()
    return out


# --- Report ---------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mhz = re.search(r"^cpu MHz\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text()
    mem = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.M)
    versions = {}
    for package in ("django", "saxonche", "weasyprint", "gunicorn", "psycopg"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[package] = version(package)
    return {
        "nproc": str(os.cpu_count()),
        "cpu": (model.group(1) if model else "?") + (f" @ {float(mhz.group(1)):.0f} MHz" if mhz else ""),
        "ram": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?",
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def report(
    args: argparse.Namespace,
    rows: list[Row],
    pdf_http: dict[str, float],
    details: dict[str, Any],
) -> str:
    info = machine()
    lines = [
        f"Machine: {info['nproc']} CPU ({info['cpu']}), {info['ram']} RAM, {info['os']}, "
        f"Python {info['python']}; {info['versions']}",
        f"gunicorn {args.workers} workers x {args.threads} threads (gthread), PostgreSQL on localhost, "
        f"Dramatiq worker {'running' if args.with_worker else 'not running'}; N = {args.n} issues per row; "
        "the bench client runs on the same machine.",
        "",
        "| format | clients | p50 ms | p90 ms | p99 ms | invoices/s | CPU ms per issue: gunicorn / postgres "
        "/ bench client / other | other jobs before (CPUs) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    lines += [
        f"| {r.fmt} | {r.concurrency} | {r.p50:.1f} | {r.p90:.1f} | {r.p99:.1f} | {r.rate:.1f} | "
        + " / ".join(f"{r.cpu_ms.get(g, 0.0):.1f}" for g in ("gunicorn", "postgres", "bench client", "other"))
        + (f" (+ dramatiq {r.cpu_ms['dramatiq']:.1f})" if "dramatiq" in r.cpu_ms else "")
        + f" | {r.foreign_load:.2f} |"
        for r in rows
    ]
    lines += [
        "",
        f"Factur-X PDF via GET download (not rendered yet, through gunicorn, sequential): "
        f"p50 {pdf_http['p50']:.0f} ms, p90 {pdf_http['p90']:.0f} ms over {pdf_http['n']:.0f} invoices "
        f"(first render of a worker: {pdf_http['first']:.0f} ms).",
        "Factur-X PDF in process (to_facturx_pdf, after warm-up, median of 20): "
        f"{details['pdf_total']:.0f} ms = WeasyPrint {details['pdf_weasyprint']:.0f} ms "
        f"+ embed/XMP {details['pdf_embed']:.0f} ms.",
        "",
        "Schematron transforms in process (median of 30, one stylesheet per run, parse included):",
        "",
        "| stylesheet | document KiB | ms |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {key} | {v['kib']:.1f} | {v['ms']:.1f} |" for key, v in details["xslt"].items()]
    rss = details.get("gunicorn_rss_mib") or []
    lines += ["", f"gunicorn worker RSS after the run: {', '.join(f'{v:.0f}' for v in rss)} MiB"]
    lines += ["", "One issue in process (Django test client, no HTTP; medians):", ""]
    for fmt, data in details["per_format"].items():
        lines.append(f"* {fmt}: request {data['request']:.1f} ms, {data['queries']:.0f} SQL queries")
        for label, ms in data["stages"].items():
            lines.append(f"  * {label}: {ms:.1f} ms")
    checks = []
    by = {(r.fmt, r.concurrency): r for r in rows}
    for r in rows:
        if r.concurrency == 1:
            checks.append(f"p50 {r.fmt} {r.p50:.1f} ms {'<' if r.p50 < TARGET_P50_MS else '>='} 60 ms")
    top = max(r.concurrency for r in rows)
    for fmt in {r.fmt for r in rows}:
        row = by.get((fmt, top))
        if row:
            ok = row.rate >= TARGET_RATE
            checks.append(f"{fmt} x{top}: {row.rate:.1f} invoices/s {'>=' if ok else '<'} 40")
    checks.append(f"PDF {pdf_http['p50']:.0f} ms {'<' if pdf_http['p50'] < TARGET_PDF_MS else '>='} 300 ms")
    lines += ["", "Targets: " + "; ".join(checks)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="issues per format and concurrency")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (also run with 1)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--with-worker", action="store_true", help="run a Dramatiq worker meanwhile")
    parser.add_argument("--pdf-n", type=int, default=20, help="Factur-X downloads to time")
    parser.add_argument("--inprocess-n", type=int, default=15, help="in-process issues per format")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process issues")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="a database of the server where the throwaway one is created",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--redis-db", type=int, default=13, help="must be empty; flushed at the end")
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=60,
        help="before each measurement, wait up to this many seconds for other jobs to leave the CPUs idle",
    )
    parser.add_argument(
        "--max-other-ms",
        type=float,
        default=3.0,
        help="a batch during which other processes used more CPU than this per issue is measured again",
    )
    parser.add_argument("--retries", type=int, default=3, help="how many times, at most")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()

    with services(args) as stack:
        client = Client(stack)
        print(f"gunicorn on {stack.base_url}; issuing {args.n} invoices per row")
        rows, issued = bench_issue(client, stack, args)
        rss = gunicorn_rss_mib(stack)
        print("Factur-X downloads")
        wait_quiet(stack, args.quiet_timeout)
        pdf_http = bench_pdf_http(client, issued, args.pdf_n)
        print("in-process breakdown")
        wait_quiet(stack, args.quiet_timeout)
        details = in_process(stack, args)
        details["gunicorn_rss_mib"] = rss
    text = report(args, rows, pdf_http, details)
    print()
    print(text)
    if details.get("profile"):
        print(details["profile"])
    if args.json:
        raw = {"rows": [r.__dict__ for r in rows], "pdf_http": pdf_http, "details": details}
        args.json.write_text(json.dumps(raw, indent=2, default=str))


if __name__ == "__main__":
    main()
