"""The Sentry transport against a real Sentry-compatible server (Bugsink) and under
network faults (the fault receiver): what arrives, what is refused, and that
every send returns in time."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk

from errwire._sentry import SentryTransport
from errwire._transport import Outcome, Payload
from tests.support.bugsink import Bugsink, start_bugsink
from tests.support.fault_receiver import FaultReceiver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


class CheckoutError(Exception):
    pass


def _charge(amount: int) -> None:
    if amount > 100:
        raise KeyError("card")


def _checkout(amount: int) -> None:
    try:
        _charge(amount)
    except KeyError as exc:
        raise CheckoutError(f"checkout failed for {amount}") from exc


def _frames(exc: BaseException) -> list[dict[str, Any]]:
    out = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        out.append(
            {
                "filename": str(Path(code.co_filename).relative_to(ROOT)),
                "abs_path": code.co_filename,
                "function": code.co_name,
                "module": __name__,
                "lineno": tb.tb_lineno,
                "in_app": True,
            }
        )
        tb = tb.tb_next
    return out


def real_payload(amount: int = 500, **changes: Any) -> Payload:
    """A payload shaped as the worker builds it, from a real chained exception."""
    try:
        _checkout(amount)
    except CheckoutError as exc:
        main = exc
    cause = main.__cause__
    assert cause is not None
    payload: Payload = {
        "event_id": uuid.uuid4().hex,
        "timestamp": time.time(),
        "level": "error",
        "origin": "exception",
        "message": str(main),
        "exception": {
            "type": f"{__name__}.CheckoutError",
            "value": str(main),
            "stack": _frames(main),
        },
        "chain": [
            {
                "type": "builtins.KeyError",
                "value": str(cause),
                "stack": _frames(cause),
                "relation": "cause",
            }
        ],
        "component": "payments",
        "category": "business",
        "priority": "high",
        "context": {"amount": amount},
        "request": {
            "method": "POST",
            "route": "/checkout/<int:cart>",
            "path": "/checkout/7",
            "query": {},
        },
        "fingerprint": f"checkout-{amount}",
        "repeats": 0,
        "suppressed": 2,
        "tags": {
            "component": "payments",
            "category": "business",
            "priority": "high",
            "error_origin": "exception",
        },
        "release": "errwire-e2e@1",
        "environment": "e2e",
        "server_name": None,
        "runtime": {"pid": 1, "runtime_id": "e2e"},
    }
    payload.update(changes)
    return payload


@pytest.fixture
def to_receiver(fault_receiver: FaultReceiver) -> Iterator[SentryTransport]:
    transport = SentryTransport(fault_receiver.dsn, timeout=5.0)
    yield transport
    transport.close()


# -- a real server ----------------------------------------------------------------------------


def test_events_arrive_in_bugsink_as_sent(bugsink: Bugsink) -> None:
    transport = SentryTransport(bugsink.dsn, timeout=10.0)
    try:
        payloads = [real_payload(amount) for amount in (101, 202, 303)]
        results = [transport.send(p, 10.0) for p in payloads]
    finally:
        transport.close()
    assert [r.outcome for r in results] == [Outcome.OK] * 3
    assert [r.remote_id for r in results] == [p["event_id"] for p in payloads]
    assert {p["event_id"] for p in payloads} <= bugsink.event_ids()

    stored = bugsink.event(payloads[0]["event_id"])
    assert stored is not None
    data = stored["data"]
    assert data["fingerprint"] == ["checkout-101"]
    assert data["tags"]["component"] == "payments"
    assert data["contexts"]["errwire"]["suppressed"] == 2
    assert data["request"] == {"method": "POST", "url": "/checkout/7"}
    assert data["release"] == "errwire-e2e@1" and "server_name" not in data
    values = data["exception"]["values"]
    assert [v["type"] for v in values] == ["KeyError", "CheckoutError"]
    top = values[-1]["stacktrace"]["frames"][-1]
    assert top["function"] == "_checkout"
    assert "raise CheckoutError" in top["context_line"]
    assert "raise CheckoutError" in stored["stacktrace_md"]  # Bugsink rendered our source lines


def test_wrong_key_is_rejected_with_the_servers_reason(bugsink: Bugsink) -> None:
    key = bugsink.dsn.split("//", 1)[1].split("@", 1)[0]
    transport = SentryTransport(bugsink.dsn.replace(key, uuid.uuid4().hex), timeout=10.0)
    try:
        result = transport.send(real_payload(), 10.0)
    finally:
        transport.close()
    assert result.outcome is Outcome.REJECTED
    assert result.detail.startswith("HTTP 403")
    assert "key incorrect" in result.detail


def test_a_real_servers_quota_answers_429_with_its_pause(tmp_path: Path) -> None:
    server = start_bugsink(tmp_path / "bugsink", quotas={"MAX_EVENTS_PER_PROJECT_PER_5_MINUTES": 2})
    transport = SentryTransport(server.dsn, timeout=10.0)
    try:
        outcomes = [transport.send(real_payload(), 10.0) for _ in range(4)]
    finally:
        transport.close()
        server.stop()
    assert [r.outcome for r in outcomes[:2]] == [Outcome.OK, Outcome.OK]
    limited = [r for r in outcomes if r.outcome is Outcome.RATE_LIMITED]
    assert limited, [r.detail for r in outcomes]
    assert limited[0].retry_after == 60.0  # Bugsink: "60::key"
    assert "X-Sentry-Rate-Limits" in limited[0].detail


def test_through_a_slow_receiver_in_front_of_bugsink(
    bugsink: Bugsink, fault_receiver: FaultReceiver
) -> None:
    fault_receiver.forward_to(bugsink.url, delay=0.05)
    transport = SentryTransport(fault_receiver.dsn_in_front_of(bugsink.dsn), timeout=10.0)
    try:
        payload = real_payload()
        started = time.monotonic()
        result = transport.send(payload, 10.0)
        took = time.monotonic() - started
    finally:
        transport.close()
    assert result.outcome is Outcome.OK, result.detail
    assert took >= 0.05
    assert fault_receiver.event_ids() == [payload["event_id"]]
    assert payload["event_id"] in bugsink.event_ids()


# -- faults -----------------------------------------------------------------------------------


def test_timeout_is_enforced_against_a_blackhole(fault_receiver: FaultReceiver) -> None:
    fault_receiver.blackhole()
    transport = SentryTransport(fault_receiver.dsn, timeout=1.0)
    try:
        started = time.monotonic()
        result = transport.send(real_payload(), 30.0)  # the transport's 1 s cap wins
        took = time.monotonic() - started
    finally:
        transport.close()
    assert result.outcome is Outcome.RETRYABLE
    assert result.detail.startswith("timed out") and "1s" in result.detail
    assert 0.9 <= took < 3.0
    assert fault_receiver.held == 1  # the request got there and is still unanswered
    assert fault_receiver.accepted == []


def test_timeout_is_enforced_against_a_server_that_trickles_its_answer(
    fault_receiver: FaultReceiver,
) -> None:
    fault_receiver.trickle(0.2)  # every byte arrives well within a socket timeout
    transport = SentryTransport(fault_receiver.dsn, timeout=1.0)
    try:
        started = time.monotonic()
        result = transport.send(real_payload(), 1.0)
        took = time.monotonic() - started
    finally:
        transport.close()
    assert result.outcome is Outcome.RETRYABLE
    assert result.detail.startswith("timed out"), result.detail
    assert 0.9 <= took < 3.0  # the whole answer would take ~20 s
    assert fault_receiver.accepted == []


def test_a_trickled_answer_that_finishes_in_time_is_delivered(
    fault_receiver: FaultReceiver, to_receiver: SentryTransport
) -> None:
    fault_receiver.trickle(0.001)
    payload = real_payload()
    result = to_receiver.send(payload, 5.0)
    assert result.ok, result.detail
    assert result.remote_id == payload["event_id"]
    assert to_receiver.send(real_payload(), 5.0).ok  # and the connection stays usable
    assert fault_receiver.connections == 1


def test_the_callers_shorter_timeout_wins_against_a_slow_server(
    fault_receiver: FaultReceiver, to_receiver: SentryTransport
) -> None:
    fault_receiver.slow(60.0)
    started = time.monotonic()
    result = to_receiver.send(real_payload(), 0.5)
    took = time.monotonic() - started
    assert result.outcome is Outcome.RETRYABLE and "0.5s" in result.detail
    assert took < 2.5
    fault_receiver.release()
    # The slow answer came too late: the receiver must not count it as delivered.
    assert fault_receiver.wait_until(lambda r: r.held == 0)
    assert fault_receiver.accepted == []


def test_a_slow_answer_released_early_reaches_a_client_still_waiting(
    fault_receiver: FaultReceiver, to_receiver: SentryTransport
) -> None:
    fault_receiver.slow(60.0)
    payload = real_payload()
    results: list[Any] = []
    sender = threading.Thread(target=lambda: results.append(to_receiver.send(payload, 10.0)))
    sender.start()
    assert fault_receiver.wait_for_held(1)
    fault_receiver.release()
    sender.join(10.0)
    assert not sender.is_alive()
    assert results[0].ok and results[0].remote_id == payload["event_id"]
    assert fault_receiver.event_ids() == [payload["event_id"]]


def test_a_send_stuck_in_a_blackhole_does_not_block_other_threads(
    fault_receiver: FaultReceiver, to_receiver: SentryTransport
) -> None:
    fault_receiver.blackhole()
    done = threading.Event()
    results: list[Any] = []

    def send() -> None:
        results.append(to_receiver.send(real_payload(), 5.0))
        done.set()

    sender = threading.Thread(target=send)
    sender.start()
    assert fault_receiver.wait_for_held(1)
    assert not done.is_set()  # stuck on the network, as intended
    fault_receiver.release()  # the blackhole resets the held connection
    assert done.wait(5.0)
    sender.join()
    assert results[0].outcome is Outcome.RETRYABLE


def test_connect_timeout_when_the_server_never_accepts() -> None:
    # A listening socket that never accepts: once its backlog is full, the kernel
    # drops further SYNs and connecting hangs, as behind a dead firewall.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            transport = SentryTransport(f"http://key@127.0.0.1:{port}/1", timeout=0.5)
            started = time.monotonic()
            result = transport.send(real_payload(), 0.5)
            took = time.monotonic() - started
            transport.close()
        finally:
            for filler in fillers:
                filler.close()
    assert result.outcome is Outcome.RETRYABLE
    assert result.detail == f"timed out: could not connect to 127.0.0.1:{port} within 0.5s"
    assert took < 2.5


def test_tls_failure_is_retryable_with_the_reason(fault_receiver: FaultReceiver) -> None:
    # An https DSN pointing at a plain-HTTP server: the TLS handshake fails.
    transport = SentryTransport(f"https://key@127.0.0.1:{fault_receiver.port}/1", timeout=5.0)
    try:
        result = transport.send(real_payload(), 5.0)
    finally:
        transport.close()
    assert result.outcome is Outcome.RETRYABLE
    assert result.detail.startswith(f"TLS error with 127.0.0.1:{fault_receiver.port}")
    assert fault_receiver.accepted == []


def test_a_forked_child_opens_its_own_connection(
    fault_receiver: FaultReceiver, to_receiver: SentryTransport
) -> None:
    assert to_receiver.send(real_payload(), 5.0).ok  # the parent's keep-alive connection
    child_payload = real_payload()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0 if to_receiver.send(child_payload, 5.0).ok else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert to_receiver.send(real_payload(), 5.0).ok  # the parent's connection still works
    by_connection = [(r.connection, r.request_on_connection) for r in fault_receiver.requests]
    assert by_connection == [(1, 1), (2, 1), (1, 2)]
    assert fault_receiver.requests[1].event_id == child_payload["event_id"]


def test_connection_refused_then_recovery(
    fault_receiver: FaultReceiver, to_receiver: SentryTransport
) -> None:
    assert to_receiver.send(real_payload(), 5.0).ok
    fault_receiver.refuse()
    refused = to_receiver.send(real_payload(), 5.0)
    assert refused.outcome is Outcome.RETRYABLE
    assert refused.detail == f"connection refused by 127.0.0.1:{fault_receiver.port}"
    fault_receiver.ok()
    later = real_payload()
    assert to_receiver.send(later, 5.0).ok
    assert fault_receiver.event_ids()[-1] == later["event_id"]
    assert len(fault_receiver.accepted) == 2


def test_keep_alive_reuses_one_connection(
    fault_receiver: FaultReceiver, to_receiver: SentryTransport
) -> None:
    payloads = [real_payload() for _ in range(20)]
    assert all(to_receiver.send(p, 5.0).ok for p in payloads)
    assert fault_receiver.connections == 1
    assert [r.request_on_connection for r in fault_receiver.requests] == list(range(1, 21))
    assert fault_receiver.event_ids() == [p["event_id"] for p in payloads]


def test_a_keep_alive_connection_closed_by_the_server_is_replaced_once(
    fault_receiver: FaultReceiver, to_receiver: SentryTransport
) -> None:
    fault_receiver.drop_reused()  # answers a connection's first request, resets its second
    first, second = real_payload(), real_payload()
    assert to_receiver.send(first, 5.0).ok
    result = to_receiver.send(second, 5.0)
    assert result.ok, result.detail
    assert fault_receiver.connections == 2
    assert fault_receiver.event_ids() == [first["event_id"], second["event_id"]]
    assert len(fault_receiver.requests) == 3  # the reset attempt, then the fresh one


# -- living next to the host application's own sentry-sdk ---------------------------------------


@pytest.fixture
def host_sentry(fault_receiver: FaultReceiver) -> Iterator[FaultReceiver]:
    """The host application's own ``sentry_sdk.init``, pointed at its own receiver."""
    with FaultReceiver(project=77, key="hostkey") as host_receiver:
        sentry_sdk.init(
            dsn=host_receiver.dsn,
            default_integrations=False,
            auto_enabling_integrations=False,
        )
        try:
            yield host_receiver
        finally:
            client = sentry_sdk.get_client()
            client.close(timeout=2.0)
            sentry_sdk.get_global_scope().set_client(None)


