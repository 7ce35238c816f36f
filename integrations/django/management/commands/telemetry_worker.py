"""``manage.py telemetry_worker``: the delivery worker as its own foreground process.

It drains the outbox (oldest first, whenever the destination accepts events)
and keeps writing heartbeats, until SIGTERM or SIGINT; then it delivers what
is queued within ``--deadline`` seconds and spools the rest to the outbox.
The same as ``errwire worker`` and ``flask errwire worker``. With the Redis bus
(``ERRWIRE["BUS"]`` or ``--redis URL``) it is one of the fleet's workers: it
consumes the stream the web processes forward to.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from errwire import _commands
from errwire.integrations.django._commands import add_destination_options, load_config


class Command(BaseCommand):
    help = "Run the errwire worker in the foreground until SIGTERM/SIGINT (drains the outbox)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--deadline",
            "--shutdown-timeout",
            dest="deadline",
            type=float,
            metavar="SECONDS",
            help="time to deliver queued events after a stop signal "
            '(default ERRWIRE["SHUTDOWN_TIMEOUT_SECONDS"])',
        )
        add_destination_options(
            parser, redis='consume the Redis stream (default: ERRWIRE["BUS"] when it is Redis)'
        )

    def handle(self, *args: Any, **options: Any) -> None:
        deadline = options["deadline"]
        if deadline is not None and deadline <= 0:
            raise CommandError("--deadline needs a number of seconds > 0", returncode=2)
        config = load_config(dsn=options["dsn"], outbox=options["outbox"], redis=options["redis"])
        code = _commands.worker(config, write=self._write, shutdown_timeout=deadline)
        if code != _commands.EXIT_OK:
            raise CommandError("the errwire worker could not start", returncode=code)

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()  # a supervisor reading the pipe sees each line at once
