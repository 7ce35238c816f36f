"""What the per-request benchmarks share: timing, the subprocess per measurement,
the command line. Each framework's module supplies ``measure``, ``run_all`` and
``table``; this keeps the way they are timed and run identical."""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "Run",
    "http_scope",
    "main",
    "run_one",
    "sentry_available",
    "start_response",
    "timed",
    "us",
]

Run = Callable[[int], None]
Results = dict[str, dict[str, dict[str, float]]]


def http_scope(path: str) -> dict[str, Any]:
    """A plain ASGI HTTP GET scope (copied per request by the caller)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def start_response(*_args: Any) -> Callable[[bytes], object]:
    """A WSGI ``start_response`` that does nothing (the server's part is not measured)."""
    return len


def timed(run: Run, requests: int) -> float:
    """CPU ns per request; the garbage collector is off while timing, as in ``timeit``
    (frameworks allocate a lot per request; collections would land in random rounds)."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time_ns()
        run(requests)
        return (time.process_time_ns() - start) / requests
    finally:
        gc.enable()


def sentry_available() -> bool:
    try:
        import sentry_sdk  # noqa: F401
    except ImportError:
        return False
    return True


def run_one(module: str, target: str, variant: str, requests: int, rounds: int) -> dict[str, float]:
    """One measurement in a fresh process (sentry-sdk patches frameworks process-wide)."""
    proc = subprocess.run(
        [sys.executable, "-m", module, "--one", target, variant, str(requests), str(rounds)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def us(ns: float) -> str:
    return f"{ns / 1000:.2f} us"


def main(
    module: str,
    doc: str | None,
    target: str,
    measure: Callable[[str, str, int, int], dict[str, float]],
    run_all: Callable[[bool], Results],
    table: Callable[[Results], str],
) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run; numbers are rough")
    parser.add_argument("--json", action="store_true", help="print the raw medians as JSON")
    parser.add_argument("--one", nargs=4, metavar=(target, "VARIANT", "N", "ROUNDS"))
    opts = parser.parse_args()
    if opts.one:
        name, variant, n, rounds = opts.one
        print(json.dumps(measure(name, variant, int(n), int(rounds))))
        return 0
    results = run_all(opts.quick)
    print(json.dumps(results, indent=2) if opts.json else table(results))
    return 0
