"""End-to-end fixtures: a real Bugsink for the session, a fault receiver per test.

A Bugsink that cannot be installed or started fails the tests that need it;
it is never skipped (CI must prove delivery to a real server).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.bugsink import Bugsink, start_bugsink
from tests.support.fault_receiver import FaultReceiver


@pytest.fixture(scope="session")
def bugsink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bugsink]:
    server = start_bugsink(tmp_path_factory.mktemp("bugsink"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fault_receiver() -> Iterator[FaultReceiver]:
    receiver = FaultReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
