"""Delivery to Sentry (or any Sentry-compatible server) through sentry-sdk's envelope format.

sentry-sdk supplies the protocol pieces: DSN parsing, the auth header, the
endpoint URL and the envelope serialisation. errwire does not create a
sentry-sdk ``Client`` and never touches its global scope, so an application
that calls ``sentry_sdk.init`` itself keeps its own client and neither side
sees the other's events. Delivery is ours: one synchronous POST on the worker
thread per event, so every outcome is seen and counted, and nothing waits in
sentry-sdk's 100-slot background queue.

The timeout is a deadline for the whole send. Connecting (TCP and TLS),
writing the request and each wait for the answer are bounded by the time left
(``urllib3.Timeout(total=...)``); a server that trickles its answer byte by
byte, which would restart a socket timeout with every byte, is cut off by a
watchdog that shuts the socket down at the deadline (``_sentry_watchdog``); a
send that starts with no time left does not touch the network. Only host name
resolution escapes: it runs under the system resolver's own timeout, which no
socket option bounds (use an IP address or a local resolver where that matters).
"""

from __future__ import annotations

import contextvars
import gzip
import http.client
import json
import math
import os
import time
from typing import Any
from urllib.parse import urlsplit

import urllib3
from sentry_sdk.envelope import Envelope, Item, PayloadRef
from sentry_sdk.utils import BadDsn, Dsn
from urllib3 import exceptions as u3
from urllib3.connectionpool import HTTPConnectionPool

from ._internal import internal_error
from ._sentry_event import DEFAULT_RETRY_AFTER, build_event, parse_rate_limits, parse_retry_after
from ._sentry_watchdog import Watchdog, watch_pool
from ._transport import Outcome, Payload, SendResult

__all__ = ["SentryTransport", "check_dsn"]

MAX_RESPONSE_BYTES = 64 * 1024  # more than any Sentry answer; the rest is not read
MAX_REASON_CHARS = 200  # characters of the server's reason kept in a result's detail
GZIP_LEVEL = 6


def check_dsn(dsn: object) -> str | None:
    """Why ``dsn`` cannot be used as a Sentry DSN, or None when it can."""
    if not isinstance(dsn, str):
        return f"a Sentry DSN must be a string, not {type(dsn).__name__}"
    if not dsn.strip():
        return "the Sentry DSN is empty"
    try:
        parsed = Dsn(dsn.strip())
    except BadDsn as exc:
        return f"malformed Sentry DSN ({exc}); expected 'https://<key>@<host>/<project id>'"
    except ValueError as exc:  # urlsplit: bad port, bad IPv6 literal
        return f"malformed Sentry DSN ({exc}); expected 'https://<key>@<host>/<project id>'"
    if not parsed.host:
        return "malformed Sentry DSN (no host)"
    return None


