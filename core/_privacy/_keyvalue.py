"""Secrets written as key and value: ``password=…``, ``token: …``, JSON ``"api_key": "…"``,
``'secret': '…'`` (Python reprs), ``--password …`` (command lines), header lines
(``X-Api-Key: …``, ``Authorization: …``), and coordinates under lat/lon keys.

The key is kept and the value becomes ``[REDACTED]`` (``[GEO]`` for coordinates).
What counts as the value: a quoted string, a flat ``[...]`` list, the rest of the
line for a header line (a line that starts with a hyphenated or auth/cookie header
name), otherwise one whitespace-delimited token (``&`` and ``;`` end it, trailing
punctuation stays). Decisions:

* ``key: word`` in prose (``Invalid token: expired``) is left alone when the value
  is one plain word and the key is not password-like; ``=``, quotes and header
  lines always redact. Empty, null/none/true/false values are kept: nothing to hide.
* Coordinates are redacted only under a lat/lon/latitude/longitude/lng key, or a
  pair under latlng/coords/coordinates/geo/gps/location; a bare pair of numbers is
  never touched.
"""

from __future__ import annotations

import re

from errwire._privacy._keys import GEO_SINGLE, SECRET, is_strong_secret_key, notable_key
from errwire._privacy._markers import GEO, REDACTED, is_marker, marker
from errwire._privacy._rules import Context

__all__ = ["may_have_key_values", "scrub_key_values"]

_A = re.ASCII
_KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
_MAX_KEY = 64
# Separators are found first (a fast scan: they are rare in prose) and the key is
# read backwards from each one; a key must end right before its separator.
_SEP = re.compile(
    r"[ \t=:](?<=[A-Za-z0-9_.\"'-].)"
    r"(?:(?<==)(?:>|(?![=>]))|(?<=:)(?:=|(?![:/\\]))"
    r"|(?<=[ \t])[ \t]{0,3}(?:=>|:=|=(?![=>])|:(?![:/\\])))[ \t]{0,4}",
    _A | re.DOTALL,
)
# Where to look for _SEP: its match always holds a ``=`` or ``:`` right after the key
# (or after up to 4 blanks after it). Scanning for those characters alone is far
# cheaper than trying _SEP at every blank of the text.
_SEP_CHAR = re.compile(r"[=:](?<=[A-Za-z0-9_.\"' \t-].)", _A | re.DOTALL)
# Command-line flags: ``--password hunter2`` (a space is a separator only after --flag).
_FLAG = re.compile(
    r"-(?<![A-Za-z0-9_.-].)-(?P<key>[A-Za-z][A-Za-z0-9_.-]{0,63})[ \t]{1,4}(?=[^\s-])",
    _A | re.DOTALL,
)
_DQ = re.compile(r"\"((?:[^\"\\\r\n]|\\.){0,4096})(\"?)", _A)
_SQ = re.compile(r"'((?:[^'\\\r\n]|\\.){0,4096})('?)", _A)
_ARRAY = re.compile(r"\[[^\[\]\r\n]{0,4096}\]", _A)
_BARE = re.compile(r"[^\s\"'&;<>]{1,4096}", _A)
_REST_OF_LINE = re.compile(r"[^\r\n]{1,8192}", _A)
_SCHEME_ARG = re.compile(r"[ \t]{1,4}[^\s\"'&;<>]{1,4096}", _A)
_PLAIN_WORD = re.compile(r"[A-Za-z][a-z]{0,11}", _A)
_NUMBER = re.compile(r"([\"']?)(-?[0-9]{1,3}\.[0-9]{1,15})\1(?![0-9.])", _A)
_PAIR = re.compile(
    r"([\"'(\[]?[ \t]{0,2})(-?[0-9]{1,3}\.[0-9]{1,15})[ \t]{0,2},[ \t]{0,3}"
    r"(-?[0-9]{1,3}\.[0-9]{1,15})(?![0-9.])([ \t]{0,2}[\"')\]]?)",
    _A,
)

_NULLISH = frozenset(["null", "none", "nil", "undefined", "true", "false"])
_SCHEMES = frozenset(
    [
        "bearer",
        "basic",
        "token",
        "digest",
        "bot",
        "apikey",
        "api-key",
        "oauth",
        "jwt",
        "negotiate",
        "ntlm",
    ]
)
_HEADER_KEYS = frozenset(["authorization", "proxy-authorization", "cookie", "set-cookie"])
_TRAILING = ".,;:)]}"
_MARKER_AT_END = re.compile(r"\[[A-Z][A-Z0-9-]{0,80}\]$", _A)


