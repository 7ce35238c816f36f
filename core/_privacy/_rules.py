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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from errwire._privacy._keys import KeyPolicy
from errwire._privacy._markers import CUSTOM, marker, normalize_kind

__all__ = ["Context", "HostMode", "Rule", "TextRule", "compile_user_rules"]

HostMode = Literal["category", "hash"]


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
