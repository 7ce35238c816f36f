"""The local sink: the embedded default destination, an SQLite table users can query.

Nothing leaves the machine. Each event is one row keyed by ``event_id`` (so a
redelivery from the outbox is a no-op) with the fields people filter on in
their own columns and the full payload as JSON. ``send`` never raises: a locked
or failing database is a retryable outcome, so the worker spools and retries.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from ._clock import Clock, SystemClock
from ._sqlite import Migration, SharedConnection, connect, from_json, to_json
from ._transport import Outcome, Payload, SendResult

__all__ = ["LOCAL_DB_MIGRATIONS", "LocalTransport", "count_events", "read_events"]

LOCAL_DB_MIGRATIONS: tuple[Migration, ...] = (
    (
        "CREATE TABLE events ("
        " event_id TEXT PRIMARY KEY, received_at REAL NOT NULL, timestamp REAL,"
        " level TEXT, component TEXT, category TEXT, type TEXT, message TEXT,"
        " fingerprint TEXT, payload TEXT NOT NULL)",
        "CREATE INDEX events_received_at ON events (received_at)",
        "CREATE INDEX events_fingerprint ON events (fingerprint)",
    ),
)

_INSERT = (
    "INSERT OR IGNORE INTO events (event_id, received_at, timestamp, level, component,"
    " category, type, message, fingerprint, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_READ_TIMEOUT = 5.0


class LocalTransport:
    """Writes each payload to the ``events`` table of the database at ``path``.

    The database is opened on the first send; SQLite's busy timeout is the send
    timeout, so a send waits for a locked database at most that long.
    """

    name = "local"
    enforces_timeout = True

    def __init__(self, path: str, *, clock: Clock | None = None) -> None:
        self.path = path
        self._clock: Clock = clock or SystemClock()
        self._busy_timeout = -1.0
        self._open_timeout = 5.0
        self._db = SharedConnection(self._open)

    def _open(self) -> sqlite3.Connection:
        conn = connect(self.path, timeout=self._open_timeout, migrations=LOCAL_DB_MIGRATIONS)
        self._busy_timeout = self._open_timeout
        return conn

    def send(self, payload: Payload, timeout: float) -> SendResult:
        event_id = payload.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            return SendResult(Outcome.REJECTED, detail="payload has no event_id")
        try:
            row = _row(event_id, payload, self._clock.time())
            self._open_timeout = timeout
            with self._db.use(timeout) as conn:
                if timeout != self._busy_timeout:
                    conn.execute(f"PRAGMA busy_timeout = {max(0, int(timeout * 1000)):d}")
                    self._busy_timeout = timeout
                conn.execute(_INSERT, row)
        except sqlite3.OperationalError as exc:
            return SendResult(Outcome.RETRYABLE, detail=f"local database {self.path}: {exc}")
        except Exception as exc:
            return SendResult(Outcome.RETRYABLE, detail=f"{type(exc).__name__}: {exc}")
        return SendResult(Outcome.OK, remote_id=event_id)

    def close(self) -> None:
        self._db.close()


def _row(event_id: str, payload: Payload, received_at: float) -> tuple[Any, ...]:
    exception = payload.get("exception")
    exc_type = exception.get("type") if isinstance(exception, dict) else None
    timestamp = payload.get("timestamp")
    return (
        _text(event_id),
        received_at,
        float(timestamp) if isinstance(timestamp, int | float) else None,
        _text(payload.get("level")),
        _text(payload.get("component")),
        _text(payload.get("category")),
        _text(exc_type),
        _text(payload.get("message")),
        _text(payload.get("fingerprint")),
        to_json(payload),
    )


def _text(value: object) -> str | None:
    """A column value SQLite can store: lone surrogates (undecodable bytes) become
    ``\\udcxx`` escapes here; the JSON payload keeps them exactly."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def read_events(path: str, *, limit: int = 100, since: float | None = None) -> list[Payload]:
    """Stored payloads, newest received first; ``since`` keeps those received at or
    after that unix time. A missing database is empty (and is not created)."""
    if not os.path.exists(path):
        return []
    conn = connect(path, timeout=_READ_TIMEOUT, migrations=LOCAL_DB_MIGRATIONS)
    try:
        rows = conn.execute(
            "SELECT payload FROM events WHERE received_at >= ?"
            " ORDER BY received_at DESC, rowid DESC LIMIT ?",
            (float("-inf") if since is None else since, limit),
        ).fetchall()
    finally:
        conn.close()
    return [p for (text,) in rows if (p := from_json(text)) is not None]


def count_events(path: str) -> int:
    """How many events the database holds (0 when it does not exist)."""
    if not os.path.exists(path):
        return 0
    conn = connect(path, timeout=_READ_TIMEOUT, migrations=LOCAL_DB_MIGRATIONS)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()
