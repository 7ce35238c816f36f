"""The component of a request's exception whose stack holds no application frame.

The worker names an event's component after its innermost in-app frame. Under
Django's ASGI handler a sync view runs in a thread (asgiref's ``SyncToAsync``);
a ``TimeoutError`` crossing back into the event loop is re-created by asyncio
without its traceback (``concurrent.futures.TimeoutError`` is ``TimeoutError``
from Python 3.11), so the stack ends in asgiref and the component would be
"asgiref". The request still knows which view ran: when no frame the event keeps
is in-app, the view's module goes through the same prefix map instead.

Decided here, on the capturing thread, because only here are the request and
the frames both at hand; it runs only when a request's exception is captured,
with the runtime's own in-app policy and component map.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from errwire import _api
from errwire._classify import ComponentResolver, InAppPolicy
from errwire._config import Config
from errwire._internal import internal_error

__all__ = ["component_for", "fallback_component", "view_module"]

InApp = Callable[[str, str], bool]

# (config, in-app policy, component resolver) of the runtime last seen: rebuilt
# when the runtime's configuration changes. One tuple, replaced whole.
_policy: tuple[Config, InAppPolicy, ComponentResolver] | None = None


def component_for(exc: BaseException, request: object) -> str | None:
    """The view's component when ``exc``'s stack has no in-app frame; else None
    (the worker decides from the frames, as for any event). Never raises."""
    global _policy
    runtime = _api._runtime
    if runtime is None or getattr(request, "resolver_match", None) is None:
        return None
    try:
        config = runtime.config
        policy = _policy
        if policy is None or policy[0] is not config:
            policy = (
                config,
                InAppPolicy(config.in_app_include, config.in_app_exclude),
                ComponentResolver(config.component_map),
            )
            _policy = policy
        return fallback_component(exc, request, policy[1], policy[2], config.max_frames)
    except Exception as error:  # a strange view object must not cost the event
        internal_error("django view component", error)
        return None


def fallback_component(
    exc: BaseException,
    request: object,
    in_app: InApp,
    resolve: Callable[[str | None], str],
    max_frames: int,
) -> str | None:
    """The component of the request's resolved view, unless one of the innermost
    ``max_frames`` frames of ``exc`` (the ones an event keeps) is in-app."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    frames: list[Any] = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames[-max_frames:]):
        name = frame.f_globals.get("__name__")
        if in_app(frame.f_code.co_filename, name if isinstance(name, str) else ""):
            return None
    module = view_module(getattr(match, "func", None))
    return None if module is None else resolve(module)


def view_module(view: object) -> str | None:
    """The module that defines a URL pattern's view: a class-based view's class,
    through ``functools.wraps`` decorators and ``functools.partial``."""
    for _ in range(32):  # a wrapper chain is short; never loop on a cycle
        cls = getattr(view, "view_class", None)
        if isinstance(cls, type):
            return cls.__module__
        if isinstance(view, functools.partial):
            view = view.func
            continue
        inner = getattr(view, "__wrapped__", None)
        if inner is None:
            break
        view = inner
    module = getattr(view, "__module__", None)
    return module if isinstance(module, str) and module else None
