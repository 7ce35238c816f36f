"""Parts the payload builder shares between events (``FrozenFrames`` stacks,
``FrozenMap`` tags, runtime fields and exceptions) are scrubbed once per object and replayed:
same output as their plain copies, same counts, fresh containers every time."""

from __future__ import annotations

from typing import Any

import pytest

from errwire._payload import PER_EVENT, BuiltPayload, FrozenFrames, FrozenMap
from errwire._privacy import Scrubber, _payload

ROOT = "/srv/app"


def _frames() -> FrozenFrames:
    return FrozenFrames(
        [
            {
                "filename": "app/views.py",
                "abs_path": ROOT + "/app/views.py",
                "function": "handler",
                "module": "app.views",
                "lineno": 10,
                "in_app": True,
            },
            {
                "filename": "/home/ann/lib/x.py",
                "abs_path": "/home/ann/lib/x.py",
                "function": "call",
                "module": "x",
                "lineno": 3,
                "in_app": False,
            },
        ]
    )


def _payload_with(stack: Any, tags: Any, runtime: Any) -> dict[str, Any]:
    return {
        "event_id": "e" * 32,
        "message": "boom",
        "exception": {"type": "builtins.ValueError", "value": "boom", "stack": stack},
        "chain": [],
        "tags": tags,
        "runtime": runtime,
    }


def _plain(payload: dict[str, Any]) -> dict[str, Any]:
    exception = dict(payload["exception"], stack=[dict(f) for f in payload["exception"]["stack"]])
    return dict(
        payload, exception=exception, tags=dict(payload["tags"]), runtime=dict(payload["runtime"])
    )


def test_shared_parts_scrub_like_their_plain_copies_and_count_every_time() -> None:
    stack = _frames()
    tags = FrozenMap(component="orders", owner="ann@example.com")
    runtime = FrozenMap(pid=1, runtime_id="host:1:abc")
    shared = Scrubber(project_root=ROOT)
    plain = Scrubber(project_root=ROOT)
    for _ in range(3):
        payload = _payload_with(stack, tags, runtime)
        out = shared.scrub_payload(payload)
        assert out == plain.scrub_payload(_plain(payload))
        assert type(out["exception"]["stack"]) is list
        assert type(out["tags"]) is dict and type(out["runtime"]) is dict
    assert shared.counts() == plain.counts()
    assert shared.counts()["EMAIL"] == 3  # the tag's address, once per event
    assert out["exception"]["stack"][1]["abs_path"] == "~/lib/x.py"


def test_what_a_shared_part_scrubbed_to_cannot_be_changed_through_an_answer() -> None:
    scrubber = Scrubber(project_root=ROOT)
    stack, tags = _frames(), FrozenMap(component="orders")
    runtime = FrozenMap(pid=1)
    first = scrubber.scrub_payload(_payload_with(stack, tags, runtime))
    expected = scrubber.scrub_payload(_payload_with(stack, tags, runtime))
    first["exception"]["stack"][0]["lineno"] = -1
    first["exception"]["stack"].append({"injected": True})
    first["tags"]["component"] = "changed"
    first["runtime"]["pid"] = -1
    assert scrubber.scrub_payload(_payload_with(stack, tags, runtime)) == expected


def test_the_shared_part_memo_is_bounded_and_keeps_what_it_remembers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_payload, "_SHARED_ENTRIES", 2)
    scrubber = Scrubber(project_root=ROOT)
    memo = scrubber._payload._shared
    stacks = [_frames() for _ in range(5)]
    for stack in stacks:
        scrubber.scrub_payload(_payload_with(stack, FrozenMap(), FrozenMap()))
        assert len(memo) <= 2
        # an entry holds its object: the id it is filed under cannot be reused meanwhile
        assert all(id(part) == ident for ident, (part, *_) in memo.items())
    again = scrubber.scrub_payload(_payload_with(stacks[0], FrozenMap(), FrozenMap()))
    fresh = Scrubber(project_root=ROOT).scrub_payload(
        _payload_with(list(stacks[0]), FrozenMap(), FrozenMap())
    )
    assert again == fresh


def test_a_shared_part_that_scrubs_to_nested_data_is_scrubbed_every_time() -> None:
    scrubber = Scrubber(project_root=ROOT)
    nested = FrozenFrames([{"abs_path": "/x.py", "vars": {"password": "hunter2"}}])
    for n in (1, 2):
        out = scrubber.scrub_payload(_payload_with(nested, FrozenMap(), FrozenMap()))
        assert out["exception"]["stack"] == [
            {"abs_path": "/x.py", "vars": {"password": "[REDACTED]"}}
        ]
        assert scrubber.counts()["REDACTED"] == n
    assert id(nested) not in scrubber._payload._shared  # not flat: not remembered


def _shared_exception(stack: Any, value: str) -> FrozenMap:
    return FrozenMap(type="builtins.ValueError", value=value, stack=stack)


