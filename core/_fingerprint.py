"""The dedup fingerprint: what makes two events "the same error".

component + category + exception type + normalised message + top in-app frame.
The message is normalised so ids, numbers and quoted values that differ between
occurrences of one bug do not split it into many.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["fingerprint", "normalise_message"]

_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b")
_QUOTED = re.compile(r"'[^'\n]{0,200}'|\"[^\"\n]{0,200}\"")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MAX_NORMALISED = 500


def normalise_message(message: str) -> str:
    text = message[:_MAX_NORMALISED]
    text = _UUID.sub("<uuid>", text)
    text = _QUOTED.sub("<str>", text)
    text = _HEX.sub("<hex>", text)
    return _NUMBER.sub("<n>", text)


def fingerprint(component: str, category: str, exc_type: str, message: str, top_frame: str) -> str:
    key = "\x1f".join((component, category, exc_type, normalise_message(message), top_frame))
    return hashlib.blake2b(key.encode("utf-8", "backslashreplace"), digest_size=16).hexdigest()
