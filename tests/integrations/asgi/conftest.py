"""Drive ASGI apps by hand: a scope, a receive that replays messages, a send that records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from errwire._transport import Payload
from errwire.testing import capture_events
from tests.support.asgi import http_scope as support_http_scope

Message = MutableMapping[str, Any]
App = Callable[[Any, Any, Any], Awaitable[None]]

START_200 = {"type": "http.response.start", "status": 200, "headers": []}
BODY = {"type": "http.response.body", "body": b"ok"}


def http_scope(
    path: str = "/", *, method: str = "GET", query: bytes = b"", route: str | None = None
) -> dict[str, Any]:
    scope = support_http_scope(
        path,
        method=method,
        query=query,
        headers=[(b"host", b"testserver"), (b"user-agent", b"pytest"), (b"cookie", b"s=1")],
        client=("192.0.2.10", 50000),
        server=("127.0.0.1", 8000),
    )
    if route is not None:
        scope["route"] = type("Route", (), {"path": route})()
    return scope


class Recorder:
    """A fake server side for one connection: replays ``incoming``, records what is sent."""

    def __init__(self, *incoming: Message) -> None:
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        for message in incoming:
            self.incoming.put_nowait(message)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return await self.incoming.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]


async def request(app: App, scope: dict[str, Any] | None = None) -> Recorder:
    recorder = Recorder({"type": "http.request", "body": b"", "more_body": False})
    await app(scope or http_scope(), recorder.receive, recorder.send)
    return recorder


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[httpx.AsyncClient]:
    """What a server does around requests: lifespan startup, a client, lifespan shutdown."""
    lifespan_in: asyncio.Queue[Message] = asyncio.Queue()
    answers: asyncio.Queue[str] = asyncio.Queue()

    async def send(message: Message) -> None:
        answers.put_nowait(message["type"])

    lifespan_in.put_nowait({"type": "lifespan.startup"})

    async def lifespan() -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        await app(scope, lifespan_in.get, send)

    task = asyncio.create_task(lifespan())
    assert await answers.get() == "lifespan.startup.complete"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    lifespan_in.put_nowait({"type": "lifespan.shutdown"})
    await task
    assert await answers.get() == "lifespan.shutdown.complete"


async def get(app: App, url: str, *, raise_app_exceptions: bool = False) -> httpx.Response:
    """One request through httpx's ASGI transport (no lifespan)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(url)


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


@pytest.fixture
def events(data_dir: str) -> Iterator[list[Payload]]:
    """Events captured by a running errwire (memory transport; no folding, no dedup)."""
    with capture_events(
        data_dir=data_dir, storm_window_seconds=0, dedup_window_seconds=0
    ) as captured:
        yield captured
