"""The ``errwire`` console script: status, test, replay and worker outside Django.

Django projects have the same commands as ``manage.py telemetry_*`` and Flask
apps as ``flask errwire ...``; all three print what ``errwire._commands``
returns. This module only parses arguments (argparse, no framework).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__, _commands
from ._config import Config, make_config

__all__ = ["build_parser", "main"]

_SETTINGS = """\
Settings come from the same ERRWIRE_* environment variables errwire.init() reads
(ERRWIRE_DSN, ERRWIRE_DATA_DIR, ERRWIRE_OUTBOX_PATH, ...); options given on the
command line win over them. Without a DSN, events go to the local SQLite sink in
.errwire/ (nothing leaves the machine).

Exit codes: 0 fine, 1 unhealthy / not delivered / stopped early, 2 usage problem.
"""

_DESCRIPTION = """\
errwire: error telemetry for Python web apps. These commands look after the
delivery side: how every running process is doing, whether events reach their
destination, and what waits in the outbox (events that could not be delivered
yet and are kept on disk until they are).
"""

_EPILOG = (
    """\
examples:
  errwire status                     health of every process writing to .errwire/
  errwire status --json --watch 5    the same as JSON, every 5 seconds
  errwire test --dsn https://KEY@sentry.example.com/42
  errwire replay --dry-run           what waits in the outbox (sends nothing)
  errwire worker                     deliver the outbox in the foreground
  errwire worker --redis redis://cache:6379/0   one of the fleet's delivery workers
  errwire status --redis redis://cache:6379/0   the whole fleet: stream, workers, totals

Run "errwire COMMAND --help" for a command's options.

"""
    + _SETTINGS
)


def _config(args: argparse.Namespace) -> Config:
    """Environment first, then the command-line options over it."""
    return _commands.with_overrides(
        make_config({}, use_env=True),
        dsn=getattr(args, "dsn", None),
        outbox=getattr(args, "outbox", None),
        redis=getattr(args, "redis", None) if args.command == "worker" else None,
    )


def _print(text: str) -> None:
    print(text, flush=True)


# ----------------------------------------------------------------------------- commands
def _status(args: argparse.Namespace, config: Config) -> int:
    def produce() -> _commands.Output:
        return _commands.status(
            config,
            outbox_path=args.outbox,
            redis_url=args.redis,
            as_json=args.json,
            stale_after=args.stale_after,
        )

    if args.watch is None:
        out = produce()
        (_print if out.exit_code != _commands.EXIT_USAGE else _error)(out.text)
        return out.exit_code
    return _commands.watch(produce, interval=args.watch, write=_print)


def _test(args: argparse.Namespace, config: Config) -> int:
    out = _commands.send_test(config, timeout=args.timeout)
    _print(out.text)
    return out.exit_code


def _replay(args: argparse.Namespace, config: Config) -> int:
    progress = None if args.no_progress or args.dry_run else sys.stderr
    out = _commands.replay(config, limit=args.limit, dry_run=args.dry_run, progress_file=progress)
    _print(out.text)
    return out.exit_code


def _worker(args: argparse.Namespace, config: Config) -> int:
    return _commands.worker(config, write=_print, shutdown_timeout=args.shutdown_timeout)


def _error(text: str) -> None:
    print(f"errwire: {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- parser
def _positive(kind: Callable[[str], float]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="errwire", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"errwire {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, details: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=summary,
            description=f"{summary}\n\n{details}",
            epilog=_SETTINGS,
            formatter_class=formatter,
        )
        return p

    outbox_help = (
        "the outbox database (default: ERRWIRE_OUTBOX_PATH, else <data dir>/outbox.sqlite3)"
    )
    dsn_help = "deliver to this Sentry DSN (default: ERRWIRE_DSN, else the local sink)"

    status = command(
        "status",
        "Show the health of every process that runs errwire.",
        "Every errwire runtime writes a heartbeat into the outbox database every few\n"
        "seconds. This lists them: queue depth, circuit breaker, delivered and spooled\n"
        "events, and problems (stale heartbeat, open breaker, high failure rate).\n"
        "Exits 1 if any live process is unhealthy: usable as a health check.\n"
        "With the Redis bus (--redis URL or ERRWIRE_BUS) it shows the whole fleet:\n"
        "stream length, consumer group lag and pending, each worker's rate and health,\n"
        "and the fleet-wide totals.",
    )
    where = status.add_mutually_exclusive_group()
    where.add_argument("--outbox", metavar="PATH", help=outbox_help)
    where.add_argument(
        "--redis",
        metavar="URL",
        help="the fleet in Redis: stream, consumer group, every process (default: ERRWIRE_BUS)",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument(
        "--watch",
        metavar="SECONDS",
        type=_positive(float),
        help="print again every SECONDS until Ctrl-C",
    )
    status.add_argument(
        "--stale-after",
        metavar="SECONDS",
        type=_positive(float),
        default=30.0,
        help="a process silent for longer is reported stale (default: 30)",
    )
    status.set_defaults(run=_status)

    test = command(
        "test",
        "Send one test event and report exactly what the destination answered.",
        "The event goes through the whole pipeline (scrubbing included) with its own\n"
        "short-lived runtime; it is not retried later if it fails. Exits 1 if it was\n"
        "not delivered.",
    )
    test.add_argument("--dsn", metavar="DSN", help=dsn_help)
    test.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive(float),
        default=15.0,
        help="how long to wait for the destination (default: 15)",
    )
    test.set_defaults(run=_test)

    replay = command(
        "replay",
        "Send the events waiting in the outbox now, oldest first.",
        "Events land in the outbox when the destination is down, rate-limits or the\n"
        "process stops before delivering. Running apps replay it on their own; this\n"
        "does it now, with a progress bar. Stops (exit 1) at the first failure.",
    )
    replay.add_argument("--dry-run", action="store_true", help="list what waits; send nothing")
    replay.add_argument("--limit", metavar="N", type=_positive(int), help="send at most N events")
    replay.add_argument("--outbox", metavar="PATH", help=outbox_help)
    replay.add_argument("--dsn", metavar="DSN", help=dsn_help)
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.set_defaults(run=_replay)

    worker = command(
        "worker",
        "Run a delivery worker in the foreground until Ctrl-C or SIGTERM.",
        "It replays the outbox whenever the destination accepts events and writes a\n"
        "heartbeat, so it shows up in `errwire status`. Useful beside processes that\n"
        "exit too quickly to deliver, and to drain an outbox after an outage.\n"
        "With the Redis bus (--redis URL or ERRWIRE_BUS) it is one of the fleet's\n"
        "workers: it reads the stream in the consumer group, applies the fleet-wide\n"
        "dedup and rate limits, delivers, and acks; run as many as you like.",
    )
    worker.add_argument("--outbox", metavar="PATH", help=outbox_help)
    worker.add_argument("--dsn", metavar="DSN", help=dsn_help)
    worker.add_argument(
        "--redis",
        metavar="URL",
        help="consume the Redis stream the web processes forward to (default: ERRWIRE_BUS)",
    )
    worker.add_argument(
        "--shutdown-timeout",
        metavar="SECONDS",
        type=_positive(float),
        help="time to finish delivering on stop (default: ERRWIRE_SHUTDOWN_TIMEOUT_SECONDS)",
    )
    worker.set_defaults(run=_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``errwire`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = _config(args)
    except ValueError as exc:  # a bad setting: the message names it
        _error(str(exc))
        return _commands.EXIT_USAGE
    code: int = args.run(args, config)
    return code


if __name__ == "__main__":
    sys.exit(main())
