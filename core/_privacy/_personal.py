"""Personal data recognised by shape: email addresses, IBANs, payment cards, MAC, IPv6
and IPv4 addresses, phone numbers.

Decisions (each has tests for what is caught and what is left alone):

* IPv4 versus versions: see ``_checks.version_context``; ``v1.2.3.4``,
  ``version 1.2.3.4``, ``Chrome/1.2.3.4``, ``==1.2.3.4``, ``1.2.3.4-rc1`` and
  dotted runs of five or more numbers are versions, anything else in range is an
  address. Times (``12:30:45``) are never IPv6: an IPv6 address needs ``::`` or
  eight groups, a digit and two non-empty groups (so ``x[::2]`` stays).
* Phone numbers, in the formats people write them: international with ``+``
  (8-15 digits, spaces, dots, hyphens, ``(0)``), North American ``(555) 123-4567``
  / ``555-123-4567`` / ``555.123.4567`` / ``555 123 4567`` (optionally ``1-`` in
  front), and national numbers with a trunk ``0`` in groups (``020 7946 0958``,
  ``06 12 34 56 78``; 9-13 digits). A bare run of digits is never a phone number:
  it is far more often an id, a count or a timestamp.
* Cards need a network's first digit (2-6), 13-19 digits, print grouping when
  grouped, and a valid Luhn check; IBANs need their country's length and mod-97.
* Emails need a dotted domain with a letter TLD (``root@localhost`` stays), and
  image names like ``icon@2x.png`` are not addresses.
"""

from __future__ import annotations

import re

from errwire._privacy._checks import card_ok, iban_ok, ipv4_ok, ipv6_ok, version_context
from errwire._privacy._markers import CARD, EMAIL, IBAN, IP, MAC, PHONE, marker
from errwire._privacy._rules import Context, sub_near

__all__ = [
    "scrub_cards",
    "scrub_emails",
    "scrub_ibans",
    "scrub_ipv4",
    "scrub_ipv6",
    "scrub_macs",
    "scrub_phones",
]

_A = re.ASCII

# Patterns start with a character class and check the boundary right after it
# (``[..](?<!X.)``), so the engine can skip to candidate characters instead of
# trying a look-behind at every position.
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-](?<![A-Za-z0-9._%+-].)[A-Za-z0-9._%+-]{0,63}(?:@|%40)"
    r"(?P<domain>(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?![A-Za-z])",
    _A | re.DOTALL,
)
_RETINA = re.compile(r"[0-9](?:\.[0-9])?x\.[A-Za-z]{2,5}", _A)


