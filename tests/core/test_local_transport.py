"""The local SQLite sink: round trip, idempotent redelivery, retryable failures, no raising."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from errwire._clock import ManualClock
from errwire._local import LocalTransport, count_events, read_events
from errwire._transport import Outcome, Payload, Transport


def payload(n: int, **extra: Any) -> Payload:
    return {
        "event_id": f"{n:032x}",
        "timestamp": 1_700_000_000.0 + n,
        "level": "error",
        "message": f"boom {n}",
        "component": "db",
        "category": "database",
        "fingerprint": f"fp{n % 2}",
        "exception": {"type": "builtins.ValueError", "value": f"boom {n}", "stack": []},
        **extra,
    }


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "data" / "events.sqlite3")


def test_is_a_transport(db_path: str) -> None:
    transport = LocalTransport(db_path)
    assert isinstance(transport, Transport)
    assert transport.name == "local"
    assert transport.enforces_timeout is True


def test_round_trip_and_user_readable_columns(db_path: str) -> None:
    clock = ManualClock()
    transport = LocalTransport(db_path, clock=clock)
    first = transport.send(payload(1), timeout=1.0)
    assert first.outcome is Outcome.OK
    assert first.remote_id == f"{1:032x}"
    clock.advance(1)
    message_only = payload(2, exception=None, level="info")
    assert transport.send(message_only, timeout=1.0).ok
    transport.close()

    assert read_events(db_path) == [message_only, payload(1)]  # newest first
    assert count_events(db_path) == 2

    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT event_id, received_at, timestamp, level, component, category, type,"
            " message, fingerprint FROM events ORDER BY received_at"
        ).fetchall()
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(events)")}
    conn.close()
    start = clock.time() - 1
    assert rows == [
        (
            f"{1:032x}",
            start,
            1_700_000_001.0,
            "error",
            "db",
            "database",
            "builtins.ValueError",
            "boom 1",
            "fp1",
        ),
        (f"{2:032x}", start + 1, 1_700_000_002.0, "info", "db", "database", None, "boom 2", "fp0"),
    ]
    assert {"events_received_at", "events_fingerprint"} <= indexes


def test_read_events_limit_and_since(db_path: str) -> None:
    clock = ManualClock()
    transport = LocalTransport(db_path, clock=clock)
    for n in range(5):
        assert transport.send(payload(n), timeout=1.0).ok
        clock.advance(10)
    newest = [f"{n:032x}" for n in (4, 3, 2, 1, 0)]
    assert [p["event_id"] for p in read_events(db_path)] == newest
    assert [p["event_id"] for p in read_events(db_path, limit=2)] == newest[:2]
    since = clock.time() - 30  # received_at of event 2
    assert [p["event_id"] for p in read_events(db_path, since=since)] == newest[:3]
    assert [p["event_id"] for p in read_events(db_path, since=since, limit=1)] == newest[:1]


def test_redelivery_is_idempotent(db_path: str) -> None:
    transport = LocalTransport(db_path)
    for _ in range(3):
        result = transport.send(payload(7), timeout=1.0)
        assert result.ok and result.remote_id == f"{7:032x}"
    assert count_events(db_path) == 1


def test_lone_surrogates_are_stored_and_round_trip(db_path: str) -> None:
    raw = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    weird = payload(1, message=raw, component=raw, context={raw: raw})
    assert LocalTransport(db_path).send(weird, timeout=1.0).ok
    assert read_events(db_path) == [weird]
    with sqlite3.connect(db_path) as conn:
        message, component = conn.execute("SELECT message, component FROM events").fetchone()
    conn.close()
    assert message == component == "caf\\udce9 \\udcff"


def test_missing_database_reads_empty_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "events.sqlite3"
    assert read_events(str(path)) == []
    assert count_events(str(path)) == 0
    assert not path.parent.exists()


def test_locked_database_is_retryable_then_recovers(db_path: str) -> None:
    transport = LocalTransport(db_path)
    assert transport.send(payload(1), timeout=1.0).ok
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = transport.send(payload(2), timeout=0.01)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.outcome is Outcome.RETRYABLE
    assert "locked" in result.detail
    assert transport.send(payload(2), timeout=1.0).ok
    assert count_events(db_path) == 2


def test_locked_before_first_open_is_retryable(db_path: str) -> None:
    """The very first send also has to migrate; a lock then is retryable, not fatal."""
    Path(db_path).parent.mkdir(parents=True)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    transport = LocalTransport(db_path)
    try:
        result = transport.send(payload(1), timeout=0.01)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.outcome is Outcome.RETRYABLE
    assert transport.send(payload(1), timeout=1.0).ok
    assert count_events(db_path) == 1


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot print me")

    __repr__ = __str__


def test_send_never_raises(tmp_path: Path, db_path: str) -> None:
    odd = payload(1, component=Unprintable())
    result = LocalTransport(db_path).send(odd, timeout=1.0)
    assert result.outcome is Outcome.RETRYABLE
    assert "cannot print me" in result.detail

    unopenable = LocalTransport(str(tmp_path))  # a directory, not a database file
    result = unopenable.send(payload(1), timeout=1.0)
    assert result.outcome is Outcome.RETRYABLE
    assert result.detail

    under_a_file = tmp_path / "plain-file"
    under_a_file.write_text("x")
    result = LocalTransport(str(under_a_file / "events.sqlite3")).send(payload(1), timeout=1.0)
    assert result.outcome is Outcome.RETRYABLE


def test_payload_without_event_id_is_rejected(db_path: str) -> None:
    broken = payload(1)
    del broken["event_id"]
    result = LocalTransport(db_path).send(broken, timeout=1.0)
    assert result.outcome is Outcome.REJECTED
    assert count_events(db_path) == 0
