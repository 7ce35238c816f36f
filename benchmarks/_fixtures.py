"""Shared inputs for benchmarks: realistic exceptions and quiet runtimes."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from errwire import _api
from errwire._clock import SystemClock
from errwire._config import make_config
from errwire._runtime import Runtime
from errwire._transport import MemoryTransport


def exception_with_frames(depth: int, message: str = "order 42 failed") -> Exception:
    """An exception whose traceback has exactly ``depth`` frames."""

    def dive(n: int) -> None:
        if n <= 1:
            raise ValueError(message)
        dive(n - 1)

    try:
        dive(depth)
    except ValueError as exc:
        # drop the frame of this function so the traceback is exactly ``depth`` deep
        assert exc.__traceback__ is not None
        exc.__traceback__ = exc.__traceback__.tb_next
        return exc
    raise AssertionError("unreachable")


def quiet_runtime(**options: Any) -> Runtime:
    """A runtime whose worker does not run, so only the caller's side is measured."""
    options.setdefault("data_dir", tempfile.mkdtemp(prefix="errwire-bench-"))
    return Runtime(
        make_config(options),
        transport=MemoryTransport(),
        clock=SystemClock(),
        scrub=lambda payload: payload,
        autostart=False,
    )


def empty(exc: BaseException) -> None:
    """The language floor: an empty Python function call with one argument."""


def activate(runtime: Runtime | None) -> None:
    """Make ``runtime`` the process's runtime (None: telemetry off) without side effects."""
    _api._runtime = runtime
    _api._enabled = runtime is not None


def sentry_init(**options: Any) -> None:
    """``sentry_sdk.init(**options)``. A full run keeps sentry-sdk's defaults; a
    quick or smoke run (``BENCH_MODE``, set by the runner) turns its auto-enabling
    integrations off: they import every supported library that is installed, about
    a second of start-up in every process, and a quick run starts dozens."""
    import sentry_sdk

    if os.environ.get("BENCH_MODE", "full") != "full":
        options.setdefault("auto_enabling_integrations", False)
    sentry_sdk.init(**options)
