"""Django's ASGI handler wrapped in ErrwireMiddleware, driven by hand.

``python -m tests.integrations.asgi.django_probe DATA_DIR`` configures a
minimal Django (this process only), runs lifespan startup, three requests and
lifespan shutdown, and prints one JSON line with what happened.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.support.asgi import http_scope


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def boom(request: HttpRequest, n: int) -> HttpResponse:
    raise RuntimeError(f"django view failed {n}")


urlpatterns = [path("ok", ok), path("boom/<int:n>", boom)]


async def main(data_dir: str) -> dict[str, Any]:
    from django.core.asgi import get_asgi_application

    from errwire import _api
    from errwire._transport import MemoryTransport
    from errwire.integrations.asgi import ErrwireMiddleware

    app = ErrwireMiddleware(get_asgi_application(), transport="memory", data_dir=data_dir)
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: list[str] = []
    started = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        lifespan_out.append(message["type"])
        started.set()

    lifespan_in.put_nowait({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan_in.get, lifespan_send)
    )
    await started.wait()
    runtime = _api.get_runtime()
    assert runtime is not None and isinstance(runtime.transport, MemoryTransport)
    memory = runtime.transport

    statuses: dict[str, int] = {}
    for url in ("/ok", "/boom/7", "/nope"):
        sent: list[dict[str, Any]] = []
        incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        incoming.put_nowait({"type": "http.request", "body": b"", "more_body": False})

        async def send(
            message: dict[str, Any],
            sent: list[dict[str, Any]] = sent,
            incoming: asyncio.Queue[dict[str, Any]] = incoming,
        ) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                incoming.put_nowait({"type": "http.disconnect"})  # the client goes away

        scope = http_scope(url)
        await app(scope, incoming.get, send)
        statuses[url] = sent[0]["status"]

    lifespan_in.put_nowait({"type": "lifespan.shutdown"})
    await lifespan
    return {
        "lifespan": lifespan_out,
        "statuses": statuses,
        "events": [
            {"message": e["message"], "path": (e["request"] or {}).get("path"), "level": e["level"]}
            for e in memory.events
        ],
        "runtime_after_shutdown": _api.get_runtime(),
    }


if __name__ == "__main__":
    settings.configure(
        DEBUG=False,
        SECRET_KEY="errwire-test",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        LOGGING_CONFIG=None,
    )
    django.setup()
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
