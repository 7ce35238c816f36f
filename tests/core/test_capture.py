"""What the caller's thread captures, including from hostile exceptions."""

from __future__ import annotations

import builtins
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import errwire
from errwire import _api
from errwire._config import make_config
from errwire._event import LEVELS, Event, safe_message, snapshot_chain
from errwire._runtime import Runtime
from errwire._transport import MemoryTransport

from .conftest import MakeRuntime, raise_depth


@pytest.fixture
def events(make_runtime: MakeRuntime, walk: str) -> Iterator[list[dict[str, Any]]]:
    runtime = make_runtime(storm_window_seconds=0)
    _api.install(runtime)

    class View(list[dict[str, Any]]):
        def refresh(self) -> View:
            runtime.worker_lane.process_pending()
            self[:] = runtime.transport.events  # type: ignore[attr-defined]
            return self

    yield View()


def test_exception_payload_shape(events: Any) -> None:
    exc = raise_depth(3, "order 42 failed")
    assert errwire.capture_error(
        exc, component="shop", category="orders", context={"order": 42}, priority="high"
    )
    (payload,) = events.refresh()
    json.dumps(payload)  # JSON-safe
    assert payload["exception"]["type"] == "builtins.ValueError"
    assert payload["exception"]["value"] == "order 42 failed"
    assert payload["level"] == "error"
    assert payload["component"] == "shop"
    assert payload["category"] == "orders"
    assert payload["priority"] == "high"
    assert payload["context"] == {"order": 42}
    assert payload["tags"] == {
        "component": "shop",
        "category": "orders",
        "priority": "high",
        "error_origin": "exception",
    }
    stack = payload["exception"]["stack"]
    assert [f["function"].rsplit(".", 1)[-1] for f in stack[-3:]] == ["dive", "dive", "dive"]
    assert stack[-1]["lineno"] > 0
    assert stack[-1]["in_app"] is True
    assert stack[-1]["module"] == __name__.replace("test_capture", "conftest")
    assert len(payload["event_id"]) == 32
    assert payload["fingerprint"]


def test_component_and_category_are_detected(events: Any) -> None:
    errwire.capture_error(raise_depth(2, exc_type=ConnectionRefusedError))
    errwire.capture_error(raise_depth(2, exc_type=FileNotFoundError))
    errwire.capture_error(raise_depth(2, exc_type=TimeoutError))
    errwire.capture_error(raise_depth(2, exc_type=KeyError))
    got = [(p["category"], p["component"]) for p in events.refresh()]
    assert [c for c, _ in got] == ["network", "file-io", "timeout", "lookup"]
    assert {comp for _, comp in got} == {"tests"}  # top-level package of the in-app frame