# A separator and the key before it, in the reversed text: one C call collects every
# key. (One pattern per separator: a pattern that starts with one literal character
# is scanned for many times faster than one that starts with a class.)
_KEY_BEFORE_COLON = re.compile(r":[ \t]{0,4}[\"']?([A-Za-z0-9_.-]{1,64})", _A)
_KEY_BEFORE_EQUALS = re.compile(r"=[ \t]{0,4}[\"']?([A-Za-z0-9_.-]{1,64})", _A)


def may_have_key_values(text: str) -> bool:
    """False only when ``scrub_key_values`` cannot change ``text``: no ``--`` flag, and
    every key before a ``=`` or ``:`` is ordinary, or names a secret or coordinates
    whose value is a marker already (the second pass over scrubbed text). (Each key
    ``scrub_key_values`` could act on ends right before such a separator, blanks or a
    quote, and is at most 64 characters: the one read here.)"""
    if "--" in text:
        return True
    colon, equals = ":" in text, "=" in text
    if not (colon or equals):
        return False
    backwards = text[::-1]
    keys: list[str] = _KEY_BEFORE_COLON.findall(backwards) if colon else []
    if equals:
        keys += _KEY_BEFORE_EQUALS.findall(backwards)
    for key in keys:
        if notable_key(key[::-1].lstrip("-")):
            return _unsettled(text, backwards, colon, equals)
    return False


def _unsettled(text: str, backwards: str, colon: bool, equals: bool) -> bool:
    """Whether a key that names a secret or coordinates has a value that is not a
    marker yet (the keys again, with where they are)."""
    last = len(text) - 1
    for pattern, present in ((_KEY_BEFORE_COLON, colon), (_KEY_BEFORE_EQUALS, equals)):
        if present:
            for m in pattern.finditer(backwards):
                key = m.group(1)[::-1]
                if notable_key(key.lstrip("-")) and not _settled(text, last - m.start(), key):
                    return True
    return False


def _settled(text: str, at: int, key: str) -> bool:
    """True when what ``scrub_key_values`` reads as the value after the separator at
    ``text[at]`` is a marker already (``[REDACTED]``, ``"[REDACTED]"``, ``[GEO]``):
    it keeps those. False whenever in doubt (a header line, ``==``, no value...)."""
    i = at + 1
    after = text[i : i + 1]
    if text[at] == "=":
        if after == ">":
            i += 1
        elif after == "=":
            return False
    elif _header_like(key):
        return False  # maybe a header line: its value is the rest of the line
    elif after == "=":
        i += 1
    elif after in (":", "/", "\\"):
        return False
    stop = i + 4
    while i < stop and text[i : i + 1] in (" ", "\t"):
        i += 1
    c = text[i : i + 1]
    if c == "[":
        array = _ARRAY.match(text, i)
        return array is not None and is_marker(array.group(0))
    if c in ('"', "'"):
        quoted = (_DQ if c == '"' else _SQ).match(text, i)
        return quoted is not None and is_marker(quoted.group(1))
    return False


def scrub_key_values(text: str, ctx: Context) -> str:
    out: list[str] = []
    pos = 0
    classify = ctx.keys.classify
    for c in _SEP_CHAR.finditer(text):
        # Where a _SEP match holding this character would start: back over blanks.
        sep_start = at = c.start()
        while at - sep_start < 4 and sep_start > 1 and text[sep_start - 1] in " \t":
            sep_start -= 1
        if sep_start < pos:
            continue  # inside a value already redacted
        quote = text[sep_start - 1]
        key_end = sep_start - 1 if quote in "\"'" else sep_start
        run = text[max(pos, key_end - _MAX_KEY) : key_end]
        key = run[len(run.rstrip(_KEY_CHARS)) :]
        if not key:
            continue
        verdict = classify(key.lstrip("-"))
        if not verdict:
            continue  # the common case: an ordinary key
        m = _SEP.match(text, sep_start)
        if m is None:
            continue
        found = _pair(text, m, key_end - len(key), key_end, verdict, ctx)
        if found is not None:
            out.append(text[pos : m.end()])
            out.append(found[0])
            pos = found[1]
    if "--" in text:
        if out:
            out.append(text[pos:])
            text, out, pos = "".join(out), [], 0
        for m in _FLAG.finditer(text):
            if m.start() < pos or not ctx.keys.is_secret(m.group("key")):
                continue
            found = _secret_value(text, m.end(), key=m.group("key"), sep=" ", header=False, ctx=ctx)
            if found is not None:
                out.append(text[pos : m.end()])
                out.append(found[0])
                pos = found[1]
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _pair(
    text: str, m: re.Match[str], key_start: int, key_end: int, verdict: int, ctx: Context
) -> tuple[str, int] | None:
    """The replacement for the value after separator ``m`` and where the value ends."""
    if key_start > 0 and text[key_start - 1] in _KEY_CHARS:
        return None  # the key is longer than any real key: not a key
    quoted = key_end != m.start()
    if quoted and (key_start == 0 or text[key_start - 1] != text[key_end]):
        return None  # "password' = x": an unbalanced quote
    key = text[key_start:key_end]
    sep = m.group(0)
    if verdict == SECRET:
        header = not quoted and ":" in sep and _at_line_start(text, key_start) and _header_like(key)
        return _secret_value(text, m.end(), key=key, sep=sep, header=header, ctx=ctx)
    if key.startswith("-"):
        return None
    return _geo_value(text, m.end(), verdict, ctx)


