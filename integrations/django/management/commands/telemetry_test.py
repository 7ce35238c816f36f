"""``manage.py telemetry_test``: send one test event through the whole pipeline.

Prints the event id and where it went, or the exact reason it was not
delivered (and exits 1). The same as ``errwire test`` and ``flask errwire test``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from errwire import _commands
from errwire.integrations.django._commands import finish, load_config


class Command(BaseCommand):
    help = "Send one test event through the whole errwire pipeline and report what happened."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dsn",
            metavar="DSN",
            help='send to this Sentry DSN (default: ERRWIRE["DSN"], else the local sink)',
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=15.0,
            metavar="SECONDS",
            help="how long to wait for the destination (default 15)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["timeout"] <= 0:
            raise CommandError("--timeout needs a number of seconds > 0", returncode=2)
        config = load_config(dsn=options["dsn"])
        finish(self, _commands.send_test(config, timeout=options["timeout"]), success_style=True)
