"""``ErrwireMiddleware``: the request snapshot and the capture of view exceptions.

Per request it only puts a lazy snapshot of the request in a context variable
and resets it afterwards; nothing is read from the request unless an event is
captured. Unhandled view exceptions are captured once in ``process_exception``
(exceptions Django turns into 4xx responses only with
``ERRWIRE["CAPTURE_4XX"]``). Sync and async capable; raises ``MiddlewareNotUsed``
when telemetry is off at start, so a disabled project pays nothing per request.

Place it below any middleware whose ``process_exception`` turns exceptions into
responses (``manage.py check`` warns otherwise): Django runs ``process_exception``
from the bottom of ``MIDDLEWARE`` up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from errwire._context import _request as _REQUEST

from . import _wiring, conf
from ._capture import CLIENT_ERRORS, DjangoRequestSnapshot, capture_once, extract_request

# The per-request path runs on every request: bound once, no wrapper calls.
_get = _REQUEST.get
_set = _REQUEST.set
_reset = _REQUEST.reset

__all__ = ["ErrwireMiddleware"]

GetResponse = Callable[[HttpRequest], Any]


class ErrwireMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        try:
            settings = conf.get_settings()
        except ImproperlyConfigured as exc:
            raise MiddlewareNotUsed(f"errwire is not configured: {exc}") from None
        if not settings.config.enabled:
            raise MiddlewareNotUsed("errwire telemetry is disabled")
        self.get_response = get_response
        self.capture_4xx = settings.capture_4xx
        _wiring.serving()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        token = _set(DjangoRequestSnapshot(extract_request, request, _get()))
        try:
            return self.get_response(request)
        finally:
            _reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        token = _set(DjangoRequestSnapshot(extract_request, request, _get()))
        try:
            response: Awaitable[HttpResponseBase] = self.get_response(request)
            return await response
        finally:
            _reset(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if isinstance(exception, CLIENT_ERRORS):
            if self.capture_4xx:
                capture_once(exception, "django.middleware", "warning", request)
            return
        capture_once(exception, "django.middleware", "error", request)
