"""The delivery scenarios of issue 3, end to end: the real runtime (bus, worker,
breaker, outbox) with the real SentryTransport, against the fault receiver and
a real Sentry-compatible server (Bugsink).

Every test ends at a quiet moment and checks the accounting identity
``captured == delivered + deduplicated + rate_limited + sampled_out +
sum(dropped) + spooled + rejected``. Time is an injected ``ManualClock`` where
the breaker's recovery or a server's pause must pass; waiting is done on the
receiver's condition or ``errwire.flush``/``shutdown``, never by sleeping.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import errwire
from errwire._breaker import CLOSED, OPEN
from errwire._clock import ManualClock
from errwire._heartbeat import read_heartbeats
from errwire._outbox import Outbox
from errwire._runtime import Runtime, accounted_for
from tests.support.bugsink import Bugsink
from tests.support.fault_receiver import (
    FaultReceiver,
    Ok,
    Reset,
    Slow,
    Status,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


# -- helpers ------------------------------------------------------------------------------------


def word(i: int) -> str:
    """A letters-only token per ``i``: messages that differ by it stay distinct after
    errwire's fingerprint normalisation (which folds numbers and hex ids)."""
    letters = string.ascii_lowercase
    out = ""
    for _ in range(4):
        i, digit = divmod(i, 26)
        out += letters[digit]
    return out


class PaymentError(Exception):
    pass


def _charge(order: str) -> None:
    raise PaymentError(f"payment for order {order} declined")


def raised(i: int) -> PaymentError:
    """A distinct error (its own message, so its own fingerprint) with a real traceback."""
    try:
        _charge(word(i))
    except PaymentError as exc:
        return exc
    raise AssertionError("unreachable")


def counters(runtime: Runtime) -> dict[str, Any]:
    c: dict[str, Any] = runtime.counters()
    return c


def assert_identity(runtime: Runtime) -> dict[str, Any]:
    """The accounting identity, with every counter in the failure message."""
    c = counters(runtime)
    assert c["captured"] == accounted_for(c), c
    return c


def message_of(event: dict[str, Any]) -> str:
    """The errwire message of a Sentry event as it arrived."""
    if "exception" in event:
        return str(event["exception"]["values"][-1]["value"])
    return str(event["logentry"]["formatted"])


def accepted_messages(receiver: FaultReceiver) -> list[str]:
    return [message_of(e) for e in receiver.events()]


def outbox_rows(runtime: Runtime) -> list[dict[str, Any]]:
    """Every payload waiting in the runtime's outbox file, oldest first (a fresh reader)."""
    outbox = Outbox(runtime.config.resolved_outbox_path, 10**6)
    try:
        return [entry.payload for entry in outbox.peek(10**6)]
    finally:
        outbox.close()


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - started


def quiet_for(receiver: FaultReceiver, requests: int, seconds: float) -> bool:
    """True if no request beyond the first ``requests`` arrives within ``seconds``
    (a bounded wait on the receiver's condition: it returns early if one does)."""
    return not receiver.wait_until(lambda r: len(r.requests) > requests, timeout=seconds)


def advance_until(
    clock: ManualClock,
    receiver: FaultReceiver,
    predicate: Callable[[FaultReceiver], bool],
    *,
    step: float,
    timeout: float,
) -> bool:
    """Move the injected clock ``step`` seconds at a time (so an open breaker's
    recovery time passes) until ``predicate(receiver)`` holds; each step waits up to
    0.5 s on the receiver's condition for the worker to act on it."""
    deadline = time.monotonic() + timeout
    while not predicate(receiver):
        if time.monotonic() > deadline:
            return False
        clock.advance(step)
        receiver.wait_until(predicate, timeout=0.5)
    return True


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ERRWIRE_", "SENTRY_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


# -- 1. a burst of 1,000 distinct errors through a slow receiver into Bugsink --------------------

BURST = 1000


