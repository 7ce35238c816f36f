"""The text engine: built-in rules in a fixed order, behind cheap pre-checks.

Order matters because a rule's marker must be in place before a later rule could
see a piece of the same secret: whole private key blocks first, then URLs (whose
user info would otherwise look like an email), vendor tokens and JWTs before the
generic ``Bearer``/``key=value`` rules (so the specific marker wins), key/value
pairs before emails and numbers, cards and IBANs before phone numbers, MACs
before IPv6, and random-looking strings last. User rules run before all of them.

A replacement can expose a match that was not there before (``a@b.co-----BEGIN
...`` only ends the address once the key block is a marker), so the rules run
again over their own output until nothing changes (text without secrets takes
one pass, text with secrets usually two). That is also what makes scrubbing
idempotent by construction: the last pass changed nothing. Text that still changes
after 16 passes (4 beyond 4096 characters) becomes ``[SCRUB-ERROR]``: it is not
known to be clean, so it fails closed.

Speed (scrubbing holds the GIL on the worker thread): each rule has a trigger, a
necessary condition for it to match that costs far less than its pattern (a
substring test, or one scan shared by several rules), so clean text skips most
patterns. Within the passes, a rule is not run again on the very text it already
left unchanged: that is what the full pass would find, so the output, the counts
and the idempotence argument are those of running every rule in every pass.

A failure inside a rule fails closed: the whole text becomes ``[SCRUB-ERROR]``
and the error is recorded; scrubbing never raises and never lets text through
unscrubbed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from errwire._internal import internal_error
from errwire._privacy._keyvalue import may_have_key_values, scrub_key_values
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
from errwire._privacy._rules import Context, Tally, TextRule
from errwire._privacy._secrets import (
    scrub_auth_schemes,
    scrub_jwts,
    scrub_known_tokens,
    scrub_private_keys,
    scrub_random_tokens,
)
from errwire._privacy._urls import scrub_urls

__all__ = ["BUILTIN_RULES", "TextScrubber"]

_A = re.ASCII


def _remembered(check: Callable[[str], bool]) -> Callable[[str], bool]:
    """``check``, remembering its answer for the last text it saw: one pre-scan serves
    every rule that shares it, until a rule changes the text. (The remembered pair is
    one tuple, read and replaced whole, so threads cannot see half of it.)"""
    last: tuple[object, bool] = (object(), False)

    def remembered(text: str) -> bool:
        nonlocal last
        seen = last
        if seen[0] is text:
            return seen[1]
        answer = check(text)
        last = (text, answer)
        return answer

    return remembered


# Every vendor token but Slack's (whose shortest form, ``xoxb-`` and 10 more, is 15
# characters) and every random-looking string has a run of 16+ of these characters,
# which starts the text or follows one that is not among them. (Slack tokens and
# Argon2 hashes are found by their prefixes. Demanding 16, not 15, keeps markers such
# as ``[URL-CREDENTIALS]`` from setting the scan off again in the second pass.)
# Starting the scan at the character before the run keeps the engine from re-reading
# every word at every letter.
_TOKEN_RUN = re.compile(r"[^A-Za-z0-9_$./+-][A-Za-z0-9_$./+-]{16}", _A)
_TOKEN_RUN_START = re.compile(r"[A-Za-z0-9_$./+-]{16}", _A)


@_remembered
def _token_run(text: str) -> bool:
    return _TOKEN_RUN_START.match(text) is not None or _TOKEN_RUN.search(text) is not None


def _known_token_trigger(text: str) -> bool:
    return _token_run(text) or "xox" in text or "$argon2" in text


# What the number-shaped rules need, in one scan (a shared first character, then
# the branch picked by it: an alternation at the top would be tried at every
# position): a digit and 7 more digits or separators (every phone number has 8+
# digits at most 3 separators apart, every card 13+), an IBAN's country code and
# check digits, and after a ``.``, ``:`` or ``-`` a MAC's ``hh:``/``hh-``/``hhhh.``
# or the rest of a dotted quad (``.b.c.d``).
_NUMERIC = re.compile(
    r"[0-9A-Z.:-](?:"
    r"(?<=[0-9])[0-9 ().+-]{7}"
    r"|(?<=[A-Z])[A-Z][0-9]{2}"
    r"|(?<=[.:-])(?:[0-9A-Fa-f]{2}[:-]|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]|[0-9A-Fa-f]{4}\.)"
    r")",
    _A,
)
_numeric = _remembered(lambda text: _NUMERIC.search(text) is not None)
# Each rule's own part of that scan, for when it found something (the digits of an
# address also start a possible card: both would otherwise run every rule).
_DOTTED_QUAD = re.compile(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]", _A)
_IBAN_START = re.compile(r"[A-Z][A-Z][0-9]{2}", _A)
_MAC_GROUP = re.compile(r"[:.-](?:(?<=[:-])[0-9A-Fa-f]{2}[:-]|(?<=\.)[0-9A-Fa-f]{4}\.)", _A)


def _ipv4_trigger(text: str) -> bool:
    return _numeric(text) and _DOTTED_QUAD.search(text) is not None


def _iban_trigger(text: str) -> bool:
    return _numeric(text) and _IBAN_START.search(text) is not None


def _mac_trigger(text: str) -> bool:
    return _numeric(text) and _MAC_GROUP.search(text) is not None


# An address has a local-part character right before its ``@`` (or ``%40``) and a
# domain character right after it (``[URL-CREDENTIALS]@host`` has not). Literal
# first: found at C speed.
_EMAIL_AT = re.compile(r"@(?<=[A-Za-z0-9._%+-]@)[A-Za-z0-9\[-]", _A)
_EMAIL_PERCENT = re.compile(r"%40(?<=[A-Za-z0-9._%+-]%40)[A-Za-z0-9\[-]", _A)


def _email_trigger(text: str) -> bool:
    return ("@" in text and _EMAIL_AT.search(text) is not None) or (
        "%40" in text and _EMAIL_PERCENT.search(text) is not None
    )


def _auth_scheme_trigger(text: str) -> bool:
    """The scheme words of ``_secrets.scrub_auth_schemes`` (and ``Digest``), in any case:
    a few substring tests cost less than its pattern, which stops at every B, T, A..."""
    t = text.lower()
    return (
        "bearer" in t
        or "basic" in t
        or "token" in t
        or "bot" in t
        or "api" in t
        or "oauth" in t
        or "jwt" in t
        or "negotiate" in t
        or "ntlm" in t
        or "digest" in t
    )


BUILTIN_RULES: tuple[TextRule, ...] = (
    TextRule("private-key", scrub_private_keys, lambda t: "PRIVATE KEY" in t),
    TextRule("url", scrub_urls, lambda t: "://" in t),
    TextRule("jwt", scrub_jwts, lambda t: "eyJ" in t),
    TextRule("known-token", scrub_known_tokens, _known_token_trigger),
    TextRule("auth-scheme", scrub_auth_schemes, _auth_scheme_trigger),
    TextRule("key-value", scrub_key_values, may_have_key_values),
    TextRule("email", scrub_emails, _email_trigger),
    TextRule("iban", scrub_ibans, _iban_trigger),
    TextRule("card", scrub_cards, _numeric),
    TextRule("mac", scrub_macs, _mac_trigger),
    TextRule("ipv6", scrub_ipv6, lambda t: "::" in t or t.count(":") >= 6),
    TextRule("ipv4", scrub_ipv4, _ipv4_trigger),
    TextRule("phone", scrub_phones, _numeric),
    TextRule("home", scrub_home_dirs, lambda t: "/home/" in t or "Users" in t or "Settings" in t),
    TextRule("random-token", scrub_random_tokens, _token_run),
)

# Passes before giving up: text that still changes after them (a chain of phone
# numbers glued together is redacted one per pass) fails closed instead of leaving
# with a match still in it. Short text may take many; long text pays per pass.
_MAX_PASSES = 16
_MAX_PASSES_LONG = 4
_LONG = 4096
_CACHED_LENGTH = 256
_CACHE_ENTRIES = 4096

_Plan = tuple[
    tuple[Callable[[str, Context], str], ...],  # user rules: always run
    tuple[tuple[Callable[[str, Context], str], Callable[[str], bool] | None], ...],  # built-in
]


def _quiet(text: str) -> bool:
    """True when no built-in rule's trigger fires: the common case of text with nothing
    to redact, answered without a call per rule. (The triggers, inline.)"""
    if (
        "@" in text
        or "://" in text
        or "eyJ" in text
        or "%40" in text
        or "::" in text
        or "PRIVATE KEY" in text
        or "xox" in text
        or "$argon2" in text
        or "/home/" in text
        or "Users" in text
        or "Settings" in text
    ):
        return False
    return not (
        _token_run(text)
        or _numeric(text)
        or text.count(":") >= 6
        or _auth_scheme_trigger(text)
        or may_have_key_values(text)
    )


class TextScrubber:
    """Runs user rules, then the built-in ones, over a string.

    Short texts repeat (frame paths, tag values, dict keys, header values), so their
    results are cached with the redactions they made; a hit replays those counts.
    ``cache`` (texts scrubbed with no rule skipped) is read directly by the value
    scrubber, whose strings are mostly such hits.
    """

    __slots__ = ("_caches", "_ctx", "_plans", "_rules", "cache", "tally")

    def __init__(self, ctx: Context, tally: Tally, user_rules: Sequence[TextRule] = ()) -> None:
        self._ctx = ctx
        self.tally = tally
        self._rules: tuple[TextRule, ...] = (*user_rules, *BUILTIN_RULES)
        self.cache: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._caches: dict[tuple[str, ...], dict[str, tuple[str, tuple[str, ...]]]] = {
            (): self.cache
        }
        self._plans: dict[tuple[str, ...], _Plan] = {}

    def scrub(self, text: str, skip: tuple[str, ...] = ()) -> str:
        if not text:
            return text
        if len(text) > _CACHED_LENGTH:
            return self._scrub(text, skip)
        cache = self.cache if not skip else self._caches.get(skip)
        if cache is None:
            cache = self._caches.setdefault(skip, {})
        hit = cache.get(text)
        if hit is not None:
            if hit[1]:
                self.tally.replay(hit[1])
            return hit[0]
        out, kinds = self.tally.record(self._scrub, text, skip)
        if SCRUB_ERROR not in kinds:
            if len(cache) >= _CACHE_ENTRIES:
                cache.clear()
            cache[text] = (out, kinds)
        return out

    def _plan(self, skip: tuple[str, ...]) -> _Plan:
        plan = self._plans.get(skip)
        if plan is None:
            rules = [r for r in self._rules if r.name not in skip]
            plan = (
                tuple(r.apply for r in rules if r not in BUILTIN_RULES),
                tuple((r.apply, r.trigger) for r in rules if r in BUILTIN_RULES),
            )
            self._plans[skip] = plan
        return plan

    def _scrub(self, text: str, skip: tuple[str, ...]) -> str:
        ctx = self._ctx
        user, builtin = self._plan(skip)
        # done[i] is the text built-in rule i last left as it was: running it on that
        # text again would change nothing and count nothing (no built-in rule counts
        # a redaction without making one), so it is skipped. (User rules always run.)
        done: list[str | None] = [None] * len(builtin)
        quiet: str | None = None  # the last text on which no built-in trigger fired
        try:
            for _ in range(_MAX_PASSES if len(text) <= _LONG else _MAX_PASSES_LONG):
                before = text
                for apply in user:
                    text = apply(text, ctx)
                if quiet is not text and not _quiet(text):
                    for i, (apply, trigger) in enumerate(builtin):
                        if done[i] is text:
                            continue
                        if trigger is None or trigger(text):
                            out = apply(text, ctx)
                            if out != text:
                                text = out
                                continue
                        done[i] = text
                else:
                    quiet = text
                if text == before:
                    return text
        except Exception as exc:
            self._ctx.bump(SCRUB_ERROR)
            internal_error("privacy.scrub_text", exc)
            return marker(SCRUB_ERROR)
        self._ctx.bump(SCRUB_ERROR)  # still changing: not known to be clean
        return marker(SCRUB_ERROR)
