"""``ErrwireMiddleware(app, telemetry_path=..., telemetry_token=...)``: the dashboard's
``status.json`` and ``metrics`` for any ASGI app, behind a bearer token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from errwire.integrations.asgi import ErrwireMiddleware

from .conftest import BODY, START_200, App, Message, get, run, serving

TOKEN = "asgi-telemetry-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    message: Message = dict(BODY)
    await send(START_200)
    await send(message)


def make(data_dir: str, **options: Any) -> App:
    return ErrwireMiddleware(
        hello,
        telemetry_path="/ops/telemetry/",
        telemetry_token=TOKEN,
        transport="memory",
        data_dir=data_dir,
        **options,
    )


def test_without_the_option_nothing_is_put_in_front_of_the_app(data_dir: str) -> None:
    middleware = ErrwireMiddleware(hello, transport="memory", data_dir=data_dir)
    response = run(get(middleware, "/ops/telemetry/status.json"))
    assert (response.status_code, response.text) == (200, "ok")  # the app answered


def test_endpoints_answer_with_the_token_only(data_dir: str) -> None:
    async def scenario() -> dict[str, httpx.Response]:
        async with serving(make(data_dir)) as client:
            return {
                "status": await client.get("/ops/telemetry/status.json", headers=AUTH),
                "metrics": await client.get("/ops/telemetry/metrics", headers=AUTH),
                "no token": await client.get("/ops/telemetry/status.json"),
                "wrong": await client.get(
                    "/ops/telemetry/metrics", headers={"Authorization": "Bearer nope"}
                ),
                "post": await client.post("/ops/telemetry/status.json", headers=AUTH),
                "head": await client.head("/ops/telemetry/metrics", headers=AUTH),
                "unknown": await client.get("/ops/telemetry/secrets", headers=AUTH),
                "app": await client.get("/ops/telemetryish"),
            }

    answers = run(scenario())
    status = answers["status"]
    assert status.status_code == 200
    assert status.headers["content-type"] == "application/json"
    assert status.headers["cache-control"] == "no-store"
    assert {"runtimes", "totals", "series", "warnings"} <= set(status.json())
    metrics = answers["metrics"]
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "errwire_captured_total" in metrics.text
    for refused in ("no token", "wrong"):
        assert answers[refused].status_code == 401
        assert answers[refused].headers["www-authenticate"] == 'Bearer realm="errwire"'
    assert answers["post"].status_code == 405 and answers["post"].headers["allow"] == "GET, HEAD"
    assert answers["head"].status_code == 200 and answers["head"].content == b""
    assert int(answers["head"].headers["content-length"]) == len(metrics.content)
    assert answers["unknown"].status_code == 404
    assert answers["app"].text == "ok"  # not under the path: the app answers


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"telemetry_token": None}, "telemetry_path needs telemetry_token"),
        ({"telemetry_token": "short"}, "at least 16 characters"),
        ({"telemetry_path": "/"}, "must be a URL path"),
        ({"telemetry_path": "/a b"}, "must be a URL path"),
    ],
)
def test_bad_options_name_the_keyword(data_dir: str, options: dict[str, Any], message: str) -> None:
    kwargs: dict[str, Any] = {
        "telemetry_path": "/telemetry",
        "telemetry_token": TOKEN,
        "transport": "memory",
        "data_dir": data_dir,
        **options,
    }
    with pytest.raises(ValueError, match=message):
        ErrwireMiddleware(hello, **kwargs)
