"""What ``AppConfig.ready()`` connects: the runtime, the signals, the log filter.

``start`` applies the settings to the process's runtime: starts it (the worker
thread itself starts lazily: on the first event, or when a server loads the
middleware and the outbox holds events to replay), restarts it when
``override_settings`` changed the configuration, or stops it when telemetry was
switched off. A runtime that someone else installed (``errwire.init`` called by
the project itself, ``errwire.testing.capture_events``) is left alone.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import got_request_exception, setting_changed
from django.http import HttpRequest

from errwire import _api
from errwire._context import current_request, request_scope
from errwire._runtime import Runtime

from . import conf
from ._capture import DjangoRequestSnapshot, capture_once, guard_logger, is_captured

__all__ = [
    "connect",
    "managed_runtime",
    "on_request_exception",
    "on_setting_changed",
    "serving",
    "start",
]

logger = logging.getLogger("errwire.django")


class _State:
    runtime: Runtime | None = None
    connected = False
    lock = threading.Lock()


def managed_runtime() -> Runtime | None:
    """The runtime this app started, if it is still the process's runtime."""
    runtime = _api.get_runtime()
    return runtime if runtime is not None and runtime is _State.runtime else None


def start() -> Runtime | None:
    """Apply the settings to the runtime; returns the runtime this app manages (or None)."""
    with _State.lock:
        try:
            cfg = conf.get_config()
        except ImproperlyConfigured as exc:
            logger.warning("errwire is not started: %s (run `manage.py check`)", exc)
            return None
        current = _api.get_runtime()
        ours = _State.runtime
        if current is not None and current is not ours:
            return None  # the project installed its own runtime: it wins
        if not cfg.enabled:
            if current is not None:
                _api.shutdown()
            _State.runtime = None
            return None
        if current is not None and current.config == cfg:
            return current
        # Not errwire.init(): it starts the worker at once when the outbox has rows, and
        # ready() also runs for `migrate` or `telemetry_replay --dry-run`, which must not
        # deliver anything. The middleware starts it when a server loads it (serving()).
        runtime = Runtime(cfg, is_enabled=_api.is_enabled)
        _api.install(runtime)
        _State.runtime = runtime
        return runtime


def serving() -> None:
    """A request handler loaded the middleware: this process serves requests, so its
    worker starts now if earlier processes left events in the outbox."""
    runtime = managed_runtime()
    if runtime is not None and os.path.exists(runtime.config.resolved_outbox_path):
        runtime.worker_lane.start()


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in conf.WATCHED:
        conf.clear_cache()
        start()


def on_request_exception(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """``got_request_exception``: capture what the middleware did not (exceptions
    raised outside the view, or when the middleware is not installed)."""
    if not _api._enabled:
        return
    # Django sends the signal inside its ``except`` block; under ASGI it does so on a
    # worker thread, where asgiref re-raises the exception so sys.exc_info() has it too.
    exc = sys.exc_info()[1]
    if exc is None or is_captured(exc):
        return
    if request is not None and current_request() is None:
        with request_scope(DjangoRequestSnapshot.of(request)):
            capture_once(exc, "django.got_request_exception", "error", request)
    else:
        capture_once(exc, "django.got_request_exception", "error", request)


def _at_exit() -> None:
    """Deliver what is queued before the interpreter exits (``manage.py`` commands,
    ``runserver`` on Ctrl-C). A runtime that saw no event leaves no trace on disk."""
    runtime = managed_runtime()
    if runtime is None:
        return
    status = runtime.status()
    if status["counters"]["captured"] or status["worker_alive"]:
        _api.shutdown()


def connect() -> None:
    """Called from ``AppConfig.ready()``: connect everything (once) and start."""
    with _State.lock:
        if not _State.connected:
            _State.connected = True
            setting_changed.connect(on_setting_changed, dispatch_uid="errwire.setting_changed")
            got_request_exception.connect(
                on_request_exception, dispatch_uid="errwire.got_request_exception"
            )
            guard_logger("django.request")
            atexit.register(_at_exit)
    start()
