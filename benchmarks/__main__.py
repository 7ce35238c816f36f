"""``python -m benchmarks [--quick]``: run every benchmark and print one table.

Timing loops run under pyperf (each benchmark in its own worker processes,
values are medians); memory and throughput run in their own subprocesses.
The table is printed and written to ``benchmarks/RESULTS.md``; raw numbers go
to ``benchmarks/results.json`` (not committed).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# scenario -> (floor it is compared with, target as a ratio or absolute ns, target text)
TARGETS: dict[str, tuple[str | None, float | None, str]] = {
    "disabled capture_error, 3 frames": ("floor: empty function call", 1.5, "<= 1.5x empty call"),
    "disabled capture_error, 20 frames": ("floor: empty function call", 1.5, "<= 1.5x empty call"),
    "disabled builder chain": ("floor: empty function call", None, ""),
    "enabled capture_error, 3 frames": ("floor: SimpleQueue.put", None, ""),
    "enabled capture_error, 10 frames": ("floor: SimpleQueue.put", -3000.0, "<= 3 us"),
    "enabled capture_error, 20 frames": ("floor: SimpleQueue.put", None, ""),
    "storm guard: duplicate folded": ("floor: SimpleQueue.put", None, ""),
    "bus publish": ("floor: SimpleQueue.put", None, "(seed: < 500 ns in Go)"),
    "dedup check, unique": ("floor: dict lookup", None, "(seed: < 100 ns in Go)"),
    "dedup check, duplicate": ("floor: dict lookup", None, "(seed: < 100 ns in Go)"),
    "dedup check, 80% duplicate": ("floor: dict lookup", None, "(seed: < 100 ns in Go)"),
}
PEER_OF = {
    "disabled capture_error, 3 frames": "sentry-sdk capture_exception uninitialised, 3 frames",
    "disabled capture_error, 20 frames": "sentry-sdk capture_exception uninitialised, 20 frames",
    "enabled capture_error, 3 frames": "sentry-sdk capture_exception enabled, 3 frames",
    "enabled capture_error, 10 frames": "sentry-sdk capture_exception enabled, 10 frames",
    "enabled capture_error, 20 frames": "sentry-sdk capture_exception enabled, 20 frames",
}


def _fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.0f} ns"


def run_timings(quick: bool, out: Path) -> dict[str, float]:
    args = [sys.executable, "-m", "benchmarks.core", "--quiet", "-o", str(out)]
    if quick:
        args += ["--processes", "1", "--values", "3", "--warmups", "1", "--min-time", "0.01"]
    else:
        args += ["--fast"]
    if out.exists():
        out.unlink()
    subprocess.run(args, cwd=ROOT, check=True)
    data = json.loads(out.read_text())
    medians: dict[str, float] = {}
    for bench in data["benchmarks"]:
        values = [v for run in bench["runs"] for v in run.get("values", [])]
        medians[bench["metadata"]["name"]] = statistics.median(values) * 1e9
    return medians


def run_system(which: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.system", which],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def table(medians: dict[str, float], memory: dict[str, Any], throughput: dict[str, Any]) -> str:
    rows = [
        "| scenario | errwire (median) | floor | x floor | sentry-sdk | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, value in medians.items():
        if name.startswith(("floor:", "sentry-sdk")):
            continue
        floor_name, target, target_text = TARGETS.get(name, (None, None, ""))
        floor = medians.get(floor_name) if floor_name else None
        ratio = value / floor if floor else None
        peer = medians.get(PEER_OF.get(name, ""))
        verdict = ""
        if target is not None and target > 0 and ratio is not None:
            verdict = "pass" if ratio <= target else "miss"
        elif target is not None and target < 0:
            verdict = "pass" if value <= -target else "miss"
        rows.append(
            "| {} | {} | {} | {} | {} | {} | {} |".format(
                name,
                _fmt_ns(value),
                f"{_fmt_ns(floor)} ({floor_name.removeprefix('floor: ')})"
                if floor and floor_name
                else "",
                f"{ratio:.2f}x" if ratio else "",
                f"{_fmt_ns(peer)} ({peer / value:.0f}x slower)" if peer else "",
                target_text,
                verdict,
            )
        )

    def row(*cells: str) -> str:
        return "| " + " | ".join(cells) + " |"

    mem = memory["bytes_per_event"]
    rss = memory["peak_rss_mb"]
    eps = throughput["events_per_second"]
    rows += [
        row(
            "memory per queued event (10-frame error)",
            f"{mem:.0f} B",
            "",
            "",
            "",
            "<= 1 KB",
            _verdict(mem <= 1024),
        ),
        row(
            f"peak RSS holding a full {memory['events']:,}-event queue",
            f"{rss:.1f} MB",
            "",
            "",
            "",
            "",
            "",
        ),
        row(
            "worker throughput to MemoryTransport (all stages, real scrubber)",
            f"{eps:,.0f} events/s",
            "",
            "",
            "",
            ">= 20,000/s",
            _verdict(eps >= 20_000),
        ),
    ]
    return "\n".join(rows)


def _verdict(ok: bool) -> str:
    return "pass" if ok else "miss"


def environment() -> str:
    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (
        f"{datetime.date.today().isoformat()}, {platform.machine()} with {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, errwire {version('errwire')}, "
        f"sentry-sdk {version('sentry-sdk')}, pyperf {version('pyperf')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run (under a minute); numbers are rough"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print only; do not write RESULTS.md"
    )
    opts = parser.parse_args()
    raw = HERE / ("results-quick.json" if opts.quick else "results.json")
    medians = run_timings(opts.quick, raw.with_suffix(".pyperf.json"))
    memory = run_system("memory")
    throughput = run_system("throughput")
    text = table(medians, memory, throughput)
    floors = ", ".join(
        f"{k.removeprefix('floor: ')} {_fmt_ns(v)}"
        for k, v in medians.items()
        if k.startswith("floor:")
    )
    report = (
        f"{text}\n\nFloors measured in the same run: {floors}.\n\n"
        f"Measured {environment()}; `python -m benchmarks{' --quick' if opts.quick else ''}`; "
        "timings are pyperf medians of every value from every worker process.\n"
    )
    print(report)
    raw.write_text(
        json.dumps({"medians_ns": medians, "memory": memory, "throughput": throughput}, indent=2)
    )
    if not opts.quick and not opts.no_write:
        (HERE / "RESULTS.md").write_text("# errwire benchmark results\n\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
