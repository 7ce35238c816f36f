"""The leak harness: no planted secret leaves the process, the text around it does.

A corpus of fake but realistic secrets (``tests/support/planted_secrets.py``,
plus the request snapshots below) is planted into exception messages, the
arguments of chained causes, nested context (dicts, lists, tuples, sets,
dataclasses, objects through ``repr``), stack frame file paths, request
snapshots (path, query, headers, cookies, client, user) and log records. Each
sink runs the whole pipeline with the default scrubber once per module:

- ``memory``: the payloads a ``MemoryTransport`` received;
- ``local``: the local SQLite sink, read as raw database *file bytes* (-wal too);
- ``outbox``: a transport that always answers RETRYABLE, so every event spools;
  the outbox file bytes (-wal too, heartbeat rows included);
- ``sentry``: the exact gzipped envelopes ``SentryTransport`` posts to the fault
  receiver, decompressed.

Every file errwire leaves in its data directory is searched for every sink, as
it is before shutdown (WAL files present) and after. A needle counts as leaked
in its raw, JSON-escaped or URL-encoded form. A test per (sink, plant) says
which value leaked where; a test per sink checks the harmless text survived.
"""

from __future__ import annotations

import gzip
import json
import logging
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import errwire
from errwire._internal import set_internal_error_hook
from errwire._local import read_events
from errwire._outbox import Outbox
from errwire._sentry import SentryTransport
from errwire.logging import ErrwireHandler
from tests.support.fault_receiver import running_receiver
from tests.support.planted_secrets import PLANTS, Plant, encodings

# --------------------------------------------------------------------------- request plants


@dataclass(frozen=True)
class RequestPlant:
    id: str
    where: str  # which part of the snapshot carries it
    needles: tuple[str, ...]


def _request_snapshots() -> tuple[list[dict[str, Any]], list[RequestPlant], list[str]]:
    """Two raw request snapshots as a framework would see them, their plants, and the
    harmless parts that must survive."""
    import random

    rng = random.Random(0xC00C1E)

    def tok(n: int) -> str:
        return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))

    snaps: list[dict[str, Any]] = []
    plants: list[RequestPlant] = []
    for i in range(2):
        path_token = tok(32)
        query_token = tok(24)
        query_email = f"dana.whitfield{rng.randint(100, 999)}@example-mail.com"
        auth = tok(40)
        cookie_header = tok(28)
        api_key = tok(30)
        cookie_jar = tok(26)
        referer_session = tok(22)
        client = f"203.0.113.{rng.randint(100, 250)}"
        user = f"ellis.okafor{rng.randint(100, 999)}@corp-example.org"
        query: Any = f"token={query_token}&email={query_email}&page=2"
        if i == 1:
            query = {"token": query_token, "email": query_email, "page": "2"}
        snaps.append(
            {
                "method": "POST",
                "route": "/reset/<token>/confirm",
                "path": f"/reset/{path_token}/confirm",
                "query": query,
                "headers": {
                    "Authorization": f"Bearer {auth}",
                    "Cookie": f"sessionid={cookie_header}; theme=dark",
                    "X-Api-Key": api_key,
                    "User-Agent": "shop-client/1.0",
                    "Referer": f"https://shop.example.com/account?session={referer_session}",
                },
                "cookies": {"sessionid": cookie_jar, "theme": "dark"},
                "client": client,
                "user": user,
            }
        )
        for where, needle in (
            ("path segment", path_token),
            ("query value token", query_token),
            ("query value email", query_email),
            ("Authorization header", auth),
            ("Cookie header", cookie_header),
            ("X-Api-Key header", api_key),
            ("cookies", cookie_jar),
            ("Referer query value", referer_session),
            ("client address", client),
            ("user", user),
        ):
            plants.append(RequestPlant(f"request{i}-{where.replace(' ', '-')}", where, (needle,)))
    return snaps, plants, ["/reset/", "/confirm", "POST"]


