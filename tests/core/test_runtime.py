"""The runtime end to end with its real worker thread: lifecycle, deadlines, fork, status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import errwire
from errwire import _api
from errwire._local import count_events, read_events

from .conftest import MakeRuntime, ScriptedTransport, accounted, outbox_of


def returns_within(seconds: float, fn: Any, *args: Any) -> Any:
    """Run ``fn`` and fail if it has not returned after ``seconds`` (a generous bound)."""
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(fn(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{fn} still running after {seconds} s"
    return box[0]


def test_init_delivers_to_the_local_sink_by_default(data_dir: str) -> None:
    runtime = errwire.init(data_dir=data_dir)
    assert runtime.transport.name == "local"
    assert errwire.is_enabled()
    try:
        raise ConnectionResetError("peer went away")
    except ConnectionResetError as exc:
        assert errwire.capture_error(exc, context={"attempt": 3})
    assert errwire.flush(5.0)
    stored = read_events(runtime.config.resolved_local_db_path)
    assert [e["category"] for e in stored] == ["network"]
    assert errwire.shutdown(5.0)
    assert not errwire.is_enabled()
    assert errwire.status() == {"enabled": False, "initialised": False, "pid": os.getpid()}


def test_init_reads_environment(monkeypatch: pytest.MonkeyPatch, data_dir: str) -> None:
    monkeypatch.setenv("ERRWIRE_ENABLED", "false")
    monkeypatch.setenv("ERRWIRE_QUEUE_SIZE", "77")
    runtime = errwire.init(data_dir=data_dir, transport=errwire.MemoryTransport())
    assert runtime.config.queue_size == 77
    assert not errwire.is_enabled()
    errwire.enable()
    assert errwire.is_enabled()


def test_enable_needs_init() -> None:
    with pytest.raises(RuntimeError, match="init"):
        errwire.enable()


def test_disable_also_stops_events_already_queued(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime()
    _api.install(runtime)
    for i in range(5):
        errwire.capture_message(f"queued {i}", level="error")
    errwire.disable()
    runtime.worker_lane.process_pending()
    assert runtime.transport.events == []  # type: ignore[attr-defined]
    c = runtime.counters()
    assert c["dropped"] == {"disabled": 5}
    assert c["captured"] == accounted(runtime)
    errwire.enable()
    errwire.capture_message("after", level="error")
    runtime.worker_lane.process_pending()
    assert len(runtime.transport.events) == 1  # type: ignore[attr-defined]


def test_reinit_replaces_and_shuts_down_the_previous_runtime(data_dir: str) -> None:
    first = errwire.init(data_dir=data_dir, transport=errwire.MemoryTransport())
    second = errwire.init(data_dir=data_dir, transport=errwire.MemoryTransport())
    assert first.closed and not second.closed
    assert _api.get_runtime() is second


class Blackhole:
    """Never answers: what a dead network looks like to a transport without timeouts."""

    name = "blackhole"
    enforces_timeout = False

    def __init__(self) -> None:
        self.release = threading.Event()

    def send(self, payload: dict[str, Any], timeout: float) -> errwire.SendResult:
        self.release.wait(60)
        return errwire.SendResult(errwire.Outcome.OK)

    def close(self) -> None:
        return None


def test_flush_and_shutdown_honour_their_deadlines_against_a_blackhole(data_dir: str) -> None:
    hole = Blackhole()
    runtime = errwire.init(
        data_dir=data_dir, transport=hole, send_timeout_seconds=30, dedup_window_seconds=0
    )
    try:
        for i in range(50):
            errwire.capture_message(f"stuck {i}", level="error")
        assert returns_within(5.0, errwire.flush, 0.3) is False
        # a capture while the worker is stuck in a send still returns at once
        assert returns_within(5.0, errwire.capture_message, "during blackhole", "error") is True
        assert returns_within(6.0, errwire.shutdown, 1.0) is False
        c = runtime.counters()
        assert c["spooled"] == 51  # everything, including the send that was in flight
        assert c["captured"] == accounted(runtime)
        assert (
            outbox_of(runtime).pending() == 0 or True
        )  # closed; read it back through a fresh outbox below
    finally:
        hole.release.set()
    from errwire._outbox import Outbox

    assert Outbox(runtime.config.resolved_outbox_path, 1000).pending() == 51


def test_process_exits_within_deadline_and_a_new_process_replays(tmp_path: Path) -> None:
    data = tmp_path / "data"
    script = textwrap.dedent(
        f"""
        import threading, errwire
        class Hole:
            name = "hole"; enforces_timeout = False
            def send(self, payload, timeout):
                threading.Event().wait(600)
            def close(self): pass
        errwire.init(data_dir={str(data)!r}, transport=Hole(), dedup_window_seconds=0,
                     shutdown_timeout_seconds=1.0)
        for i in range(200):
            errwire.capture_message(f"evt {{i}}", level="error")
        errwire.shutdown()
        """
    )
    # the process exits by itself (deadline 1 s); the bound only catches a hang
    subprocess.run([sys.executable, "-c", script], check=True, timeout=15)
    runtime = errwire.init(data_dir=str(data), transport=errwire.MemoryTransport())
    runtime.worker_lane.run_idle()
    while runtime.delivery.replay():
        pass
    got = [e["message"] for e in runtime.transport.events]  # type: ignore[attr-defined]
    assert got == [f"evt {i}" for i in range(200)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_delivers_and_parent_queue_is_not_sent_twice(data_dir: str) -> None:
    runtime = errwire.init(data_dir=data_dir, dedup_window_seconds=0)
    runtime.worker_lane.autostart = False  # keep the parent's events queued across the fork
    for i in range(3):
        errwire.capture_message(f"parent {i}", level="error")
    assert runtime.worker_lane.depth == 3
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            child = _api.get_runtime()
            ok = child is not runtime and child is not None and child.worker_lane.depth == 0
            errwire.capture_message("child 0", level="error")
            ok = ok and errwire.flush(10.0) and child is not None and child.pid == os.getpid()
            code = 0 if ok and errwire.shutdown(5.0) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    runtime.worker_lane.process_pending()
    messages = sorted(e["message"] for e in read_events(runtime.config.resolved_local_db_path))
    assert messages == ["child 0", "parent 0", "parent 1", "parent 2"]
    assert count_events(runtime.config.resolved_local_db_path) == 4


def test_status_is_json_and_documents_every_counter(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(ScriptedTransport())
    _api.install(runtime)
    errwire.capture_error(ValueError("x"))
    runtime.worker_lane.process_pending()
    snap = errwire.status()
    json.dumps(snap)
    assert set(snap) >= {
        "enabled",
        "initialised",
        "pid",
        "host",
        "runtime_id",
        "worker_alive",
        "queue",
        "counters",
        "suppression",
        "delivery",
        "outbox",
        "components",
        "consumers",
        "timestamp",
    }
    assert set(snap["counters"]) == {
        "captured",
        "delivered",
        "deduplicated",
        "rate_limited",
        "sampled_out",
        "dropped",
        "spooled",
        "rejected",
        "failed",
        "internal_errors",
    }
    assert snap["queue"]["capacity"] == 10_000
    assert snap["delivery"]["breaker"]["state"] == "closed"


def test_heartbeats_let_another_process_see_this_runtime(
    make_runtime: MakeRuntime, clock: Any
) -> None:
    runtime = make_runtime(ScriptedTransport(), heartbeat_interval_seconds=5)
    _api.install(runtime)
    errwire.capture_error(ValueError("x"))
    runtime.worker_lane.process_pending()  # the first event writes a heartbeat
    beats = errwire.read_heartbeats(
        runtime.config.resolved_outbox_path, now=clock.time(), stale_after=15
    )
    assert [b.runtime_id for b in beats] == [runtime.runtime_id]
    assert beats[0].snapshot["counters"]["delivered"] == 1
    assert not beats[0].stale
    clock.advance(30)
    beats = errwire.read_heartbeats(
        runtime.config.resolved_outbox_path, now=clock.time(), stale_after=15
    )
    assert beats[0].stale
    runtime.shutdown(1.0)
    beats = errwire.read_heartbeats(
        runtime.config.resolved_outbox_path, now=clock.time(), stale_after=15
    )
    assert beats[0].final and not beats[0].stale


def test_module_functions_are_safe_without_init() -> None:
    assert errwire.flush() is True
    assert errwire.shutdown() is True
    errwire.disable()
    assert errwire.capture_error(ValueError("x")) is False


def test_default_scrubber_runs_and_counts_redactions(data_dir: str) -> None:
    runtime = errwire.init(
        data_dir=data_dir,
        transport=errwire.MemoryTransport(),
        scrub_rules=[(r"order-\d+", "ORDER")],
    )
    errwire.capture_message(
        "login failed for alice@example.com with password=hunter2 on order-123", level="error"
    )
    assert errwire.flush(5.0)
    (payload,) = runtime.transport.events  # type: ignore[attr-defined]
    assert "alice@example.com" not in json.dumps(payload)
    assert "hunter2" not in json.dumps(payload)
    assert "order-123" not in payload["message"]
    redactions = errwire.status()["redactions"]
    assert redactions.get("EMAIL") == 1
    assert redactions.get("REDACTED", 0) >= 1


def test_init_accepts_the_transport_option_by_name(data_dir: str) -> None:
    runtime = errwire.init(data_dir=data_dir, transport="memory")
    assert runtime.config.transport == "memory"
    assert runtime.transport.name == "memory"
