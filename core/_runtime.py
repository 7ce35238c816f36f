"""One process's telemetry runtime: the capture path, the bus, the worker, status.

The public functions in ``_api`` hold one ``Runtime`` and a module-level flag;
everything stateful lives here so that tests can build runtimes with injected
clocks and transports, and so that a forked child can start a fresh one.
"""

from __future__ import annotations

import itertools
import os
import socket
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._activity import OutcomeMap
from ._bus import EventBus, Lane
from ._clock import Clock, SystemClock
from ._config import Config
from ._context import RequestSnapshot, current_request, mark_chain_captured
from ._counter import Counter, CounterMap
from ._delivery import Delivery, DeliveryStats
from ._event import (
    CLASS_TOKENS,
    LEVELS,
    Event,
    RawEvent,
    class_token,
    safe_message,
    snapshot_chain,
)
from ._heartbeat import HeartbeatSink, HeartbeatWriter
from ._internal import internal_error, internal_error_count, warn_once
from ._outbox import Outbox
from ._payload import PayloadBuilder
from ._storm import StormGuard
from ._transport import MemoryTransport, Payload, Transport
from ._walk import SPEEDUPS
from ._walk import chained as _chained
from ._walk import frames as _frames
from ._walk import raise_site as _raise_site
from ._worker import Pipeline, Scrub

if TYPE_CHECKING:
    from ._privacy import Scrubber
    from ._redis import StreamForwarder

__all__ = ["Runtime", "accounted_for", "make_transport"]

WORKER_LANE = "worker"
_request_var = current_request
_class_tokens = CLASS_TOKENS.get


def make_transport(config: Config) -> Transport:
    """The transport a config asks for."""
    kind = config.resolved_transport
    if kind == "memory":
        return MemoryTransport()
    if kind == "sentry":
        from ._sentry import SentryTransport

        assert config.dsn is not None
        return SentryTransport(
            config.dsn,
            timeout=config.send_timeout_seconds,
            release=config.release,
            environment=config.environment,
            server_name=config.server_name,
        )
    from ._local import LocalTransport

    return LocalTransport(config.resolved_local_db_path)


def make_scrubber(config: Config) -> Scrubber:
    """The scrubber a config asks for (imported lazily: its rules take ~30 ms to compile)."""
    from ._privacy import Scrubber

    return Scrubber(
        extra_rules=config.scrub_rules,
        allow_keys=config.scrub_allow_keys,
        send_default_pii=config.send_default_pii,
        host_mode=config.scrub_host_mode,
        project_root=config.resolved_project_root,
        max_items=max(1, config.max_context_keys),
        max_string=max(32, config.max_message_length),
    )


def default_scrubber(config: Config) -> Scrub:
    return make_scrubber(config).scrub_payload


