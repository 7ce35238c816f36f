"""The in-process event bus: bounded, never blocks, never raises, counts everything.

Each consumer gets its own *lane*: a bounded inbox and a daemon thread. A
consumer that raises or is slow only hurts its own lane; the others keep
receiving. ``publish`` is a few C-level queue operations per lane and takes no
lock, so request threads never wait on the worker.

Capacity is shared out so warnings cannot push errors out: levels below
``error`` may only fill ``capacity - reserve``; the reserve is for errors.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ._counter import Counter, CounterMap
from ._event import Event, RawEvent
from ._internal import internal_error, warn_once

__all__ = ["Consumer", "EventBus", "Lane"]

_ERROR_LEVELS = frozenset({"error", "fatal"})
_STOP = object()


class Consumer(Protocol):
    def consume(self, event: Event) -> None: ...

    def idle(self) -> None:
        """Called when no event arrived for a tick (heartbeats, outbox replay)."""
        ...


class Lane:
    """One consumer's bounded inbox and the thread that feeds it."""

    def __init__(
        self,
        name: str,
        consumer: Consumer,
        capacity: int,
        error_reserve: float,
        drop_oldest: bool,
        slow_seconds: float,
        tick: float,
        autostart: bool = True,
    ) -> None:
        self.name = name
        self.thread: threading.Thread | None = None
        self.autostart = autostart
        self.consumer = consumer
        self.capacity = capacity
        self.soft_limit = max(1, capacity - int(capacity * error_reserve))
        self.drop_oldest = drop_oldest
        self.slow_seconds = slow_seconds
        self.tick = tick
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.offered = Counter()
        # offer() runs on every capture: its calls are bound once here.
        self._offered = self.offered.bump
        self._qsize = self.queue.qsize
        self._put = self.queue.put
        self.done = Counter()
        self.dropped = CounterMap()
        self.errors = Counter()
        self.slow = Counter()
        self.high_water = 0
        self.busy_since: float | None = None
        self._start_lock = threading.Lock()
        self._progress = threading.Condition()
        self._waiters = 0
        self._stopping = False

    @property
    def autostart(self) -> bool:
        """Whether the first offer starts the lane's thread (tests turn it off)."""
        return self._autostart

    @autostart.setter
    def autostart(self, value: bool) -> None:
        self._autostart = value
        # What offer() checks: one attribute, true until the thread runs.
        self._start_on_offer = value and self.thread is None

    # -- producer side (any thread) ------------------------------------------
    def offer(self, event: RawEvent) -> bool:
        """Queue ``event`` or count why not. Never blocks, never raises."""
        self._offered()
        try:
            depth = self._qsize()
            if depth >= self.soft_limit and not self._make_room(event, depth):
                return False
            self._put(event)
        except Exception as exc:  # pragma: no cover - defensive: nothing here raises today
            self.dropped.bump("internal_error")
            self.done.bump()
            internal_error(f"lane {self.name}: offer", exc)
            return False
        if depth >= self.high_water:
            self.high_water = depth + 1
        if self._start_on_offer:
            self.start()
        return True

    def _make_room(self, event: RawEvent, depth: int) -> bool:
        """At the soft limit: whether ``event`` may still be queued (counting the drop
        when not, or evicting the oldest event under ``drop_oldest``)."""
        if event[1] not in _ERROR_LEVELS:
            self.dropped.bump("reserved_for_errors")
            self.done.bump()
            return False
        if depth >= self.capacity:
            if not self.drop_oldest:
                self.dropped.bump("queue_full")
                self.done.bump()
                return False
            try:
                self.queue.get_nowait()
            except queue.Empty:
                pass
            else:
                self.dropped.bump("evicted_oldest")
                self.done.bump()
        return True

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Start the lane's thread (once). Never raises: a thread that cannot start
        (the process is out of threads) is logged and tried again on the next offer;
        what is queued waits for it."""
        with self._start_lock:
            if self.thread is None and not self._stopping:
                thread = threading.Thread(
                    target=self._run, name=f"errwire-{self.name}", daemon=True
                )
                try:
                    thread.start()
                except Exception as exc:
                    internal_error(f"lane {self.name}: start", exc)
                    return
                self.thread = thread
            self._start_on_offer = False

    def stop(self, deadline: float) -> bool:
        """Ask the lane to finish what it holds and stop; True if it did by ``deadline``."""
        self._stopping = True
        self.queue.put(_STOP)
        thread = self.thread
        if thread is None:
            return True
        thread.join(max(0.0, deadline - time.monotonic()))
        return not thread.is_alive()

    def drain(self) -> list[RawEvent]:
        """Take every event still queued (used at a shutdown deadline).

        A stop request stays queued: a thread still busy with an earlier event
        (a send stuck past the deadline) then stops when that call returns."""
        taken: list[RawEvent] = []
        stop_requested = False
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop_requested = True
            else:
                taken.append(item)  # type: ignore[arg-type]
                self.done.bump()
        if stop_requested:
            self.queue.put(_STOP)
        return taken

    def process_pending(self) -> int:
        """Handle every queued event on the calling thread (deterministic tests, no worker)."""
        handled = 0
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return handled
            if item is _STOP:
                continue
            self._call(self.consumer.consume, Event(*item))  # type: ignore[misc]
            self.done.bump()
            handled += 1

    def run_idle(self) -> None:
        """One idle tick on the calling thread (what the worker does when the queue is quiet)."""
        self._call(self.consumer.idle, None)

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything offered so far has been handled (flush)."""
        target = self.offered.value
        deadline = time.monotonic() + timeout
        with self._progress:
            self._waiters += 1
            try:
                while self.done.value < target:
                    if self.thread is None and self.depth and self.autostart:
                        self.start()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._progress.wait(min(remaining, 0.05))
                return True
            finally:
                self._waiters -= 1

    # -- consumer side (the lane thread) ---------------------------------------
    def _run(self) -> None:
        get = self.queue.get
        consumer = self.consumer
        consume, done, monotonic = consumer.consume, self.done.bump, time.monotonic
        while True:
            try:
                item = get(timeout=self.tick)
            except queue.Empty:
                self._call(consumer.idle, None)
                continue
            if item is _STOP:
                self._call(consumer.idle, None)
                return
            # What _call(consume, Event(*item)) does, inline: this runs for every event.
            start = self.busy_since = monotonic()
            try:
                consume(Event(*item))  # type: ignore[misc]
            except Exception as exc:
                self._failed(exc)
            self.busy_since = None
            elapsed = monotonic() - start
            if elapsed > self.slow_seconds:
                self._slow(elapsed)
            done()
            if self._waiters and not self._qsize():
                # Wake flush() only when the queue is empty: then everything offered
                # before it was called is handled (drops count as handled when made).
                # Waking it per event would hand the GIL back and forth for nothing.
                with self._progress:
                    self._progress.notify_all()

    def _call(self, fn: Callable[..., None], event: Event | None) -> None:
        start = time.monotonic()
        self.busy_since = start
        try:
            if event is None:
                fn()
            else:
                fn(event)
        except Exception as exc:
            self._failed(exc)
        finally:
            self.busy_since = None
        elapsed = time.monotonic() - start
        if event is not None and elapsed > self.slow_seconds:
            self._slow(elapsed)

    def _failed(self, exc: Exception) -> None:
        self.errors.bump()
        internal_error(f"consumer {self.name}", exc)

    def _slow(self, elapsed: float) -> None:
        self.slow.bump()
        warn_once(
            f"slow-consumer-{self.name}",
            "errwire consumer %s took %.0f ms for one event (slow_operation_ms is %.0f)",
            self.name,
            elapsed * 1000,
            self.slow_seconds * 1000,
        )

    def snapshot(self) -> dict[str, object]:
        return {
            "depth": self.depth,
            "capacity": self.capacity,
            "high_water": self.high_water,
            "offered": self.offered.value,
            "handled": self.done.value,
            "dropped": self.dropped.values(),
            "errors": self.errors.value,
            "slow": self.slow.value,
            "alive": bool(self.thread and self.thread.is_alive()),
        }


