"""A local Sentry-compatible receiver that misbehaves on request.

It accepts envelopes at ``/api/<project>/envelope/`` on 127.0.0.1 and answers
according to its current mode, which tests switch at any time:

    receiver.ok()                      200 {"id": <event id>}
    receiver.slow(2.0)                 answer 200 after 2 s (at once after release())
    receiver.blackhole()               read the request, never answer (until release()/stop())
    receiver.refuse()                  stop listening, drop open connections: connects are refused
    receiver.status(429, {"Retry-After": "2"})
    receiver.status(500) / status(403, body=b"...")
    receiver.reset()                   read the request, then reset the connection (no answer)
    receiver.drop_reused()             answer a connection's first request, reset on its second
    receiver.trickle(0.2)              answer 200 one byte every 0.2 s
    receiver.flap([Ok(), Status(500), Reset()])   one mode per request, in a cycle
    receiver.forward_to(url, delay=0.05)           proxy to a real server after a delay

Everything is recorded: every request (``requests``), the envelopes it
accepted (``accepted``; answered 2xx, by itself or by the server behind it),
requests per mode (``counts``), and TCP connections accepted
(``connections``). Waiting is done on a condition, never by sleeping:
``wait_until(lambda r: r.held >= 1)``.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import select
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import urllib3

__all__ = [
    "Blackhole",
    "DropReused",
    "FaultReceiver",
    "Forward",
    "Mode",
    "Ok",
    "Received",
    "Reset",
    "Slow",
    "Status",
    "Trickle",
    "parse_envelope",
]


ELAPSED, RELEASED, STOPPING = "elapsed", "released", "stopping"


@dataclass(frozen=True)
class Ok:
    label = "ok"


@dataclass(frozen=True)
class Slow:
    seconds: float
    label = "slow"


@dataclass(frozen=True)
class Blackhole:
    label = "blackhole"


@dataclass(frozen=True)
class Status:
    code: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def label(self) -> str:
        return f"status:{self.code}"


@dataclass(frozen=True)
class Reset:
    label = "reset"


@dataclass(frozen=True)
class DropReused:
    label = "drop_reused"


@dataclass(frozen=True)
class Trickle:
    """Answer 200, one byte every ``interval`` seconds."""

    interval: float
    label = "trickle"


@dataclass(frozen=True)
class Forward:
    url: str
    delay: float = 0.0
    label = "forward"


Mode = Ok | Slow | Blackhole | Status | Reset | DropReused | Trickle | Forward


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    project: str | None
    headers: dict[str, str]
    mode: str
    connection: int
    request_on_connection: int
    envelope_headers: dict[str, Any] = field(default_factory=dict)
    items: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    error: str | None = None  # why the body could not be parsed
    status: int | None = None  # the answer given, None if none was

    @property
    def event(self) -> dict[str, Any] | None:
        for item_headers, payload in self.items:
            if item_headers.get("type") == "event" and isinstance(payload, dict):
                return payload
        return None

    @property
    def event_id(self) -> str | None:
        event = self.event
        value = (event or {}).get("event_id") or self.envelope_headers.get("event_id")
        return str(value) if value else None


def parse_envelope(data: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], Any]]]:
    """Split a Sentry envelope into its headers and ``(item headers, payload)`` pairs.

    JSON payloads are decoded; others stay bytes. Written from the envelope
    specification, independently of sentry-sdk, so it checks what we send.
    """
    head, _, rest = data.partition(b"\n")
    headers = json.loads(head) if head.strip() else {}
    items: list[tuple[dict[str, Any], Any]] = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        item_headers = json.loads(line)
        length = item_headers.get("length")
        if isinstance(length, int):
            payload, rest = rest[:length], rest[length:]
            if rest.startswith(b"\n"):
                rest = rest[1:]
        else:
            payload, _, rest = rest.partition(b"\n")
        content_type = item_headers.get("content_type", "application/json")
        decoded: Any = payload
        if item_headers.get("type") in ("event", "transaction") or "json" in content_type:
            decoded = json.loads(payload)
        items.append((item_headers, decoded))
    return headers, items


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], receiver: FaultReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.receiver._on_connect(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # clients that time out and hang up are the point of this server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection_id = self.server.receiver._connection_id(self.connection)
        self.requests_here = 0

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()
        self.server.receiver._on_disconnect(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._reply(404, b"not found\n", {"Content-Type": "text/plain"})

    def do_POST(self) -> None:
        self.requests_here += 1
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        record = Received(
            path=self.path,
            project=_project_of(self.path),
            headers=dict(self.headers.items()),
            mode="",
            connection=self.connection_id,
            request_on_connection=self.requests_here,
        )
        try:
            record.envelope_headers, record.items = parse_envelope(
                _decode(raw, self.headers.get("Content-Encoding"))
            )
        except (ValueError, OSError, zlib.error) as exc:
            record.error = repr(exc)
        mode = receiver._next_mode()
        record.mode = mode.label
        receiver._record(record)
        if record.project is None:
            self._reply(404, b"not an envelope endpoint\n", {"Content-Type": "text/plain"}, record)
            return
        if isinstance(mode, Ok):
            self._accept(record)
        elif isinstance(mode, Slow):
            if receiver._hold(mode.seconds) == STOPPING:
                self._abort(record)
            else:
                self._accept(record)
        elif isinstance(mode, Blackhole):
            receiver._hold(None)
            self._abort(record)
        elif isinstance(mode, Status):
            if 200 <= mode.code < 300 and not mode.body:
                self._accept(record, mode.code, dict(mode.headers))
            else:
                self._reply(mode.code, mode.body, dict(mode.headers), record)
        elif isinstance(mode, Reset):
            self._abort(record)
        elif isinstance(mode, DropReused):
            if self.requests_here > 1:
                self._abort(record)
            else:
                self._accept(record)
        elif isinstance(mode, Trickle):
            self._trickle(mode.interval, record)
        else:
            self._forward(mode, raw, record)

    # -- answers ----------------------------------------------------------------------

    def _accept(
        self, record: Received, code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"id": record.event_id}).encode()
        self._reply(code, body, {"Content-Type": "application/json", **(headers or {})}, record)

    def _reply(
        self, code: int, body: bytes, headers: dict[str, str], record: Received | None = None
    ) -> None:
        if record is not None:
            if _peer_gone(self.connection):  # the client gave up while we held the request
                self._abort(record)
                return
            # Recorded before the answer is written, so a client that has its answer
            # always finds the request recorded.
            self.server.receiver._answered(record, code)
        try:
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)  # TCP_NODELAY (see _Server): no Nagle/delayed-ACK stall
        except OSError:
            self.close_connection = True

    def _trickle(self, interval: float, record: Received) -> None:
        body = json.dumps({"id": record.event_id}).encode()
        raw = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        receiver = self.server.receiver
        released = False
        for index in range(len(raw)):
            if index == len(raw) - 1:
                receiver._answered(record, 200)
            try:
                self.wfile.write(raw[index : index + 1])
            except OSError:
                self.close_connection = True
                return
            if index < len(raw) - 1 and not released:
                held = receiver._hold(interval)
                if held == STOPPING:
                    self._abort(record)
                    return
                released = held == RELEASED

    def _abort(self, record: Received) -> None:
        """Close the connection with a reset and no answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _forward(self, mode: Forward, raw: bytes, record: Received) -> None:
        receiver = self.server.receiver
        if mode.delay > 0 and receiver._hold(mode.delay) == STOPPING:
            self._abort(record)
            return
        target = urlsplit(mode.url)
        url = urlunsplit((target.scheme, target.netloc, self.path, "", ""))
        keep = ("Content-Type", "Content-Encoding", "X-Sentry-Auth", "User-Agent")
        headers = {k: self.headers[k] for k in keep if self.headers.get(k)}
        try:
            answer = receiver._upstream.request(
                "POST", url, body=raw, headers=headers, retries=False, timeout=30.0
            )
        except urllib3.exceptions.HTTPError as exc:
            self._reply(502, repr(exc).encode(), {"Content-Type": "text/plain"}, record)
            return
        passed = {
            k: v
            for k, v in answer.headers.items()
            if k.lower()
            in ("content-type", "retry-after", "x-sentry-rate-limits", "x-sentry-error")
        }
        self._reply(answer.status, answer.data, passed, record)


