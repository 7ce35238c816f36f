"""The management commands, through ``call_command`` (and the worker as a real process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

import errwire
import errwire._runtime
from errwire import _commands
from errwire._clock import ManualClock
from errwire._heartbeat import HeartbeatWriter
from errwire._local import count_events, read_events
from errwire._ops import run_worker as real_run_worker
from errwire._outbox import Outbox
from errwire._runtime import Runtime
from errwire.integrations.django import conf
from errwire.integrations.django.management.commands import telemetry_status

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def data(data_dir: str) -> Iterator[str]:
    """The project's errwire data lives in this test's own directory."""
    with override_settings(ERRWIRE={"DATA_DIR": data_dir}):
        errwire.shutdown()  # the settings change started one; commands run on their own
        yield data_dir


def run(name: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def closed_port_dsn() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://key@127.0.0.1:{port}/1"


def beat(
    data_dir: str,
    runtime_id: str,
    *,
    breaker: str = "closed",
    delivered: int = 5,
    failed: int = 0,
    age: float = 0.0,
    final: bool = False,
) -> None:
    now = time.time()
    clock = ManualClock(start=0.0, wall=now - age)
    writer = HeartbeatWriter(os.path.join(data_dir, "outbox.sqlite3"), runtime_id, clock=clock)
    snapshot = {
        "queue": {"depth": 1, "capacity": 10000},
        "counters": {"captured": delivered + failed, "delivered": delivered, "failed": failed},
        "delivery": {"breaker": {"state": breaker}},
        "outbox": {"pending": 0},
    }
    writer.write(snapshot, final=final)
    writer.close()


# ----------------------------------------------------------------- telemetry_status


def test_status_with_no_runtime(data: str) -> None:
    out, _ = run("telemetry_status")
    assert "No live runtime has reported yet" in out
    assert "health: OK" in out


def test_status_table_lists_live_runtimes_and_totals(data: str) -> None:
    beat(data, "web-1:101:aaaa", delivered=3)
    beat(data, "web-2:102:bbbb", delivered=4)
    beat(data, "gone:103:cccc", final=True)
    out, _ = run("telemetry_status")
    assert "web-1:101:aaaa" in out and "web-2:102:bbbb" in out
    assert "gone:103:cccc" not in out
    assert "delivered=7" in out
    out, _ = run("telemetry_status", "--include-final")
    assert "gone:103:cccc" in out


def test_status_of_a_real_runtime(data: str) -> None:
    runtime = errwire.init(transport=errwire.MemoryTransport(), data_dir=data, use_env=False)
    errwire.capture_message("hello")
    assert errwire.flush(5.0)
    runtime._write_heartbeat(final=False)
    out, _ = run("telemetry_status", "--json")
    report = json.loads(out)
    [live] = report["runtimes"]
    assert live["runtime_id"] == runtime.runtime_id
    assert live["counters"]["delivered"] == 1
    assert report["healthy"] is True


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"breaker": "open"}, "circuit breaker open"),
        ({"failed": 9, "delivered": 1}, "failure rate 90%"),
        ({"age": 120.0}, "stale heartbeat"),
    ],
)
def test_status_exits_non_zero_when_unhealthy(
    data: str, kwargs: dict[str, Any], problem: str
) -> None:
    beat(data, "web-1:101:aaaa", **kwargs)
    out = StringIO()
    with pytest.raises(
        CommandError, match=f"errwire is unhealthy: web-1:101:aaaa: {problem}"
    ) as raised:
        call_command("telemetry_status", stdout=out)
    assert raised.value.returncode == 1
    assert "UNHEALTHY" in out.getvalue()  # the table is printed before the command fails


def test_status_json_is_machine_readable_and_still_fails_when_unhealthy(data: str) -> None:
    beat(data, "web-1:101:aaaa", breaker="open")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("telemetry_status", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["healthy"] is False
    assert report["runtimes"][0]["problems"] == ["circuit breaker open"]


def test_status_thresholds_are_options(data: str) -> None:
    beat(data, "web-1:101:aaaa", age=60.0, failed=1, delivered=1)
    run("telemetry_status", "--stale-after", "600", "--failure-rate", "0.9")


def test_status_watch_refreshes_until_ctrl_c(data: str, monkeypatch: pytest.MonkeyPatch) -> None:
    beat(data, "web-1:101:aaaa")
    waits: list[float] = []

    def wait(self: Any, seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(telemetry_status.Command, "wait", wait)
    out, _ = run("telemetry_status", "--watch", "2")
    assert waits == [2.0, 2.0]
    assert out.count("errwire status") == 3 - 1  # refreshed twice, then Ctrl-C
    beat(data, "web-1:101:aaaa", breaker="open")
    waits.clear()
    with pytest.raises(CommandError, match="circuit breaker open"):
        run("telemetry_status", "--watch", "1")  # a probe still learns the last state


def test_status_watch_needs_a_positive_interval(data: str) -> None:
    with pytest.raises(CommandError, match="--watch") as raised:
        run("telemetry_status", "--watch", "0")
    assert raised.value.returncode == 2


def test_status_outbox_option_reads_another_database(data: str, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    beat(str(other), "elsewhere:1:abcd")
    out, _ = run("telemetry_status", "--outbox", str(other / "outbox.sqlite3"))
    assert "elsewhere:1:abcd" in out and str(other) in out


def test_status_is_the_shared_report(data: str) -> None:
    """One implementation, three front ends: Django prints what the console script prints."""
    beat(data, "web-1:101:aaaa", breaker="open")
    shared = _commands.status(conf.get_config(), as_json=True, now=None)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("telemetry_status", "--json", stdout=out)
    mine, theirs = json.loads(out.getvalue()), json.loads(shared.text)
    mine.pop("generated_at"), theirs.pop("generated_at")
    for report in (mine, theirs):
        for runtime in report["runtimes"]:
            runtime.pop("age_seconds", None)
    assert mine == theirs and shared.exit_code == 1


def test_commands_report_bad_settings() -> None:
    with (
        override_settings(ERRWIRE={"QUEUE_SIZE": -5}),
        pytest.raises(CommandError, match=r'errwire is not configured: .*ERRWIRE\["QUEUE_SIZE"\]'),
    ):
        call_command("telemetry_status", skip_checks=True)


# ----------------------------------------------------------------- telemetry_test


def test_test_event_to_the_local_sink(data: str) -> None:
    out, _ = run("telemetry_test")
    [event] = read_events(os.path.join(data, "events.sqlite3"))
    assert "Test event delivered to the local sink" in out
    assert os.path.join(data, "events.sqlite3") in out
    assert f"event id: {event['event_id']}" in out
    assert "errwire test event" in event["message"]


def test_test_event_failure_gives_the_exact_reason(data: str) -> None:
    with (
        override_settings(ERRWIRE={"DATA_DIR": data, "DSN": closed_port_dsn()}),
        pytest.raises(
            CommandError, match=r"Test event NOT delivered to Sentry \(.+\): .+"
        ) as raised,
    ):
        run("telemetry_test", "--timeout", "5")
    assert raised.value.returncode == 1
    assert "connect" in str(raised.value).lower() or "refused" in str(raised.value).lower()
    assert "key@" not in str(raised.value)  # the DSN's key is not printed


def test_test_event_dsn_option(data: str) -> None:
    with pytest.raises(CommandError, match=r"Test event NOT delivered to Sentry") as raised:
        run("telemetry_test", "--dsn", closed_port_dsn(), "--timeout", "5")
    assert raised.value.returncode == 1
    with pytest.raises(CommandError, match="--dsn must be a Sentry DSN") as bad:
        run("telemetry_test", "--dsn", "https://nohost")
    assert bad.value.returncode == 2


def test_test_event_is_sent_even_when_disabled(data: str) -> None:
    with override_settings(ERRWIRE={"DATA_DIR": data, "ENABLED": False}):
        out, _ = run("telemetry_test")
    assert "delivered to the local sink" in out
    assert "telemetry is disabled" in out


# ----------------------------------------------------------------- telemetry_replay


def fill_outbox(data_dir: str, n: int) -> None:
    outbox = Outbox(os.path.join(data_dir, "outbox.sqlite3"), 1000)
    payloads = [
        {"event_id": f"{i:032x}", "level": "error", "message": f"event {i}", "component": "shop"}
        for i in range(n)
    ]
    outbox.put_many(payloads, owner="a-process-that-died")
    outbox.close()


def test_replay_sends_the_outbox_with_a_progress_bar(data: str) -> None:
    fill_outbox(data, 5)
    out, err = run("telemetry_replay")
    assert "Replayed 5 event(s) to the local sink" in out and "0 remain" in out
    assert "replaying" in err and "5/5" in err  # tqdm's bar
    assert count_events(os.path.join(data, "events.sqlite3")) == 5


def test_replay_limit(data: str) -> None:
    fill_outbox(data, 5)
    out, err = run("telemetry_replay", "--limit", "2", "--verbosity", "0")
    assert "Replayed 2 event(s)" in out and "3 remain" in out
    assert err == ""  # no bar with --verbosity 0
    with pytest.raises(CommandError, match="--limit") as raised:
        run("telemetry_replay", "--limit", "0")
    assert raised.value.returncode == 2


def test_replay_outbox_option(data: str, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    fill_outbox(str(other), 2)
    out, _ = run("telemetry_replay", "--outbox", str(other / "outbox.sqlite3"), "--verbosity", "0")
    assert "Replayed 2 event(s)" in out
    assert count_events(os.path.join(data, "events.sqlite3")) == 2


def test_replay_dry_run_sends_nothing(data: str) -> None:
    fill_outbox(data, 3)
    out, err = run("telemetry_replay", "--dry-run", "--limit", "2")
    assert "3 event(s) wait in the outbox" in out and "nothing was sent" in out
    assert "Oldest 2:" in out
    assert "event 0" in out and "event 2" not in out
    assert err == ""
    assert count_events(os.path.join(data, "events.sqlite3")) == 0


def test_replay_of_an_empty_outbox(data: str) -> None:
    out, _ = run("telemetry_replay")
    assert "Nothing to replay" in out and "is empty" in out


def test_replay_stops_and_fails_when_the_destination_fails(data: str) -> None:
    fill_outbox(data, 3)
    with (
        override_settings(ERRWIRE={"DATA_DIR": data, "DSN": closed_port_dsn()}),
        pytest.raises(
            CommandError, match=r"Replayed 0 event\(s\).*3 remain.\nStopped early: "
        ) as e,
    ):
        run("telemetry_replay", "--verbosity", "0")
    assert e.value.returncode == 1


# ----------------------------------------------------------------- telemetry_worker


def test_worker_runs_until_sigterm_and_drains_the_outbox(
    data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_outbox(data, 4)

    def run_worker(config: Any, **kwargs: Any) -> Runtime:
        on_start = kwargs.pop("on_start")

        def started(runtime: Runtime) -> None:
            on_start(runtime)
            runtime.worker_lane.run_idle()  # one idle tick replays the outbox
            signal.raise_signal(signal.SIGTERM)  # what `kill <pid>` does

        return real_run_worker(config, on_start=started, **kwargs)

    monkeypatch.setattr(_commands, "run_worker", run_worker)
    before = signal.getsignal(signal.SIGTERM)
    out, _ = run("telemetry_worker", "--deadline", "5")
    assert "delivering to the local sink" in out and "Stop with Ctrl-C" in out
    assert "SIGTERM received" in out
    assert "errwire worker stopped: replayed from other processes=4" in out
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    assert count_events(os.path.join(data, "events.sqlite3")) == 4


def test_worker_missing_sentry_sdk_is_a_usage_error(
    data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sdk(config: Any) -> Any:
        raise ModuleNotFoundError("No module named 'sentry_sdk'")

    out = StringIO()
    with monkeypatch.context() as patch, pytest.raises(CommandError) as raised:
        patch.setattr(errwire._runtime, "make_transport", no_sdk)
        call_command("telemetry_worker", "--dsn", closed_port_dsn(), stdout=out)
    assert raised.value.returncode == 2
    assert "errwire[sentry]" in out.getvalue()


def test_worker_deadline_must_be_positive(data: str) -> None:
    with pytest.raises(CommandError, match="--deadline"):
        run("telemetry_worker", "--deadline", "0")
    with pytest.raises(CommandError, match="--deadline"):
        run("telemetry_worker", "--shutdown-timeout", "0")  # the other front ends' name


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_worker_process_stops_cleanly_on_signals(data_dir: str, sig: signal.Signals) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ERRWIRE_")},
        "DJANGO_SETTINGS_MODULE": "tests.integrations.django.settings",
        "ERRWIRE_DATA_DIR": data_dir,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "telemetry_worker", "--deadline", "3"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "delivering to" in first, first + (proc.stderr.read() if proc.stderr else "")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"{sig.name} received" in out
    assert "errwire worker stopped: " in out
