"""Every system check, by id and through ``call_command("check")``."""

from __future__ import annotations

import importlib.util
import os
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from errwire.integrations.django import checks

MW = checks.MIDDLEWARE_PATH
SWALLOW = "tests.integrations.django.views.SwallowingMiddleware"
RAISING = "tests.integrations.django.views.RaisingMiddleware"


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def run_check_command() -> str:
    """``manage.py check`` with errwire's checks: warnings go to stderr."""
    err = StringIO()
    call_command("check", tag=["errwire"], stdout=StringIO(), stderr=err)
    return err.getvalue()


def assert_check_fails(check_id: str, *fragments: str) -> None:
    with pytest.raises(SystemCheckError) as raised:
        run_check_command()
    text = str(raised.value)
    assert check_id in text
    for fragment in fragments:
        assert fragment in text


def test_the_test_settings_are_clean() -> None:
    assert checks.check_settings() == []
    assert checks.check_middleware() == []
    assert run_check_command() == ""


def test_e001_setting_is_not_a_dict() -> None:
    with override_settings(ERRWIRE=[("DSN", None)]):
        [error] = checks.check_settings()
        assert error.id == "errwire.E001"
        assert error.hint
        assert_check_fails("errwire.E001", "must be a dict")


def test_e002_unknown_key_with_a_suggestion() -> None:
    with override_settings(ERRWIRE={"QUEUE_SIZ": 10, "TOTALLY_UNRELATED_XYZ": 1}):
        found = checks.check_settings()
        assert ids(found) == ["errwire.E002", "errwire.E002"]
        assert 'Did you mean ERRWIRE["QUEUE_SIZE"]?' in (found[0].hint or "")
        assert "Remove it." in (found[1].hint or "")
        assert_check_fails("errwire.E002", "QUEUE_SIZ", 'Did you mean ERRWIRE["QUEUE_SIZE"]?')


def test_e003_wrong_types_and_ranges_all_reported() -> None:
    bad = {"QUEUE_SIZE": 0, "SAMPLE_RATE": 1.5, "DROP_POLICY": "random", "CAPTURE_4XX": "no"}
    with override_settings(ERRWIRE=bad):
        found = checks.check_settings()
        assert ids(found) == ["errwire.E003"] * 4
        text = " ".join(m.msg for m in found)
        for key in bad:
            assert f'ERRWIRE["{key}"]' in text
        assert "an integer >= 1" in text
        assert_check_fails("errwire.E003", 'ERRWIRE["SAMPLE_RATE"]')


def test_e003_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERRWIRE_QUEUE_SIZE", "lots")
    monkeypatch.setenv("ERRWIRE_SAMPLE_RATE", "7")
    found = checks.check_settings()
    assert ids(found) == ["errwire.E003", "errwire.E003"]
    assert "ERRWIRE_QUEUE_SIZE" in found[0].msg
    assert "ERRWIRE_SAMPLE_RATE" in found[1].msg
    assert_check_fails("errwire.E003", "ERRWIRE_QUEUE_SIZE")


def test_e004_malformed_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    with override_settings(ERRWIRE={"DSN": "sentry.example.com/42"}):
        [error] = checks.check_settings()
        assert error.id == "errwire.E004"
        assert "https://<public key>@<host>/<project id>" in (error.hint or "")
        assert_check_fails("errwire.E004", 'ERRWIRE["DSN"]')
    monkeypatch.setenv("ERRWIRE_DSN", "https://nokey.example.com/1")
    [error] = checks.check_settings()
    assert error.id == "errwire.E004"
    assert "ERRWIRE_DSN" in error.msg


def test_e005_sentry_transport_without_dsn() -> None:
    with override_settings(ERRWIRE={"TRANSPORT": "sentry"}):
        assert ids(checks.check_settings()) == ["errwire.E005"]
        assert_check_fails("errwire.E005", "ERRWIRE_DSN")


def test_e006_dsn_without_sentry_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "sentry_sdk" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with override_settings(ERRWIRE={"DSN": "https://key@sentry.example.com/1", "ENABLED": False}):
        assert checks.check_settings() == []  # off: nothing is delivered, nothing to check
    memory = {"DSN": "https://key@sentry.example.com/1", "TRANSPORT": "memory"}
    with override_settings(ERRWIRE=memory):
        assert ids(checks.check_settings()) == ["errwire.W003"]  # no sentry-sdk needed
    with override_settings(ERRWIRE={"DSN": "https://key@sentry.example.com/1"}):
        assert ids(checks.check_settings()) == ["errwire.E006"]
        assert_check_fails("errwire.E006", "errwire[sentry]")


def test_e007_outbox_not_writable(tmp_path: Path, allow_internal_errors: Any) -> None:
    # override_settings restarts errwire with these settings, and its heartbeat fails:
    # exactly what the check warns about, so internal errors are expected here.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with override_settings(ERRWIRE={"DATA_DIR": str(blocker / "errwire")}):
        found = checks.check_settings()
        assert ids(found) == ["errwire.E007", "errwire.E007"]  # outbox and local sink
        assert "outbox" in found[0].msg and "local sink" in found[1].msg
        assert_check_fails("errwire.E007", "is not a directory")
    with override_settings(ERRWIRE={"OUTBOX_PATH": str(tmp_path)}):
        [error] = checks.check_settings()
        assert error.id == "errwire.E007"
        assert "is a directory" in error.msg


def test_unwritable_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    existing = tmp_path / "outbox.sqlite3"
    existing.write_text("")
    assert checks.unwritable(str(existing)) is None
    assert checks.unwritable(str(tmp_path / "new" / "deeper" / "outbox.sqlite3")) is None
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert checks.unwritable(str(existing)) == "the file is read-only"
    assert checks.unwritable(str(tmp_path / "new.sqlite3")) == f"{tmp_path} is not writable"


def test_w001_middleware_missing() -> None:
    with override_settings(MIDDLEWARE=[]):
        [warning] = checks.check_middleware()
        assert warning.id == "errwire.W001"
        assert MW in (warning.hint or "")
        assert "errwire.W001" in run_check_command()


def test_w002_middleware_above_one_that_may_swallow_exceptions() -> None:
    with override_settings(MIDDLEWARE=[MW, RAISING, SWALLOW]):
        [warning] = checks.check_middleware()
        assert warning.id == "errwire.W002"
        assert SWALLOW in warning.msg
        assert "Move ErrwireMiddleware below" in (warning.hint or "")
        assert "errwire.W002" in run_check_command()
    with override_settings(MIDDLEWARE=[SWALLOW, MW, "no.such.Middleware"]):
        assert checks.check_middleware() == []


def test_w003_enabled_with_neither_dsn_nor_local_sink() -> None:
    with override_settings(ERRWIRE={"TRANSPORT": "memory"}):
        assert ids(checks.check_settings()) == ["errwire.W003"]
        assert "errwire.W003" in run_check_command()
    with override_settings(ERRWIRE={"TRANSPORT": "memory", "ENABLED": False}):
        assert checks.check_settings() == []


def test_silenced_like_any_django_check() -> None:
    with override_settings(MIDDLEWARE=[], SILENCED_SYSTEM_CHECKS=["errwire.W001"]):
        assert run_check_command() == ""
