"""The Lua scripts that make fleet-wide state atomic, and their Python faces.

Each script runs as one atomic step on the server, so two workers (or two web
processes) never interleave inside it:

* ``append``: XADD a batch with ``MAXLEN ~`` and count, exactly, how many entries
  the trim removed (length before + added - length after) and how many were added.
* ``dedup``: ``SET NX PX`` on the fingerprint opens a window; repeats inside it add
  to a suppressed count that the first event after the window reports. The key
  remembers which event opened the window, so that event passes again when a
  worker that died holding it is replaced (at-least-once redelivery).
* ``take_token``: one token bucket per component, shared by every worker.
* ``guard``: both, for a whole batch in order (what workers use: one round trip).
* ``ack``: XACK + XDEL per entry, and the entry's outcome counted in the same step,
  so a worker killed right after cannot lose or double a count.

Times are milliseconds. Scripts read the server's clock (``TIME``) unless the
caller passes one: production uses the server's (one clock for the whole
fleet), tests pass an injected clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._keys import GROUP, Keys

__all__ = ["ACK_DUPLICATE", "ACK_OK", "ACK_TRIMMED", "DUPLICATE", "RATE_LIMITED", "Scripts"]

ACK_DUPLICATE = 0  # another worker acknowledged the entry first: it counted it
ACK_OK = 1
ACK_TRIMMED = 2  # acknowledged, but the trim had removed it from the stream meanwhile
DUPLICATE = -1  # guard: inside the fingerprint's dedup window
RATE_LIMITED = -2  # guard: the component's bucket was empty

_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

_APPEND = """
local before = redis.call('XLEN', KEYS[1])
local n = #ARGV - 1
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'p', ARGV[i])
end
local trimmed = before + n - redis.call('XLEN', KEYS[1])
redis.call('HINCRBY', KEYS[2], 'forwarded', n)
if trimmed > 0 then
  redis.call('HINCRBY', KEYS[2], 'trimmed', trimmed)
end
return trimmed
"""

_DEDUP_FN = """
local function dedup(key, count_key, now, window, carried, event_id)
  local mark = string.format('%d', now) .. ' ' .. event_id
  local opened = redis.call('SET', key, mark, 'NX', 'PX', window)
  if not opened then
    local held = redis.call('GET', key)
    if held then
      local sep = string.find(held, ' ', 1, true)
      if sep and string.sub(held, sep + 1) == event_id then
        return 0  -- the event that opened the window, handled again (a reclaimed entry)
      end
      -- the key outlives the window only when the caller's clock runs ahead of the
      -- server's (an injected clock): then the caller's clock decides
      local start = tonumber(string.sub(held, 1, (sep or 0) - 1))
      if start and now - start >= window then
        redis.call('SET', key, mark, 'PX', window)
        opened = true
      end
    else
      opened = redis.call('SET', key, mark, 'NX', 'PX', window)
    end
  end
  if opened then
    local n = tonumber(redis.call('GET', count_key)) or 0
    if n > 0 then redis.call('DEL', count_key) end
    return n
  end
  redis.call('INCRBY', count_key, 1 + carried)
  redis.call('PEXPIRE', count_key, window + 3600000)
  return -1
end
"""

_BUCKET_FN = """
local function take(key, now, rate, burst)
  local state = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if not tokens or not ts then
    tokens = burst
    ts = now
  end
  if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate)
    ts = now
  end
  local allowed = 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  end
  redis.call('HSET', key, 't', string.format('%.6f', tokens), 'ts', string.format('%d', ts))
  -- kept until it would be full again anyway (a day at most)
  local ttl = 86400000
  if rate > 0 then ttl = math.min(ttl, math.ceil(burst / rate) + 60000) end
  redis.call('PEXPIRE', key, ttl)
  return allowed, tokens
end
"""

_DEDUP = (
    _NOW
    + _DEDUP_FN
    + """
return dedup(KEYS[1], KEYS[2], now, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
"""
)

_TAKE_TOKEN = (
    _NOW
    + _BUCKET_FN
    + """
local allowed, tokens = take(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]))
return {allowed, string.format('%.3f', tokens)}
"""
)

# A batch of events through dedup then the rate limit, in order, in one step: one
# round trip per batch instead of two per event. Per event: three keys (dedup,
# dedup count, bucket) and three arguments (event id, carried repeats, whether it
# has a fingerprint). Answers per event: {report >= 0 or -1 (duplicate) or -2
# (rate limited), tokens left}.
_GUARD = (
    _NOW
    + _DEDUP_FN
    + _BUCKET_FN
    + """
