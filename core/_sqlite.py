"""Opening errwire's SQLite databases the one right way: WAL, versioned, fork-safe.

Every database errwire writes (the outbox, the local event sink) is shared by
threads of one process and by several processes (web workers, a separate
``telemetry_worker``). So connections are opened in WAL mode with a busy
timeout, schemas are versioned through ``PRAGMA user_version`` and migrated in
one write transaction (two processes starting at once cannot both migrate), and
a connection never crosses ``os.fork()``: the child opens its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = [
    "Migration",
    "SharedConnection",
    "connect",
    "from_json",
    "migrate",
    "to_json",
    "write_transaction",
]

Migration = Sequence[str]
"""One schema step: SQL statements run in order inside the migrating transaction."""


def connect(path: str, *, timeout: float, migrations: Sequence[Migration]) -> sqlite3.Connection:
    """Open ``path`` (creating its directory), in WAL mode, migrated to the latest version.

    The connection is in autocommit mode (``isolation_level=None``): writers
    group statements with ``write_transaction``. ``check_same_thread`` is off
    because callers serialise access with their own lock.
    """
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
    try:
        _enable_wal(conn, timeout)
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, path, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL, retrying for up to ``timeout`` seconds: SQLite answers a journal
    mode change that races another connection (processes starting together on a new
    file) with "database is locked" at once, without consulting the busy handler."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            remaining = deadline - time.monotonic()
            if "locked" not in str(exc) or remaining <= 0:
                raise
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)


def migrate(conn: sqlite3.Connection, path: str, migrations: Sequence[Migration]) -> None:
    """Bring the schema from its ``user_version`` to ``len(migrations)``.

    Migration ``i`` moves version ``i`` to ``i + 1``. A database written by a
    newer errwire is refused rather than guessed at.
    """
    target = len(migrations)
    if _checked_version(conn, path, target) == target:
        return
    with write_transaction(conn):
        current = _checked_version(conn, path, target)  # another process may have migrated
        for version in range(current, target):
            for statement in migrations[version]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {target:d}")


def _checked_version(conn: sqlite3.Connection, path: str, target: int) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > target:
        raise RuntimeError(
            f"errwire database {path!r} has schema version {version}, but this version of "
            f"errwire only knows versions up to {target}; upgrade errwire or use another path"
        )
    return version


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``: take the write lock up front so a
    read-then-write sequence cannot fail half-way with ``SQLITE_BUSY``."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def to_json(payload: Any) -> str:
    """Serialise for storage. ``ensure_ascii`` turns lone surrogates into ``\\udcxx``
    escapes, so text decoded with ``surrogateescape`` is stored and read back intact;
    a value JSON cannot encode is stored as its ``repr`` rather than losing the event."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":"), default=repr)


def from_json(text: str) -> dict[str, Any] | None:
    """The stored dict, or None if the text is not a JSON object (a damaged row)."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# Connections inherited across fork are kept referenced here so they are never
# closed in the child: closing would run SQLite's last-connection cleanup (WAL
# checkpoint, unlinking -wal/-shm) against files the parent is still using.
_inherited: list[sqlite3.Connection] = []
_live: weakref.WeakSet[SharedConnection] = weakref.WeakSet()


class SharedConnection:
    """One lazily opened connection behind a lock, safe to use from threads and after fork.

    ``use()`` yields the connection with the lock held. After ``os.fork()`` the
    child gets a fresh lock (the parent's may have been held by a thread that
    does not exist in the child) and opens its own connection on next use; the
    inherited one is dropped, never used and never closed.
    """

    __slots__ = ("__weakref__", "_conn", "_lock", "_opener", "_pid")

    def __init__(self, opener: Callable[[], sqlite3.Connection]) -> None:
        self._opener = opener
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        _live.add(self)

    @contextlib.contextmanager
    def use(self, timeout: float = -1) -> Iterator[sqlite3.Connection]:
        """The connection, opened if needed. ``timeout`` bounds the wait for the
        lock (``TimeoutError`` when exceeded); -1 waits as long as it takes."""
        lock = self._lock
        if not lock.acquire(timeout=timeout):
            raise TimeoutError("errwire database connection is busy in another thread")
        try:
            if self._pid != os.getpid():  # forked by a path that skipped the at-fork hook
                self._drop_inherited()
            if self._conn is None:
                self._conn = self._opener()
            yield self._conn
        finally:
            lock.release()

    def close(self) -> None:
        """Close this process's connection; a later ``use()`` opens a new one."""
        with self._lock:
            if self._pid != os.getpid():
                self._drop_inherited()
            elif self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

    def _drop_inherited(self) -> None:
        if self._conn is not None:
            _inherited.append(self._conn)
            self._conn = None
        self._pid = os.getpid()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._drop_inherited()


def _reset_all_after_fork() -> None:
    for shared in list(_live):
        shared._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_after_fork)
