"""Django is configured here, for this directory only: other test directories never
load it. ``AppConfig.ready()`` starts a runtime; it is shut down again at once so
every test starts with errwire off, like every other test in the suite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integrations.django.settings")
django.setup()

import errwire  # noqa: E402
from errwire import _api  # noqa: E402
from errwire._transport import MemoryTransport, Payload  # noqa: E402
from errwire.integrations.django import conf  # noqa: E402

_api.shutdown()


@pytest.fixture(autouse=True)
def _fresh_settings_cache() -> Iterator[None]:
    conf.clear_cache()
    yield
    conf.clear_cache()


class Telemetry:
    """A running errwire with an in-memory transport; ``events()`` flushes first."""

    def __init__(self, memory: MemoryTransport) -> None:
        self.memory = memory

    def events(self) -> list[Payload]:
        assert errwire.flush(5.0)
        return list(self.memory.events)


@pytest.fixture
def telemetry() -> Telemetry:
    memory = MemoryTransport()
    config = conf.get_config().replace(storm_window_seconds=0, dedup_window_seconds=0)
    errwire.init(config=config, transport=memory, use_env=False)
    return Telemetry(memory)


@pytest.fixture
def root_handler() -> Iterator[Callable[[], Any]]:
    """``ErrwireHandler`` on the root logger, as a project's LOGGING would install it."""
    import logging

    from errwire.logging import ErrwireHandler

    handler = ErrwireHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: handler
    root.removeHandler(handler)
