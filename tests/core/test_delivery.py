"""Delivery outcomes, the breaker in the pipeline, the outbox and its replay."""

from __future__ import annotations

import threading
from typing import Any

import errwire
from errwire import _api
from errwire._breaker import CLOSED, OPEN
from errwire._transport import Outcome, Payload, SendResult

from .conftest import MakeRuntime, ScriptedTransport, accounted, outbox_of


def _capture_unique(n: int, prefix: str = "e") -> None:
    for i in range(n):
        errwire.capture_message(f"{prefix}-{i}", level="error", component=f"c{i % 3}")


def test_breaker_opens_spools_and_outbox_drains_in_order_after_recovery(
    make_runtime: MakeRuntime, clock: Any
) -> None:
    transport = ScriptedTransport()
    runtime = make_runtime(
        transport, breaker_failure_threshold=3, breaker_recovery_seconds=60, dedup_window_seconds=0
    )
    _api.install(runtime)
    transport.fail_next(1000)  # the destination is down
    _capture_unique(20)
    runtime.worker_lane.process_pending()
    assert transport.attempts == 3  # then the breaker failed fast
    assert runtime.breaker.state == OPEN
    assert runtime.counters()["spooled"] == 20
    assert outbox_of(runtime).pending() == 20
    transport.script.clear()  # the destination recovers ...
    runtime.worker_lane.run_idle()
    assert transport.received == []  # ... but the breaker is still open
    clock.advance(60)
    runtime.worker_lane.run_idle()  # half-open probe succeeds, then the outbox drains
    assert runtime.breaker.state == CLOSED
    assert [p["message"] for p in transport.received] == [f"e-{i}" for i in range(20)]
    assert outbox_of(runtime).pending() == 0
    c = runtime.counters()
    assert (c["delivered"], c["spooled"], c["failed"]) == (20, 0, 3)
    assert c["captured"] == accounted(runtime) == 20


def test_rate_limited_pauses_then_resumes(make_runtime: MakeRuntime, clock: Any) -> None:
    transport = ScriptedTransport()
    runtime = make_runtime(transport, dedup_window_seconds=0)
    _api.install(runtime)
    transport.fail_next(1, Outcome.RATE_LIMITED, retry_after=2.0)
    _capture_unique(5)
    runtime.worker_lane.process_pending()
    assert transport.attempts == 1  # nothing was sent during the pause
    assert runtime.counters()["spooled"] == 5
    assert runtime.delivery.snapshot()["paused_seconds"] == 2.0
    clock.advance(1.9)
    runtime.worker_lane.run_idle()
    assert transport.attempts == 1
    clock.advance(0.2)
    runtime.worker_lane.run_idle()
    assert [p["message"] for p in transport.received] == [f"e-{i}" for i in range(5)]
    assert runtime.breaker.state == CLOSED  # a 429 is an answer, not a failure
    assert runtime.counters()["captured"] == accounted(runtime)


def test_rejected_is_counted_and_never_retried(make_runtime: MakeRuntime) -> None:
    transport = ScriptedTransport()
    runtime = make_runtime(transport, dedup_window_seconds=0)
    _api.install(runtime)
    transport.fail_next(2, Outcome.REJECTED)
    _capture_unique(3)
    runtime.worker_lane.process_pending()
    runtime.worker_lane.run_idle()
    c = runtime.counters()
    assert (c["rejected"], c["delivered"], c["spooled"]) == (2, 1, 0)
    assert transport.attempts == 3
    assert runtime.delivery.snapshot()["last_error"] == "scripted"


class RaisingTransport(ScriptedTransport):
    def send(self, payload: Payload, timeout: float) -> SendResult:
        raise OSError("socket exploded")


class WrongAnswerTransport(ScriptedTransport):
    def send(self, payload: Payload, timeout: float) -> SendResult:
        return "ok"  # type: ignore[return-value]


def test_a_transport_that_raises_or_answers_nonsense_is_a_retryable_failure(
    make_runtime: MakeRuntime,
) -> None:
    for transport in (RaisingTransport(), WrongAnswerTransport()):
        runtime = make_runtime(transport)
        _api.install(runtime)
        _capture_unique(1)
        runtime.worker_lane.process_pending()
        assert runtime.counters()["spooled"] == 1
        assert runtime.counters()["failed"] == 1
        assert "transport" in (runtime.delivery.last_error or "")


