"""What Sentry receives: the event built from a payload, the envelope, and how
every kind of answer is classified (against the local fault receiver)."""

from __future__ import annotations

import email.utils
import gzip
import http.client
import linecache
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from urllib3.connection import HTTPConnection
from urllib3.exceptions import NameResolutionError, NewConnectionError, ProtocolError

from errwire._sentry import SentryTransport, check_dsn
from errwire._sentry_event import build_event, parse_rate_limits, parse_retry_after
from errwire._transport import Outcome, Payload, Transport
from tests.support.fault_receiver import FaultReceiver, Status, parse_envelope


class Outer:
    class InnerError(Exception):
        pass


def _raise_here() -> tuple[int, str]:
    """Raise and catch; return the line number and file of the raise."""
    try:
        raise ValueError("on purpose")
    except ValueError as exc:
        tb = exc.__traceback__
        assert tb is not None
        return tb.tb_lineno, tb.tb_frame.f_code.co_filename


def frame(path: str, lineno: int, function: str = "f", in_app: bool = True) -> dict[str, Any]:
    return {
        "filename": Path(path).name,
        "abs_path": path,
        "function": function,
        "module": "tests.core.test_sentry_payload",
        "lineno": lineno,
        "in_app": in_app,
    }


def make_payload(**changes: Any) -> Payload:
    line, path = _raise_here()
    payload: Payload = {
        "event_id": uuid.uuid4().hex,
        "timestamp": 1_700_000_000.25,
        "level": "error",
        "origin": "exception",
        "message": "on purpose",
        "exception": {
            "type": "builtins.ValueError",
            "value": "on purpose",
            "stack": [
                frame(path, line - 3, "outer", in_app=False),
                frame(path, line, "_raise_here"),
            ],
        },
        "chain": [],
        "component": "db",
        "category": "database",
        "priority": "high",
        "context": {"table": "orders", "attempt": 2},
        "request": None,
        "fingerprint": "f" * 16,
        "repeats": 3,
        "suppressed": 7,
        "tags": {
            "component": "db",
            "category": "database",
            "priority": "high",
            "error_origin": "exception",
        },
        "release": None,
        "environment": None,
        "server_name": None,
        "runtime": {"pid": 4242, "runtime_id": "rt-1"},
    }
    payload.update(changes)
    return payload


# -- the event --------------------------------------------------------------------------


def test_required_fields_and_fingerprint() -> None:
    payload = make_payload()
    event = build_event(payload)
    assert event["event_id"] == payload["event_id"]
    assert event["timestamp"] == "2023-11-14T22:13:20.250000Z"
    assert event["level"] == "error"
    assert event["platform"] == "python"
    assert event["fingerprint"] == ["f" * 16]
    assert "server_name" not in event
    assert "release" not in event and "environment" not in event
    assert "logentry" not in event  # the message is the exception's value: not repeated


def test_chain_is_oldest_first_and_main_exception_last() -> None:
    line, path = _raise_here()
    payload = make_payload(
        chain=[
            {"type": "builtins.KeyError", "value": "'direct'", "stack": [], "relation": "cause"},
            {
                "type": "mypkg.errors.DbError",
                "value": "oldest",
                "stack": [frame(path, line)],
                "relation": "context",
            },
        ]
    )
    values = build_event(payload)["exception"]["values"]
    assert [v["type"] for v in values] == ["DbError", "KeyError", "ValueError"]
    assert [v["value"] for v in values] == ["oldest", "'direct'", "on purpose"]
    assert values[0]["module"] == "mypkg.errors"
    assert "module" not in values[1] and "module" not in values[2]  # builtins
    assert values[0]["mechanism"] == {"type": "chained", "source": "__context__"}
    assert values[1]["mechanism"] == {"type": "chained", "source": "__cause__"}
    assert values[2]["mechanism"] == {"type": "errwire"}
    assert "stacktrace" not in values[1]  # no frames, no empty stacktrace
    assert values[0]["stacktrace"]["frames"][0]["lineno"] == line