def scrub_emails(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        if _RETINA.fullmatch(m.group("domain")):
            return m.group(0)
        ctx.bump(EMAIL)
        return marker(EMAIL)

    # Every match has its ``@`` (or ``%40``) within 64 characters of its start.
    return sub_near(_EMAIL, text, ("@", "%40"), 64, replace)


_IBAN = re.compile(
    r"[A-Z](?<![A-Za-z0-9].)[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])",
    _A | re.DOTALL,
)


def scrub_ibans(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        if not iban_ok(m.group(0).replace(" ", "")):
            return m.group(0)
        ctx.bump(IBAN)
        return marker(IBAN)

    return _IBAN.sub(replace, text)


_CARD = re.compile(
    r"[0-9](?<![A-Za-z0-9.+-].)(?:[ -]?[0-9]){12,18}(?![A-Za-z0-9-]|\.[0-9])", _A | re.DOTALL
)


def scrub_cards(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        raw = m.group(0)
        if card_ok(raw):
            ctx.bump(CARD)
            return marker(CARD)
        # "ref 12 4111 1111 1111 1111 7": a card inside a longer run of digit groups.
        sep = " " if " " in raw else "-" if "-" in raw else ""
        if sep:
            groups = raw.split(sep)
            for first in range(len(groups)):
                if len(groups[first]) != 4:
                    continue
                for last in range(len(groups), first + 2, -1):
                    window = sep.join(groups[first:last])
                    if card_ok(window):
                        ctx.bump(CARD)
                        head = sep.join(groups[:first])
                        tail = sep.join(groups[last:])
                        return (
                            (head + sep if head else "")
                            + marker(CARD)
                            + (sep + tail if tail else "")
                        )
        return raw

    return _CARD.sub(replace, text)


_MAC = re.compile(
    r"[0-9A-Fa-f](?<![A-Za-z0-9:.-].)"
    r"(?:[0-9A-Fa-f]([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}"
    r"|(?P<cisco>[0-9A-Fa-f]{3}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}))"
    r"(?![A-Za-z0-9:-]|\.[A-Za-z0-9])",
    _A | re.DOTALL,
)
_HEX_LETTER = re.compile(r"[A-Fa-f]", _A)


def scrub_macs(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        if m.group("cisco") and not _HEX_LETTER.search(m.group(0)):
            return m.group(0)  # 1234.5678.9012 is a number, not a MAC
        ctx.bump(MAC)
        return marker(MAC)

    return _MAC.sub(replace, text)


_IPV6 = re.compile(
    r"[0-9A-Fa-f:](?<![A-Za-z0-9:.].)(?:(?<=:)|[0-9A-Fa-f]{0,3}:)(?:[0-9A-Fa-f]{0,4}:){1,6}"
    r"(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?(?:%[0-9A-Za-z_.-]{1,32})?"
    r"(?![A-Za-z0-9:]|\.[0-9])",
    _A,
)
_SLICE_BEFORE = re.compile(r"[A-Za-z0-9_)\]'\"]\[$", _A)


def scrub_ipv6(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        cand = m.group(0)
        if not ipv6_ok(cand):
            return cand
        start = m.start()
        if start >= 2 and _SLICE_BEFORE.search(text, start - 2, start):
            return cand  # x[1::2] is a slice
        ctx.bump(IP)
        return marker(IP)

    return _IPV6.sub(replace, text)


_IPV4 = re.compile(
    r"[0-9](?<![A-Za-z0-9_.].)[0-9]{0,2}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
    r"(?![A-Za-z0-9_]|\.[A-Za-z0-9])",
    _A | re.DOTALL,
)


def scrub_ipv4(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        cand = m.group(0)
        if not ipv4_ok(cand) or version_context(text, m.start(), m.end()):
            return cand
        ctx.bump(IP)
        return marker(IP)

    return _IPV4.sub(replace, text)


_PHONE = re.compile(
    r"[+(0-9](?<![A-Za-z0-9_+.-].)(?:"
    r"(?<=\+)(?P<intl>[0-9]{1,3}(?:[ .-]?\([0-9]{1,4}\)[ .-]?[0-9]{1,12})?(?:[ .-][0-9]{1,12}){0,6}"
    r"|[0-9]{7,15})"
    r"|(?<=\()(?P<nanp>[0-9]{3}\)[ .-]?[0-9]{3}[ .-][0-9]{4})"
    r"|(?<=1)(?P<nanp1>[ .-](?:\([0-9]{3}\)[ .-]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4})"
    r"|(?<=[0-9])(?P<nanp2>[0-9]{2}[ .-][0-9]{3}[ .-][0-9]{4})"
    r"|(?<=0)(?P<national>[0-9]{1,4}(?:[ .-][0-9]{2,8}){1,4})"
    r")(?![A-Za-z0-9_-]|\.[0-9])",
    _A | re.DOTALL,
)


def scrub_phones(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        raw = m.group(0)
        digits = sum(c.isdigit() for c in raw)
        if m.group("intl"):
            ok = 8 <= digits <= 15
        elif m.group("national"):
            ok = 9 <= digits <= 13 and not m.group(0).startswith("0 ")
        else:
            ok = digits in (10, 11)
        if not ok:
            return raw
        ctx.bump(PHONE)
        return marker(PHONE)

    return _PHONE.sub(replace, text)
