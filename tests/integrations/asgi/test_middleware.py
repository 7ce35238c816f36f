"""ErrwireMiddleware around plain ASGI apps: capture, 5xx, websockets, context isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import errwire
from errwire import _api
from errwire._context import current_request
from errwire._transport import MemoryTransport, Payload
from errwire.integrations.asgi import ErrwireMiddleware
from errwire.testing import capture_events

from .conftest import BODY, START_200, Recorder, http_scope, request, run


class OrderError(Exception):
    pass


async def ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send(START_200)
    await send(BODY)


def test_other_scope_types_pass_straight_through(events: list[Payload]) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    recorder = Recorder()
    scope = {"type": "custom.protocol"}
    run(ErrwireMiddleware(app)(scope, recorder.receive, recorder.send))
    assert seen == [(scope, recorder.receive, recorder.send)]


def test_exception_is_captured_once_with_the_request_and_reraised(
    events: list[Payload],
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise OrderError("order 7 failed")

    scope = http_scope("/orders/7", query=b"token=abc&page=2", route="/orders/{order_id}")
    with pytest.raises(OrderError):
        run(request(ErrwireMiddleware(app, component="orders"), scope))
    errwire.flush()
    assert len(events) == 1
    event = events[0]
    assert event["exception"]["type"].endswith("OrderError")
    assert event["component"] == "orders"
    req = event["request"]
    assert (req["method"], req["path"], req["route"]) == ("GET", "/orders/7", "/orders/{order_id}")
    assert req["query"] == {"token": "[REDACTED]", "page": "[REDACTED]"}
    assert req["headers"]["User-Agent"] == "pytest" and "Cookie" not in req["headers"]


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_response_without_a_capture_becomes_an_event(
    events: list[Payload], status: int
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            raise OrderError("handled inside")
        except OrderError:  # an inner exception handler turns it into a response
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send(BODY)

    recorder = run(request(ErrwireMiddleware(app), http_scope("/pay", route="/pay")))
    assert recorder.sent[0]["status"] == status
    errwire.flush()
    assert len(events) == 1
    assert events[0]["message"] == f"HTTP {status} response: GET /pay"
    assert events[0]["level"] == "error" and events[0]["category"] == "http"
    assert events[0]["request"]["path"] == "/pay"


def test_5xx_after_the_app_captured_its_exception_is_not_reported_again(
    events: list[Payload],
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            raise OrderError("handled and reported")
        except OrderError as exc:
            errwire.capture_error(exc)
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send(BODY)

    run(request(ErrwireMiddleware(app)))
    errwire.flush()
    assert [e["exception"]["type"].rsplit(".", 1)[-1] for e in events] == ["OrderError"]


def test_500_sent_then_raised_is_one_event(events: list[Payload]) -> None:
    """Starlette's ServerErrorMiddleware inside: it sends the 500, then re-raises."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send(BODY)
        raise OrderError("after the response")

    with pytest.raises(OrderError):
        run(request(ErrwireMiddleware(app)))
    errwire.flush()
    assert len(events) == 1 and events[0]["exception"]["type"].endswith("OrderError")


