"""The middleware: request snapshot, exactly-once capture, sync and async stacks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings

import errwire
from errwire._context import current_request
from errwire.integrations.django.middleware import ErrwireMiddleware
from tests.support.asgi import http_scope

from . import views
from .conftest import Telemetry

MW = "errwire.integrations.django.middleware.ErrwireMiddleware"


def client() -> Client:
    return Client(raise_request_exception=False)


def async_client() -> AsyncClient:
    return AsyncClient(raise_request_exception=False)


def exception_events(telemetry: Telemetry) -> list[dict[str, Any]]:
    return [e for e in telemetry.events() if e.get("exception")]


def test_successful_request_captures_nothing_and_resets_the_context(telemetry: Telemetry) -> None:
    response = client().get("/ok/")
    assert response.status_code == 200
    assert telemetry.events() == []
    assert current_request() is None


def test_an_enhanced_error_a_view_raises_keeps_its_metadata(telemetry: Telemetry) -> None:
    assert client().get("/enhanced/").status_code == 500
    [event] = telemetry.events()
    assert event["exception"]["type"].endswith("views.Boom")  # the original
    assert (event["component"], event["category"]) == ("billing", "payments")
    assert event["context"]["mechanism"] == "django.middleware"


def test_view_exception_is_captured_once_with_the_request(telemetry: Telemetry) -> None:
    response = client().get("/orders/42/?token=abc&page=2", REMOTE_ADDR="203.0.113.77")
    assert response.status_code == 500
    [event] = telemetry.events()
    assert event["exception"]["type"].endswith("views.Boom")
    assert event["message"] == "order 42 failed"
    assert event["context"]["mechanism"] == "django.middleware"
    request = event["request"]
    assert request["method"] == "GET"
    assert request["route"] == "/orders/<int:pk>/"
    assert request["path"] == "/orders/42/"
    assert request["query"] == {"token": "[REDACTED]", "page": "[REDACTED]"}
    # anonymised in the snapshot (see below); the scrubber may drop it entirely
    assert request.get("client") in (None, "203.0.113.0")
    assert "203.0.113.77" not in str(event)
    assert current_request() is None


def test_snapshot_anonymises_the_client_address() -> None:
    from errwire.integrations.django._capture import DjangoRequestSnapshot

    request = RequestFactory().get("/x/?a=1", REMOTE_ADDR="203.0.113.77")
    info = DjangoRequestSnapshot.of(request).extract()
    assert info["client"] == "203.0.113.0"
    assert info["route"] is None  # not resolved yet
    assert info["path"] == "/x/"


def test_message_captured_inside_a_view_carries_the_request(telemetry: Telemetry) -> None:
    assert client().get("/message/").status_code == 200
    [event] = telemetry.events()
    assert event["request"]["path"] == "/message/"
    assert event["level"] == "warning"


def test_authenticated_user_is_hashed_and_never_loaded() -> None:
    from types import SimpleNamespace

    from django.utils.functional import SimpleLazyObject

    from errwire.integrations.django._capture import DjangoRequestSnapshot

    request = RequestFactory().get("/x/")
    request.user = SimpleNamespace(is_authenticated=True, pk=42)  # type: ignore[assignment]
    first = DjangoRequestSnapshot.of(request).extract()["user"]
    # the raw id never appears as the value (a random-salted hash may contain "42" by chance)
    assert first is not None and first.startswith("user-") and first.removeprefix("user-") != "42"
    assert len(first) > len("user-42")
    assert DjangoRequestSnapshot.of(request).extract()["user"] == first  # stable

    loaded: list[int] = []

    def load() -> object:
        loaded.append(1)
        return SimpleNamespace(is_authenticated=True, pk=7)

    lazy = RequestFactory().get("/x/")
    lazy.user = SimpleLazyObject(load)  # type: ignore[assignment]
    assert DjangoRequestSnapshot.of(lazy).extract()["user"] is None
    assert loaded == []  # not evaluated: no database query on the error path

    anonymous = RequestFactory().get("/x/")
    anonymous.user = SimpleNamespace(is_authenticated=False, pk=None)  # type: ignore[assignment]
    assert DjangoRequestSnapshot.of(anonymous).extract()["user"] is None


def test_send_default_pii_keeps_raw_client_and_user(telemetry: Telemetry) -> None:
    from types import SimpleNamespace

    from errwire.integrations.django._capture import DjangoRequestSnapshot

    errwire.init(config=errwire.Config(send_default_pii=True, transport="memory"), use_env=False)
    request = RequestFactory().get("/x/", REMOTE_ADDR="203.0.113.77")
    request.user = SimpleNamespace(is_authenticated=True, pk=42)  # type: ignore[assignment]
    info = DjangoRequestSnapshot.of(request).extract()
    assert (info["client"], info["user"]) == ("203.0.113.77", "42")


@pytest.mark.parametrize("url", ["/missing/", "/denied/", "/bad/", "/suspicious/"])
def test_client_errors_are_not_captured_by_default(telemetry: Telemetry, url: str) -> None:
    response = client().get(url)
    assert 400 <= response.status_code < 500
    assert telemetry.events() == []


@pytest.mark.parametrize(
    ("url", "status"), [("/missing/", 404), ("/denied/", 403), ("/suspicious/", 400)]
)
def test_client_errors_are_captured_as_warnings_when_configured(
    telemetry: Telemetry,
    root_handler: Callable[[], Any],
    url: str,
    status: int,
) -> None:
    with override_settings(ERRWIRE={"CAPTURE_4XX": True}):
        response = client().get(url)
    assert response.status_code == status
    [event] = telemetry.events()  # once, although django.security logs it at ERROR
    assert event["level"] == "warning"
    assert event["request"]["path"] == url


def test_exactly_once_with_errwire_handler_on_the_root_logger(
    telemetry: Telemetry, root_handler: Callable[[], Any]
) -> None:
    assert client().get("/boom/").status_code == 500
    events = telemetry.events()
    assert [e["context"]["mechanism"] for e in events] == ["django.middleware"]


def test_logged_exceptions_carry_the_request(
    telemetry: Telemetry, root_handler: Callable[[], Any]
) -> None:
    assert client().get("/logs/").status_code == 200
    [event] = telemetry.events()
    assert event["context"]["logger"] == "tests.views"
    assert event["request"]["path"] == "/logs/"


def test_without_the_middleware_the_signal_captures_with_the_request(
    telemetry: Telemetry, root_handler: Callable[[], Any]
) -> None:
    with override_settings(MIDDLEWARE=[]):
        assert client().get("/orders/7/").status_code == 500
    [event] = telemetry.events()
    assert event["context"]["mechanism"] == "django.got_request_exception"
    assert event["request"]["route"] == "/orders/<int:pk>/"
    assert current_request() is None


def test_exception_in_an_inner_middleware_is_captured_by_the_signal(
    telemetry: Telemetry, root_handler: Callable[[], Any]
) -> None:
    inner = "tests.integrations.django.views.RaisingMiddleware"
    with override_settings(MIDDLEWARE=[MW, inner]):
        assert client().get("/outer-fail/").status_code == 500
    [event] = telemetry.events()
    assert event["message"] == "middleware failed"
    assert event["context"]["mechanism"] == "django.got_request_exception"
    assert event["request"]["path"] == "/outer-fail/"


def test_middleware_not_used_when_disabled() -> None:
    with override_settings(ERRWIRE={"ENABLED": False}), pytest.raises(MiddlewareNotUsed):
        ErrwireMiddleware(views.ok)


def test_middleware_not_used_when_misconfigured() -> None:
    with (
        override_settings(ERRWIRE={"QUEUE_SIZE": -1}),
        pytest.raises(MiddlewareNotUsed, match="QUEUE_SIZE"),
    ):
        ErrwireMiddleware(views.ok)


def test_disabled_project_serves_requests_without_the_middleware() -> None:
    with override_settings(ERRWIRE={"ENABLED": False}):
        c = client()
        assert c.get("/boom/").status_code == 500
        assert not errwire.is_enabled()
        handler: Any = c.handler
        assert not any(
            isinstance(getattr(m, "__self__", None), ErrwireMiddleware)
            for m in handler._exception_middleware
        )


def test_middleware_is_sync_and_async_capable() -> None:
    assert ErrwireMiddleware.sync_capable and ErrwireMiddleware.async_capable

    def sync_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    async def async_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert not iscoroutinefunction(ErrwireMiddleware(sync_view))
    assert iscoroutinefunction(ErrwireMiddleware(async_view))


def test_async_stack_captures_once(telemetry: Telemetry, root_handler: Callable[[], Any]) -> None:
    async def run() -> tuple[int, int]:
        c = async_client()
        good = await c.get("/async/ok/")
        bad = await c.get("/async/boom/?q=1")
        return good.status_code, bad.status_code

    assert asyncio.run(run()) == (200, 500)
    [event] = telemetry.events()
    assert event["message"] == "async view failed"
    assert event["context"]["mechanism"] == "django.middleware"
    assert event["request"]["route"] == "/async/boom/"
    assert event["request"]["query"] == {"q": "[REDACTED]"}
    assert current_request() is None


def test_async_stack_without_middleware_still_captures_once(
    telemetry: Telemetry, root_handler: Callable[[], Any]
) -> None:
    async def run() -> int:
        return (await async_client().get("/async/boom/")).status_code

    with override_settings(MIDDLEWARE=[]):
        assert asyncio.run(run()) == 500
    [event] = telemetry.events()
    assert event["context"]["mechanism"] == "django.got_request_exception"
    assert event["request"]["path"] == "/async/boom/"


def test_sync_view_under_the_async_stack(telemetry: Telemetry) -> None:
    async def run() -> int:
        return (await async_client().get("/orders/5/")).status_code

    assert asyncio.run(run()) == 500
    [event] = telemetry.events()
    assert event["request"]["route"] == "/orders/<int:pk>/"


def test_concurrent_async_requests_keep_their_own_request(telemetry: Telemetry) -> None:
    names = [f"r{i}" for i in range(8)]

    async def run() -> list[int]:
        gate = asyncio.Event()
        views.barrier[:] = [gate]
        c = async_client()
        tasks = [asyncio.ensure_future(c.get(f"/async/wait/{n}/?n={n}")) for n in names]
        for _ in range(50):  # let every request reach the view before any may finish
            await asyncio.sleep(0)
        gate.set()
        return [r.status_code for r in await asyncio.gather(*tasks)]

    try:
        assert asyncio.run(run()) == [500] * len(names)
    finally:
        views.barrier.clear()
    events = telemetry.events()
    assert len(events) == len(names)
    for event in events:
        name = event["message"].split()[1]
        assert event["request"]["path"] == f"/async/wait/{name}/"
        assert event["request"]["route"] == "/async/wait/<str:name>/"
    assert current_request() is None


def test_swallowing_middleware_below_hides_the_exception(telemetry: Telemetry) -> None:
    """What errwire.W002 warns about, shown for real."""
    swallow = "tests.integrations.django.views.SwallowingMiddleware"
    with override_settings(MIDDLEWARE=[MW, swallow]):
        assert client().get("/boom/").content == b"swallowed"
    assert telemetry.events() == []
    with override_settings(MIDDLEWARE=[swallow, MW]):
        assert client().get("/boom/").content == b"swallowed"
    assert len(telemetry.events()) == 1


def test_nothing_captured_when_errwire_is_off() -> None:
    assert not errwire.is_enabled()
    assert client().get("/boom/").status_code == 500
    assert logging.getLogger("django.request").filters  # the exactly-once filter is in place


def _call_asgi(app: Any, path: str) -> int:
    """One request straight through an ASGI app; returns the response status."""
    scope = http_scope(path)
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.get_running_loop().create_future()  # no disconnect
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)

    asyncio.run(run())
    status: int = sent[0]["status"]
    return status


@pytest.mark.parametrize("middleware", [[MW], []], ids=["django-middleware", "signal-only"])
def test_inside_errwire_asgi_middleware_one_event_per_failure(
    telemetry: Telemetry, middleware: list[str]
) -> None:
    """errwire's ASGI middleware around Django's ASGI handler: the inner layer's capture
    tells the outer one, which does not report the 500 again."""
    from django.core.asgi import get_asgi_application

    from errwire.integrations.asgi import ErrwireMiddleware as AsgiMiddleware

    with override_settings(MIDDLEWARE=middleware):
        app = AsgiMiddleware(get_asgi_application())
        assert _call_asgi(app, "/async/boom/") == 500
        assert _call_asgi(app, "/orders/3/") == 500
        assert _call_asgi(app, "/async/ok/") == 200
    events = telemetry.events()
    assert [e["message"] for e in events] == ["async view failed", "order 3 failed"]
    assert all(e["request"]["path"] in ("/async/boom/", "/orders/3/") for e in events)
