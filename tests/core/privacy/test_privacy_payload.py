"""``scrub_payload``: every field that can carry data is scrubbed; errwire's own fields
and code identifiers are kept; the request keeps only what is safe; input untouched."""

from __future__ import annotations

import copy
import json
from typing import Any

from errwire._privacy import Scrubber

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0.0.0 Safari/537.36"


def frame(abs_path: str, filename: str = "app/views.py") -> dict[str, Any]:
    return {
        "filename": filename,
        "abs_path": abs_path,
        "function": "get_user",
        "module": "app.views",
        "lineno": 42,
        "in_app": True,
    }


def make_payload() -> dict[str, Any]:
    return {
        "event_id": "a" * 32,
        "timestamp": 1700000000.5,
        "level": "error",
        "origin": "exception",
        "message": "login failed for alice@example.com with password=hunter2",
        "exception": {
            "type": "app.errors.LoginError",
            "value": "token Zk39aBqR7tLmN2pXw8Yc rejected from 10.0.0.5",
            "stack": [
                frame("/home/alice/proj/app/views.py"),
                frame("/usr/lib/python3.11/site-packages/django/core.py", "django/core.py"),
            ],
        },
        "chain": [
            {
                "type": "KeyError",
                "value": "card 4111 1111 1111 1111",
                "stack": [frame("/srv/app/x.py")],
                "relation": "cause",
            }
        ],
        "component": "auth",
        "category": "security",
        "priority": None,
        "context": {
            "user_email": "bob@example.com",
            "api_key": "abc",
            "attempts": 3,
            "nested": {"password": "pw", "ok": True},
        },
        "request": {
            "method": "POST",
            "route": "/users/<int:id>/reset/<token>",
            "path": "/users/123456/reset/Zk39aBqR7tLmN2pXw8Yc",
            "query": {"next": "/home", "email": "carol@example.com", "empty": ""},
            "headers": {
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json",
                "Referer": "https://example.com/login?email=carol@example.com&token=abc",
                "Host": "api.example.com",
                "Authorization": "Bearer abc.def.ghi",
                "Cookie": "sessionid=s3cret",
                "X-Forwarded-For": "203.0.113.9",
                "X-Custom-Secret": "v",
            },
            "cookies": {"sessionid": "s3cret"},
            "client": "203.0.113.9",
            "user": "42",
        },
        "fingerprint": "f" * 16,
        "repeats": 2,
        "suppressed": 0,
        "tags": {
            "component": "auth",
            "category": "security",
            "priority": "high",
            "error_origin": "exception",
            "who": "dan@example.com",
        },
        "release": "1.2.3.4",
        "environment": "production",
        "server_name": "web-1",
        "runtime": {"pid": 123, "runtime_id": "r1"},
        "breadcrumbs": [{"message": "GET /x?token=abc", "data": {"password": "pw"}}],
    }


SECRETS = [
    "alice@example.com",
    "hunter2",
    "Zk39aBqR7tLmN2pXw8Yc",
    "10.0.0.5",
    "4111 1111 1111 1111",
    "/home/alice",
    "bob@example.com",
    "carol@example.com",
    "123456",
    "s3cret",
    "abc.def.ghi",
    "203.0.113.9",
    "dan@example.com",
]


def test_no_planted_value_survives_and_the_result_is_json() -> None:
    out = Scrubber(project_root="/home/alice/proj").scrub_payload(make_payload())
    dumped = json.dumps(out)
    for secret in SECRETS:
        assert secret not in dumped, secret


def test_fields_errwire_owns_and_code_identifiers_are_kept() -> None:
    payload = make_payload()
    out = Scrubber().scrub_payload(payload)
    for key in (
        "event_id",
        "timestamp",
        "level",
        "origin",
        "fingerprint",
        "repeats",
        "suppressed",
        "release",
        "environment",
        "server_name",
        "runtime",
        "component",
        "category",
        "priority",
    ):
        assert out[key] == payload[key], key
    assert out["exception"]["type"] == "app.errors.LoginError"
    assert out["chain"][0]["relation"] == "cause"
    for got, want in zip(out["exception"]["stack"], payload["exception"]["stack"], strict=True):
        assert (got["function"], got["module"], got["lineno"], got["in_app"]) == (
            want["function"],
            want["module"],
            want["lineno"],
            want["in_app"],
        )


def test_texts_are_scrubbed_in_place() -> None:
    out = Scrubber().scrub_payload(make_payload())
    assert out["message"] == "login failed for [EMAIL] with password=[REDACTED]"
    assert out["exception"]["value"] == "token [TOKEN] rejected from [IP]"
    assert out["chain"][0]["value"] == "card [CARD]"
    assert out["tags"]["who"] == "[EMAIL]"
    assert out["tags"]["component"] == "auth"
    assert out["breadcrumbs"] == [
        {"message": "GET /x?token=[REDACTED]", "data": {"password": "[REDACTED]"}}
    ]
    assert out["context"] == {
        "user_email": "[EMAIL]",
        "api_key": "[REDACTED]",
        "attempts": 3,
        "nested": {"password": "[REDACTED]", "ok": True},
    }


