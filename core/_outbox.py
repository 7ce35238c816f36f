"""The outbox: a bounded, durable FIFO of payloads that could not be delivered yet.

Payloads land here when the breaker is open, a send failed in a retryable way,
or the shutdown deadline passed; they are replayed later, possibly by another
process (the file is shared). The bound is enforced on every write by evicting
the oldest rows, and every eviction is reported by owner (the runtime id that
spooled the row) so the caller can count its own drops exactly and tell them
from rows a dead process left behind.

The same database file holds the runtime heartbeats (``_heartbeat``), so its
schema, versioned as one, is defined here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._clock import Clock, SystemClock
from ._internal import warn_once
from ._sqlite import Migration, SharedConnection, connect, from_json, to_json, write_transaction
from ._transport import Payload

__all__ = ["OUTBOX_DB_MIGRATIONS", "Eviction", "Outbox", "OutboxEntry", "open_outbox_db"]

OUTBOX_DB_MIGRATIONS: tuple[Migration, ...] = (
    (
        "CREATE TABLE outbox ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,"
        " owner TEXT NOT NULL, created_at REAL NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0, payload TEXT NOT NULL)",
        # COUNT(*) walks the whole table (milliseconds at 100k rows) and the bound is
        # checked on every write, so triggers keep the row count in one row instead.
        "CREATE TABLE outbox_size (n INTEGER NOT NULL)",
        "INSERT INTO outbox_size (n) VALUES (0)",
        "CREATE TRIGGER outbox_size_insert AFTER INSERT ON outbox"
        " BEGIN UPDATE outbox_size SET n = n + 1; END",
        "CREATE TRIGGER outbox_size_delete AFTER DELETE ON outbox"
        " BEGIN UPDATE outbox_size SET n = n - 1; END",
        "CREATE TABLE heartbeats ("
        " runtime_id TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL,"
        " started_at REAL NOT NULL, updated_at REAL NOT NULL,"
        " final INTEGER NOT NULL DEFAULT 0, snapshot TEXT NOT NULL)",
    ),
)


def open_outbox_db(path: str, timeout: float) -> sqlite3.Connection:
    """A connection to the outbox database (outbox and heartbeats), migrated."""
    return connect(path, timeout=timeout, migrations=OUTBOX_DB_MIGRATIONS)


@dataclass(frozen=True, slots=True)
class Eviction:
    """What a ``put_many`` did: rows it added, and the oldest rows it evicted to stay
    within the bound, split by whether the caller spooled them (``own``) or not."""

    own: int = 0
    foreign: int = 0
    own_ids: tuple[str, ...] = ()
    inserted: int = 0  # new rows; an event_id already stored is not stored twice

    @property
    def total(self) -> int:
        return self.own + self.foreign


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    row_id: int
    event_id: str
    owner: str
    created_at: float
    attempts: int
    payload: Payload


class Outbox:
    """Bounded durable FIFO of payloads, shared by threads and processes.

    Opens the database on first use. Every method is thread-safe; across
    processes SQLite's write lock serialises writers (``busy_timeout`` seconds
    at most, then ``sqlite3.OperationalError``).
    """

    def __init__(
        self,
        path: str,
        max_events: int,
        *,
        clock: Clock | None = None,
        busy_timeout: float = 5.0,
    ) -> None:
        if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
            raise ValueError(f"Outbox max_events must be an integer >= 1; got {max_events!r}")
        self.path = path
        self.max_events = max_events
        self._clock: Clock = clock or SystemClock()
        self._db = SharedConnection(lambda: open_outbox_db(path, busy_timeout))

    def put_many(self, payloads: Sequence[Payload], owner: str) -> Eviction:
        """Append payloads (in order); ignore event_ids already stored; evict the oldest
        rows beyond ``max_events`` and report them."""
        if not payloads:
            return Eviction()
        now = self._clock.time()
        rows = [(str(p["event_id"]), owner, now, to_json(p)) for p in payloads]
        with self._db.use() as conn, write_transaction(conn):
            before = _size(conn)
            conn.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, owner, created_at, attempts, payload)"
                " VALUES (?, ?, ?, 0, ?)",
                rows,
            )
            after = _size(conn)
            excess = after - self.max_events
            if excess <= 0:
                return Eviction(inserted=after - before)
            evicted = conn.execute(
                "SELECT id, event_id, owner FROM outbox ORDER BY id LIMIT ?", (excess,)
            ).fetchall()
            conn.execute("DELETE FROM outbox WHERE id <= ?", (evicted[-1][0],))
        own_ids = tuple(event_id for _, event_id, row_owner in evicted if row_owner == owner)
        return Eviction(
            own=len(own_ids),
            foreign=len(evicted) - len(own_ids),
            own_ids=own_ids,
            inserted=after - before,
        )

    def peek(self, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` entries, oldest first, left in place until ``remove``.

        A row whose payload cannot be decoded would block replay forever, so it
        is deleted and logged instead of returned.
        """
        entries: list[OutboxEntry] = []
        damaged: list[int] = []
        with self._db.use() as conn:
            rows = conn.execute(
                "SELECT id, event_id, owner, created_at, attempts, payload"
                " FROM outbox ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
            for row_id, event_id, owner, created_at, attempts, text in rows:
                payload = from_json(text)
                if payload is None:
                    damaged.append(row_id)
                    continue
                entries.append(OutboxEntry(row_id, event_id, owner, created_at, attempts, payload))
            if damaged:
                _delete(conn, damaged)
        if damaged:
            warn_once(
                "outbox.damaged",
                "errwire outbox %s: discarded %d unreadable rows",
                self.path,
                len(damaged),
            )
        return entries

    def remove(self, row_ids: Iterable[int]) -> int:
        """Delete delivered rows; the number actually deleted (another process
        replaying the same file may have removed some already)."""
        ids = list(row_ids)
        if not ids:
            return 0
        with self._db.use() as conn:
            return _delete(conn, ids)

    def record_attempt(self, row_ids: Iterable[int]) -> None:
        """Count one more failed delivery attempt for each row."""
        ids = [(i,) for i in row_ids]
        if not ids:
            return
        with self._db.use() as conn, write_transaction(conn):
            conn.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", ids)

    def pending(self) -> int:
        with self._db.use() as conn:
            return _size(conn)

    def pending_by_owner(self) -> dict[str, int]:
        with self._db.use() as conn:
            rows = conn.execute("SELECT owner, COUNT(*) FROM outbox GROUP BY owner").fetchall()
        return {owner: int(n) for owner, n in rows}

    def oldest_age(self, now: float) -> float | None:
        """Seconds since the oldest pending entry was spooled; None when empty."""
        with self._db.use() as conn:
            row = conn.execute("SELECT created_at FROM outbox ORDER BY id LIMIT 1").fetchone()
        return None if row is None else max(0.0, now - float(row[0]))

    def close(self) -> None:
        """Release the connection (a later call opens it again)."""
        self._db.close()


def _size(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT n FROM outbox_size").fetchone()[0])


def _delete(conn: sqlite3.Connection, ids: list[int]) -> int:
    with write_transaction(conn):
        cursor = conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
        return max(cursor.rowcount, 0)
