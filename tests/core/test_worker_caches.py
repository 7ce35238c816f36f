"""The caches behind the fast paths: bounded, invalidated where they must be, and
exact (an answer from a cache equals the one worked out afresh, counts included)."""

from __future__ import annotations

import gc
import math
from typing import Any

import pytest

import errwire
from errwire import _api, _event, _payload
from errwire._config import make_config
from errwire._event import Event, class_token
from errwire._fingerprint import fingerprint
from errwire._jsonsafe import json_safe
from errwire._payload import FrozenFrames, FrozenMap, PayloadBuilder, Stack
from errwire._privacy import Scrubber
from errwire._transport import MemoryTransport

from .conftest import MakeRuntime, raise_depth


def _builder(**options: Any) -> PayloadBuilder:
    return PayloadBuilder(make_config({"data_dir": "/nonexistent", **options}), "rt", 1)


def _raw_frames(exc: BaseException) -> tuple[Any, ...]:
    out: list[Any] = []
    tb = exc.__traceback__
    while tb is not None:
        out += (tb.tb_frame.f_code, tb.tb_lasti)
        tb = tb.tb_next
    return tuple(out)


def _event_for(exc: BaseException, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "origin": "exception",
        "level": "error",
        "exc_class": type(exc),
        "message": str(exc),
        "frames": _raw_frames(exc),
        "chain": (),
        "component": None,
        "category": None,
        "priority": None,
        "context": None,
        "request": None,
        "timestamp": 0.0,
    }
    values.update(fields)
    return Event(**values)


# ------------------------------------------------------------------ stacks


def test_a_stack_is_resolved_once_and_copies_are_handed_out() -> None:
    builder = _builder()
    exc = raise_depth(4)
    raw = _raw_frames(exc)
    stack = builder.stack(raw)
    assert builder.stack(raw) is stack  # the same snapshot: the cached resolution
    assert builder.stack(_raw_frames(raise_depth(4))) is stack  # another raise, same stack
    assert isinstance(stack.frames, FrozenFrames) and len(stack.frames) == 5  # with raise_depth
    copies = builder.frames(raw)
    assert copies == list(stack.frames)
    copies[0]["lineno"] = -1  # a caller's copy is its own
    assert stack.frames[0]["lineno"] != -1


def test_a_different_offset_is_a_different_stack() -> None:
    builder = _builder()

    def fail(kind: int) -> None:
        if kind:
            raise ValueError("one line")
        raise ValueError("another line")

    stacks = []
    for kind in (0, 1):
        try:
            fail(kind)
        except ValueError as exc:
            stacks.append(builder.stack(_raw_frames(exc)))
    assert stacks[0] is not stacks[1]
    assert stacks[0].frames[-1]["lineno"] != stacks[1].frames[-1]["lineno"]


def test_the_stack_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_payload, "_STACK_CACHE_SIZE", 3)
    builder = _builder()
    codes = [compile(f"raise ValueError({n})", f"<gen{n}>", "exec") for n in range(5)]
    for code in codes:
        builder.stack((code, 0))
        assert len(builder._stacks) <= 3
    # a forgotten stack resolves again, to the same frames
    first = builder.stack((codes[0], 0))
    assert first.frames[0]["filename"] == "<gen0>"


def test_a_cached_stack_keeps_its_code_objects_so_ids_are_not_reused() -> None:
    builder = _builder()
    code = compile("raise ValueError()", "<transient>", "exec")
    stack = builder.stack((code, 0))
    ident = id(code)
    del code
    gc.collect()
    # the cache still holds the code object: no new object can take its id
    assert any(id(c) == ident for c in stack._codes)


def test_the_top_frame_and_component_come_from_the_innermost_in_app_frame() -> None:
    builder = _builder(component_map={"tests.core": "core-tests"})
    stack = builder.stack(_raw_frames(raise_depth(3)))
    assert isinstance(stack, Stack)
    assert stack.top_module == "tests.core.conftest"
    assert stack.component == "core-tests"
    assert stack.top_key.endswith(":raise_depth.<locals>.dive")
    empty = builder.stack(())
    assert (empty.top_module, empty.top_key, empty.component) == (None, "", "unknown")


# ---------------------------------------------------------- classification


def test_classify_answers_the_same_from_lists_and_from_cached_stacks() -> None:
    builder = _builder()
    exc = raise_depth(5, "order 42 failed for 'bob'", KeyError)
    raw = _raw_frames(exc)
    by_stack, by_list = _event_for(exc), _event_for(exc)
    first = builder.classify(by_stack, builder.stack(raw))
    assert builder.classify(by_list, builder.frames(raw)) == first
    assert (by_stack.component, by_stack.category, by_stack.fingerprint) == (
        by_list.component,
        by_list.category,
        by_list.fingerprint,
    )
    assert by_stack.category == "lookup"
    expected = fingerprint(
        by_stack.component or "", "lookup", "builtins.KeyError", by_stack.message, first[2]
    )
    assert by_stack.fingerprint == expected


