"""The Redis Streams bus: web processes forward, worker processes deliver.

Imported only when the ``bus`` option is a Redis URL (``redis`` is imported
lazily inside). One module per job: ``_keys`` (names, connection),
``_scripts`` (the atomic Lua steps), ``_forwarder`` (web side),
``_safeguards`` (fleet-wide dedup and rate limit), ``_consumer`` (worker side),
``_fleet`` (heartbeats, totals, the status report).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._internal import logger
from ._consumer import FleetWorker
from ._fleet import FleetHeartbeat, FleetReport, fleet_report, render_fleet
from ._forwarder import StreamForwarder, spool_path
from ._keys import GROUP, Keys, connect, redis_errors

if TYPE_CHECKING:
    from .._config import Config
    from .._runtime import Runtime
    from .._transport import Transport

__all__ = [
    "GROUP",
    "FleetHeartbeat",
    "FleetReport",
    "FleetWorker",
    "Keys",
    "StreamForwarder",
    "connect",
    "fleet_report",
    "forwarder_for",
    "read_fleet",
    "redis_errors",
    "render_fleet",
    "run_fleet_worker",
]


def forwarder_for(runtime: Runtime) -> StreamForwarder:
    """The worker lane's consumer for a runtime whose bus is Redis."""
    from .._outbox import Outbox

    config = runtime.config
    spool = None
    if runtime.outbox is not None:
        spool = Outbox(spool_path(config), config.outbox_max_events, clock=runtime.clock)
    return StreamForwarder(
        config,
        runtime.builder,
        runtime.scrub,
        runtime.clock,
        owner=runtime.runtime_id,
        is_enabled=runtime.is_enabled,
        spool=spool,
        on_idle=runtime._maintenance,
    )


def read_fleet(url: str, **options: Any) -> FleetReport:
    """The fleet report for the Redis at ``url`` (``status --redis``)."""
    from .._config import redact_url

    client = connect(url, client_name="errwire-status")
    try:
        return fleet_report(client, url=redact_url(url), **options)
    finally:
        client.close()


def run_fleet_worker(
    config: Config,
    *,
    stop: threading.Event,
    shutdown_timeout: float | None = None,
    transport: Transport | None = None,
    on_start: Callable[[FleetWorker], None] | None = None,
) -> FleetWorker:
    """Consume the stream until ``stop`` is set; then finish and ack the batch in hand
    within ``shutdown_timeout`` (what is left stays pending for another worker)."""
    worker = FleetWorker(config, transport=transport)
    thread = threading.Thread(
        target=worker.run, args=(stop,), name="errwire-fleet-worker", daemon=True
    )
    thread.start()
    if on_start is not None:
        on_start(worker)
    stop.wait()
    timeout = config.shutdown_timeout_seconds if shutdown_timeout is None else shutdown_timeout
    worker.deadline = time.monotonic() + timeout
    thread.join(timeout + 0.5)
    if thread.is_alive():
        logger.warning(
            "errwire worker %s did not finish within %.1f s: %d held entries stay pending "
            "and another worker reclaims them",
            worker.runtime_id,
            timeout,
            len(worker._holding),
        )
        worker.heartbeat.write(worker.status(), final=True)
    else:
        worker.close()
    return worker
