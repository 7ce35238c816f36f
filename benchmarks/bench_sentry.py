"""Delivery through the Sentry path: errwire vs sentry-sdk, against a local receiver.

``python -m benchmarks.bench_sentry [--quick] [--json]``

The receiver is the tests' fault-injection receiver (``tests/support/fault_receiver.py``,
a Sentry envelope endpoint on 127.0.0.1) running in this process; each library runs
in its own subprocess (sentry-sdk keeps a global client, and the receiver must not
share a GIL with the sender). Exceptions are pre-built with a 10-frame traceback
and distinct messages; only the capture calls are timed on the caller's side.

(a) throughput: N errors captured in one burst; delivered events per second is N
    divided by the time from the first capture to the moment the receiver has all
    N. The receiver answers 200 at once. errwire: ``errwire.init(dsn=...)`` (its
    SentryTransport on its worker thread; storm guard and dedup off, rate limit
    raised, so every event is sent). sentry-sdk: ``sentry_sdk.init(dsn=...,
    transport_queue_size=N, default_integrations=False,
    auto_enabling_integrations=False)`` + ``capture_exception``, so it drops
    nothing. Median of the rounds.
(b) caller latency while the receiver is blackholed (it reads each request and
    never answers): K captures, each timed with ``perf_counter_ns``; median and
    99th percentile per call. Both libraries with their defaults otherwise.
(c) the DESIGN.md burst: 1,000 errors against a receiver that answers after
    50 ms, then the app stops with a 5 s deadline (``errwire.shutdown(5)``,
    ``sentry_sdk.flush(5)``): what was delivered, what waits in errwire's outbox
    for the next process, and what was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import string
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIBRARIES = ("errwire", "sentry-sdk")


# -- the child: one library, one measurement ---------------------------------------------------


def _word(i: int) -> str:
    out = ""
    for _ in range(4):
        i, digit = divmod(i, 26)
        out += string.ascii_lowercase[digit]
    return out


def _exceptions(n: int) -> list[Exception]:
    from ._fixtures import exception_with_frames

    return [exception_with_frames(10, f"order {_word(i)} failed") for i in range(n)]


def _start(library: str, dsn: str, n: int, *, no_drop: bool) -> tuple[Any, Any]:
    """Initialise ``library``; returns its capture function and errwire's runtime."""
    if library == "errwire":
        import errwire

        options: dict[str, Any] = {
            "data_dir": tempfile.mkdtemp(prefix="errwire-bench-"),
            "storm_window_seconds": 0,  # the pre-built errors share one raise site
            "rate_limit_per_minute": 10**9,
        }
        if no_drop:
            options.update(dedup_window_seconds=0, queue_size=max(10_000, n))
        runtime = errwire.init(dsn=dsn, use_env=False, **options)
        return errwire.capture_error, runtime
    import sentry_sdk

    extra: dict[str, Any] = {"transport_queue_size": n + 100} if no_drop else {}
    sentry_sdk.init(dsn=dsn, default_integrations=False, auto_enabling_integrations=False, **extra)
    return sentry_sdk.capture_exception, None


def child(mode: str, library: str, dsn: str, n: int, deadline: float) -> dict[str, Any]:
    errors = _exceptions(n)
    capture, runtime = _start(library, dsn, n, no_drop=mode == "throughput")
    out: dict[str, Any] = {"library": library, "mode": mode, "n": n}
    if mode == "latency":
        timings = []
        clock = time.perf_counter_ns
        for exc in errors:
            t0 = clock()
            capture(exc)
            timings.append(clock() - t0)
        timings.sort()
        out["median_ns"] = statistics.median(timings)
        out["p99_ns"] = timings[int(len(timings) * 0.99) - 1]
        out["max_ns"] = timings[-1]
        print(json.dumps(out), flush=True)
        os._exit(0)  # do not wait for sends stuck in the blackhole
    out["start"] = time.monotonic()
    for exc in errors:
        capture(exc)
    out["capture_seconds"] = time.monotonic() - out["start"]
    if runtime is not None:
        import errwire

        if mode == "throughput":
            errwire.flush(timeout=300.0)
        else:
            errwire.shutdown(timeout=deadline)
        out["counters"] = runtime.counters()
    else:
        import sentry_sdk

        sentry_sdk.flush(timeout=300.0 if mode == "throughput" else deadline)
    out["returned"] = time.monotonic()
    return out