def test_host_sentry_sdk_and_errwire_each_deliver_their_own(
    fault_receiver: FaultReceiver, host_sentry: FaultReceiver
) -> None:
    host_client = sentry_sdk.get_client()
    assert host_client.is_active()

    ours = SentryTransport(fault_receiver.dsn, timeout=5.0)
    mine = [real_payload() for _ in range(3)]
    host_id = sentry_sdk.capture_message("host says hello")
    results = [ours.send(p, 5.0) for p in mine]
    ours.close()
    assert sentry_sdk.flush(timeout=5.0) is None
    assert host_sentry.wait_until(lambda r: len(r.accepted) >= 1)

    assert all(r.ok for r in results)
    assert sentry_sdk.get_client() is host_client  # errwire did not replace or wrap it
    assert fault_receiver.event_ids() == [p["event_id"] for p in mine]
    assert host_sentry.event_ids() == [host_id]
    host_event = host_sentry.events()[0]
    assert host_event["message"] == "host says hello"
    assert "errwire" not in host_event.get("contexts", {})
    assert host_event["sdk"]["name"] == "sentry.python"
    for event in fault_receiver.events():
        assert event["sdk"]["name"] == "errwire.python"
        assert "breadcrumbs" not in event  # nothing of the host's scope leaked into ours


