"""What each runtime keeps for the dashboard: its latest events and per-minute counts.

Two bounded stores, both safe to show (nothing in them is unscrubbed):

* a ring of the most recent events, keyed by fingerprint: the scrubbed payload
  of the latest occurrence, how often it was seen, first and last seen, and
  where it went. The worker calls ``record`` once per event, after the scrub
  stage (a suppressed event only bumps the count of an entry already shown);
* per-minute counts over the last hour, by component and drops by reason, plus
  the outbox backlog (the last value seen each minute). These are not counted
  per event: ``snapshot`` turns the runtime's cumulative counters into
  per-minute deltas whenever status is read (every heartbeat), so the worker
  pays nothing for them.

``snapshot`` goes into ``status()`` and so into every heartbeat, where another
process (the dashboard) reads it; its size is bounded by the constants below.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ._counter import CounterMap
from ._event import Event
from ._transport import Payload

__all__ = [
    "MAX_COMPONENTS",
    "MINUTES",
    "OTHER",
    "RECENT_SHOWN",
    "RING_SIZE",
    "Activity",
    "OutcomeMap",
]

RING_SIZE = 50  # distinct events remembered
RECENT_SHOWN = 20  # of which the newest go into a snapshot
MINUTES = 60  # per-minute history kept
MAX_COMPONENTS = 20  # component series per snapshot; the rest are summed as OTHER
MAX_BUCKET_KEYS = 50  # components counted separately within one minute
MAX_TEXT = 300  # characters of a message or type shown
OTHER = "other"

# ring entry fields (a list: updated in place on the worker, cheap to allocate)
_PAYLOAD, _COUNT, _FIRST, _LAST, _OUTCOME, _SUPPRESSED = range(6)

# A send's outcome -> where the event went. No send at all (breaker open, paused
# by the destination) means it was spooled.
_WHERE = {"ok": "delivered", "rejected": "rejected", "retryable": "spooled"}


class OutcomeMap(CounterMap):
    """Delivery's per-outcome counters that also remember the latest outcome, so the
    activity ring learns what happened to the event just sent at no extra call."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def bump(self, name: str) -> None:
        self.last = name
        self.get(name).bump()


