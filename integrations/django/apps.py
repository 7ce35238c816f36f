"""The Django app: ``INSTALLED_APPS += ["errwire.integrations.django"]``.

Nothing happens at import time. ``ready()`` registers the system checks,
connects the signals and the log filter, and starts the runtime from the
``ERRWIRE`` setting (the worker thread starts on the first event).
"""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["ErrwireConfig"]


class ErrwireConfig(AppConfig):
    name = "errwire.integrations.django"
    label = "errwire"
    verbose_name = "errwire error telemetry"
    default = True

    def ready(self) -> None:
        from . import _wiring, checks

        checks.register()
        _wiring.connect()
