"""Fleet benchmarks: the Redis Streams bus end to end, and what it costs a caller.

* ``fleet_throughput``: 4 web processes capture as fast as they can, forward
  through a real ``redis-server`` to 2 worker processes (``errwire worker
  --redis``) that deliver through the Sentry transport to a fast local receiver
  (answers 200 at once). Events per second from the first capture to the last
  event received. Beside it, in the same run, the same number of events through
  one process's in-process bus to the same receiver (the single-machine path).
* ``capture_cost``: the caller-thread cost of ``capture_error`` (10-frame
  exception) with the in-process bus and with the Redis bus, interleaved in one
  process, beside the language floor (an empty function call). Capture only
  publishes to the in-process queue in both modes, so the two must be equal.

``python -m benchmarks.bench_fleet [--quick | --smoke]`` prints both; the
benchmark runner calls ``scenarios(mode)``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    fmt_rate,
    median,
    median_of,
    ratio,
    verdict,
)

__all__ = ["capture_cost", "fleet_throughput", "main", "scenarios"]

ROOT = Path(__file__).resolve().parent.parent
WEB_PROCESSES = 4
WORKERS = 2
# events per web process, capture chunks, rounds of the capture-cost loop
_SIZES: dict[str, tuple[int, int, int]] = {
    "smoke": (100, 200, 3),
    "quick": (1000, 1000, 21),
    "full": (5000, 1000, 101),
}
_ANSWER = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{"id":"0"}'
)
_CAPTURE_TOLERANCE = 1.15  # "the same": within 15 % (noise on a shared 2-core machine)


# -- a fast receiver --------------------------------------------------------------------------


class _Receiver:
    """Answers every envelope with 200 at once and counts them (keep-alive HTTP/1.1)."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # one write: headers and body in separate segments would wait on the
                # client's delayed ACK (40 ms) on a kept-alive connection
                self.wfile.write(_ANSWER)
                with receiver._cond:
                    receiver.count += 1
                    receiver._cond.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def dsn(self) -> str:
        return f"http://bench@127.0.0.1:{self.port}/1"

    def wait_for(self, n: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- processes -----------------------------------------------------------------------------------


def _env(**settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ERRWIRE_", "SENTRY_"))}
    env["PYTHONPATH"] = str(ROOT)
    for key, value in settings.items():
        env["ERRWIRE_" + key.upper()] = str(value)
    return env


def web_process(events: int) -> int:
    """A web process: wait for "go" on stdin, capture ``events``, flush, report."""
    import errwire

    errwire.init()
    excs = []
    for i in range(events):
        try:
            raise ValueError(f"order {i} failed")
        except ValueError as raised:
            excs.append(raised)
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    for exc in excs:
        errwire.capture_error(exc, component="orders")
    captured = time.perf_counter() - t0
    flushed = errwire.flush(300)
    counters = errwire.status()["counters"]
    errwire.shutdown(30)
    print(json.dumps({"capture_seconds": captured, "flushed": flushed, **counters}), flush=True)
    return 0


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _run_fleet(url: str, receiver: _Receiver, per_web: int, data: Path) -> dict[str, Any]:
    quiet = {
        "storm_window_seconds": 0,
        "dedup_window_seconds": 0,
        "rate_limit_per_minute": 100_000_000,
        "heartbeat_interval_seconds": 1,
    }
    workers = [
        _start(
            [sys.executable, "-m", "errwire.cli", "worker", "--redis", url, "--dsn", receiver.dsn],
            _env(data_dir=data / f"worker-{n}", **quiet),
        )
        for n in range(WORKERS)
    ]
    webs = [
        _start(
            [sys.executable, "-m", "benchmarks.bench_fleet", "--web", str(per_web)],
            _env(bus=url, data_dir=data / f"web-{n}", **quiet),
        )
        for n in range(WEB_PROCESSES)
    ]
    try:
        for proc in workers + webs:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # "errwire worker ... consuming" / "ready"
            if not line:
                raise RuntimeError("a fleet process exited before it was ready")
        total = per_web * WEB_PROCESSES
        t0 = time.perf_counter()
        for web in webs:
            assert web.stdin is not None
            web.stdin.write("go\n")
            web.stdin.flush()
        if not receiver.wait_for(total, timeout=600):
            raise RuntimeError(f"only {receiver.count} of {total} events arrived")
        seconds = time.perf_counter() - t0
        reports = []
        for web in webs:
            out, _ = web.communicate(timeout=120)
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return {
            "events": total,
            "seconds": seconds,
            "rate": total / seconds,
            "forwarded": sum(r["forwarded"] for r in reports),
            "web_capture_seconds": [r["capture_seconds"] for r in reports],
        }
    finally:
        for proc in workers + webs:
            if proc.poll() is None:
                proc.terminate()
        for proc in workers + webs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _run_single(receiver: _Receiver, events: int, data: Path) -> dict[str, Any]:
    """The same events through one process's in-process bus to the same receiver."""
    env = _env(
        dsn=receiver.dsn,
        data_dir=data / "single",
        storm_window_seconds=0,
        dedup_window_seconds=0,
        rate_limit_per_minute=100_000_000,
        queue_size=events + 100,  # one process holds what four web processes held: no drops
    )
    proc = _start([sys.executable, "-m", "benchmarks.bench_fleet", "--web", str(events)], env)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdout.readline()
        start = receiver.count
        t0 = time.perf_counter()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        if not receiver.wait_for(start + events, timeout=600):
            raise RuntimeError("the in-process run did not deliver every event")
        seconds = time.perf_counter() - t0
        proc.communicate(timeout=120)
        return {"events": events, "seconds": seconds, "rate": events / seconds}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def fleet_throughput(mode: Mode = "quick") -> dict[str, Any]:
    """Runner job: the fleet's events/s, and one in-process runtime's, same run."""
    sys.path.insert(0, str(ROOT))
    from tests.support.redis_server import RedisServer

    per_web = _SIZES[mode][0]
    with tempfile.TemporaryDirectory(prefix="errwire-fleet-") as tmp:
        data = Path(tmp)
        receiver = _Receiver()
        server = RedisServer(data / "redis").start()
        try:
            fleet = _run_fleet(server.url, receiver, per_web, data)
            single = _run_single(receiver, per_web * WEB_PROCESSES, data)
        finally:
            server.stop()
            receiver.close()
    return {"fleet": fleet, "single": single}


# -- the caller's cost ---------------------------------------------------------------------------


def capture_cost(mode: Mode = "quick") -> dict[str, Any]:
    """Runner job: ns per ``capture_error`` on the caller's thread, in-process bus vs
    Redis bus (interleaved rounds, one process), and the empty-call floor."""
    import errwire

    from ._fixtures import activate, empty, exception_with_frames, quiet_runtime

    _, chunk, rounds = _SIZES[mode]
    exc = exception_with_frames(10)
    runtimes = {
        "inprocess": quiet_runtime(storm_window_seconds=0, queue_size=chunk + 10),
        # nothing listens there: capture must not touch Redis (the worker never runs here)
        "redis": quiet_runtime(
            storm_window_seconds=0, queue_size=chunk + 10, bus="redis://127.0.0.1:1/0"
        ),
    }
    capture = errwire.capture_error

    def timed(fn: Callable[[BaseException], object]) -> float:
        t0 = time.perf_counter()
        for _ in range(chunk):
            fn(exc)
        return (time.perf_counter() - t0) / chunk * 1e9

    samples: dict[str, list[float]] = {"inprocess": [], "redis": [], "floor": []}
    ratios: list[float] = []
    order = list(runtimes)
    for _ in range(rounds):
        for label in order:  # A B, then B A: drift lands on both alike
            runtime = runtimes[label]
            activate(runtime)
            samples[label].append(timed(capture))
            runtime.worker_lane.drain()
        order.reverse()
        samples["floor"].append(timed(empty))
        ratios.append(samples["redis"][-1] / samples["inprocess"][-1])
    activate(None)
    redis_runtime = runtimes["redis"]
    assert redis_runtime.forwarder is not None and redis_runtime.forwarder.failures.value == 0
    result = {label: statistics.median(values) for label, values in samples.items()}
    result["ratio"] = statistics.median(ratios)  # paired per round: robust to drift
    return result


# -- the runner's view ---------------------------------------------------------------------------


def _throughput_rows(results: Results) -> list[Row]:
    runs = results["errwire"]
    fleet = median([r["fleet"]["rate"] for r in runs])
    single = median([r["single"]["rate"] for r in runs])
    events = runs[0]["fleet"]["events"]
    return [
        Row(
            "12",
            f"fleet throughput: {events:,} events, {WEB_PROCESSES} web processes -> Redis -> "
            f"{WORKERS} workers -> fast receiver",
            fmt_rate(fleet),
            peer="one process, in-process bus, same receiver",
            peer_value=fmt_rate(single),
            ratio=ratio(fleet, single, higher_is_better=True),
        )
    ]


def _capture_rows(results: Results) -> list[Row]:
    runs = results["errwire"]
    inprocess = median_of(runs, "inprocess")
    redis = median_of(runs, "redis")
    floor = median_of(runs, "floor")
    paired = median_of(runs, "ratio")
    return [
        Row(
            "12",
            "capture_error on the caller's thread, Redis bus (10 frames)",
            fmt_ns(redis),
            peer="errwire, in-process bus (same process, interleaved)",
            peer_value=fmt_ns(inprocess),
            ratio=f"{1 / paired:.2f}x (paired rounds)" if paired else "",
            floor=fmt_ns(floor),
            over_floor=f"{redis / floor:.1f}x" if floor else "",
            target=f"= in-process (within {_CAPTURE_TOLERANCE - 1:.0%})",
            result=verdict(paired <= _CAPTURE_TOLERANCE),
        )
    ]


def scenarios(mode: Mode) -> list[Scenario]:
    return [
        Scenario(
            "12-fleet-throughput",
            [Side("errwire", Job("benchmarks.bench_fleet", "fleet_throughput", {"mode": mode}))],
            _throughput_rows,
        ),
        Scenario(
            "12-fleet-capture",
            [Side("errwire", Job("benchmarks.bench_fleet", "capture_cost", {"mode": mode}))],
            _capture_rows,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_fleet", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer events and rounds")
    parser.add_argument("--smoke", action="store_true", help="only prove it runs")
    parser.add_argument("--web", metavar="N", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.web is not None:
        return web_process(args.web)
    mode: Mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    cost = capture_cost(mode)
    print(
        f"capture_error, caller's thread (median of {_SIZES[mode][2]} rounds of "
        f"{_SIZES[mode][1]}): in-process bus {fmt_ns(cost['inprocess'])}, Redis bus "
        f"{fmt_ns(cost['redis'])}, empty call {fmt_ns(cost['floor'])}; "
        f"Redis / in-process = {cost['ratio']:.2f} (median of paired rounds)"
    )
    result = fleet_throughput(mode)
    fleet, single = result["fleet"], result["single"]
    print(
        f"fleet: {fleet['events']:,} events in {fleet['seconds']:.2f} s = "
        f"{fmt_rate(fleet['rate'])} ({WEB_PROCESSES} web -> Redis -> {WORKERS} workers); "
        f"one in-process runtime: {fmt_rate(single['rate'])}; "
        f"fleet / single = {fleet['rate'] / single['rate']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
