"""The storm guard: the caller-side fold of a raise site that repeats within a second.

An error raised in a tight loop would otherwise fill the queue with copies.
The first occurrence in a window is enqueued; repeats only bump a counter that
travels with the next enqueued event from the same site. Runs on request
threads, so it takes no lock: the exact total lives in a lock-free counter and
the per-site travelling count is best effort under races between threads.

The runtime gives it the wall clock, which capture reads anyway for the event's
timestamp (one clock read per capture, not two). A wall clock can jump: a jump
backwards admits the next occurrence (never folds for longer than the window),
a jump forwards ends a window early. Either way nothing is held back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from ._counter import Counter

__all__ = ["StormGuard"]

_MAX_SITES = 2048
_AT, _FOLDS = 0, 1  # a site's entry: [when it was last admitted, folds since then]


class StormGuard:
    __slots__ = ("_now", "folded", "orphaned", "sites", "window")

    def __init__(self, window: float, now: Callable[[], float]) -> None:
        self.window = window
        self._now = now
        # One mutable entry per site: a repeat costs one lookup and no allocation.
        # (The runtime's capture path reads it directly: see Runtime.capture_exception.)
        self.sites: dict[Hashable, list[Any]] = {}
        self.folded = Counter()
        self.orphaned = Counter()  # folds whose site was forgotten before it reported them

    def admit(self, site: Hashable) -> int:
        """-1 when this occurrence is folded; otherwise the repeats it should carry."""
        now = self._now()
        entry = self.sites.get(site)
        if entry is None:
            if len(self.sites) >= _MAX_SITES:
                self._forget()
            self.sites[site] = [now, 0]
            return 0
        if 0.0 <= now - entry[_AT] < self.window:
            self.folded.bump()
            entry[_FOLDS] += 1
            return -1
        repeats: int = entry[_FOLDS]
        entry[_AT] = now
        entry[_FOLDS] = 0
        return repeats

    def pending(self) -> int:
        return int(sum(entry[_FOLDS] for entry in list(self.sites.values())))

    def _forget(self) -> None:
        self.orphaned.add(self.pending())
        self.sites.clear()
