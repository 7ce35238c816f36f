"""``scrub_value``: recursion, bounds, secret keys, odd objects; JSON-safe and never raising."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from pathlib import PurePosixPath
from typing import Any, NamedTuple

import pytest

from errwire._privacy import Scrubber


@dataclasses.dataclass
class Login:
    user: str
    password: str
    remember: bool = False


class Point(NamedTuple):
    lat: float
    lon: float


class Color(enum.Enum):
    RED = 1


class BadRepr:
    def __repr__(self) -> str:
        raise ValueError("no repr for you")


class SecretRepr:
    def __repr__(self) -> str:
        return "SecretRepr(token='Zk39aBqR7tLmN2pXw8Yc', email=eve@example.com)"


SCRUB = Scrubber()


def test_secret_keys_lose_their_whole_value() -> None:
    value = {
        "password": "hunter2",
        "db_password": {"nested": "anything"},
        "X-Api-Key": ["k1", "k2"],
        "sessionid": 12345,
        "user": "bob",
        "authToken": "abc",
    }
    assert SCRUB.scrub_value(value) == {
        "password": "[REDACTED]",
        "db_password": "[REDACTED]",
        "X-Api-Key": "[REDACTED]",
        "sessionid": "[REDACTED]",
        "user": "bob",
        "authToken": "[REDACTED]",
    }


def test_secret_keys_keep_values_that_hide_nothing() -> None:
    assert SCRUB.scrub_value({"password": None, "token": "", "csrf": True}) == {
        "password": None,
        "token": "",
        "csrf": True,
    }


def test_metadata_keys_are_not_secret() -> None:
    value = {
        "max_tokens": 100,
        "token_type": "bearer",
        "password_length": 12,
        "author": "Ann",
        "session_cookie_age": 60,
    }
    assert SCRUB.scrub_value(value) == value


def test_key_argument_applies_to_the_value_itself() -> None:
    assert SCRUB.scrub_value("hunter2", key="password") == "[REDACTED]"
    assert SCRUB.scrub_value("hello", key="greeting") == "hello"


def test_allow_keys_lift_the_key_rule_but_not_the_text_rules() -> None:
    scrubber = Scrubber(allow_keys=["token_bucket", "X-Session-Region"])
    value = {"token_bucket": "10 per s, owner a@b.example", "x_session_region": "eu", "token": "t"}
    assert scrubber.scrub_value(value) == {
        "token_bucket": "10 per s, owner [EMAIL]",
        "x_session_region": "eu",
        "token": "[REDACTED]",
    }


def test_strings_are_scrubbed_and_random_values_become_tokens() -> None:
    value = {
        "note": "mail alice@example.com",
        "request_id": "Zk39aBqR7tLmN2pX",
        "sha": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
    }
    assert SCRUB.scrub_value(value) == {
        "note": "mail [EMAIL]",
        "request_id": "[TOKEN]",
        "sha": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
    }


def test_keys_are_scrubbed_too_and_collisions_kept_apart() -> None:
    out = SCRUB.scrub_value({"alice@example.com": 1, "bob@example.com": 2, 3: "three", None: 0})
    assert out == {"[EMAIL]": 1, "[EMAIL] (2)": 2, "3": "three", "None": 0}


def test_allow_keys_also_lift_the_coordinate_rule() -> None:
    assert Scrubber(allow_keys=["lat"]).scrub_value({"lat": 51.5, "lon": 0.1}) == {
        "lat": 51.5,
        "lon": "[GEO]",
    }
    assert Scrubber(allow_keys=["lat"]).scrub_text("lat=51.5 lon=0.1") == "lat=51.5 lon=[GEO]"


def test_coordinates_under_geo_keys() -> None:
    value = {
        "lat": 51.5074,
        "lon": -0.1278,
        "location": [51.5, -0.12],
        "latitude": "48.85",
        "lat_source": "gps",
        "zoom": 12.5,
    }
    assert SCRUB.scrub_value(value) == {
        "lat": "[GEO]",
        "lon": "[GEO]",
        "location": "[GEO]",
        "latitude": "[GEO]",
        "lat_source": "gps",
        "zoom": 12.5,
    }


def test_card_numbers_stored_as_integers() -> None:
    assert SCRUB.scrub_value({"n": 4111111111111111, "m": 4111111111111112, "small": 42}) == {
        "n": "[CARD]",
        "m": 4111111111111112,
        "small": 42,
    }


def test_containers_become_json_types() -> None:
    value: dict[str, Any] = {
        "tuple": (1, "a"),
        "set": {"b", "a", "c"},
        "frozenset": frozenset({3, 1, 2}),
        "deque": collections.deque([1, 2]),
        "login": Login("bob", "pw"),
        "point": Point(51.5, -0.1),
        "bytes": b"bob@example.com \xff",
        "when": datetime.datetime(2024, 1, 15, 12, 30, 45),
        "day": datetime.date(2024, 1, 15),
        "money": decimal.Decimal("1.50"),
        "id": uuid.UUID("550e8400-e29b-41d4-a716-446655440000"),
        "path": PurePosixPath("/home/alice/x.txt"),
        "color": Color.RED,
        "nan": float("nan"),
        "inf": float("-inf"),
        "big": 10**30,
    }
    out = SCRUB.scrub_value(value)
    json.dumps(out)
    assert out == {
        "tuple": [1, "a"],
        "set": ["a", "b", "c"],
        "frozenset": [1, 2, 3],
        "deque": [1, 2],
        "login": {"user": "bob", "password": "[REDACTED]", "remember": False},
        "point": {"lat": "[GEO]", "lon": "[GEO]"},
        "bytes": "[EMAIL] \ufffd",
        "when": "2024-01-15T12:30:45",
        "day": "2024-01-15",
        "money": "1.50",
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "path": "~/x.txt",
        "color": "<Color.RED: 1>",
        "nan": "nan",
        "inf": "-inf",
        "big": "1000000000000000000000000000000",
    }


def test_objects_go_through_a_scrubbed_repr() -> None:
    out = SCRUB.scrub_value(SecretRepr())
    assert out == "SecretRepr(token='[REDACTED]', email=[EMAIL])"


def test_a_raising_repr_becomes_a_marker() -> None:
    assert SCRUB.scrub_value(BadRepr()) == "<BadRepr [REPR-ERROR]>"
    assert SCRUB.scrub_value({"x": [BadRepr()]}) == {"x": ["<BadRepr [REPR-ERROR]>"]}


def test_cycles_are_cut() -> None:
    a: dict[str, Any] = {"name": "a"}
    a["self"] = a
    b: list[Any] = [1]
    b.append(b)
    assert SCRUB.scrub_value(a) == {"name": "a", "self": "[CYCLE]"}
    assert SCRUB.scrub_value(b) == [1, "[CYCLE]"]


def test_shared_references_are_not_cycles() -> None:
    shared = {"k": "v"}
    assert SCRUB.scrub_value([shared, shared]) == [{"k": "v"}, {"k": "v"}]


def test_depth_is_bounded() -> None:
    scrubber = Scrubber(max_depth=2)
    assert scrubber.scrub_value({"a": {"b": {"c": 1}}, "s": "x"}) == {
        "a": {"b": "[MAX-DEPTH]"},
        "s": "x",
    }
    assert scrubber.scrub_value([[[1]]]) == [["[MAX-DEPTH]"]]


def test_width_is_bounded_idempotently() -> None:
    scrubber = Scrubber(max_items=3)
    out = scrubber.scrub_value(list(range(10)))
    assert out == [0, 1, 2, "[TRUNCATED]"]
    assert scrubber.scrub_value(out) == out
    d = scrubber.scrub_value({str(i): i for i in range(10)})
    assert d == {"0": 0, "1": 1, "2": 2, "[TRUNCATED]": "[TRUNCATED]"}
    assert scrubber.scrub_value(d) == d


def test_total_size_is_bounded_idempotently() -> None:
    scrubber = Scrubber(max_nodes=10)
    out = scrubber.scrub_value([[i, i] for i in range(10)])
    assert "[TRUNCATED]" in json.dumps(out)
    assert scrubber.scrub_value(out) == out


def test_long_strings_are_cut_without_leaving_half_a_secret() -> None:
    scrubber = Scrubber(max_string=64)
    text = "x " * 20 + "card 4111 1111 1111 1111 and more text after it"
    out = scrubber.scrub_value(text)
    assert len(out) <= 64
    assert out.endswith("…[TRUNCATED]")
    assert "4111" not in out
    assert scrubber.scrub_value(out) == out


def test_strings_that_grow_when_scrubbed_still_fit() -> None:
    scrubber = Scrubber(max_string=40)
    text = " ".join(["a@b.co"] * 6)  # 41 characters that become longer markers
    out = scrubber.scrub_value(text)
    assert len(out) <= 40
    assert "a@b.co" not in out
    assert scrubber.scrub_value(out) == out


def test_input_is_not_modified() -> None:
    value = {"password": "pw", "list": [1, {"email": "a@b.example"}]}
    snapshot = json.dumps(value)
    SCRUB.scrub_value(value)
    assert json.dumps(value) == snapshot


def test_huge_integers_do_not_raise() -> None:
    out = SCRUB.scrub_value(10**5000)
    assert isinstance(out, str)
    assert out.startswith("<int of") or len(out) <= 8192


@pytest.mark.parametrize(
    "value", [object(), type, len, lambda: None, iter([1]), Exception("a@b.example")]
)
def test_anything_is_accepted(value: object) -> None:
    out = SCRUB.scrub_value(value)
    assert isinstance(out, str)
    assert "a@b.example" not in out


def test_set_order_does_not_depend_on_hashing() -> None:
    assert SCRUB.scrub_value({"b", "a", 3, 1}) == [1, 3, "a", "b"]
