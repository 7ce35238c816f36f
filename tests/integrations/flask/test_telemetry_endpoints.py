"""``ERRWIRE_TELEMETRY_PATH`` / ``ERRWIRE_TELEMETRY_TOKEN``: the dashboard's
``status.json`` and ``metrics`` on a Flask app, behind a bearer token."""

from __future__ import annotations

import pytest

from .conftest import MakeApp

TOKEN = "flask-telemetry-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_endpoints_answer_with_the_token_only(make_app: MakeApp) -> None:
    app = make_app(ERRWIRE_TELEMETRY_PATH="/ops/telemetry", ERRWIRE_TELEMETRY_TOKEN=TOKEN)
    client = app.test_client()
    status = client.get("/ops/telemetry/status.json", headers=AUTH)
    assert status.status_code == 200
    assert status.content_type == "application/json"
    assert status.headers["Cache-Control"] == "no-store"
    assert status.json is not None and {"runtimes", "totals", "series"} <= set(status.json)
    metrics = client.get("/ops/telemetry/metrics", headers=AUTH)
    assert metrics.status_code == 200
    assert metrics.content_type.startswith("text/plain; version=0.0.4")
    assert b"errwire_dropped_total" in metrics.data
    refused = client.get("/ops/telemetry/metrics")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="errwire"'
    assert (
        client.get("/ops/telemetry/metrics", headers={"Authorization": "Bearer x"}).status_code
        == 401
    )
    assert client.post("/ops/telemetry/status.json", headers=AUTH).status_code == 405
    assert client.get("/ops/telemetry/other", headers=AUTH).status_code == 404
    assert client.get("/ok").data == b"ok"


def test_not_configured_means_no_route(make_app: MakeApp) -> None:
    app = make_app()
    assert "errwire_telemetry" not in app.view_functions
    assert app.test_client().get("/telemetry/status.json", headers=AUTH).status_code == 404


def test_disabled_app_gets_no_route(make_app: MakeApp) -> None:
    app = make_app(
        ERRWIRE_ENABLED=False, ERRWIRE_TELEMETRY_PATH="/telemetry", ERRWIRE_TELEMETRY_TOKEN=TOKEN
    )
    assert "errwire_telemetry" not in app.view_functions


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ERRWIRE_TELEMETRY_PATH": "/telemetry"}, "needs ERRWIRE_TELEMETRY_TOKEN"),
        ({"ERRWIRE_TELEMETRY_TOKEN": TOKEN}, "ERRWIRE_TELEMETRY_PATH is not"),
        ({"ERRWIRE_TELEMETRY_PATH": "/t", "ERRWIRE_TELEMETRY_TOKEN": "short"}, "16 characters"),
        ({"ERRWIRE_TELEMETRY_PATH": "", "ERRWIRE_TELEMETRY_TOKEN": TOKEN}, "URL path"),
    ],
)
def test_bad_settings_name_the_key(make_app: MakeApp, config: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_app(**config)
