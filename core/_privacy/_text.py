"""The text engine: built-in rules in a fixed order, behind cheap pre-checks.

Order matters because a rule's marker must be in place before a later rule could
see a piece of the same secret: whole private key blocks first, then URLs (whose
user info would otherwise look like an email), vendor tokens and JWTs before the
generic ``Bearer``/``key=value`` rules (so the specific marker wins), key/value
pairs before emails and numbers, cards and IBANs before phone numbers, MACs
before IPv6, and random-looking strings last. User rules run before all of them.

A replacement can expose a match that was not there before (``a@b.co-----BEGIN
...`` only ends the address once the key block is a marker), so the rules run
again over their own output until nothing changes (at most four passes; text
without secrets takes one, text with secrets usually two). That is also what
makes scrubbing idempotent by construction: the last pass changed nothing.

A failure inside a rule fails closed: the whole text becomes ``[SCRUB-ERROR]``
and the error is recorded; scrubbing never raises and never lets text through
unscrubbed.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Sequence

from errwire._internal import internal_error
from errwire._privacy._keyvalue import scrub_key_values
from errwire._privacy._markers import SCRUB_ERROR, marker
from errwire._privacy._paths import scrub_home_dirs
from errwire._privacy._personal import (
    scrub_cards,
    scrub_emails,
    scrub_ibans,
    scrub_ipv4,
    scrub_ipv6,
    scrub_macs,
    scrub_phones,
)
from errwire._privacy._rules import Context, TextRule
from errwire._privacy._secrets import (
    scrub_auth_schemes,
    scrub_jwts,
    scrub_known_tokens,
    scrub_private_keys,
    scrub_random_tokens,
)
from errwire._privacy._urls import scrub_urls

__all__ = ["BUILTIN_RULES", "TextScrubber"]

_has_digit = re.compile(r"[0-9]").search


def _has_digits(text: str) -> bool:
    return _has_digit(text) is not None


BUILTIN_RULES: tuple[TextRule, ...] = (
    TextRule("private-key", scrub_private_keys, lambda t: "PRIVATE KEY" in t),
    TextRule("url", scrub_urls, lambda t: "://" in t),
    TextRule("jwt", scrub_jwts, lambda t: "eyJ" in t),
    TextRule("known-token", scrub_known_tokens),
    TextRule("auth-scheme", scrub_auth_schemes),
    TextRule("key-value", scrub_key_values, lambda t: "=" in t or ":" in t or "--" in t),
    TextRule("email", scrub_emails, lambda t: "@" in t or "%40" in t),
    TextRule("iban", scrub_ibans, _has_digits),
    TextRule("card", scrub_cards, _has_digits),
    TextRule("mac", scrub_macs, lambda t: ":" in t or "-" in t or "." in t),
    TextRule("ipv6", scrub_ipv6, lambda t: "::" in t or t.count(":") >= 6),
    TextRule("ipv4", scrub_ipv4, lambda t: "." in t),
    TextRule("phone", scrub_phones, _has_digits),
    TextRule("home", scrub_home_dirs, lambda t: "/home/" in t or "Users" in t),
    TextRule("random-token", scrub_random_tokens),
)


_MAX_PASSES = 4
_CACHED_LENGTH = 256
_CACHE_ENTRIES = 4096


class TextScrubber:
    """Runs user rules, then the built-in ones, over a string.

    Short texts repeat (frame paths, tag values, dict keys, header values), so their
    results are cached with the redactions they made; a hit replays those counts.
    """

    __slots__ = ("_bump", "_cache", "_ctx", "_local", "_rules")

    def __init__(self, ctx: Context, user_rules: Sequence[TextRule] = ()) -> None:
        self._bump = ctx.bump
        self._local = threading.local()
        self._ctx = dataclasses.replace(ctx, bump=self._record)
        self._rules: tuple[TextRule, ...] = (*user_rules, *BUILTIN_RULES)
        self._cache: dict[tuple[tuple[str, ...], str], tuple[str, tuple[str, ...]]] = {}

    def _record(self, kind: str) -> None:
        self._bump(kind)
        kinds: list[str] | None = getattr(self._local, "kinds", None)
        if kinds is not None:
            kinds.append(kind)

    def scrub(self, text: str, skip: tuple[str, ...] = ()) -> str:
        if not text:
            return text
        if len(text) > _CACHED_LENGTH:
            return self._scrub(text, skip)
        key = (skip, text)
        hit = self._cache.get(key)
        if hit is not None:
            for kind in hit[1]:
                self._bump(kind)
            return hit[0]
        kinds: list[str] = []
        self._local.kinds = kinds
        try:
            out = self._scrub(text, skip)
        finally:
            self._local.kinds = None
        if SCRUB_ERROR not in kinds:
            if len(self._cache) >= _CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = (out, tuple(kinds))
        return out

    def _scrub(self, text: str, skip: tuple[str, ...]) -> str:
        try:
            for _ in range(_MAX_PASSES):
                scrubbed = self._pass(text, skip)
                if scrubbed == text:
                    break
                text = scrubbed
        except Exception as exc:
            self._ctx.bump(SCRUB_ERROR)
            internal_error("privacy.scrub_text", exc)
            return marker(SCRUB_ERROR)
        return text

    def _pass(self, text: str, skip: tuple[str, ...]) -> str:
        ctx = self._ctx
        for rule in self._rules:
            if skip and rule.name in skip:
                continue
            trigger = rule.trigger
            if trigger is None or trigger(text):
                text = rule.apply(text, ctx)
        return text