def test_frame_paths_are_relative_to_the_project_and_free_of_home_dirs() -> None:
    out = Scrubber(project_root="/home/alice/proj/").scrub_payload(make_payload())
    stack = out["exception"]["stack"]
    assert stack[0]["abs_path"] == "app/views.py"
    assert stack[0]["filename"] == "app/views.py"
    assert stack[1]["abs_path"] == "/usr/lib/python3.11/site-packages/django/core.py"
    without_root = Scrubber().scrub_payload(make_payload())["exception"]["stack"]
    assert without_root[0]["abs_path"] == "~/proj/app/views.py"


def test_request_keeps_only_what_is_safe() -> None:
    out = Scrubber().scrub_payload(make_payload())["request"]
    assert out["method"] == "POST"
    assert out["route"] == "/users/<int:id>/reset/<token>"
    assert out["path"] == "/users/[ID]/reset/[TOKEN]"
    assert out["query"] == {"next": "[REDACTED]", "email": "[REDACTED]", "empty": ""}
    assert out["headers"] == {
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "Referer": "https://example.com/login?email=[REDACTED]&token=[REDACTED]",
        "Host": "api.example.com",
    }
    assert "cookies" not in out
    # the client address is anonymised and the user id hashed (stable, not reversible)
    assert out["client"] == "203.0.113.0"
    assert out["user"].startswith("user-") and out["user"].removeprefix("user-") != "42"
    again = Scrubber().scrub_payload({**make_payload(), "request": out})["request"]
    assert (again["client"], again["user"]) == (out["client"], out["user"])  # idempotent


def test_request_path_is_not_mistaken_for_a_home_directory() -> None:
    payload = make_payload()
    payload["request"]["path"] = "/home/dashboard"
    assert Scrubber().scrub_payload(payload)["request"]["path"] == "/home/dashboard"


def test_send_default_pii_keeps_client_and_user_only() -> None:
    out = Scrubber(send_default_pii=True).scrub_payload(make_payload())
    assert out["request"]["client"] == "203.0.113.9"
    assert out["request"]["user"] == "42"
    assert "cookies" not in out["request"]
    assert "Authorization" not in out["request"]["headers"]
    assert out["message"] == "login failed for [EMAIL] with password=[REDACTED]"


def test_allow_keys_can_keep_an_extra_header_but_never_credentials() -> None:
    scrubber = Scrubber(allow_keys=["X-Forwarded-For", "Cookie", "Authorization"])
    headers = scrubber.scrub_payload(make_payload())["request"]["headers"]
    assert headers["X-Forwarded-For"] == "[IP]"
    assert "Cookie" not in headers
    assert "Authorization" not in headers


def test_query_as_a_string_and_header_pairs() -> None:
    payload = make_payload()
    payload["request"]["query"] = "?a=1&b=&flag&c=x@y.example"
    payload["request"]["headers"] = [
        ["user-agent", "curl/8.0"],
        ["authorization", "Basic x"],
        "junk",
    ]
    out = Scrubber().scrub_payload(payload)["request"]
    assert out["query"] == "a=[REDACTED]&b=&flag&c=[REDACTED]"
    assert out["headers"] == {"user-agent": "curl/8.0"}


def test_unknown_fields_are_scrubbed_not_copied() -> None:
    payload = make_payload()
    payload["extra"] = {"note": "eve@example.com", "secret": "x"}
    payload["request"]["body"] = {"password": "pw", "text": "call +1 555 123 4567"}
    out = Scrubber().scrub_payload(payload)
    assert out["extra"] == {"note": "[EMAIL]", "secret": "[REDACTED]"}
    assert out["request"]["body"] == {"password": "[REDACTED]", "text": "call [PHONE]"}


def test_the_input_is_not_modified() -> None:
    payload = make_payload()
    before = copy.deepcopy(payload)
    out = Scrubber().scrub_payload(payload)
    assert payload == before
    assert out is not payload
    assert out["context"] is not payload["context"]


def test_scrubbing_a_payload_twice_changes_nothing() -> None:
    scrubber = Scrubber(project_root="/home/alice/proj")
    once = scrubber.scrub_payload(make_payload())
    assert scrubber.scrub_payload(once) == once


def test_missing_and_empty_fields() -> None:
    out = Scrubber().scrub_payload(
        {"event_id": "e", "message": "", "exception": None, "request": None, "chain": []}
    )
    assert out == {"event_id": "e", "message": "", "exception": None, "request": None, "chain": []}


def test_malformed_parts_are_scrubbed_as_values() -> None:
    payload: dict[str, Any] = {
        "exception": "a@b.example",
        "chain": [7, {"value": 5}],
        "request": ["10.0.0.1"],
        "tags": None,
    }
    out = Scrubber().scrub_payload(payload)
    json.dumps(out)
    assert out["exception"] == "[EMAIL]"
    assert out["request"] == ["[IP]"]


def test_a_failure_fails_closed(allow_internal_errors: list[tuple[str, BaseException]]) -> None:
    class Broken(dict[str, Any]):
        def items(self) -> Any:
            raise RuntimeError("boom")

        def get(self, key: str, default: Any = None) -> Any:
            return {"event_id": "e1", "timestamp": 1.0}.get(key, default)

    out = Scrubber().scrub_payload(Broken(message="a@b.example"))
    assert out["message"] == "[SCRUB-ERROR]"
    assert out["event_id"] == "e1"
    assert "a@b.example" not in json.dumps(out)
    assert [where for where, _ in allow_internal_errors] == ["privacy.scrub_payload"]
