"""Configuration: one frozen dataclass, validated once, shared by every front end.

Every option can come from keyword arguments, from a framework's settings
(Django's ``ERRWIRE`` dict, Flask's ``ERRWIRE_*`` keys) or from an
``ERRWIRE_<OPTION>`` environment variable. Validation errors name the option
the way the user wrote it, so the message points at the line to fix.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

__all__ = ["ENV_PREFIX", "Config", "config_from_env", "make_config", "redact_url"]

ENV_PREFIX = "ERRWIRE_"

DropPolicy = Literal["drop_newest", "drop_oldest"]
TransportName = Literal["auto", "local", "memory", "sentry"]
HostMode = Literal["category", "hash"]
_LEVELS = ("debug", "info", "warning", "error", "fatal")


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """Every errwire option with its default. Field names are the option names."""

    dsn: str | None = None
    enabled: bool = True
    transport: TransportName = "auto"
    environment: str | None = None
    release: str | None = None
    server_name: str | None = None
    data_dir: str = ".errwire"
    local_db_path: str | None = None
    outbox_path: str | None = None
    outbox_max_events: int = 100_000
    queue_size: int = 10_000
    drop_policy: DropPolicy = "drop_newest"
    error_reserve: float = 0.10
    max_message_length: int = 8192
    max_context_keys: int = 50
    max_frames: int = 100
    max_chained_exceptions: int = 5
    storm_window_seconds: float = 1.0
    dedup_window_seconds: float = 300.0
    dedup_max_entries: int = 10_000
    rate_limit_per_minute: int = 1000
    rate_limit_burst: int | None = None
    sample_rate: float = 1.0
    breaker_failure_threshold: int = 10
    breaker_recovery_seconds: float = 300.0
    send_timeout_seconds: float = 5.0
    slow_operation_ms: float = 100.0
    heartbeat_interval_seconds: float = 5.0
    shutdown_timeout_seconds: float = 2.0
    component_map: tuple[tuple[str, str], ...] = ()
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    project_root: str | None = None
    send_default_pii: bool = False
    scrub_rules: tuple[Any, ...] = ()
    scrub_allow_keys: tuple[str, ...] = ()
    scrub_host_mode: HostMode = "category"
    capture_log_level: str = "error"
    bus: str = "inprocess"
    bus_max_length: int = 100_000
    bus_reclaim_seconds: float = 60.0

    def __post_init__(self) -> None:
        _validate(self, lambda name: name)

    @property
    def resolved_transport(self) -> TransportName:
        """The transport ``auto`` stands for: Sentry when a DSN is set, else the local sink."""
        if self.transport != "auto":
            return self.transport
        return "sentry" if self.dsn else "local"

    @property
    def resolved_local_db_path(self) -> str:
        return self.local_db_path or os.path.join(self.data_dir, "events.sqlite3")

    @property
    def resolved_outbox_path(self) -> str:
        return self.outbox_path or os.path.join(self.data_dir, "outbox.sqlite3")

    @property
    def resolved_project_root(self) -> str:
        return os.path.abspath(self.project_root or os.getcwd())

    @property
    def redis_url(self) -> str | None:
        """The Redis URL when the bus runs on Redis Streams; None for the in-process bus."""
        return None if self.bus == "inprocess" else self.bus

    @property
    def burst(self) -> int:
        return self.rate_limit_burst or self.rate_limit_per_minute

    def replace(self, **changes: Any) -> Config:
        """A copy with some options changed (validated like any other)."""
        return make_config(changes, base=self)


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Config)}


def _fail(label: str, expected: str, value: object) -> ValueError:
    return ValueError(f"errwire option {label} must be {expected}; got {value!r}")


def _validate(cfg: Config, label: Callable[[str], str]) -> None:
    def check_int(name: str, minimum: int) -> None:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _fail(label(name), f"an integer >= {minimum}", value)

    def check_float(
        name: str, minimum: float, maximum: float | None = None, *, strict: bool = False
    ) -> None:
        value = getattr(cfg, name)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and (value > minimum if strict else value >= minimum)
        ok = ok and (maximum is None or value <= maximum)
        if not ok:
            bound = f"> {minimum}" if strict else f">= {minimum}"
            rng = f"a number {bound}" + (f" and <= {maximum}" if maximum is not None else "")
            raise _fail(label(name), rng, value)

    def check_choice(name: str, choices: tuple[str, ...]) -> None:
        value = getattr(cfg, name)
        if value not in choices:
            raise _fail(label(name), "one of " + ", ".join(repr(c) for c in choices), value)

    def check_optional_str(name: str) -> None:
        value = getattr(cfg, name)
        if value is not None and not isinstance(value, str):
            raise _fail(label(name), "a string or None", value)

    def check_bool(name: str) -> None:
        if not isinstance(getattr(cfg, name), bool):
            raise _fail(label(name), "True or False", getattr(cfg, name))

    def check_str_tuple(name: str) -> None:
        value = getattr(cfg, name)
        if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
            raise _fail(label(name), "a list of non-empty strings", value)

    for name in (
        "dsn",
        "environment",
        "release",
        "server_name",
        "local_db_path",
        "outbox_path",
        "project_root",
    ):
        check_optional_str(name)
    if cfg.dsn is not None:
        _check_dsn(cfg.dsn, label("dsn"))
    for name in ("enabled", "send_default_pii"):
        check_bool(name)
    check_choice("transport", ("auto", "local", "memory", "sentry"))
    check_choice("drop_policy", ("drop_newest", "drop_oldest"))
    check_choice("capture_log_level", _LEVELS)
    if not isinstance(cfg.data_dir, str) or not cfg.data_dir:
        raise _fail(label("data_dir"), "a non-empty path", cfg.data_dir)
    for name, minimum in (
        ("outbox_max_events", 1),
        ("queue_size", 1),
        ("max_message_length", 16),
        ("max_context_keys", 0),
        ("max_frames", 1),
        ("max_chained_exceptions", 0),
        ("dedup_max_entries", 1),
        ("rate_limit_per_minute", 1),
        ("breaker_failure_threshold", 1),
    ):
        check_int(name, minimum)
    if cfg.rate_limit_burst is not None:
        check_int("rate_limit_burst", 1)
    check_float("error_reserve", 0.0, 0.9)
    check_float("sample_rate", 0.0, 1.0)
    for name in (
        "storm_window_seconds",
        "dedup_window_seconds",
        "breaker_recovery_seconds",
        "slow_operation_ms",
    ):
        check_float(name, 0.0)
    for name in ("send_timeout_seconds", "heartbeat_interval_seconds", "shutdown_timeout_seconds"):
        check_float(name, 0.0, strict=True)
    check_str_tuple("in_app_include")
    check_str_tuple("in_app_exclude")
    if cfg.scrub_allow_keys:
        check_str_tuple("scrub_allow_keys")
    check_choice("scrub_host_mode", ("category", "hash"))
    rules = cfg.scrub_rules
    if not isinstance(rules, tuple) or not all(_is_rule(r) for r in rules):
        raise _fail(
            label("scrub_rules"),
            "a list of (regex, marker kind) pairs, Rule objects or callables",
            rules,
        )
    cmap = cfg.component_map
    if not isinstance(cmap, tuple) or not all(
        isinstance(p, tuple) and len(p) == 2 and all(isinstance(s, str) and s for s in p)
        for p in cmap
    ):
        raise _fail(label("component_map"), "a mapping of module prefix to component name", cmap)
    _check_bus(cfg.bus, label("bus"))
    check_int("bus_max_length", 100)
    check_float("bus_reclaim_seconds", 0.0, strict=True)
    if cfg.resolved_transport == "sentry" and not cfg.dsn:
        raise _fail(label("dsn"), "set when transport is 'sentry'", cfg.dsn)


def _is_rule(rule: object) -> bool:
    if callable(rule) or type(rule).__name__ == "Rule":
        return True
    return (
        isinstance(rule, tuple | list) and len(rule) == 2 and all(isinstance(x, str) for x in rule)
    )


def _check_dsn(dsn: str, label: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(dsn)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and bool(parts.username)
        ok = ok and parts.path.rstrip("/").rsplit("/", 1)[-1].isdigit()
    except ValueError:
        ok = False
    if not ok:
        raise _fail(label, "a Sentry DSN like 'https://<key>@<host>/<project id>'", dsn)


_BUS_SCHEMES = ("redis://", "rediss://", "unix://")


def _check_bus(bus: object, label: str) -> None:
    """``inprocess`` or a Redis URL; the URL is parsed here so a typo fails at startup."""
    if bus == "inprocess":
        return
    expected = "'inprocess' or a Redis URL like 'redis://host:6379/0'"
    if not isinstance(bus, str) or not bus.startswith(_BUS_SCHEMES):
        raise _fail(label, expected, redact_url(bus) if isinstance(bus, str) else bus)
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(bus)
        ok = bool(parts.hostname) if parts.scheme != "unix" else bool(parts.path)
        ok = ok and (parts.scheme == "unix" or parts.port is None or parts.port > 0)
        db = parts.path.strip("/") if parts.scheme != "unix" else "0"
        ok = ok and (db == "" or db.isdigit())
    except ValueError:
        ok = False
    if not ok:
        raise _fail(label, expected, redact_url(bus))
    import importlib.util

    if importlib.util.find_spec("redis") is None:
        raise ValueError(
            f"errwire option {label} selects the Redis bus, which needs the redis package: "
            "pip install 'errwire[redis]'"
        )


def redact_url(url: str) -> str:
    """``url`` without its password (safe to print in errors and status)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = userinfo.partition(":")[0]
    return (
        f"{scheme}{sep}{user}:***@{host}" if ":" in userinfo else f"{scheme}{sep}{userinfo}@{host}"
    )