local window = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local out = {}
for i = 1, (#ARGV - 4) / 3 do
  local base = 4 + (i - 1) * 3
  local report = 0
  if window > 0 and ARGV[base + 3] == '1' then
    report = dedup(KEYS[3 * i - 2], KEYS[3 * i - 1], now, window,
                   tonumber(ARGV[base + 2]), ARGV[base + 1])
  end
  if report < 0 then
    out[i] = {-1, ''}
  else
    local allowed, tokens = take(KEYS[3 * i], now, rate, burst)
    if allowed == 1 then
      out[i] = {report, string.format('%.3f', tokens)}
    else
      out[i] = {-2, string.format('%.3f', tokens)}
    end
  end
end
return out
"""
)

_ACK = """
local out = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local field = ARGV[i + 1]
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    local deleted = redis.call('XDEL', KEYS[1], id)
    if field ~= '' then redis.call('HINCRBY', KEYS[2], field, 1) end
    if deleted == 0 then
      redis.call('HINCRBY', KEYS[2], 'trim_recovered', 1)
      out[#out + 1] = 2
    else
      out[#out + 1] = 1
    end
  else
    redis.call('HINCRBY', KEYS[2], 'duplicates', 1)
    out[#out + 1] = 0
  end
end
return out
"""


class Scripts:
    """The scripts registered on one client (EVALSHA, loaded again after a restart)."""

    def __init__(self, client: Any, keys: Keys, *, group: str = GROUP) -> None:
        self.client = client
        self.keys = keys
        self.group = group
        self._append = client.register_script(_APPEND)
        self._dedup = client.register_script(_DEDUP)
        self._take = client.register_script(_TAKE_TOKEN)
        self._ack = client.register_script(_ACK)
        self._guard = client.register_script(_GUARD)

    def append(self, payloads: Sequence[str], max_length: int) -> int:
        """Add ``payloads`` (serialised) to the stream; the number of entries trimmed."""
        if not payloads:
            return 0
        keys = [self.keys.stream, self.keys.totals]
        return int(self._append(keys=keys, args=[max_length, *payloads]))

    def dedup(
        self, fingerprint: str, event_id: str, window_ms: int, carried: int, now_ms: int | None
    ) -> int:
        """-1 when suppressed; else the suppressed count to report with this event."""
        keys = [self.keys.dedup(fingerprint), self.keys.dedup_count(fingerprint)]
        args = ["" if now_ms is None else now_ms, window_ms, carried, event_id]
        return int(self._dedup(keys=keys, args=args))

    def take_token(
        self, component: str, per_ms: float, burst: int, now_ms: int | None
    ) -> tuple[bool, float]:
        """Whether the component's shared bucket had a token, and what is left."""
        args = ["" if now_ms is None else now_ms, repr(per_ms), burst]
        allowed, left = self._take(keys=[self.keys.bucket(component)], args=args)
        return int(allowed) == 1, float(left)

    def guard(
        self,
        events: Sequence[tuple[str, str, int, str]],
        *,
        window_ms: int,
        per_ms: float,
        burst: int,
        now_ms: int | None,
    ) -> list[tuple[int, float | None]]:
        """Dedup then rate limit a batch of ``(fingerprint, event id, carried,
        component)`` in order, atomically. Per event: the suppressed count to report
        (>= 0) or DUPLICATE / RATE_LIMITED, and the tokens its component has left."""
        if not events:
            return []
        keys: list[str] = []
        args: list[Any] = ["" if now_ms is None else now_ms, window_ms, repr(per_ms), burst]
        for fingerprint, event_id, carried, component in events:
            keys += [
                self.keys.dedup(fingerprint),
                self.keys.dedup_count(fingerprint),
                self.keys.bucket(component),
            ]
            args += [event_id, carried, "1" if fingerprint else "0"]
        reply = self._guard(keys=keys, args=args)
        return [(int(code), float(left) if left else None) for code, left in reply]

    def ack(self, outcomes: Sequence[tuple[str, str]]) -> list[int]:
        """Acknowledge ``(entry id, outcome field)`` pairs; one ACK_* code per entry."""
        if not outcomes:
            return []
        args: list[str] = [self.group]
        for entry_id, field in outcomes:
            args += [entry_id, field]
        return [int(x) for x in self._ack(keys=[self.keys.stream, self.keys.totals], args=args)]
