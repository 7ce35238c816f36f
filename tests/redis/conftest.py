"""Fixtures for the Redis bus tests: one real redis-server per session (emptied
before each test), and a server of its own for tests that restart it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from errwire._redis import Keys, connect
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def _shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(_shared_redis: RedisServer) -> RedisServer:
    """The session's Redis, emptied for this test."""
    client = _shared_redis.client()
    try:
        client.flushall()
    finally:
        client.close()
    return _shared_redis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis only this test uses (it may stop and restart it)."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[Any]:
    c = connect(redis_server.url)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def keys() -> Keys:
    return Keys()
