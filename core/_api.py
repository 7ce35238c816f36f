"""The public functions, and the fast path.

``capture_error`` and friends check one module-level flag and return at once
when telemetry is off: no allocation, no stack walk. Everything else is behind
the flag, on one ``Runtime`` object.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from ._builder import EnhancedError, capture_enhanced
from ._clock import Clock
from ._config import Config, make_config
from ._internal import internal_error, logger
from ._runtime import Runtime
from ._transport import Transport
from ._worker import Scrub

__all__ = [
    "capture_error",
    "capture_message",
    "disable",
    "enable",
    "flush",
    "get_runtime",
    "init",
    "is_enabled",
    "shutdown",
    "status",
]

_enabled = False
_runtime: Runtime | None = None
_lock = threading.RLock()


# The options are positional-or-keyword on purpose: CPython fills missing
# keyword-only arguments from a dict on every call, which doubles the cost of
# the disabled fast path. Pass them by keyword all the same.
def capture_error(
    exc: BaseException,
    /,
    component: str | None = None,
    category: str | None = None,
    level: str = "error",
    context: Mapping[str, Any] | None = None,
    priority: str | None = None,
) -> bool:
    """Report an exception. Returns at once (False) when telemetry is off; never raises."""
    if not _enabled:
        return False
    runtime = _runtime
    if runtime is None:  # shut down by another thread a moment ago
        return False
    if isinstance(exc, EnhancedError):  # its own metadata, and reported once
        return capture_enhanced(exc, component, category, level, context, priority)
    return runtime.capture_exception(exc, component, category, level, context, priority)


def capture_message(
    message: str,
    /,
    level: str = "info",
    component: str | None = None,
    category: str | None = None,
    context: Mapping[str, Any] | None = None,
    priority: str | None = None,
) -> bool:
    """Report a message. Returns at once (False) when telemetry is off; never raises."""
    if not _enabled:
        return False
    runtime = _runtime
    if runtime is None:
        return False
    return runtime.capture_message(message, level, component, category, context, priority)


def is_enabled() -> bool:
    return _enabled


def _runtime_enabled() -> bool:
    return _enabled


def _on() -> bool:
    return True


def _off() -> bool:
    return False


def _detach(runtime: Runtime) -> None:
    """Unhook a runtime that stops being the process's runtime from the process-wide
    switch, keeping the switch's current answer: what it already queued is still
    delivered (or spooled) as it shuts down, unless telemetry was disabled, in which
    case it is discarded as ``disable()`` promises. Call it with ``_lock`` held and
    before the switch changes, so the worker never sees an answer in between."""
    runtime._is_enabled = _on if _enabled else _off


def init(
    dsn: str | None = None,
    *,
    config: Config | None = None,
    transport: Transport | str | None = None,
    clock: Clock | None = None,
    scrub: Scrub | None = None,
    use_env: bool = True,
    **options: Any,
) -> Runtime:
    """Start errwire. Options are ``Config`` fields; ``ERRWIRE_<OPTION>`` environment
    variables override them (``use_env=False`` to ignore the environment).

    ``transport`` is either the option (``"auto"``, ``"local"``, ``"memory"``,
    ``"sentry"``) or a ``Transport`` object of your own. Calling ``init`` again
    replaces the running runtime (the old one is shut down).
    """
    if dsn is not None:
        options["dsn"] = dsn
    if isinstance(transport, str):  # the ``transport`` option by name ("local", "memory", ...)
        options["transport"], transport = transport, None
    cfg = make_config(options, base=config, use_env=use_env)
    runtime = Runtime(
        cfg, transport=transport, clock=clock, is_enabled=_runtime_enabled, scrub=scrub
    )
    install(runtime)
    if cfg.enabled and _left_behind(runtime):
        # Events an earlier process left in the outbox or, in Redis mode, in the
        # forward spool (it died, hit its shutdown deadline, or Redis was down) go
        # out now, not only once this process captures something.
        runtime.worker_lane.start()
    return runtime


def _left_behind(runtime: Runtime) -> bool:
    paths = [runtime.config.resolved_outbox_path]
    forwarder = runtime.forwarder
    if forwarder is not None and forwarder.outbox is not None:
        paths.append(forwarder.outbox.path)
    return any(os.path.exists(p) for p in paths)


def install(runtime: Runtime) -> Runtime | None:
    """Make ``runtime`` the process's runtime; returns (and stops) the previous one."""
    global _runtime, _enabled
    runtime._is_enabled = _runtime_enabled
    with _lock:
        previous, _runtime = _runtime, runtime
        if previous is not None and previous is not runtime:
            _detach(previous)
        _enabled = runtime.config.enabled
    if previous is not None and previous is not runtime:
        previous.shutdown(previous.config.shutdown_timeout_seconds)
    return previous


def get_runtime() -> Runtime | None:
    return _runtime


def enable() -> None:
    """Turn capture on (immediately). Needs ``init`` first."""
    global _enabled
    with _lock:
        if _runtime is None or _runtime.closed:
            raise RuntimeError("errwire.enable() needs errwire.init() first")
        _enabled = True


def disable() -> None:
    """Turn capture off (immediately): queued events are discarded, not sent."""
    global _enabled
    _enabled = False


def _current() -> Runtime | None:
    """The runtime, re-created if this process was forked without the fork hook running."""
    runtime = _runtime
    if runtime is not None and runtime.pid != os.getpid():
        _after_fork_in_child()
        runtime = _runtime
    return runtime


def flush(timeout: float = 2.0) -> bool:
    """Wait up to ``timeout`` seconds for queued events to be handled."""
    runtime = _current()
    if runtime is None:
        return True
    try:
        return runtime.flush(timeout)
    except Exception as exc:
        internal_error("flush", exc)
        return False


def shutdown(timeout: float | None = None) -> bool:
    """Deliver what is queued within ``timeout`` and stop; the rest goes to the outbox."""
    global _runtime, _enabled
    with _lock:
        runtime, _runtime = _runtime, None
        if runtime is not None:
            _detach(runtime)  # capture stops now; what is queued is still delivered
        _enabled = False
    if runtime is None:
        return True
    try:
        return runtime.shutdown(
            runtime.config.shutdown_timeout_seconds if timeout is None else timeout
        )
    except Exception as exc:
        internal_error("shutdown", exc)
        return False


def status() -> dict[str, Any]:
    """A JSON-serialisable snapshot of this process's runtime (see the README for keys)."""
    runtime = _current()
    if runtime is None:
        return {"enabled": False, "initialised": False, "pid": os.getpid()}
    snapshot = runtime.status()
    snapshot["initialised"] = True
    return snapshot


def _after_fork_in_child() -> None:
    """A forked child gets a fresh runtime: the parent's queued events stay the parent's."""
    global _runtime, _lock
    _lock = threading.RLock()
    parent = _runtime
    if parent is None or parent.closed:
        return
    try:
        _runtime = parent.forked()
    except Exception as exc:  # pragma: no cover - defensive
        _runtime = None
        logger.error("errwire could not restart after fork: %r", exc)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