def test_nested_exception_class_keeps_its_qualified_name() -> None:
    exc_type = f"{__name__}.{Outer.InnerError.__qualname__}"
    value = build_event(make_payload(exception={"type": exc_type, "value": "x", "stack": []}))
    main = value["exception"]["values"][-1]
    assert main["type"] == "Outer.InnerError"
    assert main["module"] == __name__


def test_frames_keep_order_fields_and_real_source_context() -> None:
    payload = make_payload()
    frames = build_event(payload)["exception"]["values"][-1]["stacktrace"]["frames"]
    stack = payload["exception"]["stack"]
    assert [f["function"] for f in frames] == ["outer", "_raise_here"]  # oldest → newest
    for got, sent in zip(frames, stack, strict=True):
        for key in ("filename", "abs_path", "function", "module", "lineno", "in_app"):
            assert got[key] == sent[key]
    newest = frames[-1]
    lines = linecache.getlines(__file__)
    index = newest["lineno"] - 1
    assert newest["context_line"] == lines[index].rstrip("\n")
    assert "raise ValueError" in newest["context_line"]
    assert newest["pre_context"] == [x.rstrip("\n") for x in lines[index - 5 : index]]
    assert newest["post_context"] == [x.rstrip("\n") for x in lines[index + 1 : index + 6]]


