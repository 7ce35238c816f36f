"""Internal errors: never crash the host, log once per place (rate-limited), count them.

Tests install a recorder (``set_internal_error_hook``) so a bug inside errwire
fails the test that caused it instead of disappearing into a counter.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable

__all__ = [
    "internal_error",
    "internal_error_count",
    "logger",
    "set_internal_error_hook",
    "warn_once",
]

logger = logging.getLogger("errwire")

_count = itertools.count()
_last_logged: dict[str, float] = {}
_LOG_EVERY_SECONDS = 60.0
_hook: Callable[[str, BaseException], None] | None = None


def set_internal_error_hook(hook: Callable[[str, BaseException], None] | None) -> None:
    """Route internal errors to ``hook`` as well (tests use it to fail loudly)."""
    global _hook
    _hook = hook


def _counter_value(counter: itertools.count[int]) -> int:
    # itertools.count is the only lock-free counter CPython offers; its value is in its repr.
    return int(repr(counter)[6:-1])


def internal_error_count() -> int:
    return _counter_value(_count)


def internal_error(where: str, exc: BaseException) -> None:
    """Record an error inside errwire: count it, log it at most once a minute per place."""
    next(_count)
    now = time.monotonic()
    last = _last_logged.get(where)
    if last is None or now - last >= _LOG_EVERY_SECONDS:
        _last_logged[where] = now
        logger.error("errwire internal error in %s: %r", where, exc, exc_info=exc)
    hook = _hook
    if hook is not None:
        hook(where, exc)


def warn_once(key: str, message: str, *args: object, every: float = _LOG_EVERY_SECONDS) -> bool:
    """Log a warning at most once per ``every`` seconds for ``key``; True if it was logged."""
    now = time.monotonic()
    last = _last_logged.get(key)
    if last is not None and now - last < every:
        return False
    _last_logged[key] = now
    logger.warning(message, *args)
    return True
