"""What a text rule is, the context rules share, and the rules users add.

Users add rules as ``(regex, kind)`` pairs, ``Rule`` objects or callables. A regex
rule replaces each match with ``[KIND]``, or only its ``value`` group when the
pattern has one (``r"order=(?P<value>\\w+)"`` keeps ``order=``). A callable gets
the text and returns the scrubbed text. User rules run before the built-in ones,
so their markers are in place before anything else looks at the text. Their
regular expressions are the user's responsibility: errwire cannot prove that an
arbitrary pattern runs in linear time.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from errwire._privacy._keys import KeyPolicy
from errwire._privacy._markers import CUSTOM, marker, normalize_kind

_T = TypeVar("_T")

__all__ = [
    "Context",
    "HostMode",
    "Rule",
    "Tally",
    "TextRule",
    "compile_user_rules",
    "sub_near",
]

HostMode = Literal["category", "hash"]


class _Recordings(threading.local):
    """Per thread: the recordings open on it, innermost last (always present, so that
    reading it never takes the slow path of a missing attribute)."""

    def __init__(self) -> None:
        self.open: list[list[str]] = []


class Tally:
    """The redaction counter, with recordings for caches.

    While a recording is open on a thread, every kind bumped on that thread is also
    appended to it: a cache stores what computing a value redacted and replays it on
    a hit, so ``counts()`` is the same whether or not the cache answered. Recordings
    nest (a cached frame holds cached texts): closing one hands its kinds on to the
    one around it.
    """

    __slots__ = ("_counter", "_counters", "_local")

    def __init__(self, counter: Callable[[str], Callable[[], object]]) -> None:
        self._counter = counter  # kind -> its counter's bump (made on first use)
        self._counters: dict[str, Callable[[], object]] = {}
        self._local = _Recordings()

    def bump(self, kind: str) -> None:
        count = self._counters.get(kind)
        if count is None:
            count = self._counters[kind] = self._counter(kind)
        count()
        recording = self._local.open
        if recording:
            recording[-1].append(kind)

    def replay(self, kinds: tuple[str, ...]) -> None:
        """``bump(kind)`` for each of ``kinds`` (a cache hit's redactions), in one call."""
        counters = self._counters
        for kind in kinds:
            count = counters.get(kind)
            if count is None:
                count = counters[kind] = self._counter(kind)
            count()
        recording = self._local.open
        if recording:
            recording[-1].extend(kinds)

    def start(self) -> None:
        """Open a recording; every ``start`` must be paired with a ``stop`` (``finally``)."""
        self._local.open.append([])

    def stop(self) -> tuple[str, ...]:
        """Close the innermost recording: the kinds bumped since its ``start``."""
        recording = self._local.open
        kinds = recording.pop()
        if recording:
            recording[-1].extend(kinds)
        return tuple(kinds)

    def record(self, fn: Callable[..., _T], *args: Any) -> tuple[_T, tuple[str, ...]]:
        """``fn(*args)`` inside a recording: its answer and the kinds it redacted (what
        a cache keeps beside the answer, to ``replay`` on a hit)."""
        self.start()
        try:
            out = fn(*args)
        finally:
            kinds = self.stop()
        return out, kinds


@dataclass(frozen=True, slots=True)
class Context:
    """What rules need besides the text: options and the redaction counter."""

    bump: Callable[[str], None]
    keys: KeyPolicy
    host_mode: HostMode = "category"


@dataclass(frozen=True, slots=True)
class TextRule:
    """One step of text scrubbing. ``trigger`` is a cheap pre-check: when it says no,
    the rule cannot match and its (slower) pattern is not run."""

    name: str
    apply: Callable[[str, Context], str]
    trigger: Callable[[str], bool] | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A user rule: every match of ``pattern`` becomes ``[KIND]`` (or only the
    ``value`` group of the match, when the pattern has one)."""

    pattern: str | re.Pattern[str]
    kind: str


def compile_user_rules(specs: object) -> list[TextRule]:
    """Validate user rules at construction, so a bad pattern fails at configuration time."""
    if isinstance(specs, str | bytes) or not isinstance(specs, Sequence):
        raise TypeError("extra_rules must be a list or tuple of rules")
    rules: list[TextRule] = []
    for i, spec in enumerate(specs):
        if isinstance(spec, Rule):
            rules.append(_regex_rule(i, spec.pattern, spec.kind))
        elif isinstance(spec, tuple):
            if len(spec) != 2:
                raise ValueError(f"extra_rules[{i}] must be (regex, kind); got {spec!r}")
            rules.append(_regex_rule(i, spec[0], spec[1]))
        elif callable(spec):
            rules.append(TextRule(f"user-{i}", _callable_apply(spec)))
        else:
            raise TypeError(
                f"extra_rules[{i}] must be a Rule, (regex, kind) or callable; got {spec!r}"
            )
    return rules


def _regex_rule(index: int, pattern: object, kind: object) -> TextRule:
    if isinstance(pattern, str):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"extra_rules[{index}] has an invalid regex {pattern!r}: {exc}"
            ) from None
    elif isinstance(pattern, re.Pattern) and isinstance(pattern.pattern, str):
        compiled = pattern
    else:
        raise TypeError(f"extra_rules[{index}] pattern must be a str regex; got {pattern!r}")
    name = normalize_kind(kind)
    text = marker(name)
    has_value = "value" in compiled.groupindex

    def replace(m: re.Match[str], ctx: Context) -> str:
        whole = m.group(0)
        if has_value and m.start("value") >= 0:
            if m.group("value") in ("", text):
                return whole
            ctx.bump(name)
            s, e = m.start("value") - m.start(), m.end("value") - m.start()
            return whole[:s] + text + whole[e:]
        if whole in ("", text):
            return whole
        ctx.bump(name)
        return text

    def apply(s: str, ctx: Context) -> str:
        return compiled.sub(lambda m: replace(m, ctx), s)

    return TextRule(f"user-{index}-{name}", apply)


def _callable_apply(fn: Callable[[str], str]) -> Callable[[str, Context], str]:
    def apply(s: str, ctx: Context) -> str:
        out = fn(s)
        if not isinstance(out, str):
            raise TypeError(f"a scrubbing callable returned {type(out).__name__}, not str")
        if out != s:
            ctx.bump(CUSTOM)
        return out

    return apply


def sub_near(
    pattern: re.Pattern[str],
    text: str,
    anchors: tuple[str, ...],
    reach: int,
    replace: Callable[[re.Match[str]], str],
) -> str:
    """``pattern.sub(replace, text)``, for a pattern whose every match holds one of
    ``anchors`` at most ``reach`` characters after the match's start.

    The engine scans for a pattern that starts with a character class one character
    at a time; a literal anchor is found at C speed. So the search starts just before
    each anchor instead of at the start of the text. It finds the same leftmost,
    non-overlapping matches: no match can start more than ``reach`` before the first
    anchor at or after it (the search still sees the text before where it starts,
    for look-behinds)."""
    out: list[str] = []
    copied = 0  # text[:copied] is in out already
    at = 0  # no match starts before this
    while True:
        anchor = -1
        for a in anchors:
            i = text.find(a, at)
            if i >= 0 and (anchor < 0 or i < anchor):
                anchor = i
        if anchor < 0:
            break
        m = pattern.search(text, max(at, anchor - reach))
        if m is None:
            break
        out.append(text[copied : m.start()])
        out.append(replace(m))
        copied = at = m.end()
    if not out:
        return text
    out.append(text[copied:])
    return "".join(out)
