"""The dashboard's view-model (from heartbeats) and its JSON and Prometheus renderings."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from errwire._activity import MAX_COMPONENTS, MINUTES, OTHER
from errwire._clock import ManualClock
from errwire._dashboard import (
    DROP_REASONS,
    dashboard_data,
    render_json,
    render_metrics,
    render_metrics_plain,
)
from errwire._dashboard import _number as go_number
from errwire._heartbeat import HeartbeatWriter
from errwire._outbox import Outbox

from .conftest import MakeRuntime, ScriptedTransport, raise_depth

NOW = 1_800_000_000.0


def write_beat(path: str, runtime_id: str, snapshot: dict[str, Any], at: float) -> None:
    writer = HeartbeatWriter(path, runtime_id, clock=ManualClock(start=0.0, wall=at))
    writer.write(snapshot)
    writer.close()


def snapshot(**overrides: Any) -> dict[str, Any]:
    """A heartbeat snapshot shaped like ``Runtime.status()``."""
    base: dict[str, Any] = {
        "enabled": True,
        "worker_alive": True,
        "queue": {"depth": 10, "capacity": 100, "high_water": 12},
        "counters": {
            "captured": 10,
            "delivered": 7,
            "deduplicated": 1,
            "rate_limited": 0,
            "sampled_out": 0,
            "dropped": {"queue_full": 2},
            "spooled": 0,
            "rejected": 0,
            "failed": 0,
            "internal_errors": 0,
        },
        "delivery": {
            "transport": "sentry",
            "last_error": None,
            "breaker": {
                "state": "closed",
                "consecutive_failures": 0,
                "threshold": 10,
                "seconds_until_half_open": None,
            },
        },
        "outbox": {"pending": 0},
        "components": {"shop": {"seen": 9, "rate_limited": 0, "tokens": 990.0}},
        "activity": {"destination": "sentry", "recent": [], "minutes": {}},
    }
    base.update(overrides)
    return base


def minutes(now: float, **series: Any) -> dict[str, Any]:
    start = (int(now // 60) - MINUTES + 1) * 60
    return {"start": start, "step": 60, "events": {}, "dropped": {}, "backlog": [None] * MINUTES,
            **series}  # fmt: skip


@pytest.fixture
def outbox_path(tmp_path: Path) -> str:
    return str(tmp_path / "outbox.sqlite3")


def test_no_database_is_the_empty_state(outbox_path: str) -> None:
    data = dashboard_data(outbox_path, now=NOW)
    assert data["state"] == "empty"
    assert "middleware" in data["empty_text"]
    assert data["runtimes"] == [] and data["warnings"] == [] and data["recent"] == []
    assert data["totals"]["captured"] == 0
    assert set(data["totals"]["dropped"]) == {*DROP_REASONS, OTHER}
    assert data["outbox"] == {"pending": None, "growing": False}
    assert data["series"]["events"] == {} and len(data["series"]["backlog"]) == MINUTES
    json.loads(render_json(data))


def test_a_healthy_fleet_sums_counters_and_components(outbox_path: str) -> None:
    write_beat(outbox_path, "web-1", snapshot(), NOW - 2)
    other = snapshot(components={"shop": {"seen": 1, "rate_limited": 3, "tokens": 0.4}})
    other["counters"] = {**other["counters"], "dropped": {"queue_full": 1, "mystery": 5}}
    write_beat(outbox_path, "web-2", other, NOW - 1)
    data = dashboard_data(outbox_path, now=NOW)
    assert data["state"] == "ok", data["warnings"]
    assert [r["runtime_id"] for r in data["runtimes"]] == ["web-1", "web-2"]
    web1 = data["runtimes"][0]
    assert web1["queue"] == {"depth": 10, "capacity": 100, "percent": 10.0}
    assert web1["age_seconds"] == 2.0 and web1["breaker"]["state"] == "closed"
    totals = data["totals"]
    assert totals["captured"] == 20 and totals["delivered"] == 14
    assert totals["dropped"]["queue_full"] == 3 and totals["dropped"][OTHER] == 5
    assert totals["dropped_total"] == 8
    (shop,) = data["components"]
    assert shop == {"name": "shop", "seen": 10, "rate_limited": 3, "tokens": 0.4, "limited": True}


def test_breaker_open_and_stale_heartbeats_are_warnings(outbox_path: str) -> None:
    breaker = {"state": "open", "consecutive_failures": 10, "threshold": 10,
               "seconds_until_half_open": 100.0}  # fmt: skip
    failing = snapshot(
        delivery={"transport": "sentry", "last_error": "HTTP 500", "breaker": breaker}
    )
    write_beat(outbox_path, "web-1", failing, NOW - 4)
    write_beat(outbox_path, "web-2", snapshot(), NOW - 120)
    data = dashboard_data(outbox_path, now=NOW, stale_after=30)
    assert data["state"] == "warning"
    warnings = {w["kind"]: w["text"] for w in data["warnings"]}
    assert set(warnings) == {"breaker_open", "stale_heartbeat"}
    rows = {r["runtime_id"]: r for r in data["runtimes"]}
    open_one = rows["web-1"]
    # measured when the heartbeat was written, 4 s ago
    assert open_one["breaker"]["seconds_until_half_open"] == 96.0
    assert "next probe in 96 s" in warnings["breaker_open"]
    assert "HTTP 500" in warnings["breaker_open"]
    assert "120 s" in warnings["stale_heartbeat"]
    assert rows["web-2"]["stale"] and not rows["web-2"]["healthy"]


def test_final_heartbeats_are_not_live_but_their_events_still_show(outbox_path: str) -> None:
    recent = [{"message": "from a stopped process", "last_seen": NOW - 50, "count": 1}]
    gone = snapshot(activity={"recent": recent, "minutes": minutes(NOW, events={"shop": [1] * 60})})
    writer = HeartbeatWriter(outbox_path, "old", clock=ManualClock(start=0.0, wall=NOW - 40))
    writer.write(gone, final=True)
    writer.close()
    data = dashboard_data(outbox_path, now=NOW)
    assert data["state"] == "empty" and data["runtimes"] == []
    assert data["recent"][0]["message"] == "from a stopped process"
    assert sum(data["series"]["events"]["shop"]) == 60


def test_outbox_growing_is_a_warning(outbox_path: str, make_runtime: MakeRuntime) -> None:
    box = Outbox(outbox_path, 1000)
    box.put_many([{"event_id": f"{i:032x}", "message": "m"} for i in range(7)], "web-1")
    box.close()
    backlog: list[int | None] = [None] * MINUTES
    backlog[-4:] = [2, 4, 6, 7]
    write_beat(
        outbox_path, "web-1", snapshot(activity={"minutes": minutes(NOW, backlog=backlog)}), NOW
    )
    data = dashboard_data(outbox_path, now=NOW)
    assert data["outbox"] == {"pending": 7, "growing": True}
    (warning,) = [w for w in data["warnings"] if w["kind"] == "outbox_growing"]
    assert "7 events wait" in warning["text"] and "held 2" in warning["text"]
    # shrinking is not growing
    backlog[-4:] = [9, 9, 8, 7]
    write_beat(
        outbox_path, "web-1", snapshot(activity={"minutes": minutes(NOW, backlog=backlog)}), NOW
    )
    assert dashboard_data(outbox_path, now=NOW)["outbox"]["growing"] is False


def test_series_are_aligned_across_runtimes_and_capped(outbox_path: str) -> None:
    ones = [0] * (MINUTES - 1) + [1]
    a = minutes(NOW, events={f"c{i:02d}": ones for i in range(30)}, dropped={"queue_full": ones})
    b = minutes(NOW - 60, events={"c00": ones}, dropped={"weird": ones})  # written a minute ago
    write_beat(outbox_path, "web-1", snapshot(activity={"minutes": a}), NOW)
    write_beat(outbox_path, "web-2", snapshot(activity={"minutes": b}), NOW - 5)
    series = dashboard_data(outbox_path, now=NOW)["series"]
    events = series["events"]
    assert len(events) == MAX_COMPONENTS + 1 and list(events)[-1] == OTHER
    assert events["c00"][-2:] == [1, 1]  # web-2's last minute is one minute earlier
    assert sum(map(sum, events.values())) == 31
    assert series["dropped"] == {"other": [0] * (MINUTES - 2) + [1, 0], "queue_full": ones}
    warnings = dashboard_data(outbox_path, now=NOW)["warnings"]
    assert any(w["kind"] == "dropped" and w["text"].startswith("2 events") for w in warnings)


def test_recent_events_from_every_runtime_newest_first(outbox_path: str) -> None:
    for name, seen in (("web-1", [NOW - 30, NOW - 10]), ("web-2", [NOW - 20])):
        recent = [{"message": f"{name} at {t}", "last_seen": t} for t in seen]
        write_beat(outbox_path, name, snapshot(activity={"recent": recent}), NOW)
    recent = dashboard_data(outbox_path, now=NOW)["recent"]
    assert [e["last_seen"] for e in recent] == [NOW - 10, NOW - 20, NOW - 30]
    assert all("pid" in e and "host" in e for e in recent)


def test_the_serving_process_is_shown_fresh_even_before_its_first_heartbeat(
    outbox_path: str, make_runtime: MakeRuntime
) -> None:
    transport = ScriptedTransport()
    runtime = make_runtime(transport, breaker_failure_threshold=1)
    transport.fail_next(1)
    runtime.capture_exception(raise_depth(2), "shop", None, "error", None)
    runtime.worker_lane.process_pending()
    local = {**runtime.status(), "initialised": True}
    data = dashboard_data(outbox_path, now=NOW, local=local)
    (row,) = data["runtimes"]
    assert row["runtime_id"] == runtime.runtime_id and row["age_seconds"] == 0.0
    assert row["breaker"]["state"] == "open"
    assert "circuit breaker open" in row["problems"]
    assert data["recent"][0]["outcome"] == "spooled"
    # an older heartbeat of the same runtime is replaced, not shown twice
    write_beat(outbox_path, runtime.runtime_id, snapshot(), NOW - 10)
    again = dashboard_data(outbox_path, now=NOW, local=local)
    assert [r["age_seconds"] for r in again["runtimes"]] == [0.0]
    assert (
        dashboard_data(outbox_path + ".x", now=NOW, local={"initialised": False})["state"]
        == "empty"
    )


# ----------------------------------------------------------------------------- metrics
def fleet_data(outbox_path: str) -> dict[str, Any]:
    tricky = snapshot(
        components={'we"ird\\comp\nname': {"seen": 12345678, "rate_limited": 1, "tokens": 2.0}}
    )
    write_beat(outbox_path, "web-1", tricky, NOW - 1)
    return dashboard_data(outbox_path, now=NOW)


def test_metrics_parse_as_prometheus_text(outbox_path: str) -> None:
    text = render_metrics(fleet_data(outbox_path)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["errwire_captured"].type == "counter"
    assert families["errwire_captured"].samples[0].value == 10
    dropped = {s.labels["reason"]: s.value for s in families["errwire_dropped"].samples}
    assert set(dropped) == {*DROP_REASONS, OTHER} and dropped["queue_full"] == 2
    components = families["errwire_component_events"].samples
    assert components[0].labels["component"] == 'we"ird\\comp\nname'
    assert components[0].value == 12345678
    depth = families["errwire_queue_depth"].samples[0]
    assert depth.labels == {"runtime": "web-1"} and depth.value == 10
    assert families["errwire_breaker_open"].samples[0].value == 0
    assert families["errwire_runtimes"].samples[0].value == 1


def test_plain_fallback_writes_exactly_what_prometheus_client_writes(outbox_path: str) -> None:
    data = fleet_data(outbox_path)
    assert render_metrics_plain(data) == render_metrics(data)
    assert render_metrics_plain(dashboard_data(outbox_path + ".none", now=NOW)) == render_metrics(
        dashboard_data(outbox_path + ".none", now=NOW)
    )


def test_without_prometheus_client_the_fallback_is_used(
    outbox_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = fleet_data(outbox_path)
    expected = render_metrics(data)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    assert render_metrics(data) == expected


@pytest.mark.parametrize(
    "value", [0, 1, 0.5, 2.25, 123456, 1234567, 12345678, 1e7, 123456789.5, 1e21, -5.0, -1e9]
)
def test_numbers_are_written_like_the_go_client(value: float) -> None:
    assert go_number(value) == floatToGoString(value)  # type: ignore[no-untyped-call]


def test_special_numbers() -> None:
    assert [go_number(float(v)) for v in ("inf", "-inf", "nan")] == ["+Inf", "-Inf", "NaN"]