def _coerce(name: str, value: Any, label: str) -> Any:
    """Turn loose inputs (env strings, lists, dicts) into the field's declared shape."""
    if name == "component_map":
        if isinstance(value, str):
            value = _parse_mapping(value, label)
        if isinstance(value, Mapping):
            return tuple((str(k), str(v)) for k, v in value.items())
        if isinstance(value, list | tuple):
            try:
                return tuple((str(k), str(v)) for k, v in value)
            except (TypeError, ValueError):
                raise _fail(label, "a mapping of module prefix to component name", value) from None
        return value
    if name == "scrub_rules":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise _fail(label, 'a JSON list of ["regex", "KIND"] pairs', value) from None
        if isinstance(value, list | tuple):
            return tuple(tuple(r) if isinstance(r, list) else r for r in value)
        return value
    if name in ("in_app_include", "in_app_exclude", "scrub_allow_keys"):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list | tuple | set | frozenset):
            return tuple(value)
        return value
    return value


def _parse_mapping(text: str, label: str) -> Mapping[str, Any]:
    text = text.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError:
            raise _fail(label, "a JSON object or 'prefix=component,...'", text) from None
        if not isinstance(loaded, dict):
            raise _fail(label, "a JSON object or 'prefix=component,...'", text)
        return loaded
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, val = item.partition("=")
        if not sep:
            raise _fail(label, "a JSON object or 'prefix=component,...'", text)
        pairs[key.strip()] = val.strip()
    return pairs


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _from_env_string(name: str, raw: str, label: str) -> Any:
    """Parse an environment variable according to the field's type."""
    kind = str(FIELDS[name].type)
    if kind == "bool":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise _fail(label, "one of 1/0, true/false, yes/no, on/off", raw)
    if raw.strip() == "" and "None" in kind:
        return None
    if kind.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise _fail(label, "an integer", raw) from None
    if kind.startswith("float"):
        try:
            return float(raw)
        except ValueError:
            raise _fail(label, "a number", raw) from None
    return _coerce(name, raw, label)


