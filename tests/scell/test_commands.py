"""Bootstrap without the browser (API.md): create_tenant, add_credits, seed_demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import CreditAccount, CreditLot, LedgerEntry
from billing.services import ledger_balance
from scell.models import ApiKey, Membership, Tenant, User

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "https://app.acme.example"
KEY_FIELDS = {"tenant_id", "identifier", "sk_test", "sk_live", "pk_test", "pk_live", "tenant_key"}
HEADERS = {"sk": "HTTP_X_API_KEY", "pk": "HTTP_X_PUBLISHABLE_KEY", "tk": "HTTP_X_TENANT_KEY"}


def create_tenant(*args: str) -> dict:
    buf = StringIO()
    call_command(
        "create_tenant",
        "--name",
        "Acme SAS",
        "--siren",
        "732829320",
        "--identifier",
        "ACME1",
        "--json",
        *args,
        stdout=buf,
    )
    lines = buf.getvalue().strip().splitlines()
    assert len(lines) == 1, buf.getvalue()
    return json.loads(lines[0])


def me(raw_key: str, **extra: str):
    client = APIClient()
    client.credentials(**{HEADERS[raw_key[:2]]: raw_key}, **extra)
    return client.get("/api/v1/me")


def test_create_tenant_prints_one_json_object_with_working_keys() -> None:
    out = create_tenant("--allowed-origin", ORIGIN)
    assert set(out) >= KEY_FIELDS
    tenant = Tenant.objects.get(pk=out["tenant_id"])
    assert out["identifier"] == "ACME1" == tenant.identifier
    assert tenant.legal_name == "Acme SAS"
    assert tenant.siren == "732829320"
    assert out["sk_test"].startswith("sk_test_")
    assert out["sk_live"].startswith("sk_live_")
    assert out["pk_test"].startswith("pk_test_")
    assert out["pk_live"].startswith("pk_live_")
    assert out["tenant_key"].startswith("tk_test_")
    # Only hashes are stored.
    raw_values = {v for k, v in out.items() if k not in {"tenant_id", "identifier"}}
    stored = set(ApiKey.objects.filter(tenant=tenant).values_list("key_hash", flat=True))
    assert not raw_values & stored

    expected = {
        "sk_test": ("secret", False, {}),
        "sk_live": ("secret", True, {}),
        "pk_test": ("publishable", False, {"HTTP_ORIGIN": ORIGIN}),
        "pk_live": ("publishable", True, {"HTTP_ORIGIN": ORIGIN}),
        "tenant_key": ("tenant", False, {}),
    }
    for name, (auth_mode, livemode, extra) in expected.items():
        response = me(out[name], **extra)
        assert response.status_code == 200, (name, response.content)
        body = response.json()
        assert body["tenant"]["id"] == out["tenant_id"], name
        assert body["tenant"]["identifier"] == "ACME1", name
        assert body["auth_mode"] == auth_mode, name
        assert body["livemode"] is livemode, name


def test_publishable_keys_only_answer_their_allowed_origins() -> None:
    out = create_tenant("--allowed-origin", ORIGIN)
    assert me(out["pk_test"], HTTP_ORIGIN="https://evil.example").status_code == 403
    assert me(out["pk_test"]).status_code == 403
    assert me(out["pk_test"], HTTP_ORIGIN=ORIGIN).status_code == 200


def test_create_tenant_without_allowed_origin_gives_inert_publishable_keys() -> None:
    out = create_tenant()
    response = me(out["pk_test"], HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert me(out["sk_test"]).status_code == 200


def test_create_tenant_human_output_lists_the_keys() -> None:
    buf = StringIO()
    call_command(
        "create_tenant", "--name", "Acme SAS", "--siren", "732829320", "--identifier", "acme1", stdout=buf
    )
    text = buf.getvalue()
    assert "ACME1" in text
    sk_test = re.search(r"sk_test_\S+", text).group(0)
    assert me(sk_test).json()["tenant"]["identifier"] == "ACME1"


def test_create_tenant_with_owner_makes_an_admin() -> None:
    out = create_tenant("--owner-email", "Boss@Acme.example", "--owner-password", "correct-horse-battery-9")
    user = User.objects.get(email="boss@acme.example")
    assert user.check_password("correct-horse-battery-9")
    membership = Membership.objects.get(user=user)
    assert str(membership.tenant_id) == out["tenant_id"]
    assert membership.role == Membership.Role.ADMIN


def test_invalid_siren_is_refused_and_creates_nothing() -> None:
    users_before = User.objects.count()
    with pytest.raises(CommandError, match="SIREN"):
        call_command(
            "create_tenant", "--name", "Acme SAS", "--siren", "732829321", "--identifier", "ACME1", "--json"
        )
    assert not Tenant.objects.exists()
    assert not ApiKey.objects.exists()
    assert User.objects.count() == users_before


@pytest.mark.parametrize("identifier", ["ACME", "ACME12", "AC-M1"])
def test_invalid_identifier_is_refused(identifier: str) -> None:
    with pytest.raises(CommandError):
        call_command(
            "create_tenant", "--name", "Acme SAS", "--siren", "732829320", "--identifier", identifier
        )
    assert not Tenant.objects.exists()
    assert not ApiKey.objects.exists()


def test_duplicate_identifier_is_refused() -> None:
    first = create_tenant()
    with pytest.raises(CommandError):
        call_command(
            "create_tenant", "--name", "Other SAS", "--siren", "552100554", "--identifier", "acme1", "--json"
        )
    assert list(Tenant.objects.values_list("pk", flat=True)) == [Tenant.objects.get(pk=first["tenant_id"]).pk]
    assert ApiKey.objects.count() == ApiKey.objects.filter(tenant_id=first["tenant_id"]).count()


def test_add_credits_grants_a_twelve_month_lot() -> None:
    out = create_tenant()
    buf = StringIO()
    before = timezone.now()
    call_command("add_credits", "--tenant", "ACME1", "--amount", "50.00", stdout=buf)
    after = timezone.now()
    tenant = Tenant.objects.get(pk=out["tenant_id"])
    lot = CreditLot.objects.get(tenant=tenant)
    assert lot.amount == lot.remaining == Decimal("50.00")
    assert before + relativedelta(months=12) - timedelta(seconds=1) <= lot.expires_at
    assert lot.expires_at <= after + relativedelta(months=12)
    assert lot.expires_at == lot.created_at + relativedelta(months=12)
    account = CreditAccount.objects.get(tenant=tenant)
    assert account.balance == Decimal("50.00")
    assert isinstance(account.balance, Decimal)
    assert ledger_balance(tenant=tenant) == Decimal("50.00")
    assert LedgerEntry.objects.filter(tenant=tenant).count() == 1
    assert "50.00" in buf.getvalue()

    # By id, and lower-case identifiers, too.
    call_command("add_credits", "--tenant", out["tenant_id"], "--amount", "100", stdout=StringIO())
    call_command("add_credits", "--tenant", "acme1", "--amount", "50.00", stdout=StringIO())
    account.refresh_from_db()
    assert account.balance == Decimal("200.00") == ledger_balance(tenant=tenant)


@pytest.mark.parametrize("amount", ["49.99", "0", "-50.00", "abc", "NaN", "Infinity", "1e13"])
def test_add_credits_refuses_bad_amounts(amount: str) -> None:
    create_tenant()
    with pytest.raises(CommandError):
        call_command("add_credits", "--tenant", "ACME1", "--amount", amount, stdout=StringIO())
    assert not CreditLot.objects.exists()
    assert not LedgerEntry.objects.exists()
    assert CreditAccount.objects.filter(balance__gt=0).count() == 0


@pytest.mark.parametrize("ref", ["NOPE1", "00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_add_credits_refuses_unknown_tenant(ref: str) -> None:
    create_tenant()
    with pytest.raises(CommandError, match="No tenant"):
        call_command("add_credits", "--tenant", ref, "--amount", "50.00", stdout=StringIO())
    assert not CreditLot.objects.exists()


def seed_demo() -> dict:
    buf = StringIO()
    call_command("seed_demo", "--json", "--url", "http://127.0.0.1:8765", stdout=buf)
    return json.loads(buf.getvalue().strip())


def test_seed_demo_is_idempotent_and_its_keys_work() -> None:
    first = seed_demo()
    second = seed_demo()
    assert Tenant.objects.count() == 1
    assert User.objects.count() == 1
    assert Membership.objects.count() == 1
    tenant = Tenant.objects.get()
    assert tenant.identifier == first["identifier"] == second["identifier"] == "DEMO1"
    user = User.objects.get()
    assert user.email == first["login"]
    assert user.check_password(first["password"])
    assert first["sk_test"] != second["sk_test"]
    for info in (first, second):
        # Earlier demo keys stay valid.
        body = me(info["sk_test"]).json()
        assert body["tenant"]["identifier"] == "DEMO1"
        assert body["livemode"] is False
        response = me(info["pk_test"], HTTP_ORIGIN="http://127.0.0.1:8765")
        assert response.status_code == 200, response.content
        assert response.json()["auth_mode"] == "publishable"


def test_seed_demo_human_output() -> None:
    buf = StringIO()
    call_command("seed_demo", "--url", "http://127.0.0.1:8765", stdout=buf)
    text = buf.getvalue()
    assert "http://127.0.0.1:8765/" in text
    assert "demo@scell.localhost" in text
    sk_test = re.search(r"sk_test\s+(sk_test_\S+)", text).group(1)
    assert me(sk_test).json()["tenant"]["identifier"] == "DEMO1"


# --- The real command line ---------------------------------------------------------------------------


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.django_db(False)
def test_create_tenant_on_the_command_line(tmp_path: Path) -> None:
    """``manage.py create_tenant --json`` in a real process, against a fresh SQLite database (the test
    database of pytest-django is only visible inside this process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "SCELL_DRAMATIQ_BROKER": "stub"}
    env.pop("REDIS_URL", None)
    migrate = _manage(env, "migrate", "--noinput", "-v0")
    assert migrate.returncode == 0, migrate.stderr

    created = _manage(
        env,
        "create_tenant",
        "--name",
        "Acme SAS",
        "--siren",
        "732829320",
        "--identifier",
        "ACME1",
        "--allowed-origin",
        ORIGIN,
        "--json",
    )
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)
    assert set(out) >= KEY_FIELDS
    assert out["identifier"] == "ACME1"

    credited = _manage(env, "add_credits", "--tenant", "ACME1", "--amount", "50.00")
    assert credited.returncode == 0, credited.stderr
    assert "50.00" in credited.stdout

    refused = _manage(env, "add_credits", "--tenant", "ACME1", "--amount", "10.00")
    assert refused.returncode != 0
    assert "50.00" in refused.stderr

    duplicate = _manage(
        env, "create_tenant", "--name", "X SAS", "--siren", "552100554", "--identifier", "ACME1", "--json"
    )
    assert duplicate.returncode != 0
    assert "CommandError" in duplicate.stderr or "identifier" in duplicate.stderr.lower()

    bad_siren = _manage(
        env, "create_tenant", "--name", "X SAS", "--siren", "732829321", "--identifier", "XXXX1", "--json"
    )
    assert bad_siren.returncode != 0
    assert "SIREN" in bad_siren.stderr
