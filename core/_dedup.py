"""Deduplication by fingerprint in a fixed window, bounded with O(1) LRU eviction.

The first event of a fingerprint passes and opens a window; repeats inside it
are suppressed and counted; the first event after the window passes carrying
that count, so nothing is lost, only summarised.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from ._clock import Clock, SystemClock
from ._counter import Counter

__all__ = ["Deduplicator"]


class Deduplicator:
    __slots__ = ("_clock", "_entries", "_max", "_now", "_window", "suppressed", "unreported")

    def __init__(self, window: float, max_entries: int, clock: Clock) -> None:
        self._window = window
        self._max = max_entries
        self._clock = clock
        # the real clock read directly: one call less per event
        self._now = time.monotonic if type(clock) is SystemClock else clock.monotonic
        # fingerprint -> [window start, occurrences suppressed since the last report]
        self._entries: OrderedDict[str, list[float]] = OrderedDict()
        self.suppressed = Counter()
        self.unreported = Counter()  # suppressed counts lost to LRU eviction

    def check(self, fp: str, carried: int = 0) -> int:
        """-1 when the event is suppressed; otherwise the suppressed count to report with it.

        ``carried`` is what the event already summarises (storm-guard folds); a
        suppressed event hands it on to the next event that passes.
        """
        if self._window <= 0:
            return 0
        now = self._now()
        entries = self._entries
        entry = entries.get(fp)
        if entry is not None:
            entries.move_to_end(fp)
            if now - entry[0] < self._window:
                entry[1] += 1 + carried
                self.suppressed.bump()
                return -1
            report = int(entry[1])
            entry[0] = now
            entry[1] = 0
            return report
        entries[fp] = [now, 0]
        if len(entries) > self._max:
            _, evicted = entries.popitem(last=False)
            self.unreported.add(int(evicted[1]))
        return 0

    def pending(self) -> int:
        """Suppressed occurrences not yet reported with a later event."""
        return int(sum(e[1] for e in list(self._entries.values())))

    def __len__(self) -> int:
        return len(self._entries)
