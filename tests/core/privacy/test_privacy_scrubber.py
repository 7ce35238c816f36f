"""The ``Scrubber`` object: options, user rules, URLs by host mode, counts, thread safety."""

from __future__ import annotations

import re
import threading

import pytest

from errwire._privacy import KINDS, Rule, Scrubber

# ---------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgres://admin:hunter2@db.internal:5432/app",
            "postgres://[URL-CREDENTIALS]@db.internal:5432/app",
        ),
        ("postgresql://u:p@10.0.0.5/app", "postgresql://[URL-CREDENTIALS]@[PRIVATE-IP]/app"),
        ("mysql://root@localhost:3306/x", "mysql://[URL-CREDENTIALS]@[LOCALHOST]:3306/x"),
        ("redis://:p#ss@127.0.0.1:6379/0", "redis://[URL-CREDENTIALS]@[LOCALHOST]:6379/0"),
        (
            "rediss://default:pw@cache.example.com:6380",
            "rediss://[URL-CREDENTIALS]@cache.example.com:6380",
        ),
        (
            "mongodb+srv://u:p@cluster0.example.net/db?retryWrites=true",
            "mongodb+srv://[URL-CREDENTIALS]@cluster0.example.net/db?retryWrites=[REDACTED]",
        ),
        ("amqps://guest:guest@8.8.8.8/vhost", "amqps://[URL-CREDENTIALS]@[PUBLIC-IP]/vhost"),
        (
            "amqp://u:p@203.0.113.7/v",
            "amqp://[URL-CREDENTIALS]@[PRIVATE-IP]/v",
        ),  # documentation range: not global
        ("mqtt://user:pw@[::1]:1883", "mqtt://[URL-CREDENTIALS]@[LOCALHOST]:1883"),
        (
            "rtsp://admin:12345@192.168.1.64:554/stream",
            "rtsp://[URL-CREDENTIALS]@[PRIVATE-IP]:554/stream",
        ),
        ("rtmp://live.example.com/app/Zk39aBqR7tLmN2pXw8Yc", "rtmp://live.example.com/app/[TOKEN]"),
        ("wss://ws.example.com/socket?token=abc", "wss://ws.example.com/socket?token=[REDACTED]"),
        ("ftp://anonymous:me@ftp.example.org/pub", "ftp://[URL-CREDENTIALS]@ftp.example.org/pub"),
        ("sftp://deploy@host.example.com/", "sftp://[URL-CREDENTIALS]@host.example.com/"),
        ("ssh://git@github.com/org/repo.git", "ssh://[URL-CREDENTIALS]@github.com/org/repo.git"),
        ("smb://DOMAIN;user:pw@fileserver/share", "smb://[URL-CREDENTIALS]@fileserver/share"),
        ("custom+x://k:v@svc.local/p", "custom+x://[URL-CREDENTIALS]@svc.local/p"),
        (
            "https://example.com/a?x=1&y=&flag#frag",
            "https://example.com/a?x=[REDACTED]&y=&flag#frag",
        ),
        (
            "https://app.example.com/cb#access_token=abc&state=xyz",
            "https://app.example.com/cb#access_token=[REDACTED]&state=[REDACTED]",
        ),
        (
            "https://example.com/items/550e8400-e29b-41d4-a716-446655440000/files/123456.pdf",
            "https://example.com/items/[ID]/files/[ID].pdf",
        ),
        ("https://example.com/commit/9f86d081884c7d659a2f", "https://example.com/commit/[ID]"),
        ("see (https://example.com/docs).", "see (https://example.com/docs)."),
        ("https://host?email=a@b.example", "https://host?email=[REDACTED]"),
        ("http://[2001:db8::1]:8080/x", "http://[PRIVATE-IP]:8080/x"),
        ("http://0.0.0.0:8000/", "http://[LOCALHOST]:8000/"),
    ],
)
def test_urls(text: str, expected: str) -> None:
    assert Scrubber().scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "https://docs.python.org/3/library/re.html",
        "https://example.com/items/42/",
        "https://example.com/2024/01/post-title",
        "http://api.example.com:8080/v1/users",
    ],
)
def test_urls_without_secrets_are_left_alone(text: str) -> None:
    assert Scrubber().scrub_text(text) == text