def _peer_gone(sock: socket.socket) -> bool:
    """True when the client has closed its end (readable with nothing to read, or reset)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _project_of(path: str) -> str | None:
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) == 3 and parts[0] == "api" and parts[2] == "envelope":
        return parts[1]
    return None


def _decode(raw: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return raw
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class FaultReceiver:
    """A Sentry envelope endpoint on 127.0.0.1 whose behaviour tests control."""

    def __init__(self, *, project: int = 1, key: str = "public") -> None:
        self.project = project
        self.key = key
        self.port = 0
        self.requests: list[Received] = []
        self.accepted: list[Received] = []
        self.counts: Counter[str] = Counter()
        self.connections = 0
        self.held = 0  # requests currently held (slow, blackhole, forward delay)
        self._cond = threading.Condition()
        self._mode: Mode = Ok()
        self._flap: tuple[Mode, ...] | None = None
        self._flap_index = itertools.count()
        self._generation = 0  # bumped by release(): held requests let go
        self._stopping = False
        self._refusing = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._open: dict[socket.socket, int] = {}
        self._connection_ids = itertools.count(1)
        self._upstream = urllib3.PoolManager(maxsize=4)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FaultReceiver:
        self._listen()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._generation += 1
            self._cond.notify_all()
        self._unlisten()
        self._drop_connections()
        self._upstream.clear()

    def __enter__(self) -> FaultReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dsn(self) -> str:
        return f"http://{self.key}@127.0.0.1:{self.port}/{self.project}"

    def dsn_in_front_of(self, dsn: str) -> str:
        """``dsn`` with its host replaced by this receiver (same key and project)."""
        parts = urlsplit(dsn)
        netloc = parts.netloc.rpartition("@")
        return urlunsplit(("http", f"{netloc[0]}@127.0.0.1:{self.port}", parts.path, "", ""))

    # -- modes ----------------------------------------------------------------------

    def set_mode(self, mode: Mode) -> None:
        if self._refusing:
            self._listen()
        with self._cond:
            self._mode = mode
            self._flap = None
            self._cond.notify_all()

    def ok(self) -> None:
        self.set_mode(Ok())

    def slow(self, seconds: float) -> None:
        self.set_mode(Slow(seconds))

    def blackhole(self) -> None:
        self.set_mode(Blackhole())

    def status(
        self, code: int, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> None:
        self.set_mode(Status(code, dict(headers or {}), body))

    def reset(self) -> None:
        self.set_mode(Reset())

    def drop_reused(self) -> None:
        self.set_mode(DropReused())

    def trickle(self, interval: float) -> None:
        self.set_mode(Trickle(interval))

    def forward_to(self, url: str, delay: float = 0.0) -> None:
        self.set_mode(Forward(url, delay))

    def flap(self, sequence: Iterable[Mode]) -> None:
        """Answer request ``i`` (from now on) with ``sequence[i % len(sequence)]``."""
        modes = tuple(sequence)
        if not modes:
            raise ValueError("flap needs at least one mode")
        self.set_mode(modes[0])
        with self._cond:
            self._flap = modes
            self._flap_index = itertools.count()

    def refuse(self) -> None:
        """Close the listening socket and every open connection: connects are refused
        until another mode is set (which listens again on the same port)."""
        self._unlisten()
        self._drop_connections()
        with self._cond:
            self._refusing = True
            self._cond.notify_all()

    def release(self) -> None:
        """Let go of every held request now: slow, trickled and forwarded ones go on at
        once (answering only clients still waiting), blackholed ones are reset."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    # -- looking at what arrived ----------------------------------------------------

    def event_ids(self) -> list[str]:
        """Event ids of the accepted envelopes, in arrival order."""
        with self._cond:
            return [r.event_id for r in self.accepted if r.event_id]

    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [r.event for r in self.accepted if r.event is not None]

    def wait_until(self, predicate: Callable[[FaultReceiver], bool], timeout: float = 10.0) -> bool:
        """Wait (on a condition, not a sleep) until ``predicate(self)`` holds."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> bool:
        return self.wait_until(lambda r: len(r.requests) >= n, timeout)

    def wait_for_held(self, n: int = 1, timeout: float = 10.0) -> bool:
        return self.wait_until(lambda r: r.held >= n, timeout)

    # -- internals (called from handler threads) ------------------------------------

    def _listen(self) -> None:
        server = _Server(("127.0.0.1", self.port), self)
        self.port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fault-receiver:{self.port}",
            daemon=True,
        )
        with self._cond:
            self._server, self._thread = server, thread
            self._refusing = False
        thread.start()

    def _unlisten(self) -> None:
        with self._cond:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5.0)

    def _drop_connections(self) -> None:
        with self._cond:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _on_connect(self, sock: socket.socket) -> None:
        with self._cond:
            self.connections += 1
            self._open[sock] = next(self._connection_ids)
            self._cond.notify_all()

    def _connection_id(self, sock: socket.socket) -> int:
        with self._cond:
            return self._open.get(sock, 0)

    def _on_disconnect(self, sock: socket.socket) -> None:
        with self._cond:
            self._open.pop(sock, None)

    def _next_mode(self) -> Mode:
        with self._cond:
            if self._flap is not None:
                return self._flap[next(self._flap_index) % len(self._flap)]
            return self._mode

    def _record(self, record: Received) -> None:
        with self._cond:
            self.requests.append(record)
            self.counts[record.mode] += 1
            self._cond.notify_all()

    def _answered(self, record: Received, status: int) -> None:
        with self._cond:
            record.status = status
            if 200 <= status < 300:
                self.accepted.append(record)
            self._cond.notify_all()

    def _hold(self, seconds: float | None) -> str:
        """Hold the calling request for ``seconds`` (None: until released or stopped).

        Returns ``ELAPSED``, ``RELEASED`` (``release()`` cut it short) or ``STOPPING``.
        """
        deadline = None if seconds is None else time.monotonic() + seconds
        with self._cond:
            generation = self._generation
            self.held += 1
            self._cond.notify_all()
            try:
                while True:
                    if self._stopping:
                        return STOPPING
                    if self._generation != generation:
                        return RELEASED
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return ELAPSED
                    self._cond.wait(left)
            finally:
                self.held -= 1
                self._cond.notify_all()


@contextlib.contextmanager
def running_receiver(**options: Any) -> Iterator[FaultReceiver]:
    receiver = FaultReceiver(**options).start()
    try:
        yield receiver
    finally:
        receiver.stop()
