"""The worker side, in process: read in the group, safeguards, deliver, ack only
after an outcome; reclaim what a dead worker held; spool on failure; stop at a
deadline leaving the rest pending; recreate the group after Redis lost it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from errwire import Config, MemoryTransport
from errwire._clock import ManualClock
from errwire._redis import GROUP, FleetWorker, Keys
from errwire._redis._scripts import Scripts
from errwire._transport import Outcome, Payload, SendResult
from tests.support.redis_server import RedisServer


def _config(url: str, data_dir: Path, **options: Any) -> Config:
    defaults: dict[str, Any] = {"dedup_window_seconds": 0, "bus_reclaim_seconds": 30.0}
    return Config(bus=url, data_dir=str(data_dir), **{**defaults, **options})


def _forward(client: Any, keys: Keys, payloads: list[Payload]) -> None:
    Scripts(client, keys).append([json.dumps(p) for p in payloads], 100_000)


def _payload(n: int, component: str = "db") -> Payload:
    return {
        "event_id": f"{n:032x}",
        "fingerprint": f"fp{n}",
        "component": component,
        "message": f"event {n}",
        "repeats": 0,
    }


class Flaky:
    """A transport that answers from a script of outcomes, then OK."""

    name = "flaky"
    enforces_timeout = True

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[Payload] = []

    def send(self, payload: Payload, timeout: float) -> SendResult:
        outcome = self.outcomes.pop(0) if self.outcomes else Outcome.OK
        if outcome is Outcome.OK:
            self.sent.append(payload)
        return SendResult(outcome, detail=outcome.value)

    def close(self) -> None:
        return None


def _worker(url: str, tmp_path: Path, transport: Any, **options: Any) -> FleetWorker:
    worker = FleetWorker(
        _config(url, tmp_path, **options),
        transport=transport,
        clock=ManualClock(),
        block_ms=10,
    )
    worker.ensure_group()
    return worker


def test_delivers_and_acks_each_entry_once(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    memory = MemoryTransport()
    worker = _worker(redis_server.url, tmp_path, memory)
    try:
        _forward(client, keys, [_payload(n) for n in range(120)])
        while worker.step():
            pass
        assert [p["event_id"] for p in memory.events] == [f"{n:032x}" for n in range(120)]
        assert client.xlen(keys.stream) == 0
        assert client.xpending(keys.stream, GROUP)["pending"] == 0
        counters = worker.counters()
        assert counters["received"] == counters["delivered"] == 120
        assert int(client.hget(keys.totals, "delivered")) == 120
    finally:
        worker.close()


def test_every_outcome_is_acked_and_counted(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    transport = Flaky(Outcome.REJECTED, Outcome.RETRYABLE)
    worker = _worker(
        redis_server.url,
        tmp_path,
        transport,
        dedup_window_seconds=60,
        rate_limit_per_minute=1,
        rate_limit_burst=3,
    )
    try:
        payloads = [_payload(n, component="noisy") for n in range(5)]
        payloads.append({**_payload(5), "fingerprint": "fp0"})  # a repeat of event 0
        _forward(client, keys, payloads)
        client.xadd(keys.stream, {"p": "not json"})
        while worker.step():
            pass
        counters = worker.counters()
        assert counters["rejected"] == 1
        assert counters["spooled"] == 1  # the retryable failure went to the outbox
        assert counters["delivered"] == 1
        assert counters["rate_limited"] == 2
        assert counters["deduplicated"] == 1
        assert counters["dropped"] == {"undecodable": 1}
        assert counters["received"] == 7
        assert client.xlen(keys.stream) == 0  # all acknowledged
        # the outbox replays on an idle turn: spooled -> delivered, fleet-wide too
        worker.tick()
        counters = worker.counters()
        assert counters["spooled"] == 0 and counters["delivered"] == 2
        worker.maintain(force=True)
        totals = client.hgetall(keys.totals)
        assert int(totals["delivered"]) == 2
        assert int(totals["spooled"]) == 0
    finally:
        worker.close()


def test_entries_a_dead_worker_held_are_reclaimed(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    _forward(client, keys, [_payload(n) for n in range(10)])
    client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
    client.xreadgroup(GROUP, "dead-worker", {keys.stream: ">"}, count=6)
    memory = MemoryTransport()
    worker = _worker(redis_server.url, tmp_path, memory, bus_reclaim_seconds=0.0001)
    try:
        while worker.step():
            pass
        assert sorted(p["event_id"] for p in memory.events) == [f"{n:032x}" for n in range(10)]
        assert worker.reclaimed.value == 6
        assert client.xpending(keys.stream, GROUP)["pending"] == 0
        assert int(client.hget(keys.totals, "reclaimed")) == 6
    finally:
        worker.close()


def test_a_deadline_leaves_what_was_not_handled_pending(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    memory = MemoryTransport()
    worker = _worker(redis_server.url, tmp_path, memory)
    try:
        _forward(client, keys, [_payload(n) for n in range(5)])
        worker.deadline = time.monotonic() - 1  # SIGTERM came and the deadline passed
        assert worker.step() == 0
        assert memory.events == []
        assert client.xpending(keys.stream, GROUP)["pending"] == 5  # for another worker
    finally:
        worker.close()
    # a worker that leaves with entries pending stays in the group until they are claimed
    consumers = {c["name"] for c in client.xinfo_consumers(keys.stream, GROUP)}
    assert worker.runtime_id in consumers


def test_at_a_deadline_suppressed_entries_are_still_acked(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    memory = MemoryTransport()
    worker = _worker(redis_server.url, tmp_path, memory, dedup_window_seconds=60)
    try:
        _forward(client, keys, [_payload(1)])
        worker.step()  # opens fp1's window
        _forward(client, keys, [{**_payload(n), "fingerprint": "fp1"} for n in range(2, 5)])
        _forward(client, keys, [_payload(9)])
        worker.deadline = time.monotonic() - 1
        assert worker.step() == 3  # the three repeats: their outcome needs no delivery
        assert client.xpending(keys.stream, GROUP)["pending"] == 1  # event 9 waits
        assert worker.counters()["deduplicated"] == 3
    finally:
        worker.close()


def test_a_clean_exit_leaves_the_group(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    worker = _worker(redis_server.url, tmp_path, MemoryTransport())
    _forward(client, keys, [_payload(1)])
    worker.step()
    worker.close()
    assert client.xinfo_consumers(keys.stream, GROUP) == []


def test_the_group_is_recreated_when_redis_lost_it(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    memory = MemoryTransport()
    worker = _worker(redis_server.url, tmp_path, memory)
    try:
        client.flushall()  # what a restarted Redis without persistence looks like
        assert worker.step() == 0
        _forward(client, keys, [_payload(1)])
        assert worker.step() == 1
        assert len(memory.events) == 1
    finally:
        worker.close()


def test_redis_failures_back_off_without_raising(
    own_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    worker = _worker(own_redis.url, tmp_path, MemoryTransport())
    try:
        own_redis.stop()
        worker.tick()
        assert worker.redis_failures.value == 1
        assert worker.last_error
        worker.tick()  # still backing off: no new attempt
        assert worker.redis_failures.value == 1
        own_redis.start()
        assert isinstance(worker.clock, ManualClock)
        worker.clock.advance(60)
        worker.tick()
        assert worker.last_error is None
    finally:
        worker.close()


def test_long_gone_consumers_that_hold_nothing_are_forgotten(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    _forward(client, keys, [_payload(1), _payload(2)])
    client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
    client.xgroup_createconsumer(keys.stream, GROUP, "gone-idle")
    client.xreadgroup(GROUP, "gone-holding", {keys.stream: ">"}, count=1)
    worker = _worker(redis_server.url, tmp_path, MemoryTransport())
    try:
        worker.reclaim_ms = 0  # "ten reclaim periods" is then the one-hour floor
        original = client.xinfo_consumers

        def aged(stream: str, group: str) -> list[dict[str, Any]]:
            return [{**c, "idle": 4_000_000} for c in original(stream, group)]

        worker.client.xinfo_consumers = aged  # as if an hour had passed
        worker._prune_consumers(worker.clock.monotonic())
        names = {c["name"] for c in original(keys.stream, GROUP)}
        assert "gone-idle" not in names
        assert "gone-holding" in names  # still holds an entry: reclaimed first
    finally:
        worker.close()


def test_a_slow_batch_keeps_what_it_still_holds_from_being_reclaimed(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    clock = ManualClock()

    class Slow(MemoryTransport):
        def send(self, payload: Payload, timeout: float) -> SendResult:
            clock.advance(30.0)  # each send takes 30 s of the worker's clock
            return super().send(payload, timeout)

    worker = FleetWorker(
        _config(redis_server.url, tmp_path, bus_reclaim_seconds=60.0),
        transport=Slow(),
        clock=clock,
        block_ms=10,
    )
    worker.ensure_group()
    touched: list[list[str]] = []
    real = worker.client.xclaim

    def spy(*args: Any, **kwargs: Any) -> Any:
        touched.append(list(args[4]))
        return real(*args, **kwargs)

    worker.client.xclaim = spy
    try:
        _forward(client, keys, [_payload(n) for n in range(4)])
        assert worker.step() == 4
        # every 20 s (a third of the reclaim time) the entries not yet handled are touched
        assert [len(ids) for ids in touched] == [3, 2, 1]
    finally:
        worker.close()


def test_a_redelivered_event_is_stored_once_in_the_local_sink(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    import sqlite3

    from errwire._local import LocalTransport

    sink = str(tmp_path / "events.sqlite3")
    _forward(client, keys, [_payload(1), _payload(2)])
    client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
    # a first worker delivered both, then died before acknowledging them
    first = LocalTransport(sink)
    for _, fields in client.xreadgroup(GROUP, "died", {keys.stream: ">"})[0][1]:
        assert first.send(json.loads(fields["p"]), 5.0).ok
    first.close()
    worker = _worker(redis_server.url, tmp_path, LocalTransport(sink), bus_reclaim_seconds=0.0001)
    try:
        assert worker.step() == 2  # reclaimed and delivered again
        assert worker.counters()["delivered"] == 2
    finally:
        worker.close()
    db = sqlite3.connect(sink)
    try:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone() == (2,)
    finally:
        db.close()


def test_a_row_another_worker_spooled_and_the_destination_rejects_leaves_the_fleet_totals(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    """Two workers on one host share the outbox: a row the first spooled and the second
    replays into a rejection moves from ``spooled`` to ``rejected`` fleet-wide."""
    first = _worker(redis_server.url, tmp_path, Flaky(Outcome.RETRYABLE))
    try:
        _forward(client, keys, [_payload(0)])
        while first.step():
            pass
        first.maintain(force=True)
    finally:
        first.close()
    assert int(client.hgetall(keys.totals)["spooled"]) == 1

    second = _worker(redis_server.url, tmp_path, Flaky(Outcome.REJECTED))
    try:
        second.tick()  # an idle turn replays the outbox
        assert second.delivery.stats.foreign_rejected.value == 1
        second.maintain(force=True)
        totals = client.hgetall(keys.totals)
        assert (int(totals["spooled"]), int(totals.get("rejected", 0))) == (0, 1)
    finally:
        second.close()
