"""The Sentry event made from an errwire payload, and the server's rate-limit headers.

Pure functions, run on the worker thread: nothing here touches the network or
sentry-sdk, so every field of what Sentry receives can be tested on its own.
Source context lines are read here (through ``linecache``, bounded, never
raising) because the caller's thread only kept code objects and offsets.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import linecache
import math
import os
import platform
import sys
from collections.abc import Mapping
from typing import Any

from ._transport import Payload

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "build_event",
    "parse_rate_limits",
    "parse_retry_after",
]

DEFAULT_RETRY_AFTER = 60.0  # what Sentry's own SDKs assume for a bare 429
MAX_RETRY_AFTER = 86_400.0  # a day: no header may park delivery for longer

CONTEXT_LINES = 5  # lines of source before and after the failing line
MAX_LINE_LENGTH = 300  # characters kept of one source line
MAX_SOURCE_BYTES = 4 * 1024 * 1024  # files larger than this are not read for context
MAX_TAG_VALUE = 200  # Sentry's limit on a tag value
MAX_TAG_KEY = 32  # Sentry's limit on a tag key

_LEVELS = {
    "fatal": "fatal",
    "critical": "fatal",
    "error": "error",
    "warning": "warning",
    "warn": "warning",
    "info": "info",
    "debug": "debug",
}
_RELATION_SOURCE = {"cause": "__cause__", "context": "__context__", "group": "exceptions"}
_ERROR_CATEGORIES = frozenset({"error", "default"})
_RUNTIME = {"name": platform.python_implementation(), "version": platform.python_version()}


def build_event(
    payload: Payload,
    *,
    release: str | None = None,
    environment: str | None = None,
    server_name: str | None = None,
) -> dict[str, Any]:
    """The Sentry event for ``payload``.

    ``release``, ``environment`` and ``server_name`` are the transport's own
    settings; a value in the payload wins. ``server_name`` appears only when one
    of them sets it: errwire never reports the host name on its own.
    """
    event: dict[str, Any] = {
        "event_id": str(payload["event_id"]),
        "timestamp": _iso_timestamp(payload.get("timestamp")),
        "level": _LEVELS.get(str(payload.get("level", "error")).lower(), "error"),
        "platform": "python",
    }
    for key, fallback in (
        ("release", release),
        ("environment", environment),
        ("server_name", server_name),
    ):
        value = payload.get(key) or fallback
        if value:
            event[key] = str(value)
    logger_name = payload.get("logger")
    if isinstance(logger_name, str) and logger_name:
        event["logger"] = logger_name

    sources = _SourceCache()
    main = payload.get("exception")
    message = payload.get("message")
    if isinstance(main, Mapping):
        values = [
            _exception(item, sources, mechanism=_chained_mechanism(item.get("relation")))
            for item in reversed(payload.get("chain") or ())
            if isinstance(item, Mapping)
        ]
        values.append(_exception(main, sources, mechanism={"type": _origin_mechanism(payload)}))
        event["exception"] = {"values": values}
        if message and message != main.get("value"):
            event["logentry"] = {"formatted": str(message)}
    elif message is not None:
        event["logentry"] = {"formatted": str(message)}

    tags = _tags(payload)
    if tags:
        event["tags"] = tags
    request = payload.get("request")
    if isinstance(request, Mapping):
        event.update(_request(request))
    event["contexts"] = {"errwire": _errwire_context(payload), "runtime": dict(_RUNTIME)}
    fingerprint = payload.get("fingerprint")
    if fingerprint:
        event["fingerprint"] = [str(fingerprint)]
    return event


def _iso_timestamp(value: object) -> str:
    """Unix time as Sentry's ISO 8601 UTC form (``now`` if the payload has none)."""
    ts = value if isinstance(value, int | float) and math.isfinite(value) else None
    moment = (
        _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
        if ts is not None
        else _dt.datetime.now(_dt.timezone.utc)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _origin_mechanism(payload: Payload) -> str:
    origin = payload.get("origin")
    return "logging" if origin == "log" else "errwire"


def _chained_mechanism(relation: object) -> dict[str, Any]:
    return {"type": "chained", "source": _RELATION_SOURCE.get(str(relation), str(relation))}


def _split_type(exc: Mapping[str, Any]) -> tuple[str, str | None]:
    """``pkg.mod.ValueError`` → (``ValueError``, ``pkg.mod``); an explicit ``module`` wins."""
    full = str(exc.get("type") or "Exception")
    module = exc.get("module")
    if isinstance(module, str) and module and full.startswith(module + "."):
        return full[len(module) + 1 :], module
    if full.startswith("builtins."):
        return full[len("builtins.") :], None
    # A nested class (``pkg.mod.Outer.Error``): the longest prefix that is a loaded
    # module is the module; failing that, the last dot separates them.
    head = full
    while "." in head:
        head = head.rpartition(".")[0]
        if head in sys.modules:
            return full[len(head) + 1 :], head
    head, dot, tail = full.rpartition(".")
    return (tail, head) if dot else (full, None)


def _exception(
    exc: Mapping[str, Any], sources: _SourceCache, *, mechanism: dict[str, Any]
) -> dict[str, Any]:
    type_name, module = _split_type(exc)
    value: dict[str, Any] = {"type": type_name, "value": str(exc.get("value", ""))}
    if module:
        value["module"] = module
    frames = [_frame(f, sources) for f in exc.get("stack") or () if isinstance(f, Mapping)]
    if frames:
        value["stacktrace"] = {"frames": frames}
    value["mechanism"] = mechanism
    return value


def _frame(frame: Mapping[str, Any], sources: _SourceCache) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("filename", "abs_path", "function", "module"):
        value = frame.get(key)
        if isinstance(value, str) and value:
            out[key] = value
    lineno = frame.get("lineno")
    if isinstance(lineno, int) and not isinstance(lineno, bool):
        out["lineno"] = lineno
    out["in_app"] = bool(frame.get("in_app", False))
    path = out.get("abs_path") or out.get("filename")
    if path and isinstance(lineno, int) and lineno > 0:
        out.update(sources.context(path, lineno))
    return out


class _SourceCache:
    """Source lines for one event: each file is looked up once, nothing ever raises."""

    __slots__ = ("_files",)

    def __init__(self) -> None:
        self._files: dict[str, list[str]] = {}

    def lines(self, path: str) -> list[str]:
        found = self._files.get(path)
        if found is None:
            found = self._files[path] = _read_source(path)
        return found

    def context(self, path: str, lineno: int) -> dict[str, Any]:
        lines = self.lines(path)
        if not 0 < lineno <= len(lines):
            return {}
        index = lineno - 1
        return {
            "pre_context": [_clip(x) for x in lines[max(0, index - CONTEXT_LINES) : index]],
            "context_line": _clip(lines[index]),
            "post_context": [_clip(x) for x in lines[index + 1 : index + 1 + CONTEXT_LINES]],
        }


def _read_source(path: str) -> list[str]:
    """The file's lines through ``linecache`` (shared with ``traceback``), or [] if unreadable.

    Files that changed since they were cached are re-read; huge files are skipped
    so a generated module cannot make the worker read megabytes per event.
    """
    if path.startswith("<") and path.endswith(">"):
        return []  # <string>, <frozen ...>: no file behind it
    try:
        if path not in linecache.cache:
            if os.stat(path).st_size > MAX_SOURCE_BYTES:
                return []
        else:
            linecache.checkcache(path)
        return linecache.getlines(path)
    except Exception:  # a source file must never break delivery
        return []


def _clip(line: str) -> str:
    line = line.rstrip("\r\n")
    if len(line) > MAX_LINE_LENGTH:
        return line[: MAX_LINE_LENGTH - 3] + "..."
    return line


def _tag_value(value: object) -> str:
    text = " ".join(str(value).split())
    return text[:MAX_TAG_VALUE]


def _tags(payload: Payload) -> dict[str, str]:
    given = payload.get("tags")
    if not isinstance(given, Mapping):
        given = {
            "component": payload.get("component"),
            "category": payload.get("category"),
            "priority": payload.get("priority"),
            "error_origin": payload.get("origin"),
        }
    tags: dict[str, str] = {}
    for key, value in given.items():
        if value is None or value == "":
            continue
        tags[str(key)[:MAX_TAG_KEY]] = _tag_value(value)
    return tags


def _request(request: Mapping[str, Any]) -> dict[str, Any]:
    """Sentry's ``request`` interface (method and URL path only) and the route as transaction."""
    out: dict[str, Any] = {}
    interface: dict[str, Any] = {}
    method = request.get("method")
    if isinstance(method, str) and method:
        interface["method"] = method.upper()
    route = request.get("route")
    path = request.get("path") or route
    if isinstance(path, str) and path:
        interface["url"] = path.split("?", 1)[0].split("#", 1)[0]
    if interface:
        out["request"] = interface
    if isinstance(route, str) and route:
        out["transaction"] = route
    return out


def _errwire_context(payload: Payload) -> dict[str, Any]:
    context = payload.get("context")
    out: dict[str, Any] = dict(context) if isinstance(context, Mapping) else {}
    out["repeats"] = int(payload.get("repeats") or 0)
    out["suppressed"] = int(payload.get("suppressed") or 0)
    runtime = payload.get("runtime")
    if isinstance(runtime, Mapping):
        out["runtime"] = dict(runtime)
    request = payload.get("request")
    if isinstance(request, Mapping) and request.get("route"):
        out["route"] = request["route"]
    return out


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        current = _dt.datetime.now(_dt.timezone.utc).timestamp() if now is None else now
        seconds = when.timestamp() - current
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def parse_rate_limits(value: str | None) -> tuple[float | None, dict[str, float]]:
    """``X-Sentry-Rate-Limits`` → (pause for error events or None, pause per category).

    Each comma-separated entry is ``seconds:categories:scope[:reason[:namespaces]]``
    with categories separated by ``;``; no category means all of them (key
    ``"*"`` in the returned mapping). Error events are paused by entries naming
    ``error`` or ``default``, or naming none; the longest such pause wins.
    Malformed entries are skipped.
    """
    if not value:
        return None, {}
    per_category: dict[str, float] = {}
    for entry in value.split(","):
        parts = entry.strip().split(":")
        if len(parts) < 2:
            continue
        try:
            seconds = float(parts[0])
        except ValueError:
            continue
        if not math.isfinite(seconds):
            continue
        seconds = min(max(seconds, 0.0), MAX_RETRY_AFTER)
        categories = [c.strip() for c in parts[1].split(";") if c.strip()] or ["*"]
        for category in categories:
            per_category[category] = max(seconds, per_category.get(category, 0.0))
    applicable = [s for c, s in per_category.items() if c == "*" or c in _ERROR_CATEGORIES]
    return (max(applicable) if applicable else None), per_category
