"""The circuit breaker: stop hammering a destination that keeps failing.

closed -> open after ``threshold`` consecutive failures; open fails fast until
``recovery`` seconds pass; then half-open lets exactly one probe through;
its success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

from ._clock import Clock
from ._counter import CounterMap
from ._internal import logger

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker"]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    __slots__ = (
        "_clock",
        "_probe_in_flight",
        "consecutive_failures",
        "opened_at",
        "recovery",
        "state",
        "threshold",
        "transitions",
    )

    def __init__(self, threshold: int, recovery: float, clock: Clock) -> None:
        self.threshold = threshold
        self.recovery = recovery
        self._clock = clock
        self.state = CLOSED
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self._probe_in_flight = False
        self.transitions = CounterMap()

    def allow(self) -> bool:
        """May a send go out now? In half-open, only the single probe may."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            assert self.opened_at is not None
            if self._clock.monotonic() - self.opened_at < self.recovery:
                return False
            self._move(HALF_OPEN)
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self._probe_in_flight = False
        if self.state != CLOSED:
            self._move(CLOSED)
            self.opened_at = None

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        self._probe_in_flight = False
        if self.state == HALF_OPEN or (
            self.state == CLOSED and self.consecutive_failures >= self.threshold
        ):
            self.opened_at = self._clock.monotonic()
            self._move(OPEN)

    def seconds_until_half_open(self) -> float | None:
        if self.state != OPEN or self.opened_at is None:
            return None
        return max(0.0, self.opened_at + self.recovery - self._clock.monotonic())

    def _move(self, new: str) -> None:
        old, self.state = self.state, new
        self.transitions.bump(f"{old}->{new}")
        log = logger.warning if new == OPEN else logger.info
        log(
            "errwire circuit breaker %s -> %s (after %d consecutive failures)",
            old,
            new,
            self.consecutive_failures,
        )

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "threshold": self.threshold,
            "recovery_seconds": self.recovery,
            "seconds_until_half_open": self.seconds_until_half_open(),
            "transitions": self.transitions.values(),
        }
