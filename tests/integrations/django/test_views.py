"""The health view: JSON, 200 when telemetry works or is off on purpose, 503 otherwise."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client, override_settings

import errwire
from errwire import Outcome, SendResult

from .conftest import Telemetry


def health() -> tuple[int, dict[str, Any]]:
    response = Client().get("/health/")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response.status_code, json.loads(response.content)


def test_ok_when_running(telemetry: Telemetry) -> None:
    errwire.capture_message("hello")
    telemetry.events()
    status, body = health()
    assert status == 200
    assert body["status"] == "ok"
    assert body["problems"] == []
    assert body["worker_alive"] is True
    assert body["counters"]["delivered"] == 1
    assert body["transport"] == "memory"


def test_disabled_on_purpose_is_not_a_failure() -> None:
    with override_settings(ERRWIRE={"ENABLED": False}):
        status, body = health()
    assert (status, body["status"]) == (200, "disabled")


def test_switched_off_at_runtime_is_not_a_failure(telemetry: Telemetry) -> None:
    errwire.disable()
    status, body = health()
    assert (status, body["status"]) == (200, "disabled")


def test_configured_on_but_not_running_is_unhealthy() -> None:
    assert errwire.status()["initialised"] is False
    status, body = health()
    assert status == 503
    assert body["problems"] == ["errwire is not running"]


def test_bad_configuration_is_unhealthy() -> None:
    with override_settings(ERRWIRE={"QUEUE_SIZE": "many"}):
        status, body = health()
    assert status == 503
    assert "QUEUE_SIZE" in body["problems"][0]


class Failing:
    name = "failing"
    enforces_timeout = True

    def send(self, payload: dict[str, Any], timeout: float) -> SendResult:
        return SendResult(Outcome.RETRYABLE, detail="server said 503")

    def close(self) -> None:
        return None


def test_open_breaker_and_failures_are_unhealthy(data_dir: str) -> None:
    errwire.init(
        transport=Failing(),
        data_dir=data_dir,
        breaker_failure_threshold=1,
        storm_window_seconds=0,
        use_env=False,
    )
    errwire.capture_message("first")
    assert errwire.flush(5.0)
    status, body = health()
    assert status == 503
    assert "circuit breaker open" in body["problems"]
    assert "failure rate 100%" in body["problems"]
    assert body["counters"]["spooled"] == 1


def test_head_allowed_post_refused(telemetry: Telemetry) -> None:
    assert Client().head("/health/").status_code == 200
    assert Client().post("/health/").status_code == 405
