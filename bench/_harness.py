"""Shared pieces of the benchmarks: the throwaway stack (PostgreSQL database, tenant, gunicorn, Dramatiq
worker), a keep-alive HTTP client, CPU accounting and memory sampling from /proc, and the description of
the machine. Used by ``issue_invoices.py`` and ``platform_bench.py`` (run from ``bench/``, which is on
``sys.path`` as the directory of the script)."""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import platform
import re
import secrets
import signal
import socket
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
if str(BASE_DIR) not in sys.path:
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


# --- Processes ------------------------------------------------------------------------------------


def exit_on_sigterm() -> None:
    """SIGTERM (a CI timeout, ``kill``) unwinds like Ctrl-C, so that every ``finally`` cleans up."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the bench dies without cleaning up (SIGKILL), so that no
    gunicorn or worker outlives it. Linux only; harmless elsewhere."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen[Any]) -> None:
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
    """What ``services()`` started: URLs, keys, process groups, and the layout actually used."""

    base_url: str = ""
    database_url: str = ""
    dbname: str = ""
    redis_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    logs: Path = Path()
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: int = 0  # gunicorn
    threads: int = 0
    worker_processes: int = 0  # Dramatiq (0: no worker)
    worker_threads: int = 0

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]
                raise SystemExit(f"{name} exited with {process.returncode}:\n{log}")

    def pgids(self) -> dict[int, str]:
        """Process group id -> name ("gunicorn", "dramatiq") of the services (each leads its group)."""
        return {process.pid: name for name, process in self.processes.items()}


def gunicorn_layout(env: dict[str, str]) -> tuple[int, int]:
    """Workers and threads that the project's gunicorn.conf.py gives in this environment."""
    code = (
        "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps([c['workers'], c['threads']]))"
    )
    out = subprocess.run(
        [PYTHON, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    workers, threads = json.loads(out.stdout.strip().splitlines()[-1])
    return int(workers), int(threads)


@contextlib.contextmanager
def services(
    *,
    database_url: str,
    redis_url: str,
    redis_db: int,
    workers: int | None = None,
    threads: int | None = None,
    with_worker: bool = False,
    worker_processes: int | None = None,
    worker_threads: int | None = None,
    env: dict[str, str] | None = None,
    keep_logs: bool = False,
    gunicorn_timeout: int = 120,
) -> Iterator[Stack]:
    """A throwaway database ``scell_bench_<random>`` (migrated, one tenant ``BENCH`` with a full French
    legal profile), gunicorn with the project's gunicorn.conf.py, optionally a Dramatiq worker
    (``manage.py rundramatiq``), on the Redis database ``redis_db`` (must be empty). Everything is
    stopped, dropped and emptied on the way out, whatever happened.

    ``workers``/``threads`` (gunicorn) and ``worker_processes``/``worker_threads`` (Dramatiq) left at
    None keep the project's defaults (gunicorn.conf.py, rundramatiq's). ``env`` overrides the
    environment of every process (the defaults are those of a development run: ``DEBUG=1``)."""
    import psycopg
    import redis

    admin_url = database_url
    dbname = f"scell_bench_{secrets.token_hex(4)}"
    parts = urllib.parse.urlsplit(admin_url)
    own_url = urllib.parse.urlunsplit(parts._replace(path=f"/{dbname}"))
    redis_url = f"{redis_url.rstrip('/')}/{redis_db}"
    redis_client = redis.Redis.from_url(redis_url, socket_timeout=5)
    if redis_client.dbsize():
        raise SystemExit(f"Redis database {redis_url} is not empty: pick another one with --redis-db")
    tmp = Path(tempfile.mkdtemp(prefix="scell-bench-"))
    full_env = {k: v for k, v in os.environ.items() if k != "SCELL_START_INPROCESS_WORKER"}
    full_env |= {
        "DATABASE_URL": own_url,
        "REDIS_URL": redis_url,
        "SCELL_DRAMATIQ_BROKER": "redis",
        "SCELL_INPROCESS_WORKER": "0",
        "DEBUG": "1",
        # Every file the run writes stays in its temporary directory (removed at the end).
        "MEDIA_ROOT": str(tmp / "media"),
        "ARCHIVE_ROOT": str(tmp / "archive"),
        "BACKUPS_ROOT": str(tmp / "backups"),
        "SCELL_SIGNATURE_DEV_SEAL_DIR": str(tmp / "seal"),
        "DJANGO_SETTINGS_MODULE": "scell.settings",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    full_env |= env or {}
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS"):
        full_env.pop(name, None)  # the layout is the conf file's or the one given here, nothing else
    stack = Stack(database_url=own_url, dbname=dbname, redis_url=redis_url, env=full_env, logs=tmp)
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    print(f"database {dbname}, Redis {redis_url}, files in {tmp}", flush=True)

    def manage(*argv: str) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *argv],
            cwd=BASE_DIR,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode:
            raise SystemExit(f"manage.py {argv[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start(name: str, argv: list[str]) -> None:
        with (tmp / f"{name}.log").open("wb") as log:
            stack.processes[name] = subprocess.Popen(
                argv,
                cwd=BASE_DIR,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    previous_sigint = signal.getsignal(signal.SIGINT)
    try:
        manage("migrate", "--no-input", "-v", "0")
        stack.keys = json.loads(manage("create_tenant", "--json", *TENANT_ARGS).strip().splitlines()[-1])
        conf_workers, conf_threads = gunicorn_layout(full_env)
        stack.workers, stack.threads = workers or conf_workers, threads or conf_threads
        port = free_port()
        stack.base_url = f"http://127.0.0.1:{port}"
        argv = [GUNICORN, "scell.wsgi", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}",
                "--timeout", str(gunicorn_timeout)]  # fmt: skip
        if workers:
            argv += ["-w", str(workers)]
        if threads:
            argv += ["--threads", str(threads)]
        start("gunicorn", argv)
        if with_worker:
            from django_dramatiq.management.commands.rundramatiq import NPROCS, NTHREADS

            stack.worker_processes = worker_processes or NPROCS
            stack.worker_threads = worker_threads or NTHREADS
            argv = [PYTHON, "manage.py", "rundramatiq", "--worker-shutdown-timeout", "5000"]
            if worker_processes:
                argv += ["--processes", str(worker_processes)]
            if worker_threads:
                argv += ["--threads", str(worker_threads)]
            start("dramatiq", argv)
        deadline = time.monotonic() + 180
        client = Client(stack)
        while True:
            stack.check_alive()
            with contextlib.suppress(OSError, http.client.HTTPException):
                if client.call("GET", "/api/v1/invoices")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not answer within 180 s")
            time.sleep(0.3)
        yield stack
    finally:
        # A second Ctrl-C must not leave half of it behind: the clean-up takes a few seconds at most.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for process in stack.processes.values():
                stop(process)
            if keep_logs:
                print(f"logs kept in {tmp}")
            with contextlib.suppress(Exception):
                redis_client.flushdb()
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            if not keep_logs:
                subprocess.run(["rm", "-rf", str(tmp)], check=False)
            print(f"dropped {dbname}, emptied Redis db {redis_db}", flush=True)
        finally:
            signal.signal(signal.SIGINT, previous_sigint)


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
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


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


def _proc_stats() -> Iterator[tuple[int, str, int, float]]:
    """(pid, command, process group, CPU seconds so far) of every process alive now."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        pid = int(raw.split(" ", 1)[0])
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        yield pid, comm, int(fields[2]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_snapshot(stack: Stack, labels: dict[int, str] | None = None) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) used so far by each process alive now, with its group: the
    services' process groups by name, ``labels`` (pid -> group; default: this process is the
    "bench client"), the bench database's PostgreSQL, Redis, and "other" for everything else."""
    labels = {os.getpid(): "bench client"} if labels is None else labels
    groups = stack.pgids()
    foreign = foreign_backends(stack.database_url) if stack.database_url else set()
    snapshot: dict[int, tuple[str, float]] = {}
    for pid, comm, pgid, seconds in _proc_stats():
        if pid in labels:
            group = labels[pid]
        elif pgid in groups:
            group = groups[pgid]
        elif comm.startswith("postgres") and pid not in foreign:
            group = "postgres"  # the bench database's backends and the server's own processes
        elif comm.startswith("redis"):
            group = "redis"
        else:
            group = "other"
        snapshot[pid] = (group, seconds)
    return snapshot


def cpu_delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds used between two snapshots, by group (processes that exited meanwhile are missed)."""
    groups: dict[str, float] = {}
    for pid, (group, seconds) in after.items():
        previous = before.get(pid)
        used = seconds - previous[1] if previous and previous[0] == group else seconds
        groups[group] = groups.get(group, 0.0) + max(0.0, used)
    return groups


def wait_quiet(stack: Stack, timeout: float, labels: dict[int, str] | None = None) -> float:
    """Wait (up to ``timeout`` s) until the machine is idle apart from the bench's own client processes
    (``labels``): the figures of a shared machine mean little while another job runs. Returns the CPU
    load (in CPUs) that everything else caused in the last second."""
    labels = {os.getpid(): "bench client"} if labels is None else labels
    own = set(labels.values())
    end = time.monotonic() + timeout
    while True:
        before = cpu_snapshot(stack, labels)
        time.sleep(1.0)
        used = cpu_delta(before, cpu_snapshot(stack, labels))
        foreign = sum(seconds for group, seconds in used.items() if group not in own)
        if foreign < 0.1 or time.monotonic() > end:
            return foreign


def other_jobs_start() -> dict[int, tuple[str, float]]:
    """Every process's command and CPU seconds now, for ``other_jobs_report``."""
    return {pid: (comm, seconds) for pid, comm, _, seconds in _proc_stats()}


def other_jobs_report(
    start: dict[int, tuple[str, float]], exclude_pgids: set[int], exclude_pids: set[int], top: int = 6
) -> list[tuple[str, float]]:
    """CPU seconds per command used since ``start`` by processes that are not the bench's. PostgreSQL
    and Redis are left out: they serve the bench too (the batches' accounting tells their backends of
    other databases apart)."""
    used: dict[str, float] = {}
    for pid, comm, pgid, seconds in _proc_stats():
        if pid in exclude_pids or pgid in exclude_pgids or comm.startswith(("postgres", "redis")):
            continue
        previous = start.get(pid)
        delta = seconds - previous[1] if previous and previous[0] == comm else seconds
        if delta > 0.05:
            used[comm] = used.get(comm, 0.0) + delta
    return sorted(used.items(), key=lambda item: -item[1])[:top]


# --- Memory ---------------------------------------------------------------------------------------


def gunicorn_rss_mib(stack: Stack) -> list[float]:
    """Resident memory of each gunicorn worker process (the master excluded)."""
    master = stack.processes["gunicorn"].pid
    sizes = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            text = status.read_text()
            pid = int(status.parent.name)
            ppid = int(re.search(r"^PPid:\s*(\d+)", text, re.M).group(1))
            if ppid == master and pid != master:
                sizes.append(int(re.search(r"^VmRSS:\s*(\d+)", text, re.M).group(1)) / 1024)
    return sizes


def _pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        return int(re.search(r"^Pss:\s*(\d+)", text, re.M).group(1))
    return 0


class MemorySampler(threading.Thread):
    """Samples, for each process group of the stack, the sum of the members' RSS (every ``interval``
    seconds, from /proc/<pid>/statm) and of their PSS (every ``pss_every`` samples, from
    smaps_rollup: shared pages counted once), and keeps the peaks."""

    def __init__(self, stack: Stack, interval: float = 0.5, pss_every: int = 10) -> None:
        super().__init__(name="memory-sampler", daemon=True)
        self.groups = stack.pgids()
        self.interval, self.pss_every = interval, pss_every
        self.peak_rss: dict[str, float] = {}  # MiB, sum over the group
        self.peak_pss: dict[str, float] = {}
        self.peak_process: dict[str, float] = {}  # MiB, the largest single process
        self.processes: dict[str, int] = {}  # how many processes made the peak
        self.samples = 0
        self._halt = threading.Event()

    def sample(self, with_pss: bool) -> None:
        members: dict[str, list[int]] = {name: [] for name in self.groups.values()}
        for pid, _, pgid, _ in _proc_stats():
            if pgid in self.groups:
                members[self.groups[pgid]].append(pid)
        for name, pids in members.items():
            rss = []
            for pid in pids:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    rss.append(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB / 1024)
            if sum(rss) > self.peak_rss.get(name, 0.0):
                self.peak_rss[name], self.processes[name] = sum(rss), len(rss)
            self.peak_process[name] = max(self.peak_process.get(name, 0.0), max(rss, default=0.0))
            if with_pss:
                pss = sum(_pss_kib(pid) for pid in pids) / 1024
                self.peak_pss[name] = max(self.peak_pss.get(name, 0.0), pss)
        self.samples += 1

    def run(self) -> None:
        count = 0
        while not self._halt.is_set():
            self.sample(with_pss=count % self.pss_every == 0)
            count += 1
            self._halt.wait(self.interval)

    def finish(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.sample(with_pss=True)


# --- Figures and machine --------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def machine(
    packages: tuple[str, ...] = ("django", "saxonche", "weasyprint", "gunicorn", "psycopg"),
) -> dict[str, str]:
    from importlib.metadata import version

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mhz = re.search(r"^cpu MHz\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text()
    mem = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.M)
    versions = {}
    for package in packages:
        with contextlib.suppress(Exception):
            versions[package] = version(package)
    return {
        "nproc": str(os.cpu_count()),
        "cpu": (model.group(1) if model else "?") + (f" @ {float(mhz.group(1)):.0f} MHz" if mhz else ""),
        "ram": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?",
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }
