"""Turning arbitrary context values into bounded, JSON-safe data.

Context is copied shallowly on the caller's thread; here, on the worker, it
becomes plain data: depth, item counts and string lengths are bounded, cycles
are cut, objects go through ``repr`` and a raising ``repr`` becomes a marker.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["json_safe"]

_SCALARS = (bool, int, float, type(None))


def json_safe(
    value: Any, *, max_depth: int = 6, max_items: int = 100, max_string: int = 2048
) -> Any:
    return _convert(value, max_depth, max_items, max_string, set())


def _text(text: str, max_string: int) -> str:
    if len(text) > max_string:
        return text[:max_string] + f"... [{len(text) - max_string} chars truncated]"
    return text


def _repr(value: object, max_string: int) -> str:
    try:
        text = repr(value)
        if type(text) is not str:  # a str subclass with surprises of its own
            text = str.__str__(text)
    except Exception:
        return f"<unrepresentable {type(value).__qualname__}>"
    return _text(text, max_string)


def _convert(value: Any, depth: int, items: int, max_string: int, seen: set[int]) -> Any:
    try:
        return _convert_unguarded(value, depth, items, max_string, seen)
    except Exception:  # even isinstance() can raise, through a hostile __class__
        return _repr(value, max_string)


def _convert_unguarded(value: Any, depth: int, items: int, max_string: int, seen: set[int]) -> Any:
    if isinstance(value, str):
        return _text(str.__str__(value), max_string)
    if isinstance(value, _SCALARS):
        if isinstance(value, float) and not math.isfinite(value):  # NaN and infinities are not JSON
            return str(value)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63:
            return _repr(value, max_string)
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value[: max_string * 4])
        return _text(raw.decode("utf-8", "backslashreplace"), max_string)
    if depth <= 0:
        return _repr(value, max_string)
    marker = id(value)
    if marker in seen:
        return "<cycle>"
    seen.add(marker)
    try:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for n, (k, v) in enumerate(list(value.items())[: items + 1]):
                if n == items:
                    out["..."] = f"{len(value) - items} more"
                    break
                key = k if isinstance(k, str) else _repr(k, 200)
                out[_text(key, 200)] = _convert(v, depth - 1, items, max_string, seen)
            return out
        if isinstance(value, list | tuple | set | frozenset):
            seq = list(value)
            if isinstance(value, set | frozenset):
                seq.sort(key=lambda x: _repr(x, 200))  # deterministic output
            conv = [_convert(v, depth - 1, items, max_string, seen) for v in seq[:items]]
            if len(seq) > items:
                conv.append(f"... {len(seq) - items} more")
            return conv
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return _convert(fields, depth, items, max_string, seen)
        return _repr(value, max_string)
    except Exception:
        return _repr(value, max_string)
    finally:
        seen.discard(marker)
