"""Per-request overhead of errwire's Django middleware and of sentry-sdk's Django
integration, on a hello-world view, under WSGI and ASGI.

``python -m benchmarks.bench_django [--quick] [--json]``

Django's own handlers are called directly: ``WSGIHandler`` with a prebuilt
environ (copied per request) and a no-op ``start_response``, the response
iterated and closed as a server would; ``ASGIHandler`` with a prebuilt scope, a
``receive`` that delivers the (empty) body and then waits for a disconnect that
never comes, and a no-op ``send``. No test client, no sockets. The view is sync
under WSGI and async under ASGI, so each stack runs its native mode. A round
times a batch of requests in process CPU time (all threads: Django's ASGI
handler hops to a thread to close each response), with the garbage collector
off as in ``timeit``; values are medians over the rounds.

* errwire: three handlers in one process (the app in ``INSTALLED_APPS``, the
  runtime started by ``AppConfig.ready()``): the bare project, the project
  with a do-nothing middleware of the same shape (what Django charges for any
  one middleware: its exception-converting wrapper and a call), and the
  project with ``ErrwireMiddleware``; measured in turn, round by round, the
  order rotating; overheads are medians of the per-round differences, shown
  with half their interquartile range. The verdict is "within noise" when that
  range straddles the budget. errwire patches nothing, so the other handlers
  are untouched by it.
* "middleware layer alone": ``ErrwireMiddleware`` around a do-nothing
  ``get_response`` against that callable alone: errwire's own cost without
  Django's per-middleware wrapper and without the framework's noise.
* sentry-sdk patches Django's classes at ``init``, so it runs in a process of
  its own: initialised with a dummy DSN, a transport that discards envelopes
  and its Django integration, errors only (its default), and again with
  tracing (``traces_sample_rate=1.0``). Its overhead is its median minus the
  bare median measured in that same process before ``init``.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.urls import path

from benchmarks._harness import Run, http_scope, run_one
from benchmarks._harness import main as _main
from benchmarks._harness import sentry_available as _sentry_available
from benchmarks._harness import start_response as _start_response
from benchmarks._harness import timed as _timed
from benchmarks._harness import us as _us

STACKS = ("wsgi", "asgi")
SENTRY_VARIANTS = ("sentry-sdk", "sentry-sdk + tracing")
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


def _paired(bare: Run, errwire: Run, requests: int, rounds: int) -> dict[str, float]:
    return _compared({"bare": bare, "errwire": errwire}, requests, rounds)


def _compared(runs: dict[str, Run], requests: int, rounds: int) -> dict[str, float]:
    """Medians per variant, and of the per-round differences against "bare"."""
    for run in runs.values():
        run(max(200, requests // 10))  # warm up: first-request setup, caches
    names = list(runs)
    values: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)  # rotate the order: no variant always runs first
        for name in names[shift:] + names[:shift]:
            values[name].append(_timed(runs[name], requests))
    result = {name: statistics.median(found) for name, found in values.items()}

    def difference(key: str, base: str, name: str) -> None:
        diffs = [y - x for x, y in zip(values[base], values[name], strict=True)]
        result[key] = statistics.median(diffs)
        q1, _, q3 = statistics.quantiles(diffs, n=4)
        result[f"{key}_spread"] = (q3 - q1) / 2  # half the interquartile range

    for name in names[1:]:
        difference(f"{name}_overhead", "bare", name)
    if "pass_through" in values:
        difference("errwire_over_pass_through", "pass_through", "errwire")
    result["overhead"] = result["errwire_overhead"]
    result["overhead_spread"] = result["errwire_overhead_spread"]
    return result


def verdict(overhead: float, spread: float) -> str:
    """pass / miss against the budget, or "within noise" when the spread of the
    per-round differences straddles it (a loaded machine cannot resolve it)."""
    if overhead + spread <= BUDGET_NS:
        return "pass"
    if overhead - spread > BUDGET_NS:
        return "miss"
    return "within noise"


def _init_sentry(tracing: bool) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.transport import Transport

    class Discard(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            return None

    sentry_sdk.init(
        dsn="https://public@127.0.0.1/1",
        transport=Discard,
        integrations=[DjangoIntegration()],
        traces_sample_rate=1.0 if tracing else None,
    )


def measure(stack: str, variant: str, requests: int, rounds: int) -> dict[str, float]:
    """What one subprocess measures (see the module docstring)."""
    if variant in SENTRY_VARIANTS:
        _setup_django(with_errwire_app=False)
        bare = _runner(stack, _handler(stack, []))
        bare(max(200, requests // 10))
        bare_median = statistics.median(_timed(bare, requests) for _ in range(rounds))
        _init_sentry(tracing="tracing" in variant)
        run = _runner(stack, _handler(stack, []))
        run(max(200, requests // 10))
        value = statistics.median(_timed(run, requests) for _ in range(rounds))
        return {"bare": bare_median, variant: value, "overhead": value - bare_median}
    _setup_django(with_errwire_app=True)
    import errwire

    assert errwire.is_enabled(), "AppConfig.ready() should have started errwire"
    if variant == "layer":
        bare, layered = _layer_runners(stack)
        return _paired(bare, layered, requests * 10, rounds)
    runs = {
        "bare": _runner(stack, _handler(stack, [])),
        "pass_through": _runner(stack, _handler(stack, [PASS_THROUGH])),
        "errwire": _runner(stack, _handler(stack, [MIDDLEWARE])),
    }
    return _compared(runs, requests, rounds)


# ----------------------------------------------------------------------------- driver


def run_all(quick: bool) -> dict[str, dict[str, dict[str, float]]]:
    sizes = (
        {"wsgi": (500, 5), "asgi": (100, 5)} if quick else {"wsgi": (2000, 21), "asgi": (300, 21)}
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for stack in STACKS:
        requests, rounds = sizes[stack]
        results[stack] = {
            "errwire": _one(stack, "errwire", requests, rounds),
            "layer": _one(stack, "layer", requests, rounds),
        }
        if _sentry_available():
            for variant in SENTRY_VARIANTS:
                results[stack][variant] = _one(stack, variant, requests, rounds)
    return results


def _pm(ns: float, spread: float) -> str:
    """A median difference with half its interquartile range."""
    return f"{ns / 1000:+.2f} ± {spread / 1000:.2f} us"


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    rows = [
        "| per request | median | overhead | target | result |",
        "|---|---|---|---|---|",
    ]
    target = f"<= {BUDGET_NS / 1000:g} us"
    for stack, found in results.items():
        title = f"Django {stack.upper()} hello world"
        paired = found["errwire"]
        overhead = paired["overhead"]
        rows.append(f"| {title}, bare | {_us(paired['bare'])} | | | |")
        rows.append(
            f"| {title}, a do-nothing middleware (Django's cost of any one) | "
            f"{_us(paired['pass_through'])} | "
            f"{_pm(paired['pass_through_overhead'], paired['pass_through_overhead_spread'])} | | |"
        )
        over_floor = _pm(
            paired["errwire_over_pass_through"], paired["errwire_over_pass_through_spread"]
        )
        rows.append(
            f"| {title}, errwire middleware | {_us(paired['errwire'])} | "
            f"{_pm(overhead, paired['overhead_spread'])} (vs do-nothing: {over_floor})"
            f" | {target} | {verdict(overhead, paired['overhead_spread'])} |"
        )
        layer = found["layer"]
        rows.append(
            f"| Django {stack.upper()}: ErrwireMiddleware alone (do-nothing view) | | "
            f"{_pm(layer['overhead'], layer['overhead_spread'])} | {target} | "
            f"{verdict(layer['overhead'], layer['overhead_spread'])} |"
        )
        for variant in SENTRY_VARIANTS:
            if variant in found:
                got = found[variant]
                rows.append(
                    f"| {title}, {variant} (bare in its process: {_us(got['bare'])}) | "
                    f"{_us(got[variant])} | {got['overhead'] / 1000:+.2f} us | | |"
                )
    return "\n".join(rows)


def _one(target: str, variant: str, requests: int, rounds: int) -> dict[str, float]:
    return run_one("benchmarks.bench_django", target, variant, requests, rounds)


def main() -> int:
    return _main("benchmarks.bench_django", __doc__, "STACK", measure, run_all, table)


if __name__ == "__main__":
    sys.exit(main())
