"""What each runtime keeps for the dashboard: the ring of recent events (scrubbed,
with where each went) and per-minute counts, in ``status()`` and in heartbeats."""

from __future__ import annotations

import json

from errwire._activity import (
    MAX_COMPONENTS,
    MINUTES,
    OTHER,
    RECENT_SHOWN,
    RING_SIZE,
    Activity,
    OutcomeMap,
)
from errwire._clock import ManualClock
from errwire._event import Event
from errwire._heartbeat import read_heartbeats
from errwire._transport import Outcome

from .conftest import MakeRuntime, ScriptedTransport, raise_depth


def event(fingerprint: str, timestamp: float = 100.0, repeats: int = 0) -> Event:
    e = Event("exception", "error", ValueError, "raw", (), (), "shop", None, None, None, None,
              timestamp, repeats)  # fmt: skip
    e.fingerprint = fingerprint
    return e


def payload(message: str, component: str = "shop") -> dict[str, object]:
    return {
        "message": message,
        "level": "error",
        "exception": {"type": "builtins.ValueError", "value": message, "stack": []},
        "component": component,
        "category": "validation",
    }


def test_ring_folds_repeats_by_fingerprint_and_remembers_where_they_went() -> None:
    outcomes = OutcomeMap()
    activity = Activity(outcomes, destination="sentry")
    outcomes.bump("ok")
    activity.record(event("a", 100.0), payload("first [EMAIL]"))
    outcomes.bump("retryable")
    activity.record(event("a", 105.0, repeats=2), payload("second [EMAIL]"))
    activity.record(event("a", 106.0), None)  # suppressed by a safeguard: counted only
    activity.record(event("b", 107.0), None)  # suppressed and never shown: nothing to show
    (entry,) = activity.recent()
    assert entry["message"] == "second [EMAIL]"  # the latest scrubbed occurrence
    assert entry["count"] == 1 + 3 + 1
    assert entry["suppressed"] == 1
    assert (entry["first_seen"], entry["last_seen"]) == (100.0, 106.0)
    assert entry["outcome"] == "spooled" and entry["destination"] == "sentry"
    assert entry["type"] == "builtins.ValueError"


def test_outcome_of_an_event_that_was_not_sent_is_spooled_or_dropped() -> None:
    outcomes = OutcomeMap()
    activity = Activity(outcomes, destination="local")
    outcomes.bump("ok")  # a replayed outbox entry
    activity.sent_other()
    activity.record(event("a"), payload("x"))  # breaker open: never sent
    assert activity.recent()[0]["outcome"] == "spooled"
    no_outbox = Activity(OutcomeMap(), destination="local", spools=False)
    no_outbox.record(event("a"), payload("x"))
    assert no_outbox.recent()[0]["outcome"] == "dropped"
    unknown = Activity(None, destination="memory")
    unknown.record(event("a"), payload("x"))
    assert unknown.recent()[0]["outcome"] == "sent"


def test_ring_and_texts_are_bounded() -> None:
    activity = Activity(OutcomeMap(), destination="local")
    for i in range(RING_SIZE + 30):
        activity.record(event(f"fp{i}", float(i)), payload("y" * 5000))
    assert len(activity._ring) == RING_SIZE
    recent = activity.recent()
    assert len(recent) == RECENT_SHOWN
    assert recent[0]["last_seen"] == RING_SIZE + 29  # newest first
    assert all(len(e["message"]) <= 300 for e in recent)


def test_snapshot_turns_cumulative_counters_into_per_minute_series() -> None:
    activity = Activity(OutcomeMap(), destination="local")
    minute = 29_000_000
    t0 = minute * 60.0
    activity.snapshot(t0 + 1, {"shop": 3}, {}, 0)
    activity.snapshot(t0 + 30, {"shop": 5, "billing": 1}, {"queue_full": 2}, 4)
    snap = activity.snapshot(t0 + 61, {"shop": 9, "billing": 1}, {"queue_full": 2}, 7)
    series = snap["minutes"]
    assert series["step"] == 60
    assert series["start"] == (minute + 1 - MINUTES + 1) * 60
    assert series["events"]["shop"][-2:] == [5, 4]
    assert series["events"]["billing"][-2:] == [1, 0]
    assert series["dropped"]["queue_full"][-2:] == [2, 0]
    assert series["backlog"][-2:] == [4, 7]
    assert all(len(v) == MINUTES for v in series["events"].values())
    # an hour later the old minutes are gone
    later = activity.snapshot(t0 + 61 + 3600, {"shop": 9, "billing": 1}, {"queue_full": 2}, 0)
    assert later["minutes"]["events"] == {} and later["minutes"]["dropped"] == {}


def test_components_are_capped_in_the_series() -> None:
    activity = Activity(OutcomeMap(), destination="local")
    seen = {f"c{i:03d}": i + 1 for i in range(300)}
    snap = activity.snapshot(60.0 * 1000, seen, {f"reason{i}": 1 for i in range(200)}, None)
    events = snap["minutes"]["events"]
    assert len(events) == MAX_COMPONENTS + 1 and OTHER in events
    assert sum(sum(v) for v in events.values()) == sum(seen.values())
    assert len(json.dumps(snap)) < 20_000


def test_runtime_status_carries_activity_and_where_events_went(
    make_runtime: MakeRuntime, clock: ManualClock
) -> None:
    transport = ScriptedTransport()
    runtime = make_runtime(transport, breaker_failure_threshold=1, storm_window_seconds=0,
                           dedup_window_seconds=0)  # fmt: skip
    runtime.capture_exception(raise_depth(2, "delivered one"), "shop", None, "error", None)
    runtime.worker_lane.process_pending()
    transport.fail_next(1)
    runtime.capture_exception(raise_depth(2, "failed one"), "billing", None, "error", None)
    runtime.worker_lane.process_pending()
    runtime.capture_exception(raise_depth(3, "while open"), "billing", None, "error", None)
    runtime.worker_lane.process_pending()
    status = runtime.status()
    activity = status["activity"]
    outcomes = {e["message"]: e["outcome"] for e in activity["recent"]}
    assert outcomes == {
        "delivered one": "delivered",
        "failed one": "spooled",
        "while open": "spooled",
    }
    assert activity["destination"] == "scripted"
    assert {"shop", "billing"} <= set(activity["minutes"]["events"])
    json.dumps(status)  # still JSON-serialisable


def test_rejected_events_say_so(make_runtime: MakeRuntime) -> None:
    transport = ScriptedTransport()
    runtime = make_runtime(transport)
    transport.fail_next(1, Outcome.REJECTED)
    runtime.capture_message("refused", "error", "ops", None, None)
    runtime.worker_lane.process_pending()
    assert runtime.status()["activity"]["recent"][0]["outcome"] == "rejected"


def test_heartbeats_carry_the_activity_to_other_processes(
    make_runtime: MakeRuntime, clock: ManualClock
) -> None:
    runtime = make_runtime()
    runtime.capture_message("seen from afar", "warning", "ops", None, None)
    runtime.worker_lane.process_pending()
    runtime._write_heartbeat(final=False)
    (beat,) = read_heartbeats(runtime.config.resolved_outbox_path, now=clock.time(), stale_after=1)
    recent = beat.snapshot["activity"]["recent"]
    assert recent[0]["message"] == "seen from afar"
    assert recent[0]["component"] == "ops"
