"""What the commands print and return, shared by every front end.

The ``errwire`` console script (argparse), ``flask errwire`` (click) and
Django's management commands parse their own arguments and settings into a
``Config``, call one of these functions and print the ``Output`` they get back;
the exit code travels with the text. The work itself is in ``_ops``.

It also holds ``join_runtime``: how a framework integration (Flask app, ASGI
middleware) starts the one process runtime or joins the one already running.

Exit codes: 0 fine; 1 unhealthy, failed or stopped early; 2 a usage problem
(bad option, unavailable mode).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from . import _api
from ._config import Config, make_config, redact_url
from ._ops import fleet_status, render_status, replay_outbox, run_worker, send_test_event
from ._runtime import Runtime
from ._transport import Transport

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Output",
    "flag_label",
    "join_runtime",
    "replay",
    "send_test",
    "status",
    "watch",
    "with_overrides",
    "worker",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass(frozen=True, slots=True)
class Output:
    """What a command prints, and the exit code it ends with.

    ``reason``, when the text is a report rather than the failure itself (an
    unhealthy status table), says in one line why the exit code is not 0: front
    ends that fail with an exception (Django's ``CommandError``) print the text
    and raise with the reason."""

    text: str
    exit_code: int = EXIT_OK
    reason: str = ""


# ----------------------------------------------------------------------------- options
_FLAGS = {"dsn": "--dsn", "outbox_path": "--outbox", "transport": "--dsn", "bus": "--redis"}


def flag_label(name: str) -> str:
    """How an option is named on the command line (for error messages)."""
    return _FLAGS.get(name) or "ERRWIRE_" + name.upper()


def with_overrides(
    config: Config,
    *,
    dsn: str | None = None,
    outbox: str | None = None,
    redis: str | None = None,
) -> Config:
    """``config`` with the command-line options over it: ``--dsn`` selects Sentry,
    ``--redis URL`` the Redis bus."""
    changes: dict[str, Any] = {}
    if dsn:
        changes.update(dsn=dsn, transport="sentry")
    if outbox:
        changes["outbox_path"] = outbox
    if redis:
        changes["bus"] = redis
    return make_config(changes, base=config, label=flag_label) if changes else config


# ----------------------------------------------------------------------------- status
def status(
    config: Config,
    *,
    outbox_path: str | None = None,
    redis_url: str | None = None,
    as_json: bool = False,
    stale_after: float = 30.0,
    failure_rate: float = 0.5,
    include_final: bool = False,
    now: float | None = None,
) -> Output:
    """Every live runtime's heartbeat and the totals; exit 1 when any is unhealthy.

    Read from Redis when ``redis_url`` is given, or when the configured bus is Redis
    (unless ``outbox_path`` asks for one host's outbox database)."""
    url = redis_url or (None if outbox_path else config.redis_url)
    if url is not None:
        return _fleet_status(
            url,
            as_json=as_json,
            stale_after=stale_after,
            failure_rate=failure_rate,
            include_final=include_final,
            now=now,
        )
    path = outbox_path or config.resolved_outbox_path
    report = fleet_status(
        path,
        stale_after=stale_after,
        failure_rate=failure_rate,
        include_final=include_final,
        now=now,
    )
    text = json.dumps(report.as_dict(), indent=2) if as_json else render_status(report)
    if report.healthy:
        return Output(text)
    problems = "; ".join(
        f"{r.beat.runtime_id}: {', '.join(r.problems)}" for r in report.runtimes if r.problems
    )
    return Output(text, EXIT_FAILED, f"errwire is unhealthy: {problems}")


def _fleet_status(url: str, *, as_json: bool, **options: Any) -> Output:
    try:
        make_config({"bus": url}, label=flag_label)
    except ValueError as exc:
        return Output(str(exc), EXIT_USAGE)
    from ._redis import read_fleet, redis_errors, render_fleet

    try:
        report = read_fleet(url, **options)
    except redis_errors() as exc:
        where = redact_url(url)
        return Output(f"cannot read the fleet status from Redis at {where}: {exc}", EXIT_FAILED)
    text = json.dumps(report.as_dict(), indent=2) if as_json else render_fleet(report)
    if report.healthy:
        return Output(text)
    problems = [f"{m.runtime_id}: {', '.join(m.problems)}" for m in report.members if m.problems]
    reason = "errwire is unhealthy: " + "; ".join(report.problems + problems)
    return Output(text, EXIT_FAILED, reason)


def watch(
    produce: Callable[[], Output],
    *,
    interval: float,
    write: Callable[[str], None],
    wait: Callable[[float], bool] | None = None,
) -> int:
    """Print ``produce()`` every ``interval`` seconds until ``wait`` returns True or
    Ctrl-C; returns the last exit code. ``wait`` is injectable for tests."""
    pause = wait or threading.Event().wait
    code = EXIT_OK
    try:
        while True:
            out = produce()
            code = out.exit_code
            write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n{out.text}")
            if pause(interval):
                return code
    except KeyboardInterrupt:
        return code


# ----------------------------------------------------------------------------- test event
def send_test(
    config: Config, *, timeout: float = 15.0, transport: Transport | None = None
) -> Output:
    """Send one test event and say what the destination answered."""
    result = send_test_event(config, timeout=timeout, transport=transport)
    where = _destination(config)
    note = (
        []
        if config.enabled
        else ["Note: telemetry is disabled in these settings; the test event is sent anyway."]
    )
    if result.ok:
        lines = [*note, f"Test event delivered to {where}.", f"  event id: {result.event_id}"]
        if result.remote_id and result.remote_id != result.event_id:
            lines.append(f"  id at the destination: {result.remote_id}")
        return Output("\n".join(lines))
    failed = f"Test event NOT delivered to {where}: {result.detail}"
    return Output("\n".join([*note, failed]), EXIT_FAILED)


def _destination(config: Config) -> str:
    kind = config.resolved_transport
    if kind == "sentry":
        return f"Sentry ({_redacted_dsn(config.dsn or '')})"
    if kind == "local":
        return f"the local sink ({config.resolved_local_db_path})"
    return f"the {kind} transport"


def _cannot_deliver(config: Config, exc: ImportError) -> str:
    return (
        f"cannot deliver to {_destination(config)}: {exc}. "
        "Sentry delivery needs the extra: pip install 'errwire[sentry]'"
    )


def _redacted_dsn(dsn: str) -> str:
    """The DSN without its key: host and project are enough to recognise it."""
    scheme, sep, rest = dsn.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else dsn


# ----------------------------------------------------------------------------- replay
def replay(
    config: Config,
    *,
    limit: int | None = None,
    dry_run: bool = False,
    progress_file: TextIO | None = None,
    transport: Transport | None = None,
) -> Output:
    """Send what waits in the outbox; a tqdm bar on ``progress_file`` if one is given."""
    path = config.resolved_outbox_path
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="event", desc="replaying", file=progress_file)
        bar.update(done - bar.n)

    try:
        result = replay_outbox(
            config,
            limit=limit,
            dry_run=dry_run,
            transport=transport,
            progress=progress if progress_file is not None else None,
        )
    except ImportError as exc:
        return Output(_cannot_deliver(config, exc), EXIT_USAGE)
    finally:
        if bar is not None:
            bar.close()
    if result.pending_before == 0:
        return Output(f"Nothing to replay: the outbox at {path} is empty.")
    if dry_run:
        lines = [
            f"{result.pending_before} event(s) wait in the outbox at {path}; nothing was sent.",
            f"Oldest {len(result.preview)}:",
        ]
        for e in result.preview:
            what = e["type"] or e["message"]
            lines.append(
                f"  {e['event_id']}  {e['level'] or '?':<7} {e['component'] or '-':<12}"
                f" attempts={e['attempts']}  {what}"
            )
        return Output("\n".join(lines))
    text = f"Replayed {result.sent} event(s) to {_destination(config)}; {result.remaining} remain."
    if result.stopped_because:
        return Output(f"{text}\nStopped early: {result.stopped_because}", EXIT_FAILED)
    return Output(text)


# ----------------------------------------------------------------------------- worker
def worker(
    config: Config,
    *,
    write: Callable[[str], None],
    stop: threading.Event | None = None,
    shutdown_timeout: float | None = None,
    transport: Transport | None = None,
    on_start: Callable[[Any], None] | None = None,
) -> int:
    """Run a delivery worker in the foreground until ``stop`` is set, Ctrl-C or SIGTERM.

    With the Redis bus it is a consumer of the stream (``on_start`` then gets the
    ``FleetWorker``); otherwise a runtime that replays the outbox."""
    stop = stop or threading.Event()
    deadline = config.shutdown_timeout_seconds if shutdown_timeout is None else shutdown_timeout

    def stopping(signal_name: str) -> None:
        write(f"{signal_name} received: delivering what is queued (at most {deadline:g} s).")

    if config.redis_url is not None:
        return _fleet_worker(
            config,
            write=write,
            stop=stop,
            shutdown_timeout=shutdown_timeout,
            transport=transport,
            on_start=on_start,
            announce=stopping,
        )
    restore = _stop_on_signals(stop, stopping)

    def started(runtime: Runtime) -> None:
        write(
            f"errwire worker {runtime.runtime_id} delivering to {_destination(config)};\n"
            f"replaying the outbox at {config.resolved_outbox_path} and writing heartbeats "
            f"every {config.heartbeat_interval_seconds:g} s. Stop with Ctrl-C (or SIGTERM)."
        )
        if on_start is not None:
            on_start(runtime)

    try:
        runtime = run_worker(
            config,
            stop=stop,
            shutdown_timeout=shutdown_timeout,
            transport=transport,
            on_start=started,
        )
    except ImportError as exc:
        write(_cannot_deliver(config, exc))
        return EXIT_USAGE
    finally:
        restore()
    snapshot = runtime.status()
    c = snapshot["counters"]
    write(
        f"errwire worker stopped: replayed from other processes="
        f"{snapshot['outbox']['replayed_foreign']} delivered={c['delivered']} "
        f"spooled={c['spooled']} rejected={c['rejected']} failed sends={c['failed']}"
    )
    return EXIT_OK


def _fleet_worker(
    config: Config,
    *,
    write: Callable[[str], None],
    stop: threading.Event,
    shutdown_timeout: float | None,
    transport: Transport | None,
    on_start: Callable[[Any], None] | None,
    announce: Callable[[str], None],
) -> int:
    from ._redis import FleetWorker, redis_errors, run_fleet_worker

    where = redact_url(config.redis_url or "")

    def started(fleet: FleetWorker) -> None:
        write(
            f"errwire worker {fleet.runtime_id} consuming {fleet.keys.stream} at {where} "
            f"(group {fleet.group}), delivering to {_destination(config)}.\n"
            f"Heartbeats every {config.heartbeat_interval_seconds:g} s; entries idle for "
            f"{config.bus_reclaim_seconds:g} s are reclaimed from dead workers. "
            "Stop with Ctrl-C (or SIGTERM)."
        )
        if on_start is not None:
            on_start(fleet)

    restore = _stop_on_signals(stop, announce)
    try:
        fleet = run_fleet_worker(
            config,
            stop=stop,
            shutdown_timeout=shutdown_timeout,
            transport=transport,
            on_start=started,
        )
    except ImportError as exc:
        write(_cannot_deliver(config, exc))
        return EXIT_USAGE
    except redis_errors() as exc:
        write(f"errwire worker cannot start: Redis at {where}: {exc}")
        return EXIT_FAILED
    finally:
        restore()
    c = fleet.counters()
    write(
        f"errwire worker stopped: received={c['received']} delivered={c['delivered']} "
        f"deduplicated={c['deduplicated']} rate_limited={c['rate_limited']} "
        f"spooled={c['spooled']} rejected={c['rejected']} reclaimed={c['reclaimed']} "
        f"failed sends={c['failed']}"
    )
    return EXIT_OK


def _stop_on_signals(stop: threading.Event, announce: Callable[[str], None]) -> Callable[[], None]:
    """SIGINT and SIGTERM set ``stop`` (main thread only); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop_now(signal_name: str) -> None:
        announce(signal_name)
        stop.set()

    def on_signal(signum: int, _frame: object) -> None:
        # Setting the event in the handler could deadlock if the signal interrupted
        # the main thread while it held the event's own lock: another thread sets it.
        name = signal.Signals(signum).name
        threading.Thread(target=stop_now, args=(name,), name="errwire-stop", daemon=True).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


# ----------------------------------------------------------------------------- integrations
_started_by: tuple[str, str] | None = None  # (runtime id, who started it)


def join_runtime(
    config: Config, explicit: Iterable[str], *, owner: str, label: Callable[[str], str]
) -> tuple[Runtime, bool]:
    """Start the process runtime with ``config``, or join the one already running;
    returns it and whether it was started here.

    There is one runtime per process, so options that shape it (transport, DSN,
    queue, safeguards, ...) cannot differ between two apps. ``explicit`` names
    the options the caller set itself; if the running runtime has a different
    value for one of them, this raises ``RuntimeError`` naming both sides.
    ``enabled`` is not compared: it is a switch, not a shape.
    """
    global _started_by
    with _api._lock:
        running = _api.get_runtime()
        if running is not None and not running.closed:
            conflicts = [
                name
                for name in explicit
                if name != "enabled" and getattr(running.config, name) != getattr(config, name)
            ]
            if conflicts:
                starter = "errwire.init()"
                if _started_by is not None and _started_by[0] == running.runtime_id:
                    starter = _started_by[1]
                details = "; ".join(
                    f"{owner} sets {label(n)}={_shown(getattr(config, n))}, "
                    f"the runtime has {_shown(getattr(running.config, n))}"
                    for n in conflicts
                )
                raise RuntimeError(
                    f"errwire is already running in this process (started by {starter}) with "
                    f"different runtime options: {details}. There is one runtime per process: "
                    "set these options the same way everywhere, or only where errwire starts "
                    "(errwire.shutdown() first to start over)."
                )
            return running, False
        runtime = _api.init(config=config, use_env=False)
        _started_by = (runtime.runtime_id, owner)
        return runtime, True


def _shown(value: object) -> str:
    """An option's value for an error message: URLs (bus, DSN) without a password."""
    if isinstance(value, str) and "://" in value:
        return repr(redact_url(value))
    return repr(value)
