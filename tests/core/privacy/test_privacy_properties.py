"""Properties of the scrubber as a whole: deterministic, idempotent, never raises,
planted secrets never survive, and no input makes it slow (catastrophic
backtracking would show up here as seconds instead of milliseconds)."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errwire._privacy import Scrubber

# Internal errors fail the test that caused them (the autouse fixture in tests/conftest.py).

SCRUBBER = Scrubber(project_root="/srv/app")
HASHING = Scrubber(host_mode="hash", max_items=5, max_depth=3, max_string=64, max_nodes=20)

# Secrets of every kind, and fragments that sit next to them in real messages.
PLANTED = [
    "alice.smith@example.com",
    "bob+tag@mail.example.co.uk",
    "10.0.0.5",
    "203.0.113.77",
    "2001:db8:85a3::8a2e:370:7334",
    "fe80::1%eth0",
    "00:1a:2b:3c:4d:5e",
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "378282246310005",
    "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32",
    "+1 (555) 123-4567",
    "+44 20 7946 0958",
    "555-867-5309",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "xoxb-123456789012-abcdefABCDEF",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "Zk39aBqR7tLmN2pXw8Yc4Tq9",
    "/home/alice/proj/app.py",
    "C:\\Users\\Alice\\proj",
]
CONTEXT_FRAGMENTS = [
    "hunter2-Pa55",
    "password=",
    "token: ",
    '{"api_key": "',
    '"',
    "'secret': '",
    "Authorization: Bearer ",
    "Basic ",
    "https://",
    "postgres://admin:",
    "@",
    "@db.internal:5432/app?sslmode=",
    "?token=",
    "&",
    "#access_token=",
    "lat=",
    "51.5074",
    ", lon=",
    "-0.1278",
    "--password ",
    " ",
    "\n",
    ", ",
    ".",
    ":",
    "=",
    "/",
    "v",
    "version ",
    "12:30:45",
    "1.2.3.4",
    "[EMAIL]",
    "[REDACTED]",
    "x[1::2]",
    "order 1234567",
    "error",
    "user",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
]

fragments = st.lists(st.sampled_from(PLANTED + CONTEXT_FRAGMENTS), max_size=12).map("".join)
texts = st.one_of(
    st.text(max_size=300),
    fragments,
    st.lists(st.one_of(fragments, st.text(max_size=20)), max_size=4).map("".join),
)

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.binary(max_size=40),
)
structures = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.tuples(children, children),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=8)), max_size=6),
        st.dictionaries(
            st.one_of(st.sampled_from(["password", "lat", "user", "token", "x"]), texts),
            children,
            max_size=6,
        ),
    ),
    max_leaves=30,
)
fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(texts)
def test_text_is_idempotent(text: str) -> None:
    once = SCRUBBER.scrub_text(text)
    assert SCRUBBER.scrub_text(once) == once


@fast
@given(texts)
def test_text_is_idempotent_in_hash_mode(text: str) -> None:
    once = HASHING.scrub_text(text)
    assert HASHING.scrub_text(once) == once


@fast
@given(texts)
def test_text_is_deterministic(text: str) -> None:
    assert SCRUBBER.scrub_text(text) == Scrubber(project_root="/srv/app").scrub_text(text)


@fast
@given(structures)
def test_values_are_idempotent_and_json_safe(value: object) -> None:
    for scrubber in (SCRUBBER, HASHING):
        once = scrubber.scrub_value(value)
        json.dumps(once)
        assert scrubber.scrub_value(once) == once


@fast
@given(st.binary(max_size=500))
def test_bytes_never_raise(data: bytes) -> None:
    out = SCRUBBER.scrub_value(data)
    assert isinstance(out, str)
    assert SCRUBBER.scrub_value(out) == out


@fast
@given(st.text(max_size=2000))
def test_arbitrary_text_never_raises(text: str) -> None:
    assert isinstance(SCRUBBER.scrub_text(text), str)


@fast
@given(
    st.sampled_from(PLANTED),
    st.sampled_from(["", " ", "\n", "(", "<", "'", '"', "=", ": ", "[", "{"]),
    st.sampled_from(["", " ", "\n", ")", ">", "'", '"', ",", ". ", "]", "}"]),
    st.text(alphabet="abc XYZ,.;", max_size=20),
)
def test_planted_secrets_do_not_survive(secret: str, before: str, after: str, filler: str) -> None:
    text = f"{filler} {before}{secret}{after} {filler}"
    out = SCRUBBER.scrub_text(text)
    assert secret not in out
    assert SCRUBBER.scrub_text(out) == out


@fast
@given(structures, st.sampled_from(PLANTED))
def test_payloads_never_raise_and_are_idempotent(context: Any, secret: str) -> None:
    payload = _payload(context, secret)
    once = SCRUBBER.scrub_payload(payload)
    json.dumps(once)
    assert SCRUBBER.scrub_payload(once) == once
    del once["context"]["nested"]  # random: may contain anything, even near-misses of a secret
    assert secret not in json.dumps(once)


def _payload(context: Any, secret: str) -> dict[str, Any]:
    frame = {
        "filename": "app/views.py",
        "abs_path": "/home/alice/app/views.py",
        "function": "get",
        "module": "app.views",
        "lineno": 3,
        "in_app": True,
    }
    return {
        "event_id": "0" * 32,
        "message": f"failed for {secret}",
        "exception": {"type": "ValueError", "value": f"bad {secret}", "stack": [frame]},
        "chain": [{"type": "KeyError", "value": secret, "stack": [], "relation": "cause"}],
        "context": {"nested": context, "note": secret},
        "request": {
            "path": "/x/12345",
            "query": {"q": secret},
            "headers": {"X-Secret": secret},
            "cookies": {"s": secret},
            "client": secret,
        },
        "tags": {"component": secret},
        "breadcrumbs": [{"message": secret}],
    }


# ---------------------------------------------------------------- bounded time

ADVERSARIAL = {
    "letters": "a" * 100_000,
    "at-signs": "@" * 100_000,
    "dotted-numbers": "1." * 50_000,
    "equals": "=" * 100_000,
    "key-equals": "a=" * 50_000,
    "key-colons": "a:" * 50_000,
    "password-equals": "password=" * 11_000,
    "colons": ":" * 100_000,
    "hex-colons": "ab:" * 33_000,
    "one-colons": "1:" * 50_000,
    "digits": "1" * 100_000,
    "spaced-digits": "1 " * 50_000,
    "plus-ones": "+1 " * 33_000,
    "schemes": "http://" * 14_000,
    "emails": "a@a." * 25_000,
    "local-parts": ("a." * 30 + "@") * 1_600,
    "pem-begins": "-----BEGIN PRIVATE KEY-----" * 3_700,
    "jwt-heads": "eyJ" * 33_000,
    "homes": "/home/" * 16_000,
    "windows-homes": "C:\\Users\\" * 11_000,
    "base64": "Ab1/" * 25_000,
    "lat-keys": "lat:" * 25_000,
    "quoted-keys": '"password":' * 9_000,
    "brackets": "[" * 100_000,
    "flags": "--password " * 9_000,
    "bearers": "Bearer " * 14_000,
    "macs": "0a-" * 33_000,
    "backslashes": "\\" * 100_000,
    "quotes": '"' * 100_000,
    "mixed": ("x=1&password=a@b.co 10.0.0.1 +1 555 ::1 http://u:p@h/ ") * 1_500,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_input_is_scrubbed_in_bounded_time(name: str) -> None:
    # Not a speed test (benchmarks/bench_scrub.py measures speed): linear scrubbing of
    # these inputs takes about a second at worst, catastrophic backtracking would take
    # hours, so a generous bound tells them apart on any machine.
    text = ADVERSARIAL[name]
    worker = threading.Thread(target=SCRUBBER.scrub_text, args=(text,), daemon=True)
    worker.start()
    worker.join(60.0)
    assert not worker.is_alive(), f"scrubbing {name!r} did not finish: backtracking?"


# ---------------------------------------------------------------- structures that fight back


class Exploding:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


@dataclasses.dataclass
class Account:
    user: str
    password: str
    child: object = None


def test_hostile_values_never_raise() -> None:
    cyclic: list[object] = [1]
    cyclic.append(cyclic)
    deep: list[object] = []
    node = deep
    for _ in range(10_000):
        nxt: list[object] = []
        node.append(nxt)
        node = nxt
    values: list[object] = [
        Exploding(),
        cyclic,
        deep,
        Account("bob", "pw", Exploding()),
        {Exploding(): 1},
        10**5000,
        float("nan"),
        memoryview(b"abc"),
        bytearray(b"\xff\xfe"),
    ]
    for value in values:
        out = SCRUBBER.scrub_value(value)
        json.dumps(out)
        assert SCRUBBER.scrub_value(out) == out
