"""``path("telemetry/", include("errwire.integrations.django.urls"))``: the dashboard.

``telemetry/`` the page (staff only), ``telemetry/status.json`` its data,
``telemetry/metrics`` the Prometheus text exposition, ``telemetry/assets/...``
its CSS and JS. See ``dashboard`` for who may read them.
"""

from __future__ import annotations

from django.urls import path

from . import dashboard

__all__ = ["app_name", "urlpatterns"]

app_name = "errwire"
urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("status.json", dashboard.status_json, name="status"),
    path("metrics", dashboard.metrics, name="metrics"),
    path("assets/<str:name>", dashboard.asset, name="asset"),
]
