"""A deadline for a whole HTTP exchange, not just for each socket operation.

Socket timeouts bound every single wait, but a server that trickles its answer
a byte at a time resets that clock with every byte and can hold a send for
minutes. The watchdog closes that gap: a send arms it with its deadline, the
connection registers itself when it starts a request, and if the deadline
passes first the watchdog shuts the socket down, which wakes the sending
thread at once. One daemon thread per transport, asleep unless a send is
past its deadline; it is restarted in a forked child.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from urllib3.connectionpool import HTTPConnectionPool

__all__ = ["GRACE_SECONDS", "Watchdog", "watch_pool"]

GRACE_SECONDS = 0.05  # let an ordinary socket timeout fire first: its error is clearer


class Watchdog:
    __slots__ = ("_armed", "_cond", "_pid", "_stopped", "_thread")

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # thread id -> [deadline, connection or None, None until acted on, then cut or not]
        self._armed: dict[int, list[Any]] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stopped = False

    def arm(self, deadline: float) -> None:
        """Watch the calling thread's exchange until ``disarm``; it must end by ``deadline``."""
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked child: no thread here
                self._armed.clear()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="errwire-sentry-deadline", daemon=True
                )
                self._thread.start()
            self._armed[threading.get_ident()] = [deadline, None, None]
            self._cond.notify()

    def watch(self, connection: Any) -> None:
        """Called by the connection when the armed thread starts a request on it."""
        with self._cond:
            entry = self._armed.get(threading.get_ident())
            if entry is not None:
                entry[1] = connection

    def disarm(self) -> bool:
        """Stop watching the calling thread; True if the deadline cut its exchange short."""
        with self._cond:
            entry = self._armed.pop(threading.get_ident(), None)
        return bool(entry and entry[2] is True)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                due: float | None = None
                for entry in self._armed.values():
                    deadline, connection, state = entry
                    if state is not None:
                        continue  # already acted on
                    if now >= deadline + GRACE_SECONDS:
                        entry[2] = _cut(connection)
                    else:
                        due = min(due, deadline) if due is not None else deadline
                self._cond.wait(None if due is None else due + GRACE_SECONDS - now)


def _cut(connection: Any) -> bool:
    """Shut the connection's socket down so a blocked read or write returns now."""
    sock = getattr(connection, "sock", None)
    if sock is None:
        return False
    try:
        # The plain socket's shutdown, also for TLS sockets: SSLSocket.shutdown would
        # tear down the TLS object under the thread that is using it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        return False
    return True


class _Watched:
    """Mixed into the pool's connection class: tells the watchdog about each request."""

    _errwire_watchdog: Watchdog

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self._errwire_watchdog.watch(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


def watch_pool(pool: HTTPConnectionPool, watchdog: Watchdog) -> None:
    """Make every connection ``pool`` opens report its requests to ``watchdog``.

    ``ConnectionCls`` is urllib3's documented way to choose the connection
    class; setting it on this one pool leaves every other pool alone.
    """
    base = pool.ConnectionCls
    pool.ConnectionCls = type(
        f"Watched{base.__name__}", (_Watched, base), {"_errwire_watchdog": watchdog}
    )
