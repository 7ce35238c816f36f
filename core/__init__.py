"""errwire: error telemetry that costs nothing when off and never blocks when on.

import errwire
errwire.init()                      # local SQLite sink; or errwire.init(dsn="https://...")
errwire.capture_error(exc, component="db")
errwire.status()
errwire.send_test_event()           # one test event through the whole pipeline: what happened?
"""

from __future__ import annotations

from typing import Any

from . import _config, _ops, testing
from ._api import (
    capture_error,
    capture_message,
    disable,
    enable,
    flush,
    init,
    is_enabled,
    shutdown,
    status,
)
from ._builder import EnhancedError, error
from ._config import Config
from ._context import request_scope
from ._heartbeat import read_heartbeats
from ._ops import TestEventResult
from ._transport import MemoryTransport, Outcome, SendResult, Transport

__version__ = "0.1.0"

__all__ = [
    "Config",
    "EnhancedError",
    "MemoryTransport",
    "Outcome",
    "SendResult",
    "TestEventResult",
    "Transport",
    "__version__",
    "capture_error",
    "capture_message",
    "disable",
    "enable",
    "error",
    "flush",
    "init",
    "is_enabled",
    "read_heartbeats",
    "request_scope",
    "send_test_event",
    "shutdown",
    "status",
    "testing",
]


def send_test_event(
    dsn: str | None = None, *, timeout: float = 15.0, **options: Any
) -> TestEventResult:
    """Send one test event through the whole pipeline and report what happened.

    ``dsn`` and ``options`` are read like ``errwire.init``'s (``ERRWIRE_*``
    environment variables win), so this checks what ``init`` would do. Returns
    ``TestEventResult(ok, detail, event_id, remote_id, transport)``: on success
    ``remote_id`` is the id the server gave the event; on failure ``detail`` says
    why (a bad DSN, connection refused, HTTP 403 with the server's reason, rate
    limited, timed out, ...). Never raises for a bad setting or a failed send, and
    never touches the running runtime; a failed test event is not retried.
    """
    if dsn is not None:
        options["dsn"] = dsn
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < float("inf")
    ):
        return TestEventResult(
            False, f"timeout must be a positive number of seconds; got {timeout!r}"
        )
    try:
        config = _config.make_config(options, use_env=True)
    except ValueError as exc:
        return TestEventResult(False, f"cannot send a test event: {exc}")
    return _ops.send_test_event(config, timeout=float(timeout))