REQUEST_SNAPSHOTS, REQUEST_PLANTS, REQUEST_KEEP = _request_snapshots()
ALL_NEEDLES: dict[str, tuple[str, ...]] = {p.id: p.needles for p in PLANTS} | {
    p.id: p.needles for p in REQUEST_PLANTS
}
assert len(ALL_NEEDLES) >= 100


class Snapshot:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def extract(self) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(self.raw))  # fresh per capture
        return copy


# --------------------------------------------------------------------------- carriers


class CheckoutError(Exception):
    pass


@dataclass
class Note:
    text: str
    attempt: int = 1


class Opaque:
    """An object whose repr carries the secret."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<Opaque {self.text}>"


CARRIERS = (
    "message",
    "cause-args",
    "context-dict",
    "context-list",
    "context-tuple",
    "context-set",
    "context-dataclass",
    "context-repr",
    "log-message",
    "log-exception",
    "capture-message",
)
PLANTED_IN: dict[str, str] = {}  # plant id -> carrier
for _i, _p in enumerate(PLANTS):
    PLANTED_IN[_p.id] = "frame-path" if _p.kind == "home-path" else CARRIERS[_i % len(CARRIERS)]
for _rp in REQUEST_PLANTS:
    PLANTED_IN[_rp.id] = f"request snapshot ({_rp.where})"

LOG = logging.getLogger("shop.payments")


def _raise_from_file(filename: str, message: str) -> BaseException:
    """An exception whose top frame lives in ``filename`` (a path under a home directory)."""
    code = compile("def fail(m):\n    raise RuntimeError(m)\n", filename, "exec")
    scope: dict[str, Any] = {}
    exec(code, scope)
    try:
        scope["fail"](message)
    except RuntimeError as exc:
        return exc
    raise AssertionError("unreachable")


def _plant(plant: Plant, carrier: str) -> None:
    text = plant.text
    if carrier == "message":
        try:
            raise CheckoutError(text)
        except CheckoutError as exc:
            errwire.capture_error(exc, component="payments")
    elif carrier == "cause-args":
        try:
            try:
                raise KeyError(text, {"detail": text}, (1, text))
            except KeyError as cause:
                raise CheckoutError("payment step failed") from cause
        except CheckoutError as exc:
            errwire.capture_error(exc)
    elif carrier.startswith("context-"):
        shapes: dict[str, dict[str, Any]] = {
            "context-dict": {"order": {"meta": {"note": text}}},
            "context-list": {"items": [1, "two", [text]]},
            "context-tuple": {"pair": ("first", (text, 2))},
            "context-set": {"tags": {text, "plain"}},
            "context-dataclass": {"record": Note(text)},
            "context-repr": {"handle": Opaque(text)},
        }
        nested = shapes[carrier]
        try:
            raise CheckoutError("order sync failed")
        except CheckoutError as exc:
            errwire.capture_error(exc, context=nested)
    elif carrier == "log-message":
        LOG.error("sync: %s", text)
    elif carrier == "log-exception":
        try:
            raise CheckoutError(text)
        except CheckoutError:
            LOG.exception("handler crashed: %s", text)
    elif carrier == "capture-message":
        errwire.capture_message(text, level="error", context={"detail": text})
    elif carrier == "frame-path":
        filename = next(w for w in plant.text.split() if plant.value in w)
        errwire.capture_error(_raise_from_file(filename, text))
    else:  # pragma: no cover
        raise AssertionError(carrier)


def _plant_everything() -> int:
    """Plant every value once; the number of events captured."""
    for plant in PLANTS:
        _plant(plant, PLANTED_IN[plant.id])
    for i, snap in enumerate(REQUEST_SNAPSHOTS):
        with errwire.request_scope(Snapshot(snap)):
            try:
                raise CheckoutError(f"password reset failed for request {i}")
            except CheckoutError as exc:
                errwire.capture_error(exc, component="web")
    return len(PLANTS) + len(REQUEST_SNAPSHOTS)


# --------------------------------------------------------------------------- sinks


class AlwaysRetryable:
    """A transport that never delivers: everything spools to the outbox."""

    name = "refusing"
    enforces_timeout = True

    def __init__(self) -> None:
        self.attempts = 0

    def send(self, payload: dict[str, Any], timeout: float) -> errwire.SendResult:
        self.attempts += 1
        return errwire.SendResult(errwire.Outcome.RETRYABLE, detail="scripted outage")

    def close(self) -> None:
        return None


class RecordingSentry(SentryTransport):
    """``SentryTransport`` keeping the exact bytes it posts."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn, timeout=5.0)
        self.bodies: list[bytes] = []

    def encode(self, payload: dict[str, Any]) -> tuple[str, bytes]:
        event_id, body = super().encode(payload)
        self.bodies.append(body)
        return event_id, body


