"""The worker: the bus consumer that turns snapshots into delivered events.

Stages, in order: enabled re-check -> resolve and classify -> dedup ->
per-component rate limit -> sampling -> build payload -> privacy scrub ->
delivery (breaker, transport, outbox). Between events, and whenever the queue
is idle, it writes heartbeats and replays the outbox.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ._activity import Activity, OutcomeMap
from ._clock import Clock
from ._config import Config
from ._counter import Counter, CounterMap
from ._dedup import Deduplicator
from ._delivery import Delivery
from ._event import Event
from ._internal import internal_error
from ._payload import PayloadBuilder
from ._ratelimit import RateLimiter
from ._transport import Payload

__all__ = ["Pipeline", "PipelineStats", "Sampler", "Scrub"]

Scrub = Callable[[Payload], Payload]


class Sampler:
    """Keeps each event with probability ``rate``: random per event, never by class."""

    __slots__ = ("_random", "rate")

    def __init__(self, rate: float, rng: random.Random | None = None) -> None:
        self.rate = rate
        self._random = (rng or random.Random()).random

    def keep(self) -> bool:
        return self.rate >= 1.0 or self._random() < self.rate


class PipelineStats:
    __slots__ = ("components", "disabled", "internal", "processed", "rate_limited", "sampled_out")

    def __init__(self) -> None:
        self.processed = Counter()
        self.rate_limited = Counter()
        self.sampled_out = Counter()
        self.disabled = Counter()
        self.internal = Counter()
        self.components = CounterMap()


class Pipeline:
    """The worker lane's consumer."""

    def __init__(
        self,
        config: Config,
        builder: PayloadBuilder,
        delivery: Delivery,
        clock: Clock,
        *,
        is_enabled: Callable[[], bool],
        scrub: Scrub,
        on_idle: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.builder = builder
        self.delivery = delivery
        self.clock = clock
        self.is_enabled = is_enabled
        self.scrub = scrub
        self.on_idle = on_idle
        self.dedup = Deduplicator(config.dedup_window_seconds, config.dedup_max_entries, clock)
        self.limiter = RateLimiter(config.rate_limit_per_minute, config.burst, clock)
        self.sampler = Sampler(config.sample_rate, rng)
        self.stats = PipelineStats()
        self.component_rate_limited = CounterMap()
        # per-event calls, bound once
        self._processed = self.stats.processed.bump
        self._seen: dict[str, Callable[[], object]] = {}  # component -> its counter's bump
        self._deliver = delivery.deliver
        results = delivery.stats.results
        self.activity = Activity(
            results if isinstance(results, OutcomeMap) else None,
            destination=delivery.transport.name,
            spools=delivery.outbox is not None,
        )

    def consume(self, event: Event) -> None:
        self._processed()
        if not self.is_enabled():
            self.stats.disabled.bump()
            return
        try:
            payload = self.prepare(event)
        except Exception as exc:
            self.stats.internal.bump()
            internal_error("pipeline", exc)
            return
        if payload is not None:
            self._deliver(payload)
        self.activity.record(event, payload)
        if self.on_idle is not None:
            self.on_idle()
        if payload is None:
            return
        if self.delivery.outbox_pending and self.delivery.breaker.state == "closed":
            self.delivery.replay()
            self.activity.sent_other()

    def prepare(self, event: Event) -> Payload | None:
        """Run the safeguards; the scrubbed payload, or None when a stage suppressed it."""
        builder = self.builder
        stack = builder.stack(event.frames)
        component, _, _ = builder.classify(event, stack)
        seen = self._seen.get(component)
        if seen is None:
            seen = self._seen[component] = self.stats.components.get(component).bump
        seen()
        assert event.fingerprint is not None
        suppressed = self.dedup.check(event.fingerprint, event.repeats)
        if suppressed < 0:
            return None
        if not self.limiter.allow(component):
            self.stats.rate_limited.bump()
            self.component_rate_limited.bump(component)
            return None
        sampler = self.sampler
        if not sampler.rate >= 1.0 and not sampler.keep():  # keep(), without a call at 1.0
            self.stats.sampled_out.bump()
            return None
        return self.scrub(builder.build(event, stack, suppressed))

    def idle(self) -> None:
        if self.on_idle is not None:
            self.on_idle()
        if self.delivery.outbox_pending is None or self.delivery.outbox_pending:
            self.delivery.replay()
            self.activity.sent_other()

    def components_snapshot(self) -> dict[str, dict[str, Any]]:
        seen = self.stats.components.values()
        limited = self.component_rate_limited.values()
        tokens = self.limiter.state()
        return {
            name: {"seen": count, "rate_limited": limited.get(name, 0), "tokens": tokens.get(name)}
            for name, count in seen.items()
        }