@pytest.mark.slow
def test_burst_of_1000_distinct_errors_all_reach_bugsink(
    bugsink: Bugsink, fault_receiver: FaultReceiver, tmp_path: Path
) -> None:
    """1,000 distinct errors captured in one burst, delivered through a receiver that
    holds every request 50 ms and then forwards it to Bugsink.

    What it proves, phase by phase:
    * capture: the burst takes the caller milliseconds; nothing is dropped (the
      10,000-slot queue holds it all; sentry-sdk's 100-slot queue would drop ~900).
    * live delivery: the worker sends through the slow receiver until the app shuts
      down with a 1 s deadline; at that moment every event is either accepted by
      Bugsink (through the receiver) or in the outbox: ``delivered + spooled ==
      1000``, with no drop of any kind, and the outbox holds exactly the rest.
    * replay: the next runtime started on the same outbox replays it (the receiver
      is no longer slow, so the test's time is bounded by Bugsink's own ingest
      rate, ~8-20 events/s on 2 cores); afterwards Bugsink's database holds
      exactly the 1,000 event ids errwire created, one per distinct error, and no
      other id from this test.
    The only event that may be sent twice is the one in flight at the shutdown
    deadline (its answer was not seen, so it is spooled: at-least-once); Sentry and
    Bugsink store an event id once, which the id comparison checks.
    """
    before = bugsink.event_ids()
    fault_receiver.forward_to(bugsink.url, delay=0.05)
    dsn = fault_receiver.dsn_in_front_of(bugsink.dsn)
    options: dict[str, Any] = {
        "data_dir": str(tmp_path),
        "storm_window_seconds": 0,  # one raise site for all 1,000: no caller-side folding
        "rate_limit_per_minute": 10 * BURST,  # the per-component limit is not under test
        "send_timeout_seconds": 10.0,
        "heartbeat_interval_seconds": 0.2,  # idle ticks (outbox replay) every 0.2 s
    }
    runtime = errwire.init(dsn=dsn, **options)
    errors = [raised(i) for i in range(BURST)]
    expected = {str(e) for e in errors}
    assert len(expected) == BURST

    accepted_all, burst_took = timed(lambda: all([errwire.capture_error(e) for e in errors]))
    assert accepted_all
    assert burst_took < 5.0  # ~10 us each; a generous bound for a loaded 2-core machine
    assert fault_receiver.wait_until(lambda r: len(r.accepted) >= 5, timeout=30.0)
    assert errwire.flush(timeout=1.0) is False  # the slow receiver cannot keep up
    # The deadline: what is still queued, and the send in flight, go to the outbox.
    assert errwire.shutdown(timeout=1.0) is False, runtime.counters()

    c = assert_identity(runtime)
    assert c["captured"] == BURST
    assert c["dropped"] == {} and c["deduplicated"] == 0 and c["rejected"] == 0
    assert c["delivered"] + c["spooled"] == BURST
    assert c["spooled"] > BURST // 2
    spooled = outbox_rows(runtime)
    assert len(spooled) == c["spooled"]
    # Let the send that was in flight at the deadline finish (its answer is ignored).
    runtime.worker_lane.thread.join(15.0)  # type: ignore[union-attr]
    assert fault_receiver.wait_until(lambda r: r.held == 0, timeout=15.0)
    live = {r.event_id: message_of(r.event) for r in fault_receiver.accepted if r.event}
    assert len(live) >= c["delivered"]
    spooled_ids = {p["event_id"]: str(p["message"]) for p in spooled}
    in_both = set(live) & set(spooled_ids)
    assert len(in_both) <= 1, in_both  # at most the one in flight at the deadline
    ours = {**live, **spooled_ids}
    assert set(ours.values()) == expected  # every distinct error has an event id ...
    assert len(ours) == BURST  # ... and exactly one

    # The next runtime on the same outbox replays it; the receiver now forwards at once.
    fault_receiver.forward_to(bugsink.url)
    successor = errwire.init(dsn=dsn, **options)
    assert fault_receiver.wait_until(
        lambda r: set(ours) <= {x.event_id for x in r.accepted}, timeout=150.0
    ), f"{len({x.event_id for x in fault_receiver.accepted} & set(ours))} of {BURST} arrived"
    assert errwire.shutdown(timeout=10.0)
    assert successor.status()["outbox"]["replayed_foreign"] == len(spooled)
    assert Outbox(runtime.config.resolved_outbox_path, 10).pending() == 0

    stored = bugsink.event_ids() - before
    assert stored == set(ours)  # all 1,000 in Bugsink, and nothing else of ours
    received = [r.event_id for r in fault_receiver.accepted]
    assert len(received) - len(set(received)) == len(in_both)  # no other id was sent twice


# -- 2. a blackhole: the breaker opens, capture stays prompt, the outbox drains in order ---------