class SentryTransport:
    """Sends each payload as one Sentry envelope and reports what the server said.

    ``timeout`` caps every send; the worker may pass a shorter one (the time
    left before a shutdown deadline, say). ``release``, ``environment`` and
    ``server_name`` fill the event where the payload has none. ``ca_certs``
    names a CA bundle for HTTPS (default: ``$SSL_CERT_FILE``, else certifi's,
    like sentry-sdk).
    """

    name = "sentry"
    enforces_timeout = True

    def __init__(
        self,
        dsn: str,
        *,
        timeout: float = 5.0,
        release: str | None = None,
        environment: str | None = None,
        server_name: str | None = None,
        ca_certs: str | None = None,
    ) -> None:
        from . import __version__

        reason = check_dsn(dsn)
        if reason is not None:
            raise ValueError(reason)
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")
        parsed = Dsn(dsn.strip())
        auth = parsed.to_auth(f"errwire/{__version__}")
        self.timeout = float(timeout)
        self.release = release
        self.environment = environment
        self.server_name = server_name
        self.url = auth.get_api_url()
        self.host = parsed.netloc
        self._path = urlsplit(self.url).path  # origin-form request target
        self._sdk = {"name": "errwire.python", "version": __version__}
        self._headers = {
            "Content-Type": "application/x-sentry-envelope",
            "Content-Encoding": "gzip",
            "X-Sentry-Auth": auth.to_header(),
            "User-Agent": f"errwire/{__version__}",
        }
        pool_options: dict[str, Any] = {"maxsize": 2, "block": False, "retries": False}
        if parsed.scheme == "https":
            pool_options["ca_certs"] = ca_certs or os.environ.get("SSL_CERT_FILE") or _certifi()
        self._pool_options = pool_options
        self._watchdog = Watchdog()
        self._pool = self._new_pool()
        self._pid = os.getpid()
        self._kept_alive = False  # the last answer left the connection open for reuse
        self._closed = False

    def __repr__(self) -> str:
        return f"<SentryTransport {self.url}>"

    def _new_pool(self) -> HTTPConnectionPool:
        pool = urllib3.connection_from_url(self.url, **self._pool_options)
        watch_pool(pool, self._watchdog)
        return pool

    # -- the Transport protocol ---------------------------------------------------

    def send(self, payload: Payload, timeout: float) -> SendResult:
        """Deliver ``payload`` within ``timeout`` seconds (capped by the transport's own)."""
        started = time.monotonic()
        limit = self.timeout
        if isinstance(timeout, int | float) and not isinstance(timeout, bool):
            limit = min(limit, float(timeout)) if math.isfinite(timeout) else limit
        if self._closed:
            return SendResult(Outcome.RETRYABLE, "transport closed")
        if limit <= 0:
            return SendResult(Outcome.RETRYABLE, "no time left to send")
        if self._pid != os.getpid():
            # A forked child must not talk over the parent's sockets: start afresh.
            self._pid = os.getpid()
            self._pool = self._new_pool()
            self._kept_alive = False
        try:
            event_id, body = self.encode(payload)
        except Exception as exc:
            internal_error("sentry.encode", exc)
            return SendResult(Outcome.REJECTED, f"cannot build the Sentry event: {exc!r}"[:300])
        try:
            # An empty context: whatever the calling thread carries (a host's sentry-sdk
            # or OpenTelemetry span, say) must not see or trace errwire's own requests.
            return contextvars.Context().run(self._post, event_id, body, started + limit, limit)
        except Exception as exc:
            internal_error("sentry.send", exc)
            return SendResult(Outcome.RETRYABLE, f"unexpected error while sending: {exc!r}"[:300])

    def close(self) -> None:
        self._closed = True
        self._pool.close()
        self._watchdog.stop()

    # -- building ---------------------------------------------------------------------

    def build_event(self, payload: Payload) -> dict[str, Any]:
        """The Sentry event for ``payload`` (see ``_sentry_event.build_event``)."""
        return build_event(
            payload,
            release=self.release,
            environment=self.environment,
            server_name=self.server_name,
        )

    def encode(self, payload: Payload) -> tuple[str, bytes]:
        """``(event id, gzipped envelope)`` for ``payload``."""
        event = self.build_event(payload)
        event["sdk"] = dict(self._sdk)
        headers = {"event_id": event["event_id"], "sent_at": _now_iso(), "sdk": self._sdk}
        try:
            raw = _envelope(headers, event)
        except (TypeError, ValueError):  # NaN, infinity or a stray object in the context
            raw = _envelope(headers, _json_safe(event))
        return event["event_id"], gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)

    # -- delivering -------------------------------------------------------------------

    def _post(self, event_id: str, body: bytes, deadline: float, limit: float) -> SendResult:
        retried = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return SendResult(Outcome.RETRYABLE, f"timed out: no answer within {limit:g}s")
            reused = self._kept_alive
            self._kept_alive = False
            self._watchdog.arm(deadline)
            try:
                response = self._pool.urlopen(
                    "POST",
                    self._path,
                    body=body,
                    headers=self._headers,
                    retries=False,
                    redirect=False,
                    timeout=urllib3.Timeout(total=remaining),
                    preload_content=False,
                    release_conn=False,
                )
            except Exception as exc:
                if self._watchdog.disarm():
                    return SendResult(
                        Outcome.RETRYABLE,
                        f"timed out: no complete answer from {self.host} within {limit:g}s",
                    )
                # A keep-alive connection the server closed while idle fails on first
                # use; one fresh connection is tried before calling it a failure.
                stale = reused and isinstance(exc, u3.ProtocolError) and _is_disconnect(exc)
                if stale and not retried:
                    retried = True
                    continue
                return self._failure(exc, limit)
            answer, complete = self._read_body(response, deadline)
            if self._watchdog.disarm():
                complete = False
            if complete:
                self._kept_alive = response.headers.get("Connection", "").lower() != "close"
            else:
                response.close()  # unread or cut: this connection cannot carry another request
            response.release_conn()
            return self._answer(response, event_id, answer)

    def _answer(self, response: Any, event_id: str, body: bytes) -> SendResult:
        status: int = response.status
        headers = response.headers
        error_pause, per_category = parse_rate_limits(headers.get("X-Sentry-Rate-Limits"))
        where = self.host
        if 200 <= status < 300:
            remote_id = _response_id(body) or event_id
            if error_pause is not None:
                detail = (
                    f"accepted; the server limits further errors for {error_pause:g}s "
                    f"({_fmt(per_category)})"
                )
                return SendResult(Outcome.OK, detail, retry_after=error_pause, remote_id=remote_id)
            return SendResult(Outcome.OK, remote_id=remote_id)
        if status == 429:
            if error_pause is not None:
                pause = error_pause
                source = f"X-Sentry-Rate-Limits: {_fmt(per_category)}"
            else:
                given = parse_retry_after(headers.get("Retry-After"))
                pause = given if given is not None else DEFAULT_RETRY_AFTER
                source = "Retry-After" if given is not None else "no usable header, default"
            return SendResult(
                Outcome.RATE_LIMITED,
                f"HTTP 429 from {where}: rate limited for {pause:g}s ({source})",
                retry_after=pause,
            )
        reason = _server_reason(headers, body)
        phrase = http.client.responses.get(status, "")
        text = (
            f"HTTP {status} {phrase}".rstrip()
            + f" from {where}"
            + (f": {reason}" if reason else "")
        )
        if status >= 500 or status == 408:
            return SendResult(
                Outcome.RETRYABLE, text, retry_after=parse_retry_after(headers.get("Retry-After"))
            )
        if 300 <= status < 400:
            location = headers.get("Location", "")
            return SendResult(
                Outcome.REJECTED,
                f"{text}; redirected to {location[:MAX_REASON_CHARS]!r} "
                "(Sentry endpoints never redirect: check the DSN's scheme and host)",
            )
        if 400 <= status < 500:
            return SendResult(Outcome.REJECTED, text)
        return SendResult(Outcome.RETRYABLE, f"unexpected answer: {text}")

    @staticmethod
    def _read_body(response: Any, deadline: float) -> tuple[bytes, bool]:
        """Up to ``MAX_RESPONSE_BYTES`` of the answer, and whether it was read whole."""
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= MAX_RESPONSE_BYTES and time.monotonic() < deadline:
                chunk = response.read(8192)
                if not chunk:
                    return b"".join(chunks), True
                chunks.append(chunk)
                size += len(chunk)
        except Exception:  # the status line already said what matters
            return b"".join(chunks), False
        return b"".join(chunks)[:MAX_RESPONSE_BYTES], False

    def _failure(self, exc: BaseException, limit: float) -> SendResult:
        """A send that got no HTTP answer: always retryable, with what happened."""
        if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        where = self.host
        # NameResolutionError < NewConnectionError < ConnectTimeoutError: most specific first.
        if isinstance(exc, u3.NameResolutionError):
            detail = f"cannot resolve {where}: {_os_reason(exc)}"
        elif isinstance(exc, u3.NewConnectionError):
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ConnectionRefusedError):
                detail = f"connection refused by {where}"
            else:
                detail = f"cannot connect to {where}: {_os_reason(exc)}"
        elif isinstance(exc, u3.ConnectTimeoutError):
            detail = f"timed out: could not connect to {where} within {limit:g}s"
        elif isinstance(exc, u3.ReadTimeoutError | TimeoutError):
            detail = f"timed out: no answer from {where} within {limit:g}s"
        elif isinstance(exc, u3.SSLError):
            detail = f"TLS error with {where}: {_os_reason(exc)}"
        elif isinstance(exc, u3.ProtocolError):
            detail = f"{_disconnect_reason(exc)} ({where})"
        elif isinstance(exc, u3.ClosedPoolError):
            detail = "transport closed"
        elif isinstance(exc, u3.HTTPError | OSError):
            detail = f"network error with {where}: {exc!r}"
        else:
            raise exc
        return SendResult(Outcome.RETRYABLE, detail[:400])


