"""Per-component token buckets, so one noisy component cannot starve the others."""

from __future__ import annotations

import time
from collections import OrderedDict

from ._clock import Clock, SystemClock

__all__ = ["RateLimiter"]

_MAX_COMPONENTS = 1000


class RateLimiter:
    __slots__ = ("_buckets", "_burst", "_clock", "_now", "_rate")

    def __init__(self, per_minute: int, burst: int, clock: Clock) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        # the real clock read directly: one call less per event
        self._now = time.monotonic if type(clock) is SystemClock else clock.monotonic
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # component -> [tokens, last]

    def allow(self, component: str) -> bool:
        now = self._now()
        bucket = self._buckets.get(component)
        if bucket is None:
            bucket = self._buckets[component] = [self._burst, now]
            if len(self._buckets) > _MAX_COMPONENTS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(component)
            tokens = bucket[0] + (now - bucket[1]) * self._rate
            bucket[0] = tokens if tokens < self._burst else self._burst  # min(), a call less
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return True
        return False

    def state(self) -> dict[str, float]:
        """Tokens left per component (as of each bucket's last use)."""
        return {name: round(b[0], 2) for name, b in list(self._buckets.items())}
