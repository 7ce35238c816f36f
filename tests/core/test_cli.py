"""The ``errwire`` console script and the command layer it shares with Flask and Django."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import errwire
from errwire import _api, _commands, cli
from errwire._config import make_config
from errwire._local import count_events
from errwire._ops import run_worker as real_run_worker
from errwire._runtime import Runtime
from tests.support.fault_receiver import FaultReceiver

from .conftest import ScriptedTransport


@pytest.fixture(autouse=True)
def _env(data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console script reads ERRWIRE_* from the environment, like errwire.init()."""
    monkeypatch.setenv("ERRWIRE_DATA_DIR", data_dir)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _spool(data_dir: str, n: int) -> None:
    """Leave ``n`` undelivered events in the outbox, as a process with a dead destination would."""
    down = ScriptedTransport()
    down.fail_next(1000)
    runtime = Runtime(
        make_config({"data_dir": data_dir, "dedup_window_seconds": 0}),
        transport=down,
        autostart=False,
        scrub=lambda p: p,
    )
    for i in range(n):
        runtime.capture_message(f"spooled {i}", "error", None, None, None)
    runtime.worker_lane.process_pending()
    runtime.shutdown(1.0)


def test_help_explains_commands_and_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for needle in ("status", "test", "replay", "worker", "ERRWIRE_", "Exit codes", "examples"):
        assert needle in text
    for command in ("status", "test", "replay", "worker"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert "ERRWIRE_" in capsys.readouterr().out
    with pytest.raises(SystemExit) as missing:
        cli.main([])
    assert missing.value.code == 2


def test_status_empty_healthy_unhealthy_and_json(
    capsys: pytest.CaptureFixture[str], data_dir: str
) -> None:
    code, out, _ = _run(capsys, "status")
    assert code == 0 and "No live runtime has reported yet" in out
    failing = ScriptedTransport()
    failing.fail_next(5)
    runtime = Runtime(
        make_config({"data_dir": data_dir, "breaker_failure_threshold": 1}),
        transport=failing,
        autostart=False,
        scrub=lambda p: p,
    )
    runtime.capture_message("hello", "error", None, None, None)
    runtime.worker_lane.process_pending()
    try:
        code, out, _ = _run(capsys, "status")
        assert code == 1 and "circuit breaker open" in out and "UNHEALTHY" in out
        code, out, _ = _run(capsys, "status", "--json")
        report = json.loads(out)
        assert code == 1 and report["runtimes"][0]["runtime_id"] == runtime.runtime_id
    finally:
        runtime.shutdown(1.0)


def test_status_outbox_redis_and_watch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = str(tmp_path / "other.sqlite3")
    code, out, _ = _run(capsys, "status", "--outbox", elsewhere)
    assert code == 0 and elsewhere in out
    code, out, _ = _run(capsys, "status", "--redis", "redis://127.0.0.1:1/0")  # nobody there
    assert code == 1 and "cannot read the fleet status from Redis" in out
    with pytest.raises(SystemExit) as both:
        cli.main(["status", "--outbox", elsewhere, "--redis", "redis://x"])
    assert both.value.code == 2 and "not allowed with" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["status", "--watch", "0"])
    assert "must be greater than 0" in capsys.readouterr().err
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return True

    monkeypatch.setattr(_commands, "watch", partial(_commands.watch, wait=wait))
    code, out, _ = _run(capsys, "status", "--watch", "2")
    assert code == 0 and waits == [2.0] and out.startswith("--- ")


def test_watch_stops_on_ctrl_c_with_the_last_exit_code() -> None:
    written: list[str] = []

    def wait(seconds: float) -> bool:
        raise KeyboardInterrupt

    code = _commands.watch(
        lambda: _commands.Output("bad", 1), interval=1, write=written.append, wait=wait
    )
    assert code == 1 and len(written) == 1


def test_bad_environment_setting_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERRWIRE_QUEUE_SIZE", "lots")
    code, _, err = _run(capsys, "status")
    assert code == 2 and "ERRWIRE_QUEUE_SIZE must be an integer" in err


def test_test_event_to_the_local_sink_and_to_a_dsn(
    capsys: pytest.CaptureFixture[str], data_dir: str
) -> None:
    code, out, _ = _run(capsys, "test")
    assert code == 0 and "Test event delivered to the local sink" in out
    assert count_events(os.path.join(data_dir, "events.sqlite3")) == 1
    with FaultReceiver() as receiver:
        receiver.ok()
        code, out, _ = _run(capsys, "test", "--dsn", receiver.dsn, "--timeout", "5")
        assert code == 0 and "delivered to Sentry" in out
        receiver.status(403, body=b"project disabled")
        code, out, _ = _run(capsys, "test", "--dsn", receiver.dsn, "--timeout", "5")
        assert code == 1 and "NOT delivered" in out
    code, _, err = _run(capsys, "test", "--dsn", "https://nohost")
    assert code == 2 and "--dsn must be a Sentry DSN" in err


def test_replay_dry_run_progress_limit_and_failure(
    capsys: pytest.CaptureFixture[str], data_dir: str
) -> None:
    code, out, _ = _run(capsys, "replay")
    assert code == 0 and "Nothing to replay" in out
    _spool(data_dir, 6)
    code, out, _ = _run(capsys, "replay", "--dry-run")
    assert code == 0 and "6 event(s) wait in the outbox" in out and "spooled 0" in out
    code, out, err = _run(capsys, "replay", "--limit", "4")
    assert code == 0 and "Replayed 4 event(s) to the local sink" in out and "2 remain" in out
    assert "replaying" in err and "4/4" in err
    with FaultReceiver() as receiver:
        receiver.status(500)
        code, out, _ = _run(capsys, "replay", "--dsn", receiver.dsn, "--no-progress")
    assert code == 1 and "Stopped early" in out and "2 remain" in out
    with pytest.raises(SystemExit):
        cli.main(["replay", "--limit", "0"])
    capsys.readouterr()