class Runtime:
    def __init__(
        self,
        config: Config,
        *,
        transport: Transport | None = None,
        clock: Clock | None = None,
        is_enabled: Callable[[], bool] | None = None,
        scrub: Scrub | None = None,
        rng: Any = None,
        autostart: bool = True,
        spool: bool = True,
    ) -> None:
        """``autostart=False`` keeps the worker thread from starting: tests then drive
        it deterministically with ``worker_lane.process_pending()``. ``spool=False``
        runs without an outbox (undeliverable events are counted as dropped)."""
        self.config = config
        self.clock = clock or SystemClock()
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.runtime_id = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.started_at = self.clock.time()
        self._owns_transport = transport is None
        self.transport = transport or make_transport(config)
        # A standalone runtime is always on; ``install`` ties the process's runtime
        # to the process-wide switch (enable()/disable()).
        self._is_enabled: Callable[[], bool] = is_enabled or _always

        self._rng = rng
        self._scrub_override = scrub
        self.scrubber: Scrubber | None = None
        if scrub is None:
            self.scrubber = make_scrubber(config)
            scrub = self.scrubber.scrub_payload
        self.scrub: Scrub = scrub

        # caller side
        # The real clocks are read directly: a bound method call per capture adds up.
        real = isinstance(self.clock, SystemClock)
        self._wall = time.time if real else self.clock.time
        self.storm = StormGuard(config.storm_window_seconds, self._wall)
        self.captured = Counter()
        self.capture_failed = Counter()
        self._count_capture = self.captured.bump
        self._storm_admit = self.storm.admit
        self._storm_sites = self.storm.sites
        self._storm_window = config.storm_window_seconds
        self._storm_folded = self.storm.folded.bump
        self._max_frames = config.max_frames
        self._max_message = config.max_message_length
        self._max_chain = config.max_chained_exceptions
        self._max_context = config.max_context_keys

        # worker side
        self.outbox = (
            Outbox(config.resolved_outbox_path, config.outbox_max_events, clock=self.clock)
            if spool
            else None
        )
        self.delivery = Delivery.from_config(
            config,
            self.transport,
            self.outbox,
            self.clock,
            owner=self.runtime_id,
            stats=DeliveryStats(results=OutcomeMap()),  # the activity ring reads the last outcome
        )
        self.breaker = self.delivery.breaker
        self.builder = PayloadBuilder(config, self.runtime_id, self.pid)
        self.builder.scrub_copies = _returns_copies(self.scrub)
        self.pipeline = Pipeline(
            config,
            self.builder,
            self.delivery,
            self.clock,
            is_enabled=self.is_enabled,
            scrub=self.scrub,
            on_idle=self._maintenance,
            rng=rng,
        )
        self._heartbeat: HeartbeatSink | None = None
        self._next_heartbeat = 0.0
        self.bus = EventBus(
            config.queue_size,
            config.error_reserve,
            config.drop_policy,
            config.slow_operation_ms / 1000.0,
            tick=min(1.0, config.heartbeat_interval_seconds),
            autostart=autostart,
        )
        # Redis mode changes what the worker thread does with events (forward them to
        # the stream), never the capture path.
        self.forwarder: StreamForwarder | None = None
        if config.redis_url is not None:
            from ._redis import forwarder_for

            self.forwarder = forwarder_for(self)
        self.worker_lane: Lane = self.bus.subscribe(WORKER_LANE, self.forwarder or self.pipeline)
        if self.forwarder is not None:
            self.forwarder.lane = self.worker_lane
        self.closed = False
        self.shutdown_spooled = Counter()
        self.dropped_at_shutdown = CounterMap()

    def is_enabled(self) -> bool:
        """Whether this runtime may deliver (the worker re-checks it for every event)."""
        return self._is_enabled()

    # ------------------------------------------------------------------ capture
    def capture_exception(
        self,
        exc: BaseException,
        component: str | None,
        category: str | None,
        level: str,
        context: Mapping[str, Any] | None,
        priority: str | None = None,
        origin: str = "exception",
    ) -> bool:
        """The caller-thread snapshot: a few microseconds, nothing kept alive.

        Deliberately written flat: every Python-level call here costs the caller
        ~0.1 µs. The raise site is found first, so a repeat the storm guard folds
        never pays for reading the whole traceback (see ``_walk``).
        """
        try:
            cls = type(exc)
            first = exc.__traceback__
            site = _raise_site(cls, first)
            if site is None:  # never raised: the call site of capture is the raise site
                site = (cls, *_call_site(sys._getframe(2)))
            # StormGuard.admit(site) for a site it knows, inline (a call less, ~0.1 µs,
            # on every capture); a new site goes through admit(), which records it.
            now = self._wall()  # the storm guard's clock and the event's timestamp
            entry = self._storm_sites.get(site)
            if entry is None:
                repeats = self._storm_admit(site)
            elif 0.0 <= now - entry[0] < self._storm_window:
                self._storm_folded()
                entry[1] += 1
                repeats = -1
            else:
                repeats = entry[1]
                entry[0] = now
                entry[1] = 0
            self._count_capture()
        except Exception as error:
            internal_error("capture", error)
            return False
        if repeats < 0:
            return True
        try:
            if level not in LEVELS:
                warn_once("bad-level", "errwire: unknown level %r, using 'error'", level)
                level = "error"
            chain = (
                snapshot_chain(exc, self._max_chain, self._max_message, self._max_frames)
                if _chained(exc)
                else ()
            )
            try:
                message = str(exc)
            except Exception:
                message = safe_message(exc, self._max_message)
            if type(message) is not str or len(message) > self._max_message:
                message = safe_message(exc, self._max_message)
            snapshot = _request_var()
            token = _class_tokens(cls)  # the class, by a token: see _event.class_token
            return self.bus.publish(
                (
                    origin,
                    level,
                    class_token(cls) if token is None else token,
                    message,
                    _frames(first, self._max_frames),
                    chain,
                    component,
                    category,
                    priority,
                    self._bounded_context(context) if context else None,
                    None if snapshot is None else self._request(snapshot),
                    now,
                    repeats,
                )
            )
        except Exception as error:
            self.capture_failed.bump()
            internal_error("capture", error)
            return False

    def capture_message(
        self,
        message: str,
        level: str,
        component: str | None,
        category: str | None,
        context: Mapping[str, Any] | None,
        priority: str | None = None,
        origin: str = "message",
    ) -> bool:
        try:
            text = (
                message
                if type(message) is str
                else safe_message(_AsText(message), self._max_message)
            )
            caller = sys._getframe(2)
            repeats = self._storm_admit((None, id(caller.f_code), caller.f_lasti, text[:200]))
            self._count_capture()
        except Exception as error:
            internal_error("capture", error)
            return False
        if repeats < 0:
            return True
        try:
            if level not in LEVELS:
                warn_once("bad-level", "errwire: unknown level %r, using 'info'", level)
                level = "info"
            if len(text) > self._max_message:
                text = (
                    text[: self._max_message]
                    + f"... [{len(text) - self._max_message} chars truncated]"
                )
            snapshot = _request_var()
            return self.bus.publish(
                (
                    origin,
                    level,
                    None,
                    text,
                    (),
                    (),
                    component,
                    category or "message",
                    priority,
                    self._bounded_context(context) if context else None,
                    None if snapshot is None else self._request(snapshot),
                    self._wall(),
                    repeats,
                )
            )
        except Exception as error:
            self.capture_failed.bump()
            internal_error("capture", error)
            return False

    def _bounded_context(self, context: object) -> tuple[tuple[Any, Any], ...]:
        """A bounded shallow copy, as ``(key, value)`` pairs: unlike a dict, a tuple of
        plain values is untracked by the garbage collector (see ``_event.class_token``);
        ``Event`` makes it a dict again on the worker."""
        if not isinstance(context, Mapping):
            return (("value", context),)
        if len(context) <= self._max_context:
            return tuple(context.items())
        return tuple(itertools.islice(context.items(), self._max_context))

    @staticmethod
    def _request(snapshot: RequestSnapshot) -> dict[str, Any] | None:
        try:
            mark_chain_captured(snapshot)
            return snapshot.extract()
        except Exception as error:
            internal_error("request snapshot", error)
            return None

    # --------------------------------------------------------------- lifecycle
    def flush(self, timeout: float) -> bool:
        return self.bus.flush(timeout)

    def shutdown(self, timeout: float) -> bool:
        """Deliver what is queued within ``timeout``; spool the rest. True if all was handled."""
        if self.closed:
            return True
        deadline = time.monotonic() + timeout
        lanes_done = all(lane.stop(deadline) for lane in self.bus.lanes)
        self.closed = True
        in_flight = self.delivery.stop_sending()
        leftover: list[Payload] = []
        if not lanes_done:
            if in_flight is not None:
                leftover.append(in_flight)
            for event in self.worker_lane.drain():
                payload = self._payload_for_spool(event)
                if payload is not None:
                    leftover.append(payload)
            (self.forwarder or self.delivery).spool(leftover)
            self.shutdown_spooled.add(len(leftover))
        if self.forwarder is not None:
            self.forwarder.close()  # spools what it still batches; before the final heartbeat
        if self.outbox is not None:
            self._write_heartbeat(final=True)
        self.delivery.close()
        if self._heartbeat is not None:
            self._heartbeat.close()
        if self.outbox is not None:
            self.outbox.close()
        return lanes_done

    def _payload_for_spool(self, raw: RawEvent) -> Payload | None:
        """Build and scrub an event that never reached the worker (shutdown deadline)."""
        try:
            event = Event(*raw)
            stack = self.builder.stack(event.frames)
            self.builder.classify(event, stack)
            return self.scrub(self.builder.build(event, stack, 0))
        except Exception as error:
            self.dropped_at_shutdown.bump("internal_error")
            internal_error("shutdown spool", error)
            return None

    def forked(self) -> Runtime:
        """A fresh runtime for a forked child: the parent's queue is not inherited."""
        transport = None if self._owns_transport else self.transport
        return Runtime(
            self.config,
            transport=transport,
            clock=self.clock,
            is_enabled=self._is_enabled,
            scrub=self._scrub_override,
            rng=self._rng,
        )

    # ------------------------------------------------------------ heartbeats
    def _maintenance(self) -> None:
        if self.outbox is None:
            return  # a runtime without an outbox (test events) leaves no heartbeat either
        if self.closed:
            return  # a send that outlived shutdown must not overwrite the final heartbeat
        now = self.clock.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_interval_seconds
            self._write_heartbeat(final=False)

    def _write_heartbeat(self, *, final: bool) -> None:
        try:
            if self._heartbeat is None:
                self._heartbeat = (
                    HeartbeatWriter(
                        self.config.resolved_outbox_path, self.runtime_id, clock=self.clock
                    )
                    if self.forwarder is None
                    else self.forwarder.heartbeat_writer(self.runtime_id, self.counters)
                )
            self._heartbeat.write(self.status(), final=final)
        except (sqlite3.OperationalError, OSError) as error:  # busy, locked, unwritable
            warn_once("heartbeat-busy", "errwire could not write its heartbeat: %s", error)
        except Exception as error:
            internal_error("heartbeat", error)

    # ------------------------------------------------------------------ status
    def counters(self) -> dict[str, Any]:
        d = self.delivery.stats
        p = self.pipeline.stats
        dropped: dict[str, int] = {}
        for source in (
            self.worker_lane.dropped.values(),
            d.dropped.values(),
            self.dropped_at_shutdown.values(),
        ):
            for reason, n in source.items():
                dropped[reason] = dropped.get(reason, 0) + n
        for reason, n in (
            ("disabled", p.disabled.value),
            ("internal_error", p.internal.value + self.capture_failed.value),
            ("outbox_full", d.outbox_evicted.value),
        ):
            if n:
                dropped[reason] = dropped.get(reason, 0) + n
        counters = {
            "captured": self.captured.value,
            "delivered": d.delivered.value + d.replay_delivered.value,
            "deduplicated": self.storm.folded.value + self.pipeline.dedup.suppressed.value,
            "rate_limited": p.rate_limited.value,
            "sampled_out": p.sampled_out.value,
            "dropped": dropped,
            "spooled": d.spooled,
            "rejected": d.rejected.value + d.replay_rejected.value,
            "failed": d.failed.value,
            "internal_errors": internal_error_count(),
        }
        if self.forwarder is not None:
            self.forwarder.add_counters(counters)  # adds "forwarded"
        return counters

    def status(self) -> dict[str, Any]:
        counters = self.counters()
        lane = self.worker_lane
        components = self.pipeline.components_snapshot()
        snapshot = {
            "enabled": self._is_enabled() and not self.closed,
            "runtime_id": self.runtime_id,
            "pid": self.pid,
            "host": self.host,
            "started_at": self.started_at,
            "speedups": SPEEDUPS,
            "worker_alive": bool(lane.thread and lane.thread.is_alive()),
            "queue": {
                "depth": lane.depth,
                "capacity": lane.capacity,
                "high_water": lane.high_water,
            },
            "counters": counters,
            "suppression": {
                "storm_folded": self.storm.folded.value,
                "dedup_suppressed": self.pipeline.dedup.suppressed.value,
                "pending_report": self.storm.pending() + self.pipeline.dedup.pending(),
                "unreported": self.storm.orphaned.value + self.pipeline.dedup.unreported.value,
            },
            "delivery": self.delivery.snapshot(),
            "outbox": {
                "path": self.config.resolved_outbox_path,
                "pending": self.delivery.outbox_pending,
                "replayed_foreign": self.delivery.stats.foreign_replayed.value,
                "evicted_foreign": self.delivery.stats.foreign_evicted.value,
                "rejected_foreign": self.delivery.stats.foreign_rejected.value,
            },
            "components": components,
            "redactions": self.scrubber.counts() if self.scrubber is not None else {},
            "consumers": self.bus.snapshot()["lanes"],
            "activity": self.pipeline.activity.snapshot(
                self.clock.time(),
                {name: c["seen"] for name, c in components.items()},
                counters["dropped"],
                self.delivery.outbox_pending,
            ),
            "timestamp": self.clock.time(),
        }
        if self.forwarder is not None:
            snapshot["bus"] = self.forwarder.snapshot()
        return snapshot


