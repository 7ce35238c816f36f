"""The settings adapter and the app's wiring (start, restart on override_settings, stop)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import errwire
from errwire import _api
from errwire.integrations.django import _wiring, conf
from errwire.integrations.django.apps import ErrwireConfig


def test_app_config_is_picked_automatically() -> None:
    app = apps.get_app_config("errwire")
    assert isinstance(app, ErrwireConfig)
    assert app.name == "errwire.integrations.django"


def test_keys_are_upper_case_config_fields_merged_over_defaults() -> None:
    with override_settings(ERRWIRE={"QUEUE_SIZE": 500, "RATE_LIMIT_PER_MINUTE": 10}):
        config = conf.get_config()
    assert config.queue_size == 500
    assert config.rate_limit_per_minute == 10
    assert config.dedup_window_seconds == errwire.Config().dedup_window_seconds


def test_settings_are_cached_and_reread_on_override() -> None:
    first = conf.get_settings()
    assert conf.get_settings() is first
    with override_settings(ERRWIRE={"QUEUE_SIZE": 123, "CAPTURE_4XX": True}):
        inner = conf.get_settings()
        assert inner.config.queue_size == 123
        assert inner.capture_4xx is True
    after = conf.get_settings()
    assert after.config.queue_size == first.config.queue_size
    assert after.capture_4xx is False


def test_environment_follows_debug() -> None:
    with override_settings(DEBUG=True):
        assert conf.get_config().environment == "development"
    with override_settings(DEBUG=False):
        assert conf.get_config().environment == "production"
    with override_settings(DEBUG=True, ERRWIRE={"ENVIRONMENT": "staging"}):
        assert conf.get_config().environment == "staging"


def test_data_dir_and_project_root_default_under_base_dir(tmp_path: Path) -> None:
    with override_settings(BASE_DIR=tmp_path, ERRWIRE={}):
        config = conf.get_config()
    assert config.data_dir == str(tmp_path / ".errwire")
    assert config.project_root == str(tmp_path)
    assert config.resolved_outbox_path == str(tmp_path / ".errwire" / "outbox.sqlite3")


def test_release_defaults_to_the_git_commit_at_base_dir(tmp_path: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(sha + "\n")
    project = tmp_path / "src" / "site"
    project.mkdir(parents=True)
    with override_settings(BASE_DIR=project, ERRWIRE={}):
        assert conf.get_config().release == sha[:12]
    with override_settings(BASE_DIR=project, ERRWIRE={"RELEASE": "v1.2"}):
        assert conf.get_config().release == "v1.2"


def test_git_revision_reads_packed_refs_detached_heads_and_worktrees(tmp_path: Path) -> None:
    sha = "fedcba9876543210fedcba9876543210fedcba98"
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "packed-refs").write_text(f"# pack-refs\n{sha} refs/heads/main\n")
    assert conf.git_revision(repo) == sha[:12]
    (repo / ".git" / "HEAD").write_text(sha + "\n")
    assert conf.git_revision(repo) == sha[:12]
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {repo / '.git'}\n")
    assert conf.git_revision(worktree) == sha[:12]
    (worktree / ".git").write_text("nonsense\n")
    assert conf.git_revision(worktree) is None
    assert conf.git_revision(tmp_path / "nowhere") is None or True  # a parent may be a checkout


def test_environment_variables_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERRWIRE_DSN", "https://key@sentry.example.com/42")
    monkeypatch.setenv("ERRWIRE_ENABLED", "false")
    with override_settings(ERRWIRE={"DSN": None, "ENABLED": True}):
        config = conf.get_config()
    assert config.dsn == "https://key@sentry.example.com/42"
    assert config.enabled is False
    assert config.resolved_transport == "sentry"


def test_unknown_key_suggests_the_right_one() -> None:
    with (
        override_settings(ERRWIRE={"QUEUE_SIZ": 10}),
        pytest.raises(ImproperlyConfigured, match=r'Did you mean ERRWIRE\["QUEUE_SIZE"\]'),
    ):
        conf.get_config()
    with (
        override_settings(ERRWIRE={"dsn": None}),
        pytest.raises(ImproperlyConfigured, match=r'Did you mean ERRWIRE\["DSN"\]'),
    ):
        conf.get_config()


def test_bad_values_name_the_setting() -> None:
    with (
        override_settings(ERRWIRE={"SAMPLE_RATE": 2}),
        pytest.raises(ImproperlyConfigured, match=r'ERRWIRE\["SAMPLE_RATE"\] must be a number'),
    ):
        conf.get_config()
    with (
        override_settings(ERRWIRE={"CAPTURE_4XX": "yes"}),
        pytest.raises(ImproperlyConfigured, match=r'ERRWIRE\["CAPTURE_4XX"\] must be True'),
    ):
        conf.get_config()
    with (
        override_settings(ERRWIRE=["DSN"]),
        pytest.raises(ImproperlyConfigured, match="must be a dict"),
    ):
        conf.get_config()


def test_missing_setting_means_defaults() -> None:
    with override_settings(ERRWIRE=None):
        assert conf.get_config().queue_size == errwire.Config().queue_size


# ------------------------------------------------------------------ wiring


def test_override_settings_starts_restarts_and_stops_the_runtime() -> None:
    assert _api.get_runtime() is None
    with override_settings(ERRWIRE={"TRANSPORT": "memory", "QUEUE_SIZE": 77}):
        runtime = _wiring.managed_runtime()
        assert runtime is not None and runtime.config.queue_size == 77
        assert errwire.is_enabled()
        with override_settings(ERRWIRE={"TRANSPORT": "memory", "QUEUE_SIZE": 88}):
            restarted = _wiring.managed_runtime()
            assert restarted is not None and restarted is not runtime
            assert restarted.config.queue_size == 88
            assert runtime.closed
            with override_settings(ERRWIRE={"ENABLED": False}):
                assert _api.get_runtime() is None
                assert not errwire.is_enabled()


def test_unrelated_setting_changes_do_not_restart() -> None:
    with override_settings(ERRWIRE={"TRANSPORT": "memory"}):
        runtime = _wiring.managed_runtime()
        with override_settings(TIME_ZONE="Europe/Paris", DEBUG=False):
            assert _wiring.managed_runtime() is runtime


def test_a_runtime_the_project_installed_is_left_alone() -> None:
    own = errwire.init(transport=errwire.MemoryTransport(), use_env=False, queue_size=5)
    with override_settings(ERRWIRE={"QUEUE_SIZE": 9, "TRANSPORT": "memory"}):
        assert _api.get_runtime() is own
    assert _wiring.start() is None
    assert _api.get_runtime() is own


def test_bad_settings_do_not_crash_startup(caplog: pytest.LogCaptureFixture) -> None:
    with override_settings(ERRWIRE={"QUEUE_SIZE": "big"}):
        assert _api.get_runtime() is None
    assert any("errwire is not started" in r.getMessage() for r in caplog.records)


def test_ready_is_idempotent() -> None:
    _wiring.connect()
    _wiring.connect()
    runtime = _wiring.managed_runtime()
    assert runtime is not None
    assert _wiring.start() is runtime  # same config: not restarted


def test_at_exit_flushes_only_a_runtime_that_worked() -> None:
    runtime = _wiring.start()
    assert runtime is not None
    _wiring._at_exit()
    assert _api.get_runtime() is runtime  # saw nothing: left as it is, nothing written
    errwire.capture_message("before exit")
    _wiring._at_exit()
    assert _api.get_runtime() is None
    assert runtime.closed


def test_ready_leaves_the_worker_idle_until_a_server_loads_the_middleware(data_dir: str) -> None:
    """`manage.py telemetry_replay --dry-run` or `migrate` must not deliver anything; a
    server process replays what earlier processes left in the outbox."""
    from errwire._outbox import Outbox
    from errwire.integrations.django.middleware import ErrwireMiddleware

    from . import views

    outbox = Outbox(f"{data_dir}/outbox.sqlite3", 10)
    outbox.put_many([{"event_id": "0" * 32, "message": "left behind"}], owner="gone")
    outbox.close()
    with override_settings(ERRWIRE={"DATA_DIR": data_dir, "TRANSPORT": "memory"}):
        runtime = _wiring.managed_runtime()
        assert runtime is not None
        lane = runtime.worker_lane

        def started() -> bool:
            return lane.thread is not None

        assert not started()
        ErrwireMiddleware(views.ok)
        assert started()
        assert errwire.flush(5.0)
