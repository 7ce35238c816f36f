"""Delivery through the Sentry path (scenarios 7, 9 and 10): errwire vs sentry-sdk,
against a local receiver.

Each side is a job (run by ``python -m benchmarks`` in its own process) that
starts the tests' fault-injection receiver (``tests/support/fault_receiver.py``,
a Sentry envelope endpoint on 127.0.0.1) and runs the library in a process of
its own (``python -m benchmarks.bench_sentry --child MODE LIBRARY DSN N DEADLINE``), so
the receiver never shares a GIL with the sender. Exceptions are pre-built with a
10-frame traceback and distinct messages.

* drain: N errors captured in one burst to a receiver that answers 200 at once,
  then the documented stop with a deadline long enough for all of them
  (``errwire.shutdown``, ``sentry_sdk.flush``). Delivered events/s is N over the
  time from the first capture to the receiver holding all N (7); the drain time
  is from the stop call to its return (10). errwire: ``errwire.init(dsn=...)``,
  storm guard and dedup off and the rate limit raised so every event is sent;
  sentry-sdk: ``transport_queue_size`` raised to N, default and auto-enabling
  integrations off, so it drops nothing.
* latency: caller latency per capture while the receiver reads each request and
  never answers; each call timed with ``perf_counter_ns`` (9).
* exit: 100 errors captured with the receiver blackholed, then the stop:
  seconds from the stop to the process having exited, with a 2 s deadline
  (errwire: ``shutdown()``, its default; sentry-sdk: its atexit flush with its
  default ``shutdown_timeout=2``) (10).
* burst: the DESIGN.md burst: 1,000 errors against a receiver that answers after
  50 ms, then the app stops with a 5 s deadline (``errwire.shutdown(5)``,
  ``sentry_sdk.flush(5)``): what was delivered, what waits in errwire's outbox
  for the next process, and what was lost (10).
"""

from __future__ import annotations

import json
import os
import statistics
import string
import subprocess
import sys
import tempfile
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
    fmt_rate,
    fmt_seconds,
    median,
    median_of,
    ratio,
    verdict,
)

