"""The dashboard's data, from every runtime's heartbeat, and its two renderings.

``dashboard_data`` is the view-model every front end shares: the Django page
(through ``status.json``), the ASGI and Flask endpoints. It reads the
heartbeats from the outbox database like ``telemetry_status`` does, so it sees
every process, not only the one serving the request. ``render_json`` and
``render_metrics`` (Prometheus text exposition) turn it into a response body.

Label cardinality is bounded: components are capped (the rest are summed as
``other``), drop reasons are a fixed set (anything else is ``other``), and
per-runtime series exist only for live runtimes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ._activity import MAX_COMPONENTS, MINUTES, OTHER
from ._heartbeat import RuntimeHeartbeat
from ._ops import COUNTER_KEYS, RuntimeHealth, fleet_status, runtime_problems

__all__ = [
    "DROP_REASONS",
    "JSON_CONTENT_TYPE",
    "METRICS_CONTENT_TYPE",
    "dashboard_data",
    "render_json",
    "render_metrics",
]

DROP_REASONS = (
    "queue_full",
    "reserved_for_errors",
    "evicted_oldest",
    "disabled",
    "outbox_full",
    "outbox_error",
    "no_outbox",
    "internal_error",
)
JSON_CONTENT_TYPE = "application/json"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RECENT_SHOWN = 20
GROWTH_MINUTES = 5  # the outbox is "growing" when it holds more than it did this long ago
EMPTY_TEXT = (
    "No runtime has reported yet. Is the errwire middleware installed "
    "(or errwire.init() called) in your app?"
)


# ----------------------------------------------------------------------------- view-model
def dashboard_data(
    outbox_path: str,
    *,
    now: float | None = None,
    stale_after: float = 30.0,
    local: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the dashboard shows, JSON-serialisable.

    ``local`` is the serving process's own ``status()``: fresher than its last
    heartbeat, and present before its first one (a runtime writes heartbeats once
    its worker runs, which is on the first event).
    """
    moment = time.time() if now is None else now
    report = fleet_status(outbox_path, stale_after=stale_after, include_final=True, now=moment)
    if local is not None and local.get("initialised") and local.get("runtime_id"):
        _merge_local(report.runtimes, local, moment)
    live = [r for r in report.runtimes if not r.beat.final]
    runtimes = [_runtime_row(r.as_dict(), r.beat.snapshot, r.beat.age) for r in live]
    totals = _totals(r.beat.snapshot for r in live)
    series = _series((r.beat.snapshot for r in report.runtimes), moment)
    pending = report.outbox_pending
    growth = _growth(series["backlog"], pending)
    warnings = _warnings(runtimes, growth, series)
    return {
        "generated_at": moment,
        "outbox_path": outbox_path,
        "state": "empty" if not runtimes else ("warning" if warnings else "ok"),
        "empty_text": EMPTY_TEXT,
        "warnings": warnings,
        "runtimes": runtimes,
        "totals": totals,
        "outbox": {"pending": pending, "growing": growth is not None},
        "components": _components(r.beat.snapshot for r in live),
        "recent": _recent(report.runtimes),
        "series": series,
    }


def _merge_local(runtimes: list[RuntimeHealth], snap: Mapping[str, Any], now: float) -> None:
    beat = RuntimeHeartbeat(
        runtime_id=str(snap["runtime_id"]),
        pid=int(snap.get("pid") or 0),
        host=str(snap.get("host") or ""),
        started_at=float(snap.get("started_at") or now),
        updated_at=now,
        age=0.0,
        stale=False,
        final=False,
        snapshot=dict(snap),
    )
    fresh = RuntimeHealth(beat, runtime_problems(beat))
    for i, known in enumerate(runtimes):
        if known.beat.runtime_id == beat.runtime_id:
            runtimes[i] = fresh
            return
    runtimes.append(fresh)


