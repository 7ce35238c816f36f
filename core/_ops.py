"""Operations behind the commands: status, test event, replay, worker.

One implementation, three front ends: Django's management commands, Flask's
``flask errwire`` group and the ``errwire`` console script are thin shells that
parse arguments and print what these functions return.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._breaker import CircuitBreaker
from ._clock import SystemClock
from ._config import Config
from ._delivery import Delivery
from ._heartbeat import RuntimeHeartbeat, read_heartbeats
from ._outbox import Outbox
from ._runtime import Runtime, make_transport
from ._transport import Outcome, Payload, SendResult, Transport

__all__ = [
    "FleetReport",
    "ReplayResult",
    "TestEventResult",
    "fleet_status",
    "render_status",
    "replay_outbox",
    "run_worker",
    "runtime_problems",
    "send_test_event",
]

COUNTER_KEYS = (
    "captured",
    "delivered",
    "deduplicated",
    "rate_limited",
    "sampled_out",
    "spooled",
    "rejected",
    "failed",
    "internal_errors",
)


# ----------------------------------------------------------------------------- status
@dataclass
class RuntimeHealth:
    beat: RuntimeHeartbeat
    problems: list[str]

    def as_dict(self) -> dict[str, Any]:
        snap = self.beat.snapshot
        return {
            "runtime_id": self.beat.runtime_id,
            "pid": self.beat.pid,
            "host": self.beat.host,
            "age_seconds": round(self.beat.age, 1),
            "stale": self.beat.stale,
            "final": self.beat.final,
            "healthy": not self.problems,
            "problems": self.problems,
            "queue": snap.get("queue", {}),
            "counters": snap.get("counters", {}),
            "breaker": snap.get("delivery", {}).get("breaker", {}),
            "outbox_pending": snap.get("outbox", {}).get("pending"),
        }


@dataclass
class FleetReport:
    outbox_path: str
    runtimes: list[RuntimeHealth]
    totals: dict[str, Any]
    outbox_pending: int | None
    generated_at: float

    @property
    def healthy(self) -> bool:
        return all(not r.problems for r in self.runtimes if not r.beat.final)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outbox_path": self.outbox_path,
            "generated_at": self.generated_at,
            "healthy": self.healthy,
            "outbox_pending": self.outbox_pending,
            "totals": self.totals,
            "runtimes": [r.as_dict() for r in self.runtimes],
        }


def runtime_problems(beat: RuntimeHeartbeat, failure_rate: float = 0.5) -> list[str]:
    """Why a runtime is unhealthy (empty when it is fine)."""
    return _problems(beat, failure_rate)


def _problems(beat: RuntimeHeartbeat, failure_rate: float) -> list[str]:
    if beat.final:
        return []
    problems = []
    if beat.stale:
        problems.append(f"stale heartbeat ({beat.age:.0f} s old)")
    snap = beat.snapshot
    breaker = snap.get("delivery", {}).get("breaker", {})
    if breaker.get("state") == "open":
        problems.append("circuit breaker open")
    counters = snap.get("counters", {})
    failed, delivered = counters.get("failed", 0), counters.get("delivered", 0)
    if failed and failed / (failed + delivered) > failure_rate:
        problems.append(f"failure rate {failed / (failed + delivered):.0%}")
    return problems


def fleet_status(
    outbox_path: str,
    *,
    stale_after: float = 30.0,
    failure_rate: float = 0.5,
    include_final: bool = False,
    now: float | None = None,
) -> FleetReport:
    """Every runtime that wrote a heartbeat to ``outbox_path``, with its health and the totals."""
    moment = time.time() if now is None else now
    beats = read_heartbeats(outbox_path, now=moment, stale_after=stale_after)
    if not include_final:
        beats = [b for b in beats if not b.final]
    runtimes = [RuntimeHealth(b, _problems(b, failure_rate)) for b in beats]
    totals: dict[str, Any] = dict.fromkeys(COUNTER_KEYS, 0)
    dropped: dict[str, int] = {}
    for beat in beats:
        counters = beat.snapshot.get("counters", {})
        for key in COUNTER_KEYS:
            totals[key] += int(counters.get(key, 0) or 0)
        for reason, n in (counters.get("dropped") or {}).items():
            dropped[reason] = dropped.get(reason, 0) + int(n)
    totals["dropped"] = dropped
    pending = None
    if os.path.exists(outbox_path):
        pending = Outbox(outbox_path, 1).pending()
    return FleetReport(outbox_path, runtimes, totals, pending, moment)


def render_status(report: FleetReport) -> str:
    """The human table ``telemetry_status`` prints."""
    lines = [f"errwire status ({report.outbox_path})", ""]
    if not report.runtimes:
        lines.append("No live runtime has reported yet (is errwire initialised in your app?).")
    else:
        header = (
            f"{'runtime':<34} {'pid':>7} {'age':>6} {'queue':>12} {'breaker':<10} "
            f"{'delivered':>9} {'spooled':>7}  health"
        )
        lines += [header, "-" * len(header)]
        for r in report.runtimes:
            d = r.as_dict()
            queue, counters = d["queue"], d["counters"]
            health = "; ".join(r.problems) or "ok"
            lines.append(
                f"{r.beat.runtime_id[:34]:<34} {r.beat.pid:>7} {r.beat.age:>5.0f}s "
                f"{queue.get('depth', 0):>5}/{queue.get('capacity', 0):<6} "
                f"{d['breaker'].get('state', '?'):<10} {counters.get('delivered', 0):>9} "
                f"{counters.get('spooled', 0):>7}  {health}"
            )
    t = report.totals
    dropped = ", ".join(f"{k}={v}" for k, v in sorted(t["dropped"].items())) or "none"
    lines += [
        "",
        "totals: " + ", ".join(f"{k}={t[k]}" for k in COUNTER_KEYS) + f"; dropped: {dropped}",
        "outbox pending: "
        + (str(report.outbox_pending) if report.outbox_pending is not None else "no outbox yet"),
        f"health: {'OK' if report.healthy else 'UNHEALTHY'}",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- test event
@dataclass
class TestEventResult:
    ok: bool
    detail: str
    event_id: str | None = None
    remote_id: str | None = None
    transport: str = ""

    __test__ = False  # not a pytest test class


class _Recording:
    """Wraps a transport and remembers the answer to each send."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.name = inner.name
        self.enforces_timeout = inner.enforces_timeout
        self.results: list[tuple[Payload, SendResult]] = []

    def send(self, payload: Payload, timeout: float) -> SendResult:
        result = self.inner.send(payload, timeout)
        self.results.append((payload, result))
        return result

    def close(self) -> None:
        self.inner.close()


