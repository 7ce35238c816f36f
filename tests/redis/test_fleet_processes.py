"""The fleet for real: web processes and worker processes (subprocesses), one
Redis, the fault-injection receiver behind the Sentry transport.

Every wait is bounded; every process is killed by PID at the end, whatever
happened."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from errwire._redis import GROUP, Keys, fleet_report
from tests.redis._processes import Fleet
from tests.support.fault_receiver import FaultReceiver
from tests.support.polling import until
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow

_MARKER = re.compile(r"marker-([a-z0-9]+)-(\d+)-([a-z]+)")


@pytest.fixture
def receiver() -> Iterator[FaultReceiver]:
    with FaultReceiver() as r:
        yield r


def _fleet(tmp_path: Path, url: str) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path, url)
    try:
        yield fleet
    finally:
        fleet.close()


@pytest.fixture
def fleet(tmp_path: Path, redis_server: RedisServer) -> Iterator[Fleet]:
    yield from _fleet(tmp_path, redis_server.url)


class Markers:
    """Marker -> the event ids it arrived with, read incrementally (the receiver
    calls wait predicates under its lock on every request: they must be cheap)."""

    def __init__(self) -> None:
        self.ids: dict[str, set[str]] = defaultdict(set)
        self._seen = 0

    def __call__(self, receiver: FaultReceiver) -> dict[str, set[str]]:
        fresh = receiver.accepted[self._seen :]
        self._seen += len(fresh)
        for record in fresh:
            event = record.event
            match = _MARKER.search(str(event)) if event else None
            if match and record.event_id:
                self.ids[match.group(0)].add(record.event_id)
        return self.ids


def _markers(receiver: FaultReceiver) -> dict[str, set[str]]:
    return Markers()(receiver)


def _arrived(expected: set[str]) -> Any:
    markers = Markers()
    return lambda r: set(markers(r)) >= expected


def _expected(names: list[str], n: int, component: str) -> set[str]:
    return {f"marker-{name}-{i}-{component}" for name in names for i in range(n)}


def _report(client: Any, url: str) -> Any:
    return fleet_report(client, url=url, include_final=True)


def test_kill_9_a_worker_mid_stream_loses_nothing(
    fleet: Fleet, receiver: FaultReceiver, redis_server: RedisServer, client: Any, keys: Keys
) -> None:
    receiver.slow(0.002)  # deliveries take time, so the victim is caught holding a batch
    workers = [fleet.worker(n, receiver.dsn) for n in ("a", "b")]
    webs = [fleet.web(n) for n in ("wa", "wb", "wc")]
    for w in workers:
        w.ready()
    for web in webs:  # three processes capture at once
        assert web.process.stdin is not None
        web.process.stdin.write("capture 200 orders\n")
        web.process.stdin.flush()
    victim = workers[0]

    def victim_holds(_: FaultReceiver) -> bool:
        if len(receiver.accepted) < 100:
            return False
        return bool(client.xpending_range(keys.stream, GROUP, "-", "+", 1, victim.runtime_id))

    # Freeze the victim, then look: it cannot ack between the look and the kill.
    held: list[Any] = []
    for _ in range(20):
        assert receiver.wait_until(victim_holds, timeout=60)
        os.kill(victim.process.pid, signal.SIGSTOP)
        held = client.xpending_range(keys.stream, GROUP, "-", "+", 1000, victim.runtime_id)
        if held:
            break
        os.kill(victim.process.pid, signal.SIGCONT)  # it acked in between: try again
    victim.kill()  # SIGKILL: no chance to ack what it holds
    assert held  # it died holding entries

    expected = _expected(["wa", "wb", "wc"], 200, "orders")
    assert receiver.wait_until(_arrived(expected), timeout=60), (
        f"{len(expected - set(_markers(receiver)))} events missing"
    )
    markers = _markers(receiver)
    assert set(markers) == expected  # zero lost, nothing unexpected
    # redelivered events came with their original id: the receiver stores them once
    assert all(len(ids) == 1 for ids in markers.values())

    for web in webs:
        final = web.ask("exit")
        c = final["counters"]
        assert c["captured"] == c["forwarded"] == 200
    assert workers[1].terminate() == 0  # SIGTERM: finishes, acks, exits within its deadline
    assert "errwire worker stopped" in workers[1].text

    report = _report(client, redis_server.url)
    totals = report.totals
    assert totals["captured"] == 600
    assert totals["delivered"] == 600  # acked once each, however often delivered
    assert totals["stream"]["reclaimed"] >= len(held)  # the survivor took them over
    assert report.identity["holds"], report.identity
    assert report.stream["length"] == 0 and report.stream["pending"] == 0


def test_redis_restarted_mid_stream_web_processes_spool_and_forward_later(
    tmp_path: Path, own_redis: RedisServer, receiver: FaultReceiver
) -> None:
    for fleet in _fleet(tmp_path, own_redis.url):
        worker = fleet.worker("a", receiver.dsn).ready()
        names = ["wa", "wb"]
        webs = [fleet.web(n) for n in names]
        for web in webs:
            assert web.ask("capture 40 before")["flushed"]
        assert receiver.wait_until(_arrived(_expected(names, 40, "before")), timeout=30)

        own_redis.stop()  # Redis goes away (no persistence: it comes back empty)
        for web in webs:
            assert web.ask("capture 40 during")["flushed"]  # capture is not affected
            during = web.ask("status")
            assert during["counters"]["spooled"] == 40
            assert during["bus"]["last_error"]

        own_redis.start()  # same port
        for web in webs:
            drained = web.ask("drain 30")
            assert drained["counters"]["spooled"] == 0, drained
            assert web.ask("capture 40 after")["flushed"]

        expected = set().union(
            *(_expected(names, 40, phase) for phase in ("before", "during", "after"))
        )
        assert receiver.wait_until(_arrived(expected), timeout=60), sorted(
            expected - set(_markers(receiver))
        )[:5]
        assert set(_markers(receiver)) == expected
        for web in webs:
            final = web.ask("exit")["counters"]
            assert final["captured"] == final["forwarded"] == 120
        assert worker.terminate() == 0


def test_rate_limit_and_dedup_hold_across_two_workers(
    fleet: Fleet, receiver: FaultReceiver, redis_server: RedisServer, client: Any
) -> None:
    limits = {"rate_limit_per_minute": 1, "rate_limit_burst": 20, "dedup_window_seconds": 300}
    workers = [fleet.worker(n, receiver.dsn, **limits) for n in ("a", "b")]
    webs = [fleet.web(n) for n in ("wa", "wb")]
    for w in workers:
        w.ready()
    for web in webs:
        assert web.ask("capture 100 noisy")["flushed"]
        assert web.ask("same 5")["flushed"]  # one fingerprint, captured in both processes

    def settled() -> bool:
        t = _report(client, redis_server.url).totals
        return bool(t["delivered"] + t["rate_limited"] + t["deduplicated"] >= 210)

    assert until(settled, timeout=60)
    for web in webs:
        web.ask("exit")
    for w in workers:
        assert w.terminate() == 0

    report = _report(client, redis_server.url)
    totals = report.totals
    noisy = [m for m in _markers(receiver) if m.endswith("-noisy")]
    # one bucket for the fleet: the burst, plus at most one token refilled (1 a minute)
    assert 20 <= len(noisy) <= 21
    assert totals["rate_limited"] == 200 - len(noisy)
    same = [e for e in receiver.events() if "the same error in every process" in str(e)]
    assert len(same) == 1
    assert totals["deduplicated"] == 9
    assert totals["delivered"] == len(noisy) + 1
    assert report.identity["holds"], report.identity


def test_sigterm_finishes_within_the_deadline_and_leaves_the_rest_to_others(
    fleet: Fleet, receiver: FaultReceiver, redis_server: RedisServer, client: Any, keys: Keys
) -> None:
    receiver.slow(0.3)  # a slow destination: the worker holds a batch for a while
    first = fleet.worker("a", receiver.dsn, deadline=1.0, send_timeout_seconds=2).ready()
    web = fleet.web("wa")
    assert web.ask("capture 30 slow")["flushed"]
    assert receiver.wait_for_requests(2, timeout=30)
    started = time.monotonic()
    assert first.terminate(timeout=30) == 0
    # the deadline is 1 s; a send in flight may take up to its own timeout (2 s) on top
    assert time.monotonic() - started < 15.0
    assert "SIGTERM received" in first.text and "errwire worker stopped" in first.text
    held = client.xpending(keys.stream, GROUP)["pending"]
    unread = len(client.xrange(keys.stream)) - held
    assert held + unread > 0  # it did not deliver everything: the rest waits in Redis

    receiver.ok()
    fleet.worker("b", receiver.dsn).ready()  # reclaims what the first one held
    expected = _expected(["wa"], 30, "slow")
    assert receiver.wait_until(_arrived(expected), timeout=60)
    assert until(lambda: client.xpending(keys.stream, GROUP)["pending"] == 0, timeout=60)
    web.ask("exit")
