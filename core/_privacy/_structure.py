"""Scrubbing arbitrary values into JSON-safe ones, with bounds, for context and payloads.

Dicts, lists, tuples, sets, named tuples and dataclasses are walked; everything else
goes through a bounded ``repr``. Every bound leaves a marker, and every bound is
chosen so that scrubbing the output again gives the same output (idempotence):

* depth: a container deeper than ``max_depth`` becomes ``[MAX-DEPTH]``;
* width: a container keeps ``max_items`` entries and then ``[TRUNCATED]`` (a list
  element, or a ``"[TRUNCATED]"`` key in a dict);
* total size: after ``max_nodes`` values, the rest become ``[TRUNCATED]`` (markers
  are not counted, so the output fits again);
* strings: at most ``max_string`` characters, ending in ``…[TRUNCATED]`` when cut.
  Text is scrubbed before it is cut (over a window reaching well past the cut),
  so a secret that straddles the cut is seen whole; only markers get cut away;
* cycles become ``[CYCLE]``; a ``__repr__`` that raises becomes ``[REPR-ERROR]``.

Keys are scrubbed as text. A key that names a secret (see ``_keys``) has its value
replaced by ``[REDACTED]`` whatever the value is (None, booleans and empty strings
are kept: they hide nothing); a lat/lon key's number becomes ``[GEO]``. A string
value that is one random-looking token becomes ``[TOKEN]``. Integers that are valid
card numbers become ``[CARD]``. Sets are sorted so output does not depend on hash
order.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import math
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from itertools import islice
from pathlib import PurePath
from typing import Any

from errwire._internal import internal_error
from errwire._privacy._checks import card_ok, looks_random
from errwire._privacy._keys import SECRET
from errwire._privacy._markers import (
    CARD,
    CYCLE,
    GEO,
    MARKER_RE,
    MAX_DEPTH,
    REDACTED,
    REPR_ERROR,
    SCRUB_ERROR,
    TOKEN,
    TRUNCATED,
    TRUNCATED_SUFFIX,
    is_marker,
    marker,
)
from errwire._privacy._rules import Context
from errwire._privacy._text import TextScrubber

__all__ = ["ValueScrubber"]

_MAX_KEY = 256
_INT64 = 2**63
_CARD_MIN = 10**12  # smaller integers cannot be card numbers
_TOKEN_MIN = 16  # shorter strings are never taken for a random token
_MARGIN = 1024  # scrubbed text kept beyond a cut, so nothing at the cut is half-seen


class _Walk:
    """Per-call state: values visited so far and containers on the current path."""

    __slots__ = ("active", "nodes")

    def __init__(self) -> None:
        self.nodes = 0
        self.active: set[int] = set()


class ValueScrubber:
    __slots__ = (
        "_cache",
        "_classify",
        "_ctx",
        "_flat_limit",
        "_key_limit",
        "_replay",
        "_text",
        "max_depth",
        "max_items",
        "max_nodes",
        "max_string",
        "text_cache",
    )

    def __init__(
        self,
        text: TextScrubber,
        ctx: Context,
        *,
        max_depth: int,
        max_items: int,
        max_string: int,
        max_nodes: int,
    ) -> None:
        self._text = text
        self._cache = self.text_cache = text.cache
        self._replay = text.tally.replay
        self._ctx = ctx
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_string = max_string
        self.max_nodes = max_nodes
        if max_string < 32:  # the Scrubber validates it; _clean_flat relies on it
            raise ValueError(f"max_string must be at least 32; got {max_string}")
        self._key_limit = min(_MAX_KEY, max_string)
        self._classify = ctx.keys.classify
        # _clean_flat's bound: more entries than max_items, or max_nodes reached
        self._flat_limit = min(max_items + 1, max_nodes)

    # ------------------------------------------------------------ strings

    def text(self, value: str, limit: int | None = None, skip: tuple[str, ...] = ()) -> str:
        """Scrubbed text of at most ``limit`` characters (``max_string`` by default).

        A long text is scrubbed *before* it is cut (on a window reaching well past the
        cut), so a secret that straddles the cut is recognised whole and only its
        marker can be cut away; the cut text is scrubbed once more so that scrubbing
        the output again changes nothing."""
        limit = self.max_string if limit is None else limit
        if len(value) <= limit:
            if not skip:  # most strings repeat: answer a cache hit here, with its counts
                hit = self._cache.get(value)
                if hit is not None and len(hit[0]) <= limit:
                    if hit[1]:
                        self._replay(hit[1])
                    return hit[0]
            source = self._text.scrub(value, skip)
            if len(source) <= limit:
                return source
        else:
            scrub = self._text.scrub
            size = limit + _MARGIN
            while True:
                source = scrub(value[:size], skip)
                if len(source) >= limit + _MARGIN // 2 or size >= len(value) or size >= 16 * limit:
                    break
                size *= 2
        self._ctx.bump(TRUNCATED)
        scrub = self._text.scrub
        room = limit - len(TRUNCATED_SUFFIX)
        for _ in range(3):
            if room <= 0:
                break
            out = scrub(_cut(source, room) + TRUNCATED_SUFFIX, skip)
            if len(out) <= limit:
                return out
            room -= len(out) - limit
        return TRUNCATED_SUFFIX

    # ------------------------------------------------------------ values

    def scrub(self, value: object, key: str | None = None) -> Any:
        try:
            if type(value) is dict and key is None:
                flat = self._clean_flat(value)
                return self._top_dict(value) if flat is None else flat
            return self._value(value, key, 0, _Walk())
        except Exception as exc:
            self._ctx.bump(SCRUB_ERROR)
            internal_error("privacy.scrub_value", exc)
            return marker(SCRUB_ERROR)

    def _top_dict(self, value: dict[Any, Any]) -> Any:
        """``_value(value, None, 0, _Walk())`` for a plain dict (a context, the common
        case), without the steps that cannot apply at the top."""
        walk = _Walk()
        walk.nodes = 1  # max_nodes >= 1 and max_depth >= 1: neither bound applies yet
        walk.active.add(id(value))
        try:
            return self._mapping(list(islice(value.items(), self.max_items + 1)), 0, walk)
        except Exception:
            self._ctx.bump(REPR_ERROR)
            return self.text(f"<dict {marker(REPR_ERROR)}>")

    def _clean_flat(self, value: dict[Any, Any]) -> dict[str, Any] | None:
        """What ``_mapping`` answers for a small dict of ordinary keys and values that
        need nothing done (the usual context: ids, counts, short known strings), or
        None, and then the full walk runs. Exact: only pairs that ``_mapping`` would
        copy unchanged, counting nothing, are accepted (keys the text cache knows as
        clean and not secret-like; ints too small to be card numbers; None and bools;
        strings cached as clean, too short to be taken for a token); it has no side
        effects, so giving up half-way changes nothing."""
        if len(value) >= self._flat_limit:
            return None  # a bound applies: the full walk marks it
        cache, classify, key_limit = self._cache, self._classify, self._key_limit
        out: dict[str, Any] = {}
        for k, v in value.items():
            if type(k) is not str or len(k) > key_limit:
                return None
            hit = cache.get(k)
            if hit is None or hit[1] or hit[0] != k or classify(k):
                return None
            kind = type(v)
            if kind is int:
                if not -_CARD_MIN < v < _CARD_MIN:
                    return None
                out[k] = v
            elif kind is str:
                # a clean hit shorter than a token, and within max_string (never below 32)
                clean = cache.get(v)
                if clean is None or clean[1] or len(clean[0]) >= _TOKEN_MIN or len(v) > 32:
                    return None
                if not v or v[-1] == "]":
                    return None
                out[k] = clean[0]
            elif v is None or kind is bool:
                out[k] = v
            else:
                return None
        return out

    def _value(self, value: object, key: str | None, depth: int, walk: _Walk) -> Any:
        if type(value) is str:  # the common case, by the same steps as below
            return self._plain_str(value, key, walk)
        if isinstance(value, str) and is_marker(value):
            return value  # markers do not count towards the total: see the module doc
        if walk.nodes >= self.max_nodes:
            self._ctx.bump(TRUNCATED)
            return marker(TRUNCATED)
        walk.nodes += 1
        if (
            key is not None
            and value is not None
            and not isinstance(value, bool)
            and not (isinstance(value, str) and not value)
        ):
            verdict = self._ctx.keys.classify(key)
            if verdict == SECRET:
                self._ctx.bump(REDACTED)
                return marker(REDACTED)
            if verdict and _is_coordinate(value):
                self._ctx.bump(GEO)
                return marker(GEO)
        try:
            return self._dispatch(value, key, depth, walk)
        except Exception:
            self._ctx.bump(REPR_ERROR)
            return self.text(f"<{_type_name(value)} {marker(REPR_ERROR)}>")

    def _plain_str(self, value: str, key: str | None, walk: _Walk) -> Any:
        if value[-1:] == "]" and is_marker(value):
            return value
        if walk.nodes >= self.max_nodes:
            self._ctx.bump(TRUNCATED)
            return marker(TRUNCATED)
        walk.nodes += 1
        if key is not None and value:
            verdict = self._ctx.keys.classify(key)
            if verdict == SECRET:
                self._ctx.bump(REDACTED)
                return marker(REDACTED)
            if verdict and _is_coordinate(value):
                self._ctx.bump(GEO)
                return marker(GEO)
        try:
            return self._str(value, key)
        except Exception:
            self._ctx.bump(REPR_ERROR)
            return self.text(f"<str {marker(REPR_ERROR)}>")

    def _dispatch(self, value: object, key: str | None, depth: int, walk: _Walk) -> Any:
        if type(value) is int:  # the common types first, by exact type (subclasses: below)
            return self._int(value)
        if type(value) is dict or type(value) is list:
            return self._container(value, depth, walk)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return self._str(str(value), key)
        if isinstance(value, int):
            return self._int(int(value))
        if isinstance(value, float):
            number = float(value)
            return number if math.isfinite(number) else str(number)
        if isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value[: self.max_string * 4])
            return self._dispatch(raw.decode("utf-8", "replace"), key, depth, walk)
        if isinstance(value, datetime.datetime | datetime.date | datetime.time):
            return self.text(value.isoformat())
        if isinstance(value, decimal.Decimal | uuid.UUID):
            return self.text(str(value))
        if isinstance(value, PurePath):
            return self.text(str(value))
        return self._container(value, depth, walk)

    def _container(self, value: object, depth: int, walk: _Walk) -> Any:
        container = _container_items(value, self.max_items + 1)
        if container is None:
            return self.text(_bounded_repr(value, self.max_string))
        if depth >= self.max_depth:
            self._ctx.bump(MAX_DEPTH)
            return marker(MAX_DEPTH)
        ident = id(value)
        if ident in walk.active:
            self._ctx.bump(CYCLE)
            return marker(CYCLE)
        walk.active.add(ident)
        try:
            kind, items = container
            if kind == "map":
                return self._mapping(items, depth, walk)
            return self._sequence(items, depth, walk, sort=kind == "set")
        finally:
            walk.active.discard(ident)

    def _str(self, value: str, key: str | None) -> str:
        hit = self._cache.get(value)
        if hit is not None and not hit[1] and len(value) <= self.max_string >= len(hit[0]):
            out = hit[0]  # what self.text would answer, one call shorter
        else:
            out = self.text(value)
        if key is not None and len(out) >= _TOKEN_MIN and looks_random(out, _TOKEN_MIN):
            self._ctx.bump(TOKEN)
            return marker(TOKEN)
        return out

    def _int(self, number: int) -> Any:
        if -_INT64 <= number < _INT64:
            if abs(number) >= _CARD_MIN and card_ok(str(abs(number))):
                self._ctx.bump(CARD)
                return marker(CARD)
            return number
        try:
            digits = str(number)
        except ValueError:  # more digits than int-to-str conversion allows
            return f"<int of {number.bit_length()} bits>"
        return self.text(digits)

    def _mapping(
        self, items: Iterable[tuple[object, object]], depth: int, walk: _Walk
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        cache, classify = self._cache, self._ctx.keys.classify
        key_limit, max_items, max_nodes = self._key_limit, self.max_items, self.max_nodes
        for n, (k, v) in enumerate(items):
            if n >= max_items:
                self._ctx.bump(TRUNCATED)
                out[marker(TRUNCATED)] = marker(TRUNCATED)
                break
            if type(k) is str:
                hit = cache.get(k)
                if hit is not None and not hit[1] and len(k) <= key_limit >= len(hit[0]):
                    skey = hit[0]  # what self.text would answer, one call shorter
                else:
                    skey = self.text(k, key_limit)
            else:
                skey = self._key(k)
            if skey in out:
                skey = _dedupe(skey, out)
            # Plain ints and strings under ordinary keys: the steps of _value inline
            # (context dicts are mostly these, and every call counts on the worker).
            if type(v) is int and walk.nodes < max_nodes and not classify(skey):
                walk.nodes += 1
                out[skey] = v if -_CARD_MIN < v < _CARD_MIN else self._int(v)
            elif type(v) is str and walk.nodes < max_nodes:
                if v and v[-1] != "]" and not classify(skey):
                    walk.nodes += 1
                    out[skey] = self._str(v, skey)
                else:
                    out[skey] = self._value(v, skey, depth + 1, walk)
            else:
                out[skey] = self._value(v, skey, depth + 1, walk)
        return out

    def _sequence(
        self, items: Iterable[object], depth: int, walk: _Walk, *, sort: bool
    ) -> list[Any]:
        out: list[Any] = []
        truncated = False
        for n, item in enumerate(items):
            if n >= self.max_items:
                truncated = True
                break
            out.append(self._value(item, None, depth + 1, walk))
        if sort:
            out.sort(key=_sort_key)
        if truncated:
            self._ctx.bump(TRUNCATED)
            out.append(marker(TRUNCATED))
        return out

    def _key(self, key: object) -> str:
        if isinstance(key, str):
            text = str(key)
        elif key is None or isinstance(key, bool | int | float):
            try:
                text = str(key)
            except ValueError:
                text = "<int>"
        elif isinstance(key, bytes):
            text = key[: _MAX_KEY * 4].decode("utf-8", "replace")
        else:
            text = _bounded_repr(key, _MAX_KEY)
        return self.text(text, min(_MAX_KEY, self.max_string))


def _container_items(value: object, limit: int) -> tuple[str, list[Any]] | None:
    """``("map", pairs)``, ``("seq", items)`` or ``("set", items)`` for walkable values,
    at most ``limit`` of them (a snapshot: the original may change while we read)."""
    if type(value) is dict:
        return "map", list(islice(value.items(), limit))
    if type(value) is list:
        return "seq", value[:limit]
    if type(value) is tuple:  # a plain tuple (a named tuple is a subclass): no attribute lookup
        return "seq", list(islice(value, limit))
    if isinstance(value, Mapping):
        return "map", list(islice(value.items(), limit))
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        names: tuple[str, ...] = getattr(type(value), "_fields", ())
        return "map", [(f, _attr(value, f)) for f in islice(names, limit)]
    if isinstance(value, list | tuple | deque):
        return "seq", list(islice(value, limit))
    if isinstance(value, set | frozenset):
        return "set", list(islice(value, limit))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return "map", [(f.name, _attr(value, f.name)) for f in islice(fields, limit)]
    return None


def _attr(value: object, name: str) -> object:
    try:
        return getattr(value, name)
    except Exception:
        return f"<{_type_name(value)}.{name} {marker(REPR_ERROR)}>"


def _bounded_repr(value: object, limit: int) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<{_type_name(value)} {marker(REPR_ERROR)}>"
    return text[: limit + 1]


def _type_name(value: object) -> str:
    try:
        return str(type(value).__qualname__)[:100]
    except Exception:
        return "object"


def _is_coordinate(value: object) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return math.isfinite(value) and abs(value) <= 180
    if isinstance(value, str):
        try:
            return abs(float(value)) <= 180 and "." in value
        except ValueError:
            return False
    if isinstance(value, list | tuple) and len(value) == 2:
        return all(_is_coordinate(v) for v in value)
    return False


def _dedupe(key: str, taken: Mapping[str, Any]) -> str:
    for n in range(2, len(taken) + 3):
        candidate = f"{key} ({n})"
        if candidate not in taken:
            return candidate
    return f"{key} ({len(taken) + 3})"


def _sort_key(value: Any) -> tuple[str, str]:
    return type(value).__name__, repr(value)


def _cut(text: str, room: int) -> str:
    """``text[:room]``, moved back so it does not end inside a marker."""
    head = text[:room]
    opening = head.rfind("[")
    if opening > head.rfind("]") and MARKER_RE.match(text, opening):
        return head[:opening]
    return head
