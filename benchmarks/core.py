"""Call-cost scenarios (1-4, 6), each side timed by pyperf in its own process.

Every side is one pyperf benchmark run in-process (``--in-process``: pyperf
calibrates the loop count, runs warmups, then takes its values) in a fresh
subprocess started by the runner; the runner interleaves the sides round by
round. Values are seconds per loop; the table shows medians.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import errwire
from errwire._clock import SystemClock
from errwire._dedup import Deduplicator
from errwire._runtime import Runtime

from ._fixtures import activate, empty, exception_with_frames, quiet_runtime, sentry_init
from ._pyperf import Bench, time_benches
from ._registry import (
    Job,
    Mode,
    Results,
    Row,
    Scenario,
    Side,
    fmt_ns,
    median,
    ratio,
    verdict,
)

__all__ = ["BENCHES", "scenarios", "time_group"]

_CHUNK = 5000  # stay below the queue bound so every capture takes the enqueue path
THREADS = 4

_ROUNDS: dict[str, int] = {"smoke": 1, "quick": 1, "full": 3}


def _calls(fn: Callable[[Any], object], arg: Any, loops: int) -> float:
    """Seconds for ``loops`` calls of ``fn(arg)``: the loop every call-cost side times."""
    t0 = time.perf_counter()
    for _ in range(loops):
        fn(arg)
    return time.perf_counter() - t0


def _queued_calls(fn: Callable[[Any], object], arg: Any, loops: int, runtime: Runtime) -> float:
    """``_calls`` for calls that enqueue: timed in chunks below the queue bound, the
    queue drained (untimed) between chunks, so every call takes the enqueue path."""
    total = 0.0
    for start in range(0, loops, _CHUNK):
        total += _calls(fn, arg, min(_CHUNK, loops - start))
        runtime.worker_lane.drain()
    return total


# -- floors --------------------------------------------------------------------------------


def floor_empty_call() -> Bench:
    exc = exception_with_frames(10)
    return lambda loops: _calls(empty, exc, loops)


def floor_simplequeue_put() -> Bench:
    exc = exception_with_frames(10)

    def run(loops: int) -> float:
        total = 0.0
        for start in range(0, loops, _CHUNK):
            q: queue.SimpleQueue[object] = queue.SimpleQueue()
            put = q.put
            t0 = time.perf_counter()
            for _ in range(min(_CHUNK, loops - start)):
                put(exc)
            total += time.perf_counter() - t0
        return total

    return run


_TABLE = {f"{i:032x}": i for i in range(10_000)}


def _dict_lookups(loops: int) -> float:
    key = f"{1234:032x}"
    get = _TABLE.get
    t0 = time.perf_counter()
    for _ in range(loops):
        get(key)
    return time.perf_counter() - t0


def floor_dict_lookup() -> Bench:
    return _dict_lookups


_MIN_SHARE = 20_000  # calls per thread: starting the threads must not count


def _threaded(work: Callable[[int], object], loops: int) -> float:
    """Wall seconds per ``loops`` calls of the work, ``THREADS`` threads sharing
    at least ``THREADS * _MIN_SHARE`` calls (scaled to ``loops``)."""
    share = max(_MIN_SHARE, loops // THREADS)
    threads = [threading.Thread(target=work, args=(share,)) for _ in range(THREADS)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - t0) * loops / (share * THREADS)


def floor_dict_lookup_threads() -> Bench:
    return lambda loops: _threaded(_dict_lookups, loops)


# -- errwire ---------------------------------------------------------------------------------


def disabled_capture(depth: int) -> Bench:
    exc = exception_with_frames(depth)

    def run(loops: int) -> float:
        activate(None)
        return _calls(errwire.capture_error, exc, loops)

    return run


def disabled_builder() -> Bench:
    exc = exception_with_frames(10)

    def run(loops: int) -> float:
        activate(None)
        error = errwire.error
        ctx = {"table": "orders"}
        t0 = time.perf_counter()
        for _ in range(loops):
            error(exc).component("db").category("database").context(ctx).build()
        return time.perf_counter() - t0

    return run


def enabled_capture(depth: int) -> Bench:
    exc = exception_with_frames(depth)
    runtime = quiet_runtime(storm_window_seconds=0, queue_size=_CHUNK + 10)

    def run(loops: int) -> float:
        activate(runtime)
        return _queued_calls(errwire.capture_error, exc, loops, runtime)

    return run


def storm_duplicate() -> Bench:
    exc = exception_with_frames(10)
    runtime = quiet_runtime(storm_window_seconds=3600)

    def run(loops: int) -> float:
        activate(runtime)
        return _calls(errwire.capture_error, exc, loops)

    return run


def bus_publish() -> Bench:
    runtime = quiet_runtime(queue_size=_CHUNK + 10)
    raw = ("message", "error", None, "m", (), (), None, None, None, None, None, 0.0, 0)

    def run(loops: int) -> float:
        return _queued_calls(runtime.bus.publish, raw, loops, runtime)

    return run


def _picks(mix: str) -> list[str]:
    keys = [f"{i:032x}" for i in range(10_000)]
    if mix == "duplicate":
        return [keys[0]] * 1000
    if mix == "unique":
        return keys[:1000]
    return [keys[0] if i % 5 else keys[i] for i in range(1000)]  # 80 % duplicates


def dedup_check(mix: str, threads: bool = False) -> Bench:
    picks = _picks(mix)

    def checks(dedup: Deduplicator, loops: int) -> float:
        check = dedup.check
        total = 0.0
        for start in range(0, loops, 1000):
            batch = picks[: min(1000, loops - start)]
            t0 = time.perf_counter()
            for key in batch:
                check(key)
            total += time.perf_counter() - t0
        return total

    def run(loops: int) -> float:
        dedup = Deduplicator(300, 10_000, SystemClock())
        if threads:
            return _threaded(lambda n: checks(dedup, n), loops)
        return checks(dedup, loops)

    return run


# -- sentry-sdk ------------------------------------------------------------------------------


def sentry_uninitialised(depth: int) -> Bench:
    import sentry_sdk

    exc = exception_with_frames(depth)
    return lambda loops: _calls(sentry_sdk.capture_exception, exc, loops)


def sentry_dsn_none(depth: int) -> Bench:
    """``sentry_sdk.init(dsn=None)``: how its docs say to keep the SDK installed but off."""
    import sentry_sdk

    sentry_init(dsn=None)
    exc = exception_with_frames(depth)
    return lambda loops: _calls(sentry_sdk.capture_exception, exc, loops)


def sentry_enabled(depth: int, local_variables: bool = True) -> Bench:
    """sentry-sdk with its default options and a transport that discards: what the
    caller's thread pays per captured exception."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    class Discard(Transport):
        def capture_envelope(self, envelope: object) -> None:
            return None

    sentry_init(
        dsn="https://key@sentry.invalid/1",
        transport=Discard,
        include_local_variables=local_variables,
    )
    exc = exception_with_frames(depth)
    return lambda loops: _calls(sentry_sdk.capture_exception, exc, loops)


