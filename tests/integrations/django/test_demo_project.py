"""Boot demo_project for real (its settings, migrations, WSGI app) in its own process,
break a view over HTTP, stop the server gracefully (SIGTERM) and find the event,
scrubbed and with its request, in the local SQLite sink."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from errwire._local import read_events

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "demo_project"

SERVE = """
import signal, threading
import django
from django.core.management import call_command
django.setup()
call_command("migrate", "--noinput", verbosity=0)
from wsgiref.simple_server import WSGIRequestHandler, make_server
from demo.wsgi import application

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

server = make_server("127.0.0.1", 0, application, handler_class=Quiet)
# A graceful stop, as a production server does on SIGTERM: finish the request in
# hand, stop serving, exit normally (errwire delivers what is queued at exit).
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print(server.server_port, flush=True)
server.serve_forever()
"""


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_demo_project_failing_view_lands_in_the_local_sink(tmp_path: Path) -> None:
    data = tmp_path / "errwire"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ERRWIRE_", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "DEMO_DATABASE": str(tmp_path / "demo.sqlite3"),
        "DEMO_DEBUG": "0",
        "ERRWIRE_DATA_DIR": str(data),
        "PYTHONPATH": str(DEMO),
    }
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-c", SERVE],
        cwd=DEMO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip().isdigit(), line + (proc.stderr.read() if proc.stderr else "")
        base = f"http://127.0.0.1:{int(line)}"
        assert fetch(base + "/")[0] == 200
        assert fetch(base + "/ok/")[0] == 200
        assert fetch(base + "/fail/database/?token=query-value-q9z")[0] == 500
        assert fetch(base + "/fail/not-found/")[0] == 404
        status, body = fetch(base + "/fail/secrets/")
        assert status == 200
        assert b"4111" not in body and b"hunter2" not in body
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            _, err = proc.communicate(timeout=10)
            raise AssertionError("the demo did not stop on SIGTERM:\n" + err[-8000:]) from None
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    events = read_events(str(data / "events.sqlite3"))
    database = [e for e in events if e["category"] == "database"]
    assert len(database) == 1, [e["message"] for e in events]
    [event] = database
    assert event["exception"]["type"] == "django.db.utils.OperationalError"
    assert event["environment"] == "production"
    assert event["component"] == "shop"
    assert event["request"]["route"] == "/fail/database/"
    assert event["request"]["method"] == "GET"
    assert event["request"]["path"] == "/fail/database/"
    assert "query-value-q9z" not in json.dumps(event)
    assert not [e for e in events if "no such product" in e["message"]]  # 404: not an error
    stored = json.dumps(events)
    assert "4111" not in stored and "hunter2" not in stored and "jane.doe" not in stored
