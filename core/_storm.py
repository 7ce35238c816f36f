"""The storm guard: the caller-side fold of a raise site that repeats within a second.

An error raised in a tight loop would otherwise fill the queue with copies.
The first occurrence in a window is enqueued; repeats only bump a counter that
travels with the next enqueued event from the same site. Runs on request
threads, so it takes no lock: the exact total lives in a lock-free counter and
the per-site travelling count is best effort under races between threads.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from ._counter import Counter

__all__ = ["StormGuard"]

_MAX_SITES = 2048


class StormGuard:
    __slots__ = ("_last", "_now", "_pending", "folded", "orphaned", "window")

    def __init__(self, window: float, now: Callable[[], float]) -> None:
        self.window = window
        self._now = now
        self._last: dict[Hashable, float] = {}
        self._pending: dict[Hashable, int] = {}
        self.folded = Counter()
        self.orphaned = Counter()  # folds whose site was forgotten before it reported them

    def admit(self, site: Hashable) -> int:
        """-1 when this occurrence is folded; otherwise the repeats it should carry."""
        now = self._now()
        last = self._last.get(site)
        if last is not None and now - last < self.window:
            self.folded.bump()
            self._pending[site] = self._pending.get(site, 0) + 1
            return -1
        if len(self._last) >= _MAX_SITES:
            self._forget()
        self._last[site] = now
        return self._pending.pop(site, 0)

    def pending(self) -> int:
        return sum(list(self._pending.values()))

    def _forget(self) -> None:
        self.orphaned.add(sum(list(self._pending.values())))
        self._last.clear()
        self._pending.clear()
