"""Fleet heartbeats and totals in Redis, and the fleet report ``status`` prints.

Every runtime (web process or worker) writes its status snapshot to its own key
with a TTL, and its id into a sorted set scored by the time of that write; a
process that stops writing turns ``stale`` and its key later expires.

Totals outlive processes: one hash of cumulative counters for the whole fleet.
Counts that matter for exactness are added atomically where they happen (the
append script counts ``forwarded`` and ``trimmed``; the ack script counts each
worker outcome, ``duplicates`` and ``trim_recovered``); the rest (what web
processes captured, folded, dropped or spooled; what workers replayed from their
outbox) is added as deltas with each heartbeat, in the same transaction as the
heartbeat itself. The fleet-wide identity, at a quiet moment, is

    captured == delivered + deduplicated + rate_limited + sampled_out
                + dropped (by reason) + spooled + rejected + in_stream

where ``in_stream`` is what the stream still holds (unread or being delivered)
and ``dropped["stream_trimmed"]`` = entries the ``MAXLEN ~`` trim removed before
a worker acknowledged them. A process killed with SIGKILL loses the deltas of
its last heartbeat interval (its queue is lost with it anyway).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._clock import Clock, SystemClock
from .._internal import warn_once
from .._ops import COUNTER_KEYS
from .._runtime import accounted_for
from ._keys import GROUP, Keys, redis_errors

__all__ = [
    "COUNTER_KEYS",
    "FleetHeartbeat",
    "FleetMember",
    "FleetReport",
    "flatten",
    "fleet_report",
    "render_fleet",
    "totals_from_hash",
]

_STREAM_KEYS = ("forwarded", "trimmed", "trim_recovered", "duplicates", "reclaimed")


def flatten(counters: Mapping[str, Any]) -> dict[str, int]:
    """A counters dict as flat integer fields (``dropped`` becomes ``dropped:<reason>``)."""
    flat: dict[str, int] = {}
    for key, value in counters.items():
        if key == "dropped" and isinstance(value, Mapping):
            for reason, n in value.items():
                flat[f"dropped:{reason}"] = int(n)
        elif isinstance(value, int) and not isinstance(value, bool):
            flat[key] = value
    return flat


class FleetHeartbeat:
    """Writes one runtime's heartbeat and its totals deltas (``write``/``close``, like
    the SQLite heartbeat writer). Never raises for Redis trouble: it warns and tries
    again at the next beat, with the deltas still owed."""

    def __init__(
        self,
        connect: Callable[[], Any],
        keys: Keys,
        runtime_id: str,
        *,
        role: str,
        clock: Clock | None = None,
        totals: Callable[[], Mapping[str, int]] | None = None,
        ttl: float = 120.0,
        skip: Callable[[], bool] | None = None,
    ) -> None:
        self._connect = connect
        self._client: Any = None
        self.keys = keys
        self.runtime_id = runtime_id
        self.role = role
        self._clock: Clock = clock or SystemClock()
        self._totals = totals
        self.ttl_ms = int(ttl * 1000)
        self._skip = skip
        self._pushed: dict[str, int] = {}
        self.started_at = self._clock.time()
        self.host = socket.gethostname()
        self.writes = 0
        self._errors = redis_errors()

    def write(self, snapshot: Mapping[str, Any], *, final: bool = False) -> bool:
        if self._skip is not None and self._skip() and not final:
            return False  # the forwarder is backing off: Redis is down
        now = self._clock.time()
        current = dict(self._totals()) if self._totals is not None else {}
        deltas = {k: v - self._pushed.get(k, 0) for k, v in current.items()}
        record = {
            "runtime_id": self.runtime_id,
            "role": self.role,
            "pid": os.getpid(),
            "host": self.host,
            "started_at": self.started_at,
            "updated_at": now,
            "final": final,
            "snapshot": dict(snapshot),
        }
        try:
            if self._client is None:
                self._client = self._connect()
            pipe = self._client.pipeline(transaction=True)
            for name, delta in deltas.items():
                if delta:
                    pipe.hincrby(self.keys.totals, name, delta)
            pipe.set(
                self.keys.heartbeat(self.runtime_id),
                json.dumps(record, separators=(",", ":"), default=repr),
                px=self.ttl_ms,
            )
            pipe.zadd(self.keys.runtimes, {self.runtime_id: now})
            pipe.execute()
        except self._errors as exc:
            warn_once("fleet-heartbeat", "errwire could not write its heartbeat to Redis: %s", exc)
            return False
        self._pushed = current
        self.writes += 1
        return True

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(*self._errors):
                client.close()


# ----------------------------------------------------------------------------- reading
@dataclass
class FleetMember:
    runtime_id: str
    role: str
    pid: int
    host: str
    age: float
    stale: bool
    final: bool
    snapshot: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        snap = self.snapshot
        out: dict[str, Any] = {
            "runtime_id": self.runtime_id,
            "role": self.role,
            "pid": self.pid,
            "host": self.host,
            "age_seconds": round(self.age, 1),
            "stale": self.stale,
            "final": self.final,
            "healthy": not self.problems,
            "problems": self.problems,
            "counters": snap.get("counters", {}),
            "breaker": snap.get("delivery", {}).get("breaker", {}),
        }
        if self.role == "worker":
            out["rate_per_second"] = snap.get("rate_per_second", 0.0)
            out["holding"] = snap.get("holding", 0)
        else:
            out["queue"] = snap.get("queue", {})
            out["bus"] = snap.get("bus", {})
        return out


@dataclass
class FleetReport:
    url: str
    members: list[FleetMember]
    stream: dict[str, Any]
    totals: dict[str, Any]
    generated_at: float
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems and all(not m.problems for m in self.members if not m.final)

    @property
    def identity(self) -> dict[str, Any]:
        captured = int(self.totals["captured"])
        accounted = accounted_for(self.totals)
        in_stream = int(self.stream.get("length", 0))
        return {
            "captured": captured,
            "accounted_for": accounted,
            "in_stream": in_stream,
            "holds": captured == accounted + in_stream,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "bus": self.url,
            "generated_at": self.generated_at,
            "healthy": self.healthy,
            "problems": self.problems,
            "stream": self.stream,
            "totals": self.totals,
            "identity": self.identity,
            "runtimes": [m.as_dict() for m in self.members],
        }


def totals_from_hash(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The fleet totals in the shape of a runtime's counters, plus the stream's own."""
    values = {k: int(v) for k, v in raw.items()}
    totals: dict[str, Any] = {k: values.get(k, 0) for k in COUNTER_KEYS}
    dropped = {k[8:]: n for k, n in values.items() if k.startswith("dropped:") and n}
    lost = values.get("trimmed", 0) - values.get("trim_recovered", 0)
    if lost:
        dropped["stream_trimmed"] = lost
    totals["dropped"] = dict(sorted(dropped.items()))
    totals["stream"] = {key: values.get(key, 0) for key in _STREAM_KEYS}
    return totals


