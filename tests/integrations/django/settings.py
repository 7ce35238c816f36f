"""Minimal settings for the Django integration's tests (no database, no templates)."""

from __future__ import annotations

import atexit
import shutil
import tempfile

_DATA_DIR = tempfile.mkdtemp(prefix="errwire-django-tests-")
atexit.register(shutil.rmtree, _DATA_DIR, True)

SECRET_KEY = "errwire-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
INSTALLED_APPS = ["errwire.integrations.django"]
MIDDLEWARE = ["errwire.integrations.django.middleware.ErrwireMiddleware"]
ROOT_URLCONF = "tests.integrations.django.urls"
DATABASES: dict[str, object] = {}
USE_TZ = True
ERRWIRE = {"DATA_DIR": _DATA_DIR}
