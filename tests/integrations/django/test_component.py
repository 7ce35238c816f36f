"""An event's component when Django's ASGI handler loses the view's frames.

Under the ASGI handler a sync view runs in a thread (asgiref's SyncToAsync). An
exception crossing back into the event loop keeps its traceback, except a
``TimeoutError``: asyncio re-creates it (``concurrent.futures.TimeoutError`` is
``TimeoutError`` since Python 3.11), so the event's stack holds only Django's and
asgiref's frames. The component then comes from the resolved view's module,
through the same prefix map; events whose stack has an in-app frame are untouched.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Mapping
from typing import Any

import pytest
from django.core.asgi import get_asgi_application
from django.test import Client, override_settings
from django.urls import ResolverMatch

import errwire
from errwire._transport import MemoryTransport
from errwire.integrations.django import conf
from errwire.integrations.django._component import (
    component_for,
    fallback_component,
    view_module,
)
from tests.support.asgi import http_scope

from . import payments, views
from .conftest import Telemetry

COMPONENTS = {
    "tests.integrations.django.views": "shop",
    "tests.integrations.django.payments": "payments",
}
LOSES_FRAMES = sys.version_info >= (3, 11)  # TimeoutError re-created by asyncio


def running(**options: Any) -> Telemetry:
    """errwire with an in-memory transport and a component map for the test views."""
    memory = MemoryTransport()
    config = conf.get_config().replace(
        storm_window_seconds=0, dedup_window_seconds=0, component_map=COMPONENTS, **options
    )
    errwire.init(config=config, transport=memory, use_env=False)
    return Telemetry(memory)


@pytest.fixture
def shop() -> Telemetry:
    return running()


def serve_asgi(*paths: str) -> list[int]:
    """Requests through Django's own ASGI handler (as uvicorn runs it); their statuses."""
    app = get_asgi_application()
    statuses: list[int] = []

    async def one(path: str) -> None:
        sent: list[dict[str, Any]] = []
        incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        incoming.put_nowait({"type": "http.request", "body": b"", "more_body": False})

        async def send(message: Mapping[str, Any]) -> None:
            sent.append(dict(message))
            if message["type"] == "http.response.body" and not message.get("more_body"):
                incoming.put_nowait({"type": "http.disconnect"})

        await app(http_scope(path), incoming.get, send)
        statuses.append(sent[0]["status"])

    async def run() -> None:
        for path in paths:
            await one(path)

    asyncio.run(run())
    return statuses


def frames(event: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(f["module"], f["function"], f["in_app"]) for f in event["exception"]["stack"]]


def has_in_app_frame(event: dict[str, Any]) -> bool:
    return any(in_app for _, _, in_app in frames(event))


# ---------------------------------------------------------------- the ASGI handler
@pytest.mark.skipif(not LOSES_FRAMES, reason="asyncio keeps the TimeoutError before 3.11")
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/timeout/", "upstream did not answer"),
        ("/decorated/", "decorated view did not get an answer"),
        ("/class-based/", "class-based view did not get an answer"),
    ],
    ids=["function", "functools.wraps", "class-based"],
)
def test_sync_view_under_asgi_gets_the_views_component(
    shop: Telemetry, path: str, message: str
) -> None:
    assert serve_asgi(path) == [500]
    [event] = shop.events()
    assert event["message"] == message
    assert event["category"] == "timeout"
    # The frame loss itself: the stack ends in asgiref, nothing of the application's.
    assert not has_in_app_frame(event), frames(event)
    assert frames(event)[-1][0] == "asgiref.sync"
    assert event["component"] == "shop"  # was "asgiref": the innermost frame's package
    assert event["tags"]["component"] == "shop"


@pytest.mark.skipif(not LOSES_FRAMES, reason="asyncio keeps the TimeoutError before 3.11")
def test_signal_capture_under_asgi_gets_the_views_component(shop: Telemetry) -> None:
    """Without the middleware, ``got_request_exception`` captures, with the same fallback."""
    with override_settings(MIDDLEWARE=[]):
        assert serve_asgi("/timeout/") == [500]
    [event] = shop.events()
    assert event["context"]["mechanism"] == "django.got_request_exception"
    assert not has_in_app_frame(event)
    assert event["component"] == "shop"


def test_in_app_frames_under_asgi_still_decide(shop: Telemetry) -> None:
    """An exception asyncio does not re-create keeps its frames: the innermost in-app
    one decides (the payments module, not the view's)."""
    assert serve_asgi("/refund/3/", "/orders/4/") == [500, 500]
    refund, order = shop.events()
    assert frames(refund)[-1] == ("tests.integrations.django.payments", "refund", True)
    assert refund["component"] == "payments"
    assert frames(order)[-1] == ("tests.integrations.django.views", "order", True)
    assert order["component"] == "shop"


def test_async_view_keeps_its_own_frame(shop: Telemetry) -> None:
    """An async view runs in the event loop: its frame stays on the exception, even when
    a TimeoutError from a thread it awaited was re-created on the way back."""
    assert serve_asgi("/async/boom/", "/async/pay/5/") == [500, 500]
    boom, pay = shop.events()
    assert frames(boom)[-1] == ("tests.integrations.django.views", "async_boom", True)
    assert boom["component"] == "shop"
    assert ("tests.integrations.django.views", "async_pay", True) in frames(pay)
    assert pay["message"] == "payment provider did not answer for order 5"
    assert pay["component"] == ("shop" if LOSES_FRAMES else "payments")