def _call_site(frame: Any) -> tuple[int, int]:
    """``(id(code), lasti)`` of the first frame at or above ``frame`` outside errwire
    (``EnhancedError.report()`` and ``build()`` reach capture through errwire's own
    frames: their caller is the site)."""
    while frame.f_back is not None and str(frame.f_globals.get("__name__")).startswith("errwire."):
        frame = frame.f_back
    return id(frame.f_code), frame.f_lasti


def accounted_for(counters: Mapping[str, Any]) -> int:
    """The right-hand side of the accounting identity: at any quiet moment,
    ``counters["captured"] == accounted_for(counters)`` (README, "Exact accounting").
    In Redis mode a web process also counts what it ``forwarded`` to the stream."""
    total: int = (
        counters.get("forwarded", 0)
        + counters["delivered"]
        + counters["deduplicated"]
        + counters["rate_limited"]
        + counters["sampled_out"]
        + sum(counters["dropped"].values())
        + counters["spooled"]
        + counters["rejected"]
    )
    return total


def _always() -> bool:
    return True


def _returns_copies(scrub: Scrub) -> bool:
    """Whether ``scrub`` is errwire's own ``Scrubber.scrub_payload``, whose output
    never shares a container with its input (so the builder may share its caches)."""
    module = sys.modules.get("errwire._privacy._scrubber")
    if module is None:
        return False
    return isinstance(getattr(scrub, "__self__", None), module.Scrubber) and (
        getattr(scrub, "__func__", None) is module.Scrubber.scrub_payload
    )


class _AsText:
    """Lets ``safe_message`` turn a non-str message into text without raising."""

    __slots__ = ("_value",)

    def __init__(self, value: object) -> None:
        self._value = value

    def __str__(self) -> str:
        return str(self._value)
