"""Typed markers: what a redaction leaves behind, so a reader knows what was there.

A marker is ``[KIND]``: upper-case letters, digits and hyphens in brackets. Every
built-in pattern treats a marker as inert (none of them can match across ``[`` or
``]``), which is what makes scrubbing idempotent: scrubbing scrubbed text finds
nothing new. The one replacement that is not bracketed is the home directory,
which becomes ``~`` so that paths stay readable (``~/proj/app.py``).
"""

from __future__ import annotations

import re

__all__ = [
    "AWS_KEY",
    "CARD",
    "CUSTOM",
    "CYCLE",
    "EMAIL",
    "GEO",
    "GITHUB_TOKEN",
    "GOOGLE_KEY",
    "HOME",
    "HOME_REPLACEMENT",
    "HOST",
    "IBAN",
    "ID",
    "IP",
    "JWT",
    "KINDS",
    "LOCALHOST",
    "MAC",
    "MARKER_RE",
    "MAX_DEPTH",
    "PHONE",
    "PRIVATE_IP",
    "PRIVATE_KEY",
    "PUBLIC_IP",
    "REDACTED",
    "REPR_ERROR",
    "SCRUB_ERROR",
    "SLACK_TOKEN",
    "STRIPE_KEY",
    "TOKEN",
    "TRUNCATED",
    "TRUNCATED_SUFFIX",
    "URL_CREDENTIALS",
    "is_marker",
    "marker",
    "normalize_kind",
]

# Kinds of redaction (each leaves ``[KIND]``, and ``counts()`` is keyed by KIND).
EMAIL = "EMAIL"
IP = "IP"
MAC = "MAC"
PHONE = "PHONE"
CARD = "CARD"
IBAN = "IBAN"
GEO = "GEO"
REDACTED = "REDACTED"  # a value removed because of its key (secret key, query value)
TOKEN = "TOKEN"  # noqa: S105  # a marker name: credentials by shape, random-looking strings
JWT = "JWT"
AWS_KEY = "AWS-KEY"
GITHUB_TOKEN = "GITHUB-TOKEN"  # noqa: S105  # a marker name
SLACK_TOKEN = "SLACK-TOKEN"  # noqa: S105  # a marker name
STRIPE_KEY = "STRIPE-KEY"
GOOGLE_KEY = "GOOGLE-KEY"
PRIVATE_KEY = "PRIVATE-KEY"
URL_CREDENTIALS = "URL-CREDENTIALS"
LOCALHOST = "LOCALHOST"
PRIVATE_IP = "PRIVATE-IP"
PUBLIC_IP = "PUBLIC-IP"
HOST = "HOST"  # hash mode: ``[HOST-<10 hex>]``
ID = "ID"  # id-like path segments: long digit runs, UUIDs, long hex
HOME = "HOME"  # counted under HOME, written as ``~``
CUSTOM = "CUSTOM"  # a user callable changed the text
# Structural markers: not secrets, but the reader must know something was left out.
TRUNCATED = "TRUNCATED"
MAX_DEPTH = "MAX-DEPTH"
CYCLE = "CYCLE"
REPR_ERROR = "REPR-ERROR"
SCRUB_ERROR = "SCRUB-ERROR"  # fail closed: a scrubber bug replaced the whole value

KINDS: tuple[str, ...] = (
    EMAIL,
    IP,
    MAC,
    PHONE,
    CARD,
    IBAN,
    GEO,
    REDACTED,
    TOKEN,
    JWT,
    AWS_KEY,
    GITHUB_TOKEN,
    SLACK_TOKEN,
    STRIPE_KEY,
    GOOGLE_KEY,
    PRIVATE_KEY,
    URL_CREDENTIALS,
    LOCALHOST,
    PRIVATE_IP,
    PUBLIC_IP,
    HOST,
    ID,
    HOME,
    CUSTOM,
    TRUNCATED,
    MAX_DEPTH,
    CYCLE,
    REPR_ERROR,
    SCRUB_ERROR,
)

HOME_REPLACEMENT = "~"
TRUNCATED_SUFFIX = "…[TRUNCATED]"

MARKER_RE = re.compile(r"\[[A-Z][A-Z0-9]{0,39}(?:-[A-Z0-9]{1,40}){0,8}\]")
_KIND_JUNK = re.compile(r"[^A-Z0-9]+")


def marker(kind: str) -> str:
    return f"[{kind}]"


def is_marker(text: str) -> bool:
    """True when ``text`` is exactly one marker (a value that was already scrubbed)."""
    return (
        text[-1:] == "]"  # cheap first: most values are not markers
        and len(text) <= 200
        and MARKER_RE.fullmatch(text) is not None
    )


def normalize_kind(kind: object) -> str:
    """A user's kind as a marker name: ``"order id"`` -> ``ORDER-ID``."""
    if not isinstance(kind, str):
        raise TypeError(f"a rule's kind must be a string; got {kind!r}")
    name = _KIND_JUNK.sub("-", kind.upper()).strip("-")
    if not name or not name[0].isalpha() or len(name) > 40:
        raise ValueError(
            f"a rule's kind must start with a letter and be at most 40 characters; got {kind!r}"
        )
    return name
