"""Flask extension: ``Errwire(app)``, or ``ext = Errwire()`` and ``ext.init_app(app)``.

Settings are the app's ``ERRWIRE_*`` config keys: every ``errwire.Config``
option upper-cased with the prefix (``ERRWIRE_DSN``, ``ERRWIRE_QUEUE_SIZE``,
...), validated with errors that name the key, plus these per-app keys:

``ERRWIRE_ENABLED``            ``False``: nothing is wired for this app (no overhead)
``ERRWIRE_CAPTURE_4XX``        also report 4xx responses (as warnings); default ``False``
``ERRWIRE_COMPONENT``          component for this app's request errors; default: detected
``ERRWIRE_FLUSH_ON_TEARDOWN``  ``True`` or seconds: flush when an app context ends; default never
``ERRWIRE_USER_ID``            a callable returning the current user's id (or ``None``); it
                               wins over ``Errwire(user_id=...)``
``ERRWIRE_TELEMETRY_PATH``     serve ``status.json`` and ``metrics`` under this path; default none
``ERRWIRE_TELEMETRY_TOKEN``    the bearer token those endpoints require (with the path)

A process has one errwire runtime. The first app set up starts it with its
settings; a later app joins it and must not ask for different runtime options
(the other ``ERRWIRE_*`` keys): that raises ``RuntimeError``. The per-app keys
above differ freely between apps. ``ERRWIRE_*`` environment variables win over
app config, as they do over ``errwire.init()``.

Per request, the extension's WSGI wrapper (``app.wsgi_app``, the way Flask
documents middleware) sets a lazy request snapshot that is read only if an
error is captured. The user it names comes from, in order: the ``user_id``
callable (config key or ``Errwire(user_id=...)``), called in the request when
an event is captured; flask-login's user, if flask-login already loaded it in
this request (errwire never imports flask-login, nor makes it load a user);
the server's ``REMOTE_USER``. Like every user id it is hashed unless
``ERRWIRE_SEND_DEFAULT_PII`` is on. Unhandled exceptions are captured once, from Flask's
``got_request_exception`` signal. The ``flask errwire`` command group has the
same commands as the ``errwire`` console script, using this app's settings.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import click
from flask import Flask, Response, current_app, g, has_app_context
from flask.cli import AppGroup
from flask.signals import got_request_exception
from werkzeug.exceptions import HTTPException

from errwire import _api, _commands
from errwire._config import FIELDS, Config, make_config
from errwire._context import _request as _request_var
from errwire._context import current_request
from errwire._internal import internal_error
from errwire._request import request_info

__all__ = ["AppSettings", "Errwire", "ErrwireState", "cli", "read_settings"]

KEY = "errwire"
PREFIX = "ERRWIRE_"
_APP_KEYS = (
    "capture_4xx",
    "component",
    "flush_on_teardown",
    "telemetry_path",
    "telemetry_token",
    "user_id",
)
_WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
UserId = Callable[[], object]
# The contextvar's own methods: a wrapper function per request is measurable here.
_set_request = _request_var.set
_reset_request = _request_var.reset


def _label(name: str) -> str:
    return PREFIX + name.upper()


@dataclass(frozen=True, slots=True)
class AppSettings:
    """The settings that belong to one app (the rest is the process runtime's)."""

    capture_4xx: bool = False
    component: str | None = None
    flush_on_teardown: float | None = None  # seconds; None: never
    telemetry_path: str | None = None  # serve status.json and metrics under it (bearer token)
    telemetry_token: str | None = None
    user_id: UserId | None = None  # returns the current user's id; called only on capture


@dataclass(frozen=True, slots=True)
class ErrwireState:
    """What ``app.extensions["errwire"]`` holds."""

    config: Config  # as this app asked for it (the runtime may have been started by another app)
    settings: AppSettings
    active: bool  # False when ERRWIRE_ENABLED is off: nothing was wired


class Errwire:
    """The extension. Holds no app: everything lives in ``app.extensions["errwire"]``.

    ``user_id``: a callable returning the current user's id (or ``None``), for
    every app this extension is set up on; an app's ``ERRWIRE_USER_ID`` wins."""

    def __init__(self, app: Flask | None = None, *, user_id: UserId | None = None) -> None:
        if user_id is not None and not callable(user_id):
            raise TypeError(f"Errwire(user_id=...) must be a callable; got {user_id!r}")
        self.user_id = user_id
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if KEY in app.extensions:
            raise RuntimeError(
                f"errwire is already set up on the Flask app {app.name!r}: "
                "call Errwire(app) or init_app(app) once per app."
            )
        config, settings, explicit = read_settings(app.config)
        if settings.user_id is None and self.user_id is not None:
            settings = dataclasses.replace(settings, user_id=self.user_id)
        active = config.enabled
        if active:  # may raise: another app started the runtime with other options
            _commands.join_runtime(config, explicit, owner=f"Flask app {app.name!r}", label=_label)
        app.extensions[KEY] = ErrwireState(config, settings, active)
        app.cli.add_command(cli)
        if not active:
            return
        app.wsgi_app = _RequestScope(app.wsgi_app, settings)  # type: ignore[method-assign]
        got_request_exception.connect(_on_exception, app)
        app.logger.addFilter(_mark_captured_records)
        if settings.capture_4xx:
            app.after_request(_report_4xx)
        if settings.flush_on_teardown is not None:
            app.teardown_appcontext(_Flush(settings.flush_on_teardown))
        if settings.telemetry_path is not None and settings.telemetry_token is not None:
            from ._telemetry_http import register_flask

            outbox = config.resolved_outbox_path
            register_flask(app, settings.telemetry_path, settings.telemetry_token, outbox)

    @staticmethod
    def state(app: Flask) -> ErrwireState:
        """This app's errwire state (``KeyError`` if the extension is not set up on it)."""
        state: ErrwireState = app.extensions[KEY]
        return state


# ----------------------------------------------------------------------------- settings
def read_settings(values: Mapping[str, Any]) -> tuple[Config, AppSettings, list[str]]:
    """The app's ``ERRWIRE_*`` keys as a runtime ``Config``, the per-app settings, and
    the runtime options the app set explicitly. Errors name the key."""
    options: dict[str, Any] = {}
    per_app: dict[str, Any] = {}
    for key, value in values.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :].lower()
        if name in _APP_KEYS:
            per_app[name] = value
        elif name in FIELDS:
            options[name] = value
        else:
            close = difflib.get_close_matches(name, [*FIELDS, *_APP_KEYS], n=1)
            hint = f"; did you mean {_label(close[0])}?" if close else ""
            raise ValueError(f"errwire has no option {key}{hint}")
    config = make_config(options, label=_label, use_env=True)
    return config, _app_settings(per_app), list(options)