def test_a_shared_exception_scrubs_like_its_plain_copy_and_counts_every_time() -> None:
    stack = _frames()
    exception = _shared_exception(stack, "no user ann@example.com at /home/ann/x")
    shared = Scrubber(project_root=ROOT)
    plain = Scrubber(project_root=ROOT)
    for n in (1, 2, 3):
        payload = _payload_with(stack, FrozenMap(), FrozenMap())
        payload["exception"] = exception
        out = shared.scrub_payload(payload)
        assert out == plain.scrub_payload(_plain(payload))
        assert type(out["exception"]) is dict and type(out["exception"]["stack"]) is list
        assert shared.counts() == plain.counts()
        assert shared.counts()["EMAIL"] == n
    assert id(exception) not in shared._payload._shared  # memoised with its base, not alone
    # an answer changed by its receiver changes nothing for the next event
    out["exception"]["value"] = "changed"
    out["exception"]["stack"][0]["lineno"] = -1
    out["exception"]["stack"].append({"injected": True})
    payload = _payload_with(stack, FrozenMap(), FrozenMap())
    payload["exception"] = exception
    assert shared.scrub_payload(payload) == plain.scrub_payload(_plain(payload))


def test_a_shared_exception_with_nested_frame_data_is_scrubbed_every_time_too() -> None:
    scrubber = Scrubber(project_root=ROOT)
    nested = FrozenFrames([{"abs_path": "/x.py", "vars": {"password": "hunter2"}}])
    exception = _shared_exception(nested, "boom")
    for n in (1, 2):
        payload = _payload_with(nested, FrozenMap(), FrozenMap())
        payload["exception"] = exception
        out = scrubber.scrub_payload(payload)
        assert out["exception"]["stack"] == [
            {"abs_path": "/x.py", "vars": {"password": "[REDACTED]"}}
        ]
        assert scrubber.counts()["REDACTED"] == n
    assert id(exception) not in scrubber._payload._shared


# ---------------------------------------------------------------- built payloads


def _built(base: FrozenMap, **per_event: Any) -> BuiltPayload:
    payload = BuiltPayload(base)
    payload.base = base
    payload.update(per_event)
    return payload


def _base(stack: Any, message: str = "no user ann@example.com") -> FrozenMap:
    return FrozenMap(
        {key: None for key in PER_EVENT},
        message=message,
        exception=_shared_exception(stack, message),
        component="orders",
        tags=FrozenMap(component="orders", owner="bob@example.com"),
        runtime=FrozenMap(pid=1, runtime_id="host:1:abc"),
    )


def _as_plain(payload: BuiltPayload) -> dict[str, Any]:
    out = dict(payload)
    out["exception"] = dict(
        payload["exception"], stack=[dict(f) for f in payload["exception"]["stack"]]
    )
    out["tags"], out["runtime"] = dict(payload["tags"]), dict(payload["runtime"])
    return out


def test_a_built_payload_scrubs_like_its_plain_copy_and_counts_every_time() -> None:
    base = _base(_frames())
    shared, plain = Scrubber(project_root=ROOT), Scrubber(project_root=ROOT)
    events: list[dict[str, Any]] = [
        {"event_id": "a" * 32, "timestamp": 1.0, "context": {"n": 1}, "repeats": 0},
        {"event_id": "b" * 32, "context": {"password": "x", "to": "eve@example.com"}},
        {"request": {"method": "get", "path": "/u/ann@example.com", "cookies": {"s": "1"}}},
        {"chain": [{"type": "builtins.KeyError", "value": "ann@example.com", "stack": []}]},
        {"suppressed": [1, 2], "repeats": 3},  # not scalar: scrubbed as values
        {},
    ]
    for per_event in events * 2:
        payload = _built(base, **per_event)
        out = shared.scrub_payload(payload)
        assert out == plain.scrub_payload(_as_plain(payload))
        assert list(out) == list(payload)  # the builder's field order
        assert shared.counts() == plain.counts()
    assert id(base) in shared._payload._bases
    # an answer changed by its receiver changes nothing for the next event
    out["message"] = "changed"
    out["exception"]["stack"][0]["lineno"] = -1
    out["tags"]["owner"] = "changed"
    payload = _built(base, event_id="c" * 32)
    assert shared.scrub_payload(payload) == plain.scrub_payload(_as_plain(payload))


def test_only_the_per_event_fields_of_a_built_payload_are_read_from_it() -> None:
    base = _base(_frames())
    payload = _built(base, event_id="a" * 32)
    payload["message"] = "raw secret ann@example.com"  # never the case: the builder copies base
    out = Scrubber(project_root=ROOT).scrub_payload(payload)
    assert out["message"] == "no user [EMAIL]"
    assert "ann@example.com" not in repr(out)


def test_the_built_payload_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_payload, "_BASE_ENTRIES", 2)
    scrubber = Scrubber(project_root=ROOT)
    bases = [_base(_frames(), f"message {n}") for n in range(5)]
    for base in bases:
        scrubber.scrub_payload(_built(base))
        assert len(scrubber._payload._bases) <= 2
        assert all(id(part) == ident for ident, (part, *_) in scrubber._payload._bases.items())
    assert scrubber.scrub_payload(_built(bases[0]))["message"] == "message 0"


def test_the_scrubber_reads_exactly_the_per_event_fields_of_a_built_payload() -> None:
    assert frozenset(PER_EVENT) == _payload._PER_EVENT
    assert {"event_id", "timestamp", "repeats", "suppressed"} <= _payload._OWN_FIELDS
    assert not {"context", "chain", "request"} & _payload._OWN_FIELDS
