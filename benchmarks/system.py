"""Scenarios that are not a timing loop: events that survive a storm (4), memory
per queued event and peak RSS (5), worker throughput to a null transport (7).

Each side is a job run in its own subprocess; it returns one JSON object.
"""

from __future__ import annotations

import resource
import tempfile
import time
import tracemalloc
from typing import Any

from ._fixtures import activate, empty, exception_with_frames, quiet_runtime, sentry_init
from ._registry import (
    Job,
    Mode,
    Results,
    Row,
    Scenario,
    Side,
    at_this_speed,
    fmt_bytes,
    fmt_ns,
    fmt_rate,
    median,
    median_of,
    ratio,
    scaled_target,
    scaled_verdict,
    verdict,
)
from .core import _calls

__all__ = ["memory", "scenarios", "storm", "worker_throughput"]

STORM = {"smoke": 1000, "quick": 20_000, "full": 100_000}
# sentry-sdk builds every event on the caller's thread (~2 ms here): fewer captures
STORM_PEER = {"smoke": 20, "quick": 200, "full": 2000}
QUEUED = {"smoke": 200, "quick": 2000, "full": 10_000}
# sentry-sdk at ~2-4 ms per capture: 10,000 would take most of a minute
QUEUED_PEER = {"smoke": 20, "quick": 200, "full": 2000}
TRACED_PEER = {"smoke": 20, "quick": 100, "full": 1000}  # of those, measured with tracemalloc
THROUGHPUT = {"smoke": 500, "quick": 5000, "full": 20_000}
THROUGHPUT_TARGET = 20_000.0
MEMORY_TARGET = 1024.0


def _raise_here(i: int) -> Exception:
    """A fresh exception from the same raise site each time (a storm, not one object)."""
    try:
        raise ValueError(f"order {i % 1} failed")
    except ValueError as exc:
        return exc


class _Keep:
    """A sentry-sdk transport that keeps (or counts) envelopes instead of sending them."""

    @staticmethod
    def make(keep: bool) -> Any:
        from sentry_sdk.transport import Transport

        class Keep(Transport):
            def __init__(self, options: Any = None) -> None:
                super().__init__(options)
                self.envelopes: list[Any] = []
                self.count = 0

            def capture_envelope(self, envelope: Any) -> None:
                self.count += 1
                if keep:
                    self.envelopes.append(envelope)

        return Keep


def _sentry(keep: bool) -> Any:
    """sentry-sdk with its defaults; when it keeps envelopes, without DedupeIntegration,
    which would drop every capture of the same exception object after the first."""
    import sentry_sdk
    from sentry_sdk.integrations.dedupe import DedupeIntegration

    sentry_init(
        dsn="https://key@sentry.invalid/1",
        transport=_Keep.make(keep),
        disabled_integrations=[DedupeIntegration()] if keep else None,
    )
    return sentry_sdk.get_client().transport


def storm(library: str, mode: Mode) -> dict[str, Any]:
    """``n`` captures of one error raised again and again at the same line."""
    if library == "sentry-sdk":
        import sentry_sdk

        n = STORM_PEER[mode]
        transport = _sentry(keep=False)
        t0 = time.perf_counter()
        for i in range(n):
            sentry_sdk.capture_exception(_raise_here(i))
        took = time.perf_counter() - t0
        return {"captures": n, "reached": transport.count, "seconds": took}
    import errwire
    from errwire._transport import MemoryTransport

    n = STORM[mode]
    runtime = quiet_runtime(queue_size=10_000)
    transport = runtime.transport
    assert isinstance(transport, MemoryTransport)
    activate(runtime)
    t0 = time.perf_counter()
    for i in range(n):
        errwire.capture_error(_raise_here(i))
    took = time.perf_counter() - t0
    runtime.worker_lane.start()
    assert runtime.flush(60.0)
    runtime.shutdown(5.0)
    return {
        "captures": n,
        "reached": len(transport.events),
        "seconds": took,
        "counters": runtime.counters(),
    }


def memory(library: str, mode: Mode) -> dict[str, Any]:
    """Bytes retained per queued event (the exception itself excluded), and the peak
    RSS of the process once it holds the full queue."""
    exc = exception_with_frames(10)
    if library == "sentry-sdk":
        import sentry_sdk

        n, traced = QUEUED_PEER[mode], TRACED_PEER[mode]
        transport = _sentry(keep=True)
        sentry_sdk.capture_exception(exc)  # warm caches
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for _ in range(traced):
            sentry_sdk.capture_exception(exc)
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        for _ in range(n - traced - 1):
            sentry_sdk.capture_exception(exc)
        n = max(n, traced + 1)  # the warm-up capture is held too
        held = len(transport.envelopes)
    else:
        import errwire

        n = traced = QUEUED[mode]
        runtime = quiet_runtime(storm_window_seconds=0, queue_size=n)
        activate(runtime)
        errwire.capture_error(exc)  # warm caches
        runtime.worker_lane.drain()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for _ in range(n):
            errwire.capture_error(exc, component="db", context={"table": "orders"})
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        held = runtime.worker_lane.depth
    assert held == n, (held, n)
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return {
        "bytes_per_event": grown / traced,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "events": n,
        "traced": traced,
    }


