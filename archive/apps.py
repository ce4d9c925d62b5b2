from django.apps import AppConfig
from django.conf import settings


class ArchiveConfig(AppConfig):
    name = "archive"
    verbose_name = "Archive and integrity"

    def ready(self) -> None:
        # On PostgreSQL the triggers of migration 0002 write the chain; only SQLite (the embedded
        # default) needs the Python writer, whose guarantees are weaker (see archive/chain.py).
        if any(db["ENGINE"].endswith("sqlite3") for db in settings.DATABASES.values()):
            from archive.chain import connect_sqlite_writer

            connect_sqlite_writer()
