"""Regenerate docs/dashboard.png: the demo's dashboard at 1280x800 with some traffic.

    cd demo_project && ../.venv/bin/python screenshot.py [--minutes 4]

Serves the demo (uvicorn, a temporary database and data directory, the local
sink), sends the failing pages a little traffic every few seconds for a few
minutes so the chart has more than one bar, logs in as staff with Debian's
Chromium (Playwright) and saves the screenshot.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "dashboard.png"
PASSWORD = "screenshot-only-password"  # noqa: S105
PAGES = [
    "/fail/validation/?quantity=-3",
    "/fail/database/",
    "/fail/timeout/",
    "/fail/logged/",
    "/fail/noisy/",
    "/async/fail/",
    "/ok/",
]


def get(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        exc.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="errwire-screenshot-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ERRWIRE_", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "DEMO_DATABASE": str(tmp / "demo.sqlite3"),
        "DEMO_DEBUG": "0",
        "DEMO_STAFF_PASSWORD": PASSWORD,
        "ERRWIRE_DATA_DIR": str(tmp / "errwire"),
    }
    for command in (["migrate", "--noinput", "-v0"], ["demo_users"]):
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *command], cwd=HERE, env=env, check=True
        )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "--fd", str(sock.fileno()), "--lifespan", "off",
         "--no-access-log", "--log-level", "warning", "demo.asgi:application"],
        cwd=HERE,
        env=env,
        pass_fds=(sock.fileno(),),
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sock.close()
    rng = random.Random(8)
    try:
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            for path in rng.sample(PAGES, k=rng.randint(2, 5)):
                get(base + path)
            time.sleep(6)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(base + "/telemetry/")
            page.fill("#id_username", "staff")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#runtimes tbody tr[data-pid]")
            page.wait_for_selector("#recent tbody tr[data-component]")
            OUT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(OUT))
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
