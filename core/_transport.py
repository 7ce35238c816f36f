"""What a transport is, and what it answers.

A transport receives the *payload*: a JSON-safe dict built and scrubbed on the
worker thread (see ``_payload``). It answers every send with a ``SendResult``
so the worker sees every outcome: delivered, retry later, paused by the server,
or rejected for good.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["MemoryTransport", "Outcome", "Payload", "SendResult", "Transport"]

Payload = dict[str, Any]


class Outcome(enum.Enum):
    OK = "ok"
    RETRYABLE = "retryable"  # 5xx, timeout, connection error: feeds the breaker, spools
    RATE_LIMITED = "rate_limited"  # 429: pause for retry_after, spool meanwhile
    REJECTED = "rejected"  # other 4xx: counted, never retried


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None
    remote_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


OK = SendResult(Outcome.OK)


@runtime_checkable
class Transport(Protocol):
    """Delivers payloads. ``enforces_timeout`` says whether ``send`` itself honours
    ``timeout``; when False the worker runs sends on a guard thread so a transport
    that never returns cannot stall delivery."""

    name: str
    enforces_timeout: bool

    def send(self, payload: Payload, timeout: float) -> SendResult: ...

    def close(self) -> None: ...


class MemoryTransport:
    """Keeps every payload in a list (for tests and ``errwire.testing``)."""

    name = "memory"
    enforces_timeout = True

    def __init__(self) -> None:
        self.events: list[Payload] = []
        self._lock = threading.Lock()

    def send(self, payload: Payload, timeout: float) -> SendResult:
        with self._lock:
            self.events.append(payload)
        return SendResult(Outcome.OK, remote_id=str(payload.get("event_id", "")))

    def close(self) -> None:
        return None

    def find(self, **match: Any) -> list[Payload]:
        """Payloads whose top-level keys equal every given value."""
        with self._lock:
            return [e for e in self.events if _matches(e, match)]


def _matches(event: Mapping[str, Any], match: Mapping[str, Any]) -> bool:
    return all(event.get(k) == v for k, v in match.items())
