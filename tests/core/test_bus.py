"""The bus: bounded, never blocking, drop policies, reserved room for errors, isolated consumers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from errwire._bus import EventBus
from errwire._event import Event

_buses: list[EventBus] = []
_real_init = EventBus.__init__


@pytest.fixture(autouse=True)
def _stop_every_lane(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Lanes started by a test are stopped by it, so no thread outlives its test."""

    def tracking_init(self: EventBus, *args: Any, **kwargs: Any) -> None:
        _real_init(self, *args, **kwargs)
        _buses.append(self)

    monkeypatch.setattr(EventBus, "__init__", tracking_init)
    yield
    while _buses:
        bus = _buses.pop()
        for lane in bus.lanes:
            assert lane.stop(time.monotonic() + 5)


def raw(level: str = "error", message: str = "m") -> tuple[Any, ...]:
    return ("message", level, None, message, (), (), None, None, None, None, None, 0.0, 0)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.idles = 0

    def consume(self, event: Event) -> None:
        self.seen.append(event.message)

    def idle(self) -> None:
        self.idles += 1


def test_drop_newest_keeps_the_oldest_and_counts() -> None:
    bus = EventBus(10, error_reserve=0.0, autostart=False)
    rec = Recorder()
    lane = bus.subscribe("w", rec)
    results = [bus.publish(raw(message=str(i))) for i in range(15)]
    assert results == [True] * 10 + [False] * 5
    lane.process_pending()
    assert rec.seen == [str(i) for i in range(10)]
    assert lane.dropped.values() == {"queue_full": 5}
    assert lane.high_water == 10


def test_drop_oldest_keeps_the_newest_and_counts() -> None:
    bus = EventBus(10, error_reserve=0.0, drop_policy="drop_oldest", autostart=False)
    rec = Recorder()
    lane = bus.subscribe("w", rec)
    for i in range(15):
        assert bus.publish(raw(message=str(i)))
    lane.process_pending()
    assert rec.seen == [str(i) for i in range(5, 15)]
    assert lane.dropped.values() == {"evicted_oldest": 5}


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
def test_warnings_cannot_take_the_error_reserve(policy: str) -> None:
    bus = EventBus(100, error_reserve=0.1, drop_policy=policy, autostart=False)
    rec = Recorder()
    lane = bus.subscribe("w", rec)
    warnings = sum(bus.publish(raw("warning", f"w{i}")) for i in range(200))
    assert warnings == 90  # the last 10 slots are for errors
    errors = sum(bus.publish(raw("error", f"e{i}")) for i in range(10))
    assert errors == 10
    lane.process_pending()
    assert sum(m.startswith("e") for m in rec.seen) == 10
    assert lane.dropped.values() == {"reserved_for_errors": 110}


def test_errors_under_drop_oldest_never_evicted_by_warnings() -> None:
    bus = EventBus(10, error_reserve=0.5, drop_policy="drop_oldest", autostart=False)
    rec = Recorder()
    lane = bus.subscribe("w", rec)
    for i in range(10):
        bus.publish(raw("error", f"e{i}"))
    for i in range(10):
        assert not bus.publish(raw("info", f"i{i}"))
    lane.process_pending()
    assert rec.seen == [f"e{i}" for i in range(10)]