def _member_problems(member: FleetMember, failure_rate: float) -> list[str]:
    if member.final:
        return []
    problems = []
    if member.stale:
        problems.append(f"stale heartbeat ({member.age:.0f} s old)")
    snap = member.snapshot
    if snap.get("delivery", {}).get("breaker", {}).get("state") == "open":
        problems.append("circuit breaker open")
    counters = snap.get("counters", {})
    failed, delivered = counters.get("failed", 0), counters.get("delivered", 0)
    if failed and failed / (failed + delivered) > failure_rate:
        problems.append(f"failure rate {failed / (failed + delivered):.0%}")
    bus = snap.get("bus", {})
    if bus.get("last_error"):
        problems.append(f"cannot reach Redis: {bus['last_error']}")
    return problems


def _stream_info(client: Any, keys: Keys, group: str, now: float) -> dict[str, Any]:
    info: dict[str, Any] = {
        "key": keys.stream,
        "length": int(client.xlen(keys.stream)),
        "group": group,
        "lag": None,
        "pending": 0,
        "consumers": [],
    }
    try:
        groups = client.xinfo_groups(keys.stream)
    except redis_errors():
        return info  # no stream yet
    for g in groups:
        if g.get("name") == group:
            info["lag"] = g.get("lag")
            info["pending"] = int(g.get("pending", 0))
            info["last_delivered_id"] = g.get("last-delivered-id")
            consumers = client.xinfo_consumers(keys.stream, group)
            info["consumers"] = [
                {
                    "name": c.get("name"),
                    "pending": int(c.get("pending", 0)),
                    "idle_seconds": round(int(c.get("idle", 0)) / 1000.0, 1),
                }
                for c in consumers
            ]
    return info