def _app_settings(values: Mapping[str, Any]) -> AppSettings:
    capture_4xx = values.get("capture_4xx", False)
    if not isinstance(capture_4xx, bool):
        raise _invalid("capture_4xx", "True or False", capture_4xx)
    component = values.get("component")
    if component is not None and not (isinstance(component, str) and component):
        raise _invalid("component", "a non-empty string or None", component)
    flush = values.get("flush_on_teardown", False)
    if flush is True:
        seconds: float | None = 2.0
    elif flush is False or flush is None:
        seconds = None
    elif isinstance(flush, int | float) and flush > 0:
        seconds = float(flush)
    else:
        raise _invalid("flush_on_teardown", "True, False or a number of seconds > 0", flush)
    from ._telemetry_http import flask_settings

    telemetry_path, telemetry_token = flask_settings(dict(values))
    user_id = values.get("user_id")
    if user_id is not None and not callable(user_id):
        raise _invalid("user_id", "a callable returning the user's id, or None", user_id)
    return AppSettings(
        capture_4xx, component, seconds, telemetry_path, telemetry_token, user_id=user_id
    )


def _invalid(name: str, expected: str, value: object) -> ValueError:
    return ValueError(f"errwire option {_label(name)} must be {expected}; got {value!r}")


# ----------------------------------------------------------------------------- per request
class _FlaskRequest:
    """The lazy snapshot: holds the WSGI environ until the request ends; read on capture."""

    __slots__ = ("captured", "environ", "settings")

    def __init__(self, environ: dict[str, Any], settings: AppSettings) -> None:
        self.environ: dict[str, Any] | None = environ
        self.settings = settings
        self.captured: BaseException | None = None

    def extract(self) -> dict[str, Any]:
        environ = self.environ
        if environ is None:  # the request is over (a thread or task it started lives on)
            return {}
        wrapper = environ.get("werkzeug.request")
        rule = getattr(wrapper, "url_rule", None)
        runtime = _api.get_runtime()
        return request_info(
            method=environ.get("REQUEST_METHOD"),
            path=environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
            route=getattr(rule, "rule", None),
            query_string=environ.get("QUERY_STRING"),
            headers=_headers(environ),
            client=environ.get("REMOTE_ADDR"),
            user_id=self.user_id(environ),
            send_default_pii=bool(runtime and runtime.config.send_default_pii),
        )

    def user_id(self, environ: Mapping[str, Any]) -> object:
        """The hook's answer, else flask-login's loaded user, else ``REMOTE_USER``."""
        hook = self.settings.user_id
        if hook is not None:
            try:
                return hook()
            except Exception as exc:  # the app's hook failed: report it, keep the event
                internal_error("Flask user_id callable", exc)
                return None
        user = _login_user()
        if user is not None:
            return user
        return environ.get("REMOTE_USER")