def test_blackhole_opens_the_breaker_and_the_outbox_drains_in_order_after_recovery(
    fault_receiver: FaultReceiver, tmp_path: Path
) -> None:
    """The receiver reads every request and never answers. Sends time out (2 s),
    two of them open the breaker; everything spools. A capture made while a send is
    stuck returns at once (the request thread never waits on the network). When the
    receiver answers again nothing is sent until the recovery time has passed on the
    injected clock; then one half-open probe goes out, succeeds, and the outbox
    drains in capture order with no duplicates."""
    clock = ManualClock()
    fault_receiver.blackhole()
    runtime = errwire.init(
        dsn=fault_receiver.dsn,
        clock=clock,
        data_dir=str(tmp_path),
        storm_window_seconds=0,
        send_timeout_seconds=2.0,
        breaker_failure_threshold=2,
        breaker_recovery_seconds=30.0,
        heartbeat_interval_seconds=0.2,
    )
    n = 10
    messages = [f"payment for order {word(i)} declined" for i in range(n)]
    assert errwire.capture_error(raised(0))
    assert fault_receiver.wait_for_held(1)  # the worker's first send is stuck

    # A capture while the send is stuck: it returns in microseconds, not after the 2 s
    # send timeout, and the send is still stuck when it has returned.
    captured, took = timed(errwire.capture_error, raised(1))
    assert captured is True
    assert took < 0.5, took
    assert fault_receiver.held == 1
    assert runtime.delivery.in_flight is not None
    for i in range(2, n):
        assert errwire.capture_error(raised(i))

    assert errwire.flush(timeout=20.0)  # two 2 s timeouts, then the breaker fails fast
    assert runtime.breaker.state == OPEN
    assert fault_receiver.counts["blackhole"] == 2  # only the threshold's sends went out
    c = assert_identity(runtime)
    assert (c["captured"], c["spooled"], c["delivered"], c["failed"]) == (n, n, 0, 2)
    assert [p["message"] for p in outbox_rows(runtime)] == messages

    # The receiver recovers, but the breaker stays open until the recovery time passes.
    fault_receiver.ok()
    fault_receiver.release()  # the two held requests are let go (their clients gave up)
    assert quiet_for(fault_receiver, 2, seconds=1.0)  # five idle ticks, no request
    assert runtime.breaker.state == OPEN

    clock.advance(30.0)
    assert fault_receiver.wait_until(lambda r: len(r.accepted) == n, timeout=10.0)
    assert errwire.shutdown(timeout=5.0)
    probe = fault_receiver.requests[2]
    assert probe.mode == "ok" and probe.event is not None
    assert message_of(probe.event) == messages[0]  # the oldest spooled event is the probe
    assert accepted_messages(fault_receiver) == messages  # in order
    ids = fault_receiver.event_ids()
    assert len(ids) == len(set(ids)) == n  # no duplicates
    assert len(fault_receiver.requests) == 2 + n  # nothing sent twice
    transitions = runtime.breaker.transitions.values()
    assert transitions == {"closed->open": 1, "open->half_open": 1, "half_open->closed": 1}
    assert runtime.breaker.state == CLOSED
    c = assert_identity(runtime)
    assert (c["delivered"], c["spooled"], c["failed"]) == (n, 0, 2)
    assert outbox_rows(runtime) == []


# -- 3. 429: no request during the pause, events spool, delivery resumes -----------------------