def test_publish_is_safe_from_many_threads_and_counts_exactly() -> None:
    bus = EventBus(1000, error_reserve=0.0, autostart=False)
    rec = Recorder()
    lane = bus.subscribe("w", rec)

    def spam() -> None:
        for _ in range(500):
            bus.publish(raw())

    threads = [threading.Thread(target=spam) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lane.process_pending()
    dropped = sum(lane.dropped.values().values())
    assert bus.published == 2000
    assert len(rec.seen) + dropped == 2000
    assert len(rec.seen) >= 1000


class Raising(Recorder):
    def consume(self, event: Event) -> None:
        raise RuntimeError("consumer bug")


def test_a_raising_consumer_does_not_affect_others(allow_internal_errors: list[Any]) -> None:
    bus = EventBus(100, autostart=False)
    good = Recorder()
    bad_lane = bus.subscribe("bad", Raising())
    good_lane = bus.subscribe("good", good)
    for i in range(5):
        bus.publish(raw(message=str(i)))
    bad_lane.process_pending()
    good_lane.process_pending()
    assert good.seen == ["0", "1", "2", "3", "4"]
    assert bad_lane.errors.value == 5
    assert good_lane.errors.value == 0
    assert len(allow_internal_errors) == 5


class Blocking(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def consume(self, event: Event) -> None:
        self.entered.set()
        self.release.wait(10)
        super().consume(event)


def test_a_slow_consumer_does_not_delay_others() -> None:
    bus = EventBus(100, slow_seconds=0.0)  # any measurable time counts as slow here
    slow = Blocking()
    fast = Recorder()
    slow_lane = bus.subscribe("slow", slow)
    bus.subscribe("fast", fast)
    try:
        for i in range(3):
            assert bus.publish(raw(message=str(i)))
        assert bus.lane("fast") is not None
        assert bus.lane("fast").wait_idle(5.0)  # type: ignore[union-attr]
        assert fast.seen == ["0", "1", "2"]  # while the slow one is still stuck on its first
        assert slow.entered.is_set()
        assert slow.seen == []
    finally:
        slow.release.set()
    assert slow_lane.wait_idle(5.0)
    assert slow.seen == ["0", "1", "2"]
    assert slow_lane.slow.value >= 1


def test_unsubscribe_stops_delivery_and_names_are_unique() -> None:
    bus = EventBus(10)
    rec = Recorder()
    bus.subscribe("a", rec)
    with pytest.raises(ValueError, match="already has a consumer named 'a'"):
        bus.subscribe("a", rec)
    assert bus.unsubscribe("a")
    assert not bus.unsubscribe("a")
    assert bus.publish(raw())
    assert rec.seen == []


def test_flush_waits_for_the_worker_and_idle_ticks_run() -> None:
    bus = EventBus(100, tick=0.01)
    rec = Recorder()
    lane = bus.subscribe("w", rec)
    for i in range(50):
        bus.publish(raw(message=str(i)))
    assert bus.flush(5.0)
    assert len(rec.seen) == 50
    assert lane.snapshot()["alive"] is True
    lane.run_idle()
    assert rec.idles >= 1
    assert lane.stop(time.monotonic() + 5)


def test_flush_times_out_on_a_stuck_consumer() -> None:
    bus = EventBus(100)
    stuck = Blocking()
    bus.subscribe("stuck", stuck)
    bus.publish(raw())
    try:
        assert bus.flush(0.2) is False
    finally:
        stuck.release.set()


def test_drain_takes_what_is_queued() -> None:
    bus = EventBus(10, autostart=False)
    lane = bus.subscribe("w", Recorder())
    bus.publish(raw(message="a"))
    bus.publish(raw(message="b"))
    assert [r[3] for r in lane.drain()] == ["a", "b"]
    assert lane.depth == 0
    assert lane.done.value == 2


def test_published_counts_exactly_as_lanes_come_and_go() -> None:
    """One lane is published to directly (a call less per capture); the count of
    publishes stays exact through every change of lanes."""
    bus = EventBus(100, autostart=False)
    assert bus.publish(raw())  # no lane yet
    first = bus.subscribe("a", Recorder())
    assert bus.publish == first.offer  # the direct path
    for _ in range(3):
        bus.publish(raw())
    bus.subscribe("b", Recorder())
    for _ in range(2):
        bus.publish(raw())
    assert bus.unsubscribe("a")
    bus.publish(raw())
    assert bus.published == 1 + 3 + 2 + 1
    assert bus.snapshot()["published"] == 7
    assert first.offered.value == 3 + 2


def test_a_thread_that_cannot_start_is_retried_and_nothing_queued_is_lost(
    monkeypatch: pytest.MonkeyPatch, allow_internal_errors: list[Any]
) -> None:
    bus = EventBus(100, tick=0.01)
    rec = Recorder()
    lane = bus.subscribe("w", rec)
    real_start = threading.Thread.start
    failures = iter([RuntimeError("can't start new thread")])

    def start(thread: threading.Thread) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    assert bus.publish(raw(message="first"))  # queued; its thread failed to start
    assert lane.thread is None
    assert [where for where, _ in allow_internal_errors] == ["lane w: start"]
    assert bus.publish(raw(message="second"))  # starts it
    assert bus.flush(5.0)
    assert rec.seen == ["first", "second"]
