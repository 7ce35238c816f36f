"""Django's ASGI handler wrapped in ErrwireMiddleware, under a real uvicorn server.

Django's handler does not speak lifespan: the middleware answers it, so the
runtime still starts and flushes. errwire's Django middleware runs inside; an
error it captures is not reported again by the ASGI layer around it. The
server runs in its own process on 127.0.0.1 with a free port and is stopped by
its PID (SIGINT: a graceful shutdown). Events go to the local SQLite sink.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from errwire._local import read_events
from tests.support.uvicorn_server import UvicornServer, running_uvicorn

pytestmark = pytest.mark.e2e

SETTINGS = """
SECRET_KEY = "errwire-e2e"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "e2e_django_urls"
INSTALLED_APPS = ["errwire.integrations.django"]
MIDDLEWARE = ["errwire.integrations.django.middleware.ErrwireMiddleware"]
USE_TZ = True
"""

URLS = """
import errwire
from django.http import HttpResponse
from django.urls import path


def ok(request):
    errwire.capture_message("ok seen", level="error")
    return HttpResponse("ok")


def boom(request, n):
    raise RuntimeError(f"django view failed {n}")


def maintenance(request):
    return HttpResponse("down for maintenance", status=503)


urlpatterns = [path("ok", ok), path("boom/<int:n>", boom), path("maintenance", maintenance)]
"""

APP = """
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "e2e_django_settings")

from django.core.asgi import get_asgi_application

from errwire.integrations.asgi import ErrwireMiddleware

app = ErrwireMiddleware(get_asgi_application())
"""


@pytest.fixture
def django_server(tmp_path: Path) -> Iterator[UvicornServer]:
    for name, text in (
        ("e2e_django_settings.py", SETTINGS),
        ("e2e_django_urls.py", URLS),
        ("e2e_django_app.py", APP),
    ):
        (tmp_path / name).write_text(textwrap.dedent(text))
    with running_uvicorn(
        "e2e_django_app:app",
        tmp_path,
        drop_env=("ERRWIRE_", "DJANGO_"),
        extra_env={"PYTHONPATH": str(tmp_path)},
    ) as server:
        yield server


def test_django_asgi_under_uvicorn(django_server: UvicornServer) -> None:
    limits = httpx.Limits(max_connections=1)  # one keep-alive connection
    with httpx.Client(base_url=django_server.url, limits=limits) as client:
        statuses = [
            client.get(url).status_code
            for url in ("/ok", "/boom/1", "/ok", "/maintenance", "/boom/2")
        ]
    assert statuses == [200, 500, 200, 503, 500]
    assert django_server.stop() == 0, django_server.output.decode()
    log = django_server.output.decode()
    assert "Application startup complete" in log  # lifespan answered for Django
    assert "Application shutdown complete" in log
    events = read_events(str(django_server.data_dir / "events.sqlite3"), limit=1000)
    seen = sorted(
        (e["request"]["path"], e["exception"]["value"] if e["exception"] else e["message"])
        for e in events
    )
    # Each Django error once (its own middleware captured it; the ASGI layer saw the
    # capture and did not report the 500 again); the 503 no one captured, reported.
    assert seen == [
        ("/boom/1", "django view failed 1"),
        ("/boom/2", "django view failed 2"),
        ("/maintenance", "HTTP 503 response: GET /maintenance"),
        ("/ok", "ok seen"),
        ("/ok", "ok seen"),
    ]
