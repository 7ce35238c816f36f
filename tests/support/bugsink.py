"""A real Sentry-compatible server for end-to-end tests: Bugsink, run from its own venv.

Bugsink pins Django and installs generic top-level packages, so it lives in
``build/bugsink-venv``, never in the project's venv. The steps follow
DESIGN.md ("Real components and how they start"):

1. ``prepare()``: create the venv and ``pip install bugsink==VERSION`` (once),
   then build a migrated database with a user, a team, a project and an API
   token (once per Bugsink version; cached under ``build/bugsink-cache``).
   Both run under a file lock, so parallel runs wait for each other instead
   of clashing. ``make bugsink`` runs this step up front
   (``python -m tests.support.bugsink``).
2. ``start_bugsink(dir)``: copy the cached databases into ``dir``, write a
   configuration there (``bugsink-create-conf --template=local`` plus the
   overrides: database paths, ingest store, snappea wake-up dir, no phone-home,
   quotas, eager digest), serve it with gunicorn on a free port and wait until
   ``/health/ready`` answers 200.

Stored events are read back straight from the SQLite database (every event
id of the project, fast even for thousands) or through Bugsink's API with the
token (one event with its full data).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

__all__ = ["BUGSINK_VERSION", "Bugsink", "BugsinkError", "prepare", "start_bugsink"]

BUGSINK_VERSION = "2.6.2"
RECIPE = 1  # bump when the cached database's contents change
ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
VENV = BUILD / "bugsink-venv"
CACHE = BUILD / "bugsink-cache" / f"{BUGSINK_VERSION}-r{RECIPE}"
LOCK = BUILD / "bugsink.lock"

QUOTAS = (
    "MAX_EVENTS_PER_PROJECT_PER_5_MINUTES",
    "MAX_EVENTS_PER_PROJECT_PER_HOUR",
    "MAX_EVENTS_PER_PROJECT_PER_MONTH",
    "MAX_EVENTS_PER_5_MINUTES",
    "MAX_EVENTS_PER_HOUR",
    "MAX_EVENTS_PER_MONTH",
)
UNLIMITED = 1_000_000_000

_CREATE_PROJECT = """
import json
from django.contrib.auth import get_user_model
from teams.models import Team
from projects.models import Project
from bsmain.models import AuthToken
user, _ = get_user_model().objects.get_or_create(
    username="errwire", defaults={"is_superuser": True, "is_staff": True})
team, _ = Team.objects.get_or_create(name="errwire")
project = Project.objects.create(name="errwire-e2e", team=team)
token = AuthToken.create_full_access()
print("ERRWIRE-PROJECT " + json.dumps({
    "project_id": project.id, "sentry_key": project.sentry_key.hex,
    "dsn": project.dsn, "token": token.token}))
"""


class BugsinkError(RuntimeError):
    """Bugsink could not be installed, configured or started (a test failure, never a skip)."""


@dataclass
class Bugsink:
    """A running Bugsink with one project."""

    url: str
    dsn: str
    project_id: int
    token: str
    directory: Path
    process: subprocess.Popen[bytes]
    timings: dict[str, float] = field(default_factory=dict)
    _http: urllib3.PoolManager = field(default_factory=lambda: urllib3.PoolManager(maxsize=2))

    @property
    def database(self) -> Path:
        return self.directory / "db.sqlite3"

    def event_ids(self) -> set[str]:
        """Every stored event id of the project (32 hex digits, as sent)."""
        uri = f"file:{self.database}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10.0)) as db:
            rows = db.execute(
                "SELECT event_id FROM events_event WHERE project_id = ?", (self.project_id,)
            ).fetchall()
        return {uuid.UUID(str(row[0])).hex for row in rows}

    def event(self, event_id: str) -> dict[str, Any] | None:
        """The stored event (Bugsink's API: its ``data`` is what the SDK sent), or None."""
        answer = self._http.request(
            "GET",
            f"{self.url}/api/canonical/0/events/lookup/",
            fields={"project": str(self.project_id), "event_id": event_id},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10.0,
            retries=False,
        )
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise BugsinkError(f"Bugsink API answered {answer.status}: {answer.data[:300]!r}")
        found: dict[str, Any] = json.loads(answer.data)
        return found

    def stop(self) -> None:
        """Stop gunicorn by its own PID (TERM, then KILL after a grace period)."""
        self._http.clear()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5.0)

    def log(self) -> str:
        try:
            return (self.directory / "gunicorn.log").read_text(errors="replace")
        except OSError:
            return ""