class Activity:
    def __init__(
        self, outcomes: OutcomeMap | None, *, destination: str, spools: bool = True
    ) -> None:
        """``outcomes``: the delivery's ``stats.results`` (None: outcomes unknown)."""
        self.destination = destination
        self._outcomes = outcomes
        self._unsent = "spooled" if spools else "dropped"
        # OrderedDict: moving an entry to the end and dropping the oldest are O(1)
        self._ring: OrderedDict[str, list[Any]] = OrderedDict()
        self._lock = threading.Lock()  # snapshot() may run on several threads at once
        self._minutes: dict[int, dict[str, dict[str, int]]] = {}
        self._seen: dict[str, int] = {}
        self._dropped: dict[str, int] = {}

    # ------------------------------------------------------------------ worker
    def record(self, event: Event, payload: Payload | None) -> None:
        """After the scrub stage and the send: ``payload`` is None when a safeguard
        suppressed the event (then only an entry already in the ring is updated)."""
        key: str = event.fingerprint  # type: ignore[assignment]
        entry = self._ring.get(key)
        if payload is None:  # a flood of suppressed repeats is the hot case: keep it short
            if entry is not None:
                entry[_COUNT] += 1 + event.repeats
                entry[_SUPPRESSED] += 1 + event.repeats
                entry[_LAST] = event.timestamp
            return
        outcomes = self._outcomes
        if outcomes is None:
            where = "sent"
        else:
            where = _WHERE.get(outcomes.last, self._unsent)  # type: ignore[arg-type]
            outcomes.last = None
        if entry is None:
            ring = self._ring
            when = event.timestamp
            ring[key] = [payload, 1 + event.repeats, when, when, where, 0]
            if len(ring) > RING_SIZE:
                ring.popitem(last=False)  # the least recently delivered
        else:
            entry[_PAYLOAD] = payload
            entry[_COUNT] += 1 + event.repeats
            entry[_LAST] = event.timestamp
            entry[_OUTCOME] = where
            self._ring.move_to_end(key)

    def sent_other(self) -> None:
        """The outbox was replayed: its sends say nothing about the next live event."""
        if self._outcomes is not None:
            self._outcomes.last = None

    # ------------------------------------------------------------------ status
    def snapshot(
        self,
        now: float,
        seen: Mapping[str, int],
        dropped: Mapping[str, int],
        backlog: int | None,
    ) -> dict[str, Any]:
        """The dashboard's part of ``status()``; ``seen`` (events per component) and
        ``dropped`` (by reason) are cumulative: their growth since the last call is
        counted in the current minute."""
        with self._lock:
            minute = int(now // 60)
            bucket = self._minutes.get(minute)
            if bucket is None:
                bucket = self._minutes[minute] = {"events": {}, "dropped": {}, "backlog": {}}
                for old in [m for m in self._minutes if m <= minute - MINUTES]:
                    del self._minutes[old]
            _add_deltas(bucket["events"], seen, self._seen, MAX_BUCKET_KEYS)
            _add_deltas(bucket["dropped"], dropped, self._dropped, MAX_BUCKET_KEYS)
            if backlog is not None:
                bucket["backlog"]["last"] = backlog
            series = self._series(minute)
        return {
            "destination": self.destination,
            "recent": self.recent(),
            "minutes": series,
        }

    def recent(self, limit: int = RECENT_SHOWN) -> list[dict[str, Any]]:
        """The newest events first, as the dashboard shows them."""
        entries = sorted(list(self._ring.values()), key=lambda e: e[_LAST], reverse=True)
        return [_describe(entry, self.destination) for entry in entries[:limit]]

    def _series(self, minute: int) -> dict[str, Any]:
        first = minute - MINUTES + 1
        totals: dict[str, int] = {}
        for bucket in self._minutes.values():
            for name, n in bucket["events"].items():
                totals[name] = totals.get(name, 0) + n
        ranked = sorted(totals, key=lambda name: (-totals[name], name))
        kept = set([name for name in ranked if name != OTHER][:MAX_COMPONENTS])
        events: dict[str, list[int]] = {}
        dropped: dict[str, list[int]] = {}
        backlog: list[int | None] = [None] * MINUTES
        for m, bucket in self._minutes.items():
            i = m - first
            if not 0 <= i < MINUTES:
                continue
            for name, n in bucket["events"].items():
                key = name if name in kept else OTHER
                events.setdefault(key, [0] * MINUTES)[i] += n
            for reason, n in bucket["dropped"].items():
                dropped.setdefault(reason, [0] * MINUTES)[i] += n
            if "last" in bucket["backlog"]:
                backlog[i] = bucket["backlog"]["last"]
        return {
            "start": first * 60,
            "step": 60,
            "events": events,
            "dropped": dropped,
            "backlog": backlog,
        }


def _add_deltas(
    into: dict[str, int], current: Mapping[str, int], previous: dict[str, int], cap: int
) -> None:
    deltas = []
    for name, value in current.items():
        delta = value - previous.get(name, 0)
        previous[name] = value
        if delta > 0:
            deltas.append((delta, name))
    deltas.sort(reverse=True)  # the busiest keep their own key when there are too many
    for delta, name in deltas:
        key = name if name in into or len(into) < cap - 1 else OTHER
        into[key] = into.get(key, 0) + delta


def _describe(entry: list[Any], destination: str) -> dict[str, Any]:
    payload: Payload = entry[_PAYLOAD]
    exception = payload.get("exception") or {}
    return {
        "type": _text(exception.get("type")) if exception else None,
        "message": _text(payload.get("message")),
        "level": payload.get("level"),
        "component": payload.get("component"),
        "category": payload.get("category"),
        "count": entry[_COUNT],
        "suppressed": entry[_SUPPRESSED],
        "first_seen": entry[_FIRST],
        "last_seen": entry[_LAST],
        "outcome": entry[_OUTCOME],
        "destination": destination,
    }


def _text(value: object) -> str:
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