BENCHES: dict[str, Callable[[], Bench]] = {
    "floor: empty call": floor_empty_call,
    "floor: SimpleQueue.put": floor_simplequeue_put,
    "floor: dict lookup": floor_dict_lookup,
    "floor: dict lookup, 4 threads": floor_dict_lookup_threads,
    "errwire: disabled builder": disabled_builder,
    "errwire: storm duplicate": storm_duplicate,
    "errwire: bus publish": bus_publish,
    "sentry-sdk: storm duplicate": partial(sentry_enabled, 10),
}
for _depth in (3, 10, 20):
    BENCHES[f"errwire: disabled capture, {_depth}"] = partial(disabled_capture, _depth)
    BENCHES[f"errwire: enabled capture, {_depth}"] = partial(enabled_capture, _depth)
    BENCHES[f"sentry-sdk: uninitialised, {_depth}"] = partial(sentry_uninitialised, _depth)
    BENCHES[f"sentry-sdk: init(dsn=None), {_depth}"] = partial(sentry_dsn_none, _depth)
    BENCHES[f"sentry-sdk: enabled, {_depth}"] = partial(sentry_enabled, _depth)
    BENCHES[f"sentry-sdk: enabled no locals, {_depth}"] = partial(
        sentry_enabled, _depth, local_variables=False
    )
for _mix in ("unique", "duplicate", "mix"):
    BENCHES[f"errwire: dedup {_mix}"] = partial(dedup_check, _mix)
BENCHES["errwire: dedup mix, 4 threads"] = partial(dedup_check, "mix", threads=True)


def time_group(benches: list[str], mode: Mode) -> dict[str, Any]:
    """pyperf benchmarks of ``BENCHES[name]`` for each name, in this process."""
    return time_benches({name: BENCHES[name] for name in benches}, mode)