class EventBus:
    """Named lanes; ``publish`` offers an event to every lane."""

    def __init__(
        self,
        capacity: int,
        error_reserve: float = 0.1,
        drop_policy: str = "drop_newest",
        slow_seconds: float = 0.1,
        tick: float = 1.0,
        autostart: bool = True,
    ) -> None:
        self.autostart = autostart
        self.capacity = capacity
        self.error_reserve = error_reserve
        self.drop_oldest = drop_policy == "drop_oldest"
        self.slow_seconds = slow_seconds
        self.tick = tick
        self._counted = Counter()  # publishes made through _publish_each
        self._published = self._counted.bump
        self._direct: Lane | None = None  # the only lane, published to directly
        # published == _counted + _offset + the direct lane's offered count: a lane adds
        # its count when it stops being direct, subtracts it when it starts
        self._offset = 0
        self._lanes: tuple[Lane, ...] = ()
        self._offers: tuple[Callable[[RawEvent], bool], ...] = ()  # the lanes' offer, bound
        self._lock = threading.Lock()
        self.pid = os.getpid()
        self.publish: Callable[[RawEvent], bool] = self._publish_each
        """Offer an event to every consumer. Never blocks, never raises (when the bus
        has one consumer, its lane's ``offer``: a call less on every capture)."""

    def subscribe(
        self,
        name: str,
        consumer: Consumer,
        *,
        capacity: int | None = None,
        tick: float | None = None,
    ) -> Lane:
        with self._lock:
            if any(lane.name == name for lane in self._lanes):
                raise ValueError(f"errwire bus already has a consumer named {name!r}")
            lane = Lane(
                name,
                consumer,
                capacity or self.capacity,
                self.error_reserve,
                self.drop_oldest,
                self.slow_seconds,
                tick or self.tick,
                self.autostart,
            )
            self._set_lanes((*self._lanes, lane))
            return lane

    def unsubscribe(self, name: str, timeout: float = 1.0) -> bool:
        with self._lock:
            lane = self.lane(name)
            if lane is None:
                return False
            self._set_lanes(tuple(x for x in self._lanes if x is not lane))
        lane.stop(time.monotonic() + timeout)
        return True

    def _set_lanes(self, lanes: tuple[Lane, ...]) -> None:
        """Install ``lanes`` and the cheapest ``publish`` for them (call with the lock held)."""
        if self._direct is not None:
            self._offset += self._direct.offered.value
            self._direct = None
        self._lanes = lanes
        self._offers = tuple(x.offer for x in lanes)
        if len(lanes) == 1:
            # Lane.offer never raises for a raw event, and counts what it is offered.
            self._direct = lanes[0]
            self._offset -= lanes[0].offered.value
            self.publish = lanes[0].offer
        else:
            self.publish = self._publish_each

    def lane(self, name: str) -> Lane | None:
        return next((lane for lane in self._lanes if lane.name == name), None)

    @property
    def lanes(self) -> tuple[Lane, ...]:
        return self._lanes

    @property
    def published(self) -> int:
        """How many events were published (to however many consumers)."""
        direct = self._direct
        total = self._counted.value + self._offset
        return total if direct is None else total + direct.offered.value

    def _publish_each(self, event: RawEvent) -> bool:
        try:
            self._published()
            ok = True
            for offer in self._offers:
                if not offer(event):
                    ok = False
            return ok
        except Exception as exc:  # pragma: no cover - defensive: publish must never raise
            internal_error("bus.publish", exc)
            return False

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(lane.wait_idle(max(0.0, deadline - time.monotonic())) for lane in self._lanes)

    def snapshot(self) -> dict[str, object]:
        return {
            "published": self.published,
            "lanes": {lane.name: lane.snapshot() for lane in self._lanes},
        }
