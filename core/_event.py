"""The compact snapshot taken on the caller's thread.

Capture must cost a few microseconds and must not keep the traceback (and so
every frame's locals) alive. The stack is kept as a flat tuple of
``(code object, instruction offset)`` pairs: both are cheap to read, code
objects live as long as their module anyway, and line numbers are worked out
later on the worker thread. Everything here is bounded: a 10 MB message, a
huge context or a cyclic cause chain cost the same as an ordinary one.
"""

from __future__ import annotations

import threading
from types import CodeType
from typing import Any

from ._walk import _GROUPS
from ._walk import frames as snapshot_frames

__all__ = [
    "LEVELS",
    "Event",
    "RawEvent",
    "class_token",
    "safe_message",
    "snapshot_chain",
    "snapshot_frames",
]

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "fatal": 50}

RawFrames = tuple[Any, ...]  # (code, lasti, code, lasti, ...), innermost last

# What the caller's thread publishes: a plain tuple is the cheapest object
# Python can build; the worker turns it into an ``Event`` with ``Event(*raw)``.
# Fields in ``Event.__init__`` order; index 1 is the level (the bus reads it).
RawEvent = tuple[Any, ...]

# A raw event names its exception class by a small int, not the class: a class is
# tracked by the garbage collector and so would be a tuple holding it, while a tuple
# of strings, numbers, code objects and tuples of those is untracked at its first
# collection (for the same reason the context travels as pairs, not as a dict). A
# full queue then costs the collector nothing: it is never promoted and never walked
# again. The table only grows (classes outlive their events, and a token must keep
# meaning its class while events carry it); past its bound, raw events carry the
# class itself.
_CLASSES: list[type[BaseException]] = []  # token -> class
CLASS_TOKENS: dict[type[BaseException], int] = {}  # class -> token
_MAX_CLASSES = 4096
_register = threading.Lock()


def class_token(cls: type[BaseException]) -> int | type[BaseException]:
    """The token of ``cls`` for a raw event (registering it), or ``cls`` when the table is full."""
    token = CLASS_TOKENS.get(cls)
    if token is not None:
        return token
    with _register:
        token = CLASS_TOKENS.get(cls)
        if token is None:
            if len(_CLASSES) >= _MAX_CLASSES:
                return cls
            token = len(_CLASSES)
            _CLASSES.append(cls)  # before the token is published: readers index at once
            CLASS_TOKENS[cls] = token
    return token


class Event:
    """One captured error or message on its way to the worker.

    Caller-side fields are set at capture; the worker fills ``fingerprint``
    and resolves frames. ``exc_class`` is kept (classes are long-lived) so the
    worker can classify by type without the exception object.
    """

    __slots__ = (
        "category",
        "chain",
        "component",
        "context",
        "exc_class",
        "fingerprint",
        "frames",
        "level",
        "message",
        "origin",
        "priority",
        "repeats",
        "request",
        "timestamp",
    )

    def __init__(
        self,
        origin: str,
        level: str,
        exc_class: type[BaseException] | int | None,
        message: str,
        frames: RawFrames,
        chain: tuple[tuple[type[BaseException], str, RawFrames, str], ...],
        component: str | None,
        category: str | None,
        priority: str | None,
        context: dict[str, Any] | tuple[tuple[Any, Any], ...] | None,
        request: dict[str, Any] | None,
        timestamp: float,
        repeats: int = 0,
    ) -> None:
        self.origin = origin
        self.level = level
        if isinstance(exc_class, int):  # a raw event's class token (see class_token)
            exc_class = _CLASSES[exc_class]
        self.exc_class: type[BaseException] | None = exc_class
        self.message = message
        self.frames = frames
        self.chain = chain
        self.component = component
        self.category = category
        self.priority = priority
        if isinstance(context, tuple):  # a raw event's (key, value) pairs
            context = dict(context)
        self.context: dict[str, Any] | None = context
        self.request = request
        self.timestamp = timestamp
        self.repeats = repeats
        self.fingerprint: str | None = None

    @property
    def is_error(self) -> bool:
        return LEVELS.get(self.level, 40) >= 40

    def __repr__(self) -> str:
        kind = self.exc_class.__name__ if self.exc_class else "message"
        return f"<Event {self.level} {kind}: {self.message[:60]!r}>"


def safe_message(exc: object, limit: int) -> str:
    """``str(exc)`` bounded to ``limit`` characters; never raises, whatever ``__str__`` does."""
    try:
        text = str(exc)
        if type(text) is not str:  # a __str__ returning a str subclass
            text = str.__str__(text)
    except Exception:
        text = f"<unprintable {type(exc).__qualname__}>"
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit} chars truncated]"
    return text


def snapshot_chain(
    exc: BaseException, max_chained: int, max_message: int, max_frames: int
) -> tuple[tuple[type[BaseException], str, RawFrames, str], ...]:
    """The causes, contexts and group members behind ``exc``, bounded and cycle-safe.

    Each item is ``(class, message, frames, relation)`` with relation one of
    ``cause``, ``context`` or ``group``. Only walks what is there, so the common
    case (no chain) costs two attribute reads.
    """
    cause = exc.__cause__
    context = None if exc.__suppress_context__ else exc.__context__
    if cause is None and context is None and not isinstance(exc, _GROUPS):
        return ()
    seen = {id(exc)}
    out: list[tuple[type[BaseException], str, RawFrames, str]] = []
    pending: list[tuple[BaseException, str]] = []

    def push(current: BaseException) -> None:
        nxt_cause = current.__cause__
        nxt_context = None if current.__suppress_context__ else current.__context__
        if isinstance(current, _GROUPS):
            members = getattr(current, "exceptions", ())[:max_chained]
            pending.extend((sub, "group") for sub in reversed(members))
        if nxt_context is not None and nxt_context is not nxt_cause:
            pending.append((nxt_context, "context"))
        if nxt_cause is not None:
            pending.append((nxt_cause, "cause"))

    push(exc)
    while pending and len(out) < max_chained:
        current, relation = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        out.append(
            (
                type(current),
                safe_message(current, max_message),
                snapshot_frames(current.__traceback__, max_frames),
                relation,
            )
        )
        push(current)
    return tuple(out)


def frame_line(code: CodeType, lasti: int) -> int:
    """The line number of instruction offset ``lasti`` in ``code`` (worker side)."""
    if lasti < 0:
        return code.co_firstlineno
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            return line if line is not None else code.co_firstlineno
    return code.co_firstlineno
