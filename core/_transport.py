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

__all__ = ["MemoryTransport", "Outcome", "Payload", "SendResult", "Transport", "delivered"]

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

# ``SendResult(Outcome.OK, remote_id=x)`` without the frozen dataclass's __init__
# (an ``object.__setattr__`` per field, ~1.5 µs): its slots set directly. The
# memory transport answers every event with one.
_new_result = object.__new__
_slots = vars(SendResult)  # the slot descriptors
_OK = Outcome.OK
_set_outcome = _slots["outcome"].__set__
_set_detail = _slots["detail"].__set__
_set_retry_after = _slots["retry_after"].__set__
_set_remote_id = _slots["remote_id"].__set__


def delivered(remote_id: str | None) -> SendResult:
    """``SendResult(Outcome.OK, remote_id=remote_id)``, built faster."""
    result = _new_result(SendResult)
    _set_outcome(result, _OK)
    _set_detail(result, "")
    _set_retry_after(result, None)
    _set_remote_id(result, remote_id)
    return result


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
        event_id = payload.get("event_id", "")
        return delivered(event_id if type(event_id) is str else str(event_id))

    def close(self) -> None:
        return None

    def find(self, **match: Any) -> list[Payload]:
        """Payloads whose top-level keys equal every given value."""
        with self._lock:
            return [e for e in self.events if _matches(e, match)]


def _matches(event: Mapping[str, Any], match: Mapping[str, Any]) -> bool:
    return all(event.get(k) == v for k, v in match.items())