@dataclass
class Delivered:
    sink: str
    leaving: list[tuple[str, bytes]] = field(default_factory=list)  # (where, bytes)
    readable: str = ""  # the delivered events, decoded, for the survival checks
    delivered_events: int = 0
    planted_events: int = 0
    internal_errors: list[tuple[str, BaseException]] = field(default_factory=list)
    seconds: float = 0.0


def _files(directory: Path, when: str) -> list[tuple[str, bytes]]:
    """Every file errwire left in ``directory`` (databases, -wal, -shm), as raw bytes."""
    return [
        (f"file {path.name} ({when})", path.read_bytes())
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    ]


OPTIONS: dict[str, Any] = {
    "dedup_window_seconds": 0,
    "storm_window_seconds": 0,
    "rate_limit_per_minute": 100_000,
    "breaker_failure_threshold": 1_000_000,
    "heartbeat_interval_seconds": 0.001,
}


def _run(sink: str, tmp: Path) -> Delivered:
    started = time.perf_counter()
    result = Delivered(sink)
    set_internal_error_hook(lambda where, exc: result.internal_errors.append((where, exc)))
    data_dir = tmp / "data"
    handler = ErrwireHandler()
    LOG.addHandler(handler)
    LOG.propagate = False
    try:
        with running_receiver() as receiver:
            transport: Any
            if sink == "memory":
                transport = errwire.MemoryTransport()
            elif sink == "outbox":
                transport = AlwaysRetryable()
            elif sink == "sentry":
                transport = RecordingSentry(receiver.dsn)
            else:
                transport = None  # the local SQLite sink, errwire's default
            runtime = errwire.init(data_dir=str(data_dir), transport=transport, **OPTIONS)
            result.planted_events = _plant_everything()
            errwire.flush(20.0)
            before_shutdown = _files(data_dir, "before shutdown")
            events: list[dict[str, Any]] = []
            if sink == "memory":
                events = list(transport.events)
            elif sink == "local":
                events = read_events(runtime.config.resolved_local_db_path, limit=10_000)
            elif sink == "sentry":
                assert receiver.wait_until(
                    lambda r: len(r.accepted) >= result.planted_events, timeout=20.0
                ), f"{len(receiver.accepted)} of {result.planted_events} envelopes arrived"
                events = receiver.events()
            errwire.shutdown(10.0)
            leaving = [*before_shutdown, *_files(data_dir, "after shutdown")]
            leaving.append((f"{sink} events as delivered", json.dumps(events).encode()))
            if sink == "outbox":
                outbox = Outbox(runtime.config.resolved_outbox_path, 100_000)
                try:
                    events = [e.payload for e in outbox.peek(10_000)]
                finally:
                    outbox.close()
                leaving.append(("outbox rows", json.dumps(events).encode()))
            heartbeats = errwire.read_heartbeats(
                runtime.config.resolved_outbox_path, now=time.time(), stale_after=1e9
            )
            assert heartbeats, "no heartbeat row was written"
            leaving.append(("heartbeat rows", repr(heartbeats).encode()))
            if sink == "sentry":
                bodies = [gzip.decompress(b) for b in transport.bodies]
                leaving.extend(("Sentry envelope bytes", b) for b in bodies)
                result.readable = b"\n".join(bodies).decode("utf-8")
            else:
                result.readable = json.dumps(events, ensure_ascii=False)
            result.leaving = leaving
            result.delivered_events = len(events)
    finally:
        errwire.shutdown(5.0)
        LOG.removeHandler(handler)
        LOG.propagate = True
        set_internal_error_hook(None)
    result.seconds = time.perf_counter() - started
    return result