def _secret_value(
    text: str, i: int, *, key: str, sep: str, header: bool, ctx: Context
) -> tuple[str, int] | None:
    """The redacted value and where it ends, or None to leave it."""
    if i >= len(text):
        return None
    c = text[i]
    if header:
        line = _REST_OF_LINE.match(text, i)
        if line is None:
            return None
        value = line.group(0).rstrip()
        if _kept(value, prose=False, key=key):
            return None
        return _redacted(value, ctx), i + len(value)
    if c in "\"'":
        q = (_DQ if c == '"' else _SQ).match(text, i)
        if q is None or _kept(q.group(1), prose=False, key=key):
            return None
        ctx.bump(REDACTED)
        return c + marker(REDACTED) + q.group(2), q.end()
    if c == "[":
        arr = _ARRAY.match(text, i)
        if arr is None or is_marker(arr.group(0)):
            return None
        ctx.bump(REDACTED)
        return marker(REDACTED), arr.end()
    if c == "{":
        return None  # a nested object: its own keys are looked at one by one
    bare = _BARE.match(text, i)
    if bare is None:
        return None
    value = bare.group(0)
    end = bare.end()
    if value.lower() in _SCHEMES:
        arg = _SCHEME_ARG.match(text, end)
        if arg is not None:
            value += arg.group(0)
            end = arg.end()
    stripped = _strip_trailing(value)
    end -= len(value) - len(stripped)
    value = stripped
    prose = ":" in sep and "=" not in sep
    if _kept(value, prose=prose, key=key):
        return None
    return _redacted(value, ctx), end


def _strip_trailing(value: str) -> str:
    """Sentence punctuation after a value is not part of it; a marker's ``]`` is."""
    end = len(value)
    while end and value[end - 1] in _TRAILING:
        if value[end - 1] == "]" and _MARKER_AT_END.search(value, 0, end):
            break
        end -= 1
    return value[:end]


def _redacted(value: str, ctx: Context) -> str:
    """``[REDACTED]``, keeping an auth scheme word in front (``Bearer [REDACTED]``)."""
    ctx.bump(REDACTED)
    head, _, rest = value.partition(" ")
    if rest and head.lower() in _SCHEMES:
        return head + " " + marker(REDACTED)
    return marker(REDACTED)


def _kept(value: str, *, prose: bool, key: str) -> bool:
    if not value or is_marker(value) or value.lower() in _NULLISH:
        return True
    head, _, rest = value.partition(" ")
    if rest and head.lower() in _SCHEMES and is_marker(rest.strip()):
        return True
    return prose and _PLAIN_WORD.fullmatch(value) is not None and not is_strong_secret_key(key)


def _at_line_start(text: str, start: int) -> bool:
    j = start
    while j > 0 and start - j < 8 and text[j - 1] in " \t":
        j -= 1
    return j == 0 or text[j - 1] in "\r\n"


def _header_like(key: str) -> bool:
    return "-" in key.strip("-") or key.lower() in _HEADER_KEYS


def _geo_value(text: str, i: int, kind: int, ctx: Context) -> tuple[str, int] | None:
    if kind == GEO_SINGLE:
        num = _NUMBER.match(text, i)
        if num is None or abs(float(num.group(2))) > 180:
            return None
        ctx.bump(GEO)
        return num.group(1) + marker(GEO) + num.group(1), num.end()
    pair = _PAIR.match(text, i)
    if pair is None or abs(float(pair.group(2))) > 90 or abs(float(pair.group(3))) > 180:
        return None
    ctx.bump(GEO)
    return pair.group(1) + marker(GEO) + pair.group(4), pair.end()
