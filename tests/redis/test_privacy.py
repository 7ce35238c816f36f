"""Nothing unscrubbed reaches Redis: the planted secrets of the leak harness go
through a web process in Redis mode, and every byte in Redis (stream entries,
heartbeats, totals) and in the forward spool is searched for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from errwire import Config
from errwire._runtime import Runtime
from tests.support.planted_secrets import PLANTS, encodings
from tests.support.redis_server import RedisServer


def _capture_every_plant(runtime: Runtime) -> None:
    for plant in PLANTS:
        try:
            raise RuntimeError(plant.text)
        except RuntimeError as exc:
            runtime.capture_exception(
                exc, "billing", None, "error", {"detail": plant.text, "steps": [plant.text]}
            )
    runtime.worker_lane.process_pending()


def _leaks(blob: bytes) -> list[str]:
    return [
        plant.id
        for plant in PLANTS
        for needle in plant.needles
        if any(form in blob for form in encodings(needle))
    ]


def _everything_in(client: Any) -> bytes:
    parts: list[str] = []
    for key in client.scan_iter("*"):
        kind = client.type(key)
        parts.append(key)
        if kind == "string":
            parts.append(client.get(key) or "")
        elif kind == "hash":
            parts += [f"{k}={v}" for k, v in client.hgetall(key).items()]
        elif kind == "zset":
            parts += client.zrange(key, 0, -1)
        elif kind == "stream":
            parts += [str(fields) for _, fields in client.xrange(key)]
        else:
            raise AssertionError(f"unexpected key type {kind} for {key}")
    return "\n".join(parts).encode()


def test_no_planted_secret_reaches_redis(redis_server: RedisServer, tmp_path: Path) -> None:
    config = Config(bus=redis_server.url, data_dir=str(tmp_path), storm_window_seconds=0)
    runtime = Runtime(config, autostart=False)
    try:
        _capture_every_plant(runtime)
        assert runtime.counters()["forwarded"] == len(PLANTS)
    finally:
        runtime.shutdown(2.0)  # the final heartbeat: the status snapshot is in Redis too
    client = redis_server.client()
    try:
        blob = _everything_in(client)
    finally:
        client.close()
    assert b"RuntimeError" in blob and b"billing" in blob  # the events are there
    assert _leaks(blob) == []


def test_no_planted_secret_reaches_the_forward_spool(tmp_path: Path) -> None:
    config = Config(bus="redis://127.0.0.1:1/0", data_dir=str(tmp_path), storm_window_seconds=0)
    runtime = Runtime(config, autostart=False)
    try:
        _capture_every_plant(runtime)  # Redis is unreachable: everything spools
        assert runtime.counters()["spooled"] == len(PLANTS)
    finally:
        runtime.shutdown(1.0)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("forward-") for p in files)
    blob = b"".join(p.read_bytes() for p in files)
    assert _leaks(blob) == []
