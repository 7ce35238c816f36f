"""A real uvicorn server for the ASGI end-to-end tests, in its own process.

``running_uvicorn("module:app", app_dir)`` starts uvicorn on 127.0.0.1 with a
free port and lifespan on, with errwire sending to the local SQLite sink under
``app_dir / "errwire-data"``, and waits until it says it is running.
``stop()`` ends it by its own PID with SIGINT (a graceful shutdown, so lifespan
shutdown runs) and keeps what it printed; the context manager kills it if a
test left it running.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UvicornServer", "running_uvicorn"]

_START_TIMEOUT = 60.0


@dataclass
class UvicornServer:
    url: str
    proc: subprocess.Popen[bytes]
    data_dir: Path
    output: bytes = b""

    def stop(self) -> int:
        """Graceful stop by PID; returns the exit code and keeps what it printed."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
        rest, _ = self.proc.communicate(timeout=30)
        self.output += rest
        return self.proc.returncode


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_until(proc: subprocess.Popen[bytes], needle: bytes, timeout: float) -> bytes:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while needle not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                raise AssertionError(f"uvicorn never printed {needle!r}: {seen.decode()}")
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"uvicorn exited: {seen.decode()}")
            seen += chunk
    return seen


@contextlib.contextmanager
def running_uvicorn(
    app: str,
    app_dir: Path,
    *,
    drop_env: tuple[str, ...] = ("ERRWIRE_",),
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[UvicornServer]:
    """Serve ``app`` (``module:attribute`` importable from ``app_dir``) until exit.

    Variables starting with one of ``drop_env`` are left out of the server's
    environment, so the caller's settings cannot leak into the test.
    """
    data_dir = app_dir / "errwire-data"
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(drop_env)},
        "ERRWIRE_DATA_DIR": str(data_dir),
        "ERRWIRE_TRANSPORT": "local",
        "ERRWIRE_DEDUP_WINDOW_SECONDS": "0",
        "ERRWIRE_STORM_WINDOW_SECONDS": "0",
        # a loaded machine must not turn the shutdown flush into outbox spooling
        "ERRWIRE_SHUTDOWN_TIMEOUT_SECONDS": "30",
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--app-dir",
            str(app_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=app_dir,
    )
    server = UvicornServer(f"http://127.0.0.1:{port}", proc, data_dir)
    try:
        server.output = _read_until(proc, b"Uvicorn running on", timeout=_START_TIMEOUT)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
