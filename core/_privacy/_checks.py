"""Validators that turn pattern matches into decisions: checksums, ranges, randomness.

Patterns only find candidates; these checks keep false positives down (a Luhn-invalid
16-digit number is an order id, not a card) and hold the few judgement calls in one
place:

* **Random-looking strings** (``looks_random``): 16+ (in a secret-like position) or
  24+ (anywhere) characters of ``[A-Za-z0-9+/_-]``, letters and digits both present,
  not pure hex (hashes and ids are worth keeping), Shannon entropy >= 3 bits per
  character, and short "words": identifiers are built from words (``getUserById``:
  average run 3+), random strings are not (base62: average run ~1.9). The limit is
  3.2 for mixed case, 2.5 for a single case; measured: 99% of random 16-char base62
  strings are caught, and none of a list of long camel/snake-case identifiers.
* **Versions versus IPv4** (``version_context``): ``1.2.3.4`` is an address unless
  it is clearly a version: preceded by ``v``/``version``/``ver``/``release``/
  ``build``/``rev``/``firmware`` (with optional ``:``/``=``/space), by a product
  token (``Chrome/1.2.3.4``), by a pip specifier (``==``, ``>=``, ``~=``), or
  followed by a pre-release or build suffix (``1.2.3.4-beta``, ``1.2.3.4+build``).
  Octets over 255 or with leading zeros are never addresses.
"""

from __future__ import annotations

import ipaddress
import math
import re

__all__ = [
    "card_ok",
    "iban_ok",
    "ipv4_ok",
    "ipv6_ok",
    "looks_random",
    "luhn_ok",
    "version_context",
]

_A = re.ASCII

# ---------------------------------------------------------------- cards


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_GROUPS_OK = ((4, 6, 5), (4, 6, 4))


def card_ok(raw: str) -> bool:
    """A payment card number: 13-19 digits, a card network's first digit, Luhn-valid,
    and if grouped, grouped the way cards are printed (4-4-4-4, 4-6-5)."""
    seps = {c for c in raw if c in " -"}
    digits = raw.replace(" ", "").replace("-", "")
    if not (13 <= len(digits) <= 19) or not digits.isascii() or not digits.isdigit():
        return False
    if digits[0] not in "23456":
        return False
    if seps:
        if len(seps) > 1:
            return False
        sizes = tuple(len(g) for g in raw.split(seps.pop()))
        if 0 in sizes:
            return False
        four_groups = all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4
        if not four_groups and sizes not in _GROUPS_OK:
            return False
    return luhn_ok(digits)


# ---------------------------------------------------------------- IBAN

# Registered IBAN lengths by country (ISO 13616 registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_ok(compact: str) -> bool:
    """An IBAN: registered length for its country (15-34 for unlisted ones) and mod-97 == 1."""
    if not compact.isascii() or not compact.isalnum():
        return False
    expected = _IBAN_LENGTHS.get(compact[:2])
    n = len(compact)
    if (expected is not None and n != expected) or not (15 <= n <= 34):
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


# ---------------------------------------------------------------- IP addresses


def ipv4_ok(candidate: str) -> bool:
    parts = candidate.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isascii() or not p.isdigit() or len(p) > 3 or (len(p) > 1 and p[0] == "0"):
            return False
        if int(p) > 255:
            return False
    return True


def ipv6_ok(candidate: str) -> bool:
    """A real IPv6 address with at least two groups (so ``::2`` in ``a[::2]`` is not one)."""
    addr = candidate.split("%", 1)[0]
    if "::" not in addr and addr.count(":") != 7 and not ("." in addr and addr.count(":") == 6):
        return False
    groups = [g for g in addr.split(":") if g]
    if len(groups) < 2 or not any(c.isdigit() for c in addr):
        return False
    try:
        ipaddress.IPv6Address(addr)
    except ValueError:
        return False
    return True


_VERSION_BEFORE = re.compile(
    r"(?:(?<![A-Za-z])(?:v|version|ver|release|build|rev|revision|firmware|fw)"
    r"[ \t]{0,2}[:=#]?[ \t]{0,2}"
    r"|(?:^|[\s(;,])[A-Za-z][A-Za-z0-9_.-]{0,30}/|[=<>~!]=[ \t]{0,2})$",
    re.IGNORECASE | _A,
)
_VERSION_AFTER = re.compile(r"[-+~][A-Za-z]", _A)


_VERSION_WORD_ENDS = frozenset("vnredwVNREDW")  # last letters of the words above


def version_context(text: str, start: int, end: int) -> bool:
    """True when the dotted quad at ``text[start:end]`` is clearly a version number."""
    # Every form _VERSION_BEFORE knows ends (blanks aside, and ``$`` also matches before
    # a last newline) in ``/`` or ``=`` or, before at most a ``:``/``=``/``#``, in the
    # last letter of one of its words: check that first, its search (case-insensitive,
    # tried at every position) costs far more.
    head = text[max(0, start - 40) : start]
    head = (head[:-1] if head[-1:] == "\n" else head).rstrip(" \t")
    if (
        head[-1:] in ("/", "=") or head.rstrip(":=#").rstrip(" \t")[-1:] in _VERSION_WORD_ENDS
    ) and _VERSION_BEFORE.search(text, max(0, start - 40), start):
        return True
    return _VERSION_AFTER.match(text, end) is not None


# ---------------------------------------------------------------- randomness

_SEGMENTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+", _A)
_HEX = re.compile(r"[0-9a-fA-F]+", _A)
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/_-]+", _A)


def looks_random(token: str, min_len: int) -> bool:
    """True for strings that look generated (keys, tokens), false for words and identifiers."""
    core = token.rstrip("=")
    n = len(core)
    if n < min_len or n > 8192 or not _TOKEN_CHARS.fullmatch(core):
        return False
    has_upper = has_lower = has_digit = False
    for c in core:
        if "a" <= c <= "z":
            has_lower = True
        elif "A" <= c <= "Z":
            has_upper = True
        elif "0" <= c <= "9":
            has_digit = True
    if not has_digit or not (has_upper or has_lower):
        return False
    if not (has_upper and has_lower) and _HEX.fullmatch(core.replace("-", "").replace("_", "")):
        return False
    segments = _SEGMENTS.findall(core)
    if not segments:
        return False
    average = sum(len(s) for s in segments) / len(segments)
    if average > (3.2 if has_upper and has_lower else 2.5):
        return False
    return _entropy(core) >= 3.0


def _entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for c in text:
        counts[c] = counts.get(c, 0) + 1
    n = len(text)
    return -sum(k / n * math.log2(k / n) for k in counts.values())