def test_the_fingerprint_cache_is_bounded_and_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_payload, "_FINGERPRINT_CACHE_SIZE", 4)
    builder = _builder()
    exc = raise_depth(2)
    stack = builder.stack(_raw_frames(exc))
    for n in range(10):
        event = _event_for(exc, message=f"user {n} at 0x{n:x}ff")
        builder.classify(event, stack)
        assert len(builder._fingerprints) <= 4
        fresh = fingerprint(event.component or "", "validation", "builtins.ValueError",
                            event.message, stack.top_key)  # fmt: skip
        assert event.fingerprint == fresh
    # numbers differ, the normalised message does not: one fingerprint for all
    assert len({builder._fingerprints[k] for k in builder._fingerprints}) == 1


def test_a_given_category_is_kept_and_a_message_is_a_message() -> None:
    builder = _builder()
    exc = raise_depth(2, exc_type=TimeoutError)
    stack = builder.stack(_raw_frames(exc))
    given = _event_for(exc, category="mine")
    builder.classify(given, stack)
    assert given.category == "mine"
    derived = _event_for(exc)
    builder.classify(derived, stack)
    assert derived.category == "timeout"
    message = _event_for(exc, exc_class=None, frames=())
    builder.classify(message, builder.stack(()))
    assert message.category == "message"


# ------------------------------------------------------------------ payload


@pytest.mark.parametrize(
    "context",
    [
        {"a": 1, "b": "x", "c": None, "d": True, "e": 1.5},
        {"big": 2**63, "bigger": -(2**63) - 1},
        {"nan": math.nan},
        {"long": "x" * 100},
        {"k" * 201: 1},
        {1: "int key"},
        {"nested": {"a": 1}},
        {"tuple": (1, 2)},
        {f"k{n}": n for n in range(60)},
    ],
)
def test_a_context_is_what_json_safe_makes_of_it(context: dict[Any, Any]) -> None:
    builder = _builder(max_message_length=64)
    exc = raise_depth(1)
    event = _event_for(exc, context=dict(context))
    stack = builder.stack(_raw_frames(exc))
    builder.classify(event, stack)
    payload = builder.build(event, stack, 0)
    assert payload["context"] == json_safe(context, max_items=50, max_string=64)


def test_only_errwires_scrubber_is_given_shared_parts(make_runtime: MakeRuntime) -> None:
    passthrough = make_runtime()
    assert passthrough.builder.scrub_copies is False
    builtin = make_runtime(scrub=Scrubber().scrub_payload)
    assert builtin.builder.scrub_copies is True

    class Custom(Scrubber):
        def scrub_payload(self, payload: Any) -> dict[str, Any]:
            return dict(payload)

    assert make_runtime(scrub=Custom().scrub_payload).builder.scrub_copies is False

    exc = raise_depth(3)
    for runtime, shared in ((passthrough, False), (builtin, True)):
        for n in (1, 2):  # the second event of a kind: a BuiltPayload for errwire's scrubber
            event = _event_for(exc)
            stack = runtime.builder.stack(event.frames)
            runtime.builder.classify(event, stack)
            payload = runtime.builder.build(event, stack, 0)
            assert (type(payload) is _payload.BuiltPayload) is (shared and n == 2)
        frames = payload["exception"]["stack"]
        assert (type(frames) is FrozenFrames) is shared
        assert (type(payload["tags"]) is FrozenMap) is shared
        assert (type(payload["runtime"]) is FrozenMap) is shared
        assert (type(payload["exception"]) is FrozenMap) is shared
        if not shared:
            assert type(frames) is list and frames[0] is not stack.frames[0]


def test_a_shared_exception_part_is_one_object_per_class_message_and_stack() -> None:
    builder = _builder()
    builder.scrub_copies = True
    one, other = raise_depth(3), raise_depth(2)

    def exception_part(exc: BaseException, message: str) -> Any:
        event = _event_for(exc, message=message)
        stack = builder.stack(event.frames)
        builder.classify(event, stack)
        return builder.build(event, stack, 0)["exception"]

    first = builder._shared_exception(ValueError, "boom", builder.stack(_raw_frames(one)))
    exception_part(one, "boom")  # the first of its kind: a plain payload
    assert exception_part(one, "boom") is first
    assert dict(first) == {
        "type": "builtins.ValueError",
        "value": "boom",
        "stack": builder.stack(_raw_frames(one)).frames,
    }
    exception_part(one, "bang")
    assert exception_part(one, "bang") is not first
    exception_part(other, "boom")
    assert exception_part(other, "boom") is not first


def test_delivered_payloads_never_share_containers(make_runtime: MakeRuntime) -> None:
    transport = MemoryTransport()
    runtime = make_runtime(transport, scrub=Scrubber().scrub_payload, storm_window_seconds=0,
                           dedup_window_seconds=0)  # fmt: skip
    _api.install(runtime)
    exc = raise_depth(3)
    for _ in range(3):
        errwire.capture_error(exc, context={"n": 1})
    runtime.worker_lane.process_pending()
    first, second, third = transport.events
    assert type(first["exception"]["stack"]) is list
    assert type(first["tags"]) is dict and type(first["runtime"]) is dict
    first["exception"]["stack"][0]["lineno"] = -1
    first["tags"]["component"] = "changed"
    first["runtime"]["pid"] = -1
    assert second["exception"]["stack"][0]["lineno"] != -1
    assert second["tags"]["component"] != "changed" and second["runtime"]["pid"] != -1
    assert second["exception"]["stack"] == third["exception"]["stack"]
    assert second["exception"]["stack"][0] is not third["exception"]["stack"][0]


