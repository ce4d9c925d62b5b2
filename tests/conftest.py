"""Fixtures shared by every app's tests: tenants with their keys, API clients per auth mode."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dramatiq
import pytest
from django.db import connection
from dramatiq.brokers.stub import StubBroker
from rest_framework.test import APIClient

from scell.models import Tenant, User
from scell.services import CreatedTenant, tenant_create

# The invoicing fixtures (a French seller with credits, a valid draft body) serve other apps' tests too.
from tests.invoicing.conftest import draft_body, seller  # noqa: F401

STRICT = os.environ.get("SCELL_STRICT_SERVICES") == "1"

# Valid SIREN numbers (Luhn) for test tenants.
SIRENS = ["732829320", "552100554", "443061841", "542107651", "652014051", "383474814"]


@dataclass
class TenantFixture:
    tenant: Tenant
    keys: dict[str, str]
    owner: User

    def client(self, key: str = "sk_test", **headers: str) -> APIClient:
        header = {"sk": "HTTP_X_API_KEY", "pk": "HTTP_X_PUBLISHABLE_KEY", "te": "HTTP_X_TENANT_KEY"}[key[:2]]
        client = APIClient()
        client.credentials(**{header: self.keys[key]}, **headers)
        return client


@pytest.fixture(autouse=True)
def _english_users(monkeypatch) -> None:
    """Test assertions read English: users created by tests pick English, as a user would with the
    language switcher, unless the test passes ``language=``. (French tenants otherwise default to French;
    tests/scell/test_i18n.py covers that default.)"""
    from scell.models import UserManager

    original = UserManager.create_user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("language", "en")
        return original(self, email, password, **extra)

    monkeypatch.setattr(UserManager, "create_user", create_user)


@pytest.fixture
def make_tenant(db) -> Callable[..., TenantFixture]:
    counter = {"n": 0}

    def make(identifier: str | None = None, **profile: object) -> TenantFixture:
        counter["n"] += 1
        n = counter["n"]
        owner = User.objects.create_user(f"owner{n}-{identifier or n}@example.com", "correct-horse-battery-9")
        created: CreatedTenant = tenant_create(
            legal_name=profile.pop("legal_name", f"Tenant {n} SAS"),
            siren=profile.pop("siren", SIRENS[(n - 1) % len(SIRENS)]),
            identifier=identifier or f"TEN{n:02d}",
            owner=owner,
            allowed_origins=["https://widget.example.com"],
            **profile,
        )
        return TenantFixture(
            tenant=created.tenant, keys={k: v.raw for k, v in created.keys.items()}, owner=owner
        )

    return make


@pytest.fixture
def tenant_a(make_tenant) -> TenantFixture:
    return make_tenant("AAAAA", legal_name="Alpha SAS")


@pytest.fixture
def tenant_b(make_tenant) -> TenantFixture:
    return make_tenant("BBBBB", legal_name="Beta SARL")


@pytest.fixture
def require_postgres(db) -> None:
    """Fiscal guarantees are tested on PostgreSQL. In the test command (strict) a missing PostgreSQL is a
    failure, never a skip; a developer running pytest on SQLite by hand gets a skip."""
    if connection.vendor != "postgresql":
        message = "needs PostgreSQL (DATABASE_URL=postgres://…)"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # In the test command, a skipped test is a missing service or tool: fail the run.
    if not STRICT:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped"):
        reporter.write_line(
            f"{len(reporter.stats['skipped'])} test(s) skipped: failing (SCELL_STRICT_SERVICES=1)"
        )
        session.exitstatus = 1


@pytest.fixture(scope="session", autouse=True)
def _no_persistent_connections_in_threads() -> Iterator[None]:
    """Threads that serve tests (the live server's request threads, stub workers) close their database
    connection when done instead of keeping it for CONN_MAX_AGE: otherwise the session cannot drop the
    test database at the end ("being accessed by other users")."""
    from django.db import connections

    database = connections.settings["default"]
    previous = database.get("CONN_MAX_AGE")
    database["CONN_MAX_AGE"] = 0
    yield
    database["CONN_MAX_AGE"] = previous


@pytest.fixture(scope="session", autouse=True)
def _allow_test_flush_truncate():
    """The fiscal and chain tables refuse TRUNCATE (archive migration 0002) unless the transaction sets
    scell.allow_truncate; pytest-django's transactional tests flush the database with TRUNCATE, so the
    flush sets it for its own transaction only. Production never does (and runs with a role that does
    not own these tables)."""
    if connection.vendor != "postgresql":
        yield
        return
    ops_class = type(connection.ops)
    original = ops_class.sql_flush

    def sql_flush(self, style, tables, *args, **kwargs):
        statements = original(self, style, tables, *args, **kwargs)
        if not statements:
            return statements
        return ["SELECT set_config('scell.allow_truncate', 'on', true);", *statements]

    ops_class.sql_flush = sql_flush
    yield
    ops_class.sql_flush = original


@pytest.fixture(autouse=True)
def _isolated_storages(settings, tmp_path_factory) -> None:
    """Rendered documents, the WORM archive and backups go to a fresh folder per test, never to the
    developer's var/ (the archive's files are read-only and undeletable by design)."""
    root = tmp_path_factory.mktemp("storage")
    settings.MEDIA_ROOT = str(root / "media")
    storages = copy.deepcopy(settings.STORAGES)
    for alias in ("archive", "backups"):
        if alias in storages and storages[alias]["BACKEND"].endswith("FileSystemStorage"):
            storages[alias]["OPTIONS"] = {**storages[alias].get("OPTIONS", {}), "location": str(root / alias)}
    settings.STORAGES = storages


@pytest.fixture(autouse=True)
def _no_pdp_callbacks(settings) -> None:
    """The PDP simulator would call back SITE_URL, where no server listens in tests: polling only,
    unless a test sets PDP_CALLBACK_URL to its live server."""
    settings.PDP_CALLBACK_URL = ""


@pytest.fixture(autouse=True)
def _fresh_broker():
    """Every test starts with empty stub-broker queues (messages enqueued on commit by an earlier test
    must not reach a later test's worker), and leaves no middleware behind: a stopped Worker's
    middleware stays registered on the broker and would start consumers for any queue declared later,
    consumers that take messages no thread will ever process."""
    broker = dramatiq.get_broker()
    if not isinstance(broker, StubBroker):
        yield
        return
    _reset_stub_queues(broker)
    middleware = list(broker.middleware)
    yield
    broker.middleware[:] = middleware
    _reset_stub_queues(broker)


def _reset_stub_queues(broker: StubBroker) -> None:
    """Empty every queue and zero its count of unfinished tasks. ``flush_all`` alone is not enough: a
    message that a worker had already taken (prefetched, or held by a delay-queue consumer until its
    eta) when that worker was stopped is never acknowledged, and ``broker.join`` on its queue would then
    wait forever in every later test of the process."""
    broker.flush_all()
    for queue in broker.queues.values():  # the delay queues ("<name>.DQ") are in it too
        with queue.mutex:
            queue.queue.clear()
            queue.unfinished_tasks = 0
            queue.all_tasks_done.notify_all()
            queue.not_full.notify_all()


@pytest.fixture
def stub_worker():
    """A Dramatiq worker on the stub broker, for transactional tests of actors enqueued on commit."""
    broker = dramatiq.get_broker()
    assert isinstance(broker, StubBroker)
    broker.flush_all()
    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=1)
    worker.start()
    yield broker
    worker.stop()
    broker.flush_all()


# --- Browser ----------------------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    """Debian's Chromium (installed by ``scripts/setup --dev``) driven by Playwright's sync API; the
    browsers of ``playwright install`` are never used."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup --dev")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, and Django refuses ORM calls
    # from a thread with a running loop unless told otherwise (the ORM calls here are synchronous).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_page(chromium, live_server) -> Iterator[Callable]:
    """A factory of Chromium pages on the live server, one context each, closed after the test: English,
    desktop-sized and accepting downloads unless told otherwise. Other options of ``new_context`` pass
    through; ``locale=None`` leaves the browser's own. A test that needs the context uses ``page.context``."""
    contexts = []

    def open_page(
        *,
        locale: str | None = "en-US",
        width: int = 1280,
        height: int = 900,
        timeout_ms: float = 15_000,
        **options,
    ):
        context = chromium.new_context(
            base_url=live_server.url,
            locale=locale,
            viewport={"width": width, "height": height},
            accept_downloads=True,
            **options,
        )
        contexts.append(context)
        context.set_default_timeout(timeout_ms)
        return context.new_page()

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()