def test_the_status_is_read_from_the_response_start_even_after_another_message(
    events: list[Payload],
) -> None:
    """Only the first message with a status is read (the body messages after it are not);
    an extension message sent before http.response.start does not hide the status."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.debug", "info": {}})
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({**BODY, "more_body": True})
        await send(BODY)

    recorder = run(request(ErrwireMiddleware(app)))
    assert [m["type"] for m in recorder.sent].count("http.response.body") == 2
    errwire.flush()
    assert [e["message"] for e in events] == ["HTTP 500 response: GET /"]


def test_the_wrapped_app_is_a_coroutine_function_that_servers_take_for_asgi3(
    data_dir: str,
) -> None:
    import uvicorn

    app = ErrwireMiddleware(ok_app, transport="memory", data_dir=data_dir)
    assert asyncio.iscoroutinefunction(app)
    config = uvicorn.Config(app, log_config=None)
    config.load()
    assert config.interface == "asgi3"


def test_server_error_capture_can_be_turned_off(events: list[Payload]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send(BODY)

    run(request(ErrwireMiddleware(app, capture_server_errors=False)))
    run(request(ErrwireMiddleware(ok_app)))
    errwire.flush()
    assert events == []


def test_websocket_errors_are_captured(events: list[Payload]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise OrderError("socket handler failed")

    scope = {**http_scope("/ws"), "type": "websocket", "scheme": "ws"}
    del scope["method"]
    recorder = Recorder({"type": "websocket.connect"})
    with pytest.raises(OrderError):
        run(ErrwireMiddleware(app)(scope, recorder.receive, recorder.send))
    errwire.flush()
    assert events[0]["request"]["method"] == "WEBSOCKET"
    assert events[0]["request"]["path"] == "/ws"


def test_no_leak_between_requests_on_one_connection(events: list[Payload]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        errwire.capture_message(f"in {scope['path']}", level="error")
        await ok_app(scope, receive, send)

    middleware = ErrwireMiddleware(app)

    async def connection() -> list[Any]:
        between = []
        for path in ("/first", "/second", "/third"):
            await request(middleware, http_scope(path))
            between.append(current_request())
        return between

    assert run(connection()) == [None, None, None]
    errwire.flush()
    assert {e["message"]: e["request"]["path"] for e in events} == {
        "in /first": "/first",
        "in /second": "/second",
        "in /third": "/third",
    }


def test_no_leak_between_concurrent_requests(events: list[Payload]) -> None:
    both_started = asyncio.Event()
    started: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.append(scope["path"])
        if len(started) == 2:
            both_started.set()
        await both_started.wait()  # interleave: both are inside the app now
        errwire.capture_message(f"in {scope['path']}", level="error")
        await ok_app(scope, receive, send)

    middleware = ErrwireMiddleware(app)

    async def together() -> None:
        await asyncio.gather(
            request(middleware, http_scope("/a")), request(middleware, http_scope("/b"))
        )

    run(together())
    errwire.flush()
    assert {e["message"]: e["request"]["path"] for e in events} == {"in /a": "/a", "in /b": "/b"}


def test_no_leak_into_a_task_that_outlives_its_request(events: list[Payload]) -> None:
    release = asyncio.Event()
    tasks: list[asyncio.Task[Any]] = []

    async def later() -> None:
        await release.wait()
        errwire.capture_message("from a task the request started", level="error")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        tasks.append(asyncio.create_task(later()))
        errwire.capture_message("during the request", level="error")
        await ok_app(scope, receive, send)

    async def scenario() -> None:
        await request(ErrwireMiddleware(app), http_scope("/spawn"))
        release.set()  # the request is over; now the task runs
        await tasks[0]

    run(scenario())
    errwire.flush()
    by_message = {e["message"]: e["request"] for e in events}
    assert by_message["during the request"]["path"] == "/spawn"
    assert by_message["from a task the request started"] is None


def test_disabled_telemetry_calls_the_app_untouched(events: list[Payload]) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((send, current_request()))

    errwire.disable()
    recorder = Recorder()
    run(ErrwireMiddleware(app)(http_scope(), recorder.receive, recorder.send))
    assert seen == [(recorder.send, None)]


def test_runtime_starts_on_the_first_request_without_lifespan(data_dir: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise OrderError("first request")

    middleware = ErrwireMiddleware(app, transport="memory", data_dir=data_dir)
    assert _api.get_runtime() is None  # options are validated now, the runtime starts later
    with pytest.raises(OrderError):
        run(request(middleware))
    runtime = _api.get_runtime()
    assert runtime is not None and isinstance(runtime.transport, MemoryTransport)
    errwire.flush()
    assert len(runtime.transport.events) == 1


def test_options_disabled_wires_nothing(data_dir: str) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(send)

    middleware = ErrwireMiddleware(app, enabled=False, data_dir=data_dir)
    recorder = Recorder()
    for _ in range(2):
        run(middleware(http_scope(), recorder.receive, recorder.send))
    assert seen == [recorder.send, recorder.send] and _api.get_runtime() is None


def test_bad_options_name_the_keyword() -> None:
    with pytest.raises(ValueError, match="queue_size must be an integer"):
        ErrwireMiddleware(ok_app, queue_size="big")
    with pytest.raises(ValueError, match="no option queue_sise; did you mean queue_size"):
        ErrwireMiddleware(ok_app, queue_sise=10)


def test_conflicting_runtime_options_are_refused(data_dir: str) -> None:
    errwire.init(transport=MemoryTransport(), data_dir=data_dir, queue_size=100, use_env=False)
    with pytest.raises(RuntimeError, match="ErrwireMiddleware sets queue_size=200"):
        ErrwireMiddleware(ok_app, queue_size=200)
    agreeing = ErrwireMiddleware(ok_app, queue_size=100)
    assert run(request(agreeing)).types == ["http.response.start", "http.response.body"]


def test_client_and_authenticated_user_with_send_default_pii(data_dir: str) -> None:
    class User:
        is_authenticated = True
        identity = "user-42"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise OrderError("x")

    scope = {**http_scope("/account"), "user": User()}
    with (
        capture_events(data_dir=data_dir, send_default_pii=True) as events,
        pytest.raises(OrderError),
    ):
        run(request(ErrwireMiddleware(app), scope))
    assert events[0]["request"]["user"] == "user-42"
    assert events[0]["request"]["client"] == "192.0.2.10"


def test_send_is_observed_only_where_a_status_matters(events: list[Payload]) -> None:
    """http: the app gets an observer of the server's send (for 5xx reports); a
    websocket, or http with capture_server_errors=False, gets the server's own."""
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(send)
        if scope["type"] == "http":
            await ok_app(scope, receive, send)

    http, socket, plain = Recorder(), Recorder(), Recorder()
    ws_scope = {**http_scope("/ws"), "type": "websocket", "scheme": "ws"}
    run(ErrwireMiddleware(app)(http_scope(), http.receive, http.send))
    run(ErrwireMiddleware(app)(ws_scope, socket.receive, socket.send))
    run(
        ErrwireMiddleware(app, capture_server_errors=False)(http_scope(), plain.receive, plain.send)
    )
    assert seen[0] != http.send and http.types == ["http.response.start", "http.response.body"]
    assert seen[1:] == [socket.send, plain.send]
    assert events == []


def test_a_websocket_request_is_isolated_too(events: list[Payload]) -> None:
    """The websocket path sets and resets the snapshot as the http path does."""
    tasks: list[asyncio.Task[Any]] = []
    release = asyncio.Event()

    async def later() -> None:
        await release.wait()
        errwire.capture_message("after the socket closed", level="error")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        tasks.append(asyncio.create_task(later()))
        errwire.capture_message("in the socket", level="error")

    scope = {**http_scope("/ws"), "type": "websocket", "scheme": "ws"}
    del scope["method"]

    async def scenario() -> Any:
        recorder = Recorder()
        await ErrwireMiddleware(app)(scope, recorder.receive, recorder.send)
        after = current_request()
        release.set()
        await tasks[0]
        return after

    assert run(scenario()) is None
    errwire.flush()
    by_message: dict[str, Any] = {e["message"]: e.get("request") for e in events}
    assert by_message["in the socket"]["path"] == "/ws"
    assert by_message["after the socket closed"] is None
