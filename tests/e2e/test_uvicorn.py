"""ErrwireMiddleware under a real uvicorn server, in its own process.

The fixture writes a small Starlette app, starts uvicorn on 127.0.0.1 with a free
port, waits for it to say it is running, and stops it by its PID (SIGINT: a
graceful shutdown, so lifespan shutdown runs). Events go to the local SQLite
sink, read after the server has exited.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from errwire._local import read_events
from tests.support.uvicorn_server import UvicornServer, running_uvicorn

pytestmark = pytest.mark.e2e

APP = """
import errwire
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from errwire.integrations.asgi import ErrwireMiddleware


async def ok(request: Request) -> PlainTextResponse:
    errwire.capture_message("ok seen", level="error")
    return PlainTextResponse(str(request.client.port))


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError(f"boom {request.path_params['n']}")


class Busy(Exception):
    pass


async def busy(request: Request) -> PlainTextResponse:
    raise Busy()


async def busy_handler(request: Request, exc: Exception) -> PlainTextResponse:
    return PlainTextResponse("busy", status_code=503)


app = ErrwireMiddleware(
    Starlette(
        routes=[Route("/ok", ok), Route("/boom/{n:int}", boom), Route("/busy/{n:int}", busy)],
        exception_handlers={Busy: busy_handler},
    ),
    component="e2e",
)
"""


@pytest.fixture
def uvicorn_server(tmp_path: Path) -> Iterator[UvicornServer]:
    (tmp_path / "e2e_app.py").write_text(textwrap.dedent(APP))
    with running_uvicorn("e2e_app:app", tmp_path) as server:
        yield server


def test_errors_under_uvicorn(uvicorn_server: UvicornServer) -> None:
    # One keep-alive connection: the request context must not leak between its requests.
    limits = httpx.Limits(max_connections=1)
    with httpx.Client(base_url=uvicorn_server.url, limits=limits) as client:
        statuses = [client.get(url).status_code for url in ("/ok", "/busy/1", "/ok", "/busy/2")]
        ports = {client.get("/ok").text for _ in range(2)}
    assert statuses == [200, 503, 200, 503]
    assert len(ports) == 1  # the same client port: one connection
    # A crash after the 500 was sent: uvicorn logs it and closes that connection.
    for n in (1, 2):
        with httpx.Client(base_url=uvicorn_server.url) as client:
            assert client.get(f"/boom/{n}").status_code == 500
    assert uvicorn_server.stop() == 0
    log = uvicorn_server.output.decode()
    assert log.count("Exception in ASGI application") == 2  # re-raised: the server still logs
    assert "Application shutdown complete" in log
    # Delivered during lifespan shutdown, before the process exited.
    events = read_events(str(uvicorn_server.data_dir / "events.sqlite3"), limit=1000)
    seen = sorted(
        (e["request"]["path"], e["exception"]["value"] if e["exception"] else e["message"])
        for e in events
    )
    assert seen == [
        ("/boom/1", "boom 1"),
        ("/boom/2", "boom 2"),
        ("/busy/1", "HTTP 503 response: GET /busy/{n:int}"),
        ("/busy/2", "HTTP 503 response: GET /busy/{n:int}"),
        *[("/ok", "ok seen")] * 4,
    ]
    assert {e["component"] for e in events if e["exception"]} == {"e2e"}
