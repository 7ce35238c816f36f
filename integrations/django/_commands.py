"""What the management commands share: the configuration, and how a command ends.

The commands are Django front ends to ``errwire._commands``, the functions the
``errwire`` console script and ``flask errwire`` call too: they parse their
options, call one of those functions and print its ``Output`` with
``self.stdout.write``. A non-zero exit code becomes a ``CommandError`` with the
same code (1: unhealthy, not delivered, stopped early; 2: a usage problem).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from errwire import _commands
from errwire._config import Config

from . import conf

__all__ = ["add_destination_options", "finish", "load_config"]


def load_config(
    *, dsn: str | None = None, outbox: str | None = None, redis: str | None = None
) -> Config:
    """The project's ``ERRWIRE`` settings with the command-line options over them."""
    try:
        config = conf.get_config()
    except ImproperlyConfigured as exc:
        raise CommandError(f"errwire is not configured: {exc}") from None
    try:
        return _commands.with_overrides(config, dsn=dsn, outbox=outbox, redis=redis)
    except ValueError as exc:  # the message names the option
        raise CommandError(str(exc), returncode=_commands.EXIT_USAGE) from None


def add_destination_options(
    parser: CommandParser, *, dsn: bool = True, redis: str | None = None
) -> None:
    """``--outbox``, ``--dsn`` and (with its help text) ``--redis``, as the other
    front ends spell them."""
    parser.add_argument(
        "--outbox",
        metavar="PATH",
        help='the outbox database (default: from ERRWIRE["OUTBOX_PATH"] / ["DATA_DIR"])',
    )
    if dsn:
        parser.add_argument(
            "--dsn",
            metavar="DSN",
            help='deliver to this Sentry DSN (default: ERRWIRE["DSN"], else the local sink)',
        )
    if redis:
        parser.add_argument("--redis", metavar="URL", help=redis)


def finish(command: BaseCommand, out: _commands.Output, *, success_style: bool = False) -> None:
    """Print ``out``; a non-zero exit code raises ``CommandError`` with that code.

    A report with a ``reason`` (an unhealthy status) is printed to stdout first,
    so ``--json`` stays parseable; otherwise the text is the error itself."""
    if out.exit_code == _commands.EXIT_OK:
        command.stdout.write(command.style.SUCCESS(out.text) if success_style else out.text)
        return
    if out.reason:
        command.stdout.write(out.text)
    raise CommandError(out.reason or out.text, returncode=out.exit_code)