def _login_user() -> object:
    """flask-login's user id, only if flask-login is in use and already loaded the
    user in this request: reading ``current_user`` could query the database."""
    if "flask_login" not in sys.modules or not has_app_context():
        return None
    user = g.get("_login_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    get_id = getattr(user, "get_id", None)
    return get_id() if callable(get_id) else None


def _headers(environ: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            yield key[5:].replace("_", "-"), str(value)
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            yield key.replace("_", "-"), str(value)


class _RequestScope:
    """WSGI wrapper: a fresh snapshot per request, always reset (and invalidated) after."""

    __slots__ = ("settings", "wsgi_app")

    def __init__(self, wsgi_app: _WSGIApp, settings: AppSettings | None = None) -> None:
        self.wsgi_app = wsgi_app
        self.settings = settings or AppSettings()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not _api._enabled:
            return self.wsgi_app(environ, start_response)
        request = _FlaskRequest(environ, self.settings)
        token = _set_request(request)
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            request.environ = None
            _reset_request(token)


def _on_exception(sender: Flask, exception: BaseException, **_: Any) -> None:
    """``got_request_exception``: an exception no error handler took care of."""
    state: ErrwireState | None = sender.extensions.get(KEY)
    if state is None:
        return
    level = "error"
    if isinstance(exception, HTTPException) and (exception.code or 500) < 500:
        if not state.settings.capture_4xx:  # a client error, not the app's
            return
        level = "warning"
    request = current_request()
    if isinstance(request, _FlaskRequest):
        request.captured = exception
    _api.capture_error(exception, state.settings.component, None, level)


def _mark_captured_records(record: logging.LogRecord) -> bool:
    """Flask logs the exception it just signalled: mark that record so an errwire
    logging handler does not capture it a second time."""
    if record.exc_info:
        request = current_request()
        if isinstance(request, _FlaskRequest) and request.captured is record.exc_info[1]:
            record.errwire_skip = True
    return True


def _report_4xx(response: Response) -> Response:
    """With ``ERRWIRE_CAPTURE_4XX``: a 4xx response is reported as a warning."""
    code = response.status_code
    if 400 <= code < 500:
        request = current_request()
        if not isinstance(request, _FlaskRequest) or request.captured is None:
            environ = (request.environ if isinstance(request, _FlaskRequest) else None) or {}
            state = Errwire.state(current_app)
            rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
            where = getattr(rule, "rule", None) or environ.get("PATH_INFO", "")
            method = environ.get("REQUEST_METHOD", "")
            _api.capture_message(
                f"HTTP {response.status}: {method} {where}",
                "warning",
                state.settings.component,
                "http",
                {"status": code},
            )
    return response


class _Flush:
    __slots__ = ("timeout",)

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __call__(self, _exc: BaseException | None) -> None:
        _api.flush(self.timeout)


# ----------------------------------------------------------------------------- flask errwire
cli = AppGroup(
    "errwire",
    help="errwire telemetry: status, test event, outbox replay, worker (this app's settings).",
)


def _config() -> Config:
    state: ErrwireState | None = current_app.extensions.get(KEY)
    if state is None:
        raise click.UsageError("errwire is not set up on this app (Errwire(app) / init_app).")
    return state.config


def _finish(out: _commands.Output) -> None:
    click.echo(out.text, err=out.exit_code == _commands.EXIT_USAGE)
    click.get_current_context().exit(out.exit_code)


def _overrides(**flags: Any) -> Config:
    try:
        return _commands.with_overrides(_config(), **flags)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


_outbox_option = click.option(
    "--outbox", metavar="PATH", help="the outbox database (default: from ERRWIRE_* settings)"
)
_dsn_option = click.option(
    "--dsn", metavar="DSN", help="deliver to this Sentry DSN (default: ERRWIRE_DSN)"
)


@cli.command("status")
@_outbox_option
@click.option(
    "--redis", metavar="URL", help="the fleet in Redis (default: ERRWIRE_BUS when it is Redis)"
)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.option(
    "--watch",
    metavar="SECONDS",
    type=click.FloatRange(min=0, min_open=True),
    help="print again every SECONDS until Ctrl-C",
)
@click.option(
    "--stale-after",
    metavar="SECONDS",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="a process silent for longer is reported stale",
)
def status_command(
    outbox: str | None, redis: str | None, as_json: bool, watch: float | None, stale_after: float
) -> None:
    """Health of every process that runs errwire (exit 1 if one is unhealthy)."""
    if outbox and redis:
        raise click.UsageError("--outbox and --redis are mutually exclusive")
    config = _config()

    def produce() -> _commands.Output:
        return _commands.status(
            config, outbox_path=outbox, redis_url=redis, as_json=as_json, stale_after=stale_after
        )

    if watch is None:
        _finish(produce())
    else:
        code = _commands.watch(produce, interval=watch, write=click.echo)
        click.get_current_context().exit(code)


@cli.command("test")
@_dsn_option
@click.option(
    "--timeout",
    metavar="SECONDS",
    type=click.FloatRange(min=0, min_open=True),
    default=15.0,
    show_default=True,
    help="how long to wait for the destination",
)
def test_command(dsn: str | None, timeout: float) -> None:
    """Send one test event and report what the destination answered (exit 1 if not delivered)."""
    _finish(_commands.send_test(_overrides(dsn=dsn), timeout=timeout))


@cli.command("replay")
@click.option("--dry-run", is_flag=True, help="list what waits in the outbox; send nothing")
@click.option("--limit", metavar="N", type=click.IntRange(min=1), help="send at most N events")
@_outbox_option
@_dsn_option
@click.option("--no-progress", is_flag=True, help="no progress bar")
def replay_command(
    dry_run: bool, limit: int | None, outbox: str | None, dsn: str | None, no_progress: bool
) -> None:
    """Send the events waiting in the outbox now, oldest first (exit 1 if stopped early)."""
    progress = None if no_progress or dry_run else sys.stderr
    config = _overrides(dsn=dsn, outbox=outbox)
    _finish(_commands.replay(config, limit=limit, dry_run=dry_run, progress_file=progress))


@cli.command("worker")
@_outbox_option
@_dsn_option
@click.option(
    "--redis",
    metavar="URL",
    help="consume the Redis stream (default: ERRWIRE_BUS when it is Redis)",
)
@click.option(
    "--shutdown-timeout",
    metavar="SECONDS",
    type=click.FloatRange(min=0, min_open=True),
    help="time to finish delivering on stop",
)
def worker_command(
    outbox: str | None, dsn: str | None, redis: str | None, shutdown_timeout: float | None
) -> None:
    """Deliver in the foreground until Ctrl-C or SIGTERM: the outbox, or with the
    Redis bus the stream the web processes forward to."""
    config = _overrides(dsn=dsn, outbox=outbox, redis=redis)
    _api.shutdown()  # this process's runtime (started with the app) is idle: the worker is it
    code = _commands.worker(config, write=click.echo, shutdown_timeout=shutdown_timeout)
    click.get_current_context().exit(code)
