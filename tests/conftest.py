"""Shared fixtures: internal errors fail the test that caused them; every test
leaves errwire shut down; databases live in the test's own temp directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import errwire
from errwire import _api
from errwire._internal import set_internal_error_hook

# Tests must not pick up a developer's environment.
for _key in [k for k in os.environ if k.startswith("ERRWIRE_")]:
    del os.environ[_key]


@pytest.fixture(autouse=True)
def _raise_internal_errors() -> Iterator[list[tuple[str, BaseException]]]:
    """errwire swallows its own errors to protect the host; tests must see them."""
    seen: list[tuple[str, BaseException]] = []
    set_internal_error_hook(lambda where, exc: seen.append((where, exc)))
    yield seen
    set_internal_error_hook(None)
    if seen and not getattr(seen, "expected", False):
        where, exc = seen[0]
        raise AssertionError(f"errwire internal error in {where}: {exc!r}") from exc


@pytest.fixture
def allow_internal_errors(_raise_internal_errors: Any) -> list[tuple[str, BaseException]]:
    """For tests that inject faults into errwire itself and check it survives."""
    seen: Any = _raise_internal_errors
    # A list subclass cannot be swapped in after the fact, so mark via attribute on a wrapper.
    marker = _Expected(seen)
    set_internal_error_hook(lambda where, exc: marker.append((where, exc)))
    return marker


class _Expected(list[tuple[str, BaseException]]):
    expected = True

    def __init__(self, original: Any) -> None:
        super().__init__()


@pytest.fixture(autouse=True)
def _shutdown_errwire() -> Iterator[None]:
    yield
    _api.shutdown(timeout=2.0)


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "errwire-data")


@pytest.fixture
def memory() -> errwire.MemoryTransport:
    return errwire.MemoryTransport()
