"""Privacy scrubbing cost: a realistic event payload, messages by size, adversarial input.

Scenario 11 of ``python -m benchmarks`` (each case a pyperf benchmark). On its own,
``python -m benchmarks.bench_scrub [--quick] [--json] [--only TEXT] [--compare MODULE]``
prints a CPU-time table, and with ``--compare`` times another scrubber beside it.

Scrubbing runs on the worker thread, so this is throughput, not request latency
(but the worker holds the GIL while it scrubs, so every microsecond here is taken
from request threads too). Each case is timed in process CPU time (robust to other
load on the machine); the value is the median over the repeats of the time per call.

* **payload**: what the worker scrubs per event: 10 stack frames, a ~40-character
  message with an email address (also the exception value), a small context dict,
  tags, no request. Frames and tags repeat across events (errors come from the same
  code); the message is new for every event ("fresh message") or one of 100
  ("repeating", like ``benchmarks.system throughput``).
* **messages**: realistic error text of 100 B, 1 KB and 100 KB, every call a text
  the scrubber has not seen (short texts are cached, and a benchmark of cache hits
  would say nothing about scrubbing). "clean" variants carry no secrets; "with
  secrets" ones carry an email, an IP, ``password=``, a URL with credentials, a
  bearer JWT and a home directory.
* **adversarial**: 1 MB inputs a backtracking regular expression would choke on;
  their time per KB must stay flat.

``--compare MODULE`` also times ``MODULE.Scrubber`` (for instance a copy of an
older ``errwire._privacy`` put on ``PYTHONPATH`` under another name) in the same
run, alternating the two per repeat, and prints both columns and the speed-up.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from errwire._privacy import Scrubber

from ._pyperf import Bench, time_benches
from ._registry import Job, Mode, Results, Row, Scenario, Side, fmt_ns, median

__all__ = ["main", "scenarios", "scrub"]

KB = 1024
MB = 1024 * KB
_FRESH = 20_000  # distinct short texts: several times what any scrubber cache holds
_PAYLOADS = 10_000

CLEAN_LINE = (
    'File "app/views.py", line 42, in get_user: KeyError: user_id missing after 3 retries '
    "(timeout=5.0s) while processing order 1,024 of batch 7; state=pending. "
)
SECRET_LINE = (
    "login failed for alice@example.com from 10.0.0.5 password=hunter2 "
    "db=postgres://admin:s3cret@db.internal:5432/app?sslmode=require "
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl "
    'File "/home/alice/proj/app/views.py", line 42, in get_user. '
)

ROOT = "/srv/shop"
_FRAMES: list[tuple[str, str, str, int, bool]] = [
    ("/usr/lib/python3.11/threading.py", "threading", "run", 975, False),
    ("/srv/shop/venv/lib/python3.11/site-packages/django/core/handlers/base.py",
     "django.core.handlers.base", "_get_response", 197, False),
    ("/srv/shop/shop/views.py", "shop.views", "checkout", 88, True),
    ("/srv/shop/shop/services/orders.py", "shop.services.orders", "place_order", 142, True),
    ("/srv/shop/shop/services/orders.py", "shop.services.orders", "_reserve", 171, True),
    ("/srv/shop/shop/services/stock.py", "shop.services.stock", "reserve_items", 53, True),
    ("/srv/shop/shop/services/stock.py", "shop.services.stock", "_lock_rows", 77, True),
    ("/srv/shop/shop/db.py", "shop.db", "execute", 31, True),
    ("/srv/shop/venv/lib/python3.11/site-packages/psycopg/cursor.py",
     "psycopg.cursor", "execute", 732, False),
    ("/srv/shop/venv/lib/python3.11/site-packages/psycopg/cursor.py",
     "psycopg.cursor", "_raise", 740, False),
]  # fmt: skip


def _frame(abs_path: str, module: str, function: str, lineno: int, in_app: bool) -> dict[str, Any]:
    filename = abs_path[len(ROOT) + 1 :] if abs_path.startswith(ROOT + "/") else abs_path
    return {
        "filename": filename,
        "abs_path": abs_path,
        "function": function,
        "module": module,
        "lineno": lineno,
        "in_app": in_app,
    }


def payload(i: int, message: str) -> dict[str, Any]:
    """An event payload as the builder makes it (fresh dicts, like every real event)."""
    component = f"c{i % 7}"
    return {
        "event_id": f"{i:032x}",
        "timestamp": 1_795_654_040.0 + i,
        "level": "error",
        "origin": "exception",
        "message": message,
        "exception": {
            "type": "psycopg.errors.LockNotAvailable",
            "value": message,
            "stack": [_frame(*f) for f in _FRAMES],
        },
        "chain": [],
        "component": component,
        "category": "database",
        "priority": None,
        "fingerprint": "90b86290ee83589aed1e180dea5c727e",
        "repeats": 0,
        "suppressed": 0,
        "release": None,
        "environment": None,
        "server_name": None,
        "runtime": {"pid": 3502, "runtime_id": "vm:3502:63941361"},
        "context": {"order_id": 1000 + i, "table": "orders", "attempt": 2},
        "tags": {
            "category": "database",
            "component": component,
            "error_origin": "exception",
            "priority": "normal",
        },
        "request": None,
    }


def payloads(distinct: int, count: int) -> list[dict[str, Any]]:
    """Events whose frames and tags repeat; ``distinct`` messages (each ~40 chars)."""
    return [
        payload(i, f"order {i % distinct} failed for user{i % distinct}@example.com")
        for i in range(count)
    ]


def message(size: int, line: str, variant: int = 0) -> str:
    return (f"#{variant} " + line * (size // len(line) + 1))[:size]


def variants(size: int, line: str) -> list[str]:
    """Distinct messages (more than any scrubber cache holds: each is new to it)."""
    return [message(size, line, i) for i in range(_FRESH if size <= KB else 1)]


def adversarial() -> dict[str, str]:
    n = MB
    return {
        "1 MB 'a'": "a" * n,
        "1 MB '@'": "@" * n,
        "1 MB '1.'": "1." * (n // 2),
        "1 MB '='": "=" * n,
        "1 MB 'a='": "a=" * (n // 2),
        "1 MB ':'": ":" * n,
        "1 MB '1 '": "1 " * (n // 2),
        "1 MB 'a@a.'": "a@a." * (n // 4),
        "1 MB 'http://'": "http://" * (n // 7),
        "1 MB 'lat:'": "lat:" * (n // 4),
        "1 MB 'Ab1/'": "Ab1/" * (n // 4),
        "1 MB '0a-'": "0a-" * (n // 3),
    }


class _Case:
    """One benchmark case; its inputs are made when it runs and dropped after (big
    pools kept alive would make every garbage collection of later cases slower)."""

    __slots__ = ("chars", "inputs", "method", "name")

    def __init__(self, name: str, chars: int, method: str, inputs: Callable[[], list[Any]]):
        self.name = name
        self.chars = chars
        self.method = method  # "scrub_payload" or "scrub_text"
        self.inputs = inputs


def cases(quick: bool) -> list[_Case]:
    out = [
        _Case("payload, fresh message", 0, "scrub_payload", lambda: payloads(_PAYLOADS, _PAYLOADS)),
        _Case("payload, repeating", 0, "scrub_payload", lambda: payloads(100, 1000)),
    ]
    for label, size in (("100 B", 100), ("1 KB", KB), ("100 KB", 100 * KB)):
        for kind, line in (("clean", CLEAN_LINE), ("with secrets", SECRET_LINE)):
            out.append(
                _Case(
                    f"{label} {kind}",
                    size,
                    "scrub_text",
                    lambda size=size, line=line: variants(size, line),  # type: ignore[misc]
                )
            )
    if not quick:
        for name, text in adversarial().items():
            out.append(_Case(name, len(text), "scrub_text", lambda text=text: [text]))  # type: ignore[misc]
    return out


def _calls(scrubber: Any, method: str, pool: list[Any]) -> Callable[[], object]:
    scrub, items = getattr(scrubber, method), itertools.cycle(pool)
    return lambda: scrub(next(items))


def _calls_for(fn: Callable[[], object], min_time: float) -> int:
    """How many calls take about ``min_time`` (also warms caches up)."""
    number = 1
    while True:
        started = time.process_time()
        for _ in range(number):
            fn()
        elapsed = time.process_time() - started
        if elapsed >= min_time / 8 or number >= 1 << 20:
            return max(1, round(number * min_time / max(elapsed, 1e-9)))
        number *= 4


def measure(fns: list[Callable[[], object]], repeat: int, min_time: float) -> list[float]:
    """Median seconds per call of each function, the functions interleaved per repeat
    so that both see the same machine load."""
    numbers = [_calls_for(fn, min_time) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, number, sample in zip(fns, numbers, samples, strict=True):
            started = time.process_time()
            for _ in itertools.repeat(None, number):
                fn()
            sample.append((time.process_time() - started) / number)
    return [statistics.median(s) for s in samples]


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def scrub(mode: Mode) -> dict[str, Any]:
    """Every case under pyperf (one benchmark per case; 1 MB inputs only in a full run).
    Each case's inputs are made when its benchmark first runs."""
    import time

    scrubber = Scrubber(project_root=ROOT)

    def bench(case: _Case) -> Callable[[], Bench]:
        def make() -> Bench:
            call = _calls(scrubber, case.method, case.inputs())

            def run(loops: int) -> float:
                t0 = time.perf_counter()
                for _ in itertools.repeat(None, loops):
                    call()
                return time.perf_counter() - t0

            return run

        return make

    chosen = cases(quick=mode != "full")
    timed = time_benches({c.name: bench(c) for c in chosen if not c.name.startswith("1 MB")}, mode)
    slow = {c.name: bench(c) for c in chosen if c.name.startswith("1 MB")}
    if slow:  # up to seconds per call: three values are plenty
        timed.update(time_benches(slow, mode, values=3))
    return {case.name: {**timed[case.name], "chars": case.chars} for case in chosen}