__all__ = ["burst", "drain", "exit_blackholed", "latency", "scenarios"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIBRARIES = ("errwire", "sentry-sdk")
DRAIN = {"smoke": 30, "quick": 300, "full": 10_000}
LATENCY = {"smoke": 30, "quick": 300, "full": 2000}
EXIT_EVENTS = {"smoke": 10, "quick": 100, "full": 100}
# both libraries' default shutdown deadline is 2 s; a smoke run only checks the mechanics
EXIT_DEADLINE = {"smoke": 0.5, "quick": 2.0, "full": 2.0}
BURST = {"smoke": 30, "quick": 200, "full": 1000}
BURST_DEADLINE = {"smoke": 0.5, "quick": 1.0, "full": 5.0}
EXIT_SLACK = 0.5  # seconds past the deadline an exit may take (interpreter teardown)


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


def _start(library: str, dsn: str, n: int, mode: str, deadline: float) -> tuple[Any, Any]:
    """Initialise ``library``; returns its capture function and errwire's runtime."""
    if library == "errwire":
        import errwire

        options: dict[str, Any] = {
            "data_dir": tempfile.mkdtemp(prefix="errwire-bench-"),
            "storm_window_seconds": 0,  # the pre-built errors share one raise site
            "rate_limit_per_minute": 10**9,
        }
        if mode == "drain":
            options.update(dedup_window_seconds=0, queue_size=max(10_000, n))
        runtime = errwire.init(dsn=dsn, use_env=False, **options)
        return errwire.capture_error, runtime
    import sentry_sdk

    from ._fixtures import sentry_init

    extra: dict[str, Any] = {"shutdown_timeout": deadline} if mode == "exit" else {}
    if mode == "drain":  # every event delivered, nothing else in the way
        extra = {
            "transport_queue_size": n + 100,
            "default_integrations": False,
            "auto_enabling_integrations": False,
        }
    sentry_init(dsn=dsn, **extra)
    return sentry_sdk.capture_exception, None


def child(mode: str, library: str, dsn: str, n: int, deadline: float) -> dict[str, Any]:
    errors = _exceptions(n)
    capture, runtime = _start(library, dsn, n, mode, deadline)
    out: dict[str, Any] = {"library": library, "mode": mode, "n": n, "deadline": deadline}
    if mode == "latency":
        timings = []
        clock = time.perf_counter_ns
        for exc in errors:
            t0 = clock()
            capture(exc)
            timings.append(clock() - t0)
        timings.sort()
        out["median_ns"] = statistics.median(timings)
        out["p99_ns"] = timings[max(0, int(len(timings) * 0.99) - 1)]
        out["max_ns"] = timings[-1]
        print(json.dumps(out), flush=True)
        os._exit(0)  # do not wait for sends stuck in the blackhole
    out["start"] = time.monotonic()
    for exc in errors:
        capture(exc)
    out["capture_seconds"] = time.monotonic() - out["start"]
    out["stop"] = time.monotonic()
    if mode == "exit":
        print(f"stop {out['stop']}", flush=True)
    if runtime is not None:
        import errwire

        errwire.shutdown(timeout=deadline)
        out["counters"] = runtime.counters()
    elif mode != "exit":  # on exit, sentry-sdk's atexit hook flushes (shutdown_timeout)
        import sentry_sdk

        sentry_sdk.flush(timeout=deadline)
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


def drain(library: str, mode: Mode) -> dict[str, Any]:
    """``n`` errors captured in one burst to a receiver that answers 200 at once, then
    the documented stop (``errwire.shutdown`` / ``sentry_sdk.flush``) with a deadline
    long enough for all of them. Times are CLOCK_MONOTONIC, one clock for every
    process on the machine."""
    from tests.support.fault_receiver import FaultReceiver

    n = DRAIN[mode]
    with FaultReceiver() as receiver:
        arrivals = _Arrivals(n)
        proc = subprocess.Popen(
            _command("drain", library, receiver.dsn, n, 600.0),
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            arrived = receiver.wait_until(arrivals, timeout=600.0)
            last_arrival = time.monotonic()
            stdout, stderr = proc.communicate(timeout=600.0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    result = _result(stdout, stderr, proc.returncode, f"{library} drain")
    if not arrived:
        raise RuntimeError(f"{library}: {arrivals.events} of {n} arrived")
    took = last_arrival - result["start"]
    result.update(
        events_per_second=n / took,
        all_arrived_after=took,
        drain_seconds=result["returned"] - result["stop"],
    )
    return result


def latency(library: str, mode: Mode) -> dict[str, Any]:
    """Caller latency per capture while the receiver reads requests and never answers."""
    from tests.support.fault_receiver import FaultReceiver

    with FaultReceiver() as receiver:
        receiver.blackhole()
        result = _run_child("latency", library, receiver.dsn, LATENCY[mode])
        receiver.release()
    return result


def exit_blackholed(library: str, mode: Mode) -> dict[str, Any]:
    """The process stops with events queued and the receiver blackholed: seconds from
    the stop to the process having exited (errwire: ``shutdown()``, its default 2 s
    deadline; sentry-sdk: its atexit flush, ``shutdown_timeout`` default 2 s)."""
    from tests.support.fault_receiver import FaultReceiver

    with FaultReceiver() as receiver, tempfile.TemporaryFile("w+") as errors:
        receiver.blackhole()
        proc = subprocess.Popen(
            _command("exit", library, receiver.dsn, EXIT_EVENTS[mode], EXIT_DEADLINE[mode]),
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=errors,  # a file: a full pipe must not hold the exit being timed
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # "stop <monotonic>" just before the stop
            proc.wait(timeout=120.0)
            exited = time.monotonic()
            stdout = proc.stdout.read()  # the same buffered reader as the line above
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            receiver.release()
        errors.seek(0)
        stderr = errors.read()
    if not line.startswith("stop "):
        raise RuntimeError(f"{library} exit: {line!r}\n{stderr[-2000:]}")
    result = _result(stdout, stderr, proc.returncode, f"{library} exit")
    result["exit_seconds"] = exited - float(line.split()[1])
    return result


def burst(library: str, mode: Mode) -> dict[str, Any]:
    """The DESIGN.md burst: 1,000 errors against a receiver that answers after 50 ms,
    then a stop with a 5 s deadline: delivered, waiting in errwire's outbox, lost."""
    from tests.support.fault_receiver import FaultReceiver

    n, deadline = BURST[mode], BURST_DEADLINE[mode]
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
        )
    return result


# -- rows --------------------------------------------------------------------------------------

SENTRY_NO_DROP = (
    "sentry-sdk, transport_queue_size raised to the burst, default and auto integrations off"
)


def _drain_rows(results: Results) -> list[Row]:
    e, s = results["errwire"], results["sentry-sdk"]
    n = e[0]["n"]
    eps_e = median_of(e, "events_per_second")
    eps_s = median_of(s, "events_per_second")
    total_e = median([r["returned"] - r["start"] for r in e])
    total_s = median([r["returned"] - r["start"] for r in s])
    drain_e = median_of(e, "drain_seconds")
    drain_s = median_of(s, "drain_seconds")
    return [
        Row(
            "7",
            f"delivered events/s through the Sentry path to a fast local receiver "
            f"({n:,} errors, all arrived)",
            fmt_rate(eps_e),
            SENTRY_NO_DROP,
            fmt_rate(eps_s),
            ratio(eps_e, eps_s, higher_is_better=True),
        ),
        Row(
            "10",
            f"shutdown: {n:,} errors captured in a burst, then stop: first capture to every "
            f"event delivered and the stop returned (of which after the stop: errwire "
            f"{fmt_seconds(drain_e)}, sentry-sdk {fmt_seconds(drain_s)})",
            fmt_seconds(total_e),
            SENTRY_NO_DROP + "; sentry_sdk.flush()",
            fmt_seconds(total_s),
            ratio(total_e, total_s),
        ),
    ]


def _latency_rows(results: Results) -> list[Row]:
    e, s = results["errwire"], results["sentry-sdk"]
    k = e[0]["n"]
    rows = []
    for key, what in (("median_ns", "median"), ("p99_ns", "p99")):
        value_e = median_of(e, key)
        value_s = median_of(s, key)
        rows.append(
            Row(
                "9",
                f"caller latency per capture, receiver blackholed ({k:,} captures), {what}",
                fmt_ns(value_e),
                "sentry-sdk, defaults (its HTTP transport)",
                fmt_ns(value_s),
                ratio(value_e, value_s),
            )
        )
    return rows


def _exit_rows(results: Results) -> list[Row]:
    e, s = results["errwire"], results["sentry-sdk"]
    exit_e = median_of(e, "exit_seconds")
    exit_s = median_of(s, "exit_seconds")
    return [
        Row(
            "10",
            f"shutdown: stop to process exit with {e[0]['n']:,} events queued, receiver "
            f"blackholed ({e[0]['deadline']:g} s deadline)",
            fmt_seconds(exit_e),
            f"sentry-sdk, defaults: atexit flush, shutdown_timeout={s[0]['deadline']:g}",
            fmt_seconds(exit_s),
            ratio(exit_e, exit_s),
            target=f"<= deadline + {EXIT_SLACK:g} s",
            result=verdict(exit_e <= e[0]["deadline"] + EXIT_SLACK),
        )
    ]


def _burst_rows(results: Results) -> list[Row]:
    e, s = results["errwire"][-1], results["sentry-sdk"][-1]
    return [
        Row(
            "10",
            f"{e['n']:,}-error burst, 50 ms receiver, stop with a {e['deadline']:g} s deadline: "
            "delivered / in the outbox / lost",
            f"{e['delivered']} / {e['spooled']} / {e['lost']}",
            f"sentry-sdk, defaults; sentry_sdk.flush({s['deadline']:g})",
            f"{s['delivered']} / (no outbox) / {s['lost']}",
            target="nothing lost",
            result=verdict(e["lost"] == 0),
        )
    ]


def scenarios(mode: Mode) -> list[Scenario]:
    def sides(function: str) -> list[Side]:
        return [
            Side(lib, Job("benchmarks.bench_sentry", function, {"library": lib, "mode": mode}))
            for lib in LIBRARIES
        ]

    return [
        Scenario("7-10-sentry-drain", sides("drain"), _drain_rows),
        Scenario("9-blackholed-caller", sides("latency"), _latency_rows),
        Scenario("10-exit-blackholed", sides("exit_blackholed"), _exit_rows,
                 rounds=2 if mode == "full" else 1),
        Scenario("10-burst", sides("burst"), _burst_rows),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    mode, library, dsn, count, deadline = args_list[1:6]
    print(json.dumps(child(mode, library, dsn, int(count), float(deadline))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
