"""Timing loops under pyperf, in the calling process.

pyperf runs each benchmark in-process (``--in-process``): it calibrates the
loop count to the minimum time per value, runs the warmups, then takes the
values. The runner already gives every side a fresh process and interleaves
the sides, so pyperf's own worker processes are not needed. All of a process's
benchmarks share its one pyperf runner.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Mapping
from typing import Any

from ._registry import Mode, median

__all__ = ["Bench", "time_benches"]

# ``bench(loops)`` -> seconds taken by ``loops`` iterations
Bench = Callable[[int], float]

_RUNNER: list[Any] = []

# values, warmups, minimum seconds per value
_OPTIONS: dict[str, tuple[int, int, float]] = {
    "smoke": (1, 0, 0.001),
    "quick": (3, 1, 0.01),
    "full": (5, 1, 0.05),
}


def time_benches(
    benches: Mapping[str, Callable[[], Bench]], mode: Mode, *, values: int | None = None
) -> dict[str, Any]:
    """Each bench (built lazily, when pyperf first runs it): its median and values in
    ns per iteration. ``values``
    overrides the mode's count (for benches whose one call takes seconds)."""
    import pyperf

    count, warmups, min_time = _OPTIONS[mode]
    values = min(count, values or count)
    if not _RUNNER:  # pyperf allows one runner per process
        _RUNNER.append(pyperf.Runner())
        _RUNNER[0].parse_args(
            ["--in-process", "--quiet", "--processes", "1", "--values", str(values),
             "--warmups", str(warmups), "--min-time", str(min_time)]
        )  # fmt: skip
    runner = _RUNNER[0]
    runner.args.values, runner.args.warmups, runner.args.min_time = values, warmups, min_time
    out: dict[str, Any] = {}
    for name, make in benches.items():
        made: list[Bench] = []

        def run(loops: int, make: Callable[[], Bench] = make, made: list[Bench] = made) -> float:
            if not made:
                made.append(make())
            return made[0](loops)

        with contextlib.redirect_stdout(io.StringIO()):
            result = runner.bench_time_func(name, run)
        found = [v * 1e9 for v in result.get_values()]
        out[name] = {"median_ns": median(found), "values_ns": found, "loops": result.get_loops()}
    return out
