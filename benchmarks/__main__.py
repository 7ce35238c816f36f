"""``python -m benchmarks [--quick | --smoke]``: every scenario, errwire beside its
peers, in one table.

Each side of a scenario (errwire, each peer, the language floor) runs in a
fresh subprocess; the sides are interleaved round by round (A B A B ...) so
drift on the machine lands on all of them alike. The table is printed; the raw
results go to a JSON file (``benchmarks/results*.json``, not committed) and, for
a full run, the table to ``benchmarks/RESULTS.md`` with the machine, Python and
package versions and the date.

``--quick`` is a rough run in under a minute (small sizes, one round, four
scenarios at a time); ``--smoke`` only proves every scenario runs (tiny sizes,
numbers meaningless). Only a full run, one scenario at a time, gives numbers
to publish.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any, cast

from ._registry import Mode, Row, Scenario, Side

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

MODULES = (
    "benchmarks.core",
    "benchmarks.system",
    "benchmarks.bench_sentry",
    "benchmarks.bench_web",
    "benchmarks.bench_django",
    "benchmarks.bench_load",
    "benchmarks.bench_scrub",
)
# modules that join when present and define ``scenarios(mode)``
OPTIONAL_MODULES = ("benchmarks.bench_fleet",)
PACKAGES = (
    "errwire",
    "sentry-sdk",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-asgi",
    "opentelemetry-instrumentation-wsgi",
    "pyperf",
    "django",
    "flask",
    "starlette",
    "uvicorn",
)
COLUMNS = (
    "#",
    "scenario",
    "errwire",
    "peer (as configured)",
    "peer",
    "ratio",
    "floor",
    "errwire / floor",
    "target",
    "result",
)
LEGEND = (
    "ratio: how many times cheaper (costs) or faster (rates) errwire is than the peer; "
    "below 1x the peer is better. errwire / floor: errwire's cost over the language "
    'floor measured in the same run. Seeds marked "compiled language" are the design\'s '
    "targets for a compiled implementation, shown for scale, not judged. "
    "n/a: the peer cannot do this job (reason given)."
)


def collect(
    mode: Mode, only: Sequence[str], skip: Sequence[str] = ()
) -> tuple[list[Scenario], list[str]]:
    """Every scenario of every module (and the optional ones that exist), filtered."""
    found: list[Scenario] = []
    notes: list[str] = []
    for name in MODULES:
        found += importlib.import_module(name).scenarios(mode)
    for name in OPTIONAL_MODULES:
        if not (HERE / f"{name.rsplit('.', 1)[1]}.py").exists():
            continue
        try:
            module = importlib.import_module(name)
            found += module.scenarios(mode)
        except Exception as exc:  # an optional module that does not work yet: say so
            notes.append(f"{name} skipped: {type(exc).__name__}: {exc}")
    if only:
        found = [s for s in found if any(part in s.key for part in only)]
    skipped = [s.key for s in found if any(part in s.key for part in skip)]
    if skipped:
        notes.append(f"Skipped on request: {', '.join(skipped)}.")
    return [s for s in found if s.key not in skipped], notes


def _env(mode: Mode) -> dict[str, str]:
    """The children's environment: no library configured from this shell's variables;
    ``BENCH_MODE`` tells them the run's size (see ``_fixtures.sentry_init``)."""
    drop = ("ERRWIRE_", "SENTRY_", "OTEL_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["BENCH_MODE"] = mode
    return env


def run_side(side: Side, mode: Mode = "full") -> dict[str, Any]:
    """One side in a fresh process (its own session: a side that hangs is killed with
    every process it started, servers included, when its timeout runs out)."""
    job = side.job
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._child", job.module, job.function,
         json.dumps(dict(job.kwargs))],
        cwd=ROOT,
        env=_env(mode),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=job.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError(f"{side.label}: no result after {job.timeout:g} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{side.label}: exit {proc.returncode}\n{stderr[-2000:]}{stdout[-500:]}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def run_scenario(scenario: Scenario, log: Any, mode: Mode = "full") -> dict[str, Any]:
    """All sides, interleaved round by round, then the rows."""
    started = time.monotonic()
    results: dict[str, list[dict[str, Any]]] = {side.label: [] for side in scenario.sides}
    try:
        for index in range(scenario.rounds):
            for side in scenario.sides:
                results[side.label].append(run_side(side, mode))
            log(f"  round {index + 1}/{scenario.rounds} ({time.monotonic() - started:.1f} s)")
        rows = scenario.rows(results)
        error = None
    except Exception as exc:
        rows = []
        error = f"{type(exc).__name__}: {exc}"
        log(f"  ERROR {error}")
    return {
        "sides": results,
        "rows": [dataclasses.asdict(row) for row in rows],
        "error": error,
        "seconds": time.monotonic() - started,
    }


def table(rows: Sequence[Row]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    ordered = sorted(rows, key=lambda r: int(r.number) if r.number.isdigit() else 99)
    out = [line(COLUMNS), "|" + "---|" * len(COLUMNS)]
    for r in ordered:
        out.append(
            line(
                (
                    r.number,
                    r.scenario,
                    r.errwire,
                    r.peer,
                    r.peer_value,
                    r.ratio,
                    r.floor,
                    r.over_floor,
                    r.target,
                    r.result,
                )
            )
        )
    return "\n".join(out)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _wrk() -> str:
    try:
        proc = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    return (proc.stdout or proc.stderr).split(" [", 1)[0].strip() or "unknown"


def environment() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {_cpu()}, {os.cpu_count()} cores",
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {p: _version(p) for p in PACKAGES},
        "wrk": _wrk(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def report(rows: Sequence[Row], env: dict[str, Any], command: str, extra: Sequence[str]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    load = env.get("load_average")
    load_text = f" (load average at the start {load[0]:.1f})" if load else ""
    lines = [
        table(rows),
        "",
        LEGEND,
        "",
        f"Measured {env['date']} on {env['machine']}{load_text}, {env['python']}, "
        f"{packages}, {env['wrk']}; `{command}`, {env['wall_seconds']:.0f} s.",
    ]
    lines += [f"\n{note}" for note in extra]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a rough run, under a minute")
    size.add_argument(
        "--smoke", action="store_true", help="prove every scenario runs (numbers meaningless)"
    )
    parser.add_argument(
        "--only", action="append", default=[], metavar="TEXT",
        help="run the scenarios whose key contains TEXT (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--skip", action="append", default=[], metavar="TEXT",
        help="leave out the scenarios whose key contains TEXT (repeatable; the report says so)",
    )  # fmt: skip
    parser.add_argument(
        "--json", type=Path, metavar="PATH",
        help="raw results (default: benchmarks/results.json, results-quick.json, ...)",
    )  # fmt: skip
    parser.add_argument(
        "--markdown", type=Path, metavar="PATH",
        help="the report (default: benchmarks/RESULTS.md for a full run, none otherwise)",
    )  # fmt: skip
    parser.add_argument(
        "--jobs", type=int, metavar="N",
        help="scenarios run at once (default: 1 for a full run, 4 for --quick and --smoke; "
        "a full run is always one at a time: parallel runs distort timings)",
    )  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    opts = parser.parse_args(argv)
    mode: Mode = "smoke" if opts.smoke else "quick" if opts.quick else "full"
    scenarios, notes = collect(mode, opts.only, opts.skip)
    if mode != "full":
        notes.append(
            f"A {mode} run: small sizes, {'' if opts.jobs == 1 else 'scenarios in parallel, '}"
            "sentry-sdk's auto-enabling integrations off (start-up time); numbers are rough."
        )
    if opts.list:
        for scenario in scenarios:
            sides = ", ".join(side.label for side in scenario.sides)
            print(f"{scenario.key}: {sides} x {scenario.rounds} round(s)")
        return 0

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    for note in notes:
        log(note)
    env = environment()
    started = time.monotonic()
    jobs = opts.jobs or (1 if mode == "full" else 4)
    if jobs > 1 and mode == "full":
        parser.error("a full run measures one scenario at a time (--jobs 1)")

    def one(numbered: tuple[int, Scenario]) -> dict[str, Any]:
        index, scenario = numbered
        log(f"[{index}/{len(scenarios)}] {scenario.key}")
        return run_scenario(scenario, lambda text: log(f"{scenario.key}: {text.strip()}"), mode)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        found = list(pool.map(one, enumerate(scenarios, 1)))
    raw: dict[str, Any] = {s.key: result for s, result in zip(scenarios, found, strict=True)}
    env["wall_seconds"] = time.monotonic() - started
    rows = [Row(**row) for found in raw.values() for row in found["rows"]]
    errors = [f"{key}: {found['error']}" for key, found in raw.items() if found["error"]]
    command = "python -m benchmarks" + {"full": "", "quick": " --quick", "smoke": " --smoke"}[mode]
    command += "".join(f" --only {part}" for part in opts.only)
    command += "".join(f" --skip {part}" for part in opts.skip)
    extra = notes + [f"**Failed:** {error.splitlines()[0]}" for error in errors]
    text = report(rows, env, command, extra)
    print(text)
    json_path = opts.json or HERE / {
        "full": "results.json", "quick": "results-quick.json", "smoke": "results-smoke.json"
    }[mode]  # fmt: skip
    json_path.write_text(
        json.dumps({"mode": mode, "environment": env, "notes": notes, "scenarios": raw}, indent=1)
    )
    markdown = opts.markdown or (HERE / "RESULTS.md" if mode == "full" and not opts.only else None)
    if markdown is not None:
        title = "# errwire benchmark results\n\n"
        markdown.write_text(title + text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(cast("Sequence[str]", sys.argv[1:])))