def test_context_lines_are_bounded_at_file_edges_and_in_width(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("\n".join([f"line {i}" for i in range(1, 4)] + ["x" * 5000]) + "\n")
    event = build_event(
        make_payload(
            exception={
                "type": "builtins.ValueError",
                "value": "v",
                "stack": [frame(str(source), 2), frame(str(source), 4)],
            }
        )
    )
    first, last = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert first["pre_context"] == ["line 1"]
    assert first["context_line"] == "line 2"
    assert first["post_context"] == ["line 3", "x" * 297 + "..."]
    assert len(last["context_line"]) == 300
    assert last["post_context"] == []


def test_unreadable_sources_give_frames_without_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "generated.py"
    big.write_text("a = 1\n" * 100)
    monkeypatch.setattr("errwire._sentry_event.MAX_SOURCE_BYTES", 100)
    stack = [
        frame(str(tmp_path / "missing.py"), 3),
        frame("<string>", 1),
        frame(str(big), 5),
        frame(__file__, 10**6),  # past the end of the file
        {"function": "no_path", "lineno": 3, "in_app": False},
    ]
    event = build_event(
        make_payload(exception={"type": "builtins.ValueError", "value": "v", "stack": stack})
    )
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert len(frames) == 5
    for got in frames:
        assert "context_line" not in got and "pre_context" not in got
    assert frames[4] == {"function": "no_path", "lineno": 3, "in_app": False}


def test_source_changed_on_disk_is_read_again(tmp_path: Path) -> None:
    source = tmp_path / "changing.py"
    source.write_text("old = 1\n")
    payload = make_payload(
        exception={"type": "builtins.ValueError", "value": "v", "stack": [frame(str(source), 1)]}
    )
    assert build_event(payload)["exception"]["values"][-1]["stacktrace"]["frames"][0][
        "context_line"
    ] == ("old = 1")
    source.write_text("new_value = 2  # longer, so the size differs\n")
    assert build_event(payload)["exception"]["values"][-1]["stacktrace"]["frames"][0][
        "context_line"
    ] == ("new_value = 2  # longer, so the size differs")


def test_tags_come_from_the_payload_bounded() -> None:
    event = build_event(
        make_payload(
            tags={
                "component": "db",
                "category": "database",
                "priority": None,
                "error_origin": "exception",
                "note": "two\nlines   here " + "y" * 500,
            }
        )
    )
    tags = event["tags"]
    assert tags["component"] == "db"
    assert tags["category"] == "database"
    assert tags["error_origin"] == "exception"
    assert "priority" not in tags
    assert tags["note"].startswith("two lines here y")
    assert len(tags["note"]) == 200


def test_tags_are_derived_when_the_payload_has_none() -> None:
    event = build_event(make_payload(tags=None, priority=None, origin="log"))
    assert event["tags"] == {"component": "db", "category": "database", "error_origin": "log"}


def test_request_has_method_and_path_without_query_and_nothing_else() -> None:
    request = {
        "method": "get",
        "route": "/items/<int:id>",
        "path": "/items/42?token=secret",
        "query": {"token": "[REDACTED]"},
        "headers": {"Cookie": "[REDACTED]"},
    }
    event = build_event(make_payload(request=request))
    assert event["request"] == {"method": "GET", "url": "/items/42"}
    assert event["transaction"] == "/items/<int:id>"
    assert event["contexts"]["errwire"]["route"] == "/items/<int:id>"
    assert "REDACTED" not in repr(event["request"]) and "secret" not in repr(event)


def test_request_with_only_a_route() -> None:
    event = build_event(make_payload(request={"method": "POST", "route": "/login"}))
    assert event["request"] == {"method": "POST", "url": "/login"}


def test_contexts_carry_user_context_counts_and_runtime() -> None:
    contexts = build_event(make_payload())["contexts"]
    assert contexts["errwire"] == {
        "table": "orders",
        "attempt": 2,
        "repeats": 3,
        "suppressed": 7,
        "runtime": {"pid": 4242, "runtime_id": "rt-1"},
    }
    assert contexts["runtime"]["name"] == sys.implementation.name.replace("cpython", "CPython")


def test_server_name_only_when_configured() -> None:
    assert "server_name" not in build_event(make_payload())
    assert build_event(make_payload(), server_name="web-1")["server_name"] == "web-1"
    assert build_event(make_payload(server_name="web-2"), server_name="web-1")["server_name"] == (
        "web-2"
    )


def test_release_and_environment_payload_wins_over_transport() -> None:
    event = build_event(make_payload(release="2.0"), release="1.0", environment="prod")
    assert event["release"] == "2.0"
    assert event["environment"] == "prod"


def test_message_event() -> None:
    event = build_event(
        make_payload(origin="message", level="info", message="cache warmed", exception=None)
    )
    assert event["logentry"] == {"formatted": "cache warmed"}
    assert "exception" not in event
    assert event["level"] == "info"


def test_log_event_with_exception_keeps_both_message_and_exception() -> None:
    event = build_event(make_payload(origin="log", message="charging card failed"))
    assert event["logentry"] == {"formatted": "charging card failed"}
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "logging"}


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("fatal", "fatal"),
        ("critical", "fatal"),
        ("WARNING", "warning"),
        ("debug", "debug"),
        ("odd", "error"),
    ],
)
def test_levels(given: str, sent: str) -> None:
    assert build_event(make_payload(level=given))["level"] == sent


# -- rate-limit headers -------------------------------------------------------------------


def test_retry_after_seconds_and_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 1.5 ") == 1.5
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("10000000") == 86_400.0
    for bad in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(bad) is None


def test_rate_limits_take_the_longest_pause_that_applies_to_errors() -> None:
    pause, per = parse_rate_limits(
        "60:transaction;span:organization, 10:error;default:project:usage, "
        "25:default:key, 300:attachment::"
    )
    assert pause == 25.0
    assert per == {
        "transaction": 60.0,
        "span": 60.0,
        "error": 10.0,
        "default": 25.0,
        "attachment": 300.0,
    }


def test_rate_limits_without_categories_apply_to_everything() -> None:
    assert parse_rate_limits("60::key, 86400:transaction;span:organization") == (
        60.0,
        {"*": 60.0, "transaction": 86400.0, "span": 86400.0},
    )


