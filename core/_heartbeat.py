"""Runtime heartbeats: each runtime's status snapshot, readable from another process.

A web server runs many processes, each with its own runtime; ``telemetry_status``
runs in yet another. So every runtime periodically upserts its snapshot into the
outbox database (one row per runtime id), and the reader lists them with their
age: a row that stopped updating without a final write belongs to a process
that died (``stale``); rows nobody updated for a long time are pruned.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ._clock import Clock, SystemClock
from ._outbox import open_outbox_db
from ._sqlite import SharedConnection, from_json, to_json, write_transaction

__all__ = ["HeartbeatSink", "HeartbeatWriter", "RuntimeHeartbeat", "read_heartbeats"]

_READ_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class RuntimeHeartbeat:
    runtime_id: str
    pid: int
    host: str
    started_at: float
    updated_at: float
    age: float
    stale: bool  # not updated for longer than stale_after, and never said goodbye
    final: bool  # written at shutdown: the runtime ended cleanly
    snapshot: dict[str, Any]


class HeartbeatSink(Protocol):
    """Where a runtime's heartbeats go: this SQLite writer, or Redis in Redis mode."""

    def write(self, snapshot: Mapping[str, Any], *, final: bool = False) -> Any: ...

    def close(self) -> None: ...


class HeartbeatWriter:
    """Upserts one runtime's row. ``runtime_id`` must be unique per process (a forked
    child needs its own id, or parent and child overwrite each other's row).

    ``write`` lets ``sqlite3.Error`` propagate: the caller decides how to count it.
    """

    def __init__(
        self,
        path: str,
        runtime_id: str,
        *,
        clock: Clock | None = None,
        started_at: float | None = None,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = path
        self.runtime_id = runtime_id
        self._clock: Clock = clock or SystemClock()
        self.started_at = self._clock.time() if started_at is None else started_at
        self._host = socket.gethostname()
        self._db = SharedConnection(lambda: open_outbox_db(path, busy_timeout))

    def write(self, snapshot: Mapping[str, Any], *, final: bool = False) -> None:
        """Record ``snapshot`` as this runtime's latest status (``final`` at shutdown)."""
        row = (
            self.runtime_id,
            os.getpid(),
            self._host,
            self.started_at,
            self._clock.time(),
            int(final),
            to_json(dict(snapshot)),
        )
        with self._db.use() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO heartbeats"
                " (runtime_id, pid, host, started_at, updated_at, final, snapshot)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def close(self) -> None:
        self._db.close()


def read_heartbeats(
    path: str, *, now: float, stale_after: float, prune_after: float = 86400.0
) -> list[RuntimeHeartbeat]:
    """Every runtime's latest heartbeat, oldest runtime first, after deleting rows not
    updated for ``prune_after`` seconds. A missing database is empty (and not created)."""
    if not os.path.exists(path):
        return []
    conn = open_outbox_db(path, _READ_TIMEOUT)
    try:
        with write_transaction(conn):
            conn.execute("DELETE FROM heartbeats WHERE updated_at < ?", (now - prune_after,))
        rows = conn.execute(
            "SELECT runtime_id, pid, host, started_at, updated_at, final, snapshot"
            " FROM heartbeats ORDER BY started_at, runtime_id"
        ).fetchall()
    finally:
        conn.close()
    beats = []
    for runtime_id, pid, host, started_at, updated_at, final, snapshot in rows:
        age = max(0.0, now - updated_at)
        beats.append(
            RuntimeHeartbeat(
                runtime_id=runtime_id,
                pid=pid,
                host=host,
                started_at=started_at,
                updated_at=updated_at,
                age=age,
                stale=age > stale_after and not final,
                final=bool(final),
                snapshot=from_json(snapshot) or {},
            )
        )
    return beats
