"""``Scrubber``: the one object the worker uses to make events safe to send or store."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal

from errwire._counter import CounterMap
from errwire._privacy._keys import KeyPolicy
from errwire._privacy._paths import normalize_root
from errwire._privacy._payload import PayloadScrubber
from errwire._privacy._rules import Context, Rule, Tally, compile_user_rules
from errwire._privacy._structure import ValueScrubber
from errwire._privacy._text import TextScrubber

__all__ = ["Scrubber"]


class Scrubber:
    """Removes secrets and personal data from text, values and event payloads.

    Deterministic, idempotent (scrubbing scrubbed output changes nothing), never
    raises (a failure replaces the value with ``[SCRUB-ERROR]``), and thread-safe:
    one instance serves every thread. ``counts()`` says what was redacted, by kind.

    Options: ``extra_rules`` (``(regex, kind)`` pairs, ``Rule`` objects or callables
    run before the built-in rules); ``allow_keys`` (keys never redacted for their
    name: dict keys, ``key=value`` keys, extra request headers to keep);
    ``send_default_pii`` (keep the request's client address and user; nothing
    else changes); ``host_mode`` (URL hosts by category, or hashed);
    ``project_root`` (frame paths under it become relative); ``max_depth``,
    ``max_items``, ``max_string`` and ``max_nodes`` bound structures and strings.
    """

    __slots__ = ("_counts", "_payload", "_text", "_values")

    def __init__(
        self,
        *,
        extra_rules: Sequence[Rule | tuple[str, str] | Callable[[str], str]] = (),
        allow_keys: Collection[str] = (),
        send_default_pii: bool = False,
        host_mode: Literal["category", "hash"] = "category",
        project_root: str | None = None,
        max_depth: int = 8,
        max_items: int = 100,
        max_string: int = 8192,
        max_nodes: int = 5000,
    ) -> None:
        if host_mode not in ("category", "hash"):
            raise ValueError(f"host_mode must be 'category' or 'hash'; got {host_mode!r}")
        for name, value, minimum in (
            ("max_depth", max_depth, 1),
            ("max_items", max_items, 1),
            ("max_string", max_string, 32),
            ("max_nodes", max_nodes, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
        if project_root is not None and not isinstance(project_root, str):
            raise ValueError(f"project_root must be a string or None; got {project_root!r}")
        if isinstance(allow_keys, str):
            raise ValueError("allow_keys must be a collection of key names, not one string")
        self._counts = CounterMap()
        keys = KeyPolicy(allow_keys)
        counts = self._counts
        tally = Tally(lambda kind: counts.get(kind).bump)
        ctx = Context(bump=tally.bump, keys=keys, host_mode=host_mode)
        self._text = TextScrubber(ctx, tally, compile_user_rules(extra_rules))
        self._values = ValueScrubber(
            self._text,
            ctx,
            max_depth=max_depth,
            max_items=max_items,
            max_string=max_string,
            max_nodes=max_nodes,
        )
        self._payload = PayloadScrubber(
            self._values,
            ctx,
            tally,
            keys,
            project_root=normalize_root(project_root),
            send_default_pii=bool(send_default_pii),
        )

    def scrub_text(self, text: str) -> str:
        """Free text with every rule applied (no length bound: callers bound their text)."""
        value: object = text
        if not isinstance(value, str):  # a caller's bug must not become a leak or a crash
            return self._values.text(_safe_str(value))
        return self._text.scrub(value)

    def scrub_value(self, value: object, key: str | None = None) -> Any:
        """A JSON-safe, bounded, scrubbed copy of ``value`` (stored under ``key``, if any)."""
        return self._values.scrub(value, key)

    def scrub_payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A scrubbed copy of an event payload; the input is not modified."""
        return self._payload.scrub(payload)

    def counts(self) -> dict[str, int]:
        """Redactions by marker kind since this scrubber was created."""
        return self._counts.values()


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return "<unprintable>"
