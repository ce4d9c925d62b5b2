"""``manage.py backup_db``: dump the database to the backups storage now (the daily actor's job)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from archive.backups import BackupError, backup_database, backups_prune


class Command(BaseCommand):
    help = "Back up the database (pg_dump, or the SQLite file) to the backups storage; prune old dumps."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-prune", action="store_true", help="keep dumps past their 30 days")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backup = backup_database()
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        pruned = 0 if options["no_prune"] else backups_prune()
        self.stdout.write(
            self.style.SUCCESS(
                f"{backup.name}: {backup.size} bytes, sha256 {backup.sha256}, "
                f"kept until {backup.expires_at:%Y-%m-%d}; {pruned} old dump(s) pruned"
            )
        )
