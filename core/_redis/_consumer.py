"""The worker side of the Redis bus: read the stream in a consumer group, deliver.

Each worker process is one consumer of the group ``errwire-workers``. It reads
batches with ``XREADGROUP``, runs the fleet-wide safeguards, delivers through
the transport with the circuit breaker (failures go to its local outbox, as in
a single process) and acknowledges each entry only once it is delivered,
counted as suppressed, or spooled; the ack script deletes the entry and counts
its outcome in the same atomic step.

Entries a dead worker held are taken over with ``XAUTOCLAIM`` once idle for
``bus_reclaim_seconds``; a live worker busy with a long batch resets the idle
time of what it still holds, so it is not robbed. Delivery is at least once: a
redelivered event keeps its event id, which Sentry and the local sink use to
store it once.

Stopping (SIGTERM): no new reads; the batch in hand is finished and acked
until the deadline; what is left stays pending for another worker to reclaim.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from .._clock import Clock, SystemClock
from .._config import Config, redact_url
from .._counter import Counter, CounterMap
from .._delivery import Delivery
from .._internal import internal_error, internal_error_count, logger, warn_once
from .._outbox import Outbox
from .._runtime import make_transport
from .._sqlite import from_json
from .._transport import Transport
from ._fleet import FleetHeartbeat
from ._keys import GROUP, Keys, connect, redis_errors
from ._safeguards import FleetSafeguards
from ._scripts import ACK_DUPLICATE, ACK_TRIMMED, Scripts

__all__ = ["FleetWorker"]

Entry = tuple[str, dict[str, str]]

_MAX_BACKOFF = 10.0


class FleetWorker:
    """One worker process's consumer (drive it with ``run`` or, in tests, ``step``)."""

    def __init__(
        self,
        config: Config,
        *,
        transport: Transport | None = None,
        client: Any = None,
        keys: Keys | None = None,
        clock: Clock | None = None,
        safeguard_clock: Clock | None = None,
        rng: random.Random | None = None,
        batch_size: int = 50,
        block_ms: int = 1000,
        group: str = GROUP,
    ) -> None:
        assert config.redis_url is not None
        self.config = config
        self.url = config.redis_url
        self.clock: Clock = clock or SystemClock()
        self.keys = keys or Keys()
        self.group = group
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.reclaim_ms = int(config.bus_reclaim_seconds * 1000)
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.runtime_id = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.started_at = self.clock.time()
        self.client = client or connect(
            self.url, timeout=max(5.0, block_ms / 1000 + 2.0), client_name="errwire-worker"
        )
        self.scripts = Scripts(self.client, self.keys, group=group)
        self.transport = transport or make_transport(config)
        self.outbox = Outbox(
            config.resolved_outbox_path, config.outbox_max_events, clock=self.clock
        )
        self.delivery = Delivery.from_config(
            config, self.transport, self.outbox, self.clock, owner=self.runtime_id
        )
        self.breaker = self.delivery.breaker
        self.safeguards = FleetSafeguards(self.scripts, config, clock=safeguard_clock, rng=rng)
        self.heartbeat = FleetHeartbeat(
            lambda: self.client,
            self.keys,
            self.runtime_id,
            role="worker",
            clock=self.clock,
            totals=self.fleet_counters,
            ttl=max(120.0, 10 * config.heartbeat_interval_seconds),
        )
        self._errors = redis_errors()
        self._group_ready = False
        self._next_claim = 0.0
        self._next_prune = 0.0
        self._next_beat = 0.0
        self._retry_at = 0.0
        self._backoff = 0.0
        self._holding: list[str] = []
        self.deadline: float | None = None  # monotonic; set when asked to stop
        # counters: outcomes count only entries this worker acknowledged first
        self.outcomes = CounterMap()
        self.received = Counter()
        self.duplicates = Counter()
        self.trim_recovered = Counter()
        self.reclaimed = Counter()
        self.redis_failures = Counter()
        self.last_error: str | None = None
        self._rate_mark = (self.clock.monotonic(), 0)
        self.rate_per_second = 0.0

    # -- the group ---------------------------------------------------------------------
    def ensure_group(self) -> None:
        """Create the consumer group (reading from the stream's start) if missing."""
        import redis

        try:
            self.client.xgroup_create(self.keys.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    # -- one step ------------------------------------------------------------------------
    def step(self) -> int:
        """Reclaim or read one batch, handle it, ack it; the number of entries handled.
        Raises Redis errors (``run`` backs off; tests see them)."""
        import redis

        if not self._group_ready:
            self.ensure_group()
        try:
            entries = self._reclaim() or self._read()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # Redis restarted empty: the group is gone
            return 0
        if not entries:
            return 0
        return self.handle(entries)

    def _reclaim(self) -> list[Entry]:
        now = self.clock.monotonic()
        if now < self._next_claim:
            return []
        self._next_claim = now + max(0.05, self.reclaim_ms / 2000.0)
        reply = self.client.xautoclaim(
            self.keys.stream,
            self.group,
            self.runtime_id,
            min_idle_time=self.reclaim_ms,
            start_id="0-0",
            count=self.batch_size,
        )
        self._prune_consumers(now)
        claimed = [(i, f) for i, f in reply[1] if f is not None]
        if claimed:
            self.reclaimed.add(len(claimed))
            self.client.hincrby(self.keys.totals, "reclaimed", len(claimed))
            self._next_claim = now  # more may wait: look again next step
            logger.info("errwire worker %s reclaimed %d entries", self.runtime_id, len(claimed))
        return claimed

    def _prune_consumers(self, now: float) -> None:
        """Forget consumers (dead workers) that hold nothing and were idle for ten
        reclaim periods (an hour at least), so the group lists live workers only."""
        if now < self._next_prune:
            return
        self._next_prune = now + 60.0
        idle_ms = max(3_600_000, 10 * self.reclaim_ms)
        for consumer in self.client.xinfo_consumers(self.keys.stream, self.group):
            name = consumer.get("name")
            if (
                name != self.runtime_id
                and int(consumer.get("pending", 0)) == 0
                and int(consumer.get("idle", 0)) > idle_ms
            ):
                self.client.xgroup_delconsumer(self.keys.stream, self.group, name)

    def _read(self) -> list[Entry]:
        reply = self.client.xreadgroup(
            self.group,
            self.runtime_id,
            {self.keys.stream: ">"},
            count=self.batch_size,
            block=self.block_ms,
        )
        if not reply:
            return []
        return [(i, f) for i, f in reply[0][1] if f is not None]

    def handle(self, entries: Sequence[Entry]) -> int:
        """Safeguards for the whole batch (one round trip), then delivery in order until
        done or the stop deadline; acks every entry whose outcome is known."""
        self._holding = [i for i, _ in entries]
        outcomes: list[tuple[str, str]] = []
        try:
            checked: list[tuple[str, dict[str, Any]]] = []
            for entry_id, fields in entries:
                payload = from_json(fields.get("p", ""))
                if payload is None:
                    warn_once("undecodable-entry", "errwire worker: discarded an undecodable entry")
                    outcomes.append((entry_id, "dropped:undecodable"))
                elif not self.config.enabled:
                    outcomes.append((entry_id, "dropped:disabled"))
                else:
                    checked.append((entry_id, payload))
            verdicts = self.safeguards.check_batch([p for _, p in checked]) if checked else []
            deliver: list[tuple[str, dict[str, Any]]] = []
            for (entry_id, payload), verdict in zip(checked, verdicts, strict=True):
                if verdict is None:
                    deliver.append((entry_id, payload))
                else:
                    outcomes.append((entry_id, verdict))  # final: acked even at a deadline
            touched = self.clock.monotonic()
            for position, (entry_id, payload) in enumerate(deliver):
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    break
                outcomes.append((entry_id, self._deliver(payload)))
                now = self.clock.monotonic()
                if (now - touched) * 1000 > self.reclaim_ms / 3:
                    self._touch([i for i, _ in deliver[position + 1 :]])
                    touched = now
        finally:
            self._ack(outcomes)
            self._holding = []
        return len(outcomes)

    def _deliver(self, payload: dict[str, Any]) -> str:
        s = self.delivery.stats
        delivered, rejected, spooled = s.delivered.value, s.rejected.value, s.spooled_total.value
        dropped = s.dropped.values()
        # No shorter timeout at a stop deadline: a send cut short would be spooled to
        # this worker's outbox; one still running at the deadline is abandoned instead
        # (its entry stays pending, and another worker delivers it).
        self.delivery.deliver(payload)
        if s.delivered.value != delivered:
            if self.delivery.outbox_pending and self.breaker.state == "closed":
                self.delivery.replay()
            return "delivered"
        if s.rejected.value != rejected:
            return "rejected"
        if s.spooled_total.value != spooled:
            return "spooled"
        for reason, n in s.dropped.values().items():
            if n != dropped.get(reason, 0):
                return f"dropped:{reason}"
        return "spooled"  # the same event already waits in the outbox

    def _touch(self, ids: list[str]) -> None:
        if ids:
            self.client.xclaim(self.keys.stream, self.group, self.runtime_id, 0, ids, justid=True)

    def _ack(self, outcomes: list[tuple[str, str]]) -> None:
        if not outcomes:
            return
        codes = self.scripts.ack(outcomes)
        for (_, field), code in zip(outcomes, codes, strict=True):
            if code == ACK_DUPLICATE:
                self.duplicates.bump()
                continue
            self.received.bump()
            self.outcomes.bump(field)
            if code == ACK_TRIMMED:
                self.trim_recovered.bump()

    # -- the loop ------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; then finish the batch in hand (``deadline``)."""
        while not stop.is_set():
            self.tick(stop)
        self.maintain(force=True)

    def tick(self, stop: threading.Event | None = None) -> None:
        """One turn of the loop: a step, or a pause after a Redis failure."""
        wait = self._retry_at - self.clock.monotonic()
        if wait > 0:
            (stop or threading.Event()).wait(min(0.1, wait))
            return
        try:
            handled = self.step()
        except self._errors as exc:
            self._redis_failed(exc)
            return
        except Exception as exc:
            internal_error("fleet worker", exc)
            handled = 0
        self._backoff = 0.0
        self.last_error = None
        pending = self.delivery.outbox_pending
        if handled == 0 and (pending is None or pending) and self.breaker.state == "closed":
            self.delivery.replay()
        self.maintain()

    def _redis_failed(self, exc: BaseException) -> None:
        self.redis_failures.bump()
        self._group_ready = False
        self._backoff = min(_MAX_BACKOFF, max(0.2, self._backoff * 2))
        self._retry_at = self.clock.monotonic() + self._backoff
        self.last_error = f"{type(exc).__name__}: {exc}"
        warn_once(
            "worker-redis",
            "errwire worker cannot reach Redis at %s (%s); retrying",
            redact_url(self.url),
            self.last_error,
        )

    def maintain(self, *, force: bool = False) -> None:
        """Heartbeat (and the totals deltas) every heartbeat interval."""
        now = self.clock.monotonic()
        if not force and now < self._next_beat:
            return
        since, received = self._rate_mark
        if now > since:
            self.rate_per_second = (self.received.value - received) / (now - since)
        self._rate_mark = (now, self.received.value)
        self._next_beat = now + self.config.heartbeat_interval_seconds
        self.heartbeat.write(self.status(), final=force)

    def close(self) -> None:
        """Leave the group if nothing is pending here; release the transport and Redis."""
        try:
            pending = self.client.xpending_range(
                self.keys.stream, self.group, "-", "+", 1, consumername=self.runtime_id
            )
            if not pending:
                self.client.xgroup_delconsumer(self.keys.stream, self.group, self.runtime_id)
        except self._errors:
            pass
        self.delivery.close()
        self.outbox.close()
        self.heartbeat.close()
        with contextlib.suppress(*self._errors):
            self.client.close()

    # -- counting ------------------------------------------------------------------------
    def _replayed(self) -> tuple[int, int, int]:
        s = self.delivery.stats
        delivered = s.replay_delivered.value + s.foreign_replayed.value
        evicted = s.outbox_evicted.value + s.foreign_evicted.value
        return delivered, s.replay_rejected.value + s.foreign_rejected.value, evicted

    def fleet_counters(self) -> dict[str, int]:
        """What this worker adds to the fleet totals beyond its acks: outbox replays
        (spooled -> delivered / rejected / dropped) and failed send attempts."""
        delivered, rejected, evicted = self._replayed()
        return {
            "delivered": delivered,
            "rejected": rejected,
            "spooled": -(delivered + rejected + evicted),
            "dropped:outbox_full": evicted,
            "failed": self.delivery.stats.failed.value,
        }

    def counters(self) -> dict[str, Any]:
        o = self.outcomes.values()
        delivered, rejected, evicted = self._replayed()
        dropped = {k[8:]: n for k, n in o.items() if k.startswith("dropped:")}
        if evicted:
            dropped["outbox_full"] = dropped.get("outbox_full", 0) + evicted
        return {
            "received": self.received.value,
            "delivered": o.get("delivered", 0) + delivered,
            "deduplicated": o.get("deduplicated", 0),
            "rate_limited": o.get("rate_limited", 0),
            "sampled_out": o.get("sampled_out", 0),
            "dropped": dropped,
            "spooled": o.get("spooled", 0) - delivered - rejected - evicted,
            "rejected": o.get("rejected", 0) + rejected,
            "failed": self.delivery.stats.failed.value,
            "duplicates": self.duplicates.value,
            "reclaimed": self.reclaimed.value,
            "trim_recovered": self.trim_recovered.value,
            "internal_errors": internal_error_count(),
        }

    def status(self) -> dict[str, Any]:
        return {
            "role": "worker",
            "runtime_id": self.runtime_id,
            "pid": self.pid,
            "host": self.host,
            "started_at": self.started_at,
            "bus": {
                "url": redact_url(self.url),
                "group": self.group,
                "last_error": self.last_error,
            },
            "rate_per_second": round(self.rate_per_second, 2),
            "holding": len(self._holding),
            "counters": self.counters(),
            "delivery": self.delivery.snapshot(),
            "outbox": {
                "path": self.outbox.path,
                "pending": self.delivery.outbox_pending,
                "replayed_foreign": self.delivery.stats.foreign_replayed.value,
            },
            "components": self.safeguards.components_snapshot(),
            "redis_failures": self.redis_failures.value,
            "timestamp": self.clock.time(),
        }
