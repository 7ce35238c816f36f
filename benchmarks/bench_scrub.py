"""Privacy scrubbing cost per message size, and on adversarial input.

``python -m benchmarks.bench_scrub [--quick] [--json]``

Scrubbing runs on the worker thread, so this is throughput, not request latency.
Each case is timed with ``timeit.repeat`` in process CPU time (robust to other
load on the machine); the value is the median over the repeats of the time per
call. Messages are realistic error text: a traceback line, a log line with a
``key=value`` tail, an email address, an IP, a URL with credentials and a query,
a bearer token, ordinary words and numbers; "clean" variants carry no secrets
(one pass over the rules), "with secrets" variants do (a second pass confirms
nothing more is found). The adversarial cases are the inputs a backtracking
regular expression would choke on: their time must grow linearly with size.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Iterator

from errwire._privacy import Scrubber

KB = 1024
MB = 1024 * KB
_VARIANTS = 5000  # more than the scrubber's cache holds

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


def message(size: int, line: str, variant: int = 0) -> str:
    return (f"#{variant} " + line * (size // len(line) + 1))[:size]


def variants(size: int, line: str) -> Iterator[str]:
    """Distinct messages, endlessly: short texts are cached by the scrubber, and a
    benchmark of cache hits would say nothing about scrubbing."""
    texts = (
        [message(size, line, i) for i in range(_VARIANTS)] if size <= KB else [message(size, line)]
    )
    return itertools.cycle(texts)


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
    }


def cpu_median(fn: Callable[[], object], repeat: int, min_time: float) -> float:
    """Median seconds per call: each repeat runs enough calls to last ``min_time``."""
    timer = timeit.Timer(fn, timer=time.process_time)
    number, _ = timer.autorange()
    number = max(1, int(number * min_time / 0.2))
    return statistics.median(t / number for t in timer.repeat(repeat=repeat, number=number))


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scrub", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    repeat, min_time = (3, 0.05) if args.quick else (7, 0.2)
    scrubber = Scrubber()

    cases: list[tuple[str, int, Iterator[str]]] = []
    for label, size in (("100 B", 100), ("1 KB", KB), ("100 KB", 100 * KB)):
        cases.append((f"{label} clean", size, variants(size, CLEAN_LINE)))
        cases.append((f"{label} with secrets", size, variants(size, SECRET_LINE)))
    for name, text in adversarial().items():
        cases.append((name, len(text), itertools.repeat(text)))

    results: list[dict[str, object]] = []
    for name, size, texts in cases:
        median = cpu_median(lambda texts=texts: scrubber.scrub_text(next(texts)), repeat, min_time)  # type: ignore[misc]
        per_kb = median / (size / KB)
        results.append({"case": name, "chars": size, "median_s": median, "per_kb_s": per_kb})

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    python = sys.version.split()[0]
    print(f"errwire privacy scrubbing, Python {python}, medians of {repeat} repeats (CPU time)")
    print()
    print(f"| {'case':<24} | {'size':>10} | {'median per call':>15} | {'per KB':>10} |")
    print(f"|{'-' * 26}|{'-' * 12}|{'-' * 17}|{'-' * 12}|")
    for r in results:
        chars = int(str(r["chars"]))
        median = float(str(r["median_s"]))
        per_kb = float(str(r["per_kb_s"]))
        print(f"| {r['case']!s:<24} | {chars:>10,} | {fmt(median):>15} | {fmt(per_kb):>10} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
