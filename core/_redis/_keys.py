"""Where the fleet lives in Redis, and how errwire connects to it.

Every key shares one hash tag (``{errwire}``), so the scripts that touch several
keys at once also run on a Redis Cluster. ``redis`` is imported here, lazily:
nothing in errwire imports it unless the bus is a Redis URL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = ["GROUP", "Keys", "connect", "redis_errors"]

GROUP = "errwire-workers"


@dataclass(frozen=True, slots=True)
class Keys:
    """The names of every key errwire uses under one namespace."""

    namespace: str = "errwire"

    @property
    def _root(self) -> str:
        return f"{self.namespace}:{{errwire}}"

    @property
    def stream(self) -> str:
        """The event stream: scrubbed payloads waiting for (or held by) a worker."""
        return f"{self._root}:events"

    @property
    def totals(self) -> str:
        """Fleet-wide cumulative counters (a hash; see ``_fleet``)."""
        return f"{self._root}:totals"

    @property
    def runtimes(self) -> str:
        """Sorted set of runtime ids by last heartbeat time."""
        return f"{self._root}:runtimes"

    def heartbeat(self, runtime_id: str) -> str:
        return f"{self._root}:hb:{runtime_id}"

    def dedup(self, fingerprint: str) -> str:
        return f"{self._root}:dedup:{fingerprint}"

    def dedup_count(self, fingerprint: str) -> str:
        return f"{self._root}:dedup-n:{fingerprint}"

    def bucket(self, component: str) -> str:
        # component names come from users' settings: hash them into a bounded key
        digest = hashlib.blake2b(component.encode("utf-8", "surrogatepass"), digest_size=8)
        return f"{self._root}:rate:{digest.hexdigest()}"


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a Redis call raises when the server is unreachable, slow or refuses."""
    import redis

    return (redis.RedisError, OSError)


def connect(url: str, *, timeout: float = 5.0, client_name: str | None = None) -> Any:
    """A client for ``url`` that fails fast: no retries inside redis-py (errwire
    decides when to retry) and bounded connect/read times."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
        decode_responses=True,
        health_check_interval=30,
        client_name=client_name,
    )