_TEST_EVENT_GRACE_SECONDS = 1.0


def send_test_event(
    config: Config, *, timeout: float = 15.0, transport: Transport | None = None
) -> TestEventResult:
    """Send one test event through the whole pipeline and say exactly what happened.

    Uses its own runtime (dedup, limits and sampling off; no outbox, so a failed
    test event is not retried later) and never touches the process's runtime.
    """
    try:
        inner = transport or make_transport(config)
    except (ValueError, ImportError) as exc:
        return TestEventResult(False, f"cannot build the transport: {exc}")
    recording = _Recording(inner)
    test_config = config.replace(
        enabled=True,
        storm_window_seconds=0,
        dedup_window_seconds=0,
        sample_rate=1.0,
        breaker_failure_threshold=1_000_000,
        send_timeout_seconds=min(config.send_timeout_seconds, timeout),
        bus="inprocess",  # the test is of the destination, from here, even in Redis mode
    )
    runtime = Runtime(test_config, transport=recording, spool=False)
    try:
        runtime.capture_message(
            "errwire test event: if you can read this, delivery works",
            "info",
            "errwire",
            "test",
            {"sent_by": "errwire test", "pid": os.getpid()},
        )
        # The send itself is bounded by ``timeout``; the wait gets a little more so
        # the transport's own reason ("connection refused", "no answer within 1s")
        # is what gets reported, not a bare "timed out".
        finished = runtime.flush(timeout + _TEST_EVENT_GRACE_SECONDS)
    finally:
        runtime.shutdown(1.0)
    if not recording.results:
        reason = (
            "timed out waiting for the destination"
            if not finished
            else "the event never reached the transport"
        )
        return TestEventResult(False, reason, transport=inner.name)
    payload, result = recording.results[-1]
    detail = result.detail or ("delivered" if result.ok else result.outcome.value)
    if result.outcome is Outcome.RATE_LIMITED:
        wait = result.retry_after or "?"
        detail = f"rate limited by the destination (retry after {wait} s): {result.detail}"
    return TestEventResult(
        result.ok,
        detail,
        event_id=payload.get("event_id"),
        remote_id=result.remote_id,
        transport=inner.name,
    )


