"""Lifespan: the runtime starts on startup and delivers on shutdown, whoever answers."""

from __future__ import annotations

from typing import Any

import pytest

import errwire
from errwire import _api
from errwire._transport import MemoryTransport
from errwire.integrations.asgi import ErrwireMiddleware

from .conftest import Recorder, run

STARTUP = {"type": "lifespan.startup"}
SHUTDOWN = {"type": "lifespan.shutdown"}
LIFESPAN_SCOPE = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}


def _lifespan(app: Any) -> Recorder:
    recorder = Recorder(STARTUP, SHUTDOWN)
    run(app(dict(LIFESPAN_SCOPE), recorder.receive, recorder.send))
    return recorder


def _memory() -> MemoryTransport:
    runtime = _api.get_runtime()
    assert runtime is not None and isinstance(runtime.transport, MemoryTransport)
    return runtime.transport


def test_an_app_that_handles_lifespan_keeps_answering_it(data_dir: str) -> None:
    log: list[str] = []
    transports: list[MemoryTransport] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        # the app's own startup code runs with errwire already on
        log.append(f"startup captured={errwire.capture_message('app starting', level='error')}")
        transports.append(_memory())
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        errwire.capture_message("app stopping", level="error")
        await send({"type": "lifespan.shutdown.complete"})

    recorder = _lifespan(ErrwireMiddleware(app, transport="memory", data_dir=data_dir))
    assert recorder.types == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert log == ["startup captured=True"]
    # delivered before the server heard "shutdown complete"; the runtime it started is stopped
    assert [e["message"] for e in transports[0].events] == ["app starting", "app stopping"]
    assert _api.get_runtime() is None


@pytest.mark.parametrize("style", ["raises", "returns", "reads startup then raises"])
def test_an_app_without_lifespan_support_is_answered_for(data_dir: str, style: str) -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])
        if style == "reads startup then raises":
            await receive()
        if style != "returns":
            raise ValueError(f"unsupported scope {scope['type']}")

    middleware = ErrwireMiddleware(app, transport="memory", data_dir=data_dir)
    started: list[bool] = []
    recorder = Recorder(STARTUP, SHUTDOWN)
    original_send = recorder.send

    async def send(message: Any) -> None:
        started.append(_api.is_enabled())
        await original_send(message)

    run(middleware(dict(LIFESPAN_SCOPE), recorder.receive, send))
    assert calls == ["lifespan"]
    assert recorder.types == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert started == [True, False]  # on at startup.complete; shut down before shutdown.complete


def test_a_failing_startup_is_not_hidden(data_dir: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        raise ConnectionError("no database")

    recorder = Recorder(STARTUP, SHUTDOWN)
    middleware = ErrwireMiddleware(app, transport="memory", data_dir=data_dir)
    with pytest.raises(ConnectionError):
        run(middleware(dict(LIFESPAN_SCOPE), recorder.receive, recorder.send))
    assert recorder.types == ["lifespan.startup.failed"]


def test_a_runtime_started_elsewhere_is_flushed_not_stopped(data_dir: str) -> None:
    memory = MemoryTransport()
    runtime = errwire.init(transport=memory, data_dir=data_dir, use_env=False)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        errwire.capture_message("stopping", level="error")
        await send({"type": "lifespan.shutdown.complete"})

    _lifespan(ErrwireMiddleware(app))
    assert [e["message"] for e in memory.events] == ["stopping"]  # flushed
    assert _api.get_runtime() is runtime and not runtime.closed


def test_a_second_lifespan_starts_the_runtime_again(data_dir: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("no lifespan here")

    middleware = ErrwireMiddleware(app, transport="memory", data_dir=data_dir)
    first = Recorder(STARTUP, SHUTDOWN)
    runtimes: list[Any] = []

    async def send(message: Any) -> None:
        runtimes.append(_api.get_runtime())
        await first.send(message)

    run(middleware(dict(LIFESPAN_SCOPE), first.receive, send))
    second = Recorder(STARTUP, SHUTDOWN)
    run(middleware(dict(LIFESPAN_SCOPE), second.receive, send))
    started = [r for r in runtimes if r is not None]
    assert len(started) == 2 and started[0] is not started[1]
    assert _api.get_runtime() is None


def test_lifespan_with_telemetry_disabled(data_dir: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("no lifespan here")

    recorder = _lifespan(ErrwireMiddleware(app, enabled=False, data_dir=data_dir))
    assert recorder.types == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert _api.get_runtime() is None


def test_a_conflict_found_at_startup_fails_the_startup(data_dir: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # like Starlette: receive startup first, then run the app's own code
        await send({"type": "lifespan.startup.complete"})

    middleware = ErrwireMiddleware(app, transport="memory", data_dir=data_dir, queue_size=10)
    errwire.init(transport=MemoryTransport(), data_dir=data_dir, use_env=False)
    recorder = Recorder(STARTUP, SHUTDOWN)
    with pytest.raises(RuntimeError, match="ErrwireMiddleware sets"):
        run(middleware(dict(LIFESPAN_SCOPE), recorder.receive, recorder.send))
    assert recorder.sent == []
