"""Views and middleware the tests route requests through."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views import View

import errwire

from . import payments

log = logging.getLogger("tests.views")


class Boom(Exception):
    """A distinctive exception type for the tests."""


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def boom(request: HttpRequest) -> HttpResponse:
    raise Boom("view failed")


def enhanced(request: HttpRequest) -> HttpResponse:
    """A view that raises an EnhancedError it built without reporting it."""
    try:
        raise Boom("card declined")
    except Boom as exc:
        err = errwire.error(exc).component("billing").category("payments").exception()
    assert err is not None
    raise err


def order(request: HttpRequest, pk: int) -> HttpResponse:
    raise Boom(f"order {pk} failed")


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("no such thing")


def denied(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("not yours")


def bad(request: HttpRequest) -> HttpResponse:
    raise BadRequest("malformed")


def suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("tampered")


def logs(request: HttpRequest) -> HttpResponse:
    try:
        raise Boom("handled, but logged")
    except Boom:
        log.exception("something went wrong")
    return HttpResponse("logged")


def message(request: HttpRequest) -> HttpResponse:
    errwire.capture_message("a message from a view", level="warning")
    return HttpResponse("sent")


async def async_ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async ok")


async def async_boom(request: HttpRequest) -> HttpResponse:
    raise Boom("async view failed")


def timeout(request: HttpRequest) -> HttpResponse:
    """Under ASGI this sync view runs in a thread; a ``TimeoutError`` crossing back
    into the event loop is re-created by asyncio without its traceback."""
    raise TimeoutError("upstream did not answer")


def pay(request: HttpRequest, order: int) -> HttpResponse:
    payments.charge(order)
    return HttpResponse("paid")


def refund(request: HttpRequest, order: int) -> HttpResponse:
    payments.refund(order)
    return HttpResponse("refunded")


async def async_pay(request: HttpRequest, order: int) -> HttpResponse:
    """An async view handing blocking work to a thread: the ``TimeoutError`` is
    re-created when it crosses back, but this view's own frame is still on it."""
    await sync_to_async(payments.charge)(order)
    return HttpResponse("paid")


def rendered(request: HttpRequest) -> TemplateResponse:
    """Fails after it returned: Django renders the response, finds no template."""
    return TemplateResponse(request, "errwire-tests/no-such-template.html", {})


def captured_with_component(request: HttpRequest) -> HttpResponse:
    try:
        raise TimeoutError("handled by the view")
    except TimeoutError as exc:
        errwire.capture_error(exc, component="checkout")
        raise


def passthrough(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A decorator that keeps the view's metadata (``functools.wraps``)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return view(request, *args, **kwargs)

    return wrapper


@passthrough
def decorated_timeout(request: HttpRequest) -> HttpResponse:
    raise TimeoutError("decorated view did not get an answer")


class TimeoutView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        raise TimeoutError("class-based view did not get an answer")


# Set by the isolation test: each request waits until all of them are inside a view.
barrier: list[Any] = []


async def async_wait(request: HttpRequest, name: str) -> HttpResponse:
    if barrier:
        await asyncio.wait_for(barrier[0].wait(), timeout=10)
    raise Boom(f"request {name} failed")


class RaisingMiddleware:
    """Raises for /outer-fail/ before the view runs (an error outside any view)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/outer-fail/":
            raise Boom("middleware failed")
        return self.get_response(request)


class SwallowingMiddleware:
    """Turns every view exception into a 200 response (what the W002 check is about)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse:
        return HttpResponse("swallowed")
