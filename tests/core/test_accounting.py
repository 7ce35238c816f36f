"""The accounting identity, over generated streams of events and faults:

captured == delivered + deduplicated + rate_limited + sampled_out + dropped + spooled + rejected
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import errwire
from errwire import _api
from errwire._clock import ManualClock
from errwire._config import make_config
from errwire._internal import internal_error_count
from errwire._runtime import Runtime, accounted_for
from errwire._transport import Outcome

from .conftest import ScriptedTransport, outbox_of


def _raise(i: int, text: str) -> ValueError:
    try:
        if i == 0:
            raise ValueError(text)
        if i == 1:
            raise ValueError(text)
        raise ValueError(text)
    except ValueError as exc:
        return exc


op = st.one_of(
    st.tuples(st.just("unique"), st.integers(0, 10**6), st.sampled_from(["a", "b", "noisy"])),
    st.tuples(st.just("duplicate"), st.integers(0, 2), st.just("a")),
    st.tuples(st.just("noisy"), st.integers(0, 50), st.just("noisy")),
    st.tuples(st.just("warning"), st.integers(0, 10**6), st.just("b")),
    st.tuples(
        st.just("fail"),
        st.integers(1, 12),
        st.sampled_from(["retryable", "rate_limited", "rejected"]),
    ),
    st.tuples(st.just("advance"), st.sampled_from([0.5, 2.0, 61.0, 400.0]), st.just("")),
    st.tuples(st.just("process"), st.just(0), st.just("")),
    st.tuples(st.just("idle"), st.just(0), st.just("")),
    st.tuples(st.just("toggle"), st.just(0), st.just("")),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(op, min_size=1, max_size=80),
    queue_size=st.sampled_from([5, 50, 1000]),
    seed=st.integers(0, 99),
)
def test_identity_holds_after_any_stream(
    data_dir: str, ops: list[tuple[str, Any, Any]], queue_size: int, seed: int
) -> None:
    clock = ManualClock()
    transport = ScriptedTransport()
    config = make_config(
        {
            "data_dir": f"{data_dir}/{seed}-{len(ops)}-{queue_size}",
            "queue_size": queue_size,
            "rate_limit_per_minute": 10,
            "sample_rate": 0.7,
            "breaker_failure_threshold": 3,
            "breaker_recovery_seconds": 60,
            "outbox_max_events": 30,
            "drop_policy": random.Random(seed).choice(["drop_newest", "drop_oldest"]),
        }
    )
    runtime = Runtime(
        config,
        transport=transport,
        clock=clock,
        scrub=lambda p: p,
        autostart=False,
        is_enabled=_api._runtime_enabled,
        rng=random.Random(seed),
    )
    _api.install(runtime)
    internal_before = internal_error_count()  # a process-wide counter: compare the change
    try:
        for kind, arg, extra in ops:
            if kind == "unique":
                errwire.capture_error(
                    _raise(arg % 3, f"unique {arg} {extra}-{clock.monotonic()}"), component=extra
                )
            elif kind == "duplicate":
                errwire.capture_error(_raise(arg, "same thing"), component="a")
            elif kind == "noisy":
                for _ in range(arg):
                    errwire.capture_message(
                        f"noise {clock.monotonic()}", level="error", component="noisy"
                    )
            elif kind == "warning":
                errwire.capture_message(f"warn {arg}", level="warning", component="b")
            elif kind == "fail":
                outcome = {
                    "retryable": Outcome.RETRYABLE,
                    "rate_limited": Outcome.RATE_LIMITED,
                }.get(extra, Outcome.REJECTED)
                transport.fail_next(arg, outcome, retry_after=5.0)
            elif kind == "advance":
                clock.advance(arg)
            elif kind == "process":
                runtime.worker_lane.process_pending()
            elif kind == "idle":
                runtime.worker_lane.run_idle()
            elif kind == "toggle":
                if errwire.is_enabled():
                    errwire.disable()
                else:
                    errwire.enable()
        runtime.worker_lane.process_pending()  # a quiet moment
        c = runtime.counters()
        assert c["captured"] == accounted_for(c), c
        assert (
            c["delivered"]
            == len(transport.received) - runtime.delivery.stats.foreign_replayed.value
        )
        assert c["spooled"] == outbox_of(runtime).pending_by_owner().get(runtime.runtime_id, 0)
        assert c["internal_errors"] == internal_before
    finally:
        _api.shutdown(1.0)