def test_rate_limits_not_about_errors_or_malformed() -> None:
    assert parse_rate_limits("86400:transaction;span:organization")[0] is None
    assert parse_rate_limits("garbage, :error, x:error:org, 5") == (None, {})
    assert parse_rate_limits(None) == (None, {})


# -- DSNs and the transport object ----------------------------------------------------------


def test_check_dsn() -> None:
    assert check_dsn("https://abc@o1.ingest.sentry.io/123") is None
    assert check_dsn("http://abc:secret@127.0.0.1:9000/sentry/7") is None
    for bad, words in (
        ("ftp://abc@host/1", "scheme"),
        ("https://host/1", "public key"),
        ("https://abc@host/project", "project"),
        ("https://abc@host:notaport/1", "port"),
        ("", "empty"),
        (42, "string"),
    ):
        reason = check_dsn(bad)
        assert reason is not None and words in reason.lower(), (bad, reason)


def test_transport_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="scheme"):
        SentryTransport("gopher://k@h/1")
    with pytest.raises(ValueError, match="timeout"):
        SentryTransport("https://k@h/1", timeout=0)


def test_transport_satisfies_the_protocol_and_never_creates_a_sentry_sdk_client() -> None:
    import sentry_sdk

    transport = SentryTransport("https://key@sentry.example.com/42", timeout=3)
    assert isinstance(transport, Transport)
    assert transport.name == "sentry" and transport.enforces_timeout is True
    assert transport.url == "https://sentry.example.com/api/42/envelope/"
    assert not sentry_sdk.get_client().is_active()
    transport.close()


def test_envelope_is_gzipped_and_parsable_independently() -> None:
    transport = SentryTransport("https://key@sentry.example.com/42", release="1.0")
    payload = make_payload(context={"ratio": float("nan"), "fine": 1})
    event_id, body = transport.encode(payload)
    headers, items = parse_envelope(gzip.decompress(body))
    assert event_id == payload["event_id"] == headers["event_id"]
    assert headers["sdk"]["name"] == "errwire.python"
    assert headers["sent_at"].endswith("Z")
    [(item_headers, event)] = items
    assert item_headers["type"] == "event"
    assert event["release"] == "1.0"
    assert event["contexts"]["errwire"]["ratio"] == "nan"  # NaN is not JSON
    assert event["contexts"]["errwire"]["fine"] == 1
    transport.close()


# -- outcomes, against the fault receiver ---------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[FaultReceiver]:
    with FaultReceiver(project=9, key="k3y") as running:
        yield running


@pytest.fixture
def transport(receiver: FaultReceiver) -> Iterator[SentryTransport]:
    made = SentryTransport(receiver.dsn, timeout=5.0, environment="test")
    yield made
    made.close()


def test_ok_sends_what_build_event_makes(
    receiver: FaultReceiver, transport: SentryTransport
) -> None:
    payload = make_payload()
    result = transport.send(payload, 5.0)
    assert result.outcome is Outcome.OK and result.ok
    assert result.remote_id == payload["event_id"]
    [request] = receiver.accepted
    assert request.path == "/api/9/envelope/"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/x-sentry-envelope"
    assert "sentry_key=k3y" in request.headers["X-Sentry-Auth"]
    assert "sentry_client=errwire/" in request.headers["X-Sentry-Auth"]
    assert request.headers["User-Agent"].startswith("errwire/")
    sent = dict(request.event or {})
    assert sent.pop("sdk")["name"] == "errwire.python"
    assert sent == build_event(payload, environment="test")


def test_ok_without_an_id_in_the_answer_reports_our_event_id(
    receiver: FaultReceiver, transport: SentryTransport
) -> None:
    receiver.status(202, body=b"accepted")
    payload = make_payload()
    result = transport.send(payload, 5.0)
    assert result.outcome is Outcome.OK
    assert result.remote_id == payload["event_id"]


