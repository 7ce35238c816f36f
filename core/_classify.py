"""Deciding what an event is about: its category (from the exception type), its
component (from the innermost in-app frame's module) and which frames are the
application's own. All of this runs on the worker thread."""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
import sysconfig
from collections.abc import Iterable

__all__ = ["ComponentResolver", "InAppPolicy", "category_for"]

_TIMEOUTS: tuple[type[BaseException], ...] = (TimeoutError, socket.timeout)
_NETWORK: tuple[type[BaseException], ...] = (ConnectionError, socket.gaierror, socket.herror)
_FILE_IO: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    EOFError,
)
_VALIDATION: tuple[type[BaseException], ...] = (ValueError, TypeError, AssertionError)
_LOOKUP: tuple[type[BaseException], ...] = (LookupError, AttributeError)
_RESOURCE: tuple[type[BaseException], ...] = (MemoryError, RecursionError)
# Database errors are recognised by the DB-API names every driver uses.
_DATABASE_NAMES = frozenset(
    {
        "DatabaseError",
        "OperationalError",
        "IntegrityError",
        "ProgrammingError",
        "InterfaceError",
        "DataError",
    }
)


def category_for(exc_class: type[BaseException] | None) -> str:
    """The category of an exception class: network, timeout, file-io, database, ..."""
    if exc_class is None:
        return "message"
    if issubclass(exc_class, sqlite3.Error) or any(
        c.__name__ in _DATABASE_NAMES for c in exc_class.__mro__
    ):
        return "database"
    if issubclass(exc_class, _TIMEOUTS):
        return "timeout"
    if issubclass(exc_class, _NETWORK):
        return "network"
    if issubclass(exc_class, _FILE_IO):
        return "file-io"
    if issubclass(exc_class, OSError):
        return "system"
    if issubclass(exc_class, UnicodeError):
        return "encoding"
    if issubclass(exc_class, _VALIDATION):
        return "validation"
    if issubclass(exc_class, _LOOKUP):
        return "lookup"
    if issubclass(exc_class, _RESOURCE):
        return "resource"
    if issubclass(exc_class, (KeyboardInterrupt, SystemExit)):
        return "process"
    return "generic"


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    roots.add(os.path.dirname(os.path.abspath(__file__)))  # errwire itself is never in-app
    return tuple(sorted(os.path.join(r, "") for r in roots if r))


class InAppPolicy:
    """A frame is the application's own unless it lives in the standard library,
    in installed packages or in errwire; explicit module prefixes override that."""

    __slots__ = ("_cache", "_exclude", "_include", "_roots")

    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        self._include = tuple(include)
        self._exclude = tuple(exclude)
        self._roots = _library_roots()
        self._cache: dict[tuple[str, str], bool] = {}

    def __call__(self, filename: str, module: str) -> bool:
        key = (filename, module)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._decide(filename, module)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def _decide(self, filename: str, module: str) -> bool:
        if _has_prefix(module, self._exclude):
            return False
        if _has_prefix(module, self._include):
            return True
        if filename.startswith("<"):
            return False
        return not os.path.abspath(filename).startswith(self._roots)


def _has_prefix(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


class ComponentResolver:
    """Maps a module name to a component through the configured prefix map; the
    longest matching prefix wins; otherwise the top-level package name."""

    __slots__ = ("_cache", "_prefixes")

    def __init__(self, component_map: Iterable[tuple[str, str]] = ()) -> None:
        self._prefixes = sorted(component_map, key=lambda kv: len(kv[0]), reverse=True)
        self._cache: dict[str, str] = {}

    def __call__(self, module: str | None) -> str:
        if not module:
            return "unknown"
        hit = self._cache.get(module)
        if hit is None:
            hit = next((comp for pre, comp in self._prefixes if _has_prefix(module, (pre,))), None)
            hit = hit or module.split(".", 1)[0] or "unknown"
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[module] = hit
        return hit
