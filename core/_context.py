"""The per-request snapshot slot, shared by every framework integration.

Middleware sets a *lazy* snapshot (an object with ``extract()``) for the
duration of a request and resets it afterwards; nothing is read from the
request unless an error is actually captured.

Middleware can nest (errwire's ASGI middleware around Django's ASGI handler
with errwire's Django middleware inside). An inner snapshot may keep the one it
shadows in an ``outer`` attribute; when an event is captured, every snapshot in
that chain with a ``mark_captured()`` method is told, so an outer layer knows
the request already produced an event and does not report it again.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any, Protocol

__all__ = [
    "RequestSnapshot",
    "current_request",
    "mark_chain_captured",
    "request_scope",
    "reset_request",
    "set_request",
]


class RequestSnapshot(Protocol):
    def extract(self) -> dict[str, Any]:
        """Read the request into a small dict (method, route, path, ...). Called only on capture."""
        ...


_request: ContextVar[RequestSnapshot | None] = ContextVar("errwire_request", default=None)

current_request = _request.get


def mark_chain_captured(snapshot: object) -> None:
    """Tell every snapshot shadowed by ``snapshot`` that this request produced an event."""
    outer = getattr(snapshot, "outer", None)
    for _ in range(8):  # a chain is a few layers deep; never loop on a cycle
        if outer is None:
            return
        mark = getattr(outer, "mark_captured", None)
        if mark is not None:
            mark()
        outer = getattr(outer, "outer", None)


def set_request(snapshot: RequestSnapshot | None) -> Token[RequestSnapshot | None]:
    return _request.set(snapshot)


def reset_request(token: Token[RequestSnapshot | None]) -> None:
    _request.reset(token)


class request_scope:
    """Set the request snapshot for a block and always reset it after."""

    __slots__ = ("_snapshot", "_token")

    def __init__(self, snapshot: RequestSnapshot | None) -> None:
        self._snapshot = snapshot

    def __enter__(self) -> None:
        self._token = _request.set(self._snapshot)

    def __exit__(self, *exc: object) -> None:
        _request.reset(self._token)
