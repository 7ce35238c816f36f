"""The Django dashboard: who may see it, what each endpoint answers, its settings.

The test project has no auth app (no database), so users are stand-ins with the
attributes the views read (``is_authenticated``, ``is_active``, ``is_staff``,
``has_perm``); the browser tests log real users in through the demo project.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory, override_settings

import errwire
from errwire import _api
from errwire.integrations.django import checks, conf, dashboard

TOKEN = "a-long-random-dashboard-token-0123"
URLS = "tests.integrations.django.dashboard_urls"
ASSETS = Path(dashboard.__file__).resolve().parent / "static" / "errwire"


@dataclass
class User:
    is_staff: bool = False
    is_active: bool = True
    is_authenticated: bool = True
    perms: set[str] = field(default_factory=set)

    def has_perm(self, perm: str) -> bool:
        return perm in self.perms


ANONYMOUS = User(is_authenticated=False)
STAFF = User(is_staff=True)
VISITOR = User()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The dashboard mounted at /telemetry/, errwire running on a fresh data dir."""
    settings = {"DATA_DIR": str(tmp_path), "DASHBOARD_TOKEN": TOKEN}
    with override_settings(ROOT_URLCONF=URLS, ERRWIRE=settings):
        yield settings


def call(view: Any, user: User, path: str = "/telemetry/", **headers: str) -> HttpResponse:
    request: HttpRequest = RequestFactory().get(path, headers=headers)
    request.user = user  # type: ignore[assignment]
    response: HttpResponse = view(request)
    return response


# ----------------------------------------------------------------------------- access
def test_anonymous_is_sent_to_login(project: dict[str, Any]) -> None:
    response = Client().get("/telemetry/")  # no auth middleware: nobody is logged in
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/telemetry/"
    with override_settings(LOGIN_URL="/staff/login/"):
        assert call(dashboard.dashboard, ANONYMOUS)["Location"].startswith("/staff/login/?next=")


def test_non_staff_and_inactive_staff_are_refused(project: dict[str, Any]) -> None:
    for user in (VISITOR, User(is_staff=True, is_active=False)):
        with pytest.raises(PermissionDenied):
            call(dashboard.dashboard, user)
        assert call(dashboard.status_json, user).status_code == 403
        assert call(dashboard.metrics, user).status_code == 403


def test_staff_see_the_page_with_its_data_and_only_local_assets(project: dict[str, Any]) -> None:
    errwire.capture_message("dashboard check", level="warning", component="ops")
    assert errwire.flush(5.0)
    response = call(dashboard.dashboard, STAFF)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    page = response.content.decode()
    match = re.search(r'<script id="errwire-data" type="application/json">(.*?)</script>', page)
    assert match is not None
    data = json.loads(match.group(1))
    assert data["state"] == "ok" and data["runtimes"][0]["pid"] > 0
    assert data["recent"][0]["message"] == "dashboard check"
    assert 'href="assets/dashboard.css"' in page and 'src="assets/dashboard.js"' in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # no CDN, nothing external


def test_a_configured_permission_is_needed_too(project: dict[str, Any]) -> None:
    with override_settings(ERRWIRE={**project, "DASHBOARD_PERMISSION": "ops.view_telemetry"}):
        with pytest.raises(PermissionDenied):
            call(dashboard.dashboard, STAFF)
        assert call(dashboard.status_json, STAFF).status_code == 403
        allowed = User(is_staff=True, perms={"ops.view_telemetry"})
        assert call(dashboard.dashboard, allowed).status_code == 200
        # the permission adds to staff status, it does not replace it
        with pytest.raises(PermissionDenied):
            call(dashboard.dashboard, User(perms={"ops.view_telemetry"}))


