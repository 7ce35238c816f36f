"""Each safeguard stage on its own, with a manual clock."""

from __future__ import annotations

import random

import pytest

from errwire._breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from errwire._clock import ManualClock
from errwire._dedup import Deduplicator
from errwire._fingerprint import fingerprint, normalise_message
from errwire._ratelimit import RateLimiter
from errwire._storm import StormGuard
from errwire._worker import Sampler


def test_dedup_fixed_window_reports_suppressed_count_after_it() -> None:
    clock = ManualClock()
    dedup = Deduplicator(300, 100, clock)
    assert dedup.check("fp") == 0
    assert [dedup.check("fp") for _ in range(5)] == [-1] * 5
    assert dedup.check("fp", carried=10) == -1
    assert dedup.pending() == 16
    clock.advance(299.9)
    assert dedup.check("fp") == -1
    clock.advance(0.2)
    assert dedup.check("fp") == 17  # 6 suppressed + 10 carried folds + 1 more
    assert dedup.check("fp") == -1  # a new window opened
    assert dedup.suppressed.value == 8


def test_dedup_lru_eviction_is_bounded_and_counted() -> None:
    clock = ManualClock()
    dedup = Deduplicator(300, 3, clock)
    for fp in ("a", "b", "c"):
        dedup.check(fp)
    dedup.check("a")  # suppressed; also makes "a" recently used
    dedup.check("b")
    dedup.check("d")  # evicts the least recently used: "c"
    assert len(dedup) == 3
    assert (
        dedup.check("c") == 0
    )  # forgotten, so it passes again (evicting "a", which had 1 pending)
    assert dedup.unreported.value == 1


def test_dedup_window_zero_disables() -> None:
    dedup = Deduplicator(0, 10, ManualClock())
    assert [dedup.check("x") for _ in range(3)] == [0, 0, 0]


def test_fingerprint_normalises_variable_parts() -> None:
    a = normalise_message(
        "user 42 not found in 'eu-west' at 0xdeadbeef id 123e4567-e89b-12d3-a456-426614174000"
    )
    b = normalise_message(
        "user 7 not found in 'us-east' at 0xcafe id 00000000-0000-0000-0000-000000000001"
    )
    assert a == b
    assert fingerprint("c", "k", "T", "user 1", "m:f") == fingerprint(
        "c", "k", "T", "user 2", "m:f"
    )
    assert fingerprint("c", "k", "T", "user 1", "m:f") != fingerprint(
        "c", "k", "T", "user 1", "m:g"
    )
    assert fingerprint("c", "k", "T", "x", "") != fingerprint("d", "k", "T", "x", "")


def test_rate_limit_refills_and_is_fair_between_components() -> None:
    clock = ManualClock()
    limiter = RateLimiter(per_minute=60, burst=10, clock=clock)
    noisy = [limiter.allow("noisy") for _ in range(100)]
    assert sum(noisy) == 10  # the burst, then nothing
    assert sum(limiter.allow("quiet") for _ in range(5)) == 5  # untouched by the noisy one
    clock.advance(1.0)  # 1 token per second
    assert limiter.allow("noisy")
    assert not limiter.allow("noisy")
    clock.advance(3600)
    assert sum(limiter.allow("noisy") for _ in range(100)) == 10  # never more than the burst
    assert set(limiter.state()) == {"noisy", "quiet"}


def test_sampling_is_random_per_event() -> None:
    sampler = Sampler(0.25, random.Random(7))
    kept = sum(sampler.keep() for _ in range(10_000))
    assert 2300 < kept < 2700
    assert all(Sampler(1.0).keep() for _ in range(100))
    assert not any(Sampler(0.0, random.Random(1)).keep() for _ in range(100))


def test_breaker_every_transition() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(threshold=3, recovery=60, clock=clock)
    assert breaker.state == CLOSED and breaker.allow()
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # a success resets the consecutive count
    assert breaker.consecutive_failures == 0
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == OPEN
    assert not breaker.allow()  # fails fast while open
    assert breaker.seconds_until_half_open() == pytest.approx(60)
    clock.advance(59)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()  # the single probe
    assert breaker.state == HALF_OPEN
    assert not breaker.allow()  # exactly one probe in flight
    breaker.record_failure()  # probe failed: open again, for a full recovery time
    assert breaker.state == OPEN
    assert not breaker.allow()
    clock.advance(60)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED
    assert breaker.allow() and breaker.allow()
    assert breaker.transitions.values() == {
        "closed->open": 1,
        "open->half_open": 2,
        "half_open->open": 1,
        "half_open->closed": 1,
    }
    assert breaker.snapshot()["state"] == CLOSED
    assert breaker.seconds_until_half_open() is None


def test_storm_guard_window_and_forgetting() -> None:
    clock = ManualClock()
    guard = StormGuard(1.0, clock.monotonic)
    assert guard.admit("site") == 0
    assert guard.admit("site") == -1
    assert guard.admit("other") == 0
    assert guard.pending() == 1
    clock.advance(1.0)
    assert guard.admit("site") == 1
    assert guard.folded.value == 1
    guard = StormGuard(1.0, clock.monotonic)
    for i in range(2048):
        guard.admit(i)
    assert guard.admit(0) == -1
    guard.admit(5000)  # the table is full: it is forgotten, pending folds become orphans
    assert guard.orphaned.value == 1
