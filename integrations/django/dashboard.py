"""The telemetry dashboard: a staff-only page, ``status.json`` and Prometheus ``metrics``.

Mounted with ``path("telemetry/", include("errwire.integrations.django.urls"))``.
The data comes from every runtime's heartbeat in the outbox database (see
``errwire._dashboard``), so one page shows every web and worker process.

Access: active staff users, who also need ``ERRWIRE["DASHBOARD_PERMISSION"]``
when it is set. The page sends anonymous users to the login page and answers
403 to everyone else. ``status.json`` and ``metrics`` answer 401 instead of
redirecting (they are polled and scraped), and also accept
``Authorization: Bearer <ERRWIRE["DASHBOARD_TOKEN"]>`` when a token is set.
Everything is read-only: GET and HEAD only. The page's CSS and JS are served
from the package (no CDN, no external font); they are also under
``static/errwire/`` for ``collectstatic``.

The page is the template ``errwire/dashboard.html``, found through the project's
template engines like any app's template, so a project (its ``DIRS``, or an app
listed before errwire) can override or extend it. A project whose engines cannot
find it (no ``TEMPLATES``, no ``APP_DIRS``, only Jinja2) still gets the page:
errwire's own engine renders the packaged template.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import resolve_url
from django.template import Context, Engine, TemplateDoesNotExist, loader
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from errwire import _api
from errwire._dashboard import METRICS_CONTENT_TYPE, dashboard_data, render_metrics
from errwire.integrations._telemetry_http import bearer_matches

from . import conf

__all__ = [
    "ASSETS",
    "POLL_SECONDS",
    "TEMPLATE",
    "asset",
    "dashboard",
    "may_view",
    "metrics",
    "render_page",
    "status_json",
]

HERE = Path(__file__).resolve().parent
ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
POLL_SECONDS = 3.0
TEMPLATE = "errwire/dashboard.html"


def may_view(user: Any) -> bool:
    """Active staff, with ``DASHBOARD_PERMISSION`` when it is set."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if not (getattr(user, "is_active", False) and getattr(user, "is_staff", False)):
        return False
    permission = conf.get_settings().dashboard_permission
    return permission is None or bool(user.has_perm(permission))


def _token_ok(request: HttpRequest) -> bool:
    token = conf.get_settings().dashboard_token
    return token is not None and bearer_matches(request.headers.get("Authorization"), token)


def _data() -> dict[str, Any]:
    config = conf.get_config()
    stale_after = max(15.0, 3 * config.heartbeat_interval_seconds)
    return dashboard_data(config.resolved_outbox_path, stale_after=stale_after, local=_api.status())


def _refuse_api(request: HttpRequest) -> HttpResponse | None:
    """None when the request may read the data; else 401 (no login) or 403 (not allowed)."""
    if _token_ok(request):
        return None
    user = getattr(request, "user", None)
    if may_view(user):
        return None
    if user is not None and getattr(user, "is_authenticated", False):
        return JsonResponse({"error": "forbidden: staff only"}, status=403)
    response = JsonResponse({"error": "authentication required"}, status=401)
    if conf.get_settings().dashboard_token is not None:
        response["WWW-Authenticate"] = 'Bearer realm="errwire"'
    return response


@never_cache
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        login = resolve_url(settings.LOGIN_URL)
        return HttpResponseRedirect(f"{login}?next={quote(request.get_full_path())}")
    if not may_view(user):
        raise PermissionDenied("The telemetry dashboard is for staff only.")
    try:
        data = _data()
    except ImproperlyConfigured as exc:
        text = f"errwire is misconfigured: {exc}"
        return HttpResponse(text, status=500, content_type="text/plain; charset=utf-8")
    return HttpResponse(
        render_page(request, {"data": data, "poll_seconds": POLL_SECONDS, "request": request})
    )


@never_cache
@require_safe
def status_json(request: HttpRequest) -> HttpResponse:
    refused = _refuse_api(request)
    if refused is not None:
        return refused
    return JsonResponse(_data())


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    refused = _refuse_api(request)
    if refused is not None:
        return refused
    return HttpResponse(render_metrics(_data()), content_type=METRICS_CONTENT_TYPE)


@require_safe
def asset(request: HttpRequest, name: str) -> HttpResponse:
    """The page's CSS and JS (they hold no data: served to anyone)."""
    if name not in ASSETS:
        raise Http404("no such asset")
    # a few KB: read whole, so WSGI and ASGI servers both send it in one piece
    response = HttpResponse(_asset_bytes(name), content_type=ASSETS[name])
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@cache
def _asset_bytes(name: str) -> bytes:
    return (HERE / "static" / "errwire" / name).read_bytes()


def render_page(request: HttpRequest, context: dict[str, Any]) -> str:
    """The page through the project's template engines (a project's own
    ``errwire/dashboard.html`` wins, as for any app template); through errwire's own
    engine when none of them finds it. Only a missing template falls back: an
    override that fails to render fails like any other template."""
    try:
        template = loader.get_template(TEMPLATE)
    except TemplateDoesNotExist:
        return _engine().get_template(TEMPLATE).render(Context(context))
    page: str = template.render(context, request)
    return page


@cache
def _engine() -> Engine:
    """The fallback engine: the packaged template, whatever the project's TEMPLATES say."""
    return Engine(dirs=[str(HERE / "templates")], app_dirs=False)