def config_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Options found in ``ERRWIRE_<OPTION>`` environment variables, parsed and validated."""
    env = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for name in FIELDS:
        key = ENV_PREFIX + name.upper()
        if key in env:
            found[name] = _from_env_string(name, env[key], key)
    return found


def make_config(
    options: Mapping[str, Any],
    *,
    base: Config | None = None,
    label: Callable[[str], str] = lambda name: name,
    environ: Mapping[str, str] | None = None,
    use_env: bool = False,
) -> Config:
    """Build a validated ``Config`` from loose options.

    ``options`` keys are field names (lower case). ``label`` turns a field name
    into what the user wrote (``ERRWIRE["QUEUE_SIZE"]``, ``ERRWIRE_QUEUE_SIZE``)
    for error messages. With ``use_env`` the environment overrides ``options``.
    """
    values: dict[str, Any] = {}
    for key, value in options.items():
        if key not in FIELDS:
            import difflib

            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f"; did you mean {label(close[0])}?" if close else ""
            raise ValueError(f"errwire has no option {label(key)}{hint}")
        values[key] = _coerce(key, value, label(key))
    if use_env:
        values.update(config_from_env(environ))
    merged: dict[str, Any] = {n: getattr(base, n) if base else f.default for n, f in FIELDS.items()}
    merged.update(values)
    cfg = object.__new__(Config)
    for name, value in merged.items():
        object.__setattr__(cfg, name, value)
    _validate(cfg, label)
    return cfg
