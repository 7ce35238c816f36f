"""The front ends in Redis mode: ``errwire status|worker --redis``, the configured
bus (ERRWIRE_BUS), Flask's ``flask errwire status``, Django's system check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from errwire import Config, MemoryTransport, cli
from errwire._commands import EXIT_FAILED, EXIT_OK, EXIT_USAGE, status, worker
from errwire._redis import FleetWorker, Keys
from errwire._redis._scripts import Scripts
from tests.support.redis_server import RedisServer


def test_status_of_an_empty_fleet(redis_server: RedisServer, capsys: Any) -> None:
    assert cli.main(["status", "--redis", redis_server.url]) == EXIT_OK
    out = capsys.readouterr().out
    assert "errwire fleet status" in out and "No live worker" in out


def test_status_json_and_unhealthy_exit_when_nobody_consumes(
    redis_server: RedisServer, client: Any, keys: Keys, capsys: Any
) -> None:
    Scripts(client, keys).append(["{}"], 1000)
    assert cli.main(["status", "--redis", redis_server.url, "--json"]) == EXIT_FAILED
    report = json.loads(capsys.readouterr().out)
    assert report["stream"]["length"] == 1
    assert report["healthy"] is False
    assert report["totals"]["stream"]["forwarded"] == 1


def test_status_reads_the_configured_bus(redis_server: RedisServer) -> None:
    out = status(Config(bus=redis_server.url))
    assert out.exit_code == EXIT_OK and "fleet status" in out.text
    # --outbox still asks for one host's outbox database
    out = status(Config(bus=redis_server.url), outbox_path="/nonexistent/outbox.sqlite3")
    assert "fleet" not in out.text


def test_status_when_redis_is_unreachable(capsys: Any) -> None:
    code = cli.main(["status", "--redis", "redis://:pw@127.0.0.1:1/0"])
    assert code == EXIT_FAILED
    out = capsys.readouterr().out
    assert "cannot read the fleet status" in out and "pw" not in out


def test_status_with_a_malformed_url_is_a_usage_error(capsys: Any) -> None:
    assert cli.main(["status", "--redis", "http://nope"]) == EXIT_USAGE
    assert "--redis" in capsys.readouterr().err


def test_the_worker_command_consumes_and_stops_on_request(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    memory = MemoryTransport()
    stop = threading.Event()
    lines: list[str] = []
    started: list[FleetWorker] = []

    def on_start(fleet: FleetWorker) -> None:
        started.append(fleet)
        payload = {"event_id": "a" * 32, "fingerprint": "f", "component": "c", "repeats": 0}
        Scripts(client, keys).append([json.dumps(payload)], 1000)

    config = Config(bus=redis_server.url, data_dir=str(tmp_path), heartbeat_interval_seconds=0.05)
    done = threading.Thread(
        target=lambda: lines.append(
            str(worker(config, write=lines.append, stop=stop, transport=memory, on_start=on_start))
        )
    )
    done.start()
    try:
        assert _wait(lambda: len(memory.events) == 1)
    finally:
        stop.set()
        done.join(10)
    assert not done.is_alive()
    assert lines[-1] == str(EXIT_OK)
    assert "consuming" in lines[0] and "received=1 delivered=1" in lines[-2]
    assert started and started[0].runtime_id in lines[0]
    beat = json.loads(client.get(keys.heartbeat(started[0].runtime_id)))
    assert beat["final"] is True and beat["role"] == "worker"


def _wait(predicate: Any, timeout: float = 10.0) -> bool:
    event = threading.Event()
    deadline = timeout
    while deadline > 0:
        if predicate():
            return True
        event.wait(0.02)
        deadline -= 0.02
    return bool(predicate())


def test_flask_status_uses_the_configured_bus(redis_server: RedisServer, tmp_path: Path) -> None:
    from flask import Flask

    from errwire.integrations.flask import Errwire

    app = Flask("fleet")
    app.config.update(ERRWIRE_BUS=redis_server.url, ERRWIRE_DATA_DIR=str(tmp_path))
    Errwire(app)
    result = app.test_cli_runner().invoke(args=["errwire", "status"])
    assert result.exit_code == 0, result.output
    assert "errwire fleet status" in result.output


_DJANGO_CHECK = """
import importlib.util, json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.integrations.django.settings"
import django
django.setup()
from django.test import override_settings
real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == "redis" else real(name, *a)
from errwire.integrations.django import conf
from errwire.integrations.django.checks import check_settings
with override_settings(ERRWIRE={"BUS": "redis://cache:6379/0", "ENABLED": False}):
    conf.clear_cache()
    print(json.dumps([[e.id, e.msg] for e in check_settings()]))
"""


def test_django_check_names_the_missing_redis_package() -> None:
    # its own process: Django is configured only for the Django tests' directory
    out = subprocess.run(
        [sys.executable, "-c", _DJANGO_CHECK],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("ERRWIRE_")},
    )
    errors = json.loads(out.stdout.strip().splitlines()[-1])
    assert [e[0] for e in errors] == ["errwire.E008"]
    assert 'ERRWIRE["BUS"]' in errors[0][1] and "redis package" in errors[0][1]


def test_the_test_command_checks_the_destination_directly_in_redis_mode(
    redis_server: RedisServer, client: Any, keys: Keys, tmp_path: Path
) -> None:
    from errwire._commands import send_test

    memory = MemoryTransport()
    out = send_test(Config(bus=redis_server.url, data_dir=str(tmp_path)), transport=memory)
    assert out.exit_code == EXIT_OK, out.text
    assert len(memory.events) == 1
    assert client.xlen(keys.stream) == 0  # not through the stream
