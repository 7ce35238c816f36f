"""Per-request overhead (scenario 8) on hello-world Flask and Starlette: errwire,
sentry-sdk's integrations and OpenTelemetry's WSGI / ASGI middleware.

The WSGI / ASGI app is called directly with a prebuilt environ / scope (copied
per request, the same for every variant) and a no-op ``start_response`` /
``send``: no test client, no sockets. A round times a batch of successful
requests in process CPU time (robust to other load on the machine), the
garbage collector off; values are medians over the rounds.

Each side runs in its own process (``python -m benchmarks`` interleaves them):

* errwire: the bare app, the app with errwire and the bare app again are
  measured in turn, round by round, in the same process (errwire touches only
  the app it is set up on); the overhead is the median of the per-round
  differences, with half their interquartile range. Then errwire's
  per-request layer alone around a do-nothing WSGI / ASGI app against that app,
  with the language floor (an empty Python function call, the loop included)
  timed in the same rounds: the machine's speed drifts between runs, the ratio
  of the overhead to the floor much less.
* sentry-sdk patches the framework classes for the whole process: the bare app
  is timed first, then ``sentry_sdk.init`` with a dummy DSN, a transport that
  discards envelopes and its Flask / Starlette integration: errors only (its
  default), or with tracing (``traces_sample_rate=1.0``).
* OpenTelemetry: the SDK's ``TracerProvider`` with a ``BatchSpanProcessor`` and
  an exporter that discards; the app wrapped in ``OpenTelemetryMiddleware``
  (opentelemetry-instrumentation-wsgi for Flask, -asgi for Starlette), timed
  alternately with the bare app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from typing import Any

from ._fixtures import empty, sentry_init
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
    verdict,
)
from ._harness import start_response as _start_response
from ._registry import (
    Job,
    Mode,
    Results,
    Row,
    Scenario,
    Side,
    at_this_speed,
    fmt_ns,
    median_of,
    scaled_target,
    scaled_verdict,
)

__all__ = ["measure_side", "scenarios"]

FRAMEWORKS = ("flask", "starlette")
SIDES = ("errwire", "sentry-sdk", "sentry-sdk + tracing", "opentelemetry")
BUDGET_NS = {"flask": 2000.0, "starlette": 1000.0}
TITLE = {"flask": "Flask", "starlette": "Starlette"}
SCOPE = http_scope("/")
FLOOR_CALLS = 20  # empty calls per "request" of the floor: rounds long enough to time


def _start_errwire() -> None:
    import errwire

    errwire.init(config=errwire.Config(transport="memory", data_dir=tempfile.mkdtemp()))


def _init_sentry(framework: str, tracing: bool) -> None:
    from sentry_sdk.integrations import Integration

    integration: Integration
    if framework == "flask":
        from sentry_sdk.integrations.flask import FlaskIntegration

        integration = FlaskIntegration()
    else:
        from sentry_sdk.integrations.starlette import StarletteIntegration

        integration = StarletteIntegration()
    sentry_init(
        dsn="https://public@127.0.0.1/1",
        transport=discard_transport(),
        integrations=[integration],
        traces_sample_rate=1.0 if tracing else None,
    )


# ----------------------------------------------------------------------------- WSGI


def _wsgi_runner(app: Any, environ: dict[str, Any]) -> Run:
    def run(n: int) -> None:
        for _ in range(n):
            body = app(environ.copy(), _start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return run


def _flask_app(with_errwire: bool) -> Any:
    from flask import Flask

    app = Flask("bench")

    @app.route("/")
    def index() -> str:
        return "hello"

    if with_errwire:
        from errwire.integrations.flask import Errwire

        Errwire(app)  # joins the runtime _start_errwire() started
    return app


def _flask_environ() -> dict[str, Any]:
    from werkzeug.test import EnvironBuilder

    environ: dict[str, Any] = EnvironBuilder(path="/").get_environ()
    return environ


def _noop_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"hello"]


# ----------------------------------------------------------------------------- ASGI
async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None


def _asgi_runner(app: Any) -> Run:
    async def many(n: int) -> None:
        for _ in range(n):
            await app(dict(SCOPE), _receive, _send)

    loop = asyncio.new_event_loop()

    def run(n: int) -> None:
        loop.run_until_complete(many(n))

    return run


def _starlette_app(with_errwire: bool) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def index(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    middleware = []
    if with_errwire:
        from errwire.integrations.asgi import ErrwireMiddleware

        middleware.append(Middleware(ErrwireMiddleware))
    return Starlette(routes=[Route("/", index)], middleware=middleware)


async def _noop_asgi(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


# ----------------------------------------------------------------------------- measuring


def _floor() -> Run:
    """The language floor, FLOOR_CALLS empty calls per request (divided out in the rows)."""
    exc = RuntimeError("floor")

    def run(n: int) -> None:
        for _ in range(n * FLOOR_CALLS):
            empty(exc)

    return run


def _app(framework: str, with_errwire: bool = False) -> Any:
    return _flask_app(with_errwire) if framework == "flask" else _starlette_app(with_errwire)


def _run(framework: str, app: Any, environ: dict[str, Any]) -> Run:
    return _wsgi_runner(app, environ) if framework == "flask" else _asgi_runner(app)


def _otel(framework: str, environ: dict[str, Any]) -> Run:
    otel_tracer_provider()
    if framework == "flask":
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

        app = _flask_app(False)
        app.wsgi_app = OpenTelemetryMiddleware(app.wsgi_app)
        return _wsgi_runner(app, environ)
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as Asgi

    return _asgi_runner(Asgi(_starlette_app(False)))


def measure_side(framework: str, side: str, mode: Mode) -> dict[str, Any]:
    """What one side measures, in this process (see the module docstring)."""
    requests, rounds, _ = sizes(mode)
    environ = _flask_environ() if framework == "flask" else {}
    bare = _run(framework, _app(framework), environ)
    if side in ("sentry-sdk", "sentry-sdk + tracing"):
        peer_requests = max(20, requests // 10)  # two orders of magnitude slower

        def sentry() -> Run:
            _init_sentry(framework, tracing="tracing" in side)
            return _run(framework, _app(framework), environ)

        return peer_measure(bare, sentry, peer_requests, rounds, patches=True)
    if side == "opentelemetry":
        return peer_measure(
            bare, lambda: _otel(framework, environ), max(20, requests // 5), rounds, patches=False
        )
    _start_errwire()
    app = compared(
        {
            "bare": bare,
            "errwire": _run(framework, _app(framework, True), environ),
            "again": _run(framework, _app(framework), environ),
        },
        requests,
        rounds,
    )
    if framework == "flask":
        from errwire.integrations.flask import _RequestScope

        layer = compared(
            {
                "bare": _wsgi_runner(_noop_wsgi, environ),
                "errwire": _wsgi_runner(_RequestScope(_noop_wsgi), environ),
                "floor": _floor(),
            },
            requests * 10,
            rounds,
        )
    else:
        from errwire.integrations.asgi import ErrwireMiddleware

        layer = compared(
            {
                "bare": _asgi_runner(_noop_asgi),
                "errwire": _asgi_runner(ErrwireMiddleware(_noop_asgi)),
                "floor": _floor(),
            },
            requests * 10,
            rounds,
        )
    return {"app": app, "layer": layer}


# ----------------------------------------------------------------------------- scenarios


def _with_floor(rows: list[Row], budget: float, results: Results) -> list[Row]:
    """The floor columns on errwire's rows (overhead over an empty call timed in the
    same rounds as errwire's layer), and the budget judged at this machine's speed.

    The budgets are the design's, set on a machine where an empty call costs
    ``REFERENCE_CALL_NS``; here the same call costs ``floor``, so the budget is
    scaled (``at_this_speed``; the verdict against the absolute budget is kept
    beside it when they differ). Runs that predate the floor keep
    the absolute verdict and empty floor columns."""
    layers = [run["layer"] for run in results.get("errwire", ()) if "floor" in run["layer"]]
    if not layers:
        return rows
    floor = median_of(layers, "floor") / FLOOR_CALLS
    scaled = at_this_speed(budget, floor)
    app = [run["app"] for run in results["errwire"]]
    values = {
        "app": (median_of(app, "errwire_overhead"), median_of(app, "errwire_overhead_spread")),
        "layer": (
            median_of(layers, "errwire_overhead"),
            median_of(layers, "errwire_overhead_spread"),
        ),
    }
    target = scaled_target(f"<= {budget / 1000:g} µs", floor, fmt_ns(scaled))
    out = []
    for row in rows:
        if not row.target:  # the noise row
            out.append(row)
            continue
        value, spread = values["layer" if "layer alone" in row.scenario else "app"]
        over = f"{value / floor:.0f}x" if value > 0 else ""  # below noise: no ratio
        result = scaled_verdict(verdict(value, spread, scaled), row.result, f"{budget / 1000:g} µs")
        out.append(
            dataclasses.replace(
                row, floor=fmt_ns(floor), over_floor=over, target=target, result=result
            )
        )
    return out


def scenarios(mode: Mode) -> list[Scenario]:
    out = []
    for framework in FRAMEWORKS:
        title, budget = TITLE[framework], BUDGET_NS[framework]
        integration = "FlaskIntegration" if framework == "flask" else "StarletteIntegration"
        otel = "-wsgi" if framework == "flask" else "-asgi"
        labels = {
            side: PEERS[side].format(integration=integration, otel=otel) for side in SIDES[1:]
        }

        def rows(
            results: Results, title: str = title, budget: float = budget,
            labels: dict[str, str] = labels, framework: str = framework,
        ) -> list[Row]:  # fmt: skip
            layer = "do-nothing WSGI app" if framework == "flask" else "do-nothing ASGI app"
            rows = request_rows(
                f"{title} hello world", budget, results, labels, layer,
                [("again", "the bare app again (noise of the row above)", "")],
            )  # fmt: skip
            return _with_floor(rows, budget, results)

        sides = [
            Side(side, Job("benchmarks.bench_web", "measure_side",
                           {"framework": framework, "side": side, "mode": mode}))
            for side in SIDES
        ]  # fmt: skip
        out.append(Scenario(f"8-{framework}", sides, rows, rounds=sizes(mode)[2]))
    return out
