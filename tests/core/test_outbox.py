"""The outbox (and the SQLite helpers under it): order, bound, accounting, durability."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Any, cast

import pytest

from errwire import _sqlite
from errwire._clock import ManualClock
from errwire._outbox import Eviction, Outbox
from errwire._transport import Payload


def payload(n: int, **extra: Any) -> Payload:
    return {
        "event_id": f"{n:032x}",
        "timestamp": 1_700_000_000.0 + n,
        "level": "error",
        "message": f"boom {n}",
        "component": "db",
        "category": "database",
        "fingerprint": f"fp{n % 3}",
        "exception": {"type": "builtins.ValueError", "value": f"boom {n}", "stack": []},
        **extra,
    }


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "nested" / "outbox.sqlite3")


def ids(outbox: Outbox) -> list[str]:
    return [e.event_id for e in outbox.peek(10_000)]


def test_fifo_order_and_entry_fields(db_path: str) -> None:
    clock = ManualClock()
    outbox = Outbox(db_path, 100, clock=clock)
    assert outbox.put_many([payload(3), payload(1)], "rt-a") == Eviction(inserted=2)
    clock.advance(5)
    outbox.put_many([payload(2)], "rt-b")

    entries = outbox.peek(10)
    assert [e.event_id for e in entries] == [f"{n:032x}" for n in (3, 1, 2)]
    assert [e.owner for e in entries] == ["rt-a", "rt-a", "rt-b"]
    assert entries[0].created_at == clock.time() - 5
    assert entries[2].created_at == clock.time()
    assert all(e.attempts == 0 for e in entries)
    assert entries[1].payload == payload(1)
    assert entries[0].row_id < entries[1].row_id < entries[2].row_id
    assert [e.event_id for e in outbox.peek(2)] == [f"{n:032x}" for n in (3, 1)]


def test_remove_record_attempt_and_status_queries(db_path: str) -> None:
    clock = ManualClock()
    outbox = Outbox(db_path, 100, clock=clock)
    assert outbox.oldest_age(clock.time()) is None
    assert outbox.pending() == 0
    outbox.put_many([payload(1), payload(2)], "rt-a")
    clock.advance(7)
    outbox.put_many([payload(3)], "rt-b")
    assert outbox.pending() == 3
    assert outbox.pending_by_owner() == {"rt-a": 2, "rt-b": 1}
    assert outbox.oldest_age(clock.time()) == 7.0

    first, second, third = outbox.peek(10)
    outbox.record_attempt([first.row_id, third.row_id])
    outbox.record_attempt([first.row_id])
    outbox.record_attempt([])
    assert [e.attempts for e in outbox.peek(10)] == [2, 0, 1]

    assert outbox.remove([first.row_id, second.row_id]) == 2
    assert outbox.remove([first.row_id]) == 0  # already gone (e.g. another replayer)
    assert outbox.remove([]) == 0
    assert ids(outbox) == [third.event_id]
    assert outbox.pending() == 1
    assert outbox.pending_by_owner() == {"rt-b": 1}
    assert outbox.oldest_age(clock.time()) == 0.0


def test_respooling_the_same_event_is_idempotent(db_path: str) -> None:
    outbox = Outbox(db_path, 100)
    outbox.put_many([payload(1), payload(2)], "rt-a")
    result = outbox.put_many([payload(2), payload(1), payload(3), payload(3)], "rt-b")
    assert result == Eviction(inserted=1)
    assert ids(outbox) == [f"{n:032x}" for n in (1, 2, 3)]
    assert outbox.pending() == 3
    assert outbox.pending_by_owner() == {"rt-a": 2, "rt-b": 1}


def test_bound_evicts_oldest_and_reports_owner_exactly(db_path: str) -> None:
    outbox = Outbox(db_path, 5)
    outbox.put_many([payload(n) for n in range(3)], "dead")
    outbox.put_many([payload(n) for n in range(3, 5)], "me")
    assert outbox.pending() == 5

    result = outbox.put_many([payload(n) for n in range(5, 9)], "me")
    # 9 rows, bound 5: the 4 oldest go: 3 from the dead process, 1 of ours.
    assert result == Eviction(own=1, foreign=3, own_ids=(f"{3:032x}",), inserted=4)
    assert result.total == 4
    assert ids(outbox) == [f"{n:032x}" for n in range(4, 9)]
    assert outbox.pending() == 5

    # A batch larger than the bound evicts part of itself, reported as own.
    result = outbox.put_many([payload(n) for n in range(100, 108)], "me")
    assert (result.own, result.foreign, result.inserted) == (8, 0, 8)
    assert result.own_ids == tuple(f"{n:032x}" for n in [4, 5, 6, 7, 8, 100, 101, 102])
    assert ids(outbox) == [f"{n:032x}" for n in range(103, 108)]


def test_persists_across_reopen(db_path: str) -> None:
    first = Outbox(db_path, 10)
    first.put_many([payload(1), payload(2)], "rt-a")
    first.record_attempt([first.peek(1)[0].row_id])
    first.close()

    second = Outbox(db_path, 10)
    entries = second.peek(10)
    assert [e.event_id for e in entries] == [f"{n:032x}" for n in (1, 2)]
    assert [e.attempts for e in entries] == [1, 0]
    assert entries[1].payload == payload(2)
    assert second.pending() == 2
    second.close()


def test_close_then_use_reopens(db_path: str) -> None:
    outbox = Outbox(db_path, 10)
    outbox.put_many([payload(1)], "rt")
    outbox.close()
    outbox.close()
    assert outbox.pending() == 1


def test_lone_surrogates_round_trip(db_path: str) -> None:
    raw = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    weird = payload(1, message=raw, context={raw: [raw, "\ud800"]})
    weird["exception"]["value"] = raw
    outbox = Outbox(db_path, 10)
    outbox.put_many([weird], "rt")
    assert outbox.peek(1)[0].payload == weird


def test_concurrent_put_many_keeps_exact_counts(db_path: str) -> None:
    """4 threads (two sharing one Outbox, two with their own connection) overflow the
    bound together; every evicted row is reported exactly once, to the right owner."""
    bound, threads, batches, per_batch = 300, 4, 25, 10
    shared = Outbox(db_path, bound)
    outboxes = [shared, shared, Outbox(db_path, bound), Outbox(db_path, bound)]
    spooled: dict[str, set[str]] = {}
    own_ids: dict[str, list[str]] = {}
    totals: dict[str, tuple[int, int, int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def spool(index: int) -> None:
        owner = f"rt-{index}"
        mine: list[str] = []
        own = foreign = inserted = 0
        batch_ids: set[str] = set()
        try:
            barrier.wait()
            for b in range(batches):
                base = (index * batches + b) * per_batch
                batch = [payload(base + i) for i in range(per_batch)]
                batch_ids.update(p["event_id"] for p in batch)
                result = outboxes[index].put_many(batch, owner)
                assert len(result.own_ids) == result.own
                mine.extend(result.own_ids)
                own, foreign = own + result.own, foreign + result.foreign
                inserted += result.inserted
        except BaseException as exc:
            errors.append(exc)
        spooled[owner], own_ids[owner] = batch_ids, mine
        totals[owner] = (own, foreign, inserted)

    workers = [threading.Thread(target=spool, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert errors == []
    total = threads * batches * per_batch
    assert sum(t[2] for t in totals.values()) == total
    assert shared.pending() == bound
    remaining = set(ids(shared))
    evicted = set().union(*spooled.values()) - remaining
    assert len(evicted) == total - bound == sum(t[0] + t[1] for t in totals.values())
    for owner, mine in own_ids.items():
        assert len(mine) == len(set(mine))
        assert set(mine) <= evicted & spooled[owner]
    # Own evictions plus the ones other runtimes reported as foreign cover every row lost.
    by_owner = shared.pending_by_owner()
    assert sum(by_owner.values()) == bound
    assert sum(len(m) for m in own_ids.values()) + sum(t[1] for t in totals.values()) == len(
        evicted
    )
    for owner, rows in spooled.items():
        assert len(rows - remaining) >= len(own_ids[owner])
        assert len(rows & remaining) == by_owner.get(owner, 0)


def test_damaged_row_is_discarded_not_returned(db_path: str) -> None:
    outbox = Outbox(db_path, 10)
    outbox.put_many([payload(1), payload(2)], "rt")
    with sqlite3.connect(db_path) as raw:
        raw.execute("UPDATE outbox SET payload = 'not json' WHERE event_id = ?", (f"{1:032x}",))
    raw.close()
    assert [e.event_id for e in outbox.peek(10)] == [f"{2:032x}"]
    assert outbox.pending() == 1


def test_invalid_bound_is_refused(db_path: str) -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_events"):
            Outbox(db_path, bad)  # type: ignore[arg-type]


def test_newer_schema_version_is_refused_with_a_clear_error(db_path: str) -> None:
    Outbox(db_path, 10).pending()
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(RuntimeError) as info:
        Outbox(db_path, 10).pending()
    message = str(info.value)
    assert db_path in message
    assert "99" in message
    assert "up to 1" in message


def test_database_settings(db_path: str) -> None:
    outbox = Outbox(db_path, 10)
    outbox.pending()
    with outbox._db.use() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


# --- the SQLite helpers --------------------------------------------------------------

STEPS: tuple[_sqlite.Migration, ...] = (
    ("CREATE TABLE a (x INTEGER)",),
    ("ALTER TABLE a ADD COLUMN y TEXT", "CREATE TABLE b (z INTEGER)"),
)


def test_migrations_apply_in_order_and_only_once(tmp_path: Path) -> None:
    path = str(tmp_path / "m.sqlite3")
    conn = _sqlite.connect(path, timeout=1.0, migrations=STEPS[:1])
    conn.execute("INSERT INTO a (x) VALUES (1)")
    conn.close()
    conn = _sqlite.connect(path, timeout=1.0, migrations=STEPS)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT x, y FROM a").fetchall() == [(1, None)]
    conn.close()
    conn = _sqlite.connect(path, timeout=1.0, migrations=STEPS)  # nothing left to run
    assert conn.execute("SELECT COUNT(*) FROM b").fetchone()[0] == 0
    conn.close()


def test_failed_migration_rolls_back_and_closes(tmp_path: Path) -> None:
    path = str(tmp_path / "m.sqlite3")
    broken = (*STEPS, ("CREATE TABLE c (x INTEGER)", "THIS IS NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        _sqlite.connect(path, timeout=1.0, migrations=broken)
    conn = _sqlite.connect(path, timeout=1.0, migrations=STEPS)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"a", "b"}
    conn.close()


def test_shared_connection_reopens_after_pid_change(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork that skipped the at-fork hook is still caught by the pid check: the
    inherited connection is set aside, not closed, and a new one is opened."""
    outbox = Outbox(db_path, 10)
    outbox.put_many([payload(1)], "rt")
    with outbox._db.use() as conn:
        inherited = conn
    monkeypatch.setattr(os, "getpid", lambda: -12345)
    outbox.put_many([payload(2)], "rt")
    with outbox._db.use() as conn:
        assert conn is not inherited
    assert _sqlite._inherited[-1] is inherited
    inherited.execute("SELECT 1")  # still open: it was dropped, not closed
    assert outbox.pending() == 2
    monkeypatch.undo()
    _sqlite._inherited.remove(inherited)
    inherited.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_after_fork_uses_its_own_connection(db_path: str) -> None:
    outbox = Outbox(db_path, 10)
    outbox.put_many([payload(1)], "parent")
    with outbox._db.use() as conn:
        parent_conn = conn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which reports by exit code
        code = 1
        try:
            outbox.put_many([payload(2)], "child")
            with outbox._db.use() as conn:
                fresh = conn is not parent_conn
            inherited = any(c is parent_conn for c in _sqlite._inherited)
            code = 0 if fresh and inherited and outbox.pending() == 2 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's own connection is untouched and sees the child's row.
    with outbox._db.use() as conn:
        assert conn is parent_conn
    assert [(e.event_id, e.owner) for e in outbox.peek(10)] == [
        (f"{1:032x}", "parent"),
        (f"{2:032x}", "child"),
    ]