def test_replay_progress_bar_is_tqdm(data_dir: str) -> None:
    import io

    _spool(data_dir, 3)
    stream = io.StringIO()
    out = _commands.replay(
        make_config({"data_dir": data_dir, "transport": "memory"}), progress_file=stream
    )
    assert out.exit_code == 0 and "3/3" in stream.getvalue() and "100%" in stream.getvalue()


def test_worker_stops_on_sigint_and_restores_handlers(
    capsys: pytest.CaptureFixture[str], data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _spool(data_dir, 2)
    real = real_run_worker

    def run_worker(config: Any, **kwargs: Any) -> Runtime:
        on_start = kwargs.pop("on_start")

        def started(runtime: Runtime) -> None:
            on_start(runtime)
            runtime.worker_lane.run_idle()  # one idle tick replays the outbox
            os.kill(os.getpid(), signal.SIGINT)

        return real(config, on_start=started, **kwargs)

    monkeypatch.setattr(_commands, "run_worker", run_worker)
    previous = signal.getsignal(signal.SIGINT)
    code, out, _ = _run(capsys, "worker", "--shutdown-timeout", "1")
    assert code == 0
    assert "delivering to the local sink" in out and "Stop with Ctrl-C" in out
    assert "errwire worker stopped: replayed from other processes=2 delivered=0" in out
    assert signal.getsignal(signal.SIGINT) is previous


def test_console_script_worker_stops_on_sigterm(data_dir: str, tmp_path: Path) -> None:
    """The installed script, in its own process, stopped by its PID."""
    script = Path(sys.executable).with_name("errwire")
    assert script.exists(), "the errwire console script is not installed (make setup)"
    env = {**os.environ, "ERRWIRE_DATA_DIR": data_dir}
    proc = subprocess.Popen(
        [str(script), "worker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = _read_until(proc.stdout, "Stop with Ctrl-C", deadline=time.monotonic() + 30)
        assert "errwire worker" in lines
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert b"errwire worker stopped" in out


def _read_until(stream: Any, needle: str, *, deadline: float) -> str:
    """Read the raw pipe (no buffered reader: select must see every byte) until ``needle``."""
    seen = b""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while needle.encode() not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                raise AssertionError(f"never printed {needle!r}; got {seen!r}")
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"exited before printing {needle!r}; got {seen!r}")
            seen += chunk
    return seen.decode()


def test_module_entry_point_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "errwire.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == f"errwire {errwire.__version__}"


# ----------------------------------------------------------------------------- join_runtime
def _label(name: str) -> str:
    return f"<{name}>"


def test_join_runtime_starts_once_then_joins(data_dir: str) -> None:
    config = make_config({"data_dir": data_dir, "transport": "memory", "queue_size": 50})
    runtime, started = _commands.join_runtime(config, ["queue_size"], owner="app one", label=_label)
    assert started and _api.get_runtime() is runtime and _api.is_enabled()
    again, started_again = _commands.join_runtime(
        config.replace(enabled=False), ["queue_size", "enabled"], owner="app two", label=_label
    )
    assert again is runtime and not started_again  # "enabled" is a switch, not a conflict
    with pytest.raises(RuntimeError, match=r"started by app one.*app three sets <queue_size>=60"):
        _commands.join_runtime(
            config.replace(queue_size=60), ["queue_size"], owner="app three", label=_label
        )
    # Options the caller did not set itself are not compared.
    _commands.join_runtime(config.replace(queue_size=60), [], owner="app four", label=_label)


def test_join_runtime_conflicts_never_print_a_password(data_dir: str) -> None:
    errwire.init(
        data_dir=data_dir,
        transport=errwire.MemoryTransport(),
        dsn="https://public@sentry.example/1",
        use_env=False,
    )
    with pytest.raises(RuntimeError) as raised:
        _commands.join_runtime(
            make_config({"data_dir": data_dir, "dsn": "https://public:hunter2@other.example/2"}),
            ["dsn"],
            owner="x",
            label=_label,
        )
    assert "hunter2" not in str(raised.value)
    assert "https://public:***@other.example/2" in str(raised.value)


def test_join_runtime_names_errwire_init_as_the_starter(data_dir: str) -> None:
    errwire.init(data_dir=data_dir, transport=errwire.MemoryTransport(), use_env=False)
    with pytest.raises(RuntimeError, match=r"started by errwire\.init\(\)"):
        _commands.join_runtime(
            make_config({"data_dir": data_dir, "sample_rate": 0.5}),
            ["sample_rate"],
            owner="x",
            label=_label,
        )


def test_missing_sentry_sdk_is_explained(
    capsys: pytest.CaptureFixture[str], data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errwire._ops
    import errwire._runtime

    def no_sdk(config: Any) -> Any:
        raise ModuleNotFoundError("No module named 'sentry_sdk'")

    monkeypatch.setattr(errwire._ops, "make_transport", no_sdk)
    monkeypatch.setattr(errwire._runtime, "make_transport", no_sdk)
    _spool(data_dir, 1)
    dsn = "https://key@sentry.example.com/1"
    for command in ("replay", "worker"):
        code, out, _ = _run(capsys, command, "--dsn", dsn)
        assert code == 2, command
        assert "No module named 'sentry_sdk'" in out and "errwire[sentry]" in out
    code, out, _ = _run(capsys, "test", "--dsn", dsn)
    assert code == 1 and "cannot build the transport" in out
