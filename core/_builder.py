"""``errwire.error(exc)``: a fluent builder for errors that carry their own metadata.

When telemetry is off, ``error()`` returns one shared no-op builder whose
methods return itself, so a disabled call chain allocates nothing and does
nothing; ``build()`` on it returns None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _api

__all__ = ["EnhancedError", "ErrorBuilder", "capture_enhanced", "error"]


class EnhancedError(Exception):
    """An exception carrying component, category, priority and context; the
    original exception (if any) is its ``__cause__``.

    However it reaches errwire (``report()``, ``build()``, or raised and caught by
    an integration or ``capture_error``), it is reported once, with its own
    metadata wherever the caller gave none."""

    reported = False  # set on the instance once an event was captured for it

    def __init__(
        self,
        original: BaseException | str,
        *,
        component: str | None = None,
        category: str | None = None,
        priority: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        message = original if isinstance(original, str) else _describe(original)
        super().__init__(message)
        self.component = component
        self.category = category
        self.priority = priority
        self.context = dict(context or {})
        self.original = None if isinstance(original, str) else original
        if self.original is not None:
            self.__cause__ = self.original
            self.__traceback__ = self.original.__traceback__

    def report(self, level: str = "error") -> bool:
        """Send this error through errwire (a no-op when telemetry is off, or when it
        was reported already)."""
        return _api.capture_error(self, None, None, level, None, None)


def capture_enhanced(
    err: EnhancedError,
    component: str | None,
    category: str | None,
    level: str,
    context: Mapping[str, Any] | None,
    priority: str | None,
) -> bool:
    """``capture_error`` for an ``EnhancedError``: the original exception (the error
    itself when built from a message) with the error's metadata where the caller gave
    none (``context`` is merged, the caller's keys winning); once per error, so one
    built and reported, then raised and caught by an integration, is not reported
    twice."""
    if err.reported:
        return False
    runtime = _api._runtime
    if runtime is None:
        return False
    if context and err.context:
        context = {**err.context, **context}
    ok = runtime.capture_exception(
        err.original if err.original is not None else err,
        component if component is not None else err.component,
        category if category is not None else err.category,
        level,
        context or err.context or None,
        priority if priority is not None else err.priority,
    )
    if ok:
        err.reported = True
    return ok


def _describe(exc: BaseException) -> str:
    from ._event import safe_message

    return safe_message(exc, 8192)


class ErrorBuilder:
    __slots__ = ("_category", "_component", "_context", "_level", "_original", "_priority")

    def __init__(self, original: BaseException | str) -> None:
        self._original = original
        self._component: str | None = None
        self._category: str | None = None
        self._priority: str | None = None
        self._level = "error"
        self._context: dict[str, Any] = {}

    def component(self, name: str) -> ErrorBuilder:
        self._component = name
        return self

    def category(self, name: str) -> ErrorBuilder:
        self._category = name
        return self

    def priority(self, name: str) -> ErrorBuilder:
        self._priority = name
        return self

    def level(self, name: str) -> ErrorBuilder:
        self._level = name
        return self

    def context(self, mapping: Mapping[str, Any] | None = None, /, **values: Any) -> ErrorBuilder:
        if mapping:
            self._context.update(mapping)
        self._context.update(values)
        return self

    def exception(self) -> EnhancedError:
        """The ``EnhancedError`` without reporting it."""
        return EnhancedError(
            self._original,
            component=self._component,
            category=self._category,
            priority=self._priority,
            context=self._context,
        )

    def build(self) -> EnhancedError | None:
        """Report the error and return it (to raise, if you like)."""
        err = self.exception()
        err.report(self._level)
        return err


class _NoopBuilder:
    """The shared builder used while telemetry is off: every method returns it."""

    __slots__ = ()

    def component(self, name: str) -> _NoopBuilder:
        return self

    category = priority = level = component

    def context(self, mapping: Mapping[str, Any] | None = None, /, **values: Any) -> _NoopBuilder:
        return self

    def exception(self) -> None:
        return None

    def build(self) -> None:
        return None


NOOP_BUILDER = _NoopBuilder()


def error(original: BaseException | str) -> ErrorBuilder | _NoopBuilder:
    """Start building an error report: ``errwire.error(e).component("db").build()``."""
    if not _api._enabled:
        return NOOP_BUILDER
    return ErrorBuilder(original)
