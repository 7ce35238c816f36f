"""``manage.py telemetry_worker``: the delivery worker as its own foreground process.

It drains the outbox (oldest first, whenever the destination accepts events)
and keeps writing heartbeats, until SIGTERM or SIGINT; then it delivers what
is queued within ``--deadline`` seconds and spools the rest to the outbox.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from errwire._ops import run_worker
from errwire._runtime import Runtime
from errwire.integrations.django._commands import load_config

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Command(BaseCommand):
    help = "Run the errwire worker in the foreground until SIGTERM/SIGINT (drains the outbox)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--deadline",
            type=float,
            metavar="SECONDS",
            help="time to deliver queued events after a stop signal "
            '(default ERRWIRE["SHUTDOWN_TIMEOUT_SECONDS"])',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = load_config()
        deadline = options["deadline"]
        if deadline is not None and deadline <= 0:
            raise CommandError("--deadline needs a number of seconds > 0")
        stop = threading.Event()
        received: list[str] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            received.append(signal.Signals(signum).name)
            # Setting the event here could deadlock if the signal interrupted the main
            # thread inside Event.wait's own lock; another thread sets it safely.
            threading.Thread(target=stop.set, name="errwire-stop", daemon=True).start()

        previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
        try:
            runtime = run_worker(
                config, stop=stop, shutdown_timeout=deadline, on_start=self.started
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        counters = runtime.status()["counters"]
        self.stdout.write(
            f"errwire worker stopped ({', '.join(received) or 'stop requested'}): "
            f"delivered {counters['delivered']}, spooled {counters['spooled']}, "
            f"rejected {counters['rejected']}."
        )

    def started(self, runtime: Runtime) -> None:
        """Called once the worker runs (tests hook in here)."""
        self.stdout.write(
            f"errwire worker {runtime.runtime_id} running (pid {os.getpid()}, "
            f"transport {runtime.transport.name}, outbox {runtime.config.resolved_outbox_path}). "
            "Stop with Ctrl-C or SIGTERM."
        )
        self.stdout.flush()
