"""``ErrwireHandler``: send log records at ERROR and above through errwire.

Records with ``exc_info`` are captured as exceptions, others as messages.
errwire's own records are never captured, so a failing transport cannot feed
itself.
"""

from __future__ import annotations

import logging

from . import _api
from ._event import LEVELS

__all__ = ["CAPTURED_MARK", "ErrwireHandler"]

# Integrations set this attribute on an exception they captured, so the log
# record Django or Flask writes about the same exception is not captured twice.
CAPTURED_MARK = "__errwire_captured__"

_PYTHON_TO_ERRWIRE = {
    logging.CRITICAL: "fatal",
    logging.ERROR: "error",
    logging.WARNING: "warning",
    logging.INFO: "info",
    logging.DEBUG: "debug",
}


class ErrwireHandler(logging.Handler):
    def __init__(self, level: int = logging.ERROR, *, component: str | None = None) -> None:
        super().__init__(level)
        self.component = component

    def emit(self, record: logging.LogRecord) -> None:
        if not _api._enabled or record.name == "errwire" or record.name.startswith("errwire."):
            return
        if getattr(record, "errwire_skip", False):
            return  # already captured by an integration (exactly-once capture)
        try:
            level = _level_name(record.levelno)
            context = {"logger": record.name, "log_message": record.getMessage()}
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None and getattr(exc, CAPTURED_MARK, False) is True:
                return  # an integration captured this exception already
            if exc is not None:
                _api.capture_error(exc, component=self.component, level=level, context=context)
            else:
                _api.capture_message(
                    record.getMessage(),
                    level=level,
                    component=self.component,
                    context={"logger": record.name},
                )
        except Exception:
            self.handleError(record)


def _level_name(levelno: int) -> str:
    for threshold in sorted(_PYTHON_TO_ERRWIRE, reverse=True):
        if levelno >= threshold:
            name = _PYTHON_TO_ERRWIRE[threshold]
            return name if name in LEVELS else "error"
    return "debug"
