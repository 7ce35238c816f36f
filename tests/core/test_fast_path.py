"""The promise when telemetry is off: one call, one flag check, nothing allocated."""

from __future__ import annotations

import gc
import sys
import threading
import tracemalloc
import weakref

import errwire
from errwire import _api
from errwire._builder import NOOP_BUILDER

from .conftest import MakeRuntime, raise_depth


def _errwire_bytes(snapshot: tracemalloc.Snapshot) -> int:
    filters = [tracemalloc.Filter(True, "*errwire*")]
    return sum(stat.size for stat in snapshot.filter_traces(filters).statistics("filename"))


def _no_errwire_threads_left() -> bool:
    """tracemalloc sees every thread: an idle worker left by another test would count."""
    for thread in threading.enumerate():
        if thread.name.startswith("errwire-"):
            thread.join(5.0)
    return not any(t.name.startswith("errwire-") and t.is_alive() for t in threading.enumerate())


def test_disabled_capture_allocates_nothing() -> None:
    assert not errwire.is_enabled()
    assert _no_errwire_threads_left()
    exc = raise_depth(10)
    ctx = {"table": "t"}
    capture_error = errwire.capture_error
    capture_message = errwire.capture_message
    error = errwire.error
    # warm up so one-time work (interning, caches) is not counted
    for _ in range(100):
        capture_error(exc, component="db", context=ctx)
    # A tracer (coverage) allocates its own bookkeeping while an errwire frame runs,
    # and tracemalloc would blame errwire for it: measure untraced.
    tracer = sys.gettrace()
    sys.settrace(None)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(100_000):
            capture_error(exc, component="db", category="database", context=ctx)
            capture_message("hello", level="warning")
            error(exc).component("db").category("database").priority("high").build()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
        sys.settrace(tracer)
    assert _errwire_bytes(after) - _errwire_bytes(before) == 0
    grown = [
        s
        for s in after.compare_to(before, "filename")
        if "errwire" in str(s.traceback) and s.size_diff > 0
    ]
    assert grown == []


def test_disabled_builder_is_a_shared_noop() -> None:
    builder = errwire.error(ValueError("x"))
    assert builder is NOOP_BUILDER
    assert builder.component("a").category("b").priority("c").context(k=1) is NOOP_BUILDER
    assert builder.build() is None  # type: ignore[func-returns-value]
    assert builder.exception() is None  # type: ignore[func-returns-value]


def test_disabled_capture_returns_false_and_touches_nothing(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(enabled=False)
    _api.install(runtime)
    assert errwire.capture_error(ValueError("x")) is False
    assert errwire.capture_message("x") is False
    assert runtime.counters()["captured"] == 0


def test_capture_does_not_keep_the_traceback_alive(make_runtime: MakeRuntime, walk: str) -> None:
    runtime = make_runtime()
    _api.install(runtime)

    class Sentinel:
        pass

    class Boom(RuntimeError):
        pass

    def fail() -> None:
        local = Sentinel()  # a frame local that must not outlive the capture
        refs.append(weakref.ref(local))
        raise Boom("kept?")

    refs: list[weakref.ref[Sentinel]] = []
    try:
        fail()
    except Boom as exc:
        assert errwire.capture_error(exc, context={"k": "v"})
        exc_ref = weakref.ref(exc)
        del exc
    gc.collect()
    assert refs[0]() is None  # the frame's locals are gone, so the frame is too
    assert exc_ref() is None  # and so are the exception and its traceback
    # still deliverable after the frames are gone
    runtime.worker_lane.process_pending()
    events = runtime.transport.events  # type: ignore[attr-defined]
    assert events[0]["exception"]["stack"][-1]["function"].endswith("fail")
