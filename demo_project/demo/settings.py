"""Settings of the errwire demo: a small shop on SQLite that uses errwire like a user would.

errwire needs three things here: the app in INSTALLED_APPS, the middleware in
MIDDLEWARE and (optionally) the ERRWIRE dict. Without ERRWIRE_DSN every event
goes to the local SQLite sink in .errwire/events.sqlite3; with it, to Sentry.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DEMO_SECRET_KEY", "errwire-demo-only-not-a-secret")
DEBUG = os.environ.get("DEMO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "errwire.integrations.django",  # <- errwire
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "errwire.integrations.django.middleware.ErrwireMiddleware",  # <- errwire, near the end
]

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"
ASGI_APPLICATION = "demo.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DATABASE", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# errwire: every key is an upper-case errwire.Config field; the rest keep their defaults.
# ERRWIRE_DSN / ERRWIRE_ENABLED (and any ERRWIRE_<OPTION>) in the environment win.
ERRWIRE = {
    "HEARTBEAT_INTERVAL_SECONDS": 1.0,  # so `telemetry_status` and the dashboard see it at once
    "DEDUP_WINDOW_SECONDS": 60,
    "COMPONENT_MAP": {"demo.payments": "payments", "demo.views": "shop"},
    # /telemetry/status.json and /telemetry/metrics also accept this bearer token (None: staff only)
    "DASHBOARD_TOKEN": os.environ.get("DEMO_DASHBOARD_TOKEN") or None,
}

# The dashboard at /telemetry/ is for staff: anonymous visitors are sent here.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/telemetry/"

# Errors logged anywhere (ERROR and above) become events too. A request's unhandled
# exception is captured once, by the middleware, although django.request logs it as well.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "errwire": {"class": "errwire.logging.ErrwireHandler", "level": "ERROR"},
    },
    "root": {"handlers": ["console", "errwire"], "level": "INFO"},
    "loggers": {"errwire": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