def _runtime_row(row: dict[str, Any], snap: Mapping[str, Any], age: float) -> dict[str, Any]:
    queue = row["queue"] or {}
    depth, capacity = int(queue.get("depth", 0) or 0), int(queue.get("capacity", 0) or 0)
    breaker = row["breaker"] or {}
    until = breaker.get("seconds_until_half_open")
    delivery = snap.get("delivery") or {}
    return {
        "runtime_id": row["runtime_id"],
        "pid": row["pid"],
        "host": row["host"],
        "age_seconds": row["age_seconds"],
        "stale": row["stale"],
        "healthy": row["healthy"],
        "problems": row["problems"],
        "enabled": bool(snap.get("enabled")),
        "worker_alive": bool(snap.get("worker_alive")),
        "transport": delivery.get("transport"),
        "last_error": delivery.get("last_error"),
        "queue": {
            "depth": depth,
            "capacity": capacity,
            "percent": round(100.0 * depth / capacity, 1) if capacity else 0.0,
        },
        "breaker": {
            "state": breaker.get("state", "unknown"),
            "consecutive_failures": breaker.get("consecutive_failures", 0),
            "threshold": breaker.get("threshold"),
            # measured when the heartbeat was written: the time since then has passed too
            "seconds_until_half_open": None if until is None else round(max(0.0, until - age), 1),
        },
        "delivered": int((row["counters"] or {}).get("delivered", 0) or 0),
        "spooled": int((row["counters"] or {}).get("spooled", 0) or 0),
    }


