"""Database backups to the ``backups`` storage, kept ``BACKUP_RETENTION_DAYS`` (30) days, and restore.

PostgreSQL: ``pg_dump --format=custom`` of ``settings.DATABASES['default']`` is streamed straight into
the storage (never a full copy in memory or on local disk), hashed on the way; the ``Backup`` row
records its size, sha256 and expiry. SQLite (the embedded default): the online backup API copies a
consistent snapshot of the database file, which is then stored the same way.

Restore (documented in README, tested in tests/archive/test_backups.py)::

    manage.py backup_db                                   # or wait for the daily actor (02:20)
    manage.py restore_db --backup scell-20261124T022000Z.dump --target-database scell_restored

``restore_db`` checks the dump's sha256 against its ``Backup`` row, creates the target database if it
does not exist, refuses a target that already has tables, and runs ``pg_restore --no-owner
--exit-on-error`` into it. Point ``DATABASE_URL`` at the restored database once it has been checked.
The fiscal triggers are part of the dump (post-data section), so the restored database refuses
UPDATE/DELETE of fiscal rows exactly like the original.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import Storage
from django.db import connection
from django.utils import timezone

from archive.models import Backup
from archive.storage import backups_storage

logger = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024


class BackupError(RuntimeError):
    """A dump or a restore failed; the message carries the tool's own error output."""


