"""The web side: capture still only publishes; the worker thread scrubs, batches
and appends to the stream; Redis down means spool and back off, never a blocked
or failed capture; the process's own accounting stays exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from errwire import Config
from errwire._clock import ManualClock
from errwire._redis import Keys, StreamForwarder
from errwire._runtime import Runtime, accounted_for
from tests.support.redis_server import RedisServer


def _runtime(url: str, data_dir: Path, **options: Any) -> Runtime:
    config = Config(bus=url, data_dir=str(data_dir), storm_window_seconds=0, **options)
    return Runtime(config, clock=ManualClock(), autostart=False)


def _raise(n: int) -> ValueError:
    try:
        raise ValueError(f"order {n} failed")
    except ValueError as exc:
        return exc


def _entries(client: Any, keys: Keys) -> list[dict[str, Any]]:
    return [json.loads(fields["p"]) for _, fields in client.xrange(keys.stream)]


def test_events_reach_the_stream_scrubbed_in_batches(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    runtime = _runtime(redis_server.url, tmp_path)
    forwarder = runtime.forwarder
    assert isinstance(forwarder, StreamForwarder)
    try:
        for n in range(250):
            runtime.capture_exception(
                _raise(n), "orders", None, "error", {"password": "hunter2", "n": n}
            )
        assert client.xlen(keys.stream) == 0  # capture only published to the queue
        assert runtime.worker_lane.process_pending() == 250
        entries = _entries(client, keys)
        assert len(entries) == 250
        assert forwarder.batches.value == 3  # 100 + 100 + 50: one append per batch
        assert all(e["component"] == "orders" and e["fingerprint"] for e in entries)
        assert len({e["event_id"] for e in entries}) == 250
        raw = json.dumps(entries)
        assert "hunter2" not in raw  # the same scrubber ran before anything left
        counters = runtime.counters()
        assert counters["forwarded"] == 250
        assert counters["captured"] == accounted_for(counters)
        assert int(client.hget(keys.totals, "forwarded")) == 250
        status = runtime.status()
        assert status["bus"]["forwarded"] == 250
        assert status["bus"]["url"] == redis_server.url
    finally:
        runtime.shutdown(1.0)
    # the final heartbeat added this process's counters to the fleet totals
    totals = client.hgetall(keys.totals)
    assert int(totals["captured"]) == 250


def test_redis_down_spools_backs_off_and_forwards_after_it_returns(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    runtime = _runtime(own_redis.url, tmp_path)
    forwarder = runtime.forwarder
    assert forwarder is not None
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    try:
        own_redis.stop()
        runtime.capture_exception(_raise(1), "orders", None, "error", None)
        runtime.worker_lane.process_pending()
        assert forwarder.failures.value == 1
        assert forwarder.in_backoff()
        for n in range(2, 6):  # while backing off: straight to the spool, no attempt
            runtime.capture_exception(_raise(n), "orders", None, "error", None)
        runtime.worker_lane.process_pending()
        assert forwarder.failures.value == 1
        counters = runtime.counters()
        assert counters["spooled"] == 5 and counters["forwarded"] == 0
        assert counters["captured"] == accounted_for(counters)
        assert runtime.status()["bus"]["last_error"]

        own_redis.start()  # same port, empty
        clock.advance(60)
        runtime.worker_lane.run_idle()
        counters = runtime.counters()
        assert counters["spooled"] == 0 and counters["forwarded"] == 5
        assert counters["captured"] == accounted_for(counters)
        client = own_redis.client()
        assert client.xlen(Keys().stream) == 5
        client.close()
        assert forwarder.spool_pending == 0
    finally:
        runtime.shutdown(1.0)


def test_capture_never_touches_redis_on_the_callers_thread(tmp_path: Path) -> None:
    runtime = _runtime("redis://127.0.0.1:1/0", tmp_path)  # nothing listens there
    forwarder = runtime.forwarder
    assert forwarder is not None
    try:
        for n in range(50):
            assert runtime.capture_exception(_raise(n), "orders", None, "error", None)
        assert forwarder.failures.value == 0  # no attempt yet: capture only queued
        assert forwarder._client is None
        assert runtime.worker_lane.depth == 50
        runtime.worker_lane.process_pending()  # the worker thread's turn: Redis is down
    finally:
        runtime.shutdown(0.5)
    assert forwarder.failures.value == 1
    counters = runtime.counters()
    assert counters["captured"] == 50
    assert counters["captured"] == accounted_for(counters)
    assert counters["spooled"] == 50


def test_what_is_still_batched_at_close_is_spooled(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    runtime = _runtime(redis_server.url, tmp_path)
    forwarder = runtime.forwarder
    assert forwarder is not None
    forwarder.lane = SimpleNamespace(depth=5)  # type: ignore[assignment]  # a busy queue
    forwarder.batch_size = 10
    for n in range(3):
        runtime.capture_exception(_raise(n), "orders", None, "error", None)
    runtime.worker_lane.process_pending()
    assert len(forwarder._batch) == 3  # waiting for the batch to fill or the queue to empty
    runtime.shutdown(1.0)
    counters = runtime.counters()
    assert counters["captured"] == 3
    assert counters["spooled"] == 3 and counters["forwarded"] == 0
    assert counters["captured"] == accounted_for(counters)


def test_the_core_does_not_import_redis_in_process_mode(tmp_path: Path) -> None:
    code = (
        "import sys, errwire\n"
        f"errwire.init(data_dir={str(tmp_path)!r})\n"
        "errwire.capture_message('hello')\n"
        "errwire.flush(5)\n"
        "errwire.shutdown()\n"
        "print('redis' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "bus",
    ["redis://", "http://cache:6379", "redis://cache:6379/x", 7, "redis://:s3cret@:6379/0"],
)
def test_a_bad_bus_is_a_value_error_naming_the_option(bus: object) -> None:
    from errwire._config import make_config

    with pytest.raises(ValueError, match="ERRWIRE_BUS") as info:
        make_config({"bus": bus}, label=lambda name: "ERRWIRE_" + name.upper())
    assert "s3cret" not in str(info.value)


def test_the_bus_comes_from_the_environment() -> None:
    from errwire._config import make_config

    env = {"ERRWIRE_BUS": "redis://cache:6379/2", "ERRWIRE_BUS_MAX_LENGTH": "5000"}
    config = make_config({}, use_env=True, environ=env)
    assert config.redis_url == "redis://cache:6379/2"
    assert config.bus_max_length == 5000
    assert make_config({}).redis_url is None


def test_missing_redis_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from errwire._config import make_config

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a)
    )
    with pytest.raises(ValueError, match=r"bus .*needs the redis package.*errwire\[redis\]"):
        make_config({"bus": "redis://cache:6379/0"})


def test_a_full_stream_trims_and_the_trim_is_counted_as_a_drop(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    from errwire._redis import fleet_report

    runtime = _runtime(redis_server.url, tmp_path, bus_max_length=100)
    forwarder = runtime.forwarder
    assert forwarder is not None
    try:
        for n in range(350):  # nobody consumes: the stream fills up
            runtime.capture_exception(_raise(n), "orders", None, "error", None)
        runtime.worker_lane.process_pending()
    finally:
        runtime.shutdown(1.0)
    trimmed = forwarder.trimmed.value
    assert trimmed > 0
    assert client.xlen(keys.stream) + trimmed == 350
    assert runtime.status()["bus"]["trimmed"] == trimmed
    report = fleet_report(client, url=redis_server.url, keys=keys, include_final=True)
    assert report.totals["dropped"] == {"stream_trimmed": trimmed}
    assert report.identity["holds"], report.identity  # captured == trimmed + in_stream
    assert report.problems  # events wait and no worker consumes them


def test_disabled_telemetry_forwards_nothing_and_says_so(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    config = Config(bus=redis_server.url, data_dir=str(tmp_path), storm_window_seconds=0)
    switch = [True]
    runtime = Runtime(config, clock=ManualClock(), autostart=False, is_enabled=lambda: switch[0])
    try:
        for n in range(4):
            runtime.capture_exception(_raise(n), "orders", None, "error", None)
        switch[0] = False  # errwire.disable() before the worker got to them
        runtime.worker_lane.process_pending()
        counters = runtime.counters()
        assert counters["dropped"] == {"disabled": 4}
        assert counters["forwarded"] == 0
        assert counters["captured"] == accounted_for(counters)
        assert client.xlen(keys.stream) == 0
    finally:
        runtime.shutdown(1.0)


def test_events_another_process_left_in_the_spool_are_forwarded(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    dead = _runtime("redis://127.0.0.1:1/0", tmp_path)  # Redis unreachable: it spools
    for n in range(3):
        dead.capture_exception(_raise(n), "orders", None, "error", None)
    dead.worker_lane.process_pending()
    dead.shutdown(0.5)
    assert dead.counters()["spooled"] == 3

    runtime = _runtime(redis_server.url, tmp_path)  # same host, same data dir
    forwarder = runtime.forwarder
    assert forwarder is not None
    try:
        runtime.worker_lane.run_idle()
        assert forwarder.forwarded_foreign.value == 3
        assert client.xlen(keys.stream) == 3
        counters = runtime.counters()
        assert counters["forwarded"] == 0  # not its own: its identity is unaffected
        assert counters["captured"] == accounted_for(counters)
    finally:
        runtime.shutdown(1.0)
    # fleet-wide the three moved from "spooled" to the stream. The first process never
    # reached Redis, so its captured=3, spooled=3 never arrived: the totals show
    # spooled=-3 and still balance (0 captured == -3 spooled + 3 in the stream)
    from errwire._redis import fleet_report

    report = fleet_report(client, url=redis_server.url, keys=keys, include_final=True)
    assert report.totals["stream"]["forwarded"] == 3
    assert report.totals["spooled"] == -3
    assert report.identity["holds"], report.identity


def test_a_new_process_starts_forwarding_what_an_earlier_one_spooled(tmp_path: Path) -> None:
    """``init`` starts the worker at once when a forward spool was left behind, so a
    restarted web process forwards it without waiting for its first capture."""
    from errwire._api import _left_behind

    fresh = _runtime("redis://127.0.0.1:1/0", tmp_path / "fresh")
    try:
        assert not _left_behind(fresh)
    finally:
        fresh.shutdown(0.5)

    dead = _runtime("redis://127.0.0.1:1/0", tmp_path / "left")
    dead.capture_exception(_raise(1), "orders", None, "error", None)
    dead.worker_lane.process_pending()
    dead.shutdown(0.5)
    assert dead.counters()["spooled"] == 1

    restarted = _runtime("redis://127.0.0.1:1/0", tmp_path / "left")
    try:
        assert _left_behind(restarted)
    finally:
        restarted.shutdown(0.5)


def test_capture_events_collects_in_a_redis_runtime_then_forwarding_resumes(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    import errwire
    from errwire.testing import capture_events

    runtime = errwire.init(
        bus=redis_server.url, data_dir=str(tmp_path), storm_window_seconds=0, use_env=False
    )
    try:
        errwire.capture_error(_raise(1), component="orders")
        with capture_events() as events:
            errwire.capture_error(_raise(2), component="orders", context={"password": "hunter2"})
        assert [e["exception"]["value"] for e in events] == ["order 2 failed"]
        assert "hunter2" not in json.dumps(events)  # scrubbed like everything else
        errwire.capture_error(_raise(3), component="orders")
        assert errwire.flush(5.0)
        forwarded = [e["exception"]["value"] for e in _entries(client, keys)]
        assert forwarded == ["order 1 failed", "order 3 failed"]  # the block's stayed here
        counters = runtime.counters()
        assert (counters["forwarded"], counters["delivered"]) == (2, 1)
        assert counters["captured"] == accounted_for(counters)
    finally:
        errwire.shutdown(2.0)
