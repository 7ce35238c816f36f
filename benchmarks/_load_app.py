"""The hello-world app served by uvicorn for the load scenario (9).

``BENCH_LIBRARY`` picks the telemetry (``none``, ``errwire``, ``sentry-sdk``) and
``BENCH_DSN`` where it sends; one request in ``ERROR_EVERY`` hits an error that the
view handles and reports, so telemetry has events to deliver while the rest of
the requests are served.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

__all__ = ["ERROR_EVERY", "ERRWIRE_OPTIONS", "app"]

ERROR_EVERY = 10
# every error delivered, as sentry-sdk does: no folding of repeats, no rate limit
ERRWIRE_OPTIONS = {
    "storm_window_seconds": 0,
    "dedup_window_seconds": 0,
    "rate_limit_per_minute": 10**9,
}
_counter = itertools.count()


def _setup() -> tuple[list[Middleware], Callable[[BaseException], object]]:
    library = os.environ.get("BENCH_LIBRARY", "none")
    dsn = os.environ.get("BENCH_DSN")
    if library == "errwire":
        import errwire
        from errwire.integrations.asgi import ErrwireMiddleware

        errwire.init(
            dsn=dsn,
            use_env=False,
            data_dir=tempfile.mkdtemp(prefix="errwire-bench-"),
            **ERRWIRE_OPTIONS,  # type: ignore[arg-type]
        )
        return [Middleware(ErrwireMiddleware)], errwire.capture_error
    if library == "sentry-sdk":
        import sentry_sdk

        sentry_sdk.init(dsn=dsn)  # its defaults: the Starlette integration enables itself
        return [], sentry_sdk.capture_exception
    return [], lambda exc: None


_middleware, _capture = _setup()


async def index(request: Request) -> PlainTextResponse:
    n = next(_counter)
    if n % ERROR_EVERY == 0:
        try:
            raise LookupError(f"order {n} not found")
        except LookupError as exc:
            _capture(exc)
    return PlainTextResponse("hello")


app = Starlette(routes=[Route("/", index)], middleware=_middleware)
