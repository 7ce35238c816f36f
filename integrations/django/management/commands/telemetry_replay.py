"""``manage.py telemetry_replay``: send what waits in the outbox, with a progress bar.

The same as ``errwire replay`` and ``flask errwire replay``; the bar goes to
stderr (none with ``--verbosity 0``).
"""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from errwire import _commands
from errwire.integrations.django._commands import add_destination_options, finish, load_config


class Command(BaseCommand):
    help = "Replay the errwire outbox to the configured destination, oldest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be sent; send nothing"
        )
        parser.add_argument(
            "--limit", type=int, metavar="N", help="send at most N events (default: all)"
        )
        add_destination_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit needs a number >= 1", returncode=2)
        config = load_config(dsn=options["dsn"], outbox=options["outbox"])
        quiet = options["dry_run"] or options["verbosity"] == 0
        # tqdm writes its own \r frames: it gets the raw stream, not Django's wrapper.
        progress = None if quiet else cast("TextIO", self.stderr._out)
        out = _commands.replay(
            config, limit=limit, dry_run=options["dry_run"], progress_file=progress
        )
        finish(self, out, success_style=not options["dry_run"])
