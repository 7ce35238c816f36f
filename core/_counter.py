"""Exact counters that threads can bump without a lock.

``next()`` on an ``itertools.count`` is a single C call under the GIL, so
increments from request threads and the worker are never lost; reading the
value is rare (status), so parsing it from ``repr`` is an acceptable cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

__all__ = ["Counter", "CounterMap"]


class Counter:
    __slots__ = ("_c", "bump")

    def __init__(self) -> None:
        self._c = itertools.count()
        self.bump = self._c.__next__

    @property
    def value(self) -> int:
        return int(repr(self._c)[6:-1])

    def add(self, n: int) -> None:
        bump = self.bump
        for _ in range(n):
            bump()


class CounterMap:
    """Named counters created on first use (for drops by reason, per component...)."""

    __slots__ = ("_counters",)

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._counters: dict[str, Counter] = {name: Counter() for name in names}

    def get(self, name: str) -> Counter:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters.setdefault(name, Counter())
        return counter

    def bump(self, name: str) -> None:
        self.get(name).bump()

    def values(self) -> dict[str, int]:
        return {name: c.value for name, c in sorted(self._counters.items())}

    def total(self) -> int:
        return sum(c.value for c in list(self._counters.values()))
