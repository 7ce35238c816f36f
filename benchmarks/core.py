"""Core benchmarks, timed by pyperf (each benchmark in its own worker processes).

Run through ``python -m benchmarks`` (which also prints the table); running
this file directly accepts pyperf's options (``--fast``, ``-o results.json``).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

import pyperf

import errwire
from errwire._clock import SystemClock
from errwire._dedup import Deduplicator

from ._fixtures import activate, empty, exception_with_frames, quiet_runtime

Bench = Callable[[int], float]
_CHUNK = 5000  # stay below the queue bound so every capture takes the enqueue path


def _calls(fn: Callable[[BaseException], object], exc: BaseException, loops: int) -> float:
    """Seconds for ``loops`` calls of ``fn(exc)``: the loop every call-cost scenario times."""
    t0 = time.perf_counter()
    for _ in range(loops):
        fn(exc)
    return time.perf_counter() - t0


def floor_empty_call() -> Bench:
    exc = exception_with_frames(10)

    def run(loops: int) -> float:
        return _calls(empty, exc, loops)

    return run


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


def floor_dict_lookup() -> Bench:
    table = {f"{i:032x}": i for i in range(10_000)}
    key = f"{1234:032x}"

    def run(loops: int) -> float:
        get = table.get
        t0 = time.perf_counter()
        for _ in range(loops):
            get(key)
        return time.perf_counter() - t0

    return run


def disabled_capture(depth: int) -> Callable[[], Bench]:
    def make() -> Bench:
        exc = exception_with_frames(depth)

        def run(loops: int) -> float:
            activate(None)
            return _calls(errwire.capture_error, exc, loops)

        return run

    return make


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


def enabled_capture(depth: int) -> Callable[[], Bench]:
    def make() -> Bench:
        exc = exception_with_frames(depth)
        runtime = quiet_runtime(storm_window_seconds=0, queue_size=_CHUNK + 10)

        def run(loops: int) -> float:
            activate(runtime)
            capture = errwire.capture_error
            total = 0.0
            for start in range(0, loops, _CHUNK):
                t0 = time.perf_counter()
                for _ in range(min(_CHUNK, loops - start)):
                    capture(exc)
                total += time.perf_counter() - t0
                runtime.worker_lane.drain()
            return total

        return run

    return make


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
        publish = runtime.bus.publish
        total = 0.0
        for start in range(0, loops, _CHUNK):
            t0 = time.perf_counter()
            for _ in range(min(_CHUNK, loops - start)):
                publish(raw)
            total += time.perf_counter() - t0
            runtime.worker_lane.drain()
        return total

    return run


def dedup_check(mix: str) -> Callable[[], Bench]:
    def make() -> Bench:
        keys = [f"{i:032x}" for i in range(10_000)]

        def run(loops: int) -> float:
            dedup = Deduplicator(300, 10_000, SystemClock())
            check = dedup.check
            if mix == "duplicate":
                picks = [keys[0]] * 1000
            elif mix == "unique":
                picks = keys[:1000]
            else:  # 80 % duplicates
                picks = [keys[0] if i % 5 else keys[i] for i in range(1000)]
            total = 0.0
            for start in range(0, loops, 1000):
                batch = picks[: min(1000, loops - start)]
                t0 = time.perf_counter()
                for key in batch:
                    check(key)
                total += time.perf_counter() - t0
            return total

        return run

    return make


def sentry_uninitialised(depth: int) -> Callable[[], Bench]:
    def make() -> Bench:
        import sentry_sdk

        exc = exception_with_frames(depth)

        def run(loops: int) -> float:
            return _calls(sentry_sdk.capture_exception, exc, loops)

        return run

    return make


def sentry_enabled(depth: int, local_variables: bool) -> Callable[[], Bench]:
    """sentry-sdk initialised with its default options and a transport that discards:
    what the caller's thread pays per captured exception."""

    def make() -> Bench:
        import sentry_sdk
        from sentry_sdk.transport import Transport

        class Discard(Transport):
            def capture_envelope(self, envelope: object) -> None:
                return None

        sentry_sdk.init(
            dsn="https://key@sentry.invalid/1",
            transport=Discard,
            include_local_variables=local_variables,
        )
        exc = exception_with_frames(depth)

        def run(loops: int) -> float:
            activate(None)
            return _calls(sentry_sdk.capture_exception, exc, loops)

        return run

    return make


SCENARIOS: dict[str, Callable[[], Bench]] = {
    "floor: empty function call": floor_empty_call,
    "floor: SimpleQueue.put": floor_simplequeue_put,
    "floor: dict lookup": floor_dict_lookup,
    "disabled capture_error, 3 frames": disabled_capture(3),
    "disabled capture_error, 20 frames": disabled_capture(20),
    "disabled builder chain": disabled_builder,
    "enabled capture_error, 3 frames": enabled_capture(3),
    "enabled capture_error, 10 frames": enabled_capture(10),
    "enabled capture_error, 20 frames": enabled_capture(20),
    "storm guard: duplicate folded": storm_duplicate,
    "bus publish": bus_publish,
    "dedup check, unique": dedup_check("unique"),
    "dedup check, duplicate": dedup_check("duplicate"),
    "dedup check, 80% duplicate": dedup_check("mix"),
}

PEERS: dict[str, Callable[[], Bench]] = {
    "sentry-sdk capture_exception uninitialised, 3 frames": sentry_uninitialised(3),
    "sentry-sdk capture_exception uninitialised, 20 frames": sentry_uninitialised(20),
    "sentry-sdk capture_exception enabled, 3 frames": sentry_enabled(3, True),
    "sentry-sdk capture_exception enabled, 10 frames": sentry_enabled(10, True),
    "sentry-sdk capture_exception enabled, 10 frames, no locals": sentry_enabled(10, False),
    "sentry-sdk capture_exception enabled, 20 frames": sentry_enabled(20, True),
}


def main() -> None:
    runner = pyperf.Runner(program_args=("-m", "benchmarks.core"))
    runner.metadata["description"] = "errwire core benchmarks"
    scenarios = dict(SCENARIOS)
    try:
        import sentry_sdk  # noqa: F401
    except ImportError:
        pass
    else:
        scenarios.update(PEERS)
    for name, make in scenarios.items():
        # build lazily: pyperf runs one benchmark per worker process, and a
        # sentry_sdk.init() in one scenario must not leak into the others
        runner.bench_time_func(name, _lazy(make))


def _lazy(make: Callable[[], Bench]) -> Bench:
    built: list[Bench] = []

    def run(loops: int) -> float:
        if not built:
            built.append(make())
        return built[0](loops)

    return run


if __name__ == "__main__":
    main()
