"""Helpers for users' own tests.

``capture_events()`` routes delivery to an in-memory transport for the
duration of a ``with`` block and yields the list of payloads exactly as a
transport receives them, after every safeguard and the scrub stage::

    with errwire.testing.capture_events() as events:
        do_something_that_fails()
        errwire.flush()
    assert events[0]["exception"]["type"] == "builtins.ValueError"

The block flushes on exit, so assertions after it see everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import _api
from ._transport import MemoryTransport, Payload

__all__ = ["capture_events"]


@contextmanager
def capture_events(**options: Any) -> Iterator[list[Payload]]:
    """Collect delivered payloads in a list for the duration of the block.

    Starts errwire (with ``options``) if it is not running, and puts everything
    back as it was afterwards.
    """
    memory = MemoryTransport()
    runtime = _api.get_runtime()
    started_here = runtime is None or runtime.closed
    if started_here:
        runtime = _api.init(transport=memory, use_env=False, **options)
    assert runtime is not None
    forwarder = runtime.forwarder
    previous = runtime.delivery.transport
    was_enabled = _api.is_enabled()
    if not started_here:
        runtime.flush(2.0)  # what was captured before the block goes where it was going
        runtime.delivery.transport = memory
        _api.enable()
    if forwarder is not None:
        # Redis mode: for the block, this process's events go through the in-process
        # pipeline (every safeguard and the scrubber) to the list, not to the stream.
        forwarder.divert = runtime.pipeline
    try:
        yield memory.events
    finally:
        runtime.flush(5.0)
        if forwarder is not None:
            forwarder.divert = None
        if started_here:
            _api.shutdown()
        else:
            runtime.delivery.transport = previous
            if not was_enabled:
                _api.disable()
