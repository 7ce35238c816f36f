"""Fleet-wide safeguards: two workers (two FleetSafeguards) share one dedup window
and one token bucket per component; time comes from an injected clock."""

from __future__ import annotations

import random
from typing import Any

from errwire import Config
from errwire._clock import ManualClock
from errwire._redis import Keys
from errwire._redis._safeguards import FleetSafeguards
from errwire._redis._scripts import Scripts


def _pair(client: Any, keys: Keys, clock: ManualClock, **options: Any) -> list[FleetSafeguards]:
    config = Config(**options)
    return [FleetSafeguards(Scripts(client, keys), config, clock=clock) for _ in range(2)]


def _payload(n: int, fingerprint: str = "fp", component: str = "db") -> dict[str, Any]:
    return {"event_id": f"e{n}", "fingerprint": fingerprint, "component": component, "repeats": 0}


def test_a_fingerprint_seen_by_one_worker_is_a_repeat_for_the_other(
    client: Any, keys: Keys
) -> None:
    clock = ManualClock()
    a, b = _pair(client, keys, clock, dedup_window_seconds=60)
    assert a.check(_payload(1)) is None
    assert b.check(_payload(2)) == "deduplicated"
    assert a.check(_payload(3)) == "deduplicated"
    assert b.check(_payload(4, fingerprint="other")) is None
    clock.advance(61)
    first_after = _payload(5)
    assert b.check(first_after) is None
    assert first_after["suppressed"] == 2  # the repeats the window folded, reported once
    assert a.deduplicated.value + b.deduplicated.value == 2


def test_one_bucket_per_component_for_the_whole_fleet(client: Any, keys: Keys) -> None:
    clock = ManualClock()
    a, b = _pair(
        client, keys, clock, dedup_window_seconds=0, rate_limit_per_minute=60, rate_limit_burst=5
    )
    outcomes = [(a if n % 2 else b).check(_payload(n)) for n in range(12)]
    assert outcomes.count(None) == 5  # the burst, shared: not 5 per worker
    assert outcomes.count("rate_limited") == 7
    assert a.check(_payload(99, component="cache")) is None  # its own bucket
    clock.advance(2)  # one a second
    assert [b.check(_payload(n)) for n in range(100, 103)] == [None, None, "rate_limited"]
    snapshot = a.components_snapshot()
    assert snapshot["db"]["rate_limited"] + b.components_snapshot()["db"]["rate_limited"] == 8


def test_sampling_keeps_the_configured_share(client: Any, keys: Keys) -> None:
    config = Config(dedup_window_seconds=0, sample_rate=0.25, rate_limit_per_minute=100_000)
    guard = FleetSafeguards(
        Scripts(client, keys), config, clock=ManualClock(), rng=random.Random(7)
    )
    outcomes = [guard.check(_payload(n)) for n in range(400)]
    kept = outcomes.count(None)
    assert outcomes.count("sampled_out") == 400 - kept
    assert 60 <= kept <= 140  # 100 expected; a fixed seed keeps it deterministic


def test_without_a_clock_the_servers_clock_is_used(client: Any, keys: Keys) -> None:
    guard = FleetSafeguards(Scripts(client, keys), Config(dedup_window_seconds=30))
    assert guard.check(_payload(1)) is None
    assert guard.check(_payload(2)) == "deduplicated"
    assert client.pttl(keys.dedup("fp")) > 0
