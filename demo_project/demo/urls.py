from __future__ import annotations

from django.contrib.auth.views import LoginView
from django.urls import include, path

from errwire.integrations.django.views import health

from . import views

urlpatterns = [
    path("", views.index),
    path("ok/", views.ok),
    path("fail/database/", views.fail_database),
    path("fail/timeout/", views.fail_timeout),
    path("fail/validation/", views.fail_validation),
    path("fail/noisy/", views.fail_noisy),
    path("fail/secrets/", views.fail_secrets),
    path("fail/logged/", views.fail_logged),
    path("fail/not-found/", views.fail_not_found),
    path("async/ok/", views.async_ok),
    path("async/fail/", views.async_fail),
    path("events/", views.events),
    path("health/", health),
    # the telemetry dashboard (staff only; `make demo` creates the login)
    path("telemetry/", include("errwire.integrations.django.urls")),
    path("accounts/login/", LoginView.as_view(), name="login"),
]
