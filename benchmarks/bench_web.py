"""Per-request overhead of errwire and sentry-sdk on hello-world Flask and Starlette.

``python -m benchmarks.bench_web [--quick] [--json]``

The WSGI / ASGI app is called directly with a prebuilt environ / scope (copied
per request, the same for every variant) and a no-op ``start_response`` /
``send``: no test client, no sockets. A round times a batch of successful
requests in process CPU time (robust to other load on the machine); values are
medians over the rounds.

* errwire: the bare app and the app with errwire are measured alternately,
  round by round, in the same process (errwire touches only the app it is set
  up on); the overhead is the median of the per-round differences.
  A third app, bare again, is measured against the first the same way: its
  "overhead" shows how much of a difference is noise on this machine.
* "errwire layer alone": errwire's per-request layer around a do-nothing
  WSGI / ASGI app against that app alone: the same cost without the
  framework's own noise. The budget verdict is given on this row.
* sentry-sdk patches the framework classes, so each of its variants runs in a
  process of its own, initialised with a dummy DSN and a transport that
  discards envelopes, with its Flask / Starlette integration: errors only (its
  default), and again with tracing (``traces_sample_rate=1.0``). Its overhead
  is its median minus the bare median.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from typing import Any

from benchmarks._harness import Run, http_scope, run_one
from benchmarks._harness import main as _main
from benchmarks._harness import sentry_available as _sentry_available
from benchmarks._harness import start_response as _start_response
from benchmarks._harness import timed as _timed
from benchmarks._harness import us as _us

FRAMEWORKS = ("flask", "starlette")
SENTRY_VARIANTS = ("sentry-sdk", "sentry-sdk + tracing")
BUDGET_NS = {"flask": 2000.0, "starlette": 1000.0}
TITLE = {"flask": "Flask", "starlette": "Starlette"}
SCOPE = http_scope("/")


def _start_errwire() -> None:
    import errwire

    errwire.init(config=errwire.Config(transport="memory", data_dir=tempfile.mkdtemp()))


def _init_sentry(framework: str, tracing: bool) -> None:
    import sentry_sdk
    from sentry_sdk.integrations import Integration
    from sentry_sdk.transport import Transport

    class Discard(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            return None

    integration: Integration
    if framework == "flask":
        from sentry_sdk.integrations.flask import FlaskIntegration

        integration = FlaskIntegration()
    else:
        from sentry_sdk.integrations.starlette import StarletteIntegration

        integration = StarletteIntegration()
    sentry_sdk.init(
        dsn="https://public@127.0.0.1/1",
        transport=Discard,
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


def _empty(exc: object) -> None:
    """The language floor: an empty Python function call with one argument."""


def _floor() -> float:
    """ns per empty function call here: the scale of this machine (the design's: ~30 ns)."""
    values = []
    for _ in range(7):
        start = time.process_time_ns()
        for _ in range(200_000):
            _empty(None)
        values.append((time.process_time_ns() - start) / 200_000)
    return min(values)


def _paired(bare: Run, errwire: Run, requests: int, rounds: int) -> dict[str, float]:
    for run in (bare, errwire):
        run(max(200, requests // 10))  # warm up: first-request setup, caches
    b: list[float] = []
    e: list[float] = []
    for _ in range(rounds):
        b.append(_timed(bare, requests))
        e.append(_timed(errwire, requests))
    return {
        "bare": statistics.median(b),
        "errwire": statistics.median(e),
        "overhead": statistics.median(y - x for x, y in zip(b, e, strict=True)),
        # best round against best round: what is left when the machine's load is least
        "overhead_min": min(e) - min(b),
        "floor": _floor(),
    }


def measure(framework: str, variant: str, requests: int, rounds: int) -> dict[str, float]:
    """What one subprocess measures (see the module docstring)."""
    if variant in SENTRY_VARIANTS:
        _init_sentry(framework, tracing="tracing" in variant)
        if framework == "flask":
            run = _wsgi_runner(_flask_app(False), _flask_environ())
        else:
            run = _asgi_runner(_starlette_app(False))
        run(max(200, requests // 10))
        return {variant: statistics.median(_timed(run, requests) for _ in range(rounds))}
    _start_errwire()
    if variant == "layer":
        if framework == "flask":
            from errwire.integrations.flask import _RequestScope

            environ = _flask_environ()
            return _paired(
                _wsgi_runner(_noop_wsgi, environ),
                _wsgi_runner(_RequestScope(_noop_wsgi), environ),
                requests * 10,
                rounds,
            )
        from errwire.integrations.asgi import ErrwireMiddleware

        return _paired(
            _asgi_runner(_noop_asgi),
            _asgi_runner(ErrwireMiddleware(_noop_asgi)),
            requests * 10,
            rounds,
        )
    if framework == "flask":
        environ = _flask_environ()
        apps = [_wsgi_runner(_flask_app(wired), environ) for wired in (False, True, False)]
    else:
        apps = [_asgi_runner(_starlette_app(wired)) for wired in (False, True, False)]
    result = _paired(apps[0], apps[1], requests, rounds)
    # the same measurement of two identical bare apps: how much of the difference is noise
    result["noise"] = _paired(apps[0], apps[2], requests, rounds)["overhead"]
    return result


# ----------------------------------------------------------------------------- driver


def run_all(quick: bool) -> dict[str, dict[str, dict[str, float]]]:
    requests, rounds = (1000, 5) if quick else (5000, 31)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for framework in FRAMEWORKS:
        results[framework] = {
            "errwire": _one(framework, "errwire", requests, rounds),
            "layer": _one(framework, "layer", requests, rounds),
        }
        if _sentry_available():  # two orders of magnitude slower: fewer, shorter rounds
            for variant in SENTRY_VARIANTS:
                results[framework][variant] = _one(
                    framework, variant, max(200, requests // 10), min(rounds, 9)
                )
    return results


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    rows = [
        "| per request | median | overhead | target | result |",
        "|---|---|---|---|---|",
    ]
    for framework, found in results.items():
        title, budget = TITLE[framework], BUDGET_NS[framework]
        target = f"<= {budget / 1000:g} us"
        paired = found["errwire"]
        bare = paired["bare"]
        rows.append(f"| {title} hello world, bare | {_us(bare)} | | | |")
        rows.append(
            f"| {title} hello world, errwire | {_us(paired['errwire'])} | "
            f"{paired['overhead'] / 1000:+.2f} us | | |"
        )
        rows.append(
            f"| {title} hello world, bare again (noise of the line above) | | "
            f"{paired['noise'] / 1000:+.2f} us | | |"
        )
        layer = found["layer"]["overhead"]
        best = found["layer"]["overhead_min"]
        rows.append(
            f"| {title}: errwire layer alone (do-nothing app) | | {layer / 1000:+.2f} us "
            f"(best rounds: {best / 1000:+.2f} us) | {target} | "
            f"{'pass' if layer <= budget else 'miss'} |"
        )
        for variant in SENTRY_VARIANTS:
            if variant in found:
                value = found[variant][variant]
                rows.append(
                    f"| {title} hello world, {variant} | {_us(value)} | "
                    f"{(value - bare) / 1000:+.2f} us | | |"
                )
    floor = min(found["errwire"]["floor"] for found in results.values())
    rows.append(
        f"\nAn empty Python function call took {floor:.0f} ns on this machine during the run "
        "(the design's reference machine: ~30 ns); the overheads scale with it."
    )
    return "\n".join(rows)


def _one(target: str, variant: str, requests: int, rounds: int) -> dict[str, float]:
    return run_one("benchmarks.bench_web", target, variant, requests, rounds)


def main() -> int:
    return _main("benchmarks.bench_web", __doc__, "FRAMEWORK", measure, run_all, table)


if __name__ == "__main__":
    sys.exit(main())
