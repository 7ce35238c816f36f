"""The scrubber's shortcuts change nothing but its speed.

Scrubbing runs on the worker thread for every event, so it takes shortcuts: cached
stacks, frames, tags and texts (a hit replays the redactions the first scrub
counted), cheap triggers in front of every text rule, a gate that skips all of them
for text with nothing to find, and a confirming pass that does not re-run a rule on
text it already left unchanged. Each must be invisible: same output, same counts.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errwire._privacy import Scrubber
from errwire._privacy._keyvalue import may_have_key_values, scrub_key_values
from errwire._privacy._personal import _EMAIL
from errwire._privacy._rules import sub_near
from errwire._privacy._structure import _Walk
from errwire._privacy._text import BUILTIN_RULES, _quiet
from errwire._privacy._urls import _URL

ROOT = "/srv/app"


def _frame(path: str, line: int, **extra: Any) -> dict[str, Any]:
    return {
        "filename": path.removeprefix(ROOT + "/"),
        "abs_path": path,
        "function": "handler",
        "module": "app.views",
        "lineno": line,
        "in_app": True,
        **extra,
    }


def _payload(stack: list[Any], message: str = "boom", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": "e" * 32,
        "timestamp": 1.0,
        "message": message,
        "exception": {"type": "builtins.ValueError", "value": message, "stack": stack},
        "chain": [],
        "component": "orders",
        "category": "db",
        "priority": None,
        "context": {"order": 7},
        "tags": {"component": "orders", "owner": "ann@example.com"},
        **fields,
    }


def _counted(scrubber: Scrubber, payload: dict[str, Any]) -> tuple[Any, dict[str, int]]:
    before = scrubber.counts()
    out = scrubber.scrub_payload(payload)
    after = scrubber.counts()
    return out, {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


# ---------------------------------------------------------------- cached payload parts


def test_a_cached_stack_replays_exactly_the_counts_of_its_first_scrub() -> None:
    stack = [
        _frame("/home/ann/proj/app.py", 3),
        _frame(ROOT + "/app/views.py", 10, vars="password=hunter2 a@b.example"),
        _frame("/Users/bob/lib/x.py", 7, token="Zk39aBqR7tLmN2pXw8Yc4Tq9"),
    ]
    scrubber = Scrubber(project_root=ROOT)
    first, first_counts = _counted(scrubber, _payload([dict(f) for f in stack]))
    again, again_counts = _counted(scrubber, _payload([dict(f) for f in stack]))
    assert again == first
    assert again_counts == first_counts
    assert first_counts["HOME"] == 4  # filename and abs_path of two frames
    assert first_counts["REDACTED"] == 2 and first_counts["EMAIL"] == 2  # frame + tag
    # and the same as a scrubber that has never seen anything
    assert _counted(Scrubber(project_root=ROOT), _payload(stack)) == (first, first_counts)


def test_a_new_stack_of_cached_frames_counts_like_a_fresh_scrubber() -> None:
    a = _frame("/home/ann/a.py", 1)
    b = _frame("/home/ann/b.py", 2, vars="secret=x")
    c = _frame("/home/ann/c.py", 3)
    warm = Scrubber(project_root=ROOT)
    warm.scrub_payload(_payload([a, b]))
    warm.scrub_payload(_payload([b, c]))
    for stack in ([c, a, b], [b], [a, c, c]):
        fresh = Scrubber(project_root=ROOT)
        assert _counted(warm, _payload(stack)) == _counted(fresh, _payload(stack))


def test_changing_what_the_scrubber_returned_does_not_change_its_next_answer() -> None:
    scrubber = Scrubber(project_root=ROOT)
    payload = _payload([_frame(ROOT + "/app/views.py", 10), _frame("/home/ann/x.py", 2)])
    first = scrubber.scrub_payload(payload)
    expected = scrubber.scrub_payload(payload)
    for frame in first["exception"]["stack"]:
        frame["abs_path"] = "/home/ann/changed"
        frame.pop("lineno")
    first["exception"]["stack"].append({"injected": True})
    first["tags"]["owner"] = "changed"
    assert scrubber.scrub_payload(payload) == expected


def test_frames_equal_in_value_but_not_in_type_are_not_confused() -> None:
    scrubber = Scrubber(project_root=ROOT)
    as_ints = [{"abs_path": "/x.py", "lineno": 1, "in_app": 1, "colno": 1, "vars": 0}]
    as_bools = [{"abs_path": "/x.py", "lineno": True, "in_app": True, "colno": 1.0, "vars": False}]
    for stack in (as_ints, as_bools, as_ints, as_bools):
        out = scrubber.scrub_payload(_payload(stack))["exception"]["stack"]
        fresh = Scrubber(project_root=ROOT).scrub_payload(_payload(stack))["exception"]["stack"]
        assert repr(out) == repr(fresh)


def test_frames_that_are_not_plain_data_are_still_scrubbed() -> None:
    class Path(str):
        pass

    scrubber = Scrubber(project_root=ROOT)
    stack = [{"abs_path": Path("/home/ann/x.py"), "lineno": 3}, "not a frame", ("a@b.example",)]
    for _ in range(2):
        out = scrubber.scrub_payload(_payload(stack))["exception"]["stack"]
        assert out == [{"abs_path": "~/x.py", "lineno": 3}, "not a frame", ["[EMAIL]"]]


# ---------------------------------------------------------------- text rules

FRAGMENTS = [
    "password",
    "pa_ss",
    "X-Api-Key",
    "Authorization",
    "token",
    "lat",
    "coords",
    "=",
    ":",
    " : ",
    "=>",
    ":=",
    "::",
    "--",
    "--password ",
    '"',
    "'",
    "[",
    "]",
    "(",
    ")",
    ",",
    ";",
    "&",
    "?",
    "#",
    "/",
    "\\",
    "@",
    "%40",
    ".",
    "-",
    " ",
    "\t",
    "\n",
    "[REDACTED]",
    "[EMAIL]",
    "[URL-CREDENTIALS]",
    "[GEO]",
    "Bearer ",
    "bearer ",
    "Token ",
    "Digest username=",
    "a@b.co",
    "alice@example.com",
    "icon@2x.png",
    "10.0.0.5",
    "v1.2.3.4",
    "version\n1.2.3.4",
    "fe80::1%eth0",
    "00:1a:2b:3c:4d:5e",
    "0a-1b-2c-3d-4e-5f",
    "0123.4567.89ab",
    "4111 1111 1111 1111",
    "GB82 WEST 1234 5698 7654 32",
    "+44 20 7946 0958",
    "(555) 123-4567",
    "020 7946 0958",
    "https://user:pw@host.example.com:8080/p/12345?q=1#f",
    "postgres://admin:s3cret@10.0.0.5:5432/app",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "AKIAIOSFODNN7EXAMPLE",
    "xoxb-1234567890-abcdefghij",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "$argon2id$v=19$m=65536,t=3,p=4$abc",
    "-----BEGIN RSA PRIVATE KEY-----",
    "/home/alice/x",
    "C:\\Users\\Alice\\x",
    "C:\\Documents and Settings\\bob\\x",
    "Zk39aBqR7tLmN2pX",
    "aB3dE5fG7hJ9kL1mN3pQ5rS7",
    "getUserById",
    "12:30:45",
    "42",
]
texts = st.lists(
    st.sampled_from(FRAGMENTS) | st.text(alphabet="aZ09 .:=-_/@[]'\"\n", max_size=4),
    max_size=12,
).map("".join)
SCRUBBER = Scrubber()
CTX = SCRUBBER._text._ctx


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(texts)
def test_a_rule_whose_trigger_says_no_would_change_nothing(text: str) -> None:
    for rule in BUILTIN_RULES:
        if rule.trigger is not None and not rule.trigger(text):
            assert rule.apply(text, CTX) == text, rule.name


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(texts)
def test_quiet_text_is_left_alone_by_every_rule(text: str) -> None:
    if _quiet(text):
        assert all(rule.apply(text, CTX) == text for rule in BUILTIN_RULES)


@pytest.mark.parametrize(
    ("text", "changes"),
    [
        ('"password": "[REDACTED]"', False),
        ("password=[REDACTED] and lat: [GEO]", False),
        ("password = [REDACTED]", False),
        ("password==[REDACTED]", True),
        ("password=[REDACTED", True),
        ("X-Api-Key: [REDACTED] and more", True),
        ("Authorization: Bearer [REDACTED]", True),  # header line: checked, then kept
        ("password=hunter2", True),
        ("state=pending; KeyError: user_id", False),
        ("--password hunter2", True),
    ],
)
def test_the_key_value_trigger_knows_a_redacted_value(text: str, changes: bool) -> None:
    # The second pass over scrubbed text need not run the rule again; anything else may.
    assert may_have_key_values(text) is changes
    assert changes or scrub_key_values(text, CTX) == text


@settings(max_examples=300, deadline=None)
@given(texts)
def test_searching_near_anchors_finds_what_sub_finds(text: str) -> None:
    def mark(m: re.Match[str]) -> str:
        return f"<{m.group(0)}>"

    assert sub_near(_EMAIL, text, ("@", "%40"), 64, mark) == _EMAIL.sub(mark, text)
    assert sub_near(_URL, text, ("://",), 32, mark) == _URL.sub(mark, text)


def test_homes_under_documents_and_settings_are_found() -> None:
    out = SCRUBBER.scrub_text("open C:\\Documents and Settings\\bob\\notes.txt failed")
    assert out == "open ~\\notes.txt failed"


def test_text_that_keeps_changing_fails_closed() -> None:
    scrubber = Scrubber()
    chained = "+000(0000)0" + "+00000000" * 4  # each pass frees the next phone number
    assert scrubber.scrub_text(chained) == "[PHONE]" * 5
    endless = "+000(0000)0" + "+00000000" * 40
    assert scrubber.scrub_text(endless) == "[SCRUB-ERROR]"
    assert scrubber.scrub_text("[SCRUB-ERROR]") == "[SCRUB-ERROR]"
    assert scrubber.counts()["SCRUB-ERROR"] == 1


# ---------------------------------------------------------------- flat contexts

_context_keys = st.sampled_from(
    ["order", "n", "user", "password", "api_key", "lat", "lon", "coords", "token", "id", "i"]
) | st.text(max_size=12)
_context_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**13), 10**17),
    st.sampled_from([4111111111111111, 10**12, -(10**12), 12, 0]),
    st.floats(allow_nan=True),
    st.sampled_from(
        ["", "ok", "[EMAIL]", "ann@example.com", "Zk39aBqR7tLmN2pXw8Yc4Tq9", "12.5", "x]"]
    ),
    st.text(max_size=24),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(_context_keys, _context_values, max_size=6))
def test_a_flat_context_scrubs_as_the_full_walk_does(context: dict[str, Any]) -> None:
    """The shortcut for small flat contexts (known-clean keys and values) answers and
    counts exactly what the full walk does, also once every text is cached."""
    fast = Scrubber(max_items=4, max_nodes=5)
    full = Scrubber(max_items=4, max_nodes=5)
    for _ in range(3):  # the first round fills the text cache; later ones take the shortcut
        walked = full._values._value(dict(context), None, 0, _Walk())  # no shortcut
        assert fast.scrub_value(dict(context)) == walked
        assert fast.counts() == full.counts()


def test_a_flat_context_of_known_values_takes_the_shortcut() -> None:
    scrubber = Scrubber()
    context = {"order": 7, "state": "paid", "retry": None, "ok": True}
    first = scrubber.scrub_value(context)
    assert scrubber._values._clean_flat(context) == first == context
    assert scrubber._values._clean_flat({"password": 1}) is None
    assert scrubber._values._clean_flat({"card": 4111111111111111}) is None
