"""Backups: pg_dump into the backups storage, restore into a fresh database, SQLite snapshot, pruning."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import uuid

import psycopg
import pytest
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from archive.backups import BackupError, backup_database, backups_prune, restore_database
from archive.models import Backup
from invoicing.models import Invoice
from tests.invoicing import conftest as invoicing_fixtures

# Fixtures shared with the invoicing tests.
seller = invoicing_fixtures.seller
draft_body = invoicing_fixtures.draft_body


@pytest.fixture
def backups(tmp_path):
    return FileSystemStorage(location=tmp_path / "backups")


def _pg_params(dbname: str) -> dict:
    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST"),
        "port": db.get("PORT"),
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
    }
    return {k: v for k, v in params.items() if v} | {"dbname": dbname}


def _invoice_rows(dbname: str) -> list[tuple]:
    with psycopg.connect(**_pg_params(dbname)) as conn:
        return conn.execute(
            "SELECT id::text, number, status, document_sha256, md5(cii_xml) FROM invoicing_invoice"
            " ORDER BY id"
        ).fetchall()


@pytest.mark.django_db(transaction=True)
def test_pg_dump_then_restore_into_a_fresh_database(require_postgres, seller, draft_body, backups) -> None:
    client = seller.client("sk_test")
    for _ in range(2):
        draft = client.post("/api/v1/invoices", draft_body, format="json").json()
        assert client.post(f"/api/v1/invoices/{draft['id']}/issue").status_code == 200
    client.post("/api/v1/invoices", draft_body, format="json")  # and a draft
    source = connection.settings_dict["NAME"]
    before = _invoice_rows(source)
    assert len(before) == 3

    backup = backup_database(storage=backups)
    assert backup.status == Backup.Status.DONE
    assert backup.name.startswith("scell-") and backup.name.endswith(".dump")
    with backups.open(backup.name, "rb") as handle:
        data = handle.read()
    assert data.startswith(b"PGDMP")  # pg_dump custom format
    assert hashlib.sha256(data).hexdigest() == backup.sha256 and len(data) == backup.size
    assert backup.expires_at - backup.started_at == dt.timedelta(days=30)

    target = f"scell_restore_{uuid.uuid4().hex[:10]}"
    try:
        assert (
            restore_database(backup_name=backup.name, target_database=target, storage=backups)
            == backup.sha256
        )
        assert _invoice_rows(target) == before
        # The fiscal triggers came back with the schema: an issued invoice is still frozen there.
        with psycopg.connect(**_pg_params(target)) as conn, pytest.raises(psycopg.Error):
            conn.execute("UPDATE invoicing_invoice SET buyer_name = 'forged' WHERE status = 'issued'")
        # A second restore into the now non-empty target is refused.
        with pytest.raises(BackupError, match="not empty"):
            restore_database(backup_name=backup.name, target_database=target, storage=backups)
    finally:
        with psycopg.connect(**_pg_params("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_tampered_dump(require_postgres, backups) -> None:
    backup = backup_database(storage=backups)
    path = backups.path(backup.name)
    with open(path, "r+b") as handle:
        handle.seek(100)
        handle.write(b"X")
    with pytest.raises(BackupError, match="differs from the recorded"):
        restore_database(backup_name=backup.name, target_database="never_created_db", storage=backups)
    with psycopg.connect(**_pg_params("postgres")) as admin:
        assert (
            admin.execute("SELECT 1 FROM pg_database WHERE datname = 'never_created_db'").fetchone() is None
        )


@pytest.mark.django_db
def test_sqlite_backup_uses_the_backup_api(tmp_path, backups) -> None:
    source = tmp_path / "scell.sqlite3"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE invoice (number TEXT PRIMARY KEY, total TEXT)")
        db.executemany("INSERT INTO invoice VALUES (?, ?)", [("F-1", "10.00"), ("F-2", "12.50")])
    backup = backup_database(
        database={"ENGINE": "django.db.backends.sqlite3", "NAME": str(source)}, storage=backups
    )
    assert backup.name.endswith(".sqlite3") and backup.status == Backup.Status.DONE
    restored = tmp_path / "restored.sqlite3"
    assert (
        restore_database(backup_name=backup.name, target_database=str(restored), storage=backups)
        == backup.sha256
    )
    with sqlite3.connect(restored) as db:
        assert db.execute("SELECT number, total FROM invoice ORDER BY number").fetchall() == [
            ("F-1", "10.00"),
            ("F-2", "12.50"),
        ]
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.django_db
def test_failed_dump_is_recorded_and_leaves_no_file(tmp_path, backups) -> None:
    with pytest.raises(BackupError):
        backup_database(
            database={"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "nope")}, storage=backups
        )
    failed = Backup.objects.get()
    assert failed.status == Backup.Status.FAILED and "is not a file" in failed.message
    assert not backups.exists(failed.name)


@pytest.mark.django_db
def test_prune_deletes_expired_dumps_only(tmp_path, backups) -> None:
    source = tmp_path / "db.sqlite3"
    sqlite3.connect(source).close()
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(source)}
    old = backup_database(database=database, storage=backups)
    fresh = backup_database(database=database, storage=backups)
    Backup.objects.filter(pk=old.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    assert backups_prune(storage=backups) == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == Backup.Status.PRUNED and not backups.exists(old.name)
    assert fresh.status == Backup.Status.DONE and backups.exists(fresh.name)
    assert backups_prune(storage=backups) == 0


@pytest.mark.django_db(transaction=True)
def test_backup_and_restore_commands(require_postgres, tmp_path, capsys) -> None:
    from django.test import override_settings

    storages_setting = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "archive.storage.BackupFileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    target = f"scell_restore_{uuid.uuid4().hex[:10]}"
    with override_settings(STORAGES=storages_setting):
        call_command("backup_db")
        backup = Backup.objects.get(status=Backup.Status.DONE)
        assert backup.name in capsys.readouterr().out
        try:
            call_command("restore_db", "--backup", backup.name, "--target-database", target)
            assert f"restored into {target}" in capsys.readouterr().out
            with psycopg.connect(**_pg_params(target)) as conn:
                assert conn.execute("SELECT count(*) FROM archive_backup").fetchone()[0] == 1
        finally:
            with psycopg.connect(**_pg_params("postgres"), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
    assert Invoice.objects.count() == 0
