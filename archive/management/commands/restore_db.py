"""``manage.py restore_db --backup scell-….dump --target-database scell_restored``: restore a dump of
the backups storage into a new, empty database (never over the running one). See archive/backups.py."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from archive.backups import BackupError, restore_database


class Command(BaseCommand):
    help = "Restore a backup into an empty (or new) database; check it, then point DATABASE_URL at it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--backup", required=True, help="backup name (manage.py backup_db prints it)")
        parser.add_argument(
            "--target-database", required=True, help="new PostgreSQL database name (SQLite: new file path)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            sha256 = restore_database(
                backup_name=options["backup"], target_database=options["target_database"]
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{options['backup']} (sha256 {sha256}) restored into {options['target_database']}"
            )
        )
