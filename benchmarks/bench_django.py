"""Per-request overhead (scenario 8) of errwire's Django middleware, sentry-sdk's
Django integration and OpenTelemetry's WSGI / ASGI middleware, on a hello-world
view, under WSGI and ASGI.

Django's own handlers are called directly: ``WSGIHandler`` with a prebuilt
environ (copied per request) and a no-op ``start_response``, the response
iterated and closed as a server would; ``ASGIHandler`` with a prebuilt scope, a
``receive`` that delivers the (empty) body and then waits for a disconnect that
never comes, and a no-op ``send``. No test client, no sockets. The view is sync
under WSGI and async under ASGI, so each stack runs its native mode. A round
times a batch of requests in process CPU time (all threads: Django's ASGI
handler hops to a thread to close each response), with the garbage collector
off as in ``timeit``; values are medians over the rounds.

Each side runs in its own process (``python -m benchmarks`` interleaves them):

* errwire: three handlers in one process (the app in ``INSTALLED_APPS``, the
  runtime started by ``AppConfig.ready()``): the bare project, the project
  with a do-nothing middleware of the same shape (what Django charges for any
  one middleware: its exception-converting wrapper and a call), and the
  project with ``ErrwireMiddleware``; measured in turn, round by round, the
  order rotating; overheads are medians of the per-round differences, shown
  with half their interquartile range. The verdict is "within noise" when that
  range straddles the budget. errwire patches nothing, so the other handlers
  are untouched by it. Then ``ErrwireMiddleware`` around a do-nothing
  ``get_response`` against that callable alone: errwire's own cost without
  Django's per-middleware wrapper and without the framework's noise.
* sentry-sdk patches Django's classes at ``init``: the bare project is timed
  first, then ``sentry_sdk.init`` with a dummy DSN, a transport that discards
  envelopes and its Django integration, errors only (its default), or with
  tracing (``traces_sample_rate=1.0``).
* OpenTelemetry: the SDK's ``TracerProvider`` with a ``BatchSpanProcessor`` and
  an exporter that discards; the handler wrapped in ``OpenTelemetryMiddleware``
  (opentelemetry-instrumentation-wsgi / -asgi), timed alternately with the bare
  handler.
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.urls import path

from ._fixtures import sentry_init
from ._harness import (
    PEERS,
    Run,
    compared,
    discard_transport,
    http_scope,
    otel_tracer_provider,
    peer_measure,
    request_rows,
    sizes,
)
from ._harness import start_response as _start_response
from ._registry import Job, Mode, Results, Row, Scenario, Side

__all__ = ["PassThrough", "measure_side", "scenarios", "urlpatterns"]

STACKS = ("wsgi", "asgi")
SIDES = ("errwire", "sentry-sdk", "sentry-sdk + tracing", "opentelemetry")
BUDGET_NS = 2000.0
MIDDLEWARE = "errwire.integrations.django.middleware.ErrwireMiddleware"
PASS_THROUGH = "benchmarks.bench_django.PassThrough"


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


async def hello_async(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


urlpatterns = [path("", hello), path("async/", hello_async)]


class PassThrough:
    """A do-nothing middleware shaped like ErrwireMiddleware: Django's cost of one."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> Any:
        return await self.get_response(request)


def _setup_django(with_errwire_app: bool) -> None:
    import django
    from django.conf import settings

    apps = ["errwire.integrations.django"] if with_errwire_app else []
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="benchmarks.bench_django",
        INSTALLED_APPS=apps,
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
        ERRWIRE={"TRANSPORT": "memory", "DATA_DIR": tempfile.mkdtemp(prefix="errwire-bench-")},
    )
    django.setup()


def _handler(stack: str, middleware: list[str]) -> Any:
    from django.conf import settings
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler

    settings.MIDDLEWARE = middleware  # read once, when the handler loads its middleware
    return WSGIHandler() if stack == "wsgi" else ASGIHandler()


# ----------------------------------------------------------------------------- WSGI
ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "SERVER_NAME": "localhost",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "localhost",
    "HTTP_USER_AGENT": "bench",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.input": io.BytesIO(b""),
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


def _wsgi_runner(app: Any) -> Run:
    def run(n: int) -> None:
        for _ in range(n):
            response = app(ENVIRON.copy(), _start_response)
            for _chunk in response:
                pass
            response.close()

    return run


# ----------------------------------------------------------------------------- ASGI
SCOPE = http_scope("/async/")
_BODY = {"type": "http.request", "body": b"", "more_body": False}


