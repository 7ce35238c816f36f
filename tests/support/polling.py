"""Bounded polling for state that sends no notification (Redis counters, pending lists)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["until"]


def until(predicate: Callable[[], object], timeout: float) -> bool:
    """True as soon as ``predicate()`` is truthy; False once ``timeout`` seconds pass."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.05)
    return True