# -- preparing ---------------------------------------------------------------------------


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _bin(name: str) -> str:
    return str(VENV / "bin" / name)


def _env(workdir: Path | None = None) -> dict[str, str]:
    """The environment for Bugsink's processes: none of the project venv's or errwire's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE")
        and not k.startswith(("ERRWIRE_", "SENTRY_", "COV_CORE_"))
    }
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if workdir is not None:
        env["DJANGO_SETTINGS_MODULE"] = "bugsink_conf"
        env["PYTHONPATH"] = str(workdir)
    return env


def _run(cmd: list[str], cwd: Path, env: Mapping[str, str], what: str, timeout: float = 600) -> str:
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BugsinkError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        raise BugsinkError(
            f"{what} failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return done.stdout


def _venv_ready() -> bool:
    marker = VENV / ".errwire-installed"
    return marker.is_file() and marker.read_text().strip() == BUGSINK_VERSION


def ensure_venv() -> float:
    """Install Bugsink into its own venv unless it is there; returns the seconds spent."""
    started = time.monotonic()
    if _venv_ready():
        return 0.0
    with _locked():
        if _venv_ready():
            return time.monotonic() - started
        shutil.rmtree(VENV, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(VENV)], BUILD, _env(), "creating the Bugsink venv")
        _run(
            [
                _bin("python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"bugsink=={BUGSINK_VERSION}",
            ],
            BUILD,
            _env(),
            f"pip install bugsink=={BUGSINK_VERSION}",
        )
        (VENV / ".errwire-installed").write_text(BUGSINK_VERSION + "\n")
    return time.monotonic() - started


def _write_conf(workdir: Path, port: int, quotas: Mapping[str, int] | None = None) -> None:
    """``bugsink-create-conf --template=local`` and the overrides DESIGN.md lists."""
    conf = workdir / "bugsink_conf.py"
    if not conf.exists():
        _run(
            [_bin("bugsink-create-conf"), "--template=local", "--host=127.0.0.1", f"--port={port}"],
            workdir,
            _env(),
            "bugsink-create-conf",
        )
    limits = {name: UNLIMITED for name in QUOTAS}
    limits.update(quotas or {})
    unknown = set(limits) - set(QUOTAS)
    if unknown:
        raise ValueError(f"unknown Bugsink quota(s): {sorted(unknown)}")
    d = str(workdir)
    overrides = [
        "",
        "# --- errwire test overrides ---",
        f'DATABASES["default"]["NAME"] = {d + "/db.sqlite3"!r}',
        f'DATABASES["default"]["TEST"]["NAME"] = {d + "/test.sqlite3"!r}',
        f'DATABASES["snappea"]["NAME"] = {d + "/snappea.sqlite3"!r}',
        f'BUGSINK["BASE_URL"] = "http://127.0.0.1:{port}"',
        f'BUGSINK["INGEST_STORE_BASE_DIR"] = {d + "/ingestion"!r}',
        'BUGSINK["PHONEHOME"] = False',
        *(f'BUGSINK["{name}"] = {value}' for name, value in sorted(limits.items())),
        f'SNAPPEA["WAKEUP_CALLS_DIR"] = {d + "/wakeup"!r}',
        'SNAPPEA["TASK_ALWAYS_EAGER"] = True',
        "",
    ]
    with open(conf, "a") as handle:
        handle.write("\n".join(overrides))


def _cache_ready() -> bool:
    return (CACHE / "meta.json").is_file()


def ensure_database() -> float:
    """Build the migrated database with a project and a token once per version; seconds spent."""
    started = time.monotonic()
    if _cache_ready():
        return 0.0
    with _locked():
        if _cache_ready():
            return time.monotonic() - started
        with tempfile.TemporaryDirectory(prefix="bugsink-migrate-") as tmp:
            work = Path(tmp)
            _write_conf(work, port=8000)
            env = _env(work)
            manage = _bin("bugsink-manage")
            _run([manage, "migrate", "--no-input"], work, env, "bugsink-manage migrate")
            _run(
                [manage, "migrate", "snappea", "--database=snappea", "--no-input"],
                work,
                env,
                "bugsink-manage migrate snappea",
            )
            out = _run([manage, "shell", "-c", _CREATE_PROJECT], work, env, "creating the project")
            line = next((x for x in out.splitlines() if x.startswith("ERRWIRE-PROJECT ")), None)
            if line is None:
                raise BugsinkError(f"creating the project printed no DSN:\n{out[-2000:]}")
            meta = json.loads(line.split(" ", 1)[1])
            staging = CACHE.with_name(CACHE.name + ".tmp")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            for name in ("db.sqlite3", "snappea.sqlite3"):
                _copy_database(work / name, staging / name)
            (staging / "bugsink_conf.template.py").write_text(
                (work / "bugsink_conf.py").read_text().split("# --- errwire test overrides ---")[0]
            )
            (staging / "meta.json").write_text(json.dumps(meta, indent=2))
            shutil.rmtree(CACHE, ignore_errors=True)
            staging.rename(CACHE)
    return time.monotonic() - started


def _copy_database(source: Path, target: Path) -> None:
    """A consistent single-file copy (the WAL folded in), via SQLite's backup API."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")


