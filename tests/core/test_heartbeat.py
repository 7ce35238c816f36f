"""Runtime heartbeats: upsert, staleness, final rows, pruning, sharing the outbox file."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from errwire._clock import ManualClock
from errwire._heartbeat import HeartbeatWriter, RuntimeHeartbeat, read_heartbeats
from errwire._outbox import Outbox


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "data" / "outbox.sqlite3")


def test_write_then_read(db_path: str) -> None:
    clock = ManualClock()
    writer = HeartbeatWriter(db_path, "rt-1", clock=clock)
    clock.advance(3)
    writer.write({"captured": 5, "queue": {"depth": 0}})
    clock.advance(2)

    (beat,) = read_heartbeats(db_path, now=clock.time(), stale_after=15)
    assert beat == RuntimeHeartbeat(
        runtime_id="rt-1",
        pid=os.getpid(),
        host=socket.gethostname(),
        started_at=clock.time() - 5,
        updated_at=clock.time() - 2,
        age=2.0,
        stale=False,
        final=False,
        snapshot={"captured": 5, "queue": {"depth": 0}},
    )


def test_write_upserts_one_row_per_runtime(db_path: str) -> None:
    clock = ManualClock()
    one = HeartbeatWriter(db_path, "rt-1", clock=clock)
    two = HeartbeatWriter(db_path, "rt-2", clock=clock, started_at=clock.time() + 1)
    one.write({"n": 1})
    two.write({"n": 10})
    clock.advance(5)
    one.write({"n": 2})

    beats = read_heartbeats(db_path, now=clock.time(), stale_after=15)
    assert [(b.runtime_id, b.snapshot, b.age) for b in beats] == [
        ("rt-1", {"n": 2}, 0.0),
        ("rt-2", {"n": 10}, 5.0),
    ]
    assert beats[0].started_at == clock.time() - 5  # kept across rewrites


def test_stale_unless_final(db_path: str) -> None:
    clock = ManualClock()
    live = HeartbeatWriter(db_path, "live", clock=clock)
    dead = HeartbeatWriter(db_path, "dead", clock=clock)
    done = HeartbeatWriter(db_path, "done", clock=clock)
    dead.write({})
    done.write({"flushed": True}, final=True)
    clock.advance(30)
    live.write({})

    beats = {b.runtime_id: b for b in read_heartbeats(db_path, now=clock.time(), stale_after=15)}
    assert (beats["live"].stale, beats["live"].final) == (False, False)
    assert (beats["dead"].stale, beats["dead"].final, beats["dead"].age) == (True, False, 30.0)
    assert (beats["done"].stale, beats["done"].final) == (False, True)
    # Exactly at the threshold is not yet stale.
    (beat,) = [
        b
        for b in read_heartbeats(db_path, now=clock.time(), stale_after=30)
        if b.runtime_id == "dead"
    ]
    assert beat.stale is False


def test_reader_prunes_old_rows(db_path: str) -> None:
    clock = ManualClock()
    old = HeartbeatWriter(db_path, "old", clock=clock)
    new = HeartbeatWriter(db_path, "new", clock=clock)
    old.write({}, final=True)
    clock.advance(100)
    new.write({})
    clock.advance(1)

    names = [
        b.runtime_id
        for b in read_heartbeats(db_path, now=clock.time(), stale_after=5, prune_after=200)
    ]
    assert names == ["new", "old"]  # same start time: by runtime id
    names = [
        b.runtime_id
        for b in read_heartbeats(db_path, now=clock.time(), stale_after=5, prune_after=50)
    ]
    assert names == ["new"]
    # Deleted, not just hidden: a generous reader does not bring it back.
    names = [
        b.runtime_id
        for b in read_heartbeats(db_path, now=clock.time(), stale_after=5, prune_after=1e9)
    ]
    assert names == ["new"]
    # A writer that comes back simply recreates its row.
    old.write({"back": True})
    assert len(read_heartbeats(db_path, now=clock.time(), stale_after=5)) == 2


def test_missing_database_reads_empty_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "outbox.sqlite3"
    assert read_heartbeats(str(path), now=0.0, stale_after=1) == []
    assert not path.parent.exists()


def test_shares_the_outbox_database(db_path: str) -> None:
    clock = ManualClock()
    outbox = Outbox(db_path, 10, clock=clock)
    writer = HeartbeatWriter(db_path, "rt", clock=clock)
    writer.write({"pending": 0})
    outbox.put_many([{"event_id": "a" * 32, "message": "m"}], "rt")
    writer.write({"pending": outbox.pending()})
    (beat,) = read_heartbeats(db_path, now=clock.time(), stale_after=5)
    assert beat.snapshot == {"pending": 1}
    assert outbox.pending() == 1
    writer.close()
    outbox.close()


def test_snapshot_with_surrogates_round_trips(db_path: str) -> None:
    raw = b"\xff".decode("utf-8", "surrogateescape")
    clock = ManualClock()
    HeartbeatWriter(db_path, "rt", clock=clock).write({raw: [raw]})
    (beat,) = read_heartbeats(db_path, now=clock.time(), stale_after=5)
    assert beat.snapshot == {raw: [raw]}
