"""The web side of the Redis bus: the worker lane's consumer that feeds the stream.

Capture is untouched: the caller's thread still only publishes to the
in-process queue. This consumer runs on the worker thread in place of the
delivery pipeline; it resolves and classifies each event, scrubs it with the
same scrubber (nothing unscrubbed reaches Redis) and appends it to the stream
in batches: up to ``batch_size`` while the queue is busy, at once when it
empties (so ``flush()`` still means "handed over").

The safeguards that need the whole fleet (dedup, rate limit, sampling) run on
the workers. When Redis cannot be reached the batch goes to a local spool (an
outbox of its own, beside the delivery outbox) and the forwarder backs off
(0.5 s doubling to 30 s, with jitter); once Redis answers again the spool is
forwarded, oldest first. The request path never notices.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._bus import Consumer, Lane
from .._clock import Clock
from .._config import Config, redact_url
from .._counter import Counter, CounterMap
from .._event import Event
from .._internal import internal_error, warn_once
from .._outbox import Outbox
from .._payload import PayloadBuilder
from .._sqlite import to_json
from .._transport import Payload
from ._fleet import FleetHeartbeat, flatten
from ._keys import Keys, connect, redis_errors
from ._scripts import Scripts

__all__ = ["StreamForwarder", "spool_path"]

BATCH_SIZE = 100
MIN_BACKOFF = 0.5
MAX_BACKOFF = 30.0
SPOOL_LOOK_SECONDS = 30.0


def spool_path(config: Config) -> str:
    """The forward spool: beside the outbox, never shared with it (its payloads
    have not been through the fleet's safeguards yet)."""
    outbox = config.resolved_outbox_path
    return os.path.join(os.path.dirname(outbox), "forward-" + os.path.basename(outbox))


class StreamForwarder:
    """Consumer of the worker lane in Redis mode (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        builder: PayloadBuilder,
        scrub: Callable[[Payload], Payload],
        clock: Clock,
        *,
        owner: str,
        is_enabled: Callable[[], bool],
        spool: Outbox | None,
        on_idle: Callable[[], None] | None = None,
        client: Any = None,
        keys: Keys | None = None,
        batch_size: int = BATCH_SIZE,
        rng: random.Random | None = None,
    ) -> None:
        assert config.redis_url is not None
        self.url = config.redis_url
        self.max_length = config.bus_max_length
        self.builder = builder
        self.scrub = scrub
        self.clock = clock
        self.owner = owner
        self.is_enabled = is_enabled
        self.outbox = spool
        self.on_idle = on_idle
        self.keys = keys or Keys()
        self.batch_size = batch_size
        self.lane: Lane | None = None  # set once subscribed: its depth decides when to send
        # While set, events go to this consumer instead of the stream: the in-process
        # pipeline, for errwire.testing.capture_events() in a Redis-mode process.
        self.divert: Consumer | None = None
        self._client = client
        self._scripts: Scripts | None = None
        self._random = (rng or random.Random()).random
        self._batch: list[Payload] = []
        self._lock = threading.Lock()
        self._errors = redis_errors()
        self.closed = False
        # counters
        self.forwarded = Counter()  # own events appended to the stream (live or from the spool)
        self.forwarded_foreign = Counter()  # spooled by another process on this host
        self.spooled_total = Counter()
        self.replayed_own = Counter()
        self.evicted_own = Counter()
        self.evicted_foreign = Counter()
        self.trimmed = Counter()  # entries this process's appends trimmed (fleet-wide count)
        self.failures = Counter()
        self.batches = Counter()
        self.dropped = CounterMap()
        self.spool_pending: int | None = None
        self._next_look = 0.0
        self.retry_at = 0.0
        self.backoff = 0.0
        self.last_error: str | None = None

    # -- the client ------------------------------------------------------------------
    @property
    def scripts(self) -> Scripts:
        if self._scripts is None:
            if self._client is None:
                self._client = connect(self.url, client_name="errwire-forwarder")
            self._scripts = Scripts(self._client, self.keys)
        return self._scripts

    def heartbeat_writer(
        self, runtime_id: str, counters: Callable[[], Mapping[str, Any]]
    ) -> FleetHeartbeat:
        """Heartbeats to Redis; the fleet totals get this process's counters as deltas."""

        def totals() -> dict[str, int]:
            return self.fleet_counters(counters())

        return FleetHeartbeat(
            lambda: connect(self.url, client_name="errwire-heartbeat"),
            self.keys,
            runtime_id,
            role="web",
            clock=self.clock,
            totals=totals,
            skip=self.in_backoff,
        )

    # -- the lane's consumer -------------------------------------------------------------
    def consume(self, event: Event) -> None:
        divert = self.divert
        if divert is not None:
            divert.consume(event)
            return
        if not self.is_enabled():
            self.dropped.bump("disabled")
            return
        try:
            stack = self.builder.stack(event.frames)
            self.builder.classify(event, stack)
            payload = self.scrub(self.builder.build(event, stack, 0))
        except Exception as exc:
            self.dropped.bump("internal_error")
            internal_error("forwarder", exc)
            return
        with self._lock:
            self._batch.append(payload)
            full = len(self._batch) >= self.batch_size
        if full or self.lane is None or not self.lane.depth:
            self.flush()
            if self.on_idle is not None:
                self.on_idle()

    def idle(self) -> None:
        self.flush()
        now = self.clock.monotonic()
        if now >= self._next_look:
            # the spool is shared by the processes of this host: one that died may
            # have left events in it, so look at the file again now and then
            self._next_look = now + SPOOL_LOOK_SECONDS
            self.spool_pending = None
        if not self.in_backoff():
            self.replay()
        if self.on_idle is not None:
            self.on_idle()

    # -- sending -----------------------------------------------------------------------
    def in_backoff(self) -> bool:
        return self.clock.monotonic() < self.retry_at

    def flush(self) -> None:
        """Append what is batched; spool it when Redis is down (or backing off)."""
        with self._lock:
            batch, self._batch = self._batch, []
        if not batch:
            return
        if self.closed or self.in_backoff():
            self.spool(batch)
            return
        if self._append(batch):
            self.forwarded.add(len(batch))
            if self.spool_pending is None or self.spool_pending:
                self.replay()
        else:
            self.spool(batch)

    def _append(self, payloads: Sequence[Payload]) -> bool:
        try:
            trimmed = self.scripts.append([to_json(p) for p in payloads], self.max_length)
        except self._errors as exc:
            self._failed(exc)
            return False
        self.batches.bump()
        self.trimmed.add(trimmed)
        if trimmed:
            warn_once(
                "stream-trimmed",
                "errwire: the Redis stream is full (bus_max_length=%d): %d oldest unread "
                "events were trimmed; are the workers running?",
                self.max_length,
                trimmed,
            )
        self.backoff = 0.0
        self.retry_at = 0.0
        self.last_error = None
        return True

    def _failed(self, exc: BaseException) -> None:
        self.failures.bump()
        self.backoff = min(MAX_BACKOFF, max(MIN_BACKOFF, self.backoff * 2))
        self.retry_at = self.clock.monotonic() + self.backoff * (0.5 + self._random() / 2)
        self.last_error = f"{type(exc).__name__}: {exc}"
        warn_once(
            "forward-failed",
            "errwire cannot reach Redis at %s (%s): spooling events locally, retrying in %.1f s",
            redact_url(self.url),
            self.last_error,
            self.backoff,
        )

    # -- the spool -----------------------------------------------------------------------
    def spool(self, payloads: Sequence[Payload]) -> None:
        if not payloads:
            return
        if self.outbox is None:
            self.dropped.get("no_outbox").add(len(payloads))
            return
        try:
            eviction = self.outbox.put_many(payloads, self.owner)
        except Exception as exc:
            self.dropped.get("outbox_error").add(len(payloads))
            internal_error("forward spool", exc)
            return
        self.spooled_total.add(eviction.inserted)
        self.evicted_own.add(eviction.own)
        self.evicted_foreign.add(eviction.foreign)
        if eviction.own:
            warn_once(
                "forward-spool-full",
                "errwire forward spool is full: evicted %d oldest events",
                eviction.own,
            )
        if self.spool_pending is not None:
            self.spool_pending += eviction.inserted - eviction.total

    def replay(self, batch: int = BATCH_SIZE) -> int:
        """Forward up to ``batch`` spooled events, oldest first; how many went."""
        if self.outbox is None or self.closed:
            return 0
        try:
            if self.spool_pending is None:
                exists = os.path.exists(self.outbox.path)
                self.spool_pending = self.outbox.pending() if exists else 0
            if not self.spool_pending:
                return 0
            entries = self.outbox.peek(batch)
        except Exception as exc:
            internal_error("forward spool", exc)
            return 0
        if not entries or not self._append([e.payload for e in entries]):
            return 0
        try:
            removed = self.outbox.remove([e.row_id for e in entries])
        except Exception as exc:
            internal_error("forward spool", exc)
            return 0
        self.spool_pending = max(0, self.spool_pending - removed)
        for entry in entries:
            if entry.owner == self.owner:
                self.replayed_own.bump()
            else:
                self.forwarded_foreign.bump()
        return len(entries)

    def close(self) -> None:
        """Stop forwarding: what is still batched goes to the spool."""
        self.closed = True
        with self._lock:
            batch, self._batch = self._batch, []
        self.spool(batch)
        if self.outbox is not None:
            self.outbox.close()
        client, self._client, self._scripts = self._client, None, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:
                internal_error("redis close", exc)

    # -- counting ----------------------------------------------------------------------
    @property
    def own_spooled(self) -> int:
        return self.spooled_total.value - self.replayed_own.value - self.evicted_own.value

    def add_counters(self, counters: dict[str, Any]) -> None:
        """This process's view: what it captured went to the stream, the spool or a drop."""
        counters["forwarded"] = self.forwarded.value + self.replayed_own.value
        counters["spooled"] += self.own_spooled
        dropped = counters["dropped"]
        for reason, n in self.dropped.values().items():
            dropped[reason] = dropped.get(reason, 0) + n
        if self.evicted_own.value:
            dropped["outbox_full"] = dropped.get("outbox_full", 0) + self.evicted_own.value

    def fleet_counters(self, counters: Mapping[str, Any]) -> dict[str, int]:
        """What this process adds to the fleet totals (see ``_fleet``). ``forwarded``
        is counted by the append script itself; the spool is counted by what this
        process put in and took out, whoever spooled it, so that a spool shared by
        processes on one host adds up."""
        flat = flatten(counters)
        flat.pop("forwarded", None)
        evicted = self.evicted_own.value + self.evicted_foreign.value
        taken = self.replayed_own.value + self.forwarded_foreign.value
        flat["spooled"] = (
            flat.get("spooled", 0) - self.own_spooled + self.spooled_total.value - taken - evicted
        )
        flat["dropped:outbox_full"] = (
            flat.get("dropped:outbox_full", 0) - self.evicted_own.value + evicted
        )
        return flat

    def snapshot(self) -> dict[str, Any]:
        retry = max(0.0, self.retry_at - self.clock.monotonic()) if self.retry_at else 0.0
        return {
            "mode": "redis",
            "url": redact_url(self.url),
            "stream": self.keys.stream,
            "max_length": self.max_length,
            "forwarded": self.forwarded.value + self.replayed_own.value,
            "forwarded_foreign": self.forwarded_foreign.value,
            "batches": self.batches.value,
            "trimmed": self.trimmed.value,
            "failures": self.failures.value,
            "retry_in_seconds": round(retry, 3),
            "last_error": self.last_error,
            "spool_path": self.outbox.path if self.outbox is not None else None,
            "spool_pending": self.spool_pending,
        }
