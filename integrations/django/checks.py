"""System checks (``manage.py check``): every problem at once, with a hint.

======================  ==========================================================
errwire.E001            the ``ERRWIRE`` setting is not a dict
errwire.E002            unknown key in ``ERRWIRE`` (with a "did you mean")
errwire.E003            an option has the wrong type or is out of range
                        (in ``ERRWIRE`` or in an ``ERRWIRE_<OPTION>`` variable)
errwire.E004            malformed DSN (``ERRWIRE["DSN"]`` or ``ERRWIRE_DSN``)
errwire.E005            ``TRANSPORT`` is ``"sentry"`` but no DSN is set
errwire.E006            a DSN selects Sentry but ``sentry-sdk`` is not installed
errwire.E007            the outbox (or local sink) database cannot be written
errwire.E008            ``BUS`` is a Redis URL but the ``redis`` package is not installed
errwire.W001            ``ErrwireMiddleware`` is not in ``MIDDLEWARE``
errwire.W002            ``ErrwireMiddleware`` is above a middleware whose
                        ``process_exception`` may turn exceptions into responses
errwire.W003            enabled with neither a DSN nor the local sink
                        (``TRANSPORT = "memory"``: events are lost at exit)
errwire.W004            the dashboard is routed but ``AuthenticationMiddleware``
                        is not in ``MIDDLEWARE`` (nobody can log in to it)
======================  ==========================================================
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from errwire._config import ENV_PREFIX, FIELDS, Config, config_from_env, make_config

from . import conf

__all__ = ["MIDDLEWARE_PATH", "check_dashboard", "check_middleware", "check_settings", "register"]

MIDDLEWARE_PATH = "errwire.integrations.django.middleware.ErrwireMiddleware"
_README = "See the Django section of errwire's README for every option and its default."
# A valid DSN, so that options can be validated one at a time (TRANSPORT "sentry" needs one).
_PLACEHOLDER = Config(dsn="https://key@errwire.invalid/1")


def register() -> None:
    checks.register(check_settings, "errwire")
    checks.register(check_middleware, "errwire")
    checks.register(check_dashboard, "errwire")


def _invalid(name: str, value: Any, label: Any) -> str | None:
    """The validation error for one option alone, or None."""
    try:
        make_config({name: value}, base=_PLACEHOLDER, label=label)
    except ValueError as exc:
        return str(exc)
    return None


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, conf.SETTING, None)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return [
            Error(
                f"The {conf.SETTING} setting must be a dict; got {type(raw).__name__}.",
                hint='Write it as ERRWIRE = {"DSN": ..., "ENABLED": True}. ' + _README,
                id="errwire.E001",
            )
        ]
    errors: list[CheckMessage] = []
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key in conf.INTEGRATION_DEFAULTS:
            bad = conf.integration_problem(key, value)
            if bad is not None:
                errors.append(Error(bad[0], hint=bad[1], id="errwire.E003"))
        elif isinstance(key, str) and key.isupper() and key.lower() in FIELDS:
            options[key.lower()] = value
        else:
            errors.append(
                Error(
                    f"errwire has no option {conf.SETTING}[{key!r}].",
                    hint=(conf.suggest(key).strip() or "Remove it.") + " " + _README,
                    id="errwire.E002",
                )
            )
    env: dict[str, Any] = {}
    for name in FIELDS:
        var = ENV_PREFIX + name.upper()
        if var not in os.environ:
            continue
        try:
            env.update(config_from_env({var: os.environ[var]}))
        except ValueError as exc:
            errors.append(_bad_value(name, str(exc), source=var))
    for values, label in ((options, conf.label), (env, lambda n: ENV_PREFIX + n.upper())):
        for name, value in list(values.items()):
            problem = _invalid(name, value, label)
            if problem is not None:
                errors.append(_bad_value(name, problem, source=label(name)))
                del values[name]
    merged = {**conf.project_defaults(), **options, **env}
    if merged.get("transport") == "sentry" and not merged.get("dsn"):
        errors.append(
            Error(
                'errwire is set to deliver to Sentry (TRANSPORT "sentry") but no DSN is set.',
                hint='Set ERRWIRE["DSN"] or the ERRWIRE_DSN environment variable, or use '
                'TRANSPORT "auto" (the local sink when there is no DSN).',
                id="errwire.E005",
            )
        )
        return errors
    try:
        config = make_config(merged, label=conf.label)
    except ValueError as exc:  # pragma: no cover - every option was validated above
        errors.append(_bad_value("", str(exc), source=conf.SETTING))
        return errors
    if config.enabled:
        errors += _destination_checks(config)
    return errors


def _bad_value(name: str, message: str, *, source: str) -> Error:
    if name == "bus" and "needs the redis package" in message:
        return Error(
            message,
            hint="pip install 'errwire[redis]' (or set BUS to \"inprocess\" to keep the "
            "bus inside each process).",
            id="errwire.E008",
        )
    if name == "dsn":
        return Error(
            message,
            hint="A DSN looks like https://<public key>@<host>/<project id>; copy it from "
            "your Sentry project's Client Keys page.",
            id="errwire.E004",
        )
    return Error(message, hint=f"Fix {source}. {_README}", id="errwire.E003")


def _destination_checks(config: Config) -> list[CheckMessage]:
    found: list[CheckMessage] = []
    transport = config.resolved_transport
    if transport == "memory":
        found.append(
            Warning(
                "errwire is enabled with neither a DSN nor the local sink "
                '(TRANSPORT "memory"): events are lost when the process exits.',
                hint='Set ERRWIRE["DSN"] to deliver to Sentry, or TRANSPORT "auto"/"local" '
                "to keep events in the local SQLite sink. Memory is meant for tests.",
                id="errwire.W003",
            )
        )
    if transport == "sentry" and importlib.util.find_spec("sentry_sdk") is None:
        found.append(
            Error(
                "A DSN is set, so errwire delivers to Sentry, but sentry-sdk is not installed.",
                hint="pip install 'errwire[sentry]'",
                id="errwire.E006",
            )
        )
    paths = [("outbox", config.resolved_outbox_path)]
    if transport == "local":
        paths.append(("local sink", config.resolved_local_db_path))
    for what, path in paths:
        problem = unwritable(path)
        if problem:
            found.append(
                Error(
                    f"errwire cannot write its {what} database {path}: {problem}.",
                    hint='Point ERRWIRE["DATA_DIR"] (or OUTBOX_PATH / LOCAL_DB_PATH) at a '
                    "writable directory.",
                    id="errwire.E007",
                )
            )
    return found


def unwritable(path: str) -> str | None:
    """Why an SQLite database at ``path`` could not be created or written, or None."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return "it is a directory"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return "the file is read-only"
    folder = os.path.dirname(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        return f"{folder} is not a directory"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable"
    return None


def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from .middleware import ErrwireMiddleware

    middleware = [str(m) for m in getattr(settings, "MIDDLEWARE", None) or ()]
    position = None
    for index, path in enumerate(middleware):
        cls = _import(path)
        if path == MIDDLEWARE_PATH or (
            isinstance(cls, type) and issubclass(cls, ErrwireMiddleware)
        ):
            position = index
    if position is None:
        return [
            Warning(
                "ErrwireMiddleware is not in MIDDLEWARE: events will not carry the request "
                "(route, method, path), and CAPTURE_4XX has no effect.",
                hint=f'Add "{MIDDLEWARE_PATH}" to MIDDLEWARE, below any middleware that '
                "handles exceptions.",
                id="errwire.W001",
            )
        ]
    found: list[CheckMessage] = []
    for path in middleware[position + 1 :]:
        cls = _import(path)
        if cls is not None and callable(getattr(cls, "process_exception", None)):
            found.append(
                Warning(
                    f"ErrwireMiddleware is listed above {path}, whose process_exception() "
                    "runs first and may turn exceptions into responses that errwire never sees.",
                    hint=f"Move ErrwireMiddleware below {path} in MIDDLEWARE (Django calls "
                    "process_exception from the bottom of the list up).",
                    id="errwire.W002",
                )
            )
    return found


AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def check_dashboard(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The dashboard needs logged-in users: without the auth middleware nobody has one."""
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("errwire:dashboard")
    except (NoReverseMatch, ImportError):
        return []  # not routed (or the URLconf is broken: Django reports that itself)
    if AUTH_MIDDLEWARE in [str(m) for m in getattr(settings, "MIDDLEWARE", None) or ()]:
        return []
    return [
        Warning(
            "The errwire dashboard is routed but AuthenticationMiddleware is not in "
            "MIDDLEWARE: nobody can log in to see it.",
            hint=f'Add "{AUTH_MIDDLEWARE}" (and django.contrib.auth, sessions) to the '
            'project, or read status.json and metrics with ERRWIRE["DASHBOARD_TOKEN"].',
            id="errwire.W004",
        )
    ]


def _import(path: str) -> Any:
    try:
        return import_string(path)
    except ImportError:
        return None  # Django reports middleware that cannot be imported itself
