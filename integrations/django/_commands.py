"""What the management commands share: the configuration, or a ``CommandError``."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError

from errwire._config import Config

from . import conf

__all__ = ["load_config"]


def load_config() -> Config:
    try:
        return conf.get_config()
    except ImproperlyConfigured as exc:
        raise CommandError(f"errwire is not configured: {exc}") from None