def _rows(results: Results) -> list[Row]:
    runs = results["errwire"]
    na = "n/a: sentry-sdk's EventScrubber removes values by key name; it does not scan text"
    rows = []
    adversarial: list[tuple[float, str]] = []
    for name in runs[0]:
        value = median([v for r in runs for v in r[name]["values_ns"]])
        chars = runs[0][name]["chars"]
        if name.startswith("1 MB"):
            adversarial.append((value, name))
            continue
        what = f"scrubbing, {name}" + (f" ({chars:,} chars)" if chars else "")
        per_kb = f"; {fmt_ns(value / (chars / KB))} per KB" if chars >= KB else ""
        rows.append(Row("11", what + per_kb, fmt_ns(value), na))
    if adversarial:
        adversarial.sort()
        (low, low_name), (high, high_name) = adversarial[0], adversarial[-1]
        rows.append(
            Row(
                "11",
                f"scrubbing, {len(adversarial)} adversarial 1 MB inputs: fastest "
                f"({low_name.removeprefix('1 MB ')}) / slowest ({high_name.removeprefix('1 MB ')})",
                f"{fmt_ns(low)} / {fmt_ns(high)}",
                na,
            )
        )
    return rows


def scenarios(mode: Mode) -> list[Scenario]:
    return [
        Scenario(
            "11-scrub",
            [Side("errwire", Job("benchmarks.bench_scrub", "scrub", {"mode": mode}))],
            _rows,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scrub", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no 1 MB cases")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--compare", metavar="MODULE", help="also time MODULE.Scrubber")
    args = parser.parse_args(argv)
    repeat, min_time = (3, 0.05) if args.quick else (7, 0.2)

    impls: list[tuple[str, Any]] = [("errwire", Scrubber(project_root=ROOT))]
    if args.compare:
        other = importlib.import_module(args.compare)
        impls.insert(0, (args.compare, other.Scrubber(project_root=ROOT)))

    results: list[dict[str, Any]] = []
    for case in cases(args.quick):
        if args.only not in case.name:
            continue
        pool = case.inputs()
        gc.collect()
        medians = measure([_calls(s, case.method, pool) for _, s in impls], repeat, min_time)
        del pool
        row: dict[str, Any] = {"case": case.name, "chars": case.chars}
        for (label, _), value in zip(impls, medians, strict=True):
            row[label] = value
        results.append(row)
        if not args.json:
            _print_row(row, impls, first=len(results) == 1, repeat=repeat)

    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _print_row(
    row: dict[str, Any], impls: list[tuple[str, Any]], *, first: bool, repeat: int
) -> None:
    labels = [label for label, _ in impls]
    if first:
        python = sys.version.split()[0]
        print(f"privacy scrubbing, Python {python}, medians of {repeat} repeats (CPU time)")
        print()
        head = "".join(f" {label[:16]:>16} |" for label in labels)
        extra = f" {'speed-up':>8} |" if len(labels) == 2 else f" {'per KB':>10} |"
        print(f"| {'case':<28} | {'chars':>9} |{head}{extra}")
        print(
            f"|{'-' * 30}|{'-' * 11}|"
            + "".join(f"{'-' * 18}|" for _ in labels)
            + "-" * (len(extra) - 1)
            + "|"
        )
    cells = "".join(f" {fmt(row[label]):>16} |" for label in labels)
    chars = f"{row['chars']:,}" if row["chars"] else "-"
    if len(labels) == 2:
        extra = f" {row[labels[0]] / row[labels[1]]:>7.1f}x |"
    else:
        per_kb = row[labels[0]] / (row["chars"] / KB) if row["chars"] else None
        extra = f" {fmt(per_kb) if per_kb is not None else '-':>10} |"
    print(f"| {row['case']:<28} | {chars:>9} |{cells}{extra}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
