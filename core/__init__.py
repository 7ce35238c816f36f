"""errwire: error telemetry that costs nothing when off and never blocks when on.

import errwire
errwire.init()                      # local SQLite sink; or errwire.init(dsn="https://...")
errwire.capture_error(exc, component="db")
errwire.status()
"""

from __future__ import annotations

from . import testing
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
from ._transport import MemoryTransport, Outcome, SendResult, Transport

__version__ = "0.1.0"

__all__ = [
    "Config",
    "EnhancedError",
    "MemoryTransport",
    "Outcome",
    "SendResult",
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
    "shutdown",
    "status",
    "testing",
]
