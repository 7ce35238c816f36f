"""Reading a traceback on the caller's thread: the raise site and the frames.

Capture keeps a traceback as ``(code, lasti, ...)`` pairs so that no frame (and
none of its locals) outlives the call. This walk is most of what a capture
costs, so it has a C twin, ``errwire._speedups``, built when the package is
installed with a C compiler at hand; without one, these Python versions run
and give the same answers (the tests hold both to that). ``SPEEDUPS`` says which
is in use.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

__all__ = [
    "SPEEDUPS",
    "chained",
    "frames",
    "py_chained",
    "py_frames",
    "py_raise_site",
    "raise_site",
]

# Exception groups exist from Python 3.11; on 3.10 nothing is a group.
_GROUPS: tuple[type[BaseException], ...] = (
    (BaseExceptionGroup,) if sys.version_info >= (3, 11) else ()  # noqa: F821
)


def py_raise_site(
    exc_type: type[BaseException], tb: TracebackType | None
) -> tuple[Any, ...] | None:
    """``(exc_type, id(code), lasti)`` of the innermost entry: the storm guard's key.

    The code object is named by its id: hashing a code object is slow, and code
    outlives the events that mention it. None without a traceback."""
    if tb is None:
        return None
    after = tb.tb_next
    while after is not None:
        tb, after = after, after.tb_next
    return (exc_type, id(tb.tb_frame.f_code), tb.tb_lasti)


def py_frames(tb: TracebackType | None, limit: int) -> tuple[Any, ...]:
    """``(code, lasti, ...)``, innermost last, keeping the innermost ``limit`` entries."""
    out: list[Any] = []
    add = out.append
    while tb is not None:
        add(tb.tb_frame.f_code)
        add(tb.tb_lasti)
        tb = tb.tb_next
    if len(out) > 2 * limit:
        del out[: len(out) - 2 * max(limit, 0)]
    return tuple(out)


def py_chained(exc: BaseException) -> bool:
    """Whether ``exc`` has a cause, a context or is a group: whether there is a chain to walk."""
    return exc.__cause__ is not None or exc.__context__ is not None or isinstance(exc, _GROUPS)


try:
    from ._speedups import chained, frames, raise_site
except ImportError:  # built without a C compiler: the Python twins, same answers
    chained, frames, raise_site = py_chained, py_frames, py_raise_site
    SPEEDUPS = False
else:
    SPEEDUPS = True
