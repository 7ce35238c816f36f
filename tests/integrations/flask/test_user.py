"""Which user a Flask request's events name: the hook, flask-login, REMOTE_USER; hashed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from errwire._request import hash_identifier
from errwire.integrations.flask import Errwire
from errwire.testing import capture_events

from .conftest import MakeApp

ROOT = Path(__file__).resolve().parents[3]


def _user_of_failing_request(app: Flask, **environ: Any) -> object:
    with capture_events() as events:
        response = app.test_client().get("/orders/1", environ_base=environ)
    assert response.status_code == 500
    [event] = events
    return event["request"].get("user")


def test_remote_user_is_hashed_by_default(make_app: MakeApp) -> None:
    app = make_app()
    assert _user_of_failing_request(app, REMOTE_USER="alice") == hash_identifier("alice")


def test_user_id_hook_on_the_extension(make_app: MakeApp) -> None:
    calls: list[int] = []

    def user_id() -> str:
        calls.append(1)
        return "customer-7"

    app = make_app(wire=False)
    Errwire(app, user_id=user_id)
    assert app.test_client().get("/ok").status_code == 200
    assert calls == []  # read only when an event is captured
    user = _user_of_failing_request(app, REMOTE_USER="alice")  # the hook wins
    assert user == hash_identifier("customer-7") and user != "customer-7"
    assert calls == [1]


def test_user_id_hook_raw_with_send_default_pii(make_app: MakeApp) -> None:
    app = make_app(wire=False, ERRWIRE_SEND_DEFAULT_PII=True)
    Errwire(app, user_id=lambda: 42)
    assert _user_of_failing_request(app) == "42"


def test_user_id_config_key_wins_over_the_extension_hook(make_app: MakeApp) -> None:
    app = make_app(wire=False, ERRWIRE_USER_ID=lambda: "from-config")
    Errwire(app, user_id=lambda: "from-extension")
    assert _user_of_failing_request(app) == hash_identifier("from-config")
    assert Errwire.state(app).settings.user_id is not None


def test_user_id_hook_returning_none_means_no_user(make_app: MakeApp) -> None:
    app = make_app(wire=False)
    Errwire(app, user_id=lambda: None)
    assert _user_of_failing_request(app, REMOTE_USER="alice") is None


def test_user_id_must_be_callable(make_app: MakeApp) -> None:
    with pytest.raises(ValueError, match="ERRWIRE_USER_ID must be a callable"):
        make_app(ERRWIRE_USER_ID="alice")
    with pytest.raises(TypeError, match="user_id"):
        Errwire(user_id="alice")  # type: ignore[arg-type]


def test_a_failing_hook_keeps_the_event_and_is_reported(
    make_app: MakeApp, allow_internal_errors: list[tuple[str, BaseException]]
) -> None:
    def broken() -> str:
        raise LookupError("no session")

    app = make_app(wire=False)
    Errwire(app, user_id=broken)
    assert _user_of_failing_request(app) is None
    assert [where for where, _ in allow_internal_errors] == ["Flask user_id callable"]


# ----------------------------------------------------------------------------- flask-login
def _login_app(make_app: MakeApp) -> tuple[Flask, list[str]]:
    flask_login = pytest.importorskip("flask_login")
    loads: list[str] = []

    class User(flask_login.UserMixin):  # type: ignore[misc,name-defined]
        def __init__(self, user_id: str) -> None:
            self.id = user_id

    app = make_app(SECRET_KEY="test")
    manager = flask_login.LoginManager(app)

    @manager.request_loader  # type: ignore[untyped-decorator]
    def load(request: Any) -> Any:
        name = request.headers.get("X-User")
        loads.append(name or "")
        return User(name) if name else None

    @app.route("/me/fails")
    def me_fails() -> str:
        _ = flask_login.current_user.is_authenticated  # the view loads the user
        raise RuntimeError("after reading the user")

    return app, loads


def test_flask_login_user_already_loaded(make_app: MakeApp) -> None:
    app, loads = _login_app(make_app)
    with capture_events() as events:
        app.test_client().get("/me/fails", headers={"X-User": "u-9"})
    assert loads == ["u-9"]
    assert events[0]["request"]["user"] == hash_identifier("u-9")


def test_flask_login_user_is_never_loaded_by_errwire(make_app: MakeApp) -> None:
    app, loads = _login_app(make_app)
    with capture_events() as events:
        app.test_client().get(
            "/orders/1", headers={"X-User": "u-9"}, environ_base={"REMOTE_USER": "bob"}
        )
    assert loads == []  # the view never asked: errwire does not query the user store
    assert events[0]["request"]["user"] == hash_identifier("bob")


def test_flask_login_anonymous_user_is_no_user(make_app: MakeApp) -> None:
    app, loads = _login_app(make_app)
    with capture_events() as events:
        app.test_client().get("/me/fails")
    assert loads == [""] and events[0]["request"].get("user") is None


def test_flask_login_is_not_imported_by_errwire(data_dir: str) -> None:
    code = """
import sys
from flask import Flask
from errwire.integrations.flask import Errwire
from errwire.testing import capture_events
app = Flask("x")
app.config.update(ERRWIRE_TRANSPORT="memory", ERRWIRE_DATA_DIR=sys.argv[1])
@app.route("/")
def fail():
    raise RuntimeError("boom")
Errwire(app)
with capture_events() as events:
    app.test_client().get("/")
assert len(events) == 1, events
assert "flask_login" not in sys.modules
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERRWIRE_")}
    proc = subprocess.run(
        [sys.executable, "-c", code, data_dir],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
