"""The traceback walk: the C twin (errwire._speedups) answers exactly as the Python one."""

from __future__ import annotations

import gc
import os
import sys
import sysconfig
from types import TracebackType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from errwire import _walk

from .conftest import raise_depth

needs_speedups = pytest.mark.skipif(not _walk.SPEEDUPS, reason="errwire._speedups is not built")


def _tb(depth: int) -> TracebackType:
    tb = raise_depth(depth).__traceback__
    assert tb is not None
    return tb


def test_speedups_are_built_where_a_c_compiler_is() -> None:
    """An install with a compiler and Python's headers builds the C walk; if this
    fails, the build broke silently (the extension is optional) and every capture
    pays for the Python walk."""
    include = sysconfig.get_paths()["include"]
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    have_compiler = any(
        os.access(os.path.join(d, compiler), os.X_OK)
        for d in os.environ.get("PATH", "").split(os.pathsep)
    )
    if not (have_compiler and os.path.exists(os.path.join(include, "Python.h"))):
        pytest.skip("no C compiler or Python headers here: the Python walk is expected")
    assert _walk.SPEEDUPS


@needs_speedups
@given(depth=st.integers(1, 40), limit=st.integers(-2, 45))
def test_frames_twins_agree(depth: int, limit: int) -> None:
    tb = _tb(depth)
    assert _walk.frames(tb, limit) == _walk.py_frames(tb, limit)


def test_frames_shape() -> None:
    tb = _tb(5)
    walked = _walk.frames(tb, 3)
    assert len(walked) == 6  # the innermost three, as (code, lasti) pairs
    codes = walked[0::2]
    assert all(code.co_name == "dive" for code in codes)
    assert all(isinstance(lasti, int) for lasti in walked[1::2])
    assert _walk.frames(None, 10) == ()
    assert _walk.frames(tb, 0) == ()


@needs_speedups
def test_raise_site_twins_agree() -> None:
    for depth in (1, 2, 7):
        tb = _tb(depth)
        assert _walk.raise_site(ValueError, tb) == _walk.py_raise_site(ValueError, tb)
    assert _walk.raise_site(ValueError, None) is None


def test_raise_site_names_the_innermost_entry() -> None:
    tb = _tb(4)
    last = tb
    while last.tb_next is not None:
        last = last.tb_next
    assert _walk.raise_site(KeyError, tb) == (KeyError, id(last.tb_frame.f_code), last.tb_lasti)


def _chained_cases() -> list[BaseException]:
    plain = ValueError("plain")
    caused = ValueError("caused")
    caused.__cause__ = KeyError("root")
    during = ValueError("during")
    during.__context__ = KeyError("handled")
    from_none = ValueError("from None")
    from_none.__cause__ = None
    from_none.__suppress_context__ = True
    cases: list[BaseException] = [plain, caused, during, from_none]
    if sys.version_info >= (3, 11):
        cases.append(ExceptionGroup("group", [ValueError("member")]))  # noqa: F821
    return cases


@pytest.mark.parametrize("exc", _chained_cases(), ids=str)
def test_chained_twins_agree(exc: BaseException) -> None:
    expected = exc.__cause__ is not None or exc.__context__ is not None or "group" in str(exc)
    assert _walk.py_chained(exc) is expected
    assert _walk.chained(exc) is expected


@needs_speedups
def test_the_c_frames_tuple_is_not_tracked_by_the_collector() -> None:
    """Queued events wait in their thousands; their frames must cost collections nothing."""
    walked = _walk.frames(_tb(10), 50)
    assert not gc.is_tracked(walked)


@needs_speedups
def test_the_c_functions_refuse_what_is_not_a_traceback() -> None:
    from errwire import _speedups

    with pytest.raises(TypeError):
        _speedups.frames("not a traceback", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.raise_site(ValueError, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.chained("not an exception")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.frames(_tb(2))  # type: ignore[call-arg]
