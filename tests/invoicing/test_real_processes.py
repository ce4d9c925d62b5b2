"""Issuing through the real production processes: gunicorn (forked gthread workers) and a Dramatiq
worker on Redis, against a PostgreSQL database of their own.

saxonche (GraalVM) has been reported to break in forked or multi-threaded workers (fr-ctc README,
"Known pitfall"). Single-process tests cannot see that, so this module starts the real servers in
subprocesses and talks to them over HTTP only:

* several invoices (Factur-X EN16931, CII, UBL; sandbox and live keys) are issued concurrently, so the
  Schematron validation runs in the request threads of both forked gunicorn workers;
* an invalid draft is refused with 422 and rule ids reported by the EN 16931 Schematron itself
  (``source: en16931``), which proves saxonche ran inside a worker rather than being skipped;
* the Dramatiq worker renders the Factur-X of every issued invoice and re-validates the PDF it made
  (``render_invoice_documents``): its ``document_checked`` event must say ``valid`` with no rule, which
  is a validation run by saxonche inside the forked, threaded Dramatiq worker process.

Needs PostgreSQL (``DATABASE_URL``: the server where a throwaway database is created and dropped) and
Redis (``REDIS_URL``'s server; an empty database number is picked). Without them the test skips, and
fails under ``SCELL_STRICT_SERVICES=1``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import environ
import pytest

from tests.invoicing.conftest import DRAFT

BASE_DIR = Path(__file__).resolve().parents[2]
PYTHON = str(BASE_DIR / ".venv" / "bin" / "python")
GUNICORN = str(BASE_DIR / ".venv" / "bin" / "gunicorn")
STRICT = os.environ.get("SCELL_STRICT_SERVICES") == "1"
IDENTIFIER = "PROC1"
TENANT_ARGS = [
    "--name", "Atelier Dupont SAS", "--siren", "732829320", "--identifier", IDENTIFIER,
    "--siret", "73282932000074", "--vat-id", "FR44732829320", "--legal-form", "SAS au capital de 10 000 €",
    "--address", "12 rue de la Paix", "--postcode", "75002", "--city", "Paris", "--country", "FR",
    "--email", "facturation@seller.example", "--iban", "FR7630006000011234567890189", "--bic", "AGRIFRPP",
]  # fmt: skip
# Sandbox invoices issued concurrently, by (format, profile); live ones are added after add_credits.
FORMATS = [("facturx", "en16931"), ("cii", "en16931"), ("ubl", "en16931")]
TEST_INVOICES = 12
LIVE_INVOICES = 4
CONCURRENCY = 8
DEADLINE_SECONDS = 110  # the whole module, servers included

pytestmark = pytest.mark.postgres


def _missing(message: str) -> None:
    if STRICT:
        pytest.fail(message)
    pytest.skip(message)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        left = max(0.0, self.end - time.monotonic())
        return min(left, cap) if cap is not None else left

    def check(self, what: str, logs: str = "") -> None:
        if time.monotonic() > self.end:
            pytest.fail(f"timed out while {what}\n{logs}")


@dataclass
class Stack:
    base_url: str
    database_url: str
    keys: dict[str, str]
    deadline: Deadline
    logs_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def logs(self) -> str:
        out = []
        for path in sorted(self.logs_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            out.append(f"--- {path.name} (last 3000 chars) ---\n{text[-3000:]}")
        return "\n".join(out)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, key: str = "sk_test"
    ) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("X-API-Key", self.keys[key])
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.deadline.left(cap=60)) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, method: str, path: str, body: dict[str, Any] | None = None, **kw: str) -> tuple[int, Any]:
        status, _, content = self.request(method, path, body, **kw)
        try:
            return status, json.loads(content)
        except ValueError:
            return status, {"raw": content[:2000].decode(errors="replace")}

    def alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}\n{self.logs()}")


Issued = list[dict[str, Any]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin_conninfo(database_url: str) -> dict[str, Any]:
    config = environ.Env.db_url_config(database_url)
    info = {"dbname": "postgres", "host": config.get("HOST") or "127.0.0.1", "user": config.get("USER")}
    if config.get("PORT"):
        info["port"] = int(config["PORT"])
    if config.get("PASSWORD"):
        info["password"] = config["PASSWORD"]
    return {k: v for k, v in info.items() if v}


def _with_dbname(database_url: str, dbname: str) -> str:
    parts = urllib.parse.urlsplit(database_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{dbname}"))


def _pick_redis_db(redis_url: str) -> tuple[Any, str]:
    import redis

    base = redis_url.rsplit("/", 1)[0] if re.search(r"/\d+$", redis_url) else redis_url.rstrip("/")
    candidates = list(range(1, 15))
    random.shuffle(candidates)
    for number in candidates:
        client = redis.Redis.from_url(f"{base}/{number}", socket_timeout=5)
        if client.dbsize() == 0:
            return client, f"{base}/{number}"
        client.close()
    pytest.fail("no empty Redis database among 1-14 for the test worker")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    # Children of the group that outlived their leader (forked workers).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        _missing("needs PostgreSQL (DATABASE_URL=postgres://…) for the real-process test")
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    try:
        import psycopg
        import redis

        redis.Redis.from_url(redis_url, socket_timeout=3).ping()
    except Exception as exc:
        _missing(f"needs Redis at {redis_url}: {exc}")
    deadline = Deadline(DEADLINE_SECONDS)
    admin = _admin_conninfo(database_url)
    dbname = f"scell_proc_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(**admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    except psycopg.OperationalError as exc:
        _missing(f"cannot create a database on {admin.get('host')}: {exc}")
    redis_client, worker_redis_url = _pick_redis_db(redis_url)
    tmp = Path(tempfile.mkdtemp(prefix="scell-proc-"))
    own_url = _with_dbname(database_url, dbname)
    env = {k: v for k, v in os.environ.items() if k not in {"SCELL_START_INPROCESS_WORKER"}}
    env |= {
        "DATABASE_URL": own_url,
        "REDIS_URL": worker_redis_url,
        "SCELL_DRAMATIQ_BROKER": "redis",
        "SCELL_INPROCESS_WORKER": "0",
        "DEBUG": "1",
        "MEDIA_ROOT": str(tmp / "media"),
        "DJANGO_SETTINGS_MODULE": "scell.settings",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stack = Stack(
        base_url="", database_url=own_url, keys={}, deadline=deadline, logs_dir=tmp, processes=processes
    )

    def manage(*args: str) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=deadline.left(cap=60),
            check=False,
        )
        assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(name: str, argv: list[str]) -> None:
        log = (tmp / f"{name}.log").open("wb")
        processes[name] = subprocess.Popen(
            argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    try:
        manage("migrate", "--no-input", "-v", "0")
        stack.keys = json.loads(manage("create_tenant", "--json", *TENANT_ARGS).strip().splitlines()[-1])
        manage("add_credits", "--tenant", IDENTIFIER, "--amount", "50.00")
        port = _free_port()
        stack.base_url = f"http://127.0.0.1:{port}"
        # The project's gunicorn.conf.py (gthread, post_fork warm-up, no preload), as in production.
        start(
            "gunicorn",
            [GUNICORN, "scell.wsgi", "-c", "gunicorn.conf.py", "-w", "2", "--threads", "4",
             "-b", f"127.0.0.1:{port}", "--timeout", "60"],
        )  # fmt: skip
        start(
            "dramatiq",
            [PYTHON, "manage.py", "rundramatiq", "--processes", "1", "--threads", "2",
             "--worker-shutdown-timeout", "5000"],
        )  # fmt: skip
        while True:
            stack.alive()
            deadline.check("waiting for gunicorn", stack.logs())
            with contextlib.suppress(OSError):
                status, _ = stack.json("GET", "/api/v1/invoices")
                if status == 200:
                    break
            time.sleep(0.3)
        yield stack
    finally:
        for process in processes.values():
            _stop(process)
        with contextlib.suppress(Exception):
            keys = list(redis_client.scan_iter("dramatiq*"))
            if keys:
                redis_client.delete(*keys)
            redis_client.close()
        with psycopg.connect(**admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


def _draft(fmt: str, profile: str, n: int) -> dict[str, Any]:
    body = json.loads(json.dumps(DRAFT))
    body["format"], body["profile"] = fmt, profile
    body["purchase_order_ref"] = f"PO-{n}"
    body["lines"][0]["quantity"] = str(n + 1)
    return body


def _create_and_issue(stack: Stack, body: dict[str, Any], key: str) -> tuple[int, Any, Any]:
    status, draft = stack.json("POST", "/api/v1/invoices", body, key=key)
    if status != 201:
        return status, draft, None
    status, issued = stack.json("POST", f"/api/v1/invoices/{draft['id']}/issue", key=key)
    return status, draft, issued


def _db_rows(stack: Stack, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(stack.database_url.replace("pgsql://", "postgres://"), connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def issued(stack: Stack) -> list[dict[str, Any]]:
    """Sandbox and live invoices created and issued concurrently through gunicorn."""
    jobs = [(_draft(*FORMATS[n % len(FORMATS)], n), "sk_test") for n in range(TEST_INVOICES)]
    jobs += [(_draft(*FORMATS[n % len(FORMATS)], 100 + n), "sk_live") for n in range(LIVE_INVOICES)]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(lambda job: _create_and_issue(stack, *job), jobs))
    stack.alive()
    failures = [
        (status, str(draft)[:300], str(out)[:1500]) for status, draft, out in results if status != 200
    ]
    assert not failures, f"{len(failures)} failed issue(s), first: {failures[0]}\n{stack.logs()}"
    return [out for _, _, out in results]


def test_concurrent_issues_in_gunicorn_workers_are_valid_and_gapless(stack: Stack, issued: Issued) -> None:
    assert all(invoice["status"] == "issued" for invoice in issued)
    for livemode, count in ((False, TEST_INVOICES), (True, LIVE_INVOICES)):
        numbers = sorted(invoice["number"] for invoice in issued if invoice["livemode"] is livemode)
        assert len(numbers) == count
        prefixes = {number.rsplit("-", 1)[0] for number in numbers}
        assert len(prefixes) == 1 and prefixes.pop().startswith(f"{IDENTIFIER}-"), numbers
        # Gapless per sequence, whatever the interleaving of the concurrent requests.
        assert [int(number.rsplit("-", 1)[1]) for number in numbers] == list(range(1, count + 1)), numbers
    # Live issues spent credits (EUR 0.04 each by default) from the EUR 50.00 pack; sandbox ones did not.
    balance = _db_rows(stack, "SELECT balance FROM billing_creditaccount")[0][0]
    assert balance == Decimal("50.00") - LIVE_INVOICES * Decimal("0.04"), balance


def test_invalid_draft_is_refused_by_the_schematron_in_a_gunicorn_worker(
    stack: Stack, issued: Issued
) -> None:
    for fmt, profile in FORMATS:
        body = _draft(fmt, profile, 999)
        # Passes Scell's own model checks; only the EN 16931 Schematron knows ISO 3166 codes (BR-CL-14).
        body["buyer"]["address"]["country"] = "XX"
        status, draft, refused = _create_and_issue(stack, body, "sk_test")
        assert status == 422, (fmt, status, draft, refused)
        details = refused["error"]["details"]
        rules = {(d.get("rule"), d.get("source")) for d in details}
        assert ("BR-CL-14", "en16931") in rules, (fmt, rules)
        # The engine ran: no "could not be run" fallback issue.
        assert not any(d.get("rule") == "SCELL-SCHEMATRON" for d in details), details
    # A refused draft takes no number.
    status, listed = stack.json("GET", "/api/v1/invoices?status=draft")
    assert status == 200 and all(inv["number"].startswith("DRAFT-") for inv in listed["data"]), listed


def test_dramatiq_worker_renders_and_validates_the_facturx(stack: Stack, issued: Issued) -> None:
    ids = [invoice["id"] for invoice in issued]
    checked: dict[str, dict[str, Any]] = {}
    while len(checked) < len(ids):
        stack.alive()
        stack.deadline.check(f"waiting for the worker ({len(checked)}/{len(ids)} checked)", stack.logs())
        rows = _db_rows(
            stack,
            "SELECT invoice_id::text, data FROM invoicing_invoiceevent "
            "WHERE type = 'document_checked' AND invoice_id::text = ANY(%s)",
            (ids,),
        )
        checked = dict(rows)
        time.sleep(0.3)
    # Every document was rendered by the worker (no download was requested yet) and its own check,
    # which runs the EN 16931, Factur-X EN16931 and BR-FR Schematrons in the worker, passed.
    documents = dict(
        _db_rows(
            stack,
            "SELECT invoice_id::text, sha256 FROM invoicing_rendereddocument "
            "WHERE format = 'facturx' AND invoice_id::text = ANY(%s)",
            (ids,),
        )
    )
    assert set(documents) == set(ids)
    for invoice_id, data in checked.items():
        assert data["valid"] is True and data["rules"] == [], (invoice_id, data, stack.logs())
        assert data["sha256"] == documents[invoice_id]
    # The API serves the worker's file, byte for byte.
    for invoice in issued[:3]:
        key = "sk_live" if invoice["livemode"] else "sk_test"
        status, headers, content = stack.request(
            "GET", f"/api/v1/invoices/{invoice['id']}/download?format=facturx", key=key
        )
        assert status == 200 and content.startswith(b"%PDF-"), (status, content[:200])
        assert headers["X-Content-SHA256"] == documents[invoice["id"]]
