"""Real processes for the fleet tests: web processes and workers, each with a
reader thread for its output, bounded waits, and cleanup by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _env(data_dir: Path, **settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERRWIRE_")}
    env["ERRWIRE_DATA_DIR"] = str(data_dir)
    env["ERRWIRE_HEARTBEAT_INTERVAL_SECONDS"] = "0.2"
    for key, value in settings.items():
        env["ERRWIRE_" + key.upper()] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


class Proc:
    """A child process whose stdout lines are collected as they come."""

    def __init__(self, argv: list[str], env: dict[str, str], *, stdin: bool) -> None:
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, predicate: Any, timeout: float = 30.0, start: int = 0) -> str:
        with self._cond:
            found: list[str] = []

            def seen() -> bool:
                found[:] = [x for x in self.lines[start:] if predicate(x)]
                return bool(found) or self.process.poll() is not None

            self._cond.wait_for(seen, timeout)
            if not found:
                raise AssertionError(f"no such line within {timeout} s; output:\n" + self.text)
            return found[0]

    @property
    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        self.kill()
        self._reader.join(10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()

    def terminate(self, timeout: float = 20.0) -> int:
        os.kill(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout)


class Web(Proc):
    def __init__(self, name: str, data_dir: Path, url: str, **settings: Any) -> None:
        env = _env(data_dir, bus=url, storm_window_seconds=0, **settings)
        super().__init__([sys.executable, "-m", "tests.redis._web_process", name], env, stdin=True)
        self.name = name

    def ask(self, command: str, timeout: float = 60.0) -> dict[str, Any]:
        assert self.process.stdin is not None
        start = len(self.lines)
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.wait_line(lambda x: x.startswith("{"), timeout, start)
        reply: dict[str, Any] = json.loads(line)
        return reply


class Worker(Proc):
    def __init__(
        self, data_dir: Path, url: str, dsn: str, *, deadline: float = 5.0, **settings: Any
    ) -> None:
        options = {"bus_reclaim_seconds": 1, "dedup_window_seconds": 0, **settings}
        env = _env(data_dir, **options)
        argv = [sys.executable, "-m", "errwire.cli", "worker", "--redis", url, "--dsn", dsn]
        super().__init__([*argv, "--shutdown-timeout", str(deadline)], env, stdin=False)
        self.runtime_id = ""

    def ready(self) -> Worker:
        first = self.wait_line(lambda x: "consuming" in x)
        self.runtime_id = first.split()[2]
        return self


class Fleet:
    """Every process a test started; ``close`` kills what is still running."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp = tmp
        self.url = url
        self.procs: list[Proc] = []

    def web(self, name: str, **settings: Any) -> Web:
        proc = Web(name, self.tmp / f"web-{name}", self.url, **settings)
        self.procs.append(proc)
        return proc

    def worker(self, name: str, dsn: str, **settings: Any) -> Worker:
        proc = Worker(self.tmp / f"worker-{name}", self.url, dsn, **settings)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.close()
