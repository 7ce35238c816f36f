"""The dashboard's data over HTTP for any framework: ``status.json`` and ``metrics``.

``TelemetryEndpoints.respond`` is framework-free (method, sub-path and the
``Authorization`` header in; status, headers and body out); the ASGI app
below and the Flask extension serve it under a configurable path. There is no
user concept there, so a bearer token is required; it is compared in constant
time. Django serves the same data behind its staff login (and the same token).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from errwire._dashboard import (
    JSON_CONTENT_TYPE,
    METRICS_CONTENT_TYPE,
    dashboard_data,
    render_json,
    render_metrics,
)

__all__ = [
    "ENDPOINTS",
    "MIN_TOKEN_LENGTH",
    "HttpAnswer",
    "TelemetryApp",
    "TelemetryEndpoints",
    "bearer_matches",
    "check_token",
    "flask_settings",
    "normalise_path",
    "register_flask",
    "serve_asgi",
]

ENDPOINTS = ("status.json", "metrics")
MIN_TOKEN_LENGTH = 16
_SAFE_METHODS = frozenset(("GET", "HEAD"))


def check_token(token: object, label: str) -> str:
    """A usable token, or ``ValueError`` naming the option."""
    if not isinstance(token, str) or len(token.strip()) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"errwire option {label} must be a string of at least {MIN_TOKEN_LENGTH} characters "
            "(a random one: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token.strip()


def normalise_path(path: object, label: str) -> str:
    """``"/telemetry"`` from ``"telemetry"``, ``"/telemetry/"``...; ``ValueError`` if unusable."""
    if not isinstance(path, str) or not path.strip("/ ") or " " in path or "?" in path:
        raise ValueError(
            f"errwire option {label} must be a URL path like '/telemetry'; got {path!r}"
        )
    return "/" + path.strip("/")


def bearer_matches(authorization: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    if not authorization:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@dataclass
class HttpAnswer:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


class TelemetryEndpoints:
    def __init__(
        self, outbox_path: Callable[[], str] | str, *, token: str, stale_after: float = 30.0
    ) -> None:
        self._outbox_path = outbox_path
        self.token = token
        self.stale_after = stale_after

    def outbox_path(self) -> str:
        path = self._outbox_path
        return path if isinstance(path, str) else path()

    def respond(self, method: str, name: str, authorization: str | None) -> HttpAnswer:
        """The answer to ``method`` on ``<path>/<name>``."""
        if name not in ENDPOINTS:
            return _plain(404, "Not found: the telemetry endpoints are status.json and metrics.")
        if method not in _SAFE_METHODS:
            answer = _plain(405, "Read-only: use GET or HEAD.")
            answer.headers.append(("Allow", "GET, HEAD"))
            return answer
        if not bearer_matches(authorization, self.token):
            answer = _plain(401, "A valid 'Authorization: Bearer <token>' header is required.")
            answer.headers.append(("WWW-Authenticate", 'Bearer realm="errwire"'))
            return answer
        data = dashboard_data(self.outbox_path(), stale_after=self.stale_after)
        if name == "metrics":
            body, kind = render_metrics(data), METRICS_CONTENT_TYPE
        else:
            body, kind = render_json(data), JSON_CONTENT_TYPE
        answer = HttpAnswer(200, b"" if method == "HEAD" else body)
        answer.headers += [("Content-Type", kind), ("Cache-Control", "no-store")]
        if method == "HEAD":
            answer.headers.append(("Content-Length", str(len(body))))
        return answer


def _plain(status: int, text: str) -> HttpAnswer:
    return HttpAnswer(
        status,
        text.encode(),
        [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
    )


# ----------------------------------------------------------------------------- ASGI
_Receive = Callable[[], Awaitable[Any]]
_Send = Callable[[Any], Awaitable[None]]
_App = Callable[[Any, _Receive, _Send], Awaitable[None]]


class TelemetryApp:
    """Serves ``<prefix>/status.json`` and ``<prefix>/metrics``; passes the rest to ``app``.

    The ASGI middleware puts it in front of the application only when a path is
    configured, so an application without it pays nothing per request.
    """

    def __init__(self, app: _App, prefix: str, endpoints: TelemetryEndpoints) -> None:
        self.app = app
        self.prefix = prefix + "/"
        self.endpoints = endpoints

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: _Receive, send: _Send
    ) -> None:
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(self.prefix):
            return await self.app(scope, receive, send)
        authorization = None
        for key, value in scope.get("headers") or ():
            if key.lower() == b"authorization":
                authorization = value.decode("latin-1")
        loop = asyncio.get_running_loop()
        # reading the heartbeats is SQLite I/O: off the event loop
        answer = await loop.run_in_executor(
            None,
            self.endpoints.respond,
            scope.get("method", "GET"),
            path[len(self.prefix) :],
            authorization,
        )
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in answer.headers],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})


def serve_asgi(app: _App, path: object, token: object, outbox_path: str) -> TelemetryApp:
    """``app`` with the endpoints in front of it (options validated; errors name them)."""
    prefix = normalise_path(path, "telemetry_path")
    if token is None:
        raise ValueError(
            "errwire option telemetry_path needs telemetry_token: the endpoints "
            "answer only requests that send 'Authorization: Bearer <token>'"
        )
    endpoints = TelemetryEndpoints(outbox_path, token=check_token(token, "telemetry_token"))
    return TelemetryApp(app, prefix, endpoints)


# ----------------------------------------------------------------------------- Flask
def flask_settings(values: MutableMapping[str, Any]) -> tuple[str | None, str | None]:
    """``ERRWIRE_TELEMETRY_PATH`` / ``ERRWIRE_TELEMETRY_TOKEN``, validated (both or neither)."""
    path, token = values.get("telemetry_path"), values.get("telemetry_token")
    if path is None:
        if token is not None:
            raise ValueError(
                "errwire option ERRWIRE_TELEMETRY_TOKEN is set but ERRWIRE_TELEMETRY_PATH "
                "is not: set the path the endpoints are served at, like '/telemetry'"
            )
        return None, None
    prefix = normalise_path(path, "ERRWIRE_TELEMETRY_PATH")
    if token is None:
        raise ValueError(
            "errwire option ERRWIRE_TELEMETRY_PATH needs ERRWIRE_TELEMETRY_TOKEN: the "
            "endpoints answer only requests that send 'Authorization: Bearer <token>'"
        )
    return prefix, check_token(token, "ERRWIRE_TELEMETRY_TOKEN")


def register_flask(app: Any, prefix: str, token: str, outbox_path: str) -> None:
    """Add ``<prefix>/status.json`` and ``<prefix>/metrics`` to a Flask app."""
    from flask import Response, request

    endpoints = TelemetryEndpoints(outbox_path, token=token)

    def telemetry(name: str) -> Response:
        answer = endpoints.respond(request.method, name, request.headers.get("Authorization"))
        response = Response(answer.body, status=answer.status)
        for key, value in answer.headers:
            response.headers[key] = value
        return response

    app.add_url_rule(
        f"{prefix}/<name>",
        endpoint="errwire_telemetry",
        view_func=telemetry,
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    )