def test_empty_put_is_a_no_op(db_path: str) -> None:
    assert Outbox(db_path, 1).put_many([], "rt") == Eviction()
    assert not os.path.exists(db_path)  # not even opened


def test_shared_connection_lock_wait_is_bounded(tmp_path: Path) -> None:
    shared = _sqlite.SharedConnection(
        lambda: _sqlite.connect(str(tmp_path / "s.sqlite3"), timeout=1.0, migrations=STEPS)
    )
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with shared.use():
            entered.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait()
    try:
        with pytest.raises(TimeoutError), shared.use(timeout=0.01):
            pass
    finally:
        release.set()
        holder.join()
    with shared.use(timeout=1.0) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    shared.close()


def test_at_fork_hook_replaces_a_held_lock_and_drops_the_connection(tmp_path: Path) -> None:
    """In a forked child the thread that held the lock no longer exists; the hook gives
    the child a fresh lock and sets the inherited connection aside."""
    shared = _sqlite.SharedConnection(
        lambda: _sqlite.connect(str(tmp_path / "s.sqlite3"), timeout=1.0, migrations=STEPS)
    )
    with shared.use() as conn:
        inherited = conn
    shared._lock.acquire()  # as if another thread was inside use() at fork time
    shared._after_fork_in_child()
    with shared.use(timeout=0.01) as conn:
        assert conn is not inherited
    assert _sqlite._inherited[-1] is inherited
    _sqlite._inherited.remove(inherited)
    inherited.close()
    shared.close()


