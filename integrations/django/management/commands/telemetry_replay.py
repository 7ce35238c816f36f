"""``manage.py telemetry_replay``: send what waits in the outbox, with a progress bar."""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from errwire._ops import replay_outbox
from errwire.integrations.django._commands import load_config


class Command(BaseCommand):
    help = "Replay the errwire outbox to the configured destination, oldest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be sent; send nothing"
        )
        parser.add_argument(
            "--limit", type=int, metavar="N", help="send at most N events (default: all)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = load_config()
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit needs a number >= 1")
        path = config.resolved_outbox_path
        if options["dry_run"]:
            result = replay_outbox(config, limit=limit, dry_run=True)
            if result.pending_before == 0:
                self.stdout.write(f"The outbox is empty ({path}). Nothing to replay.")
                return
            total = result.pending_before if limit is None else min(limit, result.pending_before)
            self.stdout.write(
                f"{result.pending_before} events wait in the outbox {path}; "
                f"a replay would send {total}. Nothing was sent."
            )
            for item in result.preview:
                self.stdout.write(
                    f"  {item['event_id']}  {item['level'] or '-':<7} "
                    f"{item['component'] or '-':<12} {item['type'] or 'message'}: "
                    f"{item['message']}  (attempts: {item['attempts']})"
                )
            return
        bars: list[tqdm[Any]] = []

        def progress(done: int, total: int) -> None:
            if not bars:
                bars.append(
                    tqdm(
                        total=total,
                        desc="replaying",
                        unit="event",
                        file=cast("TextIO", self.stderr._out),  # tqdm writes \r frames itself
                        disable=options["verbosity"] == 0,
                    )
                )
            bars[0].update(done - bars[0].n)

        try:
            result = replay_outbox(config, limit=limit, progress=progress)
        finally:
            for bar in bars:
                bar.close()
        if result.pending_before == 0:
            self.stdout.write(f"The outbox is empty ({path}).")
            return
        summary = f"Replayed {result.sent} events; {result.remaining} remain in the outbox {path}."
        if result.stopped_because:
            raise CommandError(f"{summary} Stopped: {result.stopped_because}")
        self.stdout.write(self.style.SUCCESS(summary))