def prepare() -> dict[str, float]:
    """Everything before a start: the venv and the cached database (seconds spent on each)."""
    return {"venv": ensure_venv(), "database": ensure_database()}


# -- running -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ready(url: str, http: urllib3.PoolManager) -> bool:
    try:
        answer = http.request("GET", f"{url}/health/ready", timeout=2.0, retries=False)
    except urllib3.exceptions.HTTPError:
        return False
    return answer.status == 200


def start_bugsink(
    directory: Path,
    *,
    quotas: Mapping[str, int] | None = None,
    ready_timeout: float = 60.0,
) -> Bugsink:
    """Start Bugsink serving from ``directory`` (created if needed); stop it with ``.stop()``.

    ``quotas`` overrides some of the six ``MAX_EVENTS_*`` limits (all unlimited by
    default); a quota of a few events makes Bugsink answer 429.
    """
    timings = prepare()
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    meta = json.loads((CACHE / "meta.json").read_text())
    for name in ("db.sqlite3", "snappea.sqlite3"):
        shutil.copyfile(CACHE / name, directory / name)
    last_error = "not started"
    for _attempt in range(3):
        port = _free_port()
        conf = directory / "bugsink_conf.py"
        shutil.copyfile(CACHE / "bugsink_conf.template.py", conf)
        _write_conf(directory, port, quotas)
        log = open(directory / "gunicorn.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            process = subprocess.Popen(
                [
                    _bin("gunicorn"),
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--no-control-socket",
                    "--workers",
                    "1",
                    "--graceful-timeout",
                    "3",
                    "bugsink.wsgi",
                ],
                cwd=directory,
                env=_env(directory),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        url = f"http://127.0.0.1:{port}"
        server = Bugsink(
            url=url,
            dsn=f"http://{meta['sentry_key']}@127.0.0.1:{port}/{meta['project_id']}",
            project_id=int(meta["project_id"]),
            token=str(meta["token"]),
            directory=directory,
            process=process,
            timings=timings,
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline and process.poll() is None:
            if _ready(url, server._http):
                server.timings["start"] = time.monotonic() - started
                return server
            time.sleep(0.05)
        server.stop()
        last_error = server.log()[-3000:]
        if "Address already in use" not in last_error:
            break
    raise BugsinkError(
        f"Bugsink did not become ready (see {directory}/gunicorn.log):\n{last_error}"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.support.bugsink [--check]``: install and prepare Bugsink
    (a no-op when done before); with ``--check``, also start and stop it once."""
    args = sys.argv[1:] if argv is None else argv
    timings = prepare()
    if "--check" in args:
        with tempfile.TemporaryDirectory(prefix="bugsink-check-") as tmp:
            server = start_bugsink(Path(tmp))
            server.stop()
        timings["start"] = server.timings["start"]
    print(
        "bugsink ready: "
        + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
        + f" (venv {VENV.relative_to(ROOT)}, cache {CACHE.relative_to(ROOT)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
