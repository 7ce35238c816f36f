"""Building the payload a transport receives, on the worker thread.

Resolves the raw stack into frames (line numbers, modules, in-app, paths
relative to the project), classifies the event, fingerprints it and turns
context into bounded JSON-safe data. The scrub stage then runs over the result.
"""

from __future__ import annotations

import os
import random
from types import CodeType
from typing import Any

from ._classify import ComponentResolver, InAppPolicy, category_for
from ._config import Config
from ._event import Event, RawFrames, frame_line
from ._fingerprint import fingerprint
from ._jsonsafe import json_safe
from ._modules import ModuleIndex
from ._transport import Payload

__all__ = ["PayloadBuilder", "type_name"]

_FRAME_CACHE_SIZE = 4096
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


class PayloadBuilder:
    """Everything the worker needs to know to resolve and describe an event."""

    def __init__(self, config: Config, runtime_id: str, pid: int) -> None:
        self._config = config
        self._root = os.path.join(config.resolved_project_root, "")
        self._modules = ModuleIndex()
        self._in_app = InAppPolicy(config.in_app_include, config.in_app_exclude)
        self._components = ComponentResolver(config.component_map)
        self._runtime = {"pid": pid, "runtime_id": runtime_id}
        self._frame_cache: dict[tuple[int, int], tuple[CodeType, dict[str, Any]]] = {}

    def frames(self, raw: RawFrames) -> list[dict[str, Any]]:
        """Resolved frames, innermost last. A (code, offset) pair always resolves the
        same way, so each is worked out once and copied after (bounded cache)."""
        cache = self._frame_cache
        out = []
        for i in range(0, len(raw), 2):
            code, lasti = raw[i], raw[i + 1]
            hit = cache.get((id(code), lasti))
            if hit is None or hit[0] is not code:  # ids are reused once code is freed
                hit = (code, self._resolve(code, lasti))
                if len(cache) >= _FRAME_CACHE_SIZE:
                    cache.clear()
                cache[(id(code), lasti)] = hit
            out.append(dict(hit[1]))
        return out

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

    def classify(self, event: Event, stack: list[dict[str, Any]]) -> tuple[str, str, str]:
        """Fill in component, category (unless given) and the fingerprint."""
        top = next((f for f in reversed(stack) if f["in_app"]), stack[-1] if stack else None)
        if event.component is None:
            event.component = self._components(top["module"] if top else None)
        if event.category is None:
            event.category = category_for(event.exc_class)
        top_key = f"{top['module']}:{top['function']}" if top else ""
        exc_type = type_name(event.exc_class) if event.exc_class else ""
        event.fingerprint = fingerprint(
            event.component, event.category, exc_type, event.message, top_key
        )
        return event.component, event.category, top_key

    def build(self, event: Event, stack: list[dict[str, Any]], suppressed: int) -> Payload:
        cfg = self._config
        exception = None
        if event.exc_class is not None:
            exception = {"type": type_name(event.exc_class), "value": event.message, "stack": stack}
        chain = [
            {"type": type_name(cls), "value": msg, "stack": self.frames(raw), "relation": rel}
            for cls, msg, raw, rel in event.chain
        ]
        priority = event.priority
        context = (
            json_safe(
                event.context, max_items=cfg.max_context_keys, max_string=cfg.max_message_length
            )
            if event.context
            else {}
        )
        component = event.component or "unknown"
        category = event.category or "generic"
        return {
            "event_id": f"{_random_bits(128):032x}",
            "timestamp": event.timestamp,
            "level": event.level,
            "origin": event.origin,
            "message": event.message,
            "exception": exception,
            "chain": chain,
            "component": component,
            "category": category,
            "priority": priority,
            "context": context,
            "request": json_safe(event.request) if event.request else None,
            "fingerprint": event.fingerprint or "",
            "repeats": event.repeats,
            "suppressed": suppressed,
            "tags": {
                "component": component,
                "category": category,
                "priority": priority or "normal",
                "error_origin": event.origin,
            },
            "release": cfg.release,
            "environment": cfg.environment,
            "server_name": cfg.server_name,
            "runtime": dict(self._runtime),
        }