def test_component_given_by_the_view_wins(shop: Telemetry) -> None:
    assert serve_asgi("/captured/") == [500]
    events = shop.events()
    explicit = [e for e in events if "mechanism" not in (e.get("context") or {})]
    [handler] = [e for e in events if (e.get("context") or {}).get("mechanism")]
    assert [e["component"] for e in explicit] == ["checkout"]
    assert handler["component"] == "shop"


# ------------------------------------------------------------------------ WSGI
def test_wsgi_keeps_the_frames_and_the_innermost_in_app_frame_decides(shop: Telemetry) -> None:
    client = Client(raise_request_exception=False)
    assert [client.get(p).status_code for p in ("/timeout/", "/pay/9/")] == [500, 500]
    timeout, pay = shop.events()
    assert frames(timeout)[-1] == ("tests.integrations.django.views", "timeout", True)
    assert timeout["component"] == "shop"
    assert frames(pay)[-1] == ("tests.integrations.django.payments", "charge", True)
    assert pay["component"] == "payments"  # not the view's module


def test_error_after_the_view_returned_gets_the_views_component(shop: Telemetry) -> None:
    """Rendering a TemplateResponse fails inside Django, with no application frame."""
    assert Client(raise_request_exception=False).get("/rendered/").status_code == 500
    [event] = shop.events()
    assert event["exception"]["type"] == "django.template.exceptions.TemplateDoesNotExist"
    assert not has_in_app_frame(event)
    assert event["component"] == "shop"  # was "django"


def test_fallback_follows_the_in_app_policy() -> None:
    """With every test module out of the application (``in_app_exclude``) no frame is
    in-app under WSGI either: the component then comes from the view, as the worker
    would have it if it could see the view."""
    telemetry = running(in_app_exclude=("tests",))
    assert Client(raise_request_exception=False).get("/pay/2/").status_code == 500
    [event] = telemetry.events()
    assert not has_in_app_frame(event)
    assert event["component"] == "shop"


# ------------------------------------------------------------------ the helpers
def _match(func: Any) -> ResolverMatch:
    return ResolverMatch(func, (), {}, route="x/")


class _Request:
    def __init__(self, match: ResolverMatch | None) -> None:
        self.resolver_match = match


def _not_in_app(filename: str, module: str) -> bool:
    return False


def test_view_module_unwraps_what_django_projects_route_to() -> None:
    assert view_module(views.timeout) == "tests.integrations.django.views"
    assert view_module(views.decorated_timeout) == "tests.integrations.django.views"
    assert view_module(views.TimeoutView.as_view()) == "tests.integrations.django.views"
    assert view_module(functools.partial(views.timeout)) == "tests.integrations.django.views"
    assert view_module(views.TimeoutView().get) == "tests.integrations.django.views"

    class Callable:
        def __call__(self, request: object) -> None:
            raise AssertionError

    assert view_module(Callable()) == __name__

    def bare(request: object) -> None:
        raise AssertionError

    def no_wraps(request: object) -> None:  # a decorator that did not use functools.wraps
        raise AssertionError

    no_wraps.__module__ = None  # type: ignore[assignment]
    assert view_module(bare) == __name__
    assert view_module(no_wraps) is None


def _raised() -> BaseException:
    try:
        raise TimeoutError("x")
    except TimeoutError as exc:
        return exc


def test_fallback_component_only_without_an_in_app_frame() -> None:
    from errwire._classify import ComponentResolver, InAppPolicy

    resolver = ComponentResolver(tuple(COMPONENTS.items()))
    request = _Request(_match(views.timeout))
    exc = _raised()
    # this test module is in-app: no fallback
    assert fallback_component(exc, request, InAppPolicy(), resolver, 100) is None
    # nothing in-app: the view's module, through the map
    assert fallback_component(exc, request, _not_in_app, resolver, 100) == "shop"
    # no traceback at all (a re-created exception that was never raised)
    assert fallback_component(TimeoutError(), request, InAppPolicy(), resolver, 100) == "shop"
    # not resolved (an error before URL resolution), or no request at all
    assert fallback_component(exc, _Request(None), _not_in_app, resolver, 100) is None
    assert fallback_component(exc, None, _not_in_app, resolver, 100) is None
    # no prefix matches: the view module's top-level package, as for frames
    assert fallback_component(exc, request, _not_in_app, ComponentResolver(), 100) == "tests"


def test_fallback_looks_only_at_the_frames_the_event_keeps() -> None:
    """The worker keeps the innermost ``max_frames``: an in-app frame further out is
    not on the event, so it does not count."""
    from errwire._classify import ComponentResolver

    def this_module_in_app(filename: str, module: str) -> bool:
        return module == __name__

    try:
        payments.charge(1)  # frames: this test (outer), then payments.charge (inner)
    except TimeoutError as caught:
        exc: BaseException = caught
    request = _Request(_match(views.timeout))
    resolver = ComponentResolver(tuple(COMPONENTS.items()))
    assert fallback_component(exc, request, this_module_in_app, resolver, 2) is None
    assert fallback_component(exc, request, this_module_in_app, resolver, 1) == "shop"


def test_a_broken_view_object_costs_the_component_not_the_event(
    allow_internal_errors: list[tuple[str, BaseException]],
) -> None:
    class Broken:
        @property
        def view_class(self) -> type:
            raise RuntimeError("broken descriptor")

    running()
    request = _Request(_match(views.timeout))
    request.resolver_match.func = Broken()  # type: ignore[union-attr]
    exc = TimeoutError("never raised: no frame at all")
    assert component_for(exc, request) is None
    assert [where for where, _ in allow_internal_errors] == ["django view component"]
    assert component_for(exc, None) is None  # no request: nothing to look at
    errwire.shutdown()
    assert component_for(exc, _Request(_match(views.timeout))) is None  # no runtime
