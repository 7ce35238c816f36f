"""Capturing a request's exception exactly once, and the lazy request snapshot.

Three places can see the same unhandled view exception: the middleware's
``process_exception``, the ``got_request_exception`` signal and the
``django.request`` logger (when ``ErrwireHandler`` is installed). Whoever sees it
first captures it and marks the exception; the others skip marked exceptions
(the logger through a filter that sets ``errwire_skip`` on the record).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.utils.functional import empty

from errwire import _api
from errwire._context import current_request
from errwire._request import request_info
from errwire.logging import CAPTURED_MARK

from ._component import component_for

__all__ = [
    "CLIENT_ERRORS",
    "MARK",
    "DjangoRequestSnapshot",
    "SkipCaptured",
    "capture_once",
    "extract_request",
    "guard_logger",
    "is_captured",
]

MARK = CAPTURED_MARK
# Exceptions Django turns into 4xx responses: not errors unless ERRWIRE["CAPTURE_4XX"].
CLIENT_ERRORS: tuple[type[Exception], ...] = (
    Http404,
    PermissionDenied,
    BadRequest,
    SuspiciousOperation,
    MultiPartParserError,
)


def is_captured(exc: BaseException) -> bool:
    return getattr(exc, MARK, False) is True


def capture_once(
    exc: BaseException, mechanism: str, level: str = "error", request: object = None
) -> bool:
    """Capture ``exc`` unless it was captured already; mark it either way. With the
    ``request`` it failed in, a stack without in-app frames gets the component of the
    request's view (see ``_component``)."""
    if not _api._enabled or is_captured(exc):
        return False
    with contextlib.suppress(AttributeError, TypeError):  # a type without __dict__
        setattr(exc, MARK, True)
    if isinstance(exc, SuspiciousOperation):
        # Django logs these to django.security.<ClassName>, at ERROR.
        guard_logger(f"django.security.{type(exc).__name__}")
    component = None if request is None else component_for(exc, request)
    return _api.capture_error(exc, component, None, level, {"mechanism": mechanism})


class SkipCaptured(logging.Filter):
    """Marks log records about an already captured exception, so ``ErrwireHandler``
    does not capture them again. Never drops a record: other handlers still log it."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        if info and info[1] is not None and is_captured(info[1]):
            record.errwire_skip = True
        return True


_SKIP = SkipCaptured()


def guard_logger(name: str) -> None:
    """Attach the skip filter to a logger (once)."""
    log = logging.getLogger(name)
    if _SKIP not in log.filters:
        log.addFilter(_SKIP)


class DjangoRequestSnapshot(functools.partial[dict[str, Any]]):
    """What the middleware puts in the context variable: the request and the snapshot
    it shadows (``outer``: errwire's ASGI middleware around Django's ASGI handler),
    nothing else. A ``partial`` of ``extract_request``: built in C, with no
    ``__init__`` frame, because the middleware makes one per request.

    Nothing is read until an event is captured; then ``extract`` builds the
    snapshot dict (route pattern, method, path without query string, allow-listed
    headers, anonymised client address, hashed user id). It never triggers a
    database query: the user is read only if authentication already loaded it.
    """

    __slots__ = ()

    @classmethod
    def of(cls, request: HttpRequest) -> DjangoRequestSnapshot:
        return cls(extract_request, request, current_request())

    @property
    def request(self) -> HttpRequest:
        request: HttpRequest = self.args[0]
        return request

    @property
    def outer(self) -> object:
        """The snapshot this one shadows; told when an event is captured (core)."""
        return self.args[1] if len(self.args) > 1 else None

    def extract(self) -> dict[str, Any]:
        return extract_request(self.args[0])


def extract_request(request: HttpRequest) -> dict[str, Any]:
    match = getattr(request, "resolver_match", None)
    meta = request.META
    runtime = _api._runtime
    return request_info(
        method=request.method,
        path=request.path,
        route=None if match is None else _route(match),
        query_string=meta.get("QUERY_STRING"),
        headers=request.headers,
        client=meta.get("REMOTE_ADDR"),
        user_id=_user_id(request),
        send_default_pii=runtime.config.send_default_pii if runtime is not None else False,
    )


def _route(match: Any) -> str | None:
    route = getattr(match, "route", None)
    if route is None:
        return None
    return "/" + str(route).lstrip("^/")


def _user_id(request: HttpRequest) -> object:
    user = request.__dict__.get("user")
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)  # a SimpleLazyObject not evaluated yet: skip
    if wrapped is empty:
        return None
    try:
        if getattr(wrapped, "is_authenticated", False) is not True:
            return None
        return getattr(wrapped, "pk", None)
    except Exception:  # a broken user model must not break the capture
        return None
