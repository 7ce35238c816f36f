"""What a benchmark module gives the runner: scenarios made of sides, and table rows.

A *scenario* is one comparison: errwire and each peer (and a floor, where one
applies) are its *sides*. Every side is a *job*: a module-level function the
runner calls in a fresh subprocess (``python -m benchmarks._child``), which
returns a JSON-able dict. The runner runs the sides interleaved, round after
round (A B A B ...), so drift on the machine lands on every side alike, then
hands all the results to the scenario's ``rows`` function, which turns them
into table rows (and decides pass / miss).

A module takes part by defining ``scenarios(mode) -> list[Scenario]``; the
runner imports the modules listed in ``benchmarks.__main__.MODULES`` and any
optional ones (``bench_fleet``) that exist and define it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "MODES",
    "Job",
    "Mode",
    "Results",
    "Row",
    "Scenario",
    "Side",
    "fmt_bytes",
    "fmt_ns",
    "fmt_rate",
    "fmt_seconds",
    "median",
    "ratio",
    "verdict",
]

Mode = Literal["smoke", "quick", "full"]
MODES: tuple[Mode, ...] = ("smoke", "quick", "full")
# side label -> one result dict per round (in the order the rounds ran)
Results = Mapping[str, Sequence[dict[str, Any]]]


@dataclass(frozen=True)
class Job:
    """``module.function(**kwargs)``, run in a subprocess; returns a JSON-able dict."""

    module: str
    function: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = 300.0  # seconds; a side that takes longer is killed and reported


@dataclass(frozen=True)
class Side:
    label: str
    job: Job


@dataclass(frozen=True)
class Row:
    """One line of the table; every cell is already text."""

    number: str  # the scenario's number in the issue list ("1", "8", ...)
    scenario: str
    errwire: str
    peer: str = ""  # the peer and how it is configured, or "n/a: <reason>"
    peer_value: str = ""
    ratio: str = ""  # how many times cheaper (costs) or faster (rates) errwire is
    floor: str = ""
    over_floor: str = ""  # errwire divided by the floor
    target: str = ""
    result: str = ""  # "pass", "miss", "within noise", or "" when there is no target


@dataclass(frozen=True)
class Scenario:
    key: str  # unique, used in the JSON file and by --only
    sides: Sequence[Side]
    rows: Callable[[Results], list[Row]]
    rounds: int = 1


# -- helpers for rows --------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def median_of(runs: Sequence[Mapping[str, Any]], key: str) -> float:
    """The median of one measurement over a side's runs."""
    return median([run[key] for run in runs])


def verdict(ok: bool) -> str:
    return "pass" if ok else "**miss**"


# An empty Python call (with its loop) on the machine the design's budgets were set
# on (DESIGN.md). On a slower machine every Python-bound budget is scaled by the
# empty call measured in the same run: ratios to the floor are what carry over.
REFERENCE_CALL_NS = 30.0


def at_this_speed(budget: float, floor_ns: float, *, rate: bool = False) -> float:
    """The design's ``budget`` (a cost, or a rate with ``rate``) on a machine whose
    empty call costs ``floor_ns``."""
    slower = floor_ns / REFERENCE_CALL_NS
    return budget / slower if rate else budget * slower


def scaled_verdict(scaled: str, absolute: str, budget_text: str) -> str:
    """The verdict at this machine's speed, with the absolute one beside it when they
    differ (the runner's test reads this form)."""
    return scaled if scaled == absolute else f"{scaled} ({budget_text} absolute: {absolute})"


def scaled_target(budget_text: str, floor_ns: float, here_text: str) -> str:
    """The target column for a budget judged at this machine's speed."""
    return (
        f"{budget_text} at a {REFERENCE_CALL_NS:g} ns empty call "
        f"(here {fmt_ns(floor_ns)}: {here_text})"
    )


def ratio(errwire: float | None, peer: float | None, *, higher_is_better: bool = False) -> str:
    """How many times cheaper (or, for rates, faster) errwire is than the peer."""
    if not errwire or not peer or errwire <= 0 or peer <= 0:
        return ""
    value = errwire / peer if higher_is_better else peer / errwire
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def fmt_ns(ns: float) -> str:
    if abs(ns) >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if abs(ns) >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if abs(ns) >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def fmt_seconds(seconds: float) -> str:
    return fmt_ns(seconds * 1e9)


def fmt_rate(per_second: float, unit: str = "events/s") -> str:
    return f"{per_second:,.0f} {unit}"


def fmt_bytes(n: float) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    return f"{n:,.0f} B"