@pytest.mark.parametrize(
    ("status", "headers", "first_delivered"),
    [
        pytest.param(429, {"Retry-After": "2"}, False, id="429-retry-after"),
        # A category the errors are not in (transaction, 60 s) does not pause them.
        pytest.param(
            429,
            {"X-Sentry-Rate-Limits": "60:transaction:key, 2:error;default:key"},
            False,
            id="429-x-sentry-rate-limits",
        ),
        # Accepted, but the answer announces a limit for what comes next.
        pytest.param(
            200, {"X-Sentry-Rate-Limits": "2:error:key"}, True, id="200-x-sentry-rate-limits"
        ),
    ],
)
def test_rate_limit_pauses_delivery_then_resumes(
    fault_receiver: FaultReceiver,
    tmp_path: Path,
    status: int,
    headers: dict[str, str],
    first_delivered: bool,
) -> None:
    clock = ManualClock()
    fault_receiver.status(status, headers)
    runtime = errwire.init(
        dsn=fault_receiver.dsn,
        clock=clock,
        data_dir=str(tmp_path),
        storm_window_seconds=0,
        heartbeat_interval_seconds=0.2,
    )
    messages = [f"payment for order {word(i)} declined" for i in range(5)]
    assert errwire.capture_error(raised(0))
    assert errwire.flush(timeout=10.0)
    assert len(fault_receiver.requests) == 1
    assert runtime.delivery.snapshot()["paused_seconds"] == 2.0

    fault_receiver.ok()  # the server would take more, but it asked for a 2 s pause
    for i in range(1, 5):
        assert errwire.capture_error(raised(i))
    assert errwire.flush(timeout=10.0)
    assert quiet_for(fault_receiver, 1, seconds=0.6)  # idle ticks pass: no request
    c = assert_identity(runtime)
    assert c["spooled"] == (4 if first_delivered else 5)
    assert c["delivered"] == (1 if first_delivered else 0)

    clock.advance(1.9)
    assert quiet_for(fault_receiver, 1, seconds=0.6)  # still paused at 1.9 s
    clock.advance(0.2)
    assert fault_receiver.wait_until(lambda r: len(r.accepted) == 5, timeout=10.0)
    assert errwire.shutdown(timeout=5.0)
    assert accepted_messages(fault_receiver) == messages  # in order, nothing lost
    assert len(fault_receiver.requests) == (5 if first_delivered else 6)
    assert runtime.breaker.state == CLOSED  # a pause is an answer, not a failure
    c = assert_identity(runtime)
    assert (c["delivered"], c["spooled"], c["failed"]) == (5, 0, 0)
    results = runtime.delivery.snapshot()["results"]
    assert results.get("rate_limited", 0) == (0 if first_delivered else 1)


# -- 4. 500s, refused connections, flapping: exact accounting at the end -----------------------


def _emit(message: str) -> None:
    errwire.capture_message(message, level="error")


def _emit_elsewhere(message: str) -> None:
    errwire.capture_message(message, level="error")


@pytest.mark.parametrize("fault", ["500", "refused", "flapping"])
def test_faults_then_recovery_keep_the_accounting_exact(
    fault_receiver: FaultReceiver, tmp_path: Path, fault: str
) -> None:
    """Distinct events, repeats from the same call site (folded by the storm guard) and
    repeats from another site (suppressed by dedup) are captured while the receiver
    answers 500, refuses connections, or flaps between ok, 500, reset, 503 and slow
    (the breaker opening and probing again and again). After it recovers and the
    breaker's recovery time passes: the identity holds exactly, and the set received
    equals the distinct events, each exactly once, while the suppressed copies are
    exactly the counted ``deduplicated``."""
    clock = ManualClock()
    runtime = errwire.init(
        dsn=fault_receiver.dsn,
        clock=clock,
        data_dir=str(tmp_path),
        send_timeout_seconds=2.0,
        breaker_failure_threshold=2,
        breaker_recovery_seconds=10.0,
        dedup_window_seconds=3600.0,  # the manual clock moves a few minutes while flapping
        heartbeat_interval_seconds=0.2,
    )
    if fault == "500":
        fault_receiver.status(500, body=b"internal error")
    elif fault == "refused":
        fault_receiver.refuse()
    else:
        fault_receiver.flap([Ok(), Status(500), Reset(), Status(503), Ok(), Slow(0.05)])

    distinct = [f"job {word(i)} failed" for i in range(30)]
    storm_repeats, dedup_repeats = distinct[::5], distinct[::4]
    for message in distinct:
        _emit(message)
    for message in storm_repeats:
        _emit(message)  # the same site again at once: folded by the storm guard
    for message in dedup_repeats:
        _emit_elsewhere(message)  # the same error from another site: dedup
    assert errwire.flush(timeout=30.0)
    repeats = len(storm_repeats) + len(dedup_repeats)
    c = assert_identity(runtime)
    assert c["captured"] == len(distinct) + repeats
    assert c["deduplicated"] == repeats
    suppression = runtime.status()["suppression"]
    assert suppression["storm_folded"] == len(storm_repeats)
    assert suppression["dedup_suppressed"] == len(dedup_repeats)
    if fault == "flapping":
        # Keep flapping a while: each step lets the breaker's recovery time pass, so
        # it probes, closes, trips again, ... while the outbox drains in between.
        assert advance_until(
            clock, fault_receiver, lambda r: len(r.requests) >= 40, step=10.0, timeout=30.0
        )
        assert len(fault_receiver.requests) >= 40
        assert {"status:500", "reset", "status:503", "slow"} <= set(fault_receiver.counts)
        assert runtime.breaker.transitions.values().get("closed->open", 0) >= 2
    else:
        assert (c["delivered"], c["spooled"]) == (0, len(distinct))
        assert runtime.breaker.state == OPEN
        assert c["failed"] == 2  # then the open breaker sent nothing more
    assert_identity(runtime)

    # Recovery. A send answered just before the switch may trip the breaker once
    # more, so the clock keeps moving until everything has arrived.
    fault_receiver.ok()
    assert advance_until(
        clock,
        fault_receiver,
        lambda r: len(r.accepted) >= len(distinct),
        step=10.0,
        timeout=20.0,
    ), (runtime.status()["delivery"], fault_receiver.counts)
    assert errwire.shutdown(timeout=10.0)
    c = assert_identity(runtime)
    assert (c["delivered"], c["spooled"], c["rejected"], c["dropped"]) == (len(distinct), 0, 0, {})
    assert c["captured"] - c["deduplicated"] == c["delivered"]
    received = accepted_messages(fault_receiver)
    assert sorted(received) == sorted(distinct)  # the captured set minus the suppressions
    ids = fault_receiver.event_ids()
    assert len(ids) == len(set(ids))  # nothing delivered twice
    assert outbox_rows(runtime) == []


