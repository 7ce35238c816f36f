"""Clocks are injected into every safeguard so tests control time without sleeping."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    """The real clocks."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (for tests and deterministic benchmarks)."""

    __slots__ = ("_mono", "_wall")

    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._mono = start
        self._wall = wall

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall + self._mono

    def advance(self, seconds: float) -> None:
        self._mono += seconds
