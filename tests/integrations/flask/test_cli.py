"""``flask errwire status|test|replay|worker``: the shared commands with the app's settings."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from flask import Flask

from errwire import _commands
from errwire._ops import run_worker as real_run_worker
from errwire._runtime import Runtime
from errwire.integrations.flask import Errwire
from tests.core.conftest import ScriptedTransport
from tests.support.fault_receiver import FaultReceiver

from .conftest import MakeApp


def _invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["errwire", *args])


def _side_runtime(app: Flask, transport: ScriptedTransport, **changes: Any) -> Runtime:
    """Another process's runtime, as far as the outbox database can tell."""
    config = Errwire.state(app).config.replace(**changes)
    return Runtime(config, transport=transport, autostart=False, scrub=lambda p: p)


@pytest.fixture
def receiver() -> Iterator[FaultReceiver]:
    with FaultReceiver() as server:
        yield server


def test_status_reads_the_heartbeats_of_the_apps_outbox(make_app: MakeApp) -> None:
    app = make_app()
    empty = _invoke(app, "status")
    assert empty.exit_code == 0 and "No live runtime has reported yet" in empty.output
    failing = ScriptedTransport()
    failing.fail_next(5)
    side = _side_runtime(app, failing, breaker_failure_threshold=1)
    side.capture_message("hello", "error", None, None, None)
    side.worker_lane.process_pending()
    try:
        table = _invoke(app, "status")
        assert table.exit_code == 1 and "circuit breaker open" in table.output
        as_json = _invoke(app, "status", "--json")
        report = json.loads(as_json.output)
        assert as_json.exit_code == 1 and report["healthy"] is False
        assert report["outbox_path"] == Errwire.state(app).config.resolved_outbox_path
        assert [r["runtime_id"] for r in report["runtimes"]] == [side.runtime_id]
    finally:
        side.shutdown(1.0)


def test_status_options(make_app: MakeApp, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app()
    other = str(tmp_path / "elsewhere.sqlite3")
    assert other in _invoke(app, "status", "--outbox", other).output
    redis = _invoke(app, "status", "--redis", "redis://127.0.0.1:1/0")  # nobody listens there
    assert redis.exit_code == 1 and "cannot read the fleet status from Redis" in redis.output
    both = _invoke(app, "status", "--outbox", other, "--redis", "redis://x")
    assert both.exit_code == 2 and "mutually exclusive" in both.output
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return len(waits) == 3  # the third wait is "Ctrl-C"

    monkeypatch.setattr(_commands, "watch", partial(_commands.watch, wait=wait))
    watched = _invoke(app, "status", "--json", "--watch", "0.5")
    assert watched.exit_code == 0 and waits == [0.5, 0.5, 0.5]
    assert watched.output.count('"healthy": true') == 3


def test_test_command_uses_the_apps_transport_or_a_dsn(
    make_app: MakeApp, receiver: FaultReceiver
) -> None:
    app = make_app()
    memory = _invoke(app, "test")
    assert memory.exit_code == 0, memory.output
    assert "Test event delivered to the memory transport" in memory.output
    receiver.ok()
    sentry = _invoke(app, "test", "--dsn", receiver.dsn, "--timeout", "5")
    assert sentry.exit_code == 0, sentry.output
    assert f"Sentry (http://127.0.0.1:{receiver.port}/" in sentry.output
    assert receiver.key not in sentry.output  # the DSN's key is not printed
    receiver.status(500)
    refused = _invoke(app, "test", "--dsn", receiver.dsn, "--timeout", "5")
    assert refused.exit_code == 1 and "NOT delivered" in refused.output
    bad = _invoke(app, "test", "--dsn", "nonsense")
    assert bad.exit_code == 2 and "--dsn must be a Sentry DSN" in bad.output


def test_replay_dry_run_limit_and_progress(make_app: MakeApp) -> None:
    app = make_app()
    assert "Nothing to replay" in _invoke(app, "replay").output
    down = ScriptedTransport()
    down.fail_next(100)
    side = _side_runtime(app, down)
    for i in range(5):
        side.capture_message(f"spooled {i}", "error", None, None, None)
    side.worker_lane.process_pending()
    side.shutdown(1.0)
    dry = _invoke(app, "replay", "--dry-run")
    assert dry.exit_code == 0 and "5 event(s) wait in the outbox" in dry.output
    assert "nothing was sent" in dry.output
    some = _invoke(app, "replay", "--limit", "2")
    assert some.exit_code == 0
    assert "Replayed 2 event(s) to the memory transport; 3 remain." in some.stdout
    assert "replaying" in some.stderr and "2/2" in some.stderr  # the tqdm bar
    rest = _invoke(app, "replay", "--no-progress")
    assert "Replayed 3 event(s)" in rest.stdout and rest.stderr == ""


def test_worker_runs_until_a_signal(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app()
    real = real_run_worker

    def run_worker(config: Any, **kwargs: Any) -> Runtime:
        on_start = kwargs.pop("on_start")

        def started(runtime: Runtime) -> None:
            on_start(runtime)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: handled, sets the stop event

        return real(config, on_start=started, **kwargs)

    monkeypatch.setattr(_commands, "run_worker", run_worker)
    previous = signal.getsignal(signal.SIGINT)
    result = _invoke(app, "worker", "--shutdown-timeout", "1")
    assert result.exit_code == 0, result.output
    assert "delivering to the memory transport" in result.output
    assert "errwire worker stopped: replayed from other processes=0" in result.output
    assert signal.getsignal(signal.SIGINT) is previous  # handlers restored
