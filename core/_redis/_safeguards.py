"""The safeguards with fleet-wide state: dedup and rate limit in Redis, sampling.

Same stages and order as the in-process pipeline (dedup -> per-component rate
limit -> sampling), but a fingerprint seen by any worker is a repeat for all of
them, and one component's token bucket is shared by every worker. Sampling
needs no shared state: each event is kept with probability ``sample_rate``.

``clock=None`` uses the Redis server's clock (one clock for the whole fleet);
tests inject one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from .._clock import Clock
from .._config import Config
from .._counter import Counter, CounterMap
from .._worker import Sampler
from ._scripts import DUPLICATE, RATE_LIMITED, Scripts

__all__ = ["FleetSafeguards"]


class FleetSafeguards:
    def __init__(
        self,
        scripts: Scripts,
        config: Config,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.scripts = scripts
        self.clock = clock
        self.window_ms = int(config.dedup_window_seconds * 1000)
        self.per_ms = config.rate_limit_per_minute / 60_000.0
        self.burst = config.burst
        self.sampler = Sampler(config.sample_rate, rng)
        self.deduplicated = Counter()
        self.rate_limited = Counter()
        self.sampled_out = Counter()
        self.components = CounterMap()
        self.component_rate_limited = CounterMap()
        self.tokens: dict[str, float] = {}

    def _now_ms(self) -> int | None:
        return None if self.clock is None else int(self.clock.time() * 1000)

    def check(self, payload: dict[str, Any]) -> str | None:
        """None when the event passes (``payload["suppressed"]`` then carries the
        repeats folded into it); else the outcome that suppressed it."""
        return self.check_batch([payload])[0]

    def check_batch(self, payloads: Sequence[dict[str, Any]]) -> list[str | None]:
        """``check`` for a batch, in order, in one round trip to Redis."""
        events = []
        for payload in payloads:
            component = str(payload.get("component") or "unknown")
            self.components.bump(component)
            fingerprint = str(payload.get("fingerprint") or "")
            carried = int(payload.get("repeats") or 0)
            events.append((fingerprint, str(payload.get("event_id", "")), carried, component))
        answers = self.scripts.guard(
            events,
            window_ms=self.window_ms,
            per_ms=self.per_ms,
            burst=self.burst,
            now_ms=self._now_ms(),
        )
        outcomes: list[str | None] = []
        for payload, (_, _, _, component), (code, left) in zip(
            payloads, events, answers, strict=True
        ):
            if left is not None and (len(self.tokens) < 1000 or component in self.tokens):
                self.tokens[component] = left
            if code == DUPLICATE:
                self.deduplicated.bump()
                outcomes.append("deduplicated")
            elif code == RATE_LIMITED:
                self.rate_limited.bump()
                self.component_rate_limited.bump(component)
                outcomes.append("rate_limited")
            elif not self.sampler.keep():
                self.sampled_out.bump()
                outcomes.append("sampled_out")
            else:
                payload["suppressed"] = int(payload.get("suppressed") or 0) + code
                outcomes.append(None)
        return outcomes

    def components_snapshot(self) -> dict[str, dict[str, Any]]:
        limited = self.component_rate_limited.values()
        return {
            name: {
                "seen": n,
                "rate_limited": limited.get(name, 0),
                "tokens": self.tokens.get(name),
            }
            for name, n in self.components.values().items()
        }