SINKS = ("memory", "local", "outbox", "sentry")
_delivered: dict[str, Delivered] = {}


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Delivered]]:
    """Runs a sink's pipeline the first time a test asks for it (then reuses it)."""
    yield _delivered
    _delivered.clear()


def _sink(delivered: dict[str, Delivered], sink: str, tmp: pytest.TempPathFactory) -> Delivered:
    if sink not in delivered:
        delivered[sink] = _run(sink, tmp.mktemp(f"leaks-{sink}"))
    return delivered[sink]


# --------------------------------------------------------------------------- known leaks

# (sink or "*", plant id) -> the exact leak; each such case is a strict xfail.
KNOWN_LEAKS: dict[tuple[str, str], str] = {}


def _cases() -> Iterator[Any]:
    for sink in SINKS:
        marks: list[Any] = [pytest.mark.e2e] if sink == "sentry" else []
        for plant_id in ALL_NEEDLES:
            reason = KNOWN_LEAKS.get((sink, plant_id)) or KNOWN_LEAKS.get(("*", plant_id))
            case_marks = list(marks)
            if reason:
                case_marks.append(pytest.mark.xfail(strict=True, reason=reason))
            yield pytest.param(sink, plant_id, marks=case_marks, id=f"{sink}-{plant_id}")


def _sink_params() -> list[Any]:
    return [pytest.param(s, marks=[pytest.mark.e2e] if s == "sentry" else [], id=s) for s in SINKS]


# --------------------------------------------------------------------------- tests


def test_corpus_is_large_and_distinct() -> None:
    needles = [n for group in ALL_NEEDLES.values() for n in group]
    assert len(ALL_NEEDLES) >= 100
    assert len(set(needles)) == len(needles)
    # no needle hides inside another plant's needle: a hit is attributable
    for a in set(needles):
        for b in set(needles):
            if a != b and a in b:
                owner_a = next(k for k, v in ALL_NEEDLES.items() if a in v)
                owner_b = next(k for k, v in ALL_NEEDLES.items() if b in v)
                assert owner_a == owner_b, f"{a!r} ({owner_a}) is inside {b!r} ({owner_b})"


@pytest.mark.parametrize(("sink", "plant_id"), list(_cases()))
def test_no_planted_value_leaves(
    sink: str,
    plant_id: str,
    delivered: dict[str, Delivered],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    out = _sink(delivered, sink, tmp_path_factory)
    leaks: dict[str, str] = {}  # where -> first leaked form with its surroundings
    for needle in ALL_NEEDLES[plant_id]:
        for form in encodings(needle):
            for where, data in out.leaving:
                at = data.find(form)
                if at >= 0 and where not in leaks:
                    leaks[where] = f"{form!r} in ...{data[max(0, at - 60) : at + len(form) + 30]!r}"
    if leaks:
        pytest.fail(
            f"{plant_id} planted in {PLANTED_IN[plant_id]} leaked ({sink} run):\n"
            + "\n".join(f"  {where}: {what}" for where, what in leaks.items())
        )


@pytest.mark.parametrize("sink", _sink_params())
def test_every_event_arrives_and_the_harmless_text_survives(
    sink: str, delivered: dict[str, Delivered], tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = _sink(delivered, sink, tmp_path_factory)
    assert not out.internal_errors, out.internal_errors[:3]
    assert out.delivered_events == out.planted_events
    missing = [
        (plant.id, PLANTED_IN[plant.id], phrase)
        for plant in PLANTS
        for phrase in plant.keep
        if phrase not in out.readable
    ]
    missing += [("request", "request snapshot", p) for p in REQUEST_KEEP if p not in out.readable]
    assert not missing, f"{len(missing)} harmless phrases lost, e.g. {missing[:5]}"
    for kept in ("CheckoutError", "payment step failed", "sync: "):
        assert kept in out.readable, kept
    if sink != "sentry":  # Sentry's request interface carries no headers at all
        assert "shop-client/1.0" in out.readable
