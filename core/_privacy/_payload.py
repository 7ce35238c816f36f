"""Scrubbing the event payload a transport receives (shape: see ``_transport``).

Field by field: free text (``message``, exception and chain values, tags,
component/category/priority) through the text rules; ``context`` and
``breadcrumbs`` through the value scrubber; frame paths made project-relative and
rid of home directories (function, module, line number untouched: they are code);
the request reduced to what is safe (see ``_request``). Fields errwire itself
produced (ids, timestamps, counters, fingerprint, release, environment, server
name, runtime) are copied. Unknown fields are scrubbed as values: a new field
can never leak by default. The input is never modified.

Errors come from the same code, so stacks and tags repeat from event to event:
their scrubbed form is cached, keyed by their ``marshal`` serialisation (one C
call that encodes every key, value, order and exact type, and refuses anything
else, so a hit is an input that scrubs exactly the same way). A hit returns fresh
copies and replays the redaction counts the first scrub made. What the payload
builder shares between events (``FrozenFrames`` stacks, ``FrozenMap`` tags and
runtime fields: never modified) is looked up by identity instead, which spares
serialising it. So is the ``base`` of a ``BuiltPayload`` (every field but the
per-event ones, shared by the events of one kind): it is scrubbed once, and then
each event costs a copy of its scrubbed form and the scrub of its own fields.

If anything goes wrong the payload fails closed: only errwire's own fields are
kept and the message says ``[SCRUB-ERROR]``.
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

from errwire._internal import internal_error
from errwire._payload import BuiltPayload, FrozenFrames, FrozenMap
from errwire._privacy._keys import ALLOWED_HEADERS, NEVER_HEADERS, KeyPolicy, header_name
from errwire._privacy._markers import REDACTED, SCRUB_ERROR, marker
from errwire._privacy._paths import relativize
from errwire._privacy._rules import Context, Tally
from errwire._privacy._structure import ValueScrubber
from errwire._privacy._urls import redact_query, scrub_path_query
from errwire._request import anonymise_ip, hash_identifier

__all__ = ["PayloadScrubber"]

_OWN_FIELDS = frozenset(
    [
        "event_id",
        "timestamp",
        "level",
        "origin",
        "fingerprint",
        "repeats",
        "suppressed",
        "release",
        "environment",
        "server_name",
    ]
)
_TEXT_FIELDS = frozenset(("message", "component", "category", "priority"))
_CODE_FRAME_FIELDS = frozenset(("function", "module", "lineno", "in_app"))
_PATH_FRAME_FIELDS = frozenset(("filename", "abs_path"))
_METHOD = re.compile(r"[A-Za-z]{1,16}", re.ASCII)
_NO_HOME = ("home",)  # a request path like /home/dashboard is a page, not a home directory


_HASHED_USER = re.compile(r"user-[0-9a-f]{16}")

_SCALARS = frozenset((str, int, float, bool, type(None)))
_DICT = frozenset((dict,))
_RUNTIME_TYPES = (str, int, float)  # a tuple: isinstance() with a union is slower
_STACK_ENTRIES = 1024
_FRAME_ENTRIES = 4096
_TAGS_ENTRIES = 1024
_SHARED_ENTRIES = 2048
# id(part) -> (part, its scrubbed answer, the redactions it counted, how to copy the answer)
_Memo = dict[int, tuple[object, Any, tuple[str, ...], Callable[[Any], Any]]]
# what _built takes from the payload itself (a test holds it to the builder's PER_EVENT)
_PER_EVENT = frozenset(
    ("event_id", "timestamp", "repeats", "suppressed", "context", "chain", "request")
)
_BASE_ENTRIES = 1024
_CACHED_BYTES = 65536  # larger inputs are scrubbed every time (a key is kept per entry)

_Cached = tuple[Any, tuple[str, ...]]  # (scrubbed form, redaction kinds to replay)
# (own fields, (field, its scrub step) for every other field) of one payload shape
_Plan = tuple[tuple[str, ...], tuple[tuple[str, Callable[[Any], Any]], ...]]
_PLAN_ENTRIES = 64


class PayloadScrubber:
    __slots__ = (
        "_bases",
        "_ctx",
        "_fields",
        "_frames",
        "_keys",
        "_plans",
        "_root",
        "_send_pii",
        "_shared",
        "_stacks",
        "_tags",
        "_tally",
        "_text_cache",
        "_values",
    )

    def __init__(
        self,
        values: ValueScrubber,
        ctx: Context,
        tally: Tally,
        keys: KeyPolicy,
        *,
        project_root: str | None,
        send_default_pii: bool,
    ) -> None:
        self._values = values
        self._ctx = ctx
        self._tally = tally
        self._keys = keys
        self._root = project_root
        self._send_pii = send_default_pii
        self._stacks: dict[bytes, _Cached] = {}
        # id -> (the shared object, its scrubbed form, redaction kinds, how to copy that
        # form); holding the object keeps its id from being reused while it is cached.
        self._shared: _Memo = {}
        self._frames: dict[bytes, _Cached] = {}
        self._tags: dict[bytes, _Cached] = {}
        self._plans: dict[tuple[str, ...], _Plan] = {}
        # BuiltPayload bases: as _shared, in a memo of their own (they are many more)
        self._bases: _Memo = {}
        self._text_cache = values.text_cache
        text, context = self._text_field, values.scrub
        self._fields: dict[object, Callable[[Any], Any]] = {
            **dict.fromkeys(_TEXT_FIELDS, text),
            "exception": self._exception_field,
            "chain": self._chain_field,
            "request": self._request_field,
            "tags": self._tags_field,
            "context": context,
            "runtime": self._runtime_field,
        }

    def scrub(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self._payload(payload)
        except Exception as exc:
            self._ctx.bump(SCRUB_ERROR)
            internal_error("privacy.scrub_payload", exc)
            return _fail_closed(payload)

    def _payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        v = self._values
        fields, other = self._fields, self._other
        if type(payload) is BuiltPayload:
            return self._built(payload)
        if type(payload) is dict or type(payload) is FrozenMap:  # (copy() makes a dict)
            # errwire's own fields (ids, timestamps, counters...) are kept when scalar:
            # copy everything (the order too), then replace what needs scrubbing.
            out = payload.copy()
            plan = self._plans.get(tuple(payload))
            if plan is None:
                plan = self._plan(payload)
            own, scrubbed = plan
            if not _SCALARS.issuperset(map(type, map(payload.__getitem__, own))):
                for key in own:
                    if not _is_scalar(payload[key]):
                        out[key] = v.scrub(payload[key])
            for key, scrub in scrubbed:
                value = payload[key]
                if value is not None:  # every step keeps None as it is, counting nothing
                    out[key] = scrub(value)
            return out
        return {
            key: (value if _is_scalar(value) else v.scrub(value))
            if key in _OWN_FIELDS
            else fields.get(key, other)(value)
            for key, value in payload.items()
        }

    def _built(self, payload: BuiltPayload) -> dict[str, Any]:
        """A payload whose shared fields are its ``base`` (see ``BuiltPayload``): the base
        scrubbed once (its counts replayed), then the per-event fields as usual. Every
        field of the answer is a scrubbed one: the base's, or the payload's own."""
        out: dict[str, Any] = self._memoised(
            self._bases, _BASE_ENTRIES, payload.base, self._payload
        )
        # the per-event fields (_PER_EVENT, the builder's PER_EVENT), one by one:
        # errwire's own ones kept when scalar, the others through their scrub steps
        own = self._own_value
        value = payload["event_id"]
        out["event_id"] = value if type(value) in _SCALARS else own(value)
        value = payload["timestamp"]
        out["timestamp"] = value if type(value) in _SCALARS else own(value)
        value = payload["repeats"]
        out["repeats"] = value if type(value) in _SCALARS else own(value)
        value = payload["suppressed"]
        out["suppressed"] = value if type(value) in _SCALARS else own(value)
        value = payload["context"]
        out["context"] = None if value is None else self._values.scrub(value)
        value = payload["chain"]
        out["chain"] = None if value is None else self._chain_field(value)
        value = payload["request"]
        out["request"] = None if value is None else self._request_field(value)
        return out

    def _own_value(self, value: Any) -> Any:
        """One of errwire's own fields: kept when scalar, else scrubbed as a value."""
        return value if _is_scalar(value) else self._values.scrub(value)

    def _plan(self, payload: dict[str, Any]) -> _Plan:
        """For payloads with these keys in this order (the builder makes one shape):
        the own fields among them, and every other field with its scrub step."""
        fields, other = self._fields, self._other
        own = tuple(key for key in payload if key in _OWN_FIELDS)
        scrubbed = tuple((key, fields.get(key, other)) for key in payload if key not in _OWN_FIELDS)
        if len(self._plans) >= _PLAN_ENTRIES:
            self._plans.clear()
        plan = self._plans[tuple(payload)] = (own, scrubbed)
        return plan

    def _text_field(self, value: Any) -> Any:
        if value is None:
            return None
        if type(value) is str:
            hit = self._text_cache.get(value)
            if hit is not None and len(value) <= self._values.max_string >= len(hit[0]):
                if hit[1]:  # what self._text would answer, two calls shorter
                    self._tally.replay(hit[1])
                return hit[0]
        return self._text(value)

    def _exception_field(self, value: Any) -> Any:
        if value is None:
            return None
        # (a shared exception part is not memoised on its own: it comes in a
        # BuiltPayload's base, whose scrubbed form is)
        return self._exception(value)

    def _tags_field(self, value: Any) -> Any:
        if type(value) is FrozenMap:
            hit = self._shared.get(id(value))
            if hit is not None and hit[0] is value and not hit[2]:
                return hit[3](hit[1])  # what _shared_part answers, a call shorter
            return self._shared_part(value, self._tag_map)
        if type(value) is dict or isinstance(value, Mapping):
            return self._cached(self._tags, _TAGS_ENTRIES, self._tag_map, value)
        return self._other(value)

    def _runtime_field(self, value: Any) -> Any:
        if type(value) is FrozenMap:
            hit = self._shared.get(id(value))
            if hit is not None and hit[0] is value and not hit[2]:
                return hit[3](hit[1])  # what _shared_part answers, a call shorter
            return self._shared_part(value, _runtime_map)
        if type(value) is dict or isinstance(value, Mapping):
            return _runtime_map(value)
        return self._other(value)

    def _chain_field(self, value: Any) -> Any:
        if type(value) is list and not value:
            return []
        if isinstance(value, list | tuple):
            return [self._exception(e) for e in value[: self._values.max_items]] if value else []
        return self._other(value)

    def _request_field(self, value: Any) -> Any:
        return None if value is None else self._request(value)

    def _other(self, value: Any) -> Any:
        return self._values.scrub(value, None)  # breadcrumbs and anything unknown

    def _text(self, value: object) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return self._values.text(value)
        return self._values.scrub(value)

    def _tag_map(self, tags: Mapping[Any, Any]) -> dict[str, Any]:
        v = self._values
        return {
            v.text(str(k), 256): self._text(val) for k, val in list(tags.items())[: v.max_items]
        }

    def _exception(self, exc: object) -> Any:
        if type(exc) is not dict and not isinstance(exc, Mapping):
            return self._values.scrub(exc)
        out: dict[str, Any] = {}
        for key, value in exc.items():
            if key in ("type", "relation") and isinstance(value, str):
                out[key] = value[:512]  # a class path or relation name: code, not data
            elif key == "value":
                out[key] = self._text(value)
            elif key == "stack" and type(value) is FrozenFrames:
                out[key] = self._shared_part(value, self._stack)
            elif key == "stack" and isinstance(value, list | tuple):
                out[key] = self._cached(self._stacks, _STACK_ENTRIES, self._stack, value)
            else:
                out[key] = self._values.scrub(value, str(key))
        return out

    def _shared_part(self, part: Any, scrub: Callable[[Any], Any]) -> Any:
        """``scrub(part)`` for a part the builder shares between events, worked out once
        per part (fresh copies after, its redaction counts replayed)."""
        return self._memoised(self._shared, _SHARED_ENTRIES, part, scrub)

    def _memoised(self, memo: _Memo, limit: int, part: Any, scrub: Callable[[Any], Any]) -> Any:
        """``scrub(part)`` once per (never modified) ``part`` kept in ``memo``: later
        calls get a fresh copy of the answer and replay the redaction counts. An answer
        that met a scrub error, or that cannot be copied, is not kept."""
        hit = memo.get(id(part))
        if hit is not None and hit[0] is part:
            if hit[2]:
                self._tally.replay(hit[2])
            return hit[3](hit[1])
        out, kinds = self._tally.record(scrub, part)
        copy = _copier(out)
        if SCRUB_ERROR not in kinds and copy is not None:
            if len(memo) >= limit:
                memo.clear()
            memo[id(part)] = (part, copy(out), kinds, copy)
        return out

    def _stack(self, stack: list[Any] | tuple[Any, ...]) -> list[Any]:
        cache, frame = self._frames, self._frame
        return [self._cached(cache, _FRAME_ENTRIES, frame, f) for f in stack]

    def _cached(
        self, cache: dict[bytes, _Cached], size: int, scrub: Callable[[Any], Any], value: Any
    ) -> Any:
        """``scrub(value)``, from ``cache`` when ``value`` was seen before: a stack, a
        frame or tags (flat data: other values are scrubbed every time)."""
        try:
            key = marshal.dumps(value)
        except Exception:  # not plain data (a subclass, an object): no shortcut
            return scrub(value)
        if len(key) > _CACHED_BYTES:
            return scrub(value)
        hit = cache.get(key)
        if hit is not None:
            if hit[1]:
                self._tally.replay(hit[1])
            return _fresh(hit[0])
        out, kinds = self._tally.record(scrub, value)
        if SCRUB_ERROR not in kinds and _flat(out):
            if len(cache) >= size:
                cache.clear()
            cache[key] = (_fresh(out), kinds)
        return out

    def _frame(self, frame: object) -> Any:
        if not isinstance(frame, Mapping):
            return self._values.scrub(frame)
        out: dict[str, Any] = {}
        for key, value in frame.items():
            if key in _CODE_FRAME_FIELDS and isinstance(value, str | int | bool):
                out[key] = value
            elif key in _PATH_FRAME_FIELDS and isinstance(value, str):
                out[key] = self._values.text(relativize(value, self._root))
            else:
                out[key] = self._values.scrub(value, str(key))
        return out

    # ------------------------------------------------------------ request

    def _request(self, request: object) -> Any:
        """Method and route kept; path ids and query values out; allow-listed headers only;
        no cookies; the client address anonymised and the user id hashed unless
        ``send_default_pii`` (integrations already do both; this is the safety net)."""
        if not isinstance(request, Mapping):
            return self._values.scrub(request)
        v = self._values
        out: dict[str, Any] = {}
        for key, value in request.items():
            if key == "method" and isinstance(value, str) and _METHOD.fullmatch(value):
                out[key] = value.upper()
            elif key == "route" and isinstance(value, str):
                out[key] = v.text(value, skip=_NO_HOME)
            elif key == "path" and isinstance(value, str):
                out[key] = v.text(scrub_path_query(value, self._ctx), skip=_NO_HOME)
            elif key in ("query", "query_string"):
                out[key] = self._query(value)
            elif key == "headers":
                out[key] = self._headers(value)
            elif key == "cookies":
                continue
            elif key in ("client", "user"):
                if self._send_pii:
                    out[key] = value if isinstance(value, str | int) else v.scrub(value)
                elif key == "client" and isinstance(value, str):
                    network = anonymise_ip(value)  # idempotent: anonymised stays as it is
                    if network is not None:  # not an address at all: leave it out
                        out[key] = network
                elif key == "user" and value is not None:
                    token = str(value)
                    out[key] = token if _HASHED_USER.fullmatch(token) else hash_identifier(token)
            else:
                out[key] = v.scrub(value, str(key))
        return out

    def _query(self, query: object) -> Any:
        v = self._values
        if isinstance(query, str):
            return v.text(redact_query(query.lstrip("?"), self._ctx))
        if not isinstance(query, Mapping):
            return v.scrub(query)
        out: dict[str, Any] = {}
        for key, value in list(query.items())[: v.max_items]:
            skey = v.text(str(key), 256)
            if value is None or value in ("", []):
                out[skey] = value if isinstance(value, str | None) else []
            else:
                self._ctx.bump(REDACTED)
                out[skey] = marker(REDACTED)
        return out

    def _headers(self, headers: object) -> dict[str, Any]:
        pairs: list[tuple[Any, Any]]
        if isinstance(headers, Mapping):
            pairs = list(headers.items())
        elif isinstance(headers, list | tuple):
            pairs = [(p[0], p[1]) for p in headers if isinstance(p, list | tuple) and len(p) == 2]
        else:
            return {}
        out: dict[str, Any] = {}
        for name, value in pairs[: self._values.max_items]:
            if not isinstance(name, str):
                continue
            canon = header_name(name)
            if canon in NEVER_HEADERS:
                continue
            if canon in ALLOWED_HEADERS or self._keys.allowed(canon):
                text = value if isinstance(value, str) else str(value)
                out[name] = self._values.text(text)
        return out