def test_hash_mode_hashes_hosts_stably() -> None:
    scrubber = Scrubber(host_mode="hash")
    a = scrubber.scrub_text(
        "https://db.internal.example.com/x and https://DB.internal.example.com/y"
    )
    hashed = re.findall(r"\[HOST-[0-9A-F]{10}\]", a)
    assert len(hashed) == 2
    assert hashed[0] == hashed[1]
    assert "internal" not in a
    assert (
        Scrubber(host_mode="hash")
        .scrub_text("https://db.internal.example.com/x")
        .startswith(f"https://{hashed[0]}/x")
    )
    assert scrubber.scrub_text("http://localhost:8000/") == "http://[LOCALHOST]:8000/"
    assert scrubber.scrub_text("http://10.0.0.5/").startswith("http://[HOST-")


# ---------------------------------------------------------------- user rules


def test_user_rules_as_pairs_rule_objects_and_callables() -> None:
    scrubber = Scrubber(
        extra_rules=[
            (r"ORD-\d{6}", "order"),
            Rule(re.compile(r"tenant=(?P<value>\w+)"), "tenant id"),
            lambda text: text.replace("Project Falcon", "[CODENAME]"),
        ]
    )
    out = scrubber.scrub_text("ORD-123456 for tenant=acme in Project Falcon by a@b.example")
    assert out == "[ORDER] for tenant=[TENANT-ID] in [CODENAME] by [EMAIL]"
    assert scrubber.scrub_text(out) == out
    counts = scrubber.counts()
    assert counts["ORDER"] == 1
    assert counts["TENANT-ID"] == 1
    assert counts["CUSTOM"] == 1


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ([("(unclosed", "x")], ValueError),
        ([("ok", "")], ValueError),
        ([("ok", "9starts-with-digit")], ValueError),
        ([("ok", "a", "b")], ValueError),
        ([42], TypeError),
        ([(b"bytes", "x")], TypeError),
        ("not a list", TypeError),
    ],
)
def test_bad_user_rules_fail_at_construction(rules: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        Scrubber(extra_rules=rules)  # type: ignore[arg-type]


def test_a_failing_user_callable_fails_closed(
    allow_internal_errors: list[tuple[str, BaseException]],
) -> None:
    def broken(text: str) -> str:
        raise RuntimeError("bug in user rule")

    scrubber = Scrubber(extra_rules=[broken])
    assert scrubber.scrub_text("a@b.example") == "[SCRUB-ERROR]"
    assert scrubber.scrub_value(["v"]) == ["[SCRUB-ERROR]"]
    assert scrubber.counts()["SCRUB-ERROR"] == 2
    assert [where for where, _ in allow_internal_errors] == ["privacy.scrub_text"] * 2


def test_a_user_callable_returning_a_non_string_fails_closed(
    allow_internal_errors: list[tuple[str, BaseException]],
) -> None:
    scrubber = Scrubber(extra_rules=[lambda text: None])  # type: ignore[list-item, return-value]
    assert scrubber.scrub_text("hello") == "[SCRUB-ERROR]"
    assert len(allow_internal_errors) == 1


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host_mode": "plain"},
        {"max_depth": 0},
        {"max_items": -1},
        {"max_string": 10},
        {"max_nodes": True},
        {"project_root": 3},
        {"allow_keys": "token"},
        {"allow_keys": [""]},
    ],
)
def test_invalid_options_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        Scrubber(**kwargs)  # type: ignore[arg-type]


def test_scrub_text_accepts_non_strings() -> None:
    assert Scrubber().scrub_text(12345) == "12345"  # type: ignore[arg-type]
    assert Scrubber().scrub_text("") == ""


# ---------------------------------------------------------------- counts


def test_counts_by_kind() -> None:
    scrubber = Scrubber()
    assert scrubber.counts() == {}
    scrubber.scrub_text("a@b.example c@d.example password=x 10.0.0.1 /home/ann/x")
    assert scrubber.counts() == {"EMAIL": 2, "REDACTED": 1, "IP": 1, "HOME": 1}


def test_scrubbing_scrubbed_text_counts_nothing_new() -> None:
    scrubber = Scrubber()
    out = scrubber.scrub_text("a@b.example token=Zk39aBqR7tLmN2pX")
    before = scrubber.counts()
    scrubber.scrub_text(out)
    assert scrubber.counts() == before


def test_counts_are_exact_under_threads() -> None:
    scrubber = Scrubber()

    def work() -> None:
        for _ in range(200):
            scrubber.scrub_text("mail a@b.example from 10.0.0.1")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert scrubber.counts() == {"EMAIL": 1600, "IP": 1600}


def test_every_marker_kind_is_a_valid_marker() -> None:
    from errwire._privacy._markers import is_marker

    assert len(set(KINDS)) == len(KINDS)
    for kind in KINDS:
        assert is_marker(f"[{kind}]")