class _Receive:
    """The body once; then a disconnect that never comes (Django cancels the wait)."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False

    async def __call__(self) -> dict[str, Any]:
        if not self.sent:
            self.sent = True
            return _BODY
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")


async def _send(message: Any) -> None:
    return None


def _asgi_runner(app: Any) -> Run:
    async def many(n: int) -> None:
        for _ in range(n):
            await app(dict(SCOPE), _Receive(), _send)

    loop = asyncio.new_event_loop()

    def run(n: int) -> None:
        loop.run_until_complete(many(n))

    return run


def _runner(stack: str, app: Any) -> Run:
    return _wsgi_runner(app) if stack == "wsgi" else _asgi_runner(app)


# ----------------------------------------------------------------------------- the layer alone
def _layer_runners(stack: str) -> tuple[Run, Run]:
    from errwire.integrations.django.middleware import ErrwireMiddleware

    request = HttpRequest()
    request.method, request.path = "GET", "/"
    response = HttpResponse("hello")
    if stack == "wsgi":

        def inner(request: HttpRequest) -> HttpResponse:
            return response

        def calls(fn: Callable[[HttpRequest], Any]) -> Run:
            def run(n: int) -> None:
                for _ in range(n):
                    fn(request)

            return run

        return calls(inner), calls(ErrwireMiddleware(inner))

    async def ainner(request: HttpRequest) -> HttpResponse:
        return response

    def acalls(fn: Callable[[HttpRequest], Any]) -> Run:
        async def many(n: int) -> None:
            for _ in range(n):
                await fn(request)

        loop = asyncio.new_event_loop()
        return lambda n: loop.run_until_complete(many(n))

    return acalls(ainner), acalls(ErrwireMiddleware(ainner))


# ----------------------------------------------------------------------------- measuring


def _init_sentry(tracing: bool) -> None:
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_init(
        dsn="https://public@127.0.0.1/1",
        transport=discard_transport(),
        integrations=[DjangoIntegration()],
        traces_sample_rate=1.0 if tracing else None,
    )


def _otel(stack: str) -> Run:
    otel_tracer_provider()
    if stack == "wsgi":
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

        return _runner(stack, OpenTelemetryMiddleware(_handler(stack, [])))
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as Asgi

    return _runner(stack, Asgi(_handler(stack, [])))


def measure_side(stack: str, side: str, mode: Mode) -> dict[str, Any]:
    """What one side measures, in this process (see the module docstring)."""
    requests, rounds, _ = sizes(mode)
    if stack == "asgi":
        requests = max(20, requests // 5)  # an event loop turn and a thread hop per request
    if side != "errwire":
        _setup_django(with_errwire_app=False)
        bare = _runner(stack, _handler(stack, []))
        if side == "opentelemetry":
            return peer_measure(bare, lambda: _otel(stack), requests // 2, rounds, patches=False)

        def sentry() -> Run:
            _init_sentry(tracing="tracing" in side)
            return _runner(stack, _handler(stack, []))

        return peer_measure(bare, sentry, max(20, requests // 10), rounds, patches=True)
    _setup_django(with_errwire_app=True)
    import errwire

    assert errwire.is_enabled(), "AppConfig.ready() should have started errwire"
    app = compared(
        {
            "bare": _runner(stack, _handler(stack, [])),
            "pass_through": _runner(stack, _handler(stack, [PASS_THROUGH])),
            "errwire": _runner(stack, _handler(stack, [MIDDLEWARE])),
        },
        requests,
        rounds,
    )
    # errwire over the do-nothing middleware: Django's cost of any middleware taken out
    app["over_pass_through_overhead"] = app["errwire_overhead"] - app["pass_through_overhead"]
    app["over_pass_through_overhead_spread"] = app["errwire_overhead_spread"]
    bare, layered = _layer_runners(stack)
    layer = compared({"bare": bare, "errwire": layered}, requests * 10, rounds)
    return {"app": app, "layer": layer}


# ----------------------------------------------------------------------------- scenarios


def scenarios(mode: Mode) -> list[Scenario]:
    labels = {
        side: PEERS[side].format(integration="DjangoIntegration", otel="-wsgi / -asgi (per stack)")
        for side in SIDES[1:]
    }
    out = []
    for stack in STACKS:

        def rows(results: Results, stack: str = stack) -> list[Row]:
            return request_rows(
                f"Django {stack.upper()} hello world", BUDGET_NS, results, labels,
                "do-nothing get_response",
                [("pass_through", "a do-nothing middleware (Django's cost of any one)", ""),
                 ("over_pass_through", "errwire over that do-nothing middleware", "")],
            )  # fmt: skip

        sides = [
            Side(side, Job("benchmarks.bench_django", "measure_side",
                           {"stack": stack, "side": side, "mode": mode}))
            for side in SIDES
        ]  # fmt: skip
        out.append(Scenario(f"8-django-{stack}", sides, rows, rounds=sizes(mode)[2]))
    return out
