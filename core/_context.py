"""The per-request snapshot slot, shared by every framework integration.

Middleware sets a *lazy* snapshot (an object with ``extract()``) for the
duration of a request and resets it afterwards; nothing is read from the
request unless an error is actually captured.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any, Protocol

__all__ = ["RequestSnapshot", "current_request", "request_scope", "reset_request", "set_request"]


class RequestSnapshot(Protocol):
    def extract(self) -> dict[str, Any]:
        """Read the request into a small dict (method, route, path, ...). Called only on capture."""
        ...


_request: ContextVar[RequestSnapshot | None] = ContextVar("errwire_request", default=None)

current_request = _request.get


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
