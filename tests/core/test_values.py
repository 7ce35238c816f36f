"""Turning arbitrary context into bounded JSON-safe data, and resolving frames."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from typing import Any

from errwire._event import frame_line, safe_message
from errwire._jsonsafe import json_safe
from errwire._modules import ModuleIndex


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no")


class Disguised:
    """isinstance() itself raises on this one."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("nope")

    def __repr__(self) -> str:
        return "<disguised>"


class LoudStr(str):
    pass


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_scalars_strings_and_bytes() -> None:
    assert json_safe(None) is None
    assert json_safe(True) is True
    assert json_safe(3) == 3
    assert json_safe(2.5) == 2.5
    assert json_safe(float("nan")) == "nan"
    assert json_safe(float("inf")) == "inf"
    assert json_safe(10**30) == str(10**30)
    assert json_safe("x" * 10, max_string=4) == "xxxx... [6 chars truncated]"
    assert type(json_safe(LoudStr("s"))) is str
    assert json_safe(b"\xff ok") == "\\xff ok"
    assert json_safe(bytearray(b"abc")) == "abc"
    assert json_safe(memoryview(b"abc")) == "abc"


def test_containers_are_bounded_and_deterministic() -> None:
    value: dict[Any, Any] = {i: i for i in range(5)}
    assert json_safe(value, max_items=3) == {"0": 0, "1": 1, "2": 2, "...": "2 more"}
    assert json_safe([1, 2, 3, 4], max_items=2) == [1, 2, "... 2 more"]
    assert json_safe({3, 1, 2}) == [1, 2, 3]
    assert json_safe((1, (2, (3, (4,)))), max_depth=2) == [1, [2, "(3, (4,))"]]
    assert json_safe(Point(1, 2)) == {"x": 1, "y": 2}
    assert json_safe({"k" * 300: 1}) == {"k" * 200 + "... [100 chars truncated]": 1}


def test_cycles_and_hostile_objects() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert json_safe(loop) == [1, "<cycle>"]
    shared = [1]
    assert json_safe([shared, shared]) == [[1], [1]]  # shared is not a cycle
    assert json_safe(BadRepr()) == "<unrepresentable BadRepr>"
    assert json_safe(Disguised()) == "<disguised>"
    assert json_safe({"d": Disguised()}) == {"d": "<disguised>"}

    class BadItems(dict[str, int]):
        def items(self) -> Any:
            raise RuntimeError("no items")

    assert json_safe(BadItems(a=1)).startswith("{")
    json.dumps(json_safe({"a": BadRepr(), "b": [object()], "c": Point(0, 0)}))


def test_safe_message_of_hostile_objects() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert safe_message(Unprintable(), 100).endswith(".Unprintable>")
    assert type(safe_message(ValueError(LoudStr("x")), 100)) is str


def test_frame_line_edges() -> None:
    code = test_frame_line_edges.__code__
    assert frame_line(code, -1) == code.co_firstlineno
    assert frame_line(code, 10**6) == code.co_firstlineno


def test_module_index_maps_files_and_guesses() -> None:
    index = ModuleIndex()
    assert index.module_for(json.__file__) == "json"
    assert index.module_for("<string>") == "string"
    assert index.module_for("<>") == "unknown"
    assert index.module_for("/nowhere/script_name.py") == "script_name"
    module = types.ModuleType("late_module")
    module.__file__ = "/virtual/late_module.py"
    sys.modules["late_module"] = module
    try:
        assert index.module_for("/virtual/late_module.py") == "late_module"  # rebuilt on demand
    finally:
        del sys.modules["late_module"]


def test_a_file_no_module_claims_is_named_by_its_own_name_only() -> None:
    index = ModuleIndex()
    assert index.module_for("C:\\Users\\someone\\shop\\run.py") == "run"
    assert index.module_for("/home/someone/tools/task.py") == "task"
