"""The settings adapter: Django's ``ERRWIRE`` dict -> a validated ``errwire.Config``.

Keys are the upper-case ``Config`` fields (``DSN``, ``ENABLED``, ``QUEUE_SIZE``,
...) plus the integration's own (``CAPTURE_4XX``). They are merged over
defaults that depend on the project (``ENVIRONMENT`` from ``DEBUG``,
``DATA_DIR`` and ``PROJECT_ROOT`` under ``BASE_DIR``, ``RELEASE`` from the git
checkout at ``BASE_DIR``), then ``ERRWIRE_<OPTION>`` environment variables win.
The result is cached and the cache is cleared when ``override_settings``
changes one of the settings it depends on (django-debug-toolbar's pattern).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from errwire._config import FIELDS, Config, make_config

__all__ = [
    "INTEGRATION_DEFAULTS",
    "SETTING",
    "DjangoSettings",
    "clear_cache",
    "get_config",
    "get_settings",
    "git_revision",
    "integration_problem",
    "label",
    "project_defaults",
    "raw_settings",
    "suggest",
]

SETTING = "ERRWIRE"
# Options of the Django integration itself (not ``Config`` fields), with their defaults.
INTEGRATION_DEFAULTS: dict[str, Any] = {
    "CAPTURE_4XX": False,
    "DASHBOARD_PERMISSION": None,  # "app_label.codename" staff users also need for the dashboard
    "DASHBOARD_TOKEN": None,  # a bearer token that opens status.json and metrics without a login
}
# Settings whose change invalidates the cached configuration.
WATCHED = frozenset({SETTING, "DEBUG", "BASE_DIR"})


@dataclass(frozen=True, slots=True)
class DjangoSettings:
    """Everything the integration reads from settings, validated."""

    config: Config
    capture_4xx: bool = False
    dashboard_permission: str | None = None
    dashboard_token: str | None = None


def label(name: str) -> str:
    """How a field is written in settings.py: ``ERRWIRE["QUEUE_SIZE"]``."""
    return f'{SETTING}["{name.upper()}"]'


def known_keys() -> list[str]:
    return [name.upper() for name in FIELDS] + list(INTEGRATION_DEFAULTS)


def suggest(key: object) -> str:
    """`` Did you mean ERRWIRE["QUEUE_SIZE"]?`` for a mistyped key, or ``""``."""
    close = difflib.get_close_matches(str(key).upper(), known_keys(), n=1, cutoff=0.6)
    return f" Did you mean {label(close[0])}?" if close else ""


def raw_settings() -> Mapping[Any, Any]:
    """The ``ERRWIRE`` setting as written (``{}`` when absent)."""
    raw = getattr(settings, SETTING, None)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(
            f"The {SETTING} setting must be a dict of options; got {type(raw).__name__}."
        )
    return raw


def git_revision(start: str | os.PathLike[str]) -> str | None:
    """The commit checked out at ``start`` or a parent, read from ``.git`` (no subprocess)."""
    try:
        here = Path(start).resolve()
        for folder in (here, *here.parents):
            git = folder / ".git"
            if git.is_file():  # a worktree or submodule: "gitdir: <path>"
                text = git.read_text().strip()
                if not text.startswith("gitdir:"):
                    return None
                git = (folder / text.partition(":")[2].strip()).resolve()
            if git.is_dir():
                return _resolve_head(git)
    except (OSError, ValueError):
        return None
    return None


def _resolve_head(git: Path) -> str | None:
    head = (git / "HEAD").read_text().strip()
    if not head.startswith("ref:"):
        return head[:12] or None
    ref = head.partition(":")[2].strip()
    common = git
    if (git / "commondir").is_file():
        common = (git / (git / "commondir").read_text().strip()).resolve()
    for base in (git, common):
        if (base / ref).is_file():
            return (base / ref).read_text().strip()[:12] or None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref:
                return sha[:12]
    return None


def project_defaults() -> dict[str, Any]:
    """Defaults that depend on the project (lower-case field names)."""
    defaults: dict[str, Any] = {
        "environment": "development" if getattr(settings, "DEBUG", False) else "production"
    }
    base_dir = getattr(settings, "BASE_DIR", None)
    if base_dir:
        defaults["data_dir"] = os.path.join(os.fspath(base_dir), ".errwire")
        defaults["project_root"] = os.fspath(base_dir)
        release = git_revision(base_dir)
        if release:
            defaults["release"] = release
    return defaults


def build_settings(
    raw: Mapping[Any, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> DjangoSettings:
    """Validate ``raw`` (default: the ``ERRWIRE`` setting) merged over the defaults.

    Raises ``ImproperlyConfigured`` naming the key the way the user wrote it.
    ``manage.py check`` reports every problem at once; this stops at the first.
    """
    raw = raw_settings() if raw is None else raw
    options: dict[str, Any] = {}
    extras = dict(INTEGRATION_DEFAULTS)
    for key, value in raw.items():
        if key in extras:
            extras[key] = value
        elif isinstance(key, str) and key.isupper() and key.lower() in FIELDS:
            options[key.lower()] = value
        else:
            raise ImproperlyConfigured(f"errwire has no option {SETTING}[{key!r}].{suggest(key)}")
    for name, value in project_defaults().items():
        options.setdefault(name, value)
    try:
        config = make_config(options, label=label, use_env=True, environ=environ)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None
    for key, value in extras.items():
        problem = integration_problem(key, value)
        if problem is not None:
            raise ImproperlyConfigured(problem[0])
    token = extras["DASHBOARD_TOKEN"]
    return DjangoSettings(
        config,
        extras["CAPTURE_4XX"],
        extras["DASHBOARD_PERMISSION"],
        token.strip() if isinstance(token, str) else None,
    )


def integration_problem(key: str, value: Any) -> tuple[str, str] | None:
    """(message, hint) when an option of the integration itself has a bad value."""
    if key == "CAPTURE_4XX" and not isinstance(value, bool):
        return f"errwire option {label(key)} must be True or False; got {value!r}", (
            "Use True or False."
        )
    if (
        key == "DASHBOARD_PERMISSION"
        and value is not None
        and (not isinstance(value, str) or value.count(".") != 1 or " " in value)
    ):
        return (
            f"errwire option {label(key)} must be a permission name like "
            f'"auth.view_user" ("<app_label>.<codename>") or None; got {value!r}',
            "Use None (staff users may look) or a permission staff users must also have.",
        )
    if key == "DASHBOARD_TOKEN" and value is not None:
        from errwire.integrations._telemetry_http import check_token

        try:
            check_token(value, label(key))
        except ValueError as exc:
            return str(exc), "Use None (staff login only) or a long random string."
    return None


_cache: DjangoSettings | None = None


def get_settings() -> DjangoSettings:
    """The validated settings, read once and cached (``clear_cache`` to re-read)."""
    global _cache
    cached = _cache
    if cached is None:
        cached = _cache = build_settings()
    return cached


def get_config() -> Config:
    return get_settings().config


def clear_cache() -> None:
    global _cache
    _cache = None
