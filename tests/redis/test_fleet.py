"""Fleet heartbeats and totals in Redis, and the report ``status --redis`` prints."""

from __future__ import annotations

import json
from typing import Any

from errwire._clock import ManualClock
from errwire._redis import FleetHeartbeat, Keys, connect, fleet_report, render_fleet
from errwire._redis._fleet import flatten, totals_from_hash
from errwire._redis._scripts import Scripts
from tests.support.redis_server import RedisServer


def _beat(url: str, keys: Keys, rid: str, role: str, clock: ManualClock, totals: Any) -> Any:
    return FleetHeartbeat(lambda: connect(url), keys, rid, role=role, clock=clock, totals=totals)


def test_heartbeats_add_their_counters_to_the_totals_as_deltas(
    redis_server: RedisServer, client: Any, keys: Keys
) -> None:
    clock = ManualClock()
    counters = {"captured": 5, "dropped:queue_full": 1, "spooled": 2}
    beat = _beat(redis_server.url, keys, "web-1", "web", clock, lambda: dict(counters))
    assert beat.write({"counters": {"captured": 5}})
    counters.update(captured=9, spooled=0)
    assert beat.write({"counters": {"captured": 9}})
    totals = client.hgetall(keys.totals)
    assert totals == {"captured": "9", "dropped:queue_full": "1", "spooled": "0"}
    assert 0 < client.pttl(keys.heartbeat("web-1")) <= 120_000
    record = json.loads(client.get(keys.heartbeat("web-1")))
    assert record["role"] == "web" and record["snapshot"]["counters"]["captured"] == 9
    beat.close()


def test_a_heartbeat_that_cannot_be_written_keeps_its_deltas_for_later(
    own_redis: RedisServer, keys: Keys
) -> None:
    clock = ManualClock()
    counters = {"captured": 3}
    beat = _beat(own_redis.url, keys, "web-1", "web", clock, lambda: dict(counters))
    own_redis.stop()
    assert not beat.write({})
    own_redis.start()
    counters["captured"] = 4
    assert beat.write({})
    client = own_redis.client()
    assert client.hget(keys.totals, "captured") == "4"
    client.close()
    beat.close()


def test_the_report_lists_the_fleet_and_checks_the_identity(
    redis_server: RedisServer, client: Any, keys: Keys
) -> None:
    clock = ManualClock()
    web = _beat(redis_server.url, keys, "web-1", "web", clock, lambda: {"captured": 3})
    worker = _beat(redis_server.url, keys, "worker-1", "worker", clock, lambda: {})
    gone = _beat(redis_server.url, keys, "web-0", "web", clock, lambda: {})
    Scripts(client, keys).append(["{}", "{}", "{}"], 1000)  # forwarded=3, nothing acked yet
    web.write({"counters": {"captured": 3, "forwarded": 3}, "queue": {"depth": 0}})
    worker.write({"counters": {"delivered": 0}, "rate_per_second": 12.5, "holding": 0})
    gone.write({}, final=True)
    now = clock.time()

    report = fleet_report(client, url="redis://x", keys=keys, now=now)
    assert [m.runtime_id for m in report.members] == ["worker-1", "web-1"]  # final: hidden
    assert report.stream["length"] == 3
    assert report.identity == {"captured": 3, "accounted_for": 0, "in_stream": 3, "holds": True}
    assert report.healthy
    text = render_fleet(report)
    assert "worker-1" in text and "12.5" in text and "health: OK" in text

    later = fleet_report(client, url="redis://x", keys=keys, now=now + 60)
    assert all(m.stale for m in later.members)
    assert not later.healthy
    assert "no live worker" in " ".join(later.problems)
    assert "UNHEALTHY" in render_fleet(later)

    client.delete(keys.heartbeat("web-1"))  # its TTL ran out
    fleet_report(client, url="redis://x", keys=keys, now=now, include_final=True)
    assert "web-1" not in client.zrange(keys.runtimes, 0, -1)
    for b in (web, worker, gone):
        b.close()


def test_totals_from_the_hash() -> None:
    raw = {
        "captured": "10",
        "delivered": "6",
        "forwarded": "9",
        "trimmed": "3",
        "trim_recovered": "1",
        "dropped:queue_full": "1",
        "deduplicated": "1",
    }
    totals = totals_from_hash(raw)
    assert totals["dropped"] == {"queue_full": 1, "stream_trimmed": 2}
    assert totals["stream"]["forwarded"] == 9
    assert totals["captured"] == 10 and totals["spooled"] == 0


def test_flatten() -> None:
    flat = flatten({"captured": 2, "enabled": True, "dropped": {"a": 1}, "x": "y"})
    assert flat == {"captured": 2, "dropped:a": 1}
