"""The Flask extension: setup, settings, capture, per-request context."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import pytest
from flask import Flask

import errwire
from errwire import _api
from errwire._context import current_request
from errwire.integrations.flask import AppSettings, Errwire, read_settings
from errwire.logging import ErrwireHandler
from errwire.testing import capture_events

from .conftest import MakeApp


def test_captures_an_unhandled_exception_once_with_the_request(make_app: MakeApp) -> None:
    app = make_app()
    with capture_events() as events:
        response = app.test_client().get(
            "/orders/42?card=4111111111111111",
            headers={"User-Agent": "pytest", "Cookie": "session=secret", "X-Api-Key": "k"},
            environ_base={"REMOTE_ADDR": "10.1.2.3"},
        )
    assert response.status_code == 500
    assert len(events) == 1
    event = events[0]
    assert event["exception"]["type"].endswith("PaymentError")
    assert event["level"] == "error"
    request = event["request"]
    assert request["method"] == "GET"
    assert request["route"] == "/orders/<int:order_id>"
    assert request["path"] == "/orders/42"
    assert request["query"] == {"card": "[REDACTED]"}
    assert request["headers"]["User-Agent"] == "pytest"
    assert "Cookie" not in request["headers"] and "X-Api-Key" not in request["headers"]
    # the raw address only with send_default_pii; without it anonymised (or left out)
    assert request.get("client", "10.1.2.0") == "10.1.2.0"


def test_client_address_with_send_default_pii(make_app: MakeApp) -> None:
    app = make_app(ERRWIRE_SEND_DEFAULT_PII=True)
    with capture_events() as events:
        app.test_client().get("/orders/1", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert events[0]["request"]["client"] == "10.1.2.3"


def test_application_factory_keeps_state_in_app_extensions(make_app: MakeApp) -> None:
    ext = Errwire()
    first, second = make_app("first", wire=False), make_app("second", wire=False)
    ext.init_app(first)
    ext.init_app(second)
    assert not hasattr(ext, "app")
    assert Errwire.state(first).active and Errwire.state(second).active
    with capture_events() as events:
        first.test_client().get("/orders/1")
        second.test_client().get("/orders/2")
    assert sorted(e["request"]["path"] for e in events) == ["/orders/1", "/orders/2"]


def test_second_init_app_on_the_same_app_raises(make_app: MakeApp) -> None:
    app = make_app()
    with pytest.raises(RuntimeError, match="already set up on the Flask app 'shop'"):
        Errwire().init_app(app)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ERRWIRE_QUEUE_SIZE", "many", "ERRWIRE_QUEUE_SIZE must be an integer"),
        ("ERRWIRE_QUEUESIZE", 10, "no option ERRWIRE_QUEUESIZE; did you mean ERRWIRE_QUEUE_SIZE"),
        ("ERRWIRE_CAPTURE_4XXX", True, "did you mean ERRWIRE_CAPTURE_4XX"),
        ("ERRWIRE_CAPTURE_4XX", "yes", "ERRWIRE_CAPTURE_4XX must be True or False"),
        ("ERRWIRE_FLUSH_ON_TEARDOWN", -1, "ERRWIRE_FLUSH_ON_TEARDOWN must be True, False"),
        ("ERRWIRE_COMPONENT", "", "ERRWIRE_COMPONENT must be a non-empty string"),
        ("ERRWIRE_DSN", "not a dsn", "ERRWIRE_DSN must be a Sentry DSN"),
    ],
)
def test_bad_settings_name_the_key(
    make_app: MakeApp, key: str, value: object, message: str
) -> None:
    app = make_app(wire=False, **{key: value})
    with pytest.raises(ValueError, match=message):
        Errwire(app)
    assert "errwire" not in app.extensions  # nothing half set up: fix the key and retry


def test_settings_split_into_runtime_options_and_per_app_settings() -> None:
    config, settings, explicit = read_settings(
        {
            "ERRWIRE_QUEUE_SIZE": 500,
            "ERRWIRE_CAPTURE_4XX": True,
            "ERRWIRE_FLUSH_ON_TEARDOWN": True,
            "ERRWIRE_COMPONENT": "shop",
            "SECRET_KEY": "ignored",
        }
    )
    assert config.queue_size == 500 and explicit == ["queue_size"]
    assert settings == AppSettings(capture_4xx=True, component="shop", flush_on_teardown=2.0)
    assert read_settings({"ERRWIRE_FLUSH_ON_TEARDOWN": 0.5})[1].flush_on_teardown == 0.5


def test_environment_wins_over_app_config(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERRWIRE_QUEUE_SIZE", "123")
    config, _, _ = read_settings({"ERRWIRE_QUEUE_SIZE": 500})
    assert config.queue_size == 123


def test_client_errors_are_not_errors_by_default(make_app: MakeApp) -> None:
    app = make_app()
    trapping = make_app("trapping", TRAP_HTTP_EXCEPTIONS=True)
    with capture_events() as events:
        assert app.test_client().get("/missing").status_code == 404
        assert app.test_client().get("/no-such-route").status_code == 404
        assert app.test_client().get("/teapot").status_code == 418
        trapping.test_client().get("/missing")  # reaches got_request_exception
    assert events == []


def test_capture_4xx_is_a_per_app_setting(make_app: MakeApp) -> None:
    quiet = make_app("quiet")
    loud = make_app("loud", ERRWIRE_CAPTURE_4XX=True, ERRWIRE_COMPONENT="storefront")
    trapping = make_app("trapping", ERRWIRE_CAPTURE_4XX=True, TRAP_HTTP_EXCEPTIONS=True)
    with capture_events() as events:
        quiet.test_client().get("/missing")
        loud.test_client().get("/missing")
        loud.test_client().get("/ok")
        trapping.test_client().get("/teapot")
    assert len(events) == 2
    trapped, response_event = sorted(events, key=lambda e: e["origin"])
    assert response_event["message"] == "HTTP 404 NOT FOUND: GET /missing"
    assert response_event["level"] == "warning" and response_event["component"] == "storefront"
    assert response_event["request"]["path"] == "/missing"
    assert trapped["exception"]["type"] == "werkzeug.exceptions.ImATeapot"
    assert trapped["level"] == "warning"


def test_several_apps_share_one_runtime_and_conflicts_are_refused(make_app: MakeApp) -> None:
    make_app("first", ERRWIRE_QUEUE_SIZE=100)
    runtime = _api.get_runtime()
    make_app("same", ERRWIRE_QUEUE_SIZE=100, ERRWIRE_CAPTURE_4XX=True)  # per-app keys may differ
    assert _api.get_runtime() is runtime
    with pytest.raises(RuntimeError) as failure:
        make_app("other", ERRWIRE_QUEUE_SIZE=200)
    text = str(failure.value)
    assert "started by Flask app 'first'" in text
    assert "Flask app 'other' sets ERRWIRE_QUEUE_SIZE=200, the runtime has 100" in text
    assert _api.get_runtime() is runtime


def test_disabled_app_wires_nothing(make_app: MakeApp) -> None:
    app = make_app(ERRWIRE_ENABLED=False)
    wsgi_app = app.wsgi_app
    state = Errwire.state(app)
    assert not state.active
    assert _api.get_runtime() is None
    assert type(wsgi_app).__name__ == "method"  # not wrapped
    assert app.test_client().get("/orders/1").status_code == 500


def test_runtime_toggle_passes_requests_straight_through(make_app: MakeApp) -> None:
    seen: list[Any] = []
    app = make_app()

    @app.route("/peek")
    def peek() -> str:
        seen.append(current_request())
        return "ok"

    client = app.test_client()
    client.get("/peek")
    errwire.disable()
    client.get("/peek")
    assert seen[0] is not None and seen[1] is None


def test_no_request_leaks_after_the_request(make_app: MakeApp) -> None:
    app = make_app()
    contexts: list[contextvars.Context] = []

    @app.route("/spawn")
    def spawn() -> str:
        contexts.append(contextvars.copy_context())  # what a thread or task started here gets
        return "ok"

    client = app.test_client()
    with capture_events() as events:
        client.get("/spawn")
        assert current_request() is None
        contexts[0].run(errwire.capture_message, "later, from work the request started")
        client.get("/orders/7")
    failure, later = sorted(events, key=lambda e: e["origin"])
    assert later["request"] is None
    assert failure["request"]["path"] == "/orders/7"


def test_logged_exception_is_not_captured_twice(make_app: MakeApp) -> None:
    app = make_app()
    handler = ErrwireHandler()
    app.logger.addHandler(handler)
    try:
        with capture_events() as events:
            app.test_client().get("/orders/3")
            app.logger.error("unrelated", exc_info=ValueError("other"))
    finally:
        app.logger.removeHandler(handler)
    types = sorted(e["exception"]["type"].rsplit(".", 1)[-1] for e in events)
    assert types == ["PaymentError", "ValueError"]


def test_flush_on_teardown_only_when_configured(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes: list[float] = []

    def flush(timeout: float = 2.0) -> bool:
        flushes.append(timeout)
        return True

    monkeypatch.setattr(_api, "flush", flush)
    make_app("default").test_client().get("/ok")
    assert flushes == []
    make_app("flushing", ERRWIRE_FLUSH_ON_TEARDOWN=0.25).test_client().get("/ok")
    assert flushes == [0.25]


def test_joins_a_runtime_started_by_errwire_init(make_app: MakeApp, data_dir: str) -> None:
    runtime = errwire.init(transport=errwire.MemoryTransport(), data_dir=data_dir, use_env=False)
    app = Flask("plain")
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/")
    def index() -> str:
        raise KeyError("x")

    Errwire(app)
    assert _api.get_runtime() is runtime
    with capture_events() as events:
        app.test_client().get("/")
    assert events[0]["exception"]["type"] == "builtins.KeyError"


def test_errors_inside_errwire_do_not_break_the_request(
    make_app: MakeApp, allow_internal_errors: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    class Broken:
        def extract(self) -> dict[str, Any]:
            raise RuntimeError("snapshot failed")

    @app.route("/broken")
    def broken() -> str:
        from errwire._context import set_request

        set_request(Broken())
        raise ValueError("boom")

    with caplog.at_level(logging.CRITICAL, logger="errwire"):
        assert app.test_client().get("/broken").status_code == 500
    assert allow_internal_errors and allow_internal_errors[0][0] == "request snapshot"