def worker_throughput(mode: Mode) -> dict[str, Any]:
    """Events per second from a full queue through every stage (with the real
    scrubber) to an in-memory transport."""
    import errwire
    from errwire._config import make_config
    from errwire._runtime import Runtime, default_scrubber
    from errwire._transport import MemoryTransport

    count = THROUGHPUT[mode]
    config = make_config(
        {
            "data_dir": tempfile.mkdtemp(prefix="errwire-bench-"),
            "queue_size": count,
            "storm_window_seconds": 0,
            "dedup_window_seconds": 0,
            "rate_limit_per_minute": 10**9,
        }
    )
    transport = MemoryTransport()
    runtime = Runtime(config, transport=transport, scrub=default_scrubber(config), autostart=False)
    activate(runtime)
    excs = [
        exception_with_frames(10, f"order {i} failed for user{i}@example.com") for i in range(100)
    ]
    for i in range(count):
        errwire.capture_error(excs[i % 100], component=f"c{i % 7}", context={"i": i})
    assert runtime.worker_lane.depth == count
    floor_before = _empty_call_ns()
    t0 = time.perf_counter()
    runtime.worker_lane.start()
    assert runtime.flush(300.0)
    elapsed = time.perf_counter() - t0
    floor = (floor_before + _empty_call_ns()) / 2
    assert len(transport.events) == count, len(transport.events)
    runtime.shutdown(5.0)
    return {
        "events_per_second": count / elapsed,
        "events": count,
        "seconds": elapsed,
        "floor_ns": floor,
    }


def _empty_call_ns(calls: int = 200_000, repeats: int = 5) -> float:
    """The language floor in this process, timed as the call-cost scenarios time it
    (``core._calls``: an empty function call with its loop; median of ``repeats``)."""
    exc = RuntimeError("floor")
    return median([_calls(empty, exc, calls) / calls * 1e9 for _ in range(repeats)])


def _storm_rows(results: Results) -> list[Row]:
    e, s = results["errwire"], results["sentry-sdk"]
    e_cap, s_cap = e[0]["captures"], s[0]["captures"]
    reached_e = median_of(e, "reached")
    reached_s = median_of(s, "reached")
    return [
        Row(
            "4",
            f"storm: events that reach the transport (one error raised again and again, "
            f"errwire {e_cap:,} captures, sentry-sdk {s_cap:,})",
            f"{reached_e:,.0f} of {e_cap:,}",
            "sentry-sdk, defaults, counting transport",
            f"{reached_s:,.0f} of {s_cap:,}",
            ratio(reached_e / e_cap, reached_s / s_cap),
        )
    ]


def _memory_rows(results: Results) -> list[Row]:
    e, s = results["errwire"], results["sentry-sdk"]
    per_e = median_of(e, "bytes_per_event")
    per_s = median_of(s, "bytes_per_event")
    rss_e = median_of(e, "peak_rss_bytes")
    rss_s = median_of(s, "peak_rss_bytes")
    n_e, n_s, traced_s = e[0]["events"], s[0]["events"], s[0]["traced"]
    return [
        Row(
            "5",
            "memory per queued event, 10-frame error (tracemalloc)",
            fmt_bytes(per_e),
            f"sentry-sdk, defaults but DedupeIntegration off: envelopes kept by its transport "
            f"({traced_s:,} traced)",
            fmt_bytes(per_s),
            ratio(per_e, per_s),
            target=f"<= {fmt_bytes(MEMORY_TARGET)}",
            result=verdict(per_e <= MEMORY_TARGET),
        ),
        Row(
            "5",
            f"peak RSS of a process holding a full queue (errwire {n_e:,} events, "
            f"sentry-sdk {n_s:,})",
            fmt_bytes(rss_e),
            "sentry-sdk, defaults: envelopes kept by its transport",
            fmt_bytes(rss_s),
            ratio(rss_e, rss_s) if n_e == n_s else "",
        ),
    ]


def _throughput_rows(results: Results) -> list[Row]:
    runs = results["errwire"]
    eps = median_of(runs, "events_per_second")
    target = f">= {fmt_rate(THROUGHPUT_TARGET)}"
    result = verdict(eps >= THROUGHPUT_TARGET)
    floor_text = over = ""
    if all("floor_ns" in run for run in runs):  # judged at this machine's speed
        floor = median_of(runs, "floor_ns")
        scaled = at_this_speed(THROUGHPUT_TARGET, floor, rate=True)
        floor_text, over = fmt_ns(floor), f"{1e9 / eps / floor:.0f}x"
        result = scaled_verdict(verdict(eps >= scaled), result, target)
        target = scaled_target(target, floor, fmt_rate(scaled))
    return [
        Row(
            "7",
            f"worker throughput to MemoryTransport, which keeps every payload "
            f"({runs[0]['events']:,} queued events, every stage, the real scrubber)",
            fmt_rate(eps),
            "n/a: sentry-sdk builds and serialises events on the caller's thread (row 3); "
            "its worker only sends (next row)",
            floor=floor_text,
            over_floor=over,
            target=target,
            result=result,
        )
    ]


def scenarios(mode: Mode) -> list[Scenario]:
    def side(label: str, function: str, **kwargs: Any) -> Side:
        return Side(label, Job("benchmarks.system", function, {"mode": mode, **kwargs}))

    rounds = 2 if mode == "full" else 1
    return [
        Scenario(
            "4-storm-reached",
            [side("errwire", "storm", library="errwire"),
             side("sentry-sdk", "storm", library="sentry-sdk")],
            _storm_rows,
        ),
        Scenario(
            "5-memory",
            [side("errwire", "memory", library="errwire"),
             side("sentry-sdk", "memory", library="sentry-sdk")],
            _memory_rows,
        ),
        Scenario(
            "7-worker-null",
            [side("errwire", "worker_throughput")],
            _throughput_rows,
            rounds=rounds,
        ),
    ]  # fmt: skip