HOST_APP = """
import json, sys, threading
import sentry_sdk
from errwire._sentry import SentryTransport

host_dsn, our_dsn = sys.argv[1:3]
payload = json.load(sys.stdin)
sentry_sdk.init(dsn=host_dsn, traces_sample_rate=1.0)  # default integrations, tracing on
transport = SentryTransport(our_dsn, timeout=5.0)
results = []
with sentry_sdk.start_transaction(name="host-request", op="http.server"):
    # errwire's worker thread, started inside a traced request of the host
    worker = threading.Thread(target=lambda: results.append(transport.send(payload, 5.0)))
    worker.start()
    worker.join()
    host_id = sentry_sdk.capture_message("host says hello")
sentry_sdk.flush(timeout=5.0)
print(json.dumps({"ok": results[0].ok, "detail": results[0].detail, "host_id": host_id}))
"""


def test_a_traced_host_app_sees_nothing_of_errwire_delivery(fault_receiver: FaultReceiver) -> None:
    """With the host's default integrations and tracing on, errwire's POSTs are
    neither spans in the host's transaction nor carriers of its trace headers.
    (A subprocess, so sentry-sdk's default integrations never patch this one.)"""
    payload = real_payload()
    with FaultReceiver(project=77, key="hostkey") as host:
        done = subprocess.run(
            [sys.executable, "-c", HOST_APP, host.dsn, fault_receiver.dsn],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert host.wait_until(lambda r: len(r.accepted) >= 2)
        host_items = [(h.get("type"), p) for r in host.accepted for h, p in r.items]
    assert report["ok"], report["detail"]
    assert fault_receiver.event_ids() == [payload["event_id"]]
    ours = fault_receiver.requests[0].headers
    assert "sentry-trace" not in {k.lower() for k in ours}
    assert "baggage" not in {k.lower() for k in ours}

    events = [p for kind, p in host_items if kind == "event"]
    transactions = [p for kind, p in host_items if kind == "transaction"]
    assert [e["event_id"] for e in events] == [report["host_id"]]
    assert payload["event_id"] not in json.dumps(host_items)
    [transaction] = transactions
    assert transaction["transaction"] == "host-request"
    port = str(fault_receiver.port)
    assert not [s for s in transaction.get("spans", []) if port in json.dumps(s)]