class NeverReturns:
    """A transport that ignores its timeout and hangs until released."""

    name = "never"
    enforces_timeout = False

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def send(self, payload: Payload, timeout: float) -> SendResult:
        self.calls += 1
        self.release.wait(30)
        return SendResult(Outcome.OK)

    def close(self) -> None:
        self.release.set()


def test_send_timeout_is_enforced_for_transports_that_ignore_it(make_runtime: MakeRuntime) -> None:
    transport = NeverReturns()
    runtime = make_runtime(transport, send_timeout_seconds=0.2, dedup_window_seconds=0)
    _api.install(runtime)
    try:
        _capture_unique(4)
        done = threading.Thread(target=runtime.worker_lane.process_pending)
        done.start()
        done.join(10)  # four 0.2 s timeouts at most; a hang would take 30 s per event
        assert not done.is_alive()
        c = runtime.counters()
        assert c["spooled"] == 4
        assert transport.calls == 2  # two stuck senders, then fail fast without new threads
        assert runtime.delivery.snapshot()["stuck_senders"] == 2
        assert "timed out" in (runtime.delivery.last_error or "") or "stuck" in (
            runtime.delivery.last_error or ""
        )
    finally:
        transport.release.set()


def _left_by_another_process(make_runtime: MakeRuntime, n: int) -> None:
    """``n`` events spooled by a runtime that then shut down (another process, as far
    as the next runtime on the same data directory can tell)."""
    down = ScriptedTransport()
    first = make_runtime(down, dedup_window_seconds=0)
    _api.install(first)
    down.fail_next(100)
    _capture_unique(n, "old")
    first.worker_lane.process_pending()
    assert first.counters()["spooled"] == n
    first.shutdown(1.0)


def test_outbox_left_by_another_process_is_replayed_and_counted_apart(
    make_runtime: MakeRuntime,
) -> None:
    _left_by_another_process(make_runtime, 3)
    up = ScriptedTransport()
    second = make_runtime(up)
    _api.install(second)
    second.worker_lane.run_idle()  # a fresh runtime replays on start
    assert [p["message"] for p in up.received] == ["old-0", "old-1", "old-2"]
    assert second.status()["outbox"]["replayed_foreign"] == 3
    assert second.counters()["delivered"] == 0  # not this runtime's captures


def test_a_row_left_by_another_process_that_the_destination_rejects_is_counted(
    make_runtime: MakeRuntime,
) -> None:
    _left_by_another_process(make_runtime, 2)
    picky = ScriptedTransport()
    picky.fail_next(1, Outcome.REJECTED)
    second = make_runtime(picky)
    _api.install(second)
    second.worker_lane.run_idle()
    outbox = second.status()["outbox"]
    assert (outbox["rejected_foreign"], outbox["replayed_foreign"], outbox["pending"]) == (1, 1, 0)
    assert second.counters()["rejected"] == 0  # not this runtime's captures


def test_outbox_bound_evicts_oldest_as_counted_drops(make_runtime: MakeRuntime) -> None:
    transport = ScriptedTransport()
    runtime = make_runtime(
        transport, outbox_max_events=5, dedup_window_seconds=0, breaker_failure_threshold=1
    )
    _api.install(runtime)
    transport.fail_next(1)
    _capture_unique(8)
    runtime.worker_lane.process_pending()
    c = runtime.counters()
    assert c["spooled"] == 5
    assert c["dropped"] == {"outbox_full": 3}
    assert c["captured"] == accounted(runtime) == 8


class AnnouncesLimit(ScriptedTransport):
    """Accepts the event but announces a limit for what comes next (2xx + rate-limit headers)."""

    def send(self, payload: Payload, timeout: float) -> SendResult:
        self.attempts += 1
        self.received.append(payload)
        return SendResult(Outcome.OK, retry_after=30.0)


def test_a_limit_announced_on_success_pauses_delivery(
    make_runtime: MakeRuntime, clock: Any
) -> None:
    transport = AnnouncesLimit()
    runtime = make_runtime(transport, dedup_window_seconds=0)
    _api.install(runtime)
    _capture_unique(3)
    runtime.worker_lane.process_pending()
    c = runtime.counters()
    assert (c["delivered"], c["spooled"], transport.attempts) == (1, 2, 1)
    clock.advance(31)
    runtime.worker_lane.run_idle()
    assert runtime.counters()["delivered"] == 2  # the replay was paused again by the next answer
    assert c["captured"] == accounted(runtime)
