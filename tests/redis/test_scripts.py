"""The Lua scripts against a real Redis: exact trim counts, the dedup window, the
shared token bucket and the ack codes, with times passed in (no waiting)."""

from __future__ import annotations

from typing import Any

from errwire._redis import GROUP, Keys
from errwire._redis._scripts import (
    ACK_DUPLICATE,
    ACK_OK,
    ACK_TRIMMED,
    DUPLICATE,
    RATE_LIMITED,
    Scripts,
)


def test_append_counts_forwarded_and_exactly_what_the_trim_removed(client: Any, keys: Keys) -> None:
    scripts = Scripts(client, keys)
    # "~" trims whole nodes (100 entries each by default) and never below the bound:
    # with 150 entries, dropping a node would leave 50
    assert scripts.append([f"e{i}" for i in range(150)], 100) == 0
    trimmed = scripts.append([f"f{i}" for i in range(250)], 100)
    length = client.xlen(keys.stream)
    assert trimmed > 0
    assert length >= 100
    assert trimmed == 400 - length
    totals = client.hgetall(keys.totals)
    assert int(totals["forwarded"]) == 400
    assert int(totals["trimmed"]) == 400 - length
    assert scripts.append([], 100) == 0


def test_dedup_window_opens_suppresses_and_reports_the_count(client: Any, keys: Keys) -> None:
    scripts = Scripts(client, keys)
    window = 1000
    assert scripts.dedup("fp", "e1", window, 0, 10_000) == 0  # opens the window
    assert scripts.dedup("fp", "e2", window, 0, 10_100) == -1
    assert scripts.dedup("fp", "e3", window, 4, 10_900) == -1  # carries 4 storm folds
    assert scripts.dedup("other", "e4", window, 0, 10_900) == 0  # another fingerprint
    # after the window the next event passes and reports 1 + (1 + 4) suppressed
    assert scripts.dedup("fp", "e5", window, 0, 11_000) == 6
    assert scripts.dedup("fp", "e6", window, 0, 11_500) == -1


def test_the_event_that_opened_the_window_passes_again_when_redelivered(
    client: Any, keys: Keys
) -> None:
    scripts = Scripts(client, keys)
    assert scripts.dedup("fp", "e1", 60_000, 0, 1_000) == 0
    assert scripts.dedup("fp", "e1", 60_000, 0, 2_000) == 0  # a reclaimed entry
    assert scripts.dedup("fp", "e2", 60_000, 0, 2_000) == -1


def test_dedup_on_the_server_clock_uses_set_nx_px(client: Any, keys: Keys) -> None:
    scripts = Scripts(client, keys)
    assert scripts.dedup("fp", "e1", 5000, 0, None) == 0
    assert scripts.dedup("fp", "e2", 5000, 0, None) == -1
    assert 0 < client.pttl(keys.dedup("fp")) <= 5000
    assert client.get(keys.dedup_count("fp")) == "1"


def test_token_bucket_allows_the_burst_then_refills_with_time(client: Any, keys: Keys) -> None:
    scripts = Scripts(client, keys)
    per_ms = 60 / 60_000.0  # 60 a minute: one a second
    allowed = [scripts.take_token("db", per_ms, 3, 0)[0] for _ in range(5)]
    assert allowed == [True, True, True, False, False]
    assert scripts.take_token("cache", per_ms, 3, 0)[0]  # its own bucket
    assert not scripts.take_token("db", per_ms, 3, 999)[0]
    ok, left = scripts.take_token("db", per_ms, 3, 1000)
    assert ok and left == 0.0
    ok, left = scripts.take_token("db", per_ms, 3, 100_000)  # refills to the burst, no more
    assert ok and left == 2.0
    # a caller whose clock is behind never refills or empties the bucket twice
    ok, left = scripts.take_token("db", per_ms, 3, 50_000)
    assert ok and left == 1.0


def test_ack_counts_each_outcome_once_and_tells_duplicates_and_trimmed(
    client: Any, keys: Keys
) -> None:
    scripts = Scripts(client, keys)
    client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
    scripts.append(["a", "b", "c"], 1000)
    reply = client.xreadgroup(GROUP, "w1", {keys.stream: ">"}, count=3)
    ids = [entry_id for entry_id, _ in reply[0][1]]
    client.xdel(keys.stream, ids[2])  # as if the trim had removed it meanwhile
    codes = scripts.ack([(ids[0], "delivered"), (ids[1], "dropped:disabled"), (ids[2], "spooled")])
    assert codes == [ACK_OK, ACK_OK, ACK_TRIMMED]
    assert scripts.ack([(ids[0], "delivered")]) == [ACK_DUPLICATE]
    totals = client.hgetall(keys.totals)
    assert totals["delivered"] == "1"
    assert totals["dropped:disabled"] == "1"
    assert totals["spooled"] == "1"
    assert totals["trim_recovered"] == "1"
    assert totals["duplicates"] == "1"
    assert client.xlen(keys.stream) == 0  # acknowledged entries are deleted
    assert client.xpending(keys.stream, GROUP)["pending"] == 0


def test_guard_runs_dedup_then_the_bucket_for_a_batch_in_order(client: Any, keys: Keys) -> None:
    scripts = Scripts(client, keys)
    events = [
        ("fp1", "e1", 0, "db"),
        ("fp1", "e2", 2, "db"),  # a repeat: suppressed, takes no token
        ("fp2", "e3", 0, "db"),
        ("fp3", "e4", 0, "db"),  # the bucket (burst 2) is empty by now
        ("", "e5", 0, "cache"),  # no fingerprint: no dedup
    ]
    answers = scripts.guard(events, window_ms=60_000, per_ms=0.0, burst=2, now_ms=1_000)
    assert [code for code, _ in answers] == [0, DUPLICATE, 0, RATE_LIMITED, 0]
    assert answers[0][1] == 1.0 and answers[1][1] is None
    # after the window the first event of fp1 reports what was folded (1 + 2 carried)
    later = scripts.guard(
        [("fp1", "e6", 0, "other")], window_ms=60_000, per_ms=0.0, burst=2, now_ms=61_000
    )
    assert later == [(3, 1.0)]
    # without a window, nothing is deduplicated
    again = scripts.guard(
        [("fp9", "e7", 0, "x"), ("fp9", "e8", 0, "x")],
        window_ms=0,
        per_ms=0.0,
        burst=5,
        now_ms=1,
    )
    assert [code for code, _ in again] == [0, 0]
