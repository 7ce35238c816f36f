"""``manage.py telemetry_test``: send one test event through the whole pipeline.

Prints the event id and where it went, or the exact reason it was not
delivered (and exits non-zero).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from errwire._ops import send_test_event
from errwire.integrations.django._commands import load_config


class Command(BaseCommand):
    help = "Send one test event through the whole errwire pipeline and report what happened."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--timeout",
            type=float,
            default=15.0,
            metavar="SECONDS",
            help="how long to wait for the destination (default 15)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = load_config()
        if options["timeout"] <= 0:
            raise CommandError("--timeout needs a number of seconds > 0")
        if not config.enabled:
            self.stderr.write(
                "Note: telemetry is disabled (ENABLED is False); the test event is sent anyway."
            )
        result = send_test_event(config, timeout=options["timeout"])
        where = result.transport or config.resolved_transport
        if not result.ok:
            raise CommandError(f"Test event not delivered ({where}): {result.detail}")
        remote = (
            f"; destination id {result.remote_id}"
            if result.remote_id and result.remote_id != result.event_id
            else ""
        )
        self.stdout.write(
            self.style.SUCCESS(f"Test event {result.event_id} delivered via {where}{remote}.")
        )
        if where == "local":
            self.stdout.write(f"It is in the local sink: {config.resolved_local_db_path}")