# ----------------------------------------------------------------------------- replay
@dataclass
class ReplayResult:
    pending_before: int
    sent: int = 0
    remaining: int = 0
    stopped_because: str | None = None
    preview: list[dict[str, Any]] = field(default_factory=list)


def replay_outbox(
    config: Config,
    *,
    limit: int | None = None,
    dry_run: bool = False,
    transport: Transport | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 100,
) -> ReplayResult:
    """Send what waits in the outbox, oldest first, until it is empty, ``limit``
    is reached or the destination fails. ``progress(done, total)`` after each batch."""
    path = config.resolved_outbox_path
    if not os.path.exists(path):
        return ReplayResult(0)
    outbox = Outbox(path, config.outbox_max_events)
    try:
        pending = outbox.pending()
        total = pending if limit is None else min(limit, pending)
        if dry_run:
            preview = [_summary(e.payload, e.attempts) for e in outbox.peek(min(total, 20))]
            return ReplayResult(pending, remaining=pending, preview=preview)
        clock = SystemClock()
        delivery = Delivery(
            transport or make_transport(config),
            outbox,
            CircuitBreaker(1, config.breaker_recovery_seconds, clock),
            clock,
            owner=f"replay:{os.getpid()}",
            timeout=config.send_timeout_seconds,
            slow_seconds=config.slow_operation_ms / 1000.0,
        )
        result = ReplayResult(pending)
        try:
            while result.sent < total:
                sent = delivery.replay(min(batch, total - result.sent))
                result.sent += sent
                if progress is not None:
                    progress(result.sent, total)
                if sent == 0:
                    if delivery.outbox_pending:
                        result.stopped_because = (
                            delivery.last_error or "the destination did not accept events"
                        )
                    break
        finally:
            delivery.close()
        result.remaining = outbox.pending()
        return result
    finally:
        outbox.close()


def _summary(payload: Mapping[str, Any], attempts: int) -> dict[str, Any]:
    exc = payload.get("exception") or {}
    return {
        "event_id": payload.get("event_id"),
        "level": payload.get("level"),
        "type": exc.get("type"),
        "message": str(payload.get("message", ""))[:120],
        "component": payload.get("component"),
        "attempts": attempts,
    }


# ----------------------------------------------------------------------------- worker
def run_worker(
    config: Config,
    *,
    stop: threading.Event,
    shutdown_timeout: float | None = None,
    transport: Transport | None = None,
    on_start: Callable[[Runtime], None] | None = None,
) -> Runtime:
    """Run a runtime in the foreground until ``stop`` is set: it replays the
    outbox and writes heartbeats on every idle tick; then shuts down within
    ``shutdown_timeout``. Returns the (closed) runtime for its final status."""
    runtime = Runtime(config, transport=transport)
    runtime.worker_lane.start()
    if on_start is not None:
        on_start(runtime)
    stop.wait()
    runtime.shutdown(
        config.shutdown_timeout_seconds if shutdown_timeout is None else shutdown_timeout
    )
    return runtime
