"""Fixtures for core tests: runtimes with a manual clock and no worker thread,
so every stage can be driven step by step."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from errwire import _event, _runtime, _walk
from errwire._clock import ManualClock
from errwire._config import make_config
from errwire._outbox import Outbox
from errwire._runtime import Runtime, accounted_for
from errwire._transport import MemoryTransport, Outcome, Payload, SendResult

MakeRuntime = Callable[..., Runtime]


def raise_depth(
    depth: int, message: str = "boom", exc_type: type[Exception] = ValueError
) -> Exception:
    """An exception raised ``depth`` frames deep (a realistic traceback)."""

    def dive(n: int) -> None:
        if n <= 1:
            raise exc_type(message)
        dive(n - 1)

    try:
        dive(depth)
    except exc_type as exc:
        return exc
    raise AssertionError("unreachable")


class ScriptedTransport:
    """A transport whose answers the test decides: a queue of outcomes, then OK."""

    name = "scripted"
    enforces_timeout = True

    def __init__(self) -> None:
        self.received: list[Payload] = []
        self.script: list[SendResult] = []
        self.attempts = 0

    def fail_next(
        self, n: int, outcome: Outcome = Outcome.RETRYABLE, retry_after: float | None = None
    ) -> None:
        self.script.extend(
            SendResult(outcome, detail="scripted", retry_after=retry_after) for _ in range(n)
        )

    def send(self, payload: Payload, timeout: float) -> SendResult:
        self.attempts += 1
        if self.script:
            return self.script.pop(0)
        self.received.append(payload)
        return SendResult(Outcome.OK, remote_id=payload["event_id"])

    def close(self) -> None:
        return None


@pytest.fixture(params=["compiled", "python"])
def walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a capture test with each traceback walk: the C one (errwire._speedups)
    and its pure-Python twin, which runs where no C compiler was at hand."""
    if request.param == "compiled":
        if not _walk.SPEEDUPS:
            pytest.skip("errwire._speedups is not built here (test_walk checks why)")
        return "compiled"
    monkeypatch.setattr(_runtime, "_frames", _walk.py_frames)
    monkeypatch.setattr(_runtime, "_raise_site", _walk.py_raise_site)
    monkeypatch.setattr(_runtime, "_chained", _walk.py_chained)
    monkeypatch.setattr(_event, "snapshot_frames", _walk.py_frames)
    return "python"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_runtime(data_dir: str, clock: ManualClock) -> Iterator[MakeRuntime]:
    made: list[Runtime] = []

    def make(
        transport: Any = None, *, autostart: bool = False, scrub: Any = None, **options: Any
    ) -> Runtime:
        options.setdefault("data_dir", data_dir)
        config = make_config(options)
        runtime = Runtime(
            config,
            transport=transport if transport is not None else MemoryTransport(),
            clock=clock,
            scrub=scrub if scrub is not None else (lambda payload: payload),
            autostart=autostart,
        )
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.shutdown(2.0)


def accounted(runtime: Runtime) -> int:
    """The right-hand side of the accounting identity."""
    return accounted_for(runtime.counters())


def outbox_of(runtime: Runtime) -> Outbox:
    assert runtime.outbox is not None, "this runtime runs without an outbox"
    return runtime.outbox
