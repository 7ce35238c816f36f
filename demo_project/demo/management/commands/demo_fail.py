"""``manage.py demo_fail``: a nightly import that fails. errwire captures the error,
the command exits 1, and the event is delivered before the process exits."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

import errwire


def import_prices(path: str) -> None:
    with open(path, encoding="utf-8") as feed:
        feed.read()


class Command(BaseCommand):
    help = "Import tomorrow's prices (it fails: the feed file is missing)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            import_prices("/nonexistent/feeds/prices-tomorrow.csv")
        except OSError as exc:
            errwire.capture_error(exc, component="importer", context={"feed": "prices"})
            raise CommandError(f"price import failed: {exc}") from exc