def _runtime_map(value: Mapping[Any, Any]) -> dict[Any, Any]:
    return {k: val for k, val in value.items() if isinstance(val, _RUNTIME_TYPES)}


def _flat(value: object) -> bool:
    """A scalar, a dict of scalars, or a list of those: what ``_fresh`` copies whole."""
    if type(value) in _SCALARS:
        return True
    if type(value) is dict:
        return all(type(v) in _SCALARS for v in value.values())
    if type(value) is list:
        return all(_flat(item) and type(item) is not list for item in value)
    return False


def _fresh(value: Any) -> Any:
    """A copy of a ``_flat`` value that the caller may change without changing the cache."""
    if type(value) is dict:
        return value.copy()
    if type(value) is list:
        try:
            return list(map(dict.copy, value))  # a stack: all frames are dicts
        except TypeError:
            return [item.copy() if type(item) is dict else item for item in value]
    return value


def _same(value: Any) -> Any:
    return value


def _copier(value: object) -> Callable[[Any], Any] | None:
    """How to copy ``value`` so that the caller may change the copy without changing
    the original: for scalars, lists of scalars, lists of flat dicts (a stack) and
    dicts of those (and of such dicts: a payload, an exception); None for anything
    else (then it is not remembered)."""
    kind = type(value)
    if kind in _SCALARS:
        return _same
    if kind is list:
        items: list[Any] = value  # type: ignore[assignment]
        types = set(map(type, items))  # (C-level scans: a stack has many frames)
        if types <= _SCALARS:
            return list.copy
        if types == _DICT and _SCALARS.issuperset(
            map(type, chain.from_iterable(map(dict.values, items)))
        ):
            return _copy_dicts
        return None
    if kind is not dict:
        return None
    nested: list[tuple[Any, Callable[[Any], Any]]] = []
    for key, item in value.items():  # type: ignore[attr-defined]
        if type(item) not in _SCALARS:
            sub = _copier(item)
            if sub is None:
                return None
            nested.append((key, sub))
    if not nested:
        return dict.copy
    steps = tuple(nested)

    def copy(part: dict[Any, Any]) -> dict[Any, Any]:
        out = part.copy()
        for key, sub in steps:
            out[key] = sub(part[key])
        return out

    return copy


def _copy_dicts(value: list[dict[Any, Any]]) -> list[dict[Any, Any]]:
    return list(map(dict.copy, value))


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _fail_closed(payload: object) -> dict[str, Any]:
    out: dict[str, Any] = {"message": marker(SCRUB_ERROR)}
    if isinstance(payload, Mapping):
        try:
            for key in _OWN_FIELDS:
                value = payload.get(key)
                if _is_scalar(value):
                    out[key] = value
        except Exception:  # noqa: S110  # a broken mapping: the marker alone is the answer
            pass
    return out
