"""ErrwireMiddleware in real frameworks: Starlette, FastAPI, Django's ASGI handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import errwire
from errwire import _api
from errwire._transport import Payload
from errwire.integrations.asgi import ErrwireMiddleware

from .conftest import Recorder, get, http_scope, run, serving

ROOT = Path(__file__).resolve().parents[3]


class CardDeclined(Exception):
    pass


class Throttled(Exception):
    pass


def _short(event: Payload) -> str:
    exc = event["exception"]
    return str(exc["type"].rsplit(".", 1)[-1] if exc else event["message"])


# ----------------------------------------------------------------------------- Starlette
def starlette_app(**options: Any) -> Starlette:
    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def pay(request: Request) -> Response:
        raise CardDeclined(f"order {request.path_params['order_id']}")

    async def throttled(request: Request) -> Response:
        raise Throttled("upstream busy")

    async def missing(request: Request) -> Response:
        raise HTTPException(404)

    def fail_later() -> None:
        raise RuntimeError("background job failed")

    async def with_background(request: Request) -> Response:
        return PlainTextResponse("accepted", background=BackgroundTask(fail_later))

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        raise CardDeclined("socket")

    async def throttled_handler(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "busy"}, status_code=503)

    return Starlette(
        routes=[
            Route("/ok", ok),
            Route("/orders/{order_id:int}/pay", pay),
            Route("/throttled", throttled),
            Route("/missing", missing),
            Route("/background", with_background),
            WebSocketRoute("/ws", socket),
        ],
        exception_handlers={Throttled: throttled_handler},
        middleware=[Middleware(ErrwireMiddleware, **options)],
    )


def test_starlette_captures_errors_handled_5xx_and_background_tasks(
    events: list[Payload],
) -> None:
    app = starlette_app()

    async def scenario() -> list[int]:
        return [
            (await get(app, url)).status_code
            for url in ("/ok", "/missing", "/orders/42/pay?coupon=x", "/throttled", "/background")
        ]

    # a client error; a crash; an error an inner handler turned into a 503; a background job
    assert run(scenario()) == [200, 404, 500, 503, 200]
    errwire.flush()
    by_kind = {_short(e): e for e in events}
    assert sorted(by_kind) == ["CardDeclined", "HTTP 503 response: GET /throttled", "RuntimeError"]
    assert len(events) == 3
    crash = by_kind["CardDeclined"]["request"]
    assert crash["route"] == "/orders/{order_id:int}/pay"
    assert crash["path"] == "/orders/42/pay"
    assert crash["query"] == {"coupon": "[REDACTED]"}
    assert by_kind["RuntimeError"]["request"]["path"] == "/background"


def test_starlette_websocket_errors(events: list[Payload]) -> None:
    scope = {**http_scope("/ws"), "type": "websocket", "scheme": "ws", "subprotocols": []}
    del scope["method"]
    recorder = Recorder({"type": "websocket.connect"})
    with pytest.raises(CardDeclined):
        run(starlette_app()(scope, recorder.receive, recorder.send))
    assert recorder.types[0] == "websocket.accept"
    errwire.flush()
    assert [_short(e) for e in events] == ["CardDeclined"]
    assert events[0]["request"]["method"] == "WEBSOCKET"
    assert events[0]["request"]["route"] == "/ws"


def test_starlette_lifespan_starts_and_stops_the_runtime(data_dir: str) -> None:
    seen: list[bool] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        seen.append(_api.is_enabled())  # errwire is on while the app's startup runs
        yield

    async def boom(request: Request) -> Response:
        raise CardDeclined("x")

    app = Starlette(
        routes=[Route("/boom", boom)],
        lifespan=lifespan,
        middleware=[Middleware(ErrwireMiddleware, transport="memory", data_dir=data_dir)],
    )
    runtimes: list[Any] = []

    async def scenario() -> int:
        async with serving(app) as client:
            runtimes.append(_api.get_runtime())
            return (await client.get("/boom")).status_code

    assert run(scenario()) == 500
    assert seen == [True]
    runtime = runtimes[0]
    assert runtime is not None and runtime.closed and _api.get_runtime() is None
    assert runtime.counters()["delivered"] == 1  # delivered during lifespan shutdown


def test_starlette_exceptions_reach_the_server(events: list[Payload]) -> None:
    with pytest.raises(CardDeclined):
        run(get(starlette_app(), "/orders/1/pay", raise_app_exceptions=True))
    errwire.flush()
    assert len(events) == 1


# ----------------------------------------------------------------------------- FastAPI
def test_fastapi(events: list[Payload]) -> None:
    app = fastapi.FastAPI()
    app.add_middleware(ErrwireMiddleware, component="api")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise fastapi.HTTPException(status_code=404, detail="no such item")
        raise CardDeclined(f"item {item_id}")

    async def scenario() -> list[int]:
        return [(await get(app, f"/items/{i}")).status_code for i in ("0", "abc", "5")]

    assert run(scenario()) == [404, 422, 500]
    errwire.flush()
    assert [_short(e) for e in events] == ["CardDeclined"]
    assert events[0]["component"] == "api"
    assert events[0]["request"]["route"] == "/items/{item_id}"


# ----------------------------------------------------------------------------- Django
def test_django_asgi_handler(data_dir: str) -> None:
    """Django's ``get_asgi_application()`` wrapped; run in its own process because
    Django's settings are process-wide and other tests configure their own."""
    pytest.importorskip("django", reason="Django is not installed in this environment")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integrations.asgi.django_probe", data_dir],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith(("ERRWIRE_", "DJANGO_"))},
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["lifespan"] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert result["statuses"] == {"/ok": 200, "/boom/7": 500, "/nope": 404}
    # Django turns the view's exception into a 500 itself: reported as that response
    assert result["events"] == [
        {"message": "HTTP 500 response: GET /boom/7", "path": "/boom/7", "level": "error"}
    ]
    assert result["runtime_after_shutdown"] is None