def test_what_is_delivered_does_not_depend_on_the_shared_parts(make_runtime: MakeRuntime) -> None:
    """The same stream through errwire's scrubber with the builder's shared parts and
    bases, and with plain payloads only: the same payloads, the same redaction counts."""
    outputs, counts = [], []
    for shared in (True, False):
        transport, scrubber = MemoryTransport(), Scrubber()
        runtime = make_runtime(transport, scrub=scrubber.scrub_payload, storm_window_seconds=0,
                               dedup_window_seconds=0)  # fmt: skip
        runtime.builder.scrub_copies = shared
        _api.install(runtime)
        for n in range(12):
            exc = raise_depth(2 + n % 2, f"user ann{n % 3}@example.com failed")
            context = {"n": n, "note": "ok"} if n % 4 else {"token": "Zk39aBqR7tLmN2pXw8Yc4Tq9"}
            errwire.capture_error(exc, component=f"c{n % 2}", context=context)
            errwire.capture_message(f"seen {n % 2}", level="warning")
        runtime.worker_lane.process_pending()
        own = ("event_id", "runtime")  # a fresh id each, and two runtimes
        outputs.append([{k: v for k, v in e.items() if k not in own} for e in transport.events])
        counts.append(scrubber.counts())
    assert len(outputs[0]) == 24
    assert outputs[0] == outputs[1]
    assert counts[0] == counts[1] and counts[0]["EMAIL"] > 0 and counts[0]["REDACTED"] > 0


# ---------------------------------------------------------- class tokens


def test_a_raw_event_names_its_class_by_token_and_the_event_by_class(
    make_runtime: MakeRuntime,
) -> None:
    runtime = make_runtime(storm_window_seconds=0)
    _api.install(runtime)

    class Local(Exception):
        pass

    try:
        raise Local("x")
    except Local as exc:
        errwire.capture_error(exc, context={"n": 1, "s": "t"})
    (raw,) = runtime.worker_lane.drain()
    assert raw[2] == class_token(Local) and type(raw[2]) is int
    assert raw[9] == (("n", 1), ("s", "t"))
    event = Event(*raw)
    assert event.exc_class is Local
    assert event.context == {"n": 1, "s": "t"}
    for _ in range(3):  # a tuple is untracked once what it holds is: a pass per level
        gc.collect()
    assert not gc.is_tracked(raw)  # a queued event costs the collector nothing


def test_past_its_bound_the_class_table_hands_out_classes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = class_token(ValueError)
    monkeypatch.setattr(_event, "_MAX_CLASSES", len(_event._CLASSES))

    class Late(Exception):
        pass

    assert class_token(Late) is Late
    event = Event("exception", "error", Late, "m", (), (), None, None, None, None, None, 0.0)
    assert event.exc_class is Late
    assert class_token(ValueError) == known  # registered before the table filled: a token
    assert type(known) is int and _event._CLASSES[known] is ValueError


def test_events_of_one_kind_share_the_base_of_their_payload() -> None:
    builder = _builder()
    builder.scrub_copies = True
    exc = raise_depth(3)

    def built(**fields: Any) -> Any:
        event = _event_for(exc, **fields)
        stack = builder.stack(event.frames)
        builder.classify(event, stack)
        return builder.build(event, stack, 2)

    once = built(context={"n": 0})
    assert type(once) is dict  # a kind seen once gets no base: it may never repeat
    first, second = built(context={"n": 1}, timestamp=1.0), built(context={"n": 2}, repeats=4)
    assert type(first) is _payload.BuiltPayload and first.base is second.base
    assert {k: v for k, v in once.items() if k not in _payload.PER_EVENT} == {
        k: v for k, v in first.items() if k not in _payload.PER_EVENT
    } | {"exception": once["exception"]}
    assert dict(first["exception"]) == once["exception"]
    assert all(first.base[key] is None for key in _payload.PER_EVENT)
    assert {k: v for k, v in first.items() if k not in _payload.PER_EVENT} == {
        k: v for k, v in first.base.items() if k not in _payload.PER_EVENT
    }
    assert (first["context"], first["timestamp"], first["suppressed"]) == ({"n": 1}, 1.0, 2)
    assert (second["context"], second["repeats"]) == ({"n": 2}, 4)
    assert first["event_id"] != second["event_id"]
    assert type(built(message="other")) is dict
    assert built(message="other").base is not first.base
    assert type(built(level="warning")) is dict
    assert built(level="warning").base is not first.base
    odd = built(level=["not", "a", "string"])  # no cache key: a plain payload
    assert type(odd) is dict and odd["level"] == ["not", "a", "string"]
