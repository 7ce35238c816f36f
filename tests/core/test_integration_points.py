"""The logging handler, the testing helper, the builder when enabled, and the
rule that the core never imports a web framework."""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import errwire
from errwire import _api
from errwire.logging import CAPTURED_MARK, ErrwireHandler

from .conftest import MakeRuntime

CORE = Path(errwire.__file__).resolve().parent
FRAMEWORKS = {"django", "flask", "starlette", "fastapi", "werkzeug", "asgiref", "quart", "sanic"}


def test_core_imports_no_web_framework() -> None:
    sources = [p for p in CORE.rglob("*.py") if "integrations" not in p.parts]
    assert len(sources) > 20
    offenders = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FRAMEWORKS]
    assert offenders == []


@pytest.fixture
def logger_with_handler(
    make_runtime: MakeRuntime,
) -> Iterator[tuple[logging.Logger, list[Any], Any]]:
    runtime = make_runtime(storm_window_seconds=0)
    _api.install(runtime)
    log = logging.getLogger("shop.checkout")
    handler = ErrwireHandler(component="checkout")
    log.addHandler(handler)
    log.propagate = False
    yield log, runtime.transport.events, runtime  # type: ignore[attr-defined]
    log.removeHandler(handler)


def test_log_records_at_error_are_captured(
    logger_with_handler: tuple[logging.Logger, list[Any], Any],
) -> None:
    log, events, runtime = logger_with_handler
    log.warning("not captured: below ERROR")
    log.error("payment provider said %s", "no")
    try:
        raise TimeoutError("provider slow")
    except TimeoutError:
        log.exception("charge failed")
    log.critical("down")
    runtime.worker_lane.process_pending()
    got = [(e["origin"], e["level"], e["message"], e["component"]) for e in events]
    assert got == [
        ("message", "error", "payment provider said no", "checkout"),
        ("exception", "error", "provider slow", "checkout"),
        ("message", "fatal", "down", "checkout"),
    ]
    assert events[1]["category"] == "timeout"
    assert events[1]["context"]["log_message"] == "charge failed"


def test_errwire_own_records_are_never_captured(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime()
    _api.install(runtime)
    handler = ErrwireHandler()
    own = logging.getLogger("errwire")
    own.addHandler(handler)
    try:
        own.error("transport failed")
        logging.getLogger("errwire.delivery").error("also ours")
        skipped = logging.LogRecord(
            "app", logging.ERROR, __file__, 1, "already captured", None, None
        )
        skipped.errwire_skip = True
        handler.handle(skipped)
    finally:
        own.removeHandler(handler)
    assert runtime.counters()["captured"] == 0


def test_capture_events_for_users_tests(data_dir: str) -> None:
    assert _api.get_runtime() is None
    with errwire.testing.capture_events(data_dir=data_dir) as events:
        try:
            {"present": 1}["missing"]
        except KeyError as exc:
            errwire.capture_error(exc, component="cart")
    assert [e["exception"]["type"] for e in events] == ["builtins.KeyError"]
    assert _api.get_runtime() is None  # started for the block, stopped after


def test_capture_events_borrows_a_running_runtime_and_gives_it_back(
    make_runtime: MakeRuntime,
) -> None:
    runtime = make_runtime(autostart=True)
    _api.install(runtime)
    original = runtime.delivery.transport
    errwire.disable()
    with errwire.testing.capture_events() as events:
        assert errwire.is_enabled()
        errwire.capture_message("inside", level="error")
    assert [e["message"] for e in events] == ["inside"]
    assert runtime.delivery.transport is original
    assert not errwire.is_enabled()


def test_builder_reports_with_metadata_when_enabled(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime()
    _api.install(runtime)
    original = ValueError("bad row 12")
    err = (
        errwire.error(original)
        .component("db")
        .category("database")
        .priority("high")
        .context({"a": 1}, table="orders")
        .build()
    )
    assert isinstance(err, errwire.EnhancedError)
    assert err.__cause__ is original
    assert (err.component, err.category, err.priority) == ("db", "database", "high")
    assert err.context == {"a": 1, "table": "orders"}
    msg = errwire.error("plain message").level("warning").exception()
    assert msg is not None
    assert str(msg) == "plain message" and msg.original is None
    runtime.worker_lane.process_pending()
    (payload,) = runtime.transport.events  # type: ignore[attr-defined]
    assert payload["exception"]["type"] == "builtins.ValueError"
    assert (payload["component"], payload["category"], payload["priority"]) == (
        "db",
        "database",
        "high",
    )
    assert payload["context"] == {"a": 1, "table": "orders"}


def test_an_enhanced_error_raised_and_caught_carries_its_metadata_once(
    make_runtime: MakeRuntime,
) -> None:
    """What an integration does with an EnhancedError a view raised: capture_error(err)."""
    runtime = make_runtime(storm_window_seconds=0)
    _api.install(runtime)
    try:
        raise ValueError("card 4 declined")
    except ValueError as exc:
        built = errwire.error(exc).component("billing").category("payments").context(a=1)
        err = built.exception()
    assert err is not None
    try:
        raise err
    except errwire.EnhancedError as caught:
        assert errwire.capture_error(caught, context={"b": 2}, priority="high")
        assert not errwire.capture_error(caught)  # reported already: not twice
    reported = errwire.error(ValueError("x")).component("billing").build()
    assert reported is not None and reported.reported
    assert not errwire.capture_error(reported)  # build() reported it; raising it adds none
    runtime.worker_lane.process_pending()
    first, second = runtime.transport.events  # type: ignore[attr-defined]
    assert first["exception"]["type"] == "builtins.ValueError"  # the original
    assert (first["component"], first["category"], first["priority"]) == (
        "billing",
        "payments",
        "high",
    )
    assert first["context"] == {"a": 1, "b": 2}
    assert second["component"] == "billing"
    assert runtime.counters()["captured"] == 2


def test_never_raised_enhanced_errors_from_two_places_are_two_storm_sites(
    make_runtime: MakeRuntime,
) -> None:
    """Built from a message, an EnhancedError has no traceback: its site is where
    report() or build() was called, not a frame inside errwire."""
    runtime = make_runtime()  # the storm guard on (1 s window)
    _api.install(runtime)
    errwire.error("quota exceeded").component("billing").build()
    errwire.EnhancedError("disk full", component="files").report()
    runtime.worker_lane.process_pending()
    assert [e["message"] for e in runtime.transport.events] == [  # type: ignore[attr-defined]
        "quota exceeded",
        "disk full",
    ]
    assert runtime.storm.folded.value == 0


def test_enhanced_error_can_be_raised_and_reported() -> None:
    with pytest.raises(errwire.EnhancedError) as info:
        raise errwire.EnhancedError("quota exceeded", component="billing")
    assert info.value.report() is False  # telemetry is off: a no-op


def test_an_exception_an_integration_captured_is_not_captured_again_from_its_log_record(
    logger_with_handler: tuple[logging.Logger, list[Any], Any],
) -> None:
    log, events, runtime = logger_with_handler
    try:
        raise RuntimeError("captured by middleware")
    except RuntimeError as exc:
        setattr(exc, CAPTURED_MARK, True)  # what an integration does on capture
        log.exception("Internal Server Error")
    runtime.worker_lane.process_pending()
    assert events == []