def test_ok_with_a_rate_limit_for_errors_asks_for_a_pause(
    receiver: FaultReceiver, transport: SentryTransport
) -> None:
    receiver.status(200, {"X-Sentry-Rate-Limits": "42:error:project"})
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.OK
    assert result.retry_after == 42.0
    assert "error=42s" in result.detail


def test_ok_with_limits_on_other_categories_only_is_plain_ok(
    receiver: FaultReceiver, transport: SentryTransport
) -> None:
    receiver.status(200, {"X-Sentry-Rate-Limits": "86400:transaction;span:organization"})
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.OK and result.retry_after is None


@pytest.mark.parametrize(
    ("headers", "pause", "words"),
    [
        ({"Retry-After": "2"}, 2.0, "Retry-After"),
        ({"X-Sentry-Rate-Limits": "30:error;default:org, 100:transaction:org"}, 30.0, "error=30s"),
        ({"X-Sentry-Rate-Limits": "7::key", "Retry-After": "99"}, 7.0, "*=7s"),
        ({"X-Sentry-Rate-Limits": "100:transaction:org", "Retry-After": "3"}, 3.0, "Retry-After"),
        ({}, 60.0, "default"),
    ],
)
def test_429_is_rate_limited_with_the_servers_pause(
    receiver: FaultReceiver,
    transport: SentryTransport,
    headers: dict[str, str],
    pause: float,
    words: str,
) -> None:
    receiver.status(429, headers)
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.RATE_LIMITED
    assert result.retry_after == pause
    assert "429" in result.detail and words in result.detail


def test_429_with_an_http_date(receiver: FaultReceiver, transport: SentryTransport) -> None:
    receiver.status(429, {"Retry-After": email.utils.formatdate(time.time() + 120, usegmt=True)})
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.RATE_LIMITED
    assert result.retry_after is not None and 115 <= result.retry_after <= 120


@pytest.mark.parametrize("code", [500, 502, 503, 504, 408])
def test_server_errors_are_retryable(
    receiver: FaultReceiver, transport: SentryTransport, code: int
) -> None:
    receiver.status(code, {"Retry-After": "5"}, b"upstream unavailable")
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.RETRYABLE
    assert f"HTTP {code}" in result.detail and "upstream unavailable" in result.detail
    assert result.retry_after == 5.0


def test_client_errors_are_rejected_with_the_servers_reason(
    receiver: FaultReceiver, transport: SentryTransport
) -> None:
    receiver.status(403, {"X-Sentry-Error": "event submission rejected with_reason: ProjectId"})
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.REJECTED
    assert result.detail.startswith("HTTP 403 Forbidden")
    assert "with_reason: ProjectId" in result.detail

    receiver.status(400, body=b'{"detail": "invalid event envelope"}')
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.REJECTED
    assert result.detail.endswith(": invalid event envelope")

    receiver.status(413, body=b"<html>" + b"too large " * 1000 + b"</html>")
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.REJECTED
    assert "HTTP 413" in result.detail and len(result.detail) < 300


def test_redirects_are_rejected_not_followed(
    receiver: FaultReceiver, transport: SentryTransport
) -> None:
    receiver.status(301, {"Location": "https://elsewhere.example/api/9/envelope/"})
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.REJECTED
    assert "elsewhere.example" in result.detail
    assert len(receiver.requests) == 1


def test_connection_reset_is_retryable(receiver: FaultReceiver, transport: SentryTransport) -> None:
    receiver.reset()
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.RETRYABLE
    assert "reset" in result.detail or "closed" in result.detail


def test_no_time_left_means_no_request(receiver: FaultReceiver, transport: SentryTransport) -> None:
    for timeout in (0.0, -1.0):
        result = transport.send(make_payload(), timeout)
        assert result.outcome is Outcome.RETRYABLE and "no time left" in result.detail
    assert receiver.requests == []


