"""Platform benchmark: Scell as deployed (PostgreSQL, gunicorn, a Dramatiq worker, Redis), loaded from a
second process. Run it with ``bench/run`` (which starts PostgreSQL and Redis if needed).

    bench/run [--n 100] [--clients 1,8,32] [--json FILE] [--quick]

One run:

1. a throwaway database ``scell_bench_<random>`` (migrated, one tenant with a full French legal profile,
   its sandbox key), gunicorn with the project's gunicorn.conf.py and ``manage.py rundramatiq`` with its
   defaults, on the Redis database ``--redis-db`` (13), production settings (``DEBUG=0``, JSON logs at
   INFO; rate limits raised out of reach but still counted in Redis);
2. a load generator in a separate process (``loadgen.py``: one thread and one keep-alive connection per
   client) while this process samples the services' memory and everybody's CPU from /proc;
3. the framework ceiling: ``GET /api/v1/me`` (authenticated DRF view, no query of its own) at each
   client count; then ``POST /api/v1/invoices/{id}/issue`` per format (Factur-X EN 16931, CII, UBL) and
   ``POST /api/v1/signature-requests`` (JSON, a one-page PDF, two signers) at each client count, each as
   requests/s, p50/p99 and the ratio to the ceiling at the same client count. Before each batch the
   worker's queues are empty and the machine is idle (``--quiet-timeout``); during it the worker is
   paused (SIGSTOP: its messages wait in Redis; ``--concurrent-worker`` lets it run); after it, the time
   the worker takes to catch up and its CPU per request are recorded;
4. the one-page Factur-X PDF rendered by ``GET …/download?format=facturx`` in gunicorn (the worker paused
   meanwhile so that the download does the rendering), and the worker's own cost per issued invoice
   (render + check of the Factur-X, archive, PDP transmission, events);
5. chain verification (``GET /api/v1/archive/chain/verify``) on the chain the run built, then on a chain
   padded to ``--chain-links`` links through the real triggers (``verify_chain.py``'s SQL);
6. peak memory (RSS sum and PSS sum) of gunicorn (master + workers) and of the worker processes;
7. prints the tables and adds them at the top of ``bench/RESULTS.md`` (not with ``--quick``), then
   removes everything it created, on failure and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (  # the shared modules sit next to this script
    BASE_DIR,
    FORMATS,
    PYTHON,
    MemorySampler,
    Stack,
    cpu_delta,
    cpu_snapshot,
    draft_body,
    exit_on_sigterm,
    machine,
    other_jobs_report,
    other_jobs_start,
    percentile,
    services,
    wait_quiet,
)

RESULTS = BASE_DIR / "bench" / "RESULTS.md"
MARKER = "<!-- bench/run: new results are inserted below this line, newest first -->"
GROUPS = ("gunicorn", "postgres", "dramatiq", "client", "other")
SIGNERS = [
    {"name": "Élodie Martin", "email": "elodie@example.com", "phone": "+33612345678"},
    {"name": "Jürgen Weiß", "email": "jurgen@example.com", "phone": "+4915123456789"},
]
CEILING_FACTOR = 5  # the ceiling's requests take a few ms: 5 x N of them make batches of a useful length
QUICK = {"n": 8, "clients": "1,4", "pdf_n": 3, "chain_links": 3000, "quiet_timeout": 0.0, "retries": 0}
DEFAULTS = {"n": 100, "clients": "1,8,32", "pdf_n": 20, "chain_links": 100_000, "quiet_timeout": 30.0}


STARTED = time.monotonic()


def say(text: str) -> None:
    """A progress line, with the minutes and seconds since the start."""
    elapsed = int(time.monotonic() - STARTED)
    print(f"[{elapsed // 60:2d}:{elapsed % 60:02d}] {text}", flush=True)


def contract_pdf() -> bytes:
    """A one-page contract of a few paragraphs (WeasyPrint), the document of the signature requests."""
    import weasyprint

    paragraph = (
        "Le prestataire s'engage à réaliser la mission décrite en annexe dans les délais convenus. "
        "Le client s'engage à régler les factures à 30 jours, date de facture. "
    )
    body = "".join(f"<p>Article {i}. {paragraph * 2}</p>" for i in range(1, 9))
    html = f"<html><body><h1>Contrat de prestation</h1>{body}</body></html>"
    return weasyprint.HTML(string=html).write_pdf()


# --- Load generator and worker --------------------------------------------------------------------


class LoadGen:
    """The load generator process (``loadgen.py``), driven through its stdin/stdout."""

    def __init__(self, stack: Stack) -> None:
        env = {**os.environ, "BENCH_API_KEY": stack.keys["sk_test"], "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [PYTHON, str(BASE_DIR / "bench" / "loadgen.py"), "--base-url", stack.base_url],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.pid = self.process.pid

    def batch(
        self,
        requests: list[tuple[str, str, int | None]],
        *,
        concurrency: int,
        bodies: list[Any] = (),
        expect: int = 200,
        collect: str | None = None,
        prefix: str | None = None,
    ) -> dict[str, Any]:
        command = {
            "op": "batch",
            "requests": requests,
            "bodies": list(bodies),
            "concurrency": concurrency,
            "expect": expect,
            "collect": collect,
            "prefix": prefix,
        }
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the load generator exited with {self.process.wait()}")
        result = json.loads(line)
        if result["failed"]:
            raise SystemExit(
                f"{result['failed']} of {len(requests)} requests failed "
                f"({requests[0][0]} {requests[0][1]} …): {result['errors']}"
            )
        return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.process.stdin
            self.process.stdin.write(json.dumps({"op": "exit"}) + "\n")
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def backlog(redis_client: Any) -> int:
    """Messages enqueued or being processed in the worker's queues: a message stays in the hash
    ``dramatiq:<queue>.msgs`` until the worker acknowledges it. Delayed (``.DQ``) and dead-lettered
    (``.XQ``) queues are not work to wait for."""
    total = 0
    for key in redis_client.scan_iter("dramatiq:*.msgs"):
        queue = key.decode()[len("dramatiq:") : -len(".msgs")]
        if "." not in queue:
            total += redis_client.hlen(key)
    return total


@contextlib.contextmanager
def worker_paused(stack: Stack) -> Iterator[None]:
    """SIGSTOP the worker's process group (its messages wait in Redis), SIGCONT on the way out."""
    pgid = stack.processes["dramatiq"].pid
    os.killpg(pgid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGCONT)


