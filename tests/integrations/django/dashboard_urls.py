"""A project urls.py that mounts the dashboard the way the README says."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("telemetry/", include("errwire.integrations.django.urls"))]
