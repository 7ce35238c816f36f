"""File paths: home directories replaced by ``~``, project paths made relative.

``/home/alice/proj/app.py``, ``/Users/alice/...``, ``/var/home/alice/...``,
``/mnt/c/Users/alice/...`` and ``C:\\Users\\Alice Smith\\...`` (also with doubled
backslashes, as in a repr) all lose the user name. A path under the project root
becomes relative to it: ``app/views.py`` says everything a reader needs.
"""

from __future__ import annotations

import re

from errwire._privacy._markers import HOME, HOME_REPLACEMENT
from errwire._privacy._rules import Context

__all__ = ["normalize_root", "relativize", "scrub_home_dirs"]

_NAME_SPACED = r"[^/\\\"'<>:*?|\r\n\[\]]{1,64}(?=\\|/)"
_NAME = r"[^/\\\s\"'<>:*?|\[\]]{1,64}"
_HOME = re.compile(
    r"(?<![A-Za-z0-9_.~-])(?:"
    r"(?:/var|/mnt/[a-z])?/(?:home|Users)/(?:" + _NAME_SPACED + "|" + _NAME + ")"
    r"|[A-Za-z]:(?:\\\\?|/)(?:Users|Documents and Settings)(?:\\\\?|/)"
    r"(?:" + _NAME_SPACED + "|" + _NAME + ")"
    r")",
    re.ASCII,
)


def scrub_home_dirs(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        ctx.bump(HOME)
        return HOME_REPLACEMENT

    return _HOME.sub(replace, text)


def normalize_root(root: str | None) -> str | None:
    """The project root without trailing separators; None when it would cover everything."""
    if not root:
        return None
    stripped = root.rstrip("/\\")
    if len(stripped) <= 1 or (len(stripped) == 2 and stripped[1] == ":"):
        return None
    return stripped


def relativize(path: str, root: str | None) -> str:
    """``<root>/app/views.py`` -> ``app/views.py``; other paths unchanged."""
    if root is None or not path.startswith(root) or len(path) <= len(root) + 1:
        return path
    if path[len(root)] in "/\\":
        return path[len(root) + 1 :]
    return path
