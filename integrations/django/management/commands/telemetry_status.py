"""``manage.py telemetry_status``: every live errwire runtime and the totals.

Reads the heartbeats the runtimes write into the outbox database. Exits with
status 1 when a runtime is unhealthy (circuit breaker open, failure rate above
the threshold, stale heartbeat), so it can serve as a health probe.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from errwire._ops import FleetReport, fleet_status, render_status
from errwire.integrations.django._commands import load_config

_CLEAR = "\x1b[2J\x1b[H"


class Command(BaseCommand):
    help = (
        "Show every live errwire runtime (pid, host, age, queue, counters, breaker, outbox) "
        "and the totals. Exits 1 when a runtime is unhealthy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
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
        config = load_config()
        watch = options["watch"]
        if watch is not None and watch <= 0:
            raise CommandError("--watch needs a number of seconds > 0")

        def report() -> FleetReport:
            return fleet_status(
                config.resolved_outbox_path,
                stale_after=options["stale_after"],
                failure_rate=options["failure_rate"],
                include_final=options["include_final"],
            )

        if watch is None:
            self.show(report(), as_json=options["json"])
            return
        last = None
        try:
            while True:
                last = report()
                if not options["json"] and self.stdout.isatty():
                    self.stdout.write(_CLEAR, ending="")
                self.show(last, as_json=options["json"], exit_on_problem=False)
                self.stdout.flush()
                self.wait(watch)
        except KeyboardInterrupt:
            self.stdout.write("")
        if last is not None:
            self.exit_on_problem(last)

    def show(self, report: FleetReport, *, as_json: bool, exit_on_problem: bool = True) -> None:
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        else:
            self.stdout.write(render_status(report))
        if exit_on_problem:
            self.exit_on_problem(report)

    @staticmethod
    def exit_on_problem(report: FleetReport) -> None:
        if report.healthy:
            return
        problems = "; ".join(
            f"{r.beat.runtime_id}: {', '.join(r.problems)}" for r in report.runtimes if r.problems
        )
        raise CommandError(f"errwire is unhealthy: {problems}", returncode=1)

    def wait(self, seconds: float) -> None:
        """Between refreshes in ``--watch`` mode (tests replace it)."""
        time.sleep(seconds)