def fleet_report(
    client: Any,
    *,
    url: str,
    keys: Keys | None = None,
    group: str = GROUP,
    stale_after: float = 30.0,
    failure_rate: float = 0.5,
    include_final: bool = False,
    now: float | None = None,
) -> FleetReport:
    """Every runtime whose heartbeat is still in Redis, the stream and the totals.
    Ids whose heartbeat key expired are removed from the index as a side effect."""
    keys = keys or Keys()
    moment = time.time() if now is None else now
    ids = [str(x) for x in client.zrange(keys.runtimes, 0, -1)]
    records = client.mget([keys.heartbeat(i) for i in ids]) if ids else []
    expired = [i for i, r in zip(ids, records, strict=True) if r is None]
    if expired:
        client.zrem(keys.runtimes, *expired)
    members: list[FleetMember] = []
    for text in records:
        if text is None:
            continue
        try:
            rec = json.loads(text)
        except ValueError:
            continue
        age = max(0.0, moment - float(rec.get("updated_at", 0.0)))
        final = bool(rec.get("final"))
        member = FleetMember(
            runtime_id=str(rec.get("runtime_id")),
            role=str(rec.get("role", "web")),
            pid=int(rec.get("pid", 0)),
            host=str(rec.get("host", "")),
            age=age,
            stale=age > stale_after and not final,
            final=final,
            snapshot=rec.get("snapshot") or {},
        )
        if final and not include_final:
            continue
        member.problems = _member_problems(member, failure_rate)
        members.append(member)
    members.sort(key=lambda m: (m.role != "worker", m.host, m.pid, m.runtime_id))
    stream = _stream_info(client, keys, group, moment)
    totals = totals_from_hash(client.hgetall(keys.totals))
    problems = []
    live_workers = [m for m in members if m.role == "worker" and not m.final and not m.stale]
    if not live_workers and (stream["length"] or stream["pending"]):
        problems.append(f"no live worker, {stream['length']} event(s) wait in the stream")
    return FleetReport(url, members, stream, totals, moment, problems)


def render_fleet(report: FleetReport) -> str:
    """The human table ``status --redis`` prints."""
    s = report.stream
    lag = "?" if s.get("lag") is None else s["lag"]
    lines = [
        f"errwire fleet status ({report.url})",
        "",
        f"stream {s['key']}: length={s['length']} group={s['group']} lag={lag} "
        f"pending={s['pending']} consumers={len(s['consumers'])}",
        "",
    ]
    workers = [m for m in report.members if m.role == "worker"]
    webs = [m for m in report.members if m.role != "worker"]
    if workers:
        header = (
            f"{'worker':<34} {'pid':>7} {'age':>5} {'events/s':>9} {'holding':>7} "
            f"{'breaker':<9} {'delivered':>9} {'spooled':>7}  health"
        )
        lines += [header, "-" * len(header)]
        for m in workers:
            d = m.as_dict()
            c = d["counters"]
            lines.append(
                f"{m.runtime_id[:34]:<34} {m.pid:>7} {m.age:>4.0f}s {d['rate_per_second']:>9.1f} "
                f"{d['holding']:>7} {d['breaker'].get('state', '?'):<9} "
                f"{c.get('delivered', 0):>9} {c.get('spooled', 0):>7}  "
                f"{'; '.join(m.problems) or 'ok'}"
            )
        lines.append("")
    else:
        lines += ["No live worker has reported (start one: errwire worker --redis URL).", ""]
    if webs:
        header = (
            f"{'web process':<34} {'pid':>7} {'age':>5} {'queue':>12} {'captured':>9} "
            f"{'forwarded':>9} {'spooled':>7}  health"
        )
        lines += [header, "-" * len(header)]
        for m in webs:
            d = m.as_dict()
            c, q = d["counters"], d["queue"]
            lines.append(
                f"{m.runtime_id[:34]:<34} {m.pid:>7} {m.age:>4.0f}s "
                f"{q.get('depth', 0):>5}/{q.get('capacity', 0):<6} {c.get('captured', 0):>9} "
                f"{c.get('forwarded', 0):>9} {c.get('spooled', 0):>7}  "
                f"{'; '.join(m.problems) or 'ok'}"
            )
        lines.append("")
    t = report.totals
    dropped = ", ".join(f"{k}={v}" for k, v in t["dropped"].items()) or "none"
    ident = report.identity
    lines += [
        "totals: " + ", ".join(f"{k}={t[k]}" for k in COUNTER_KEYS) + f"; dropped: {dropped}",
        "stream: "
        + " ".join(f"{k}={v}" for k, v in t["stream"].items())
        + f" in_stream={ident['in_stream']}",
        f"accounting: captured={ident['captured']} accounted={ident['accounted_for']} "
        f"+ in_stream={ident['in_stream']}"
        + ("" if ident["holds"] else "  (not quiet, or a process was killed)"),
    ]
    lines += [f"problem: {p}" for p in report.problems]
    lines.append(f"health: {'OK' if report.healthy else 'UNHEALTHY'}")
    return "\n".join(lines)