def _totals(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = dict.fromkeys(COUNTER_KEYS, 0)
    dropped = dict.fromkeys((*DROP_REASONS, OTHER), 0)
    for snap in snapshots:
        counters = snap.get("counters") or {}
        for key in COUNTER_KEYS:
            totals[key] += int(counters.get(key, 0) or 0)
        for reason, n in (counters.get("dropped") or {}).items():
            dropped[reason if reason in dropped else OTHER] += int(n)
    totals["dropped"] = dropped
    totals["dropped_total"] = sum(dropped.values())
    return totals


def _components(snapshots: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for snap in snapshots:
        for name, c in (snap.get("components") or {}).items():
            row = merged.setdefault(name, {"seen": 0, "rate_limited": 0, "tokens": None})
            row["seen"] += int(c.get("seen", 0) or 0)
            row["rate_limited"] += int(c.get("rate_limited", 0) or 0)
            tokens = c.get("tokens")
            if tokens is not None:  # the emptiest bucket of any process is the one that bites
                row["tokens"] = tokens if row["tokens"] is None else min(row["tokens"], tokens)
    ranked = sorted(merged, key=lambda n: (-merged[n]["seen"], n))
    rows = [{"name": n, **merged[n]} for n in ranked[:MAX_COMPONENTS]]
    rest = ranked[MAX_COMPONENTS:]
    if rest:
        rows.append(
            {
                "name": OTHER,
                "seen": sum(merged[n]["seen"] for n in rest),
                "rate_limited": sum(merged[n]["rate_limited"] for n in rest),
                "tokens": None,
            }
        )
    for row in rows:
        row["limited"] = row["tokens"] is not None and row["tokens"] < 1
    return rows


def _recent(runtimes: Iterable[Any]) -> list[dict[str, Any]]:
    events = []
    for r in runtimes:
        for event in (r.beat.snapshot.get("activity") or {}).get("recent") or ():
            events.append({**event, "pid": r.beat.pid, "host": r.beat.host})
    events.sort(key=lambda e: -(e.get("last_seen") or 0))
    return events[:RECENT_SHOWN]


def _series(snapshots: Iterable[Mapping[str, Any]], now: float) -> dict[str, Any]:
    """Events per minute by component and drops per minute by reason, over the last
    hour, summed over the runtimes; the backlog is the outbox's (one database, so
    the largest value any runtime saw in a minute)."""
    first = int(now // 60) - MINUTES + 1
    events: dict[str, list[int]] = {}
    dropped: dict[str, list[int]] = {}
    backlog: list[int | None] = [None] * MINUTES
    for snap in snapshots:
        minutes = (snap.get("activity") or {}).get("minutes") or {}
        offset = int(minutes.get("start", 0)) // 60 - first
        for name, values in (minutes.get("events") or {}).items():
            _add_at(events.setdefault(name, [0] * MINUTES), values, offset)
        for reason, values in (minutes.get("dropped") or {}).items():
            key = reason if reason in DROP_REASONS else OTHER
            _add_at(dropped.setdefault(key, [0] * MINUTES), values, offset)
        for i, value in enumerate(minutes.get("backlog") or ()):
            j = i + offset
            if value is not None and 0 <= j < MINUTES:
                backlog[j] = value if backlog[j] is None else max(backlog[j] or 0, value)
    totals = {name: sum(values) for name, values in events.items()}
    ranked = sorted(totals, key=lambda n: (-totals[n], n))
    if len(ranked) > MAX_COMPONENTS:
        folded = events.pop(OTHER, [0] * MINUTES)
        for name in ranked[MAX_COMPONENTS:]:
            if name in events:
                _add_at(folded, events.pop(name), 0)
        events[OTHER] = folded
    order = sorted(events, key=lambda n: (n == OTHER, -sum(events[n]), n))
    return {
        "start": first * 60,
        "step": 60,
        "events": {name: events[name] for name in order if any(events[name])},
        "dropped": {r: v for r, v in sorted(dropped.items()) if any(v)},
        "backlog": backlog,
    }


def _add_at(into: list[int], values: Iterable[Any], offset: int) -> None:
    for i, value in enumerate(values):
        j = i + offset
        if 0 <= j < len(into) and value:
            into[j] += int(value)


def _growth(backlog: list[int | None], pending: int | None) -> tuple[int, int] | None:
    """(earlier, now) when the outbox holds more than it did a few minutes ago."""
    if not pending:
        return None
    window = [v for v in backlog[-GROWTH_MINUTES - 1 : -1] if v is not None]
    if not window or min(window) >= pending:
        return None
    return min(window), pending


def _warnings(
    runtimes: list[dict[str, Any]], growth: tuple[int, int] | None, series: Mapping[str, Any]
) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for r in runtimes:
        who = f"{r['host']} pid {r['pid']}"
        if r["breaker"]["state"] == "open":
            until = r["breaker"]["seconds_until_half_open"]
            probe = f"; next probe in {until:.0f} s" if until is not None else ""
            error = f" (last error: {r['last_error']})" if r["last_error"] else ""
            found.append(
                {
                    "kind": "breaker_open",
                    "text": f"Circuit breaker open on {who}: events go to the outbox"
                    f"{probe}{error}.",
                }
            )
        if r["stale"]:
            found.append(
                {
                    "kind": "stale_heartbeat",
                    "text": f"No heartbeat from {who} for {r['age_seconds']:.0f} s: "
                    "the process may have died.",
                }
            )
        for problem in r["problems"]:
            if problem.startswith("failure rate"):
                found.append({"kind": "failing", "text": f"{who}: {problem} of sends fail."})
    if growth is not None:
        found.append(
            {
                "kind": "outbox_growing",
                "text": f"The outbox is growing: {growth[1]} events wait "
                f"(it held {growth[0]} a few minutes ago).",
            }
        )
    recent_drops = sum(sum(v[-GROWTH_MINUTES:]) for v in series["dropped"].values())
    if recent_drops:
        found.append(
            {
                "kind": "dropped",
                "text": f"{recent_drops} events dropped in the last {GROWTH_MINUTES} minutes "
                "(see drops by reason).",
            }
        )
    return found


# ----------------------------------------------------------------------------- renderers
def render_json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


_Sample = tuple[dict[str, str], float]
_Family = tuple[str, str, str, list[_Sample]]  # name, type, help, samples


def _families(data: Mapping[str, Any]) -> list[_Family]:
    totals = data["totals"]
    counters: list[_Family] = [
        (f"errwire_{key}", "counter", text, [({}, float(totals[key]))])
        for key, text in (
            ("captured", "Events accepted by capture, including folded repeats."),
            ("delivered", "Events delivered by the transport."),
            ("deduplicated", "Events folded by the storm guard or suppressed by dedup."),
            ("rate_limited", "Events stopped by the per-component rate limit."),
            ("sampled_out", "Events not kept by sampling."),
            ("rejected", "Events the destination refused for good."),
            ("failed", "Failed send attempts."),
            ("internal_errors", "Errors inside errwire."),
        )
    ]
    dropped = [({"reason": r}, float(n)) for r, n in totals["dropped"].items()]
    counters.append(("errwire_dropped", "counter", "Events dropped, by reason.", dropped))
    components = data["components"]
    counters.append(
        (
            "errwire_component_events",
            "counter",
            "Events the workers processed, by component (capped; the rest is 'other').",
            [({"component": c["name"]}, float(c["seen"])) for c in components],
        )
    )
    counters.append(
        (
            "errwire_component_rate_limited",
            "counter",
            "Events stopped by the rate limit, by component (capped; the rest is 'other').",
            [({"component": c["name"]}, float(c["rate_limited"])) for c in components],
        )
    )
    runtimes = data["runtimes"]

    def per_runtime(value: Any) -> list[_Sample]:
        return [({"runtime": r["runtime_id"]}, float(value(r))) for r in runtimes]

    pending = data["outbox"]["pending"]
    gauges: list[_Family] = [
        ("errwire_runtimes", "gauge", "Runtimes with a live heartbeat.", [({}, len(runtimes))]),
        (
            "errwire_spooled",
            "gauge",
            "The live runtimes' own events waiting in the outbox.",
            [({}, float(totals["spooled"]))],
        ),
        (
            "errwire_outbox_pending",
            "gauge",
            "Events waiting in the outbox (any owner).",
            [({}, float(pending))] if pending is not None else [],
        ),
        (
            "errwire_queue_depth",
            "gauge",
            "Events in the worker queue.",
            per_runtime(lambda r: r["queue"]["depth"]),
        ),
        (
            "errwire_queue_capacity",
            "gauge",
            "Bound of the worker queue.",
            per_runtime(lambda r: r["queue"]["capacity"]),
        ),
        (
            "errwire_breaker_open",
            "gauge",
            "1 when the circuit breaker is open (or half-open), else 0.",
            per_runtime(lambda r: r["breaker"]["state"] != "closed"),
        ),
        (
            "errwire_heartbeat_age_seconds",
            "gauge",
            "Seconds since the runtime's last heartbeat.",
            per_runtime(lambda r: r["age_seconds"]),
        ),
    ]
    return counters + gauges


def render_metrics(data: Mapping[str, Any]) -> bytes:
    """The Prometheus text exposition (version 0.0.4): through ``prometheus_client``
    when it is installed, else the same text written here."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return render_metrics_plain(data)
    return _render_with_client(data)


def _render_with_client(data: Mapping[str, Any]) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

    families = _families(data)

    class Collector:
        def collect(self) -> Iterable[Metric]:
            for name, kind, text, samples in families:
                labels = sorted(samples[0][0]) if samples else []
                family: Metric
                if kind == "counter":
                    family = CounterMetricFamily(name, text, labels=labels)
                else:
                    family = GaugeMetricFamily(name, text, labels=labels)
                for sample_labels, value in samples:
                    family.add_metric([sample_labels[k] for k in labels], value)
                yield family

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return bytes(generate_latest(registry))


def render_metrics_plain(data: Mapping[str, Any]) -> bytes:
    lines = []
    for name, kind, text, samples in _families(data):
        exposed = f"{name}_total" if kind == "counter" else name
        lines.append(f"# HELP {exposed} {_escape_help(text)}")
        lines.append(f"# TYPE {exposed} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items()))
            where = f"{{{label_text}}}" if label_text else ""
            lines.append(f"{exposed}{where} {_number(value)}")
    return ("\n".join(lines) + "\n").encode()


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _number(value: float) -> str:
    """A float the way the Go client (and prometheus_client) prints it."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    point = text.find(".")
    if value > 0 and point > 6:  # Go writes large numbers with an exponent
        digits = (text[:point] + text[point + 1 :]).rstrip("0")
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{mantissa}e+{point - 1:02d}"
    return text
