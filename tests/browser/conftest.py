"""The demo project served for real (uvicorn on 127.0.0.1, a socket this process bound
on a free port), Debian's Chromium driven by Playwright, and a fault receiver
standing in for Sentry so a test can make delivery fail.

The server runs on a temporary database and data directory; it is stopped by
its PID. Screenshots go to ``test-artifacts/`` (ignored by git)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.fault_receiver import FaultReceiver

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo_project"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "browser-test-password"
BREAKER_THRESHOLD = 2


@dataclass
class DemoServer:
    base: str
    token: str
    receiver: FaultReceiver
    log: Path

    def url(self, path: str) -> str:
        return self.base + path

    def login(self, context: BrowserContext, username: str) -> Page:
        """Log in through the demo's login form; returns the page (on /telemetry/)."""
        page = context.new_page()
        page.goto(self.url("/telemetry/"))
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page


@pytest.fixture(scope="package")
def receiver() -> Iterator[FaultReceiver]:
    fault = FaultReceiver().start()
    yield fault
    fault.stop()


@pytest.fixture(scope="package")
def demo_server(
    tmp_path_factory: pytest.TempPathFactory, receiver: FaultReceiver
) -> Iterator[DemoServer]:
    tmp = tmp_path_factory.mktemp("demo-server")
    token = secrets.token_urlsafe(24)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ERRWIRE_", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "PYTHONPATH": str(DEMO),
        "PYTHONUNBUFFERED": "1",
        "DEMO_DATABASE": str(tmp / "demo.sqlite3"),
        "DEMO_DEBUG": "0",
        "DEMO_STAFF_PASSWORD": PASSWORD,
        "DEMO_DASHBOARD_TOKEN": token,
        "ERRWIRE_DATA_DIR": str(tmp / "errwire"),
        # to the fault receiver instead of the local sink, so delivery can be made to fail
        "ERRWIRE_DSN": receiver.dsn,
        # every request's error is its own send: nothing folded, nothing deduplicated
        "ERRWIRE_STORM_WINDOW_SECONDS": "0",
        "ERRWIRE_DEDUP_WINDOW_SECONDS": "0",
        "ERRWIRE_BREAKER_FAILURE_THRESHOLD": str(BREAKER_THRESHOLD),
        "ERRWIRE_BREAKER_RECOVERY_SECONDS": "300",
        "ERRWIRE_SEND_TIMEOUT_SECONDS": "5",
    }
    for command in (["migrate", "--noinput", "-v0"], ["demo_users"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=DEMO,
            env=env,
            check=True,
            capture_output=True,
        )
    # The socket is bound and listening before the server starts: no port race, and
    # the first request simply waits in the backlog until uvicorn accepts it.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    log = tmp / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--fd",
                str(sock.fileno()),
                "--lifespan",
                "off",
                "--no-access-log",
                "demo.asgi:application",
            ],
            cwd=DEMO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=(sock.fileno(),),
        )
    sock.close()
    try:
        yield DemoServer(f"http://127.0.0.1:{port}", token, receiver, log)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
