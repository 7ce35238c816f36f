"""`make demo`: migrate, serve on 127.0.0.1:8000, drive a burst of traffic, show
`telemetry_status`, then keep serving until Ctrl-C.

Run from demo_project/ with the project's virtual environment. DEMO_PORT picks
another port; ERRWIRE_DSN sends events to Sentry instead of the local sink.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
PORT = int(os.environ.get("DEMO_PORT", "8000"))
BASE = f"http://{HOST}:{PORT}"
LOG = HERE / ".errwire" / "server.log"
STAFF_LOGIN = f"staff / {os.environ.get('DEMO_STAFF_PASSWORD', 'errwire-demo')}"

BURST = [
    ("/ok/", 20),
    ("/async/ok/", 10),
    ("/fail/database/", 5),
    ("/fail/timeout/", 3),
    ("/fail/validation/?quantity=-3", 5),
    ("/fail/noisy/", 2),
    ("/fail/secrets/", 1),
    ("/fail/logged/", 3),
    ("/fail/not-found/", 5),
    ("/async/fail/", 3),
]


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def manage(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (this interpreter, our own manage.py)
        [sys.executable, "manage.py", *args],
        cwd=HERE,
        check=check,
        text=True,
        capture_output=True,
    )


def port_is_free() -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, PORT))
        except OSError:
            return False
    return True


def get(path: str) -> int:
    try:
        with urllib.request.urlopen(BASE + path, timeout=10) as response:  # noqa: S310
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code
    except OSError:
        return 0


def wait_until_up(server: subprocess.Popen[bytes], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        if get("/health/") in (200, 503):
            return True
        time.sleep(0.2)
    return False


def burst() -> None:
    jobs = [path for path, times in BURST for _ in range(times)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(get, jobs))
    seen: dict[str, Counter[int]] = {}
    for path, status in zip(jobs, statuses, strict=True):
        seen.setdefault(path, Counter())[status] += 1
    for path, counts in seen.items():
        codes = ", ".join(f"{n} x {code}" for code, n in sorted(counts.items()))
        print(f"    {path:<34} {codes}")


def stop_server(server: subprocess.Popen[bytes], grace: float) -> None:
    if server.poll() is not None:
        return
    try:
        server.wait(timeout=max(grace, 0.001))
        return
    except subprocess.TimeoutExpired:
        pass
    server.send_signal(signal.SIGINT)  # runserver exits on it; errwire flushes at exit
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def main() -> int:
    destination = (
        "Sentry (ERRWIRE_DSN)" if os.environ.get("ERRWIRE_DSN") else "the local SQLite sink"
    )
    say(f"errwire demo: events go to {destination}")
    if not port_is_free():
        print(f"Port {PORT} is in use. Run `DEMO_PORT=8001 make demo` to use another one.")
        return 1
    say("migrating the demo database (SQLite)")
    manage("migrate", "--noinput")
    say("the dashboard's staff login")
    print("    " + manage("demo_users").stdout.strip())
    say("errwire's system checks")
    print(manage("check", "--tag", "errwire", check=False).stderr.strip() or "    no issues")

    LOG.parent.mkdir(exist_ok=True)
    log = LOG.open("wb")
    say(f"starting the server on {BASE} (its log: {LOG})")
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
        cwd=HERE,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        if not wait_until_up(server):
            print(f"The server did not start; see {LOG}")
            return 1
        say("driving a short burst of traffic")
        burst()
        say("a management command that fails: manage.py demo_fail")
        failed = manage("demo_fail", check=False)
        last = failed.stderr.strip().splitlines()[-1:] or ["(no output)"]
        print(f"    exit status {failed.returncode}: {last[0]}")
        time.sleep(2.5)  # one heartbeat interval (1 s in the demo's settings) and some slack
        say("manage.py telemetry_status")
        status = manage("telemetry_status", check=False)
        print(status.stdout.rstrip())
        if status.returncode:
            print(status.stderr.rstrip())
        say("ready")
        print(
            f"""
    Open {BASE}/            the demo: every page explained and linked
         {BASE}/telemetry/  the live telemetry dashboard (log in: {STAFF_LOGIN})
         {BASE}/events/     what errwire recorded (scrubbed), newest first
         {BASE}/health/     the health view (JSON)

    In another terminal:  cd demo_project
                          ../.venv/bin/python manage.py telemetry_status --watch 2
    Press Ctrl-C to stop the server.
""",
            flush=True,
        )
        server.wait()
    except KeyboardInterrupt:
        # Ctrl-C in the terminal reached the server too: let it deliver and exit by itself.
        print("\nstopping the server (it delivers what is queued first)...", flush=True)
        stop_server(server, grace=15.0)
    finally:
        stop_server(server, grace=0.0)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
