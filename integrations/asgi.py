"""Pure ASGI middleware: ``app = ErrwireMiddleware(app, **options)``.

Works around any ASGI 3 application: Starlette (``app.add_middleware(ErrwireMiddleware)``),
FastAPI, Django's ``get_asgi_application()``. It imports no framework.

``ErrwireMiddleware`` is a factory: it returns the wrapped app, a coroutine function
(servers such as uvicorn recognise it as ASGI 3). Not an instance with ``__call__``:
CPython calls an instance through a generic C path (an argument tuple, a method
lookup, a C-level frame to make the coroutine), a function through the interpreter's
specialised inline call; in the benchmark that is about a fifth of this layer's cost.

* http and websocket: a lazy request snapshot is set in a contextvar for the
  request and reset after it; after the request the snapshot is emptied, so a
  task the request started and that outlives it reports no request.
  Exceptions raised by the app are captured once and re-raised (the server
  still logs them). A 5xx response with nothing captured during the request
  (an inner exception handler turned an error into a response) is reported as
  an ``HTTP 5xx`` event (``capture_server_errors=False`` turns that off).
* lifespan: the runtime starts on ``lifespan.startup``, before the app's own
  startup code runs; on shutdown it delivers within ``shutdown_timeout``
  seconds before ``lifespan.shutdown.complete`` goes to the server. An app
  that handles lifespan keeps doing so (messages are only observed); for an
  app that does not, the middleware answers the protocol itself.
* Without lifespan (a server started with ``--lifespan off``, a test calling
  the app directly), the runtime starts on the first request.
* Everything else passes straight through.

``telemetry_path="/telemetry"`` with ``telemetry_token`` also serves the
dashboard's ``status.json`` and Prometheus ``metrics`` there (bearer token).

``options`` are ``errwire.Config`` fields, validated here (errors name the
keyword); ``ERRWIRE_*`` environment variables win, as for ``errwire.init()``.
If errwire is already running, the middleware joins that runtime when it is
created (options you pass must agree with it, else ``RuntimeError``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

from errwire import _api, _commands
from errwire._config import make_config
from errwire._context import _request as _request_var
from errwire._internal import logger
from errwire._request import request_info

__all__ = ["ErrwireMiddleware"]

# As permissive as Starlette's middleware factory types, so that any ASGI app (Django's
# handler, Starlette, FastAPI, a hand-written one) type-checks when wrapped.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Any, Receive, Send], Awaitable[None]]
# What the factory returns: an ``async def`` (a task can be made of its call).
WrappedApp = Callable[[Any, Receive, Send], Coroutine[Any, Any, None]]

# The contextvar's own methods: a wrapper function per request is measurable here.
_set_request = _request_var.set
_reset_request = _request_var.reset


def ErrwireMiddleware(  # a factory named as the class it stands for (module docstring)
    app: ASGIApp,
    /,
    *,
    component: str | None = None,
    capture_server_errors: bool = True,
    shutdown_timeout: float | None = None,
    telemetry_path: str | None = None,
    telemetry_token: str | None = None,
    **options: Any,
) -> WrappedApp:
    """Wrap ``app``; returns the wrapped ASGI app (see the module docstring)."""
    middleware = _Middleware(
        app, component, shutdown_timeout, telemetry_path, telemetry_token, options
    )
    inner = middleware.app
    observe = capture_server_errors

    async def errwire_asgi(scope: Scope, receive: Receive, send: Send) -> None:
        # The hot path: one http request. Every line here is paid per request, so the
        # per-request state is a slotted object built with no __init__ frame, send is
        # observed through its bound method (cheaper than a closure), and what this
        # function reads on every request is a closure cell, not an instance attribute.
        if scope["type"] != "http":
            return await middleware.not_http(scope, receive, send)
        if not _api._enabled and not middleware.start_now():
            return await inner(scope, receive, send)
        request = _AsgiRequest()
        request.scope = scope
        request.server_send = send
        request.status = 0
        token = _set_request(request)
        try:
            await inner(scope, receive, request.send if observe else send)
        except Exception as exc:
            _api.capture_error(exc, middleware.component)
            raise
        else:
            if request.status >= 500 and not request.was_captured():
                request.report_status(middleware.component)
        finally:
            request.scope = None  # a task the request started and that outlives it: no request
            _reset_request(token)

    return errwire_asgi


class _Middleware:
    """What the wrapped app needs besides the hot path: options, runtime start and
    stop, websocket and lifespan scopes."""

    def __init__(
        self,
        app: ASGIApp,
        component: str | None,
        shutdown_timeout: float | None,
        telemetry_path: str | None,
        telemetry_token: str | None,
        options: dict[str, Any],
    ) -> None:
        self.app = app
        self.component = component
        self.config = make_config(options, use_env=True)
        self.shutdown_timeout = (
            self.config.shutdown_timeout_seconds if shutdown_timeout is None else shutdown_timeout
        )
        self._explicit = tuple(options)
        if telemetry_path is not None:  # decided here: without it, requests pay nothing
            from ._telemetry_http import serve_asgi

            outbox = self.config.resolved_outbox_path
            self.app = serve_asgi(app, telemetry_path, telemetry_token, outbox)
        self._start_on_request = True
        self._owns_runtime = False
        running = _api.get_runtime()
        if running is not None and not running.closed:
            self._start()  # join now: options that disagree with it fail here, not later

    async def not_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return await self._not_a_request(scope, receive, send)
        if not _api._enabled and not self.start_now():
            return await self.app(scope, receive, send)
        request = _AsgiRequest()
        request.scope = scope
        token = _set_request(request)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            _api.capture_error(exc, self.component)
            raise
        finally:
            request.scope = None
            _reset_request(token)

    # ------------------------------------------------------------------ runtime
    def _start(self) -> None:
        self._start_on_request = False
        if not self.config.enabled:
            return
        _, started = _commands.join_runtime(
            self.config, self._explicit, owner="ErrwireMiddleware", label=lambda name: name
        )
        self._owns_runtime = self._owns_runtime or started

    def start_now(self) -> bool:
        """A request while capture is off: without lifespan, the first one starts the
        runtime. True if capture is now on."""
        if not self._start_on_request:
            return False
        self._start()
        return _api._enabled

    async def _stop(self) -> None:
        """Deliver within the deadline: shut the runtime down if we started it, else flush."""
        timeout = self.shutdown_timeout
        owned, self._owns_runtime = self._owns_runtime, False

        def stop() -> None:
            deadline = time.monotonic() + timeout
            _api.flush(timeout)  # first: shutdown() turns capture off before it drains
            if owned:
                _api.shutdown(max(0.0, deadline - time.monotonic()))

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): block, it is the end of the process anyway
            stop()
        else:
            await loop.run_in_executor(None, stop)

    # ------------------------------------------------------------------ lifespan
    async def _not_a_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        startup_received = False
        app_answered = False
        start_failed = False

        async def observe_receive() -> Message:
            nonlocal startup_received, start_failed
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                startup_received = True
                try:
                    self._start()  # before the app's own startup code: its errors are captured
                except Exception:
                    start_failed = True  # e.g. options that conflict with a running runtime
                    raise
            return message

        async def observe_send(message: Message) -> None:
            nonlocal app_answered
            app_answered = True
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self._stop()
            await send(message)

        try:
            await self.app(scope, observe_receive, observe_send)
        except Exception as exc:
            if app_answered or start_failed:  # the app's failure, or ours: not to be hidden
                raise
            logger.debug("errwire: the app does not support ASGI lifespan (%r); answering it", exc)
        if app_answered:
            return
        # The app does not handle lifespan: answer it, so the runtime still starts and flushes.
        if not startup_received:
            await receive()
            self._start()
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self._stop()
        await send({"type": "lifespan.shutdown.complete"})


class _AsgiRequest:
    """Per-request state and the lazy snapshot (read only if something is captured).

    Made per request with no arguments and its attributes set by the middleware:
    the cheapest object Python builds. ``captured`` stays unset (read with a
    default, on the rare 5xx path only) until an event is captured."""

    __slots__ = ("captured", "scope", "server_send", "status")

    captured: bool
    scope: Scope | None
    server_send: Send
    status: int

    def send(self, message: Message) -> Awaitable[None]:
        # Not a coroutine: returns the server's awaitable, so no extra frame per await.
        # Of the http messages only http.response.start has a status; once it is seen,
        # the body messages cost one slot compare. The server's send is read into a
        # local: a call on a slot attribute (`self.server_send(...)`) is not specialised.
        if self.status == 0 and "status" in message:
            self.status = message["status"]
        server_send = self.server_send
        return server_send(message)

    def mark_captured(self) -> None:
        """An inner layer (errwire's Django middleware) captured an event for this request."""
        self.captured = True

    def was_captured(self) -> bool:
        return bool(getattr(self, "captured", False))

    def extract(self) -> dict[str, Any]:
        self.captured = True
        scope = self.scope
        if scope is None:  # the request is over (a task it started lives on)
            return {}
        client = scope.get("client")
        runtime = _api.get_runtime()
        return request_info(
            method=scope.get("method", "WEBSOCKET" if scope["type"] == "websocket" else None),
            path=scope.get("root_path", "") + scope.get("path", ""),
            route=_route(scope),
            query_string=scope.get("query_string"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            if "headers" in scope
            else None,
            client=client[0] if client else None,
            user_id=_user_id(scope),
            send_default_pii=bool(runtime and runtime.config.send_default_pii),
        )

    def report_status(self, component: str | None) -> None:
        """A 5xx answer with nothing captured: an inner handler turned an error into it."""
        scope = self.scope or {}
        where = _route(scope) or scope.get("path", "")
        _api.capture_message(
            f"HTTP {self.status} response: {scope.get('method', '')} {where}",
            "error",
            component,
            "http",
            {"status": self.status},
        )


def _route(scope: Scope) -> str | None:
    """The route template (Starlette and FastAPI put the matched route in the scope)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


def _user_id(scope: Scope) -> object:
    """Starlette's AuthenticationMiddleware puts the user in the scope."""
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "identity", None) or getattr(user, "display_name", None)