def test_data_endpoints_want_a_login_or_the_token(project: dict[str, Any]) -> None:
    client = Client()
    for url in ("/telemetry/status.json", "/telemetry/metrics"):
        refused = client.get(url)
        assert refused.status_code == 401
        assert refused["WWW-Authenticate"] == 'Bearer realm="errwire"'
        assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(url, headers={"Authorization": TOKEN}).status_code == 401  # no scheme
        assert client.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    metrics = client.get("/telemetry/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert metrics["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"errwire_captured_total" in metrics.content
    data = client.get("/telemetry/status.json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert set(data.json()) >= {"runtimes", "totals", "series", "recent", "components"}
    assert call(dashboard.status_json, STAFF).status_code == 200  # a staff session works too


def test_without_a_token_the_endpoints_are_staff_only(tmp_path: Path) -> None:
    with override_settings(ROOT_URLCONF=URLS, ERRWIRE={"DATA_DIR": str(tmp_path)}):
        refused = Client().get("/telemetry/status.json", headers={"Authorization": "Bearer x"})
        assert refused.status_code == 401
        assert "WWW-Authenticate" not in refused


def test_everything_is_read_only(project: dict[str, Any]) -> None:
    client = Client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for url in ("/telemetry/", "/telemetry/status.json", "/telemetry/metrics"):
        for method in (client.post, client.put, client.delete):
            assert method(url, headers=auth).status_code == 405
    assert client.head("/telemetry/status.json", headers=auth).status_code == 200


def test_assets_come_from_the_package(project: dict[str, Any]) -> None:
    client = Client()
    css = client.get("/telemetry/assets/dashboard.css")
    assert css.status_code == 200 and css["Content-Type"] == "text/css; charset=utf-8"
    js = client.get("/telemetry/assets/dashboard.js")
    assert js["Content-Type"] == "text/javascript; charset=utf-8"
    assert js.content == (ASSETS / "dashboard.js").read_bytes()
    assert client.get("/telemetry/assets/settings.py").status_code == 404
    assert client.get("/telemetry/assets/..%2Fdashboard.py").status_code == 404
    for name in ("dashboard.css", "dashboard.js"):
        text = (ASSETS / name).read_text()
        assert "://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "@import" not in text and "@font-face" not in text and "url(" not in text


def test_empty_state_when_no_runtime_reported(tmp_path: Path) -> None:
    settings = {"DATA_DIR": str(tmp_path), "ENABLED": False}
    with override_settings(ROOT_URLCONF=URLS, ERRWIRE=settings):
        page = call(dashboard.dashboard, STAFF).content.decode()
        data = json.loads(call(dashboard.status_json, STAFF).content)
    assert data["state"] == "empty" and data["runtimes"] == []
    assert "No runtime has reported yet" in page
    assert "Is the errwire middleware installed" in page


def test_warning_state_when_the_breaker_is_open(project: dict[str, Any]) -> None:
    runtime = _api.get_runtime()
    assert runtime is not None
    for _ in range(runtime.config.breaker_failure_threshold):
        runtime.breaker.record_failure()
    data = json.loads(call(dashboard.status_json, STAFF).content)
    assert data["state"] == "warning"
    assert [w["kind"] for w in data["warnings"]] == ["breaker_open"]
    assert data["runtimes"][0]["breaker"]["seconds_until_half_open"] > 0


# ----------------------------------------------------------------------------- template
DJANGO_TEMPLATES = "django.template.backends.django.DjangoTemplates"
APP_DIRS = [
    {
        "BACKEND": DJANGO_TEMPLATES,
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
OVERRIDE_APP = "tests.integrations.django.override_app"
PAGE = Path(dashboard.__file__).resolve().parent / "templates" / dashboard.TEMPLATE


def fixed_context(request: HttpRequest) -> dict[str, Any]:
    """One set of data for every rendering compared (the live data changes by the second)."""
    data = dashboard._data()
    return {"data": data, "poll_seconds": dashboard.POLL_SECONDS, "request": request}


def test_the_page_is_the_same_through_the_projects_engine_and_the_fallback(
    project: dict[str, Any],
) -> None:
    errwire.capture_message("template check <b>&</b>", level="warning", component="ops")
    assert errwire.flush(5.0)
    request = RequestFactory().get("/telemetry/")
    context = fixed_context(request)
    assert not settings_templates()  # the test project has no TEMPLATES: the fallback
    fallback = dashboard.render_page(request, context)
    with override_settings(TEMPLATES=APP_DIRS):
        through_project = dashboard.render_page(request, context)
    assert through_project == fallback
    assert "template check" in fallback and "<b>" not in fallback  # escaped as before
    # The blocks a project can override add nothing: without them, the same bytes.
    source = PAGE.read_text()
    assert "{% block footer %}" in source
    plain = re.sub(r"{% (end)?block[^%]*%}", "", source)
    assert plain.count("{%") == 0
    from django.template import Context, Engine

    assert Engine().from_string(plain).render(Context(context)) == fallback


def settings_templates() -> list[Any]:
    from django.conf import settings

    return list(getattr(settings, "TEMPLATES", []))


def test_a_project_template_replaces_the_page(project: dict[str, Any], tmp_path: Path) -> None:
    own = tmp_path / "templates" / "errwire"
    own.mkdir(parents=True)
    (own / "dashboard.html").write_text("<h1>Acme</h1> {{ data.state }} every {{ poll_seconds }}")
    templates = [{**APP_DIRS[0], "DIRS": [str(tmp_path / "templates")]}]
    with override_settings(TEMPLATES=templates):
        page = call(dashboard.dashboard, STAFF).content.decode()
    assert page == "<h1>Acme</h1> ok every 3.0"


def test_an_app_listed_before_errwire_extends_the_page(project: dict[str, Any]) -> None:
    apps = [OVERRIDE_APP, "errwire.integrations.django"]
    with override_settings(INSTALLED_APPS=apps, TEMPLATES=APP_DIRS):
        page = call(dashboard.dashboard, STAFF).content.decode()
    assert "<title>Acme shop · telemetry</title>" in page
    assert '<link rel="stylesheet" href="assets/dashboard.css"><link rel="stylesheet" ' in page
    # block.super keeps errwire's footer; the rest of the page is errwire's
    assert '<code id="outbox-path">' in page and '<p class="acme">On call' in page
    assert '<script id="errwire-data" type="application/json">' in page
    assert 'src="assets/dashboard.js"' in page
    with override_settings(INSTALLED_APPS=list(reversed(apps)), TEMPLATES=APP_DIRS):
        assert "Acme" not in call(dashboard.dashboard, STAFF).content.decode()  # errwire first


@pytest.mark.parametrize(
    "templates",
    [
        [],
        [{"BACKEND": DJANGO_TEMPLATES, "APP_DIRS": False, "DIRS": []}],
        [{"BACKEND": "django.template.backends.jinja2.Jinja2", "APP_DIRS": True}],
    ],
    ids=["no-engine", "no-app-dirs", "jinja2-only"],
)
def test_engines_that_cannot_find_it_fall_back_to_errwires_own(
    project: dict[str, Any], templates: list[dict[str, Any]]
) -> None:
    if templates and "jinja2" in templates[0]["BACKEND"]:
        pytest.importorskip("jinja2")
    request = RequestFactory().get("/telemetry/")
    context = fixed_context(request)
    expected = dashboard.render_page(request, context)
    with override_settings(TEMPLATES=templates):
        assert dashboard.render_page(request, context) == expected
        assert call(dashboard.dashboard, STAFF).status_code == 200


def test_a_broken_override_is_not_hidden_by_the_fallback(
    project: dict[str, Any], tmp_path: Path
) -> None:
    from django.template import TemplateDoesNotExist

    own = tmp_path / "errwire"
    own.mkdir()
    (own / "dashboard.html").write_text('{% include "acme/missing.html" %}')
    templates = [{**APP_DIRS[0], "DIRS": [str(tmp_path)]}]
    with (
        override_settings(TEMPLATES=templates),
        pytest.raises(TemplateDoesNotExist, match=re.escape("acme/missing.html")),
    ):
        call(dashboard.dashboard, STAFF)


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("DASHBOARD_PERMISSION", "view_telemetry", "must be a permission name"),
        ("DASHBOARD_PERMISSION", 42, "must be a permission name"),
        ("DASHBOARD_TOKEN", "short", "at least 16 characters"),
        ("DASHBOARD_TOKEN", b"x" * 20, "at least 16 characters"),
    ],
)
def test_bad_dashboard_settings_are_reported(key: str, value: object, fragment: str) -> None:
    with override_settings(ERRWIRE={key: value}):
        with pytest.raises(ImproperlyConfigured, match=fragment):
            conf.build_settings()
        problems = [m for m in checks.check_settings() if m.id == "errwire.E003"]
    assert len(problems) == 1 and fragment in problems[0].msg
    assert f'ERRWIRE["{key}"]' in problems[0].msg


def test_good_dashboard_settings() -> None:
    raw = {"DASHBOARD_PERMISSION": "ops.view_telemetry", "DASHBOARD_TOKEN": f" {TOKEN} "}
    with override_settings(ERRWIRE=raw):
        built = conf.build_settings()
        assert not [m for m in checks.check_settings() if str(m.id).startswith("errwire.E")]
    assert built.dashboard_permission == "ops.view_telemetry"
    assert built.dashboard_token == TOKEN
    defaults = conf.build_settings({})
    assert defaults.dashboard_permission is None and defaults.dashboard_token is None


def test_routed_dashboard_without_auth_middleware_is_a_warning() -> None:
    assert checks.check_dashboard() == []  # not routed in the test project
    with override_settings(ROOT_URLCONF=URLS):
        (warning,) = checks.check_dashboard()
        assert warning.id == "errwire.W004"
        with override_settings(MIDDLEWARE=[checks.AUTH_MIDDLEWARE, checks.MIDDLEWARE_PATH]):
            assert checks.check_dashboard() == []
