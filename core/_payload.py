"""Building the payload a transport receives, on the worker thread.

Resolves the raw stack into frames (line numbers, modules, in-app, paths
relative to the project), classifies the event, fingerprints it and turns
context into bounded JSON-safe data. The scrub stage then runs over the result.

Errors repeat: the same stacks, types and messages come back event after event.
So everything derived from them alone is worked out once and kept in bounded
caches (a full cache is emptied, not evicted piecemeal: the working set of an
application's errors is small, and an empty cache refills in a few events):

* a stack (the ``(code, offset)`` pairs of a snapshot) -> its resolved frames,
  top frame and default component (``Stack``);
* an exception class -> its type name and category;
* (component, category, type, message, top frame) -> the fingerprint.

A resolved ``Stack``'s frames are shared by every event with that stack and are
never modified; so are the tags of a (component, category, priority, origin), the
runtime's own fields and the exception part of a (class, message, stack). They
reach a payload as ``FrozenFrames`` and ``FrozenMap`` only when the scrub stage is
errwire's scrubber, which always returns fresh copies (and memoises its work per
shared object); any other scrub stage gets fresh lists and dicts, as before. For
errwire's scrubber, from the second event of a kind on, the payload is also a
``BuiltPayload``: every field but the per-event ones (id, timestamp, context,
request, chain, counts) comes from a shared ``base`` for its (exception, message,
component, category, priority, level, origin, fingerprint), which the scrubber
scrubs once. (The first event of a kind gets a plain payload: a message with an id
in it never repeats, and must not fill the caches.)
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping
from types import CodeType
from typing import Any

from ._classify import ComponentResolver, InAppPolicy, category_for
from ._config import Config
from ._event import Event, RawFrames, frame_line
from ._fingerprint import fingerprint
from ._jsonsafe import json_safe
from ._modules import ModuleIndex
from ._transport import Payload

__all__ = [
    "PER_EVENT",
    "BuiltPayload",
    "FrozenFrames",
    "FrozenMap",
    "PayloadBuilder",
    "Stack",
    "type_name",
]

_FRAME_CACHE_SIZE = 4096
_STACK_CACHE_SIZE = 1024
_CLASS_CACHE_SIZE = 1024
_FINGERPRINT_CACHE_SIZE = 4096
_TAGS_CACHE_SIZE = 1024
_EXCEPTIONS_CACHE_SIZE = 1024
_BASES_CACHE_SIZE = 1024
_SEEN_ONCE_SIZE = 4096
_MAX_KEY = 200  # json_safe's bound for a context key
_INT_BOUND = 2**63  # json_safe's bound for an int kept as a number
# Event ids: a private generator (an application's random.seed() must not make ids
# repeat), seeded from os.urandom and reseeded in forked children. 30x cheaper than
# uuid4(), which reads os.urandom on every call.
_ids = random.Random()
_random_bits = _ids.getrandbits
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)


def type_name(cls: type[BaseException]) -> str:
    module = getattr(cls, "__module__", None) or "builtins"
    return f"{module}.{cls.__qualname__}"


class FrozenFrames(tuple):  # type: ignore[type-arg]
    """A resolved stack's frames (dicts), shared between events: never modify them.

    Only errwire's scrubber receives one (it returns copies, see the module doc)."""

    __slots__ = ()


class FrozenMap(dict):  # type: ignore[type-arg]
    """A flat mapping (tags, runtime fields) shared between events: never modify it.

    Only errwire's scrubber receives one (it returns copies, see the module doc)."""

    __slots__ = ()


class BuiltPayload(dict):  # type: ignore[type-arg]
    """A payload for errwire's scrubber whose fields that are the same for every event
    of its kind (message, exception, component, tags...) are also in ``base``, a
    ``FrozenMap`` shared by those events: the scrubber scrubs ``base`` once and only
    the per-event fields (``PER_EVENT``) each time (see the module doc)."""

    __slots__ = ("base",)

    base: FrozenMap


# The fields of a payload that differ from event to event; ``BuiltPayload.base`` has
# None in their place.
PER_EVENT = ("event_id", "timestamp", "chain", "context", "request", "repeats", "suppressed")