# --- Measurements ---------------------------------------------------------------------------------


@dataclass
class Row:
    kind: str  # ceiling, issue, signature
    label: str
    clients: int
    n: int
    rate: float  # requests per second
    p50: float
    p90: float
    p99: float
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU per request during the batch, by group
    foreign_load: float = 0.0  # CPUs used by other jobs just before the batch
    backlog: int = 0  # worker messages left when the batch ended
    drain_s: float = 0.0  # time the worker then took to empty its queues
    worker_ms: float = 0.0  # worker CPU per request, batch and catch-up
    ratio: float | None = None  # rate / ceiling rate at the same client count
    attempts: int = 1


class Bench:
    def __init__(self, stack: Stack, args: argparse.Namespace, loadgen: LoadGen, pdf: bytes) -> None:
        import redis

        self.stack, self.args, self.loadgen, self.pdf = stack, args, loadgen, pdf
        self.redis = redis.Redis.from_url(stack.redis_url, socket_timeout=10)
        self.labels = {os.getpid(): "bench", loadgen.pid: "client"}
        self.rows: list[Row] = []
        self.figures: dict[str, Any] = {}
        self.drain_timeouts = 0

    # Helpers

    def snapshot(self) -> dict[int, tuple[str, float]]:
        return cpu_snapshot(self.stack, self.labels)

    def drain(self) -> float:
        """Wait until the worker has nothing left to do; the seconds it took."""
        started = time.perf_counter()
        deadline = time.monotonic() + self.args.drain_timeout
        while backlog(self.redis):
            self.stack.check_alive()
            if time.monotonic() > deadline:
                self.drain_timeouts += 1
                print(f"    the worker did not catch up within {self.args.drain_timeout:.0f} s", flush=True)
                break
            time.sleep(0.1)
        return time.perf_counter() - started

    def create_drafts(self, fmt: str, profile: str, count: int) -> list[str]:
        bodies = [draft_body(fmt, profile, i) for i in range(count)]
        result = self.loadgen.batch(
            [("POST", "/api/v1/invoices", i) for i in range(count)],
            bodies=bodies,
            concurrency=8,
            expect=201,
            collect="id",
        )
        return result["collected"]

    def issue(self, ids: list[str], concurrency: int) -> dict[str, Any]:
        return self.loadgen.batch(
            [("POST", f"/api/v1/invoices/{i}/issue", None) for i in ids], concurrency=concurrency
        )

    def measure(
        self,
        kind: str,
        label: str,
        clients: int,
        prepare: Callable[[], tuple[list[tuple[str, str, int | None]], list[Any]]],
        expect: int = 200,
    ) -> Row:
        """One row: N requests from ``clients`` clients, on an idle machine with an idle worker; measured
        again (up to --retries times) when other processes used more than --max-other-ms per request."""
        for attempt in range(1, self.args.retries + 2):
            requests, bodies = prepare()
            self.drain()
            self.stack.check_alive()
            foreign = wait_quiet(self.stack, self.args.quiet_timeout, self.labels)
            # The worker waits (SIGSTOP) during the batch unless --concurrent-worker: the batch measures
            # the request path, the catch-up after it what the worker does with the batch's messages.
            paused = contextlib.nullcontext() if self.args.concurrent_worker else worker_paused(self.stack)
            with paused:
                before = self.snapshot()
                result = self.loadgen.batch(requests, bodies=bodies, concurrency=clients, expect=expect)
                after = self.snapshot()
            left = backlog(self.redis)
            drain_s = self.drain() if left else 0.0
            drained = self.snapshot()
            n, latencies = len(requests), result["latencies_ms"]
            used = cpu_delta(before, after)
            worker = used.get("dramatiq", 0.0) + cpu_delta(after, drained).get("dramatiq", 0.0)
            row = Row(
                kind=kind,
                label=label,
                clients=clients,
                n=n,
                rate=n / result["wall_s"],
                p50=statistics.median(latencies),
                p90=percentile(latencies, 90),
                p99=percentile(latencies, 99),
                cpu_ms={group: seconds * 1000 / n for group, seconds in used.items()},
                foreign_load=foreign,
                backlog=left,
                drain_s=drain_s,
                worker_ms=worker * 1000 / n,
                attempts=attempt,
            )
            print(
                f"  {label:26} x{clients:<3} {row.rate:7.1f}/s  p50 {row.p50:7.1f} ms  p99 {row.p99:7.1f} ms"
                f"  CPU ms/req "
                + " ".join(f"{g} {row.cpu_ms.get(g, 0.0):.1f}" for g in GROUPS)
                + (f"  worker {row.worker_ms:.1f} (catch-up {drain_s:.1f} s)" if left else ""),
                flush=True,
            )
            if row.cpu_ms.get("other", 0.0) <= self.args.max_other_ms:
                break
            if attempt <= self.args.retries:
                print(f"    other processes used {row.cpu_ms['other']:.1f} ms per request: again", flush=True)
        self.rows.append(row)
        return row

    # The measurements

    def ceiling(self) -> None:
        say("ceiling: GET /api/v1/me")
        top = max(self.args.clients)
        self.loadgen.batch([("GET", "/api/v1/me", None)] * (10 * top), concurrency=top)
        for clients in self.args.clients:
            self.measure(
                "ceiling",
                "GET /me (ceiling)",
                clients,
                lambda: ([("GET", "/api/v1/me", None)] * (CEILING_FACTOR * self.args.n), []),
            )

    def issue_rows(self) -> None:
        # Warm-up: every request thread of every gunicorn worker has issued each format once.
        warm = 2 * self.stack.workers * self.stack.threads
        for fmt, profile in FORMATS:
            label = f"issue {fmt}" + (f" {profile}" if fmt == "facturx" else "")
            say(label)
            self.issue(self.create_drafts(fmt, profile, warm), self.stack.workers * self.stack.threads)
            for clients in self.args.clients:

                def prepare(fmt: str = fmt, profile: str = profile) -> tuple[list[Any], list[Any]]:
                    ids = self.create_drafts(fmt, profile, self.args.n)
                    return [("POST", f"/api/v1/invoices/{i}/issue", None) for i in ids], []

                self.measure("issue", label, clients, prepare)

    def signature_rows(self) -> None:
        say("signature requests: POST /api/v1/signature-requests")
        body = {
            "title": "Contrat de prestation",
            "message": "Merci de signer ce contrat.",
            "signers": SIGNERS,
            "order": "sequential",
            "document_base64": base64.b64encode(self.pdf).decode(),
            "document_filename": "contrat.pdf",
        }
        request = ("POST", "/api/v1/signature-requests", 0)
        warm = 2 * self.stack.workers * self.stack.threads
        self.loadgen.batch([request] * warm, bodies=[body], concurrency=warm // 2, expect=201)
        for clients in self.args.clients:
            self.measure(
                "signature",
                "create signature request",
                clients,
                lambda: ([request] * self.args.n, [body]),
                201,
            )

    def pdf_render(self) -> None:
        """Factur-X PDFs rendered by the download endpoint: the worker is paused while they are issued
        and downloaded, so that the download (in gunicorn) renders them."""
        say("Factur-X PDF: GET download?format=facturx, not rendered yet")
        warm = 2 * self.stack.workers
        self.drain()
        with worker_paused(self.stack):
            ids = self.create_drafts("facturx", "en16931", warm + self.args.pdf_n)
            self.issue(ids, 8)
            download = [("GET", f"/api/v1/invoices/{i}/download?format=facturx", None) for i in ids]
            # The first render of a worker loads WeasyPrint's fonts: one per worker (or so), in parallel.
            first = self.loadgen.batch(download[:warm], concurrency=warm, prefix="%PDF-")
            wait_quiet(self.stack, self.args.quiet_timeout, self.labels)
            timed = self.loadgen.batch(download[warm:], concurrency=1, prefix="%PDF-")
        self.figures["pdf"] = {
            "n": len(timed["latencies_ms"]),
            "p50": statistics.median(timed["latencies_ms"]),
            "p90": percentile(timed["latencies_ms"], 90),
            "first": max(first["latencies_ms"]),
        }
        print(
            f"  p50 {self.figures['pdf']['p50']:.0f} ms, p90 {self.figures['pdf']['p90']:.0f} ms, "
            f"first render of a worker {self.figures['pdf']['first']:.0f} ms",
            flush=True,
        )
        self.drain()

    def verify_chain(self, label: str) -> dict[str, Any]:
        self.drain()
        wait_quiet(self.stack, self.args.quiet_timeout, self.labels)
        result = self.loadgen.batch(
            [("GET", "/api/v1/archive/chain/verify", None)] * 3, concurrency=1, collect="*"
        )
        checked = [answer["entries_checked"] for answer in result["collected"]]
        assert all(answer["ok"] for answer in result["collected"]), result["collected"]
        rates = [links / (ms / 1000) for links, ms in zip(checked, result["latencies_ms"], strict=True)]
        figure = {
            "links": checked[0],
            "rate": statistics.median(rates),
            "ms": statistics.median(result["latencies_ms"]),
        }
        print(f"  {label}: {figure['links']:,} links in {figure['ms']:.0f} ms, {figure['rate']:,.0f} links/s")
        return figure

    def chain(self) -> None:
        say("chain verification: GET /api/v1/archive/chain/verify")
        self.figures["chain_run"] = self.verify_chain("the run's chain")
        missing = self.args.chain_links - self.figures["chain_run"]["links"]
        if missing <= 0:
            return
        self.figures["chain_build"] = pad_chain(self.stack, missing)
        print(
            f"  padded with {self.figures['chain_build']['links']:,} links in "
            f"{self.figures['chain_build']['seconds']:.1f} s through the triggers",
            flush=True,
        )
        self.figures["chain_padded"] = self.verify_chain("the padded chain")


def pad_chain(stack: Stack, links: int) -> dict[str, float]:
    """Append about ``links`` links to the tenant's sandbox chain the way ``verify_chain.py`` builds its
    chain: received invoices (two lines and one event each, four links) inserted in SQL, chained by
    the database's triggers like any row of the application."""
    import psycopg
    from verify_chain import BATCH, BUILD_SQL

    invoices = max(1, links // 4)
    started = time.perf_counter()
    with psycopg.connect(stack.database_url, cursor_factory=psycopg.ClientCursor) as conn:
        # One transaction per BATCH invoices, as verify_chain.py does (a long one is quadratic).
        for first in range(1, invoices + 1, BATCH):
            last = min(first + BATCH - 1, invoices)
            params = {
                "tenant": stack.keys["tenant_id"],
                "first": first,
                "last": last,
                "first_number": f"SUP-2026-{first:07d}",
                "last_number": f"SUP-2026-{last:07d}",
            }
            with conn.transaction():
                conn.execute(BUILD_SQL, params)
        seconds = time.perf_counter() - started
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return {"links": 4 * invoices, "seconds": seconds}


# --- Report ---------------------------------------------------------------------------------------


def server_versions(stack: Stack) -> str:
    import psycopg
    import redis

    parts = []
    with contextlib.suppress(Exception), psycopg.connect(stack.database_url, connect_timeout=5) as conn:
        parts.append("PostgreSQL " + conn.execute("SHOW server_version").fetchone()[0].split()[0])
    with contextlib.suppress(Exception):
        parts.append("Redis " + redis.Redis.from_url(stack.redis_url).info("server")["redis_version"])
    return ", ".join(parts)


def report(bench: Bench, context: dict[str, Any]) -> str:
    args, rows, figures = bench.args, bench.rows, bench.figures
    ceiling = {r.clients: r.rate for r in rows if r.kind == "ceiling"}
    for row in rows:
        row.ratio = row.rate / ceiling[row.clients] if ceiling.get(row.clients) else None
    noisy = args.max_other_ms
    lines = [
        "| measurement | clients | N | req/s | p50 ms | p99 ms | × ceiling "
        "| req/s until the worker caught up "
        "| CPU ms per request in the batch: gunicorn / postgres / client / other "
        "| worker CPU ms per request (batch + catch-up) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        cpu = " / ".join(f"{r.cpu_ms.get(g, 0.0):.1f}" for g in ("gunicorn", "postgres", "client", "other"))
        mark = " †" if r.cpu_ms.get("other", 0.0) > noisy else ""
        sustained = f"{r.n / (r.n / r.rate + r.drain_s):.1f}" if r.backlog else "–"
        lines.append(
            f"| {r.label}{mark} | {r.clients} | {r.n} | {r.rate:.1f} | {r.p50:.1f} | {r.p99:.1f} | "
            f"{r.ratio:.2f} | {sustained} | {cpu} | {r.worker_ms:.1f} |"
        )
    issue_rows = [r for r in rows if r.kind == "issue"]
    worker_ms = statistics.median(r.worker_ms for r in issue_rows) if issue_rows else 0.0
    drained = [(r.n, r.drain_s) for r in issue_rows if r.backlog and r.drain_s > 0]  # invoices, not messages
    drain_rate = sum(b for b, _ in drained) / sum(s for _, s in drained) if drained else 0.0
    memory = context["memory"]
    pdf = figures["pdf"]
    lines += [
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| one-page Factur-X PDF, rendered by `GET …/download?format=facturx` in gunicorn (worker paused) | "
        f"p50 {pdf['p50']:.0f} ms, p90 {pdf['p90']:.0f} ms over {pdf['n']} sequential downloads; "
        f"first render of a fresh gunicorn worker {pdf['first']:.0f} ms |",
        f"| worker, per issued invoice (Factur-X render + check, WORM archive, PDP transmission, events) | "
        f"{worker_ms:.0f} ms of worker CPU (median of the issue rows); a backlog drains at "
        f"{drain_rate:.1f} invoices/s with nothing else running |",
    ]
    for key, label in (("chain_run", "the run's chain"), ("chain_padded", "padded chain")):
        if key in figures:
            f = figures[key]
            lines.append(
                f"| chain verification, {label} (`GET /archive/chain/verify`, median of 3) | "
                f"{f['rate']:,.0f} links/s ({f['links']:,} links in {f['ms']:.0f} ms) |"
            )
    if "chain_build" in figures:
        f = figures["chain_build"]
        lines.append(
            f"| chain appends through the PostgreSQL triggers (padding, SQL inserts) | "
            f"{f['links'] / f['seconds']:,.0f} links/s |"
        )
    for group, label in (("gunicorn", "web (gunicorn master + workers)"), ("dramatiq", "Dramatiq worker")):
        lines.append(
            f"| peak memory, {label}, {memory['processes'].get(group, 0)} processes | "
            f"RSS sum {memory['rss'].get(group, 0):.0f} MiB (largest process "
            f"{memory['largest'].get(group, 0):.0f} MiB), PSS sum {memory['pss'].get(group, 0):.0f} MiB |"
        )
    notes = []
    if any(r.cpu_ms.get("other", 0.0) > noisy for r in rows):
        notes.append(f"† other processes used more than {noisy:g} ms of CPU per request during the batch.")
    if bench.drain_timeouts:
        notes.append(
            f"The worker did not catch up within {args.drain_timeout:.0f} s {bench.drain_timeouts} time(s)."
        )
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def header(context: dict[str, Any], args: argparse.Namespace) -> str:
    info, stack = context["machine"], context["layout"]
    others = ", ".join(f"{comm} {seconds:.0f} s" for comm, seconds in context["other_jobs"]) or "none"
    busy = max(r.foreign_load for r in context["rows"]) if context["rows"] else 0.0
    return "\n".join(
        [
            f"`{context['command']}`, {context['started']:%Y-%m-%d %H:%M} UTC, "
            f"{context['seconds'] / 60:.1f} min.",
            "",
            f"* Machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM, Linux {info['kernel']}, "
            f"Python {info['python']}; {info['versions']}; {context['servers']} on the same machine.",
            f"* Scell: gunicorn {stack['workers']} workers × {stack['threads']} threads (gthread, "
            f"gunicorn.conf.py), Dramatiq worker {stack['worker_processes']} processes × "
            f"{stack['worker_threads']} threads (`manage.py rundramatiq`), {context['debug']}; sandbox key, "
            "one tenant. "
            + (
                "The worker ran during the batches."
                if args.concurrent_worker
                else "The worker is paused during each batch (its messages wait in Redis), then timed "
                "while it catches up alone."
            ),
            f"* Client: `bench/loadgen.py`, one process on the same machine, one thread and keep-alive "
            f"connection per client; N = {args.n} requests per row ({CEILING_FACTOR} × N for the ceiling); "
            "req/s is N over the batch's wall time.",
            f"* Same machine meanwhile: other jobs' CPU during the run (PostgreSQL and Redis left out) — "
            f"{others}; busiest second before a batch: {busy:.2f} CPU of other load.",
        ]
    )


def write_results(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if MARKER not in text:
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n{MARKER}\n{rest}"
    before, _, after = text.partition(MARKER)
    path.write_text(f"{before}{MARKER}\n\n{section.rstrip()}\n{after}")


# --- Main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, help=f"requests per row (default {DEFAULTS['n']}, quick {QUICK['n']})"
    )
    parser.add_argument(
        "--clients", help=f"client counts (default {DEFAULTS['clients']}, quick {QUICK['clients']})"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny N, RESULTS.md left alone")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the markdown file to add the run to")
    parser.add_argument("--no-results", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--pdf-n", type=int, help="Factur-X downloads to time (default 20)")
    parser.add_argument("--chain-links", type=int, help="pad the chain to this many links (default 100,000)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, help="gunicorn threads (default: gunicorn.conf.py's)")
    parser.add_argument("--worker-processes", type=int, help="Dramatiq processes (default: rundramatiq's)")
    parser.add_argument("--worker-threads", type=int, help="Dramatiq threads (default: rundramatiq's)")
    parser.add_argument(
        "--concurrent-worker",
        action="store_true",
        help="let the worker run during the batches (default: paused during each, then timed catching up)",
    )
    parser.add_argument("--debug", action="store_true", help="run Scell with DEBUG=1 (development settings)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--redis-db", type=int, default=13, help="must be empty; emptied at the end")
    parser.add_argument("--quiet-timeout", type=float, help="wait up to this long for an idle machine (30 s)")
    parser.add_argument("--max-other-ms", type=float, default=3.0, help="noisy batch: other CPU per request")
    parser.add_argument("--retries", type=int, help="re-measure a noisy batch this many times (1)")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="wait this long for the worker")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else DEFAULTS
    for name in ("n", "clients", "pdf_n", "chain_links", "quiet_timeout"):
        if getattr(args, name) is None:
            setattr(args, name, preset[name])
    if args.retries is None:
        args.retries = preset.get("retries", 1)
    args.clients = sorted({int(c) for c in str(args.clients).split(",") if c.strip()})
    if not args.clients or min(args.clients) < 1 or args.n < 1:
        parser.error("--clients needs positive counts and --n a positive number")
    if args.quick:
        args.no_results = True
    return args


def production_env(debug: bool) -> dict[str, str]:
    """The settings of a production deployment, minus what needs the outside world: sandbox payments,
    the built-in PDP simulator, the development PDF seal, e-mails rendered but not sent, no SMS (none is
    sent when a request is created: codes go out when a signer asks for one). The rate limits stay in
    the path (a Redis counter per request) but out of reach."""
    env = {
        "LOG_LEVEL": "INFO",
        "SCELL_RATE_LIMIT_PER_KEY": "1000000000",
        "SCELL_RATE_LIMIT_PER_IP": "1000000000",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "SCELL_SMS_BACKEND": "signatures.sms.LocmemSmsBackend",
        "SCELL_PAYMENT_PROVIDER": "sandbox",
        "SCELL_PDP_SIMULATOR_ENABLED": "1",
        "SCELL_SIGNATURE_ALLOW_DEV_SEAL": "1",
    }
    if debug:
        return env | {"DEBUG": "1"}
    return env | {
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + base64.b32encode(os.urandom(30)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    exit_on_sigterm()
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    others_start = other_jobs_start()
    pdf = contract_pdf()
    with services(
        database_url=args.database_url,
        redis_url=args.redis_url,
        redis_db=args.redis_db,
        workers=args.workers,
        threads=args.threads,
        with_worker=True,
        worker_processes=args.worker_processes,
        worker_threads=args.worker_threads,
        env=production_env(args.debug),
        keep_logs=args.keep_logs,
    ) as stack:
        loadgen = LoadGen(stack)
        sampler = MemorySampler(stack)
        sampler.start()
        try:
            say(
                f"gunicorn {stack.workers}x{stack.threads} on {stack.base_url}, Dramatiq worker "
                f"{stack.worker_processes}x{stack.worker_threads}, load generator pid {loadgen.pid}; "
                f"N = {args.n}, clients {args.clients}"
            )
            bench = Bench(stack, args, loadgen, pdf)
            bench.drain()
            wait_quiet(stack, args.quiet_timeout, bench.labels)  # the workers' warm-up is over
            bench.ceiling()
            bench.issue_rows()
            bench.signature_rows()
            bench.pdf_render()
            bench.chain()
        finally:
            sampler.finish()
            loadgen.close()
        context = {
            "command": "bench/run " + " ".join(sys.argv[1:] if argv is None else argv),
            "started": started,
            "machine": machine(
                ("django", "djangorestframework", "gunicorn", "dramatiq", "psycopg", "saxonche", "weasyprint")
            ),
            "servers": server_versions(stack),
            "layout": {
                "workers": stack.workers,
                "threads": stack.threads,
                "worker_processes": stack.worker_processes,
                "worker_threads": stack.worker_threads,
            },
            "debug": "DEBUG=1" if args.debug else "production settings (DEBUG=0)",
            "memory": {
                "rss": sampler.peak_rss,
                "pss": sampler.peak_pss,
                "largest": sampler.peak_process,
                "processes": sampler.processes,
            },
            "other_jobs": other_jobs_report(others_start, set(stack.pgids()), {os.getpid(), loadgen.pid}),
            "rows": bench.rows,
        }
    context["seconds"] = time.monotonic() - clock
    tables = report(bench, context)
    section = f"## {started:%Y-%m-%d} — `bench/run`\n\n{header(context, args)}\n\n{tables}\n"
    print()
    print(section)
    if not args.no_results:
        write_results(args.results, section)
        print(f"added to {args.results}")
    if args.json:
        raw = {
            "rows": [asdict(r) for r in bench.rows],
            "figures": bench.figures,
            **{k: v for k, v in context.items() if k not in ("rows", "started")},
            "started": started.isoformat(),
        }
        args.json.write_text(json.dumps(raw, indent=2, default=str))


if __name__ == "__main__":
    main()