def test_closed_transport_sends_nothing(
    receiver: FaultReceiver, transport: SentryTransport
) -> None:
    transport.close()
    transport.close()
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.RETRYABLE and result.detail == "transport closed"
    assert receiver.requests == []


def test_a_payload_that_cannot_be_built_is_rejected_not_raised(
    receiver: FaultReceiver,
    transport: SentryTransport,
    allow_internal_errors: list[tuple[str, BaseException]],
) -> None:
    broken = make_payload()
    del broken["event_id"]
    result = transport.send(broken, 5.0)
    assert result.outcome is Outcome.REJECTED
    assert "cannot build" in result.detail
    assert [where for where, _ in allow_internal_errors] == ["sentry.encode"]
    assert receiver.requests == []


def test_flapping_answers_are_each_classified(
    receiver: FaultReceiver, transport: SentryTransport
) -> None:
    receiver.flap([Status(500), Status(200), Status(429, {"Retry-After": "1"})])
    outcomes = [transport.send(make_payload(), 5.0).outcome for _ in range(6)]
    assert outcomes == [Outcome.RETRYABLE, Outcome.OK, Outcome.RATE_LIMITED] * 2
    assert receiver.counts == {"status:500": 2, "status:200": 2, "status:429": 2}


def test_an_unknown_status_is_retryable(
    receiver: FaultReceiver, transport: SentryTransport
) -> None:
    receiver.status(599)
    result = transport.send(make_payload(), 5.0)
    assert result.outcome is Outcome.RETRYABLE
    assert "HTTP 599" in result.detail


def _refused() -> Exception:
    conn = HTTPConnection("127.0.0.1", 9)
    exc = NewConnectionError(conn, "Failed to establish a new connection: [Errno 111] refused")
    exc.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return exc


def _unresolvable() -> Exception:
    reason = socket.gaierror(-2, "Name or service not known")
    exc = NameResolutionError("nowhere.invalid", HTTPConnection("nowhere.invalid", 80), reason)
    exc.__cause__ = reason  # as urllib3 raises it: ``from e``
    return exc


# Failures the local receiver cannot produce on demand (no DNS traffic from tests).
@pytest.mark.parametrize(
    ("make_error", "expected"),
    [
        (_unresolvable, "cannot resolve 127.0.0.1:9: Name or service not known"),
        (_refused, "connection refused by 127.0.0.1:9"),
        (
            lambda: ProtocolError("Connection aborted.", BrokenPipeError(32, "Broken pipe")),
            "connection closed by the server while sending (127.0.0.1:9)",
        ),
        (
            lambda: ProtocolError("Connection broken", http.client.IncompleteRead(b"ab", 10)),
            "malformed answer: IncompleteRead(2 bytes read, 10 more expected) (127.0.0.1:9)",
        ),
        (
            lambda: OSError(113, "No route to host"),
            "network error with 127.0.0.1:9: OSError(113, 'No route to host')",
        ),
    ],
)
def test_network_failures_are_retryable_and_described(
    monkeypatch: pytest.MonkeyPatch, make_error: Any, expected: str
) -> None:
    transport = SentryTransport("http://key@127.0.0.1:9/1")

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise make_error()

    monkeypatch.setattr(transport._pool, "urlopen", fail)
    result = transport.send(make_payload(), 2.0)
    assert result.outcome is Outcome.RETRYABLE
    assert result.detail == expected
    transport.close()


def test_an_unexpected_error_while_sending_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, allow_internal_errors: list[tuple[str, BaseException]]
) -> None:
    transport = SentryTransport("http://key@127.0.0.1:9/1")

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug in a library")

    monkeypatch.setattr(transport._pool, "urlopen", fail)
    result = transport.send(make_payload(), 2.0)
    assert result.outcome is Outcome.RETRYABLE
    assert "bug in a library" in result.detail
    assert [where for where, _ in allow_internal_errors] == ["sentry.send"]
    transport.close()