# -- scenarios -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    """One comparison: errwire's bench, the floor's, and each peer's
    (side label, how the peer is configured, bench)."""

    number: str
    title: str
    errwire: str
    floor: tuple[str, str] | None
    peers: tuple[tuple[str, str, str], ...] = ()
    na: str = ""
    target: str = ""
    check: Callable[[float, float | None], bool] | None = None


def _med(results: Results, side: str, bench: str) -> float:
    return median([v for r in results[side] for v in r[bench]["values_ns"]])


def _group(key: str, lines: list[_Line], mode: Mode) -> Scenario:
    """A scenario whose sides each time their benches of ``lines`` under pyperf, in
    one process per side: errwire, the floor, and one per peer configuration."""
    benches: dict[str, list[str]] = {"errwire": [], "floor": []}
    for line in lines:
        benches["errwire"].append(line.errwire)
        if line.floor:
            benches["floor"].append(line.floor[1])
        for side, _, bench in line.peers:
            benches.setdefault(side, []).append(bench)
    sides = [
        Side(label, Job("benchmarks.core", "time_group", {"benches": names, "mode": mode}))
        for label, names in benches.items()
        if names
    ]

    def rows(results: Results) -> list[Row]:
        out = []
        for line in lines:
            value = _med(results, "errwire", line.errwire)
            floor = _med(results, "floor", line.floor[1]) if line.floor else None
            over = _per_round(results, "floor", line.floor[1], line.errwire) if line.floor else None
            common = {
                "number": line.number,
                "scenario": line.title,
                "errwire": fmt_ns(value),
                "floor": f"{fmt_ns(floor)} ({line.floor[0]})" if line.floor and floor else "",
                "over_floor": f"{over:.2f}x" if over else "",
                "target": line.target,
                "result": verdict(line.check(value, over)) if line.check else "",
            }
            if not line.peers:
                out.append(Row(peer=f"n/a: {line.na}" if line.na else "", **common))
            for side, text, bench in line.peers:
                peer = _med(results, side, bench)
                cheaper = _per_round(results, side, bench, line.errwire, inverse=True)
                out.append(
                    Row(peer=text, peer_value=fmt_ns(peer), ratio=ratio(1.0, cheaper), **common)
                )
        return out

    return Scenario(key, sides, rows, rounds=_ROUNDS[mode])


def _per_round(
    results: Results, side: str, bench: str, errwire: str, *, inverse: bool = False
) -> float:
    """errwire over another side (inverse: the other side over errwire), per round, then
    the median: the sides of a round ran back to back, so the machine's drift between
    rounds cancels in each round's ratio."""
    ratios = []
    for mine, theirs in zip(results["errwire"], results[side], strict=True):
        a, b = median(mine[errwire]["values_ns"]), median(theirs[bench]["values_ns"])
        ratios.append(b / a if inverse else a / b)
    return median(ratios)


def _within_floor(limit: float) -> Callable[[float, float | None], bool]:
    """``check(value, errwire / floor)``: within ``limit`` times the floor."""
    return lambda _value, over: over is not None and over <= limit


def _at_most(ns: float) -> Callable[[float, float | None], bool]:
    return lambda value, _over: value <= ns


def scenarios(mode: Mode) -> list[Scenario]:
    empty_call = ("empty function call", "floor: empty call")
    put = ("SimpleQueue.put", "floor: SimpleQueue.put")
    lookup = ("dict lookup", "floor: dict lookup")
    no_keyed_dedup = "sentry-sdk dedups only the same exception object, no keyed window"
    disabled = [
        _Line(
            "1", f"capture when disabled, {depth} frames", f"errwire: disabled capture, {depth}",
            empty_call,
            (("sentry-sdk not initialised", "sentry-sdk, not initialised",
              f"sentry-sdk: uninitialised, {depth}"),
             ("sentry-sdk dsn=None", "sentry-sdk, init(dsn=None)",
              f"sentry-sdk: init(dsn=None), {depth}")),
            target="<= 1.5x empty call", check=_within_floor(1.5),
        )
        for depth in (3, 20)
    ]  # fmt: skip
    disabled.append(
        _Line(
            "2", "builder chain when disabled (error().component().category().context().build())",
            "errwire: disabled builder", empty_call, na="sentry-sdk has no event builder",
        )
    )  # fmt: skip
    enabled = [
        _Line(
            "3", f"capture when enabled, caller's thread, {depth} frames",
            f"errwire: enabled capture, {depth}", put,
            (("sentry-sdk defaults", "sentry-sdk, defaults, discarding transport",
              f"sentry-sdk: enabled, {depth}"),
             ("sentry-sdk no locals",
              "sentry-sdk, include_local_variables=False, discarding transport",
              f"sentry-sdk: enabled no locals, {depth}")),
            target="<= 3 µs" if depth == 10 else "",
            check=_at_most(3000) if depth == 10 else None,
        )
        for depth in (3, 10, 20)
    ]  # fmt: skip
    enabled.append(
        _Line(
            "4", "storm: caller's cost per duplicate capture (same exception, 10 frames)",
            "errwire: storm duplicate", put,
            (("sentry-sdk defaults",
              "sentry-sdk, defaults (DedupeIntegration drops it after building the event)",
              "sentry-sdk: storm duplicate"),),
        )
    )  # fmt: skip
    stages = [
        _Line("6", "bus publish", "errwire: bus publish", put, na="sentry-sdk has no event bus",
              target="seed: < 500 ns (compiled language)"),
    ]  # fmt: skip
    for mix, title in (
        ("unique", "dedup check, unique"),
        ("duplicate", "dedup check, duplicate"),
        ("mix", "dedup check, 80% duplicate"),
    ):
        stages.append(
            _Line("6", title, f"errwire: dedup {mix}", lookup, na=no_keyed_dedup,
                  target="seed: < 100 ns (compiled language)")
        )  # fmt: skip
    stages.append(
        _Line(
            "6", "dedup check, 80% duplicate, 4 threads sharing one deduplicator",
            "errwire: dedup mix, 4 threads",
            ("dict lookup, 4 threads", "floor: dict lookup, 4 threads"),
            na=no_keyed_dedup, target="seed: < 100 ns (compiled language)",
        )
    )  # fmt: skip
    return [
        _group("1-2-disabled", disabled, mode),
        _group("3-4-enabled", enabled, mode),
        _group("6-bus-dedup", stages, mode),
    ]
