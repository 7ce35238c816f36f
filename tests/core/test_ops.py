"""The operations behind the status, test, replay and worker commands."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest

from errwire._clock import ManualClock
from errwire._config import make_config
from errwire._ops import fleet_status, render_status, replay_outbox, run_worker, send_test_event
from errwire._outbox import Outbox
from errwire._transport import MemoryTransport, Outcome

from .conftest import MakeRuntime, ScriptedTransport


def test_fleet_status_lists_runtimes_and_flags_the_unhealthy(
    make_runtime: MakeRuntime, clock: ManualClock
) -> None:
    healthy = make_runtime(ScriptedTransport())
    broken_transport = ScriptedTransport()
    broken = make_runtime(broken_transport, breaker_failure_threshold=1)
    broken_transport.fail_next(5)
    for runtime in (healthy, broken):
        runtime.capture_message("hello", "error", None, None, None)
        runtime.worker_lane.process_pending()
    path = healthy.config.resolved_outbox_path
    report = fleet_status(path, now=clock.time(), stale_after=15)
    by_id = {r.beat.runtime_id: r for r in report.runtimes}
    assert by_id[healthy.runtime_id].problems == []
    assert "circuit breaker open" in by_id[broken.runtime_id].problems
    assert not report.healthy
    assert report.totals["captured"] == 2
    assert report.totals["delivered"] == 1
    assert report.totals["spooled"] == 1
    assert report.outbox_pending == 1
    json.dumps(report.as_dict())
    text = render_status(report)
    assert "circuit breaker open" in text and "UNHEALTHY" in text
    clock.advance(100)
    stale = fleet_status(path, now=clock.time(), stale_after=15)
    assert all(any("stale" in p for p in r.problems) for r in stale.runtimes)


def test_fleet_status_without_any_runtime(tmp_path: Any) -> None:
    report = fleet_status(str(tmp_path / "none.sqlite3"))
    assert report.runtimes == [] and report.healthy and report.outbox_pending is None
    assert "No live runtime" in render_status(report)


def test_send_test_event_reports_success_with_the_remote_id(data_dir: str) -> None:
    config = make_config({"data_dir": data_dir})
    memory = MemoryTransport()
    result = send_test_event(config, transport=memory)
    assert result.ok and result.detail == "delivered"
    assert result.remote_id == result.event_id == memory.events[0]["event_id"]
    assert memory.events[0]["category"] == "test"


def test_send_test_event_reports_the_exact_failure(data_dir: str) -> None:
    config = make_config({"data_dir": data_dir})
    for outcome, needle in ((Outcome.REJECTED, "scripted"), (Outcome.RATE_LIMITED, "rate limited")):
        transport = ScriptedTransport()
        transport.fail_next(1, outcome, retry_after=7)
        result = send_test_event(config, transport=transport)
        assert not result.ok and needle in result.detail
    assert not Outbox(
        config.resolved_outbox_path, 10
    ).pending()  # a failed test event is not retried


def test_a_failed_test_event_does_not_promise_a_retry(
    data_dir: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from errwire import _internal

    monkeypatch.delitem(_internal._last_logged, "send-failed", raising=False)  # rate-limited log
    transport = ScriptedTransport()
    transport.fail_next(1, Outcome.RETRYABLE)
    with caplog.at_level(logging.WARNING, logger="errwire"):
        result = send_test_event(make_config({"data_dir": data_dir}), transport=transport)
    assert not result.ok
    text = caplog.text
    assert "delivery failed (no outbox to retry from)" in text
    assert "will retry" not in text


def test_replay_outbox_with_progress_dry_run_and_limit(make_runtime: MakeRuntime) -> None:
    down = ScriptedTransport()
    runtime = make_runtime(down, dedup_window_seconds=0)
    down.fail_next(1000)
    for i in range(25):
        runtime.capture_message(f"spooled {i}", "error", None, None, None)
    runtime.worker_lane.process_pending()
    runtime.shutdown(1.0)
    config = runtime.config
    dry = replay_outbox(config, dry_run=True)
    assert (dry.pending_before, dry.sent, len(dry.preview)) == (25, 0, 20)
    up = MemoryTransport()
    seen: list[tuple[int, int]] = []
    part = replay_outbox(
        config, limit=10, transport=up, progress=lambda d, t: seen.append((d, t)), batch=4
    )
    assert (part.sent, part.remaining) == (10, 15)
    assert seen == [(4, 10), (8, 10), (10, 10)]
    failing = ScriptedTransport()
    failing.fail_next(1)
    stuck = replay_outbox(config, transport=failing)
    assert stuck.sent == 0 and stuck.stopped_because == "scripted"
    rest = replay_outbox(config, transport=up)
    assert (rest.sent, rest.remaining) == (15, 0)
    assert [e["message"] for e in up.events] == [f"spooled {i}" for i in range(25)]


def test_run_worker_drains_the_outbox_and_stops_on_request(make_runtime: MakeRuntime) -> None:
    down = ScriptedTransport()
    runtime = make_runtime(down, dedup_window_seconds=0)
    down.fail_next(1000)
    for i in range(3):
        runtime.capture_message(f"left {i}", "error", None, None, None)
    runtime.worker_lane.process_pending()
    runtime.shutdown(1.0)
    up = MemoryTransport()
    stop = threading.Event()
    started: list[Any] = []

    def on_start(worker_runtime: Any) -> None:
        started.append(worker_runtime)
        worker_runtime.worker_lane.run_idle()  # one idle tick replays, then ask it to stop
        stop.set()

    final = run_worker(
        runtime.config.replace(heartbeat_interval_seconds=0.05),
        stop=stop,
        transport=up,
        on_start=on_start,
    )
    assert final.closed and started == [final]
    assert [e["message"] for e in up.events] == ["left 0", "left 1", "left 2"]
