"""Which module a source file belongs to, worked out on the worker thread.

Capture keeps only code objects; the module name (for component detection and
for Sentry's frames) is found by mapping the code's filename back through
``sys.modules``. The map is rebuilt only when new modules have been imported.
"""

from __future__ import annotations

import os
import sys

__all__ = ["ModuleIndex"]


class ModuleIndex:
    __slots__ = ("_by_file", "_known")

    def __init__(self) -> None:
        self._by_file: dict[str, str] = {}
        self._known = -1

    def module_for(self, filename: str) -> str:
        name = self._by_file.get(filename)
        if name is None and len(sys.modules) != self._known:
            self._rebuild()
            name = self._by_file.get(filename)
        if name is None:
            name = _guess(filename)
            self._by_file[filename] = name
        return name

    def _rebuild(self) -> None:
        mapping: dict[str, str] = {}
        modules = list(sys.modules.items())
        for name, module in modules:
            path = getattr(module, "__file__", None)
            if isinstance(path, str):
                mapping[path] = name
                mapping.setdefault(os.path.abspath(path), name)
        self._by_file.update(mapping)
        self._known = len(modules)


def _guess(filename: str) -> str:
    """A module-like name for a file no loaded module claims (scripts, exec'd code)."""
    if filename.startswith("<"):
        return filename.strip("<>") or "unknown"
    # Only the file's own name: a directory could carry a user name. Both separators,
    # since code may have been compiled on another system (C:\Users\<name>\...).
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return os.path.splitext(base)[0] or "unknown"