class _HashingStream(File):
    """A read-only, unseekable stream (a pipe) that hashes and counts what the storage reads from it."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        super().__init__(stream, name=name)
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.sha256.update(data)
        self.bytes_read += len(data)
        return data

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        while data := self.read(chunk_size or READ_CHUNK):
            yield data

    def seekable(self) -> bool:
        return False

    @property
    def size(self) -> int:  # type: ignore[override]
        # Unknown until the dump ends; django's File would try to seek to find out.
        return self.bytes_read


def _pg_env_and_args(database: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    env = os.environ.copy()
    args: list[str] = []
    if database.get("HOST"):
        args += ["--host", str(database["HOST"])]
    if database.get("PORT"):
        args += ["--port", str(database["PORT"])]
    if database.get("USER"):
        args += ["--username", str(database["USER"])]
    if database.get("PASSWORD"):
        # In the environment, never on the command line (visible in ps).
        env["PGPASSWORD"] = str(database["PASSWORD"])
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return env, args


def _vendor(database: dict[str, Any]) -> str:
    engine = database["ENGINE"]
    if engine.endswith("postgresql"):
        return "postgresql"
    if engine.endswith("sqlite3"):
        return "sqlite"
    raise BackupError(f"No backup method for {engine}")


def _backup_name(vendor: str, now: dt.datetime) -> str:
    suffix = "dump" if vendor == "postgresql" else "sqlite3"
    return f"scell-{now.astimezone(dt.UTC):%Y%m%dT%H%M%S%fZ}.{suffix}"


def backup_database(*, database: dict[str, Any] | None = None, storage: Storage | None = None) -> Backup:
    """Dump ``database`` (default: ``settings.DATABASES['default']``) into the backups storage and
    record it. Raises ``BackupError`` (the row says ``failed``, no partial file is kept)."""
    database = database or settings.DATABASES["default"]
    storage = storage or backups_storage()
    vendor = _vendor(database)
    now = timezone.now()
    backup = Backup.objects.create(
        name=_backup_name(vendor, now),
        started_at=now,
        meta={"vendor": vendor, "database": str(database["NAME"]).rsplit("/", 1)[-1]},
    )
    try:
        if vendor == "postgresql":
            stream = _dump_postgresql(database, storage, backup.name)
        else:
            stream = _dump_sqlite(database, storage, backup.name)
    except Exception as exc:
        Backup.objects.filter(pk=backup.pk).update(
            status=Backup.Status.FAILED,
            finished_at=timezone.now(),
            expires_at=timezone.now() + dt.timedelta(days=settings.BACKUP_RETENTION_DAYS),
            message=str(exc)[:4000],
        )
        logger.exception("backup %s failed", backup.name)
        raise
    backup.status = Backup.Status.DONE
    backup.size = stream.bytes_read
    backup.sha256 = stream.sha256.hexdigest()
    backup.finished_at = timezone.now()
    backup.expires_at = backup.started_at + dt.timedelta(days=settings.BACKUP_RETENTION_DAYS)
    backup.save(update_fields=["status", "size", "sha256", "finished_at", "expires_at"])
    logger.info("backup %s: %d bytes, sha256 %s", backup.name, backup.size, backup.sha256)
    return backup


def _dump_postgresql(database: dict[str, Any], storage: Storage, name: str) -> _HashingStream:
    env, args = _pg_env_and_args(database)
    command = ["pg_dump", "--format=custom", "--compress=6", *args, "--dbname", str(database["NAME"])]
    with tempfile.TemporaryFile() as errors:
        # stderr to a file: a pipe that nobody reads would block pg_dump once full.
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=env)  # noqa: S603
        assert process.stdout is not None
        stream = _HashingStream(process.stdout, name)
        try:
            stored = storage.save(name, stream)
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            process.stdout.close()
        code = process.wait()
        if code != 0 or stored != name:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()
            _discard(storage, stored)
            raise BackupError(f"pg_dump exited with {code}: {message}")
    return stream


def _dump_sqlite(database: dict[str, Any], storage: Storage, name: str) -> _HashingStream:
    source_path = str(database["NAME"])
    if source_path == ":memory:" or not Path(source_path).exists():
        raise BackupError(f"SQLite database {source_path!r} is not a file")
    with tempfile.TemporaryDirectory() as workdir:
        copy_path = os.path.join(workdir, "snapshot.sqlite3")
        # The backup API copies a consistent snapshot even while the application writes.
        source = sqlite3.connect(source_path)
        target = sqlite3.connect(copy_path)
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        with open(copy_path, "rb") as handle:
            stream = _HashingStream(handle, name)
            stored = storage.save(name, stream)
        if stored != name:
            _discard(storage, stored)
            raise BackupError(f"backups storage renamed {name!r} to {stored!r}")
    return stream


def _discard(storage: Storage, name: str) -> None:
    try:
        storage.delete(name)
    except Exception:
        logger.exception("could not delete the partial backup %s", name)


def backups_prune(*, now: dt.datetime | None = None, storage: Storage | None = None) -> int:
    """Delete the dumps past their expiry from the backups storage; their rows stay, ``pruned``."""
    now = now or timezone.now()
    storage = storage or backups_storage()
    pruned = 0
    expired = Backup.objects.filter(
        status__in=[Backup.Status.DONE, Backup.Status.FAILED], expires_at__lte=now
    ).order_by("started_at")
    for backup in expired:
        previous = backup.status
        # Claim the row: with two pruners running, only the one whose update changed it proceeds.
        if not Backup.objects.filter(pk=backup.pk, status=previous).update(status=Backup.Status.PRUNED):
            continue
        if previous == Backup.Status.DONE:
            try:
                storage.delete(backup.name)
            except Exception:
                Backup.objects.filter(pk=backup.pk).update(status=previous)
                logger.exception("could not prune backup %s", backup.name)
                continue
        pruned += 1
    return pruned


def backup_run() -> Backup:
    """The daily job: one dump, then pruning."""
    backup = backup_database()
    backups_prune()
    return backup


# --- Restore -------------------------------------------------------------------------------------


def _verify(storage: Storage, name: str) -> str:
    digest = hashlib.sha256()
    with storage.open(name, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    sha256 = digest.hexdigest()
    recorded = Backup.objects.filter(name=name).values_list("sha256", flat=True).first()
    if recorded and recorded != sha256:
        raise BackupError(f"{name}: sha256 {sha256} differs from the recorded {recorded}; not restoring")
    return sha256


def _connect(database: dict[str, Any], dbname: str) -> Any:
    import psycopg

    params = {k: v for k, v in _pg_params(database).items() if v is not None}
    return psycopg.connect(**params, dbname=dbname, autocommit=True)


def _prepare_target(database: dict[str, Any], target: str) -> None:
    from psycopg import sql

    with _connect(database, "postgres") as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [target]).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
            return
    with _connect(database, target) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()[0]
    if tables:
        raise BackupError(
            f"Target database {target!r} is not empty ({tables} tables); restore needs an empty one"
        )


def _pg_params(database: dict[str, Any]) -> dict[str, Any]:
    return {
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
    }


def restore_database(
    *,
    backup_name: str,
    target_database: str,
    database: dict[str, Any] | None = None,
    storage: Storage | None = None,
) -> str:
    """Restore the dump ``backup_name`` into ``target_database`` (created if missing, must be empty),
    on the server of ``database`` (default: ``settings.DATABASES['default']``). Returns the sha256.

    For SQLite dumps, ``target_database`` is the path of the new database file (must not exist)."""
    database = database or settings.DATABASES["default"]
    storage = storage or backups_storage()
    if not storage.exists(backup_name):
        raise BackupError(f"No backup named {backup_name!r} in the backups storage")
    sha256 = _verify(storage, backup_name)
    if backup_name.endswith(".sqlite3"):
        target = Path(target_database)
        if target.exists():
            raise BackupError(f"{target} exists; restore needs a new file")
        with storage.open(backup_name, "rb") as source, open(target, "xb") as handle:
            shutil.copyfileobj(source, handle, READ_CHUNK)
        return sha256
    if _vendor(database) != "postgresql":
        raise BackupError("A pg_dump backup restores into PostgreSQL only")
    if target_database == str(database["NAME"]) or target_database == connection.settings_dict["NAME"]:
        raise BackupError("Refusing to restore over the running database; choose a new target")
    _prepare_target(database, target_database)
    env, args = _pg_env_and_args(database)
    command = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", *args]
    command += ["--dbname", target_database]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=errors, env=env)  # noqa: S603
        assert process.stdin is not None
        try:
            with storage.open(backup_name, "rb") as source:
                while chunk := source.read(READ_CHUNK):
                    process.stdin.write(chunk)
        except BrokenPipeError:
            pass  # pg_restore stopped early: its exit code and stderr say why
        finally:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        code = process.wait()
        if code != 0:
            errors.seek(0)
            raise BackupError(
                f"pg_restore exited with {code}: {errors.read().decode(errors='replace').strip()}"
            )
    return sha256


__all__ = ["BackupError", "backup_database", "backup_run", "backups_prune", "restore_database"]