# -- 5. shutdown against a blackhole keeps its deadline; a new process replays ----------------

NEW_PROCESS_RUNTIME = """
import json, sys
import errwire
runtime = errwire.init()  # ERRWIRE_DSN and ERRWIRE_DATA_DIR from the environment
sys.stdin.read()  # the test closes stdin once the receiver has everything
errwire.shutdown(5.0)
print(json.dumps(runtime.status()))
"""


@pytest.mark.parametrize("replayer", ["runtime on start", "errwire replay"])
def test_shutdown_keeps_its_deadline_against_a_blackhole_and_a_new_process_replays(
    fault_receiver: FaultReceiver, tmp_path: Path, replayer: str
) -> None:
    """A send never answered (send timeout 10 s) does not hold ``shutdown(timeout=2)``
    past its deadline: it returns within 2 s plus a small margin, and every unsent
    event, the one in flight included, is in the outbox, in capture order. The
    worker stuck in that send stops once the send returns, leaving the final
    heartbeat final. A new process replays the outbox into the recovered receiver:
    the application's runtime on start (before it captures anything), or the
    ``errwire replay`` command."""
    fault_receiver.blackhole()
    data_dir = tmp_path / "data"
    runtime = errwire.init(
        dsn=fault_receiver.dsn,
        data_dir=str(data_dir),
        storm_window_seconds=0,
        send_timeout_seconds=10.0,
    )
    n = 20
    for i in range(n):
        assert errwire.capture_error(raised(i))
    assert fault_receiver.wait_for_held(1)

    done, took = timed(errwire.shutdown, timeout=2.0)
    assert done is False  # the deadline cut it short ...
    assert 1.9 <= took < 2.5, took  # ... at the deadline, plus a small margin
    c = assert_identity(runtime)
    assert (c["captured"], c["spooled"], c["delivered"], c["dropped"]) == (n, n, 0, {})
    spooled = outbox_rows(runtime)
    expected = [f"payment for order {word(i)} declined" for i in range(n)]
    assert [p["message"] for p in spooled] == expected

    # The stuck send ends (the blackhole resets it); the old worker then stops for good.
    fault_receiver.ok()
    fault_receiver.release()
    worker = runtime.worker_lane.thread
    assert worker is not None
    worker.join(10.0)
    assert not worker.is_alive()
    [beat] = read_heartbeats(runtime.config.resolved_outbox_path, now=time.time(), stale_after=60.0)
    assert beat.final and beat.runtime_id == runtime.runtime_id
    assert fault_receiver.accepted == []

    env = subprocess_env(ERRWIRE_DSN=fault_receiver.dsn, ERRWIRE_DATA_DIR=str(data_dir))
    if replayer == "runtime on start":
        child = subprocess.Popen(
            [sys.executable, "-c", NEW_PROCESS_RUNTIME],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            arrived = fault_receiver.wait_until(lambda r: len(r.accepted) >= n, timeout=30.0)
            out, err = child.communicate("", timeout=30.0)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
        assert arrived, f"{len(fault_receiver.accepted)} of {n} replayed"
        assert child.returncode == 0, err[-3000:]
        status = json.loads(out.strip().splitlines()[-1])
        assert status["outbox"]["replayed_foreign"] == n
        assert status["outbox"]["pending"] == 0
        assert status["counters"]["captured"] == 0 == status["counters"]["spooled"]
    else:
        done_ = subprocess.run(
            [sys.executable, "-m", "errwire.cli", "replay", "--no-progress"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done_.returncode == 0, done_.stdout + done_.stderr[-3000:]
        assert str(n) in done_.stdout
    assert [p["event_id"] for p in spooled] == fault_receiver.event_ids()  # in order, once
    assert accepted_messages(fault_receiver) == expected
    assert Outbox(runtime.config.resolved_outbox_path, 10).pending() == 0


@pytest.mark.parametrize("disabled_first", [False, True], ids=["enabled", "disabled-first"])
def test_shutdown_delivers_or_spools_what_is_queued(
    fault_receiver: FaultReceiver, tmp_path: Path, disabled_first: bool
) -> None:
    """``errwire.shutdown`` stops capture at once but still delivers what is queued
    until its deadline and spools the rest (a receiver that answers, slowly). It used
    to switch the process off first, and the worker then discarded every queued
    event as ``dropped.disabled``. After ``errwire.disable()``, discarding the queue
    is what was asked for, and that is what happens."""
    fault_receiver.slow(0.05)
    runtime = errwire.init(dsn=fault_receiver.dsn, data_dir=str(tmp_path), storm_window_seconds=0)
    n = 100
    for i in range(n):
        assert errwire.capture_error(raised(i))
    assert fault_receiver.wait_for_requests(1)
    if disabled_first:
        errwire.disable()
    errwire.shutdown(timeout=0.5)
    assert not errwire.capture_error(raised(n))  # capture is off once shutdown starts
    c = assert_identity(runtime)
    assert c["captured"] == n
    disabled = c["dropped"].pop("disabled", 0)
    assert c["dropped"] == {}
    assert c["delivered"] + c["spooled"] + disabled == n
    assert len(outbox_rows(runtime)) == c["spooled"]
    if disabled_first:
        assert disabled >= n // 2 and c["spooled"] <= 1  # at most the send in flight
    else:
        assert disabled == 0 and c["spooled"] >= n // 2


def test_a_send_answered_while_shutdown_hits_its_deadline_is_counted_once(
    fault_receiver: FaultReceiver, tmp_path: Path
) -> None:
    """The race at the shutdown deadline, made deterministic: the send has its answer
    but the worker has not yet counted it when the deadline passes. Shutdown used to
    find no send in flight (so spooled nothing) while the worker, seeing delivery
    closed, dropped the answer: the event was in neither ``delivered`` nor
    ``spooled``. Now exactly one of the two sides owns it."""
    runtime = errwire.init(dsn=fault_receiver.dsn, data_dir=str(tmp_path))
    answered = threading.Event()
    go_on = threading.Event()
    record = runtime.delivery._record

    def record_slowly(result: Any) -> None:
        answered.set()
        go_on.wait(10.0)
        record(result)

    runtime.delivery._record = record_slowly  # type: ignore[method-assign]
    assert errwire.capture_error(raised(0))
    assert answered.wait(10.0)
    assert errwire.shutdown(timeout=0.2) is False
    go_on.set()
    worker = runtime.worker_lane.thread
    assert worker is not None
    worker.join(10.0)
    c = assert_identity(runtime)
    assert c["captured"] == 1 == c["delivered"] + c["spooled"]
    assert fault_receiver.event_ids() != []


# -- 6. a host application with its own sentry-sdk ----------------------------------------------

HOST_APP = """
import json, logging, sys
import sentry_sdk
import errwire

host_dsn, our_dsn, data_dir = sys.argv[1:4]
sentry_sdk.init(dsn=host_dsn)  # the host's own Sentry, default integrations on
errwire.init(dsn=our_dsn, data_dir=data_dir)

def checkout():
    raise KeyError("card")

ids = {}
try:
    checkout()
except KeyError as exc:
    ids["exception"] = sentry_sdk.capture_exception(exc)  # the app reports it to both
    errwire.capture_error(exc, component="payments")
ids["message"] = sentry_sdk.capture_message("host only")
errwire.capture_message("errwire only", level="error")
logging.getLogger("shop").error("logged by the host")  # sentry-sdk's logging integration
assert errwire.flush(10.0)
sentry_sdk.flush(10.0)
ids["after_errwire"] = sentry_sdk.capture_message("host after errwire delivered")
sentry_sdk.flush(10.0)
errwire_counters = errwire.status()["counters"]
errwire.shutdown(5.0)
print(json.dumps({"ids": ids, "counters": errwire_counters}))
"""


def _host_text(event: dict[str, Any]) -> str:
    """What a sentry-sdk event says: exception value, message, or log message."""
    if "exception" in event:
        return str(event["exception"]["values"][-1]["value"])
    if "logentry" in event:
        entry = event["logentry"]
        return str(entry.get("formatted") or entry.get("message"))
    return str(event.get("message"))


def test_a_host_app_with_its_own_sentry_sdk_and_errwire_both_deliver_once(
    bugsink: Bugsink, fault_receiver: FaultReceiver, tmp_path: Path
) -> None:
    """A host application that calls ``sentry_sdk.init`` (default integrations, in its
    own process so they patch nothing here) and also runs errwire: both deliver to
    Bugsink (each through its own forwarding receiver, so the test sees who sent
    what), each event exactly once, neither sends the other's events, and the
    host's events carry no trace of errwire's requests (no breadcrumb, no context)."""
    fault_receiver.forward_to(bugsink.url)
    with FaultReceiver(project=bugsink.project_id, key="hostkey") as host:
        host.forward_to(bugsink.url)
        key = bugsink.dsn.split("//", 1)[1].split("@", 1)[0]
        host_dsn = host.dsn_in_front_of(bugsink.dsn)
        our_dsn = fault_receiver.dsn_in_front_of(bugsink.dsn)
        assert key in host_dsn and key in our_dsn
        done = subprocess.run(
            [sys.executable, "-c", HOST_APP, host_dsn, our_dsn, str(tmp_path / "data")],
            env=subprocess_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert host.wait_until(lambda r: len(r.event_ids()) >= 4, timeout=10.0)
        host_ids = host.event_ids()
        host_events = host.events()

    ids = report["ids"]
    # the host's sentry-sdk: its four events (three returned ids + the logged error), once each
    assert len(host_ids) == len(set(host_ids)) == 4
    assert {ids["exception"], ids["message"], ids["after_errwire"]} < set(host_ids)
    # (sentry.python.django and friends: the host's auto-enabled integrations are active)
    assert all(e["sdk"]["name"].startswith("sentry.python") for e in host_events)
    assert sorted(_host_text(e) for e in host_events) == [
        "'card'",
        "host after errwire delivered",
        "host only",
        "logged by the host",
    ]
    # errwire: its two events, once each, nothing of the host's
    ours = fault_receiver.event_ids()
    assert len(ours) == len(set(ours)) == 2
    assert not set(ours) & set(host_ids)
    assert sorted(accepted_messages(fault_receiver)) == ["'card'", "errwire only"]
    assert all(e["sdk"]["name"] == "errwire.python" for e in fault_receiver.events())
    # nothing of errwire leaked into the host's events
    port = str(fault_receiver.port)
    for event in host_events:
        assert "errwire" not in event.get("contexts", {})
        assert port not in json.dumps(event.get("breadcrumbs", {}))
    # both really delivered: Bugsink stores all six
    assert set(host_ids) | set(ours) <= bugsink.event_ids()
    c = report["counters"]
    accounted = (
        c["delivered"]
        + c["deduplicated"]
        + c["rate_limited"]
        + c["sampled_out"]
        + sum(c["dropped"].values())
        + c["spooled"]
        + c["rejected"]
    )
    assert c["captured"] == accounted == c["delivered"] == 2


# -- 7. errwire.send_test_event() ----------------------------------------------------------------


def test_send_test_event_reports_the_servers_event_id(bugsink: Bugsink, tmp_path: Path) -> None:
    """Success against Bugsink: the id the server gave the event, which it stored; the
    process's own runtime is neither used nor disturbed (its identity still holds)."""
    memory = errwire.MemoryTransport()
    running = errwire.init(data_dir=str(tmp_path), transport=memory)
    result = errwire.send_test_event(bugsink.dsn, data_dir=str(tmp_path), timeout=30.0)
    assert result.ok, result.detail
    assert result.detail == "delivered" and result.transport == "sentry"
    assert result.remote_id is not None and result.remote_id == result.event_id
    assert result.remote_id in bugsink.event_ids()
    stored = bugsink.event(result.remote_id)
    assert stored is not None
    assert "errwire test event" in stored["data"]["logentry"]["formatted"]
    assert memory.events == []
    c = assert_identity(running)
    assert c["captured"] == 0


def test_send_test_event_reads_the_environment_like_init(
    fault_receiver: FaultReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERRWIRE_DSN", fault_receiver.dsn)
    monkeypatch.setenv("ERRWIRE_DATA_DIR", str(tmp_path))
    result = errwire.send_test_event(timeout=10.0)
    assert result.ok, result.detail
    assert fault_receiver.event_ids() == [result.event_id]


@pytest.mark.parametrize(
    "dsn",
    [
        "not a dsn",
        "https://sentry.example.com/42",  # no key
        "https://key@sentry.example.com/",  # no project
        "ftp://key@sentry.example.com/42",
    ],
)
def test_send_test_event_with_a_bad_dsn_says_so_without_raising(dsn: str, tmp_path: Path) -> None:
    result = errwire.send_test_event(dsn, data_dir=str(tmp_path), timeout=5.0)
    assert not result.ok
    assert "dsn" in result.detail
    assert "https://<key>@<host>/<project id>" in result.detail
    assert result.event_id is None and result.remote_id is None


def test_send_test_event_when_the_connection_is_refused(
    fault_receiver: FaultReceiver, tmp_path: Path
) -> None:
    fault_receiver.refuse()
    result = errwire.send_test_event(fault_receiver.dsn, data_dir=str(tmp_path), timeout=5.0)
    assert not result.ok
    assert result.detail == f"connection refused by 127.0.0.1:{fault_receiver.port}"
    assert not os.path.exists(tmp_path / "outbox.sqlite3")  # a test event is never spooled


def test_send_test_event_with_a_wrong_key_gives_the_servers_reason(
    bugsink: Bugsink, tmp_path: Path
) -> None:
    key = bugsink.dsn.split("//", 1)[1].split("@", 1)[0]
    wrong = bugsink.dsn.replace(key, "0" * 32)
    result = errwire.send_test_event(wrong, data_dir=str(tmp_path), timeout=30.0)
    assert not result.ok
    assert result.detail.startswith("HTTP 403 Forbidden from 127.0.0.1:"), result.detail
    assert "key incorrect" in result.detail  # Bugsink's own words
    assert result.event_id is not None and result.event_id not in bugsink.event_ids()


@pytest.mark.parametrize(
    ("headers", "pause"),
    [({"Retry-After": "7"}, "7.0"), ({"X-Sentry-Rate-Limits": "30:error:key"}, "30.0")],
)
def test_send_test_event_when_rate_limited(
    fault_receiver: FaultReceiver, tmp_path: Path, headers: dict[str, str], pause: str
) -> None:
    fault_receiver.status(429, headers)
    result = errwire.send_test_event(fault_receiver.dsn, data_dir=str(tmp_path), timeout=5.0)
    assert not result.ok
    assert result.detail.startswith(f"rate limited by the destination (retry after {pause} s)")
    assert "HTTP 429" in result.detail


def test_send_test_event_times_out_against_a_blackhole(
    fault_receiver: FaultReceiver, tmp_path: Path
) -> None:
    fault_receiver.blackhole()
    result, took = timed(
        errwire.send_test_event, fault_receiver.dsn, data_dir=str(tmp_path), timeout=1.0
    )
    assert not result.ok
    assert result.detail == f"timed out: no answer from 127.0.0.1:{fault_receiver.port} within 1s"
    assert took < 3.0, took
    assert fault_receiver.accepted == []


def test_send_test_event_with_an_invalid_timeout_says_so() -> None:
    result = errwire.send_test_event("https://key@sentry.example.com/1", timeout=0)
    assert not result.ok and "timeout" in result.detail
