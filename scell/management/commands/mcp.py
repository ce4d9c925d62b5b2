"""``manage.py mcp [--live]``: the MCP server for AI agents on stdio (see ``scell.mcp_server``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scell.mcp_server import KEY_ENV, KeyRefused, run


class Command(BaseCommand):
    help = f"Serve Scell to AI agents over MCP (stdio), as the secret key in {KEY_ENV}; sandbox by default."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--live", action="store_true", help="accept a live key (sk_live_…): real, charged operations"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run(allow_live=options["live"])
        except KeyRefused as exc:
            raise CommandError(str(exc)) from exc