# -- the parent: the receiver, the rounds, the table ---------------------------------------------


class _Arrivals:
    """A cheap predicate for ``FaultReceiver.wait_until``: event envelopes accepted."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.seen = 0
        self.events = 0

    def __call__(self, receiver: Any) -> bool:
        new = receiver.accepted[self.seen :]
        self.seen += len(new)
        self.events += sum(1 for r in new if r.event is not None)
        return self.events >= self.target


def _command(mode: str, library: str, dsn: str, n: int, deadline: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.bench_sentry",
        "--child",
        mode,
        library,
        dsn,
        str(n),
        str(deadline),
    ]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ERRWIRE_", "SENTRY_"))}


def _result(stdout: str, stderr: str, code: int | None, what: str) -> dict[str, Any]:
    if code != 0:
        raise RuntimeError(f"{what} failed:\n{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def _run_child(mode: str, library: str, dsn: str, n: int, deadline: float = 5.0) -> dict[str, Any]:
    done = subprocess.run(
        _command(mode, library, dsn, n, deadline),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return _result(done.stdout, done.stderr, done.returncode, f"{library} {mode}")


def throughput(n: int, rounds: int) -> dict[str, dict[str, float]]:
    """Seconds from the child's first capture to the receiver holding all ``n``
    (CLOCK_MONOTONIC is one clock for every process on the machine)."""
    from tests.support.fault_receiver import FaultReceiver

    rates: dict[str, list[float]] = {lib: [] for lib in LIBRARIES}
    seconds: dict[str, list[float]] = {lib: [] for lib in LIBRARIES}
    busy: dict[str, list[float]] = {lib: [] for lib in LIBRARIES}
    for _ in range(rounds):
        for library in LIBRARIES:
            with FaultReceiver() as receiver:
                arrivals = _Arrivals(n)
                proc = subprocess.Popen(
                    _command("throughput", library, receiver.dsn, n, 0.0),
                    cwd=ROOT,
                    env=_env(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                try:
                    arrived = receiver.wait_until(arrivals, timeout=300.0)
                    last_arrival = time.monotonic()
                    stdout, stderr = proc.communicate(timeout=300.0)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.communicate()
                result = _result(stdout, stderr, proc.returncode, f"{library} throughput")
                if not arrived:
                    raise RuntimeError(f"{library}: {arrivals.events} of {n} arrived")
                took = last_arrival - result["start"]
                rates[library].append(n / took)
                seconds[library].append(took)
                busy[library].append(result["capture_seconds"])
    return {
        lib: {
            "events_per_second": statistics.median(rates[lib]),
            "seconds": statistics.median(seconds[lib]),
            "caller_seconds": statistics.median(busy[lib]),
        }
        for lib in LIBRARIES
    }


def latency(k: int) -> dict[str, dict[str, float]]:
    from tests.support.fault_receiver import FaultReceiver

    out = {}
    for library in LIBRARIES:
        with FaultReceiver() as receiver:
            receiver.blackhole()
            out[library] = _run_child("latency", library, receiver.dsn, k)
            receiver.release()
    return out


def burst(n: int, deadline: float) -> dict[str, dict[str, Any]]:
    from tests.support.fault_receiver import FaultReceiver

    out: dict[str, dict[str, Any]] = {}
    for library in LIBRARIES:
        with FaultReceiver() as receiver:
            receiver.slow(0.05)
            result = _run_child("burst", library, receiver.dsn, n, deadline)
            receiver.release()
            receiver.wait_until(lambda r: r.held == 0, timeout=10.0)
            delivered = len({x.event_id for x in receiver.accepted if x.event is not None})
            counters = result.get("counters") or {}
            spooled = int(counters.get("spooled", 0))
            result.update(
                delivered=delivered,
                spooled=spooled,
                # The send in flight at the deadline may arrive and also wait in the outbox.
                lost=max(0, n - len({x.event_id for x in receiver.accepted}) - spooled),
                stopped_after=result["returned"] - result["start"],
            )
            out[library] = result
    return out


def _us(ns: float) -> str:
    return f"{ns / 1000:.1f} µs" if ns < 1e6 else f"{ns / 1e6:.2f} ms"


def _rate(t: dict[str, float]) -> str:
    return (
        f"{t['events_per_second']:,.0f}/s (all in {t['seconds']:.2f} s; "
        f"caller busy {t['caller_seconds']:.2f} s)"
    )


def table(
    n: int,
    tput: dict[str, dict[str, float]],
    lat: dict[str, dict[str, float]],
    bursts: dict[str, dict[str, Any]],
    k: int,
) -> str:
    e, s = "errwire", "sentry-sdk"
    rows = [
        "| measurement | errwire | sentry-sdk |",
        "|---|---|---|",
        f"| (a) delivered events/s to a fast local receiver ({n:,} errors, all arrived) "
        f"| {_rate(tput[e])} | {_rate(tput[s])} |",
        f"| (b) caller latency per capture, receiver blackholed ({k:,} captures): "
        "median (p99) "
        f"| {_us(lat[e]['median_ns'])} ({_us(lat[e]['p99_ns'])}) "
        f"| {_us(lat[s]['median_ns'])} ({_us(lat[s]['p99_ns'])}) |",
    ]
    b_e, b_s = bursts[e], bursts[s]
    rows.append(
        f"| (c) {b_e['n']:,}-error burst, 50 ms receiver, stop with a 5 s deadline: "
        "delivered / in the outbox / lost "
        f"| {b_e['delivered']} / {b_e['spooled']} / **{b_e['lost']}** "
        f"| {b_s['delivered']} / (no outbox) / **{b_s['lost']}** |"
    )
    rows.append(
        "| (c) time the caller spent capturing the burst "
        f"| {b_e['capture_seconds'] * 1000:.1f} ms | {b_s['capture_seconds'] * 1000:.1f} ms |"
    )
    rows += [
        "",
        "(a) ends when the receiver holds every event; the caller's own time is part of it "
        "(sentry-sdk serialises each event, source lines included, on the caller's thread). "
        "(c) the one send in flight at errwire's deadline is both delivered and in the "
        "outbox (its answer came too late to count): it is sent again on replay, and a "
        "Sentry server stores an event id once; lost counts distinct event ids.",
    ]
    return "\n".join(rows)


def environment() -> str:
    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()} with {os.cpu_count()} cores (load {load:.1f}), "
        f"Python {platform.python_version()}, errwire {version('errwire')}, "
        f"sentry-sdk {version('sentry-sdk')}"
    )


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["--child"]:
        mode, library, dsn, count, deadline = args_list[1:6]
        print(json.dumps(child(mode, library, dsn, int(count), float(deadline))), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sentry", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer events and rounds")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    opts = parser.parse_args(args_list)
    n, rounds, k = (500, 1, 500) if opts.quick else (3000, 3, 2000)
    tput = throughput(n, rounds)
    lat = latency(k)
    bursts = burst(1000, 5.0)
    if opts.json:
        print(json.dumps({"throughput": tput, "latency": lat, "burst": bursts}, indent=2))
        return 0
    print(table(n, tput, lat, bursts, k))
    print()
    print(
        f"Measured on {environment()}; `python -m benchmarks.bench_sentry"
        f"{' --quick' if opts.quick else ''}`; (a) median of {rounds} round(s)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