def _envelope(headers: dict[str, Any], event: dict[str, Any]) -> bytes:
    """One event item in a Sentry envelope, serialised by sentry-sdk (strict JSON)."""
    envelope = Envelope(headers=headers)
    envelope.add_item(Item(payload=PayloadRef(json=event), type="event"))
    return envelope.serialize()


def _certifi() -> str | None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - sentry-sdk depends on certifi
        return None
    return str(certifi.where())


def _now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def _fmt(per_category: dict[str, float]) -> str:
    return ", ".join(f"{c}={s:g}s" for c, s in sorted(per_category.items()))


def _response_id(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def _server_reason(headers: Any, body: bytes) -> str:
    """What the server said was wrong: ``X-Sentry-Error``, a JSON message, or the body's start."""
    text = headers.get("X-Sentry-Error") or ""
    if not text and body:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict):
            for key in ("detail", "message", "error"):
                if isinstance(data.get(key), str | list | dict):
                    value = data[key]
                    text = value if isinstance(value, str) else json.dumps(value)
                    break
        if not text:
            text = body[: MAX_REASON_CHARS * 4].decode("utf-8", "replace")
    text = " ".join(str(text).split())
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 3] + "..."
    return text


def _os_reason(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    return str(exc)


def _is_disconnect(exc: u3.ProtocolError) -> bool:
    """The peer closed or reset the connection (as opposed to a malformed answer)."""
    for arg in (*exc.args, exc.__cause__, exc.__context__):
        if isinstance(arg, http.client.RemoteDisconnected | ConnectionError):
            return True
    return False


def _disconnect_reason(exc: u3.ProtocolError) -> str:
    for arg in (*exc.args, exc.__cause__, exc.__context__):
        if isinstance(arg, http.client.RemoteDisconnected):
            return "server closed the connection without answering"
        if isinstance(arg, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(arg, BrokenPipeError):
            return "connection closed by the server while sending"
        if isinstance(arg, http.client.IncompleteRead | http.client.BadStatusLine):
            return f"malformed answer: {arg!r}"
    return f"connection error: {exc}"


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A copy with non-finite floats and non-JSON objects turned into strings."""
    if depth > 50:
        return "<too deep>"
    if isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return repr(value)[:1000]
    except Exception:  # a hostile __repr__
        return f"<unrepresentable {type(value).__name__}>"
