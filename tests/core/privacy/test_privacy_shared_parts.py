"""Parts the payload builder shares between events (``FrozenFrames`` stacks,
``FrozenMap`` tags and runtime fields) are scrubbed once per object and replayed:
same output as their plain copies, same counts, fresh containers every time."""

from __future__ import annotations

from typing import Any

import pytest

from errwire._payload import FrozenFrames, FrozenMap
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
        assert all(id(part) == ident for ident, (part, _, _) in memo.items())
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
