"""Delivery: the circuit breaker, the transport call with its timeout, the outbox.

Every send has an outcome and every outcome is counted: delivered, failed
(retryable: spooled to the outbox and replayed later), paused by the server
(429: spooled until the pause ends) or rejected (never retried). Runs on the
worker thread; ``spool`` may also be called by ``shutdown`` on its own thread.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._breaker import CLOSED, CircuitBreaker
from ._clock import Clock, SystemClock
from ._counter import Counter, CounterMap
from ._internal import internal_error, logger, warn_once
from ._outbox import Outbox
from ._transport import Outcome, Payload, SendResult, Transport

if TYPE_CHECKING:
    from ._config import Config

__all__ = ["Delivery", "DeliveryStats"]

_MAX_STUCK_SENDERS = 2
# Enum members read once: a class attribute lookup per use adds up on the worker.
_OK = Outcome.OK
_REJECTED = Outcome.REJECTED
_RETRYABLE = Outcome.RETRYABLE


@dataclass
class DeliveryStats:
    delivered: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)  # send attempts that failed (not events)
    spooled_total: Counter = field(default_factory=Counter)
    replay_delivered: Counter = field(default_factory=Counter)  # own spooled events delivered later
    replay_rejected: Counter = field(default_factory=Counter)
    outbox_evicted: Counter = field(default_factory=Counter)  # own spooled events evicted: dropped
    foreign_replayed: Counter = field(default_factory=Counter)  # left behind by other processes
    foreign_evicted: Counter = field(default_factory=Counter)
    foreign_rejected: Counter = field(default_factory=Counter)
    dropped: CounterMap = field(default_factory=CounterMap)
    slow_sends: Counter = field(default_factory=Counter)
    results: CounterMap = field(default_factory=CounterMap)

    @property
    def spooled(self) -> int:
        """Own events currently waiting in the outbox."""
        return (
            self.spooled_total.value
            - self.replay_delivered.value
            - self.replay_rejected.value
            - self.outbox_evicted.value
        )


class _GuardedSender:
    """Runs ``transport.send`` on a helper thread so a transport that ignores its
    timeout cannot stall the worker. A sender stuck past the timeout is abandoned."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._jobs: queue.SimpleQueue[
            tuple[Payload, float, queue.SimpleQueue[SendResult]] | None
        ] = queue.SimpleQueue()
        self.abandoned = False
        self.thread = threading.Thread(target=self._run, name="errwire-sender", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            payload, timeout, reply = job
            reply.put(_call_transport(self._transport, payload, timeout))
            if self.abandoned:
                return

    def send(self, payload: Payload, timeout: float) -> SendResult | None:
        reply: queue.SimpleQueue[SendResult] = queue.SimpleQueue()
        self._jobs.put((payload, timeout, reply))
        try:
            return reply.get(timeout=timeout)
        except queue.Empty:
            self.abandoned = True
            return None

    def close(self) -> None:
        self._jobs.put(None)


def _call_transport(transport: Transport, payload: Payload, timeout: float) -> SendResult:
    try:
        result: object = transport.send(payload, timeout)
    except Exception as exc:
        return SendResult(Outcome.RETRYABLE, detail=f"transport raised {type(exc).__name__}: {exc}")
    if not isinstance(result, SendResult):
        return SendResult(Outcome.RETRYABLE, detail=f"transport returned {type(result).__name__}")
    return result


class Delivery:
    def __init__(
        self,
        transport: Transport,
        outbox: Outbox | None,
        breaker: CircuitBreaker,
        clock: Clock,
        *,
        owner: str,
        timeout: float,
        slow_seconds: float,
        stats: DeliveryStats | None = None,
    ) -> None:
        self.transport = transport
        self.outbox = outbox
        self.breaker = breaker
        self.clock = clock
        self.owner = owner
        self.timeout = timeout
        self.slow_seconds = slow_seconds
        self.stats = stats or DeliveryStats()
        self.paused_until = 0.0
        self.outbox_pending: int | None = None  # unknown until first looked at
        self.closed = False
        self.last_error: str | None = None
        self._sender: _GuardedSender | None = None
        self._stuck: list[_GuardedSender] = []
        self._lock = threading.Lock()  # serialises outbox writes from the worker and shutdown
        # Hands the send in flight over at shutdown: either the worker counts its
        # answer, or shutdown takes (and spools) it; never both, never neither. The
        # payload sits in a one-slot dict; the worker and shutdown each take it with
        # ``pop``, one C call under the GIL (an atomic exchange), so exactly one of
        # them gets it, and the worker's uncontended path takes no lock.
        self._flight: dict[int, Payload] = {}
        self._taken = False
        # the real clock read directly: two calls less per send
        self._now = time.monotonic if type(clock) is SystemClock else clock.monotonic
        self._delivered = self.stats.delivered.bump

    @classmethod
    def from_config(
        cls,
        config: Config,
        transport: Transport,
        outbox: Outbox | None,
        clock: Clock,
        *,
        owner: str,
        stats: DeliveryStats | None = None,
    ) -> Delivery:
        """The configured delivery with its own breaker: one recipe for worker and fleet."""
        breaker = CircuitBreaker(
            config.breaker_failure_threshold, config.breaker_recovery_seconds, clock
        )
        return cls(
            transport,
            outbox,
            breaker,
            clock,
            owner=owner,
            timeout=config.send_timeout_seconds,
            slow_seconds=config.slow_operation_ms / 1000.0,
            stats=stats,
        )

    # -- live events ------------------------------------------------------------

    @property
    def in_flight(self) -> Payload | None:
        """The payload of the send under way, if any."""
        return self._flight.get(0)

    def deliver(self, payload: Payload, timeout: float | None = None) -> None:
        # The breaker closed and no pause: what _may_send answers, without its calls.
        if (
            self.closed or self.paused_until or self.breaker.state != CLOSED
        ) and not self._may_send():
            self.spool([payload])
            return
        result = self._send(payload, timeout)
        if self._taken:
            return  # shutdown took this payload and spooled it; a late answer changes nothing
        if result.outcome is _OK:
            self._delivered()
        elif result.outcome is _REJECTED:
            self.stats.rejected.bump()
        else:
            self.spool([payload])

    def _may_send(self) -> bool:
        if self.closed:
            return False  # after shutdown: to the outbox, not the network
        if self.paused_until:
            if self._now() < self.paused_until:
                return False
            self.paused_until = 0.0  # the pause is over
        return self.breaker.allow()

    def _send(self, payload: Payload, timeout: float | None) -> SendResult:
        limit = self.timeout if timeout is None else min(timeout, self.timeout)
        flight = self._flight
        flight[0] = payload
        now = self._now
        start = now()
        try:
            transport = self.transport
            if transport.enforces_timeout:
                # _call_transport(transport, payload, limit), inline: this runs per event
                try:
                    answer: object = transport.send(payload, limit)
                except Exception as exc:
                    answer = SendResult(
                        _RETRYABLE, detail=f"transport raised {type(exc).__name__}: {exc}"
                    )
                if isinstance(answer, SendResult):
                    result = answer
                else:
                    result = SendResult(
                        _RETRYABLE, detail=f"transport returned {type(answer).__name__}"
                    )
            else:
                result = self._send_guarded(payload, limit)
        finally:
            self._taken = flight.pop(0, None) is not payload
        elapsed = now() - start
        if elapsed > self.slow_seconds:
            self.stats.slow_sends.bump()
            warn_once(
                "slow-send",
                "errwire transport %s took %.0f ms for one send",
                self.transport.name,
                elapsed * 1000,
            )
        self._record(result)
        return result

    def _send_guarded(self, payload: Payload, limit: float) -> SendResult:
        self._stuck = [s for s in self._stuck if s.thread.is_alive()]
        if len(self._stuck) >= _MAX_STUCK_SENDERS:
            return SendResult(
                Outcome.RETRYABLE, detail="transport stuck: earlier sends never returned"
            )
        if self._sender is None:
            self._sender = _GuardedSender(self.transport)
        result = self._sender.send(payload, limit)
        if result is None:
            self._stuck.append(self._sender)
            self._sender = None
            return SendResult(Outcome.RETRYABLE, detail=f"send timed out after {limit:g} s")
        return result

    def _record(self, result: SendResult) -> None:
        """Count the answer and feed it to the breaker (on the worker, after the send)."""
        outcome = result.outcome
        if outcome is _OK and not result.retry_after:  # the common case, short
            self.stats.results.bump("ok")
            breaker = self.breaker
            if breaker.state != CLOSED or breaker.consecutive_failures:
                breaker.record_success()  # (closed with no failures: nothing to record)
            return
        self.stats.results.bump(outcome._value_)  # .value is a property: a call more
        if outcome is _RETRYABLE:
            self.stats.failed.bump()
            self.last_error = result.detail
            warn_once(
                "send-failed",
                "errwire delivery failed (%s): %s",
                "will retry from the outbox"
                if self.outbox is not None
                else "no outbox to retry from",
                result.detail,
            )
            self.breaker.record_failure()
            return
        self.breaker.record_success()
        if result.outcome is Outcome.OK and result.retry_after:
            # delivered, but the destination announced a limit for what comes next
            self.paused_until = self.clock.monotonic() + result.retry_after
        elif result.outcome is Outcome.RATE_LIMITED:
            pause = result.retry_after if result.retry_after is not None else 60.0
            self.paused_until = self.clock.monotonic() + pause
            self.last_error = result.detail or "rate limited"
            logger.warning(
                "errwire: destination asked to pause for %.1f s: %s", pause, result.detail
            )
        elif result.outcome is Outcome.REJECTED:
            self.last_error = result.detail
            warn_once(
                f"rejected-{result.detail[:40]}",
                "errwire: event rejected, not retried: %s",
                result.detail,
            )

    # -- the outbox --------------------------------------------------------------
    def spool(self, payloads: Sequence[Payload], reason: str = "spool") -> None:
        if not payloads:
            return
        if self.outbox is None:
            self.stats.dropped.get("no_outbox").add(len(payloads))
            return
        try:
            with self._lock:
                eviction = self.outbox.put_many(payloads, self.owner)
        except Exception as exc:
            self.stats.dropped.get("outbox_error").add(len(payloads))
            internal_error("outbox.put_many", exc)
            return
        # An event already in the outbox (the same event id) is not stored twice.
        self.stats.spooled_total.add(eviction.inserted)
        self.stats.outbox_evicted.add(eviction.own)
        self.stats.foreign_evicted.add(eviction.foreign)
        if eviction.own:
            warn_once(
                "outbox-full", "errwire outbox is full: evicted %d oldest events", eviction.own
            )
        if self.outbox_pending is not None:
            self.outbox_pending += eviction.inserted - eviction.total

    def refresh_pending(self) -> int:
        if self.outbox is None:
            self.outbox_pending = 0
        else:
            try:
                self.outbox_pending = (
                    self.outbox.pending() if os.path.exists(self.outbox.path) else 0
                )
            except Exception as exc:
                internal_error("outbox.pending", exc)
                self.outbox_pending = 0
        return self.outbox_pending

    def replay(self, batch: int = 100, timeout: float | None = None) -> int:
        """Send up to ``batch`` outbox entries, oldest first, while delivery works."""
        if self.outbox is None or self.closed:
            return 0
        if self.outbox_pending is None:
            self.refresh_pending()
        if not self.outbox_pending:
            return 0
        sent = 0
        for entry in self.outbox.peek(batch):
            if self.closed or not self._may_send():
                break
            result = self._send(entry.payload, timeout)
            if result.outcome is Outcome.OK or result.outcome is Outcome.REJECTED:
                with self._lock:
                    removed = self.outbox.remove([entry.row_id])
                self.outbox_pending = max(0, (self.outbox_pending or 1) - 1)
                if not removed:
                    continue  # another process replayed the same row meanwhile; it counts it
                own = entry.owner == self.owner
                if result.outcome is Outcome.OK:
                    (self.stats.replay_delivered if own else self.stats.foreign_replayed).bump()
                    sent += 1
                else:
                    (self.stats.replay_rejected if own else self.stats.foreign_rejected).bump()
            else:
                with self._lock:
                    self.outbox.record_attempt([entry.row_id])
                break
        return sent

    def stop_sending(self) -> Payload | None:
        """Close delivery (shutdown). Returns the payload of a send still in flight,
        which the caller now owns and must spool: its answer will be ignored."""
        self.closed = True
        return self._flight.pop(0, None)

    def close(self) -> None:
        self.closed = True
        if self._sender is not None:
            self._sender.close()
        try:
            self.transport.close()
        except Exception as exc:
            internal_error("transport.close", exc)

    def snapshot(self) -> dict[str, Any]:
        paused = max(0.0, self.paused_until - self.clock.monotonic()) if self.paused_until else 0.0
        return {
            "transport": self.transport.name,
            "breaker": self.breaker.snapshot(),
            "paused_seconds": round(paused, 3),
            "last_error": self.last_error,
            "results": self.stats.results.values(),
            "slow_sends": self.stats.slow_sends.value,
            "stuck_senders": len([s for s in self._stuck if s.thread.is_alive()]),
        }