class Stack:
    """A resolved stack: its frames (innermost last), the top frame (the innermost
    in-app one, else the innermost), and what the top frame says about the event."""

    __slots__ = ("_codes", "component", "frames", "top_key", "top_module")

    def __init__(self, codes: tuple[Any, ...], frames: FrozenFrames, component: str | None) -> None:
        self._codes = codes  # keeps the code objects, so the ids in the cache key stay theirs
        self.frames = frames
        top = next((f for f in reversed(frames) if f["in_app"]), frames[-1] if frames else None)
        self.top_module: str | None = top["module"] if top else None
        self.top_key = f"{top['module']}:{top['function']}" if top else ""
        self.component = component


class PayloadBuilder:
    """Everything the worker needs to know to resolve and describe an event."""

    def __init__(self, config: Config, runtime_id: str, pid: int) -> None:
        self._config = config
        self._root = os.path.join(config.resolved_project_root, "")
        self._modules = ModuleIndex()
        self._in_app = InAppPolicy(config.in_app_include, config.in_app_exclude)
        self._components = ComponentResolver(config.component_map)
        self._runtime = FrozenMap(pid=pid, runtime_id=runtime_id)
        self._tags: dict[tuple[str, str, str | None, str], FrozenMap] = {}
        self._frame_cache: dict[tuple[int, int], tuple[CodeType, dict[str, Any]]] = {}
        self._stacks: dict[tuple[tuple[int, ...], tuple[Any, ...]], Stack] = {}
        self._classes: dict[type[BaseException], tuple[str, str]] = {}
        self._fingerprints: dict[tuple[str, str, str, str, str], str] = {}
        self._exceptions: dict[tuple[type[BaseException], str, int], tuple[Stack, FrozenMap]] = {}
        self._bases: dict[tuple[Any, ...], tuple[Stack, FrozenMap]] = {}
        self._seen_once: set[int] = set()  # hashes of the kinds seen once, without a base
        self._max_context = config.max_context_keys
        self._max_string = config.max_message_length
        # Set when the scrub stage is errwire's scrubber: payloads may then carry the
        # shared frames and runtime dict (see the module doc).
        self.scrub_copies = False

    # ------------------------------------------------------------------ stacks
    def stack(self, raw: RawFrames) -> Stack:
        """The resolved stack of a snapshot's ``(code, offset, ...)`` tuple (cached)."""
        codes = raw[::2]
        # Code objects hash slowly; their ids are as good a key while the cached Stack
        # keeps them alive (no other object can have their id meanwhile).
        key = (tuple(map(id, codes)), raw[1::2])
        hit = self._stacks.get(key)
        if hit is None:
            frames = FrozenFrames(self._frame(raw[i], raw[i + 1]) for i in range(0, len(raw), 2))
            hit = Stack(codes, frames, None)
            hit.component = self._components(hit.top_module)
            if len(self._stacks) >= _STACK_CACHE_SIZE:
                self._stacks.clear()
            self._stacks[key] = hit
        return hit

    def frames(self, raw: RawFrames) -> list[dict[str, Any]]:
        """Resolved frames, innermost last: fresh copies the caller may change."""
        return [dict(frame) for frame in self.stack(raw).frames]

    def _frame(self, code: CodeType, lasti: int) -> dict[str, Any]:
        """One resolved frame; a (code, offset) pair always resolves the same way."""
        cache = self._frame_cache
        hit = cache.get((id(code), lasti))
        if hit is None or hit[0] is not code:  # ids are reused once code is freed
            hit = (code, self._resolve(code, lasti))
            if len(cache) >= _FRAME_CACHE_SIZE:
                cache.clear()
            cache[(id(code), lasti)] = hit
        return hit[1]

    def _resolve(self, code: CodeType, lasti: int) -> dict[str, Any]:
        abs_path = code.co_filename
        module = self._modules.module_for(abs_path)
        filename = abs_path[len(self._root) :] if abs_path.startswith(self._root) else abs_path
        return {
            "filename": filename,
            "abs_path": abs_path,
            "function": getattr(code, "co_qualname", code.co_name),
            "module": module,
            "lineno": frame_line(code, lasti),
            "in_app": self._in_app(abs_path, module),
        }

    # -------------------------------------------------------------- classify
    def _class(self, cls: type[BaseException]) -> tuple[str, str]:
        """(type name, category) of an exception class (cached)."""
        hit = self._classes.get(cls)
        if hit is None:
            hit = (type_name(cls), category_for(cls))
            if len(self._classes) >= _CLASS_CACHE_SIZE:
                self._classes.clear()
            self._classes[cls] = hit
        return hit

    def classify(self, event: Event, stack: Stack | list[dict[str, Any]]) -> tuple[str, str, str]:
        """Fill in component, category (unless given) and the fingerprint."""
        if isinstance(stack, Stack):
            module, top_key, component = stack.top_module, stack.top_key, stack.component
        else:
            top = next((f for f in reversed(stack) if f["in_app"]), stack[-1] if stack else None)
            module = top["module"] if top else None
            top_key = f"{top['module']}:{top['function']}" if top else ""
            component = None
        if event.component is None:
            event.component = component or self._components(module)
        exc_type = ""
        if event.exc_class is not None:
            exc_type, category = self._class(event.exc_class)
            if event.category is None:
                event.category = category
        elif event.category is None:
            event.category = category_for(None)
        key = (event.component, event.category, exc_type, event.message[:500], top_key)
        fp = self._fingerprints.get(key)
        if fp is None:
            fp = fingerprint(*key)
            if len(self._fingerprints) >= _FINGERPRINT_CACHE_SIZE:
                self._fingerprints.clear()
            self._fingerprints[key] = fp
        event.fingerprint = fp
        return event.component, event.category, top_key

    # ----------------------------------------------------------------- build
    def build(self, event: Event, stack: Stack | list[dict[str, Any]], suppressed: int) -> Payload:
        shared = self.scrub_copies
        chain = (
            [
                {
                    "type": self._class(cls)[0],
                    "value": msg,
                    "stack": self._stack_payload(self.stack(raw)),
                    "relation": rel,
                }
                for cls, msg, raw, rel in event.chain
            ]
            if event.chain
            else []
        )
        priority = event.priority
        context = event.context
        if not context:
            context = {}
        elif not _plain(context, self._max_context, self._max_string):
            context = json_safe(context, max_items=self._max_context, max_string=self._max_string)
        # else: the event's own shallow copy, already what json_safe would return
        component = event.component or "unknown"
        category = event.category or "generic"
        if shared and type(stack) is Stack:
            base = self._base(event, stack, component, category)
            if base is not None:
                payload = BuiltPayload(base)
                payload.base = base
                payload["event_id"] = f"{_random_bits(128):032x}"
                payload["timestamp"] = event.timestamp
                payload["chain"] = chain
                payload["context"] = context
                payload["request"] = json_safe(event.request) if event.request else None
                payload["repeats"] = event.repeats
                payload["suppressed"] = suppressed
                return payload
        exception = None
        if event.exc_class is not None:
            exception = {
                "type": self._class(event.exc_class)[0],
                "value": event.message,
                "stack": self._stack_payload(stack),
            }
        return self._layout(
            f"{_random_bits(128):032x}",
            event.timestamp,
            event.level,
            event.origin,
            event.message,
            exception,
            chain,
            component,
            category,
            priority,
            context,
            json_safe(event.request) if event.request else None,
            event.fingerprint or "",
            event.repeats,
            suppressed,
            self._shared_tags(component, category, priority, event.origin)
            if shared
            else _tags(component, category, priority, event.origin),
            self._runtime if shared else dict(self._runtime),
        )

    def _layout(
        self,
        event_id: str | None,
        timestamp: float | None,
        level: str,
        origin: str,
        message: str,
        exception: dict[str, Any] | None,
        chain: list[dict[str, Any]] | None,
        component: str,
        category: str,
        priority: str | None,
        context: dict[str, Any] | None,
        request: Any,
        fingerprint: str,
        repeats: int | None,
        suppressed: int | None,
        tags: dict[str, Any],
        runtime: dict[str, Any],
    ) -> dict[str, Any]:
        """A payload's fields in their one order (a plain payload and a shared base
        alike: the scrubber plans its work by the order of the keys)."""
        cfg = self._config
        return {
            "event_id": event_id,
            "timestamp": timestamp,
            "level": level,
            "origin": origin,
            "message": message,
            "exception": exception,
            "chain": chain,
            "component": component,
            "category": category,
            "priority": priority,
            "context": context,
            "request": request,
            "fingerprint": fingerprint,
            "repeats": repeats,
            "suppressed": suppressed,
            "tags": tags,
            "release": cfg.release,
            "environment": cfg.environment,
            "server_name": cfg.server_name,
            "runtime": runtime,
        }

    def _base(self, event: Event, stack: Stack, component: str, category: str) -> FrozenMap | None:
        """The fields shared by every event of this kind, with None for ``PER_EVENT``
        (cached); None when a field is not of the plain type the cache key needs."""
        cls, message, priority = event.exc_class, event.message, event.priority
        level, origin, fp = event.level, event.origin, event.fingerprint or ""
        if not (
            type(message) is str
            and type(component) is str
            and type(category) is str
            and (priority is None or type(priority) is str)
            and type(level) is str
            and type(origin) is str
        ):
            return None
        key = (cls, id(stack), message, component, category, priority, level, origin, fp)
        hit = self._bases.get(key)
        if hit is not None and hit[0] is stack:  # the entry holds it: its id stays its own
            return hit[1]
        # A kind is given a base from its second event on: a message seen once (one
        # with an id in it) would only fill the caches here and in the scrubber.
        seen = hash(key)
        if seen not in self._seen_once:
            if len(self._seen_once) >= _SEEN_ONCE_SIZE:
                self._seen_once.clear()
            self._seen_once.add(seen)
            return None
        base = FrozenMap(  # PER_EVENT fields None
            self._layout(
                None,
                None,
                level,
                origin,
                message,
                None if cls is None else self._shared_exception(cls, message, stack),
                None,
                component,
                category,
                priority,
                None,
                None,
                fp,
                None,
                None,
                self._shared_tags(component, category, priority, origin),
                self._runtime,
            )
        )
        if len(self._bases) >= _BASES_CACHE_SIZE:
            self._bases.clear()
        self._bases[key] = (stack, base)
        return base

    def _shared_tags(
        self, component: str, category: str, priority: str | None, origin: str
    ) -> FrozenMap:
        key = (component, category, priority, origin)
        hit = self._tags.get(key)
        if hit is None:
            hit = FrozenMap(_tags(component, category, priority, origin))
            if len(self._tags) >= _TAGS_CACHE_SIZE:
                self._tags.clear()
            self._tags[key] = hit
        return hit

    def _shared_exception(self, cls: type[BaseException], message: str, stack: Stack) -> FrozenMap:
        """The exception part of a payload, shared by every event with this class,
        message and stack (the scrubber memoises its scrubbed form per object)."""
        key = (cls, message, id(stack))
        hit = self._exceptions.get(key)
        if hit is None or hit[0] is not stack:  # the Stack keeps its id from being reused
            part = FrozenMap(type=self._class(cls)[0], value=message, stack=stack.frames)
            hit = (stack, part)
            if len(self._exceptions) >= _EXCEPTIONS_CACHE_SIZE:
                self._exceptions.clear()
            self._exceptions[key] = hit
        return hit[1]

    def _stack_payload(self, stack: Stack | list[dict[str, Any]]) -> Any:
        if not isinstance(stack, Stack):
            return stack
        if self.scrub_copies:
            return stack.frames
        return [dict(frame) for frame in stack.frames]


def _tags(component: str, category: str, priority: str | None, origin: str) -> dict[str, str]:
    return {
        "component": component,
        "category": category,
        "priority": priority or "normal",
        "error_origin": origin,
    }


def _plain(context: Mapping[Any, Any], max_items: int, max_string: int) -> bool:
    """Whether ``json_safe(context)`` would equal ``context``: a plain dict, within
    bounds, of str keys and JSON scalars (most contexts). Saves a walk and a copy."""
    if type(context) is not dict or len(context) > max_items:
        return False
    for key, value in context.items():
        if type(key) is not str or len(key) > _MAX_KEY:
            return False
        kind = type(value)
        if kind is str:
            if len(value) > max_string:
                return False
        elif kind is int:
            if not -_INT_BOUND <= value <= _INT_BOUND:
                return False
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif value is not None and kind is not bool:
            return False
    return True
