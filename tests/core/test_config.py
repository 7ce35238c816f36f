from __future__ import annotations

import dataclasses

import pytest

from errwire import Config
from errwire._config import config_from_env, make_config


def test_defaults_are_the_documented_ones() -> None:
    cfg = Config()
    assert cfg.queue_size == 10_000
    assert cfg.drop_policy == "drop_newest"
    assert cfg.error_reserve == pytest.approx(0.10)
    assert cfg.dedup_window_seconds == 300
    assert cfg.rate_limit_per_minute == 1000
    assert cfg.burst == 1000
    assert cfg.breaker_failure_threshold == 10
    assert cfg.breaker_recovery_seconds == 300
    assert cfg.send_timeout_seconds == 5
    assert cfg.slow_operation_ms == 100
    assert cfg.resolved_transport == "local"


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().queue_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("queue_size", 0, "queue_size must be an integer >= 1"),
        ("queue_size", True, "queue_size must be an integer"),
        ("drop_policy", "drop_random", "'drop_newest', 'drop_oldest'"),
        ("sample_rate", 1.5, "sample_rate must be a number >= 0.0 and <= 1.0"),
        ("error_reserve", -0.1, "error_reserve"),
        ("send_timeout_seconds", 0, "send_timeout_seconds must be a number > 0.0"),
        ("enabled", "yes", "enabled must be True or False"),
        ("transport", "carrier-pigeon", "'auto', 'local', 'memory', 'sentry'"),
        ("dsn", "not a dsn", "Sentry DSN"),
        ("dsn", "https://host/1", "Sentry DSN"),
        ("capture_log_level", "loud", "capture_log_level"),
        ("in_app_include", ("",), "non-empty strings"),
        ("component_map", (("a",),), "module prefix to component"),
    ],
)
def test_every_bad_option_is_named_with_allowed_values(
    option: str, value: object, needle: str
) -> None:
    with pytest.raises(ValueError, match=option) as info:
        Config(**{option: value})  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_sentry_transport_needs_a_dsn() -> None:
    with pytest.raises(ValueError, match="dsn must be set when transport is 'sentry'"):
        Config(transport="sentry")


def test_dsn_selects_sentry() -> None:
    assert Config(dsn="https://key@example.invalid/42").resolved_transport == "sentry"


def test_unknown_option_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match="did you mean queue_size"):
        make_config({"queue_sise": 5})


def test_labels_name_the_option_as_the_user_wrote_it() -> None:
    with pytest.raises(ValueError, match=r'ERRWIRE\["QUEUE_SIZE"\] must be an integer'):
        make_config({"queue_size": -1}, label=lambda n: f'ERRWIRE["{n.upper()}"]')


def test_environment_overrides_options() -> None:
    env = {
        "ERRWIRE_ENABLED": "off",
        "ERRWIRE_QUEUE_SIZE": "50",
        "ERRWIRE_SAMPLE_RATE": "0.5",
        "ERRWIRE_DSN": "https://k@h.invalid/3",
        "ERRWIRE_IN_APP_INCLUDE": "shop, billing",
        "ERRWIRE_COMPONENT_MAP": "shop.db=database,shop.http=network",
        "ERRWIRE_RATE_LIMIT_BURST": "",
        "UNRELATED": "x",
    }
    cfg = make_config({"queue_size": 7, "enabled": True}, environ=env, use_env=True)
    assert cfg.enabled is False
    assert cfg.queue_size == 50
    assert cfg.sample_rate == 0.5
    assert cfg.dsn == "https://k@h.invalid/3"
    assert cfg.in_app_include == ("shop", "billing")
    assert cfg.component_map == (("shop.db", "database"), ("shop.http", "network"))
    assert cfg.rate_limit_burst is None


def test_component_map_accepts_json_and_dicts() -> None:
    assert config_from_env({"ERRWIRE_COMPONENT_MAP": '{"a.b": "c"}'})["component_map"] == (
        ("a.b", "c"),
    )
    assert make_config({"component_map": {"x": "y"}}).component_map == (("x", "y"),)
    with pytest.raises(ValueError, match="ERRWIRE_COMPONENT_MAP"):
        config_from_env({"ERRWIRE_COMPONENT_MAP": "nonsense"})
    with pytest.raises(ValueError, match="ERRWIRE_COMPONENT_MAP"):
        config_from_env({"ERRWIRE_COMPONENT_MAP": "[1, 2]"})
    with pytest.raises(ValueError, match="ERRWIRE_COMPONENT_MAP"):
        config_from_env({"ERRWIRE_COMPONENT_MAP": "{bad json"})


@pytest.mark.parametrize(
    ("key", "raw", "needle"),
    [
        ("ERRWIRE_ENABLED", "maybe", "1/0, true/false"),
        ("ERRWIRE_QUEUE_SIZE", "lots", "an integer"),
        ("ERRWIRE_SAMPLE_RATE", "half", "a number"),
    ],
)
def test_bad_environment_values_name_the_variable(key: str, raw: str, needle: str) -> None:
    with pytest.raises(ValueError, match=key) as info:
        config_from_env({key: raw})
    assert needle in str(info.value)


def test_replace_validates() -> None:
    cfg = Config()
    assert cfg.replace(queue_size=5).queue_size == 5
    with pytest.raises(ValueError, match="queue_size"):
        cfg.replace(queue_size=0)


def test_paths_derive_from_data_dir(tmp_path: object) -> None:
    cfg = Config(data_dir="/srv/tele")
    assert cfg.resolved_outbox_path == "/srv/tele/outbox.sqlite3"
    assert cfg.resolved_local_db_path == "/srv/tele/events.sqlite3"
    assert Config(data_dir="/x", outbox_path="/y/o.db").resolved_outbox_path == "/y/o.db"


def test_scrub_options() -> None:
    cfg = make_config(
        {
            "scrub_rules": [["order-[0-9]+", "ORDER"]],
            "scrub_allow_keys": "token_bucket",
            "scrub_host_mode": "hash",
        }
    )
    assert cfg.scrub_rules == (("order-[0-9]+", "ORDER"),)
    assert cfg.scrub_allow_keys == ("token_bucket",)
    env = config_from_env({"ERRWIRE_SCRUB_RULES": '[["x+", "X"]]'})
    assert env["scrub_rules"] == (("x+", "X"),)
    with pytest.raises(ValueError, match="ERRWIRE_SCRUB_RULES"):
        config_from_env({"ERRWIRE_SCRUB_RULES": "not json"})
    with pytest.raises(ValueError, match="scrub_rules"):
        Config(scrub_rules=(42,))
    with pytest.raises(ValueError, match="scrub_host_mode"):
        Config(scrub_host_mode="blur")  # type: ignore[arg-type]
    assert Config(scrub_rules=(str.upper,)).scrub_rules == (str.upper,)
