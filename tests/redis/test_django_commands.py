"""Django's management commands in Redis mode, each in its own process (Django is
configured only for the Django tests' directory): ``telemetry_status`` shows the
fleet, ``telemetry_worker`` consumes the stream; the bus comes from the settings
(here ``ERRWIRE_BUS``, which wins over ``ERRWIRE``) or from ``--redis``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from errwire._redis import Keys
from errwire._redis._scripts import Scripts
from tests.redis._processes import ROOT, Proc, _env
from tests.support.polling import until
from tests.support.redis_server import RedisServer


def _django_env(data_dir: Path, **settings: Any) -> dict[str, str]:
    env = _env(data_dir, **settings)
    env["DJANGO_SETTINGS_MODULE"] = "tests.integrations.django.settings"
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _worker_delivers_one(args: list[str], env: dict[str, str], client: Any, keys: Keys) -> str:
    """Start ``manage.py <args>``, feed the stream one event, see it delivered, stop
    the worker with SIGTERM (exit 0); the worker's output."""
    worker = Proc([sys.executable, "-m", "django", *args], env, stdin=False)
    try:
        worker.wait_line(lambda line: "consuming" in line)
        payload = {"event_id": "b" * 32, "fingerprint": "f", "component": "c", "repeats": 0}
        Scripts(client, keys).append([json.dumps(payload)], 1000)
        assert until(lambda: client.hget(keys.totals, "delivered") == "1", timeout=30), worker.text
        assert worker.terminate() == 0
        return worker.text
    finally:
        worker.close()


def test_telemetry_status_shows_the_fleet_of_the_configured_bus(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    done = _manage("telemetry_status", "--json", env=_django_env(tmp_path, bus=redis_server.url))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stream"]["group"] == "errwire-workers"
    assert report["identity"]["holds"]


def test_telemetry_worker_consumes_the_stream_and_stops_on_sigterm(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    env = _django_env(tmp_path, bus=redis_server.url, dedup_window_seconds=0)
    text = _worker_delivers_one(["telemetry_worker"], env, client, keys)
    assert "received=1 delivered=1" in text


def test_the_redis_option_of_the_django_commands(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    env = _django_env(tmp_path, dedup_window_seconds=0)  # the settings keep the in-process bus
    status = _manage("telemetry_status", "--json", "--redis", redis_server.url, env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["stream"]["group"] == "errwire-workers"
    both = _manage("telemetry_status", "--redis", redis_server.url, "--outbox", "x", env=env)
    assert both.returncode == 2 and "mutually exclusive" in both.stderr

    _worker_delivers_one(["telemetry_worker", "--redis", redis_server.url], env, client, keys)