def test_close_after_pid_change_drops_without_closing(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = Outbox(db_path, 10)
    outbox.pending()
    with outbox._db.use() as conn:
        inherited = conn
    monkeypatch.setattr(os, "getpid", lambda: -12345)
    outbox.close()
    monkeypatch.undo()
    assert _sqlite._inherited[-1] is inherited
    inherited.execute("SELECT 1")  # still usable: never closed
    _sqlite._inherited.remove(inherited)
    inherited.close()


class FlakyConnection:
    """Answers the journal-mode switch with "database is locked" a few times."""

    def __init__(self, failures: int, message: str = "database is locked") -> None:
        self.failures, self.message, self.calls = failures, message, 0

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise sqlite3.OperationalError(self.message)


def test_wal_switch_retries_a_racing_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    naps: list[float] = []
    monkeypatch.setattr(time, "sleep", naps.append)
    flaky = FlakyConnection(failures=3)
    _sqlite._enable_wal(cast(sqlite3.Connection, flaky), timeout=1.0)
    assert flaky.calls == 4
    assert naps == [0.001, 0.002, 0.004]

    other = FlakyConnection(failures=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _sqlite._enable_wal(cast(sqlite3.Connection, other), timeout=1.0)

    forever = FlakyConnection(failures=10**9)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _sqlite._enable_wal(cast(sqlite3.Connection, forever), timeout=0.0)
    assert forever.calls == 1
