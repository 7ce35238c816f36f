"""Request latency under load while the Sentry receiver is healthy or blackholed
(scenario 9): errwire vs sentry-sdk.

Each side is one job: it starts the tests' fault-injection receiver (answers at
once, or reads every request and never answers), serves ``benchmarks._load_app``
(Starlette, hello world, one request in ten reports a handled error) with
uvicorn on 127.0.0.1 in a process of its own, and loads it from another process
with ``wrk --latency`` (closed loop: 1 thread, 8 connections). p50 and p99 are
wrk's. errwire runs with every error delivered (no folding of repeats, no rate
limit), as sentry-sdk delivers every one; sentry-sdk with its defaults.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._registry import (
    Job,
    Mode,
    Results,
    Row,
    Scenario,
    Side,
    fmt_ns,
    median_of,
    ratio,
    verdict,
)

__all__ = ["load", "parse_wrk", "scenarios"]

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("errwire", "sentry-sdk")
STATES = ("healthy", "blackholed")
DURATION = {"smoke": 1, "quick": 1, "full": 5}
CONNECTIONS = 8
TARGET = 1.10  # errwire's p99 with the receiver blackholed, over its p99 when healthy
_UNITS = {"us": 1e3, "ms": 1e6, "s": 1e9}


def parse_wrk(text: str) -> dict[str, float]:
    """p50 / p99 (ns) and requests per second from ``wrk --latency`` output."""
    out: dict[str, float] = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        out[f"p{pct}_ns"] = float(value) * _UNITS[unit]
    found = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if found:
        out["requests_per_second"] = float(found.group(1))
    if "p50_ns" not in out or "p99_ns" not in out:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.communicate()[1][-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # waiting for a server process to bind: no event to wait on
    raise RuntimeError("the server did not start listening")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    proc.communicate()


def load(library: str, state: str, mode: Mode) -> dict[str, Any]:
    from tests.support.fault_receiver import FaultReceiver

    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (make system-deps)")
    port = _free_port()
    with FaultReceiver() as receiver:
        if state == "blackholed":
            receiver.blackhole()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ERRWIRE_", "SENTRY_"))}
        env.update(BENCH_LIBRARY=library, BENCH_DSN=receiver.dsn)
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "benchmarks._load_app:app", "--host",
             "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_listening(port, server)
            url = f"http://127.0.0.1:{port}/"
            command = [wrk, "-t1", f"-c{CONNECTIONS}", "--latency", "--timeout", "10s", url]
            if mode == "full":  # warm up: connections, caches, the first requests
                subprocess.run([*command[:-1], "-d1s", url], capture_output=True, check=True)
            done = subprocess.run(
                [*command[:-1], f"-d{DURATION[mode]}s", url],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            result: dict[str, Any] = parse_wrk(done.stdout)
            result["receiver_requests"] = len(receiver.requests)
            result["receiver_accepted"] = len(receiver.accepted)
        finally:
            _stop(server)
            receiver.release()
    return result


def _rows(results: Results) -> list[Row]:
    def value(library: str, state: str, key: str) -> float:
        return median_of(results[f"{library}, {state}"], key)

    peer = "sentry-sdk, defaults (StarletteIntegration), capture_exception"
    rows = []
    for state in STATES:
        for key, what in (("p50_ns", "p50"), ("p99_ns", "p99")):
            e, s = value("errwire", state, key), value("sentry-sdk", state, key)
            rows.append(
                Row(
                    "9",
                    f"request latency under load (wrk, {CONNECTIONS} connections, closed loop), "
                    f"receiver {state}, {what} "
                    f"(errwire {value('errwire', state, 'requests_per_second'):,.0f} req/s, "
                    f"sentry-sdk {value('sentry-sdk', state, 'requests_per_second'):,.0f})",
                    fmt_ns(e),
                    peer,
                    fmt_ns(s),
                    ratio(e, s),
                )
            )
    grow_e = value("errwire", "blackholed", "p99_ns") / value("errwire", "healthy", "p99_ns")
    grow_s = value("sentry-sdk", "blackholed", "p99_ns") / value("sentry-sdk", "healthy", "p99_ns")
    rows.append(
        Row(
            "9",
            "p99 with the receiver blackholed over p99 when healthy",
            f"{grow_e:.2f}x",
            peer,
            f"{grow_s:.2f}x",
            target=f"errwire <= {TARGET:.2f}x",
            result=verdict(grow_e <= TARGET),
        )
    )
    return rows


def scenarios(mode: Mode) -> list[Scenario]:
    sides = [
        Side(
            f"{library}, {state}",
            Job(
                "benchmarks.bench_load", "load", {"library": library, "state": state, "mode": mode}
            ),
        )
        for state in STATES
        for library in LIBRARIES
    ]
    return [Scenario("9-load", sides, _rows, rounds=2 if mode == "full" else 1)]