def test_component_map_wins(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(component_map={"tests.core": "core-tests"}, storm_window_seconds=0)
    _api.install(runtime)
    errwire.capture_error(raise_depth(2))
    runtime.worker_lane.process_pending()
    assert runtime.transport.events[0]["component"] == "core-tests"  # type: ignore[attr-defined]


def test_message_capture(events: Any) -> None:
    assert errwire.capture_message(
        "disk almost full", level="warning", component="ops", context={"pct": 91}
    )
    (payload,) = events.refresh()
    assert payload["exception"] is None
    assert payload["message"] == "disk almost full"
    assert payload["level"] == "warning"
    assert payload["origin"] == "message"
    assert payload["category"] == "message"


def test_unknown_level_falls_back_without_raising(events: Any) -> None:
    assert errwire.capture_error(ValueError("x"), level="catastrophic")
    assert errwire.capture_message("y", level="loud")
    assert [p["level"] for p in events.refresh()] == ["error", "info"]


class _RaisingStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class _RaisingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _cyclic() -> BaseException:
    a = ValueError("a")
    b = KeyError("b")
    a.__cause__ = b
    b.__cause__ = a
    a.__context__ = b
    return a


def _group() -> BaseException:
    group = builtins.ExceptionGroup  # Python 3.11+; the suite runs on 3.11
    try:
        raise group("many", [ValueError("one"), TypeError("two")])
    except group as eg:
        return eg


HOSTILE: list[tuple[str, Any]] = [
    ("raising __str__", _RaisingStr),
    ("10 MB message", lambda: ValueError("x" * 10_000_000)),
    ("cyclic cause", _cyclic),
    ("exception group", _group),
    ("non-UTF-8 bytes", lambda: ValueError(b"\xff\xfe\x80 bad bytes")),
    ("lone surrogate", lambda: ValueError("bad \udcff text")),
    ("unreprable arg", lambda: ValueError(_RaisingRepr())),
]


@pytest.mark.parametrize(("name", "factory"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_exceptions_are_captured_safely(events: Any, name: str, factory: Any) -> None:
    exc = factory()
    assert (
        errwire.capture_error(exc, context={"weird": _RaisingRepr(), "blob": b"\x00\xff"}) is True
    )
    (payload,) = events.refresh()
    text = json.dumps(payload)  # serialisable, whatever went in
    assert len(text) < 200_000
    assert payload["exception"]["type"].endswith(type(exc).__name__)


def test_ten_megabyte_message_is_bounded() -> None:
    text = safe_message(ValueError("x" * 10_000_000), 100)
    assert text.startswith("x" * 100)
    assert text.endswith("[9999900 chars truncated]")


def test_cyclic_chain_terminates() -> None:
    chain = snapshot_chain(_cyclic(), 5, 100, 10)
    assert [c[0] for c in chain] == [KeyError]


def test_chain_order_and_relations() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("outer") from inner
    except ValueError as outer:
        chain = snapshot_chain(outer, 5, 100, 10)
    assert [(c[0], c[3]) for c in chain] == [(KeyError, "cause")]
    try:
        try:
            raise KeyError("first")
        except KeyError:
            raise ValueError("during handling")  # noqa: B904
    except ValueError as outer:
        chain = snapshot_chain(outer, 5, 100, 10)
    assert [(c[0], c[3]) for c in chain] == [(KeyError, "context")]


def test_group_members_are_in_the_chain(events: Any) -> None:
    errwire.capture_error(_group())
    (payload,) = events.refresh()
    assert [(c["type"], c["relation"]) for c in payload["chain"]] == [
        ("builtins.ValueError", "group"),
        ("builtins.TypeError", "group"),
    ]


def test_context_is_bounded_and_copied(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(max_context_keys=3)
    _api.install(runtime)
    ctx: dict[str, object] = {f"k{i}": i for i in range(10)}
    errwire.capture_error(ValueError("x"), context=ctx)
    ctx["k0"] = "changed after capture"
    runtime.worker_lane.process_pending()
    payload = runtime.transport.events[0]  # type: ignore[attr-defined]
    assert payload["context"] == {"k0": 0, "k1": 1, "k2": 2}


def test_request_snapshot_is_taken_only_on_capture(events: Any) -> None:
    calls: list[int] = []

    class Snap:
        def extract(self) -> dict[str, Any]:
            calls.append(1)
            return {"method": "GET", "route": "/items/<id>", "path": "/items/3"}

    with errwire.request_scope(Snap()):
        assert calls == []
        errwire.capture_error(ValueError("in request"))
    errwire.capture_error(ValueError("outside"))
    first, second = events.refresh()
    assert calls == [1]
    assert first["request"]["route"] == "/items/<id>"
    assert second["request"] is None


def test_broken_request_snapshot_is_an_internal_error_not_a_crash(
    events: Any, allow_internal_errors: list[Any]
) -> None:
    class Broken:
        def extract(self) -> dict[str, Any]:
            raise RuntimeError("request gone")

    with errwire.request_scope(Broken()):
        assert errwire.capture_error(ValueError("x"))
    (payload,) = events.refresh()
    assert payload["request"] is None
    assert allow_internal_errors and allow_internal_errors[0][0] == "request snapshot"


def test_storm_guard_folds_repeats_of_one_site(
    make_runtime: MakeRuntime, clock: Any, walk: str
) -> None:
    runtime = make_runtime()
    _api.install(runtime)

    def fail() -> None:
        raise ValueError("same site")

    for _ in range(1000):
        try:
            fail()
        except ValueError as exc:
            errwire.capture_error(exc)
    assert runtime.worker_lane.depth == 1
    assert runtime.storm.folded.value == 999
    runtime.worker_lane.process_pending()
    clock.advance(1.5)  # past the storm window: enqueued, carrying the 999 folds ...
    try:
        fail()
    except ValueError as exc:
        errwire.capture_error(exc)
    runtime.worker_lane.process_pending()
    clock.advance(301)  # ... suppressed by dedup (same fingerprint), then the window ends
    try:
        fail()
    except ValueError as exc:
        errwire.capture_error(exc)
    runtime.worker_lane.process_pending()
    first, second = runtime.transport.events  # type: ignore[attr-defined]
    assert (first["repeats"], first["suppressed"]) == (0, 0)
    assert (second["repeats"], second["suppressed"]) == (0, 1000)  # 999 folds + 1 dedup
    c = runtime.counters()
    assert c["captured"] == 1002
    assert c["deduplicated"] == 1000
    assert c["delivered"] == 2


class SteppedClock:
    """A wall clock that can be stepped backwards (NTP, a VM restored from a snapshot)."""

    def __init__(self) -> None:
        self.wall = 1_700_000_000.0

    def monotonic(self) -> float:
        return 1000.0

    def time(self) -> float:
        return self.wall


def test_storm_guard_never_holds_a_site_back_when_the_clock_steps_back(
    data_dir: str, walk: str
) -> None:
    clock = SteppedClock()
    runtime = Runtime(
        make_config({"data_dir": data_dir}),
        transport=MemoryTransport(),
        clock=clock,
        scrub=lambda payload: payload,
        autostart=False,
    )
    _api.install(runtime)
    try:

        def fail() -> None:
            raise ValueError("same site")

        def capture() -> None:
            try:
                fail()
            except ValueError as exc:
                errwire.capture_error(exc)

        capture()
        capture()  # within the window: folded
        assert runtime.worker_lane.depth == 1
        clock.wall -= 3600  # the clock steps back an hour: the window cannot last an hour
        capture()
        assert runtime.worker_lane.depth == 2
        assert runtime.storm.folded.value == 1
    finally:
        errwire.shutdown(1.0)


def test_event_levels_order() -> None:
    assert LEVELS["error"] > LEVELS["warning"] > LEVELS["info"]
    ev = Event("message", "warning", None, "m", (), (), None, None, None, None, None, 0.0)
    assert not ev.is_error
    assert "warning" in repr(ev)


def test_capture_never_raises_even_if_internals_break(
    events: Any, allow_internal_errors: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = _api.get_runtime()
    assert runtime is not None

    def broken_guard(site: object) -> int:
        raise RuntimeError("storm guard bug")

    monkeypatch.setattr(runtime, "_storm_admit", broken_guard)
    assert errwire.capture_error(ValueError("x")) is False
    assert errwire.capture_message("x") is False
    assert [where for where, _ in allow_internal_errors] == ["capture", "capture"]
    assert sys.exc_info() == (None, None, None)


def test_event_ids_do_not_follow_the_applications_random_seed(events: Any) -> None:
    import random

    random.seed(1234)
    errwire.capture_message("first", level="error")
    random.seed(1234)
    errwire.capture_message("second", level="error")
    first, second = events.refresh()
    assert first["event_id"] != second["event_id"]


def test_nested_snapshots_tell_the_outer_layers(events: Any) -> None:
    class Outer:
        captured = 0

        def mark_captured(self) -> None:
            self.captured += 1

        def extract(self) -> dict[str, Any]:
            raise AssertionError("the innermost snapshot is the one read")

    class Inner:
        def __init__(self, outer: object) -> None:
            self.outer = outer

        def extract(self) -> dict[str, Any]:
            return {"method": "GET", "path": "/inner"}

    outer = Outer()
    with errwire.request_scope(outer), errwire.request_scope(Inner(Inner(outer))):
        errwire.capture_error(ValueError("in a nested stack"))
    (payload,) = events.refresh()
    assert payload["request"]["path"] == "/inner"
    assert outer.captured == 1
