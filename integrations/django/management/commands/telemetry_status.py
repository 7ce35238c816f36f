"""``manage.py telemetry_status``: every live errwire runtime and the totals.

Reads the heartbeats the runtimes write into the outbox database. Exits with
status 1 when a runtime is unhealthy (circuit breaker open, failure rate above
the threshold, stale heartbeat), so it can serve as a health probe. The same
report as ``errwire status`` and ``flask errwire status``. With the Redis bus
(``ERRWIRE["BUS"]`` or ``--redis URL``) it reads the whole fleet from Redis.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from errwire import _commands
from errwire.integrations.django._commands import add_destination_options, finish, load_config

_CLEAR = "\x1b[2J\x1b[H"


class Command(BaseCommand):
    help = (
        "Show every live errwire runtime (pid, host, age, queue, counters, breaker, outbox) "
        "and the totals. Exits 1 when a runtime is unhealthy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_destination_options(
            parser,
            dsn=False,
            redis='the fleet in Redis (default: ERRWIRE["BUS"] when it is Redis)',
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument(
            "--watch",
            type=float,
            metavar="SECONDS",
            help="refresh every SECONDS until Ctrl-C",
        )
        parser.add_argument(
            "--stale-after",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="a runtime silent for longer is stale, hence unhealthy (default 30)",
        )
        parser.add_argument(
            "--failure-rate",
            type=float,
            default=0.5,
            metavar="SHARE",
            help="failed sends above this share of attempts are unhealthy (default 0.5)",
        )
        parser.add_argument(
            "--include-final",
            action="store_true",
            help="also list runtimes that shut down cleanly",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["outbox"] and options["redis"]:
            raise CommandError("--outbox and --redis are mutually exclusive", returncode=2)
        config = load_config(outbox=options["outbox"])
        watch = options["watch"]
        if watch is not None and watch <= 0:
            raise CommandError("--watch needs a number of seconds > 0", returncode=2)
        if options["stale_after"] <= 0:
            raise CommandError("--stale-after needs a number of seconds > 0", returncode=2)
        last: list[_commands.Output] = []

        def produce() -> _commands.Output:
            out = _commands.status(
                config,
                outbox_path=options["outbox"],
                redis_url=options["redis"],
                as_json=options["json"],
                stale_after=options["stale_after"],
                failure_rate=options["failure_rate"],
                include_final=options["include_final"],
            )
            last[:] = [out]
            return out

        if watch is None:
            finish(self, produce())
            return
        clear = not options["json"] and self.stdout.isatty()

        def write(text: str) -> None:
            self.stdout.write((_CLEAR if clear else "") + text)
            self.stdout.flush()

        _commands.watch(produce, interval=watch, write=write, wait=self._pause)
        if last and last[0].exit_code != _commands.EXIT_OK:  # a probe learns the last state
            raise CommandError(last[0].reason or last[0].text, returncode=last[0].exit_code)

    def _pause(self, seconds: float) -> bool:
        self.wait(seconds)
        return False  # only Ctrl-C ends --watch

    def wait(self, seconds: float) -> None:
        """Between refreshes in ``--watch`` mode (tests replace it)."""
        time.sleep(seconds)
