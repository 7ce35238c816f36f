"""The benchmark runner works: every scenario runs, the table and the raw JSON
are written where asked, and pass / miss are decided. Speed is not checked here
(``make bench`` measures it); a ``--smoke`` run uses tiny sizes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import COLUMNS, run_scenario, table
from benchmarks._harness import verdict as noise_verdict
from benchmarks._registry import Job, Row, Scenario, Side, ratio, verdict
from benchmarks.bench_load import parse_wrk

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:40000/
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.90ms    7.16ms  62.03ms   89.62%
    Req/Sec     1.56k   262.44     1.82k    80.00%
  Latency Distribution
     50%    3.81ms
     75%    6.66ms
     90%   14.06ms
     99%  850.00us
  1543 requests in 1.00s, 208.03KB read
Requests/sec:   1543.21
Transfer/sec:    207.98KB
"""


def test_wrk_latency_output_is_parsed_with_its_units() -> None:
    found = parse_wrk(WRK_OUTPUT)
    assert found == {"p50_ns": 3_810_000.0, "p99_ns": 850_000.0, "requests_per_second": 1543.21}


def test_unexpected_wrk_output_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="unexpected wrk output"):
        parse_wrk("connection refused")


def test_ratio_says_how_many_times_cheaper_or_faster_errwire_is() -> None:
    assert ratio(100.0, 1000.0) == "10.0x"  # costs: peer / errwire
    assert ratio(1000.0, 100.0) == "0.10x"
    assert ratio(300.0, 100.0, higher_is_better=True) == "3.00x"  # rates: errwire / peer
    assert ratio(0.0, 100.0) == ""


def test_verdicts() -> None:
    assert verdict(True) == "pass"
    assert verdict(False) == "**miss**"
    assert noise_verdict(1000.0, 500.0, 2000.0) == "pass"
    assert noise_verdict(3000.0, 500.0, 2000.0) == "**miss**"
    assert noise_verdict(1800.0, 500.0, 2000.0) == "within noise"


def test_table_orders_rows_by_scenario_number_and_escapes_pipes() -> None:
    rows = [Row("10", "later", "1 s"), Row("2", "a | b", "2 ns", result="pass")]
    lines = table(rows).splitlines()
    assert lines[0] == "| " + " | ".join(COLUMNS) + " |"
    assert lines[2].startswith("| 2 | a \\| b | 2 ns |")
    assert lines[3].startswith("| 10 | later |")


def test_a_failing_side_is_reported_not_raised() -> None:
    scenario = Scenario(
        "broken",
        [Side("errwire", Job("benchmarks._registry", "no_such_function"))],
        lambda results: [Row("1", "never", "")],
    )
    logged: list[str] = []
    found = run_scenario(scenario, logged.append)
    assert found["rows"] == []
    assert "no_such_function" in found["error"]


def block_forever() -> dict[str, Any]:
    """A side that never answers (run in the runner's child process)."""
    threading.Event().wait()
    raise AssertionError("unreachable")


def test_a_side_that_hangs_is_killed_when_its_timeout_runs_out() -> None:
    scenario = Scenario(
        "hangs",
        [Side("errwire", Job("tests.benchmarks.test_runner", "block_forever", timeout=1.0))],
        lambda results: [Row("1", "never", "")],
    )
    found = run_scenario(scenario, lambda text: None)
    assert found["rows"] == []
    assert "no result after 1 s" in found["error"]


def _listed() -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--list"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line.split(":", 1)[0] for line in proc.stdout.splitlines()]


@pytest.mark.slow
def test_smoke_run_executes_every_scenario_and_writes_where_asked(tmp_path: Path) -> None:
    before = RESULTS.read_bytes() if RESULTS.exists() else None
    expected = _listed()
    raw, markdown = tmp_path / "results.json", tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--json", str(raw),
         "--markdown", str(markdown)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    data: dict[str, Any] = json.loads(raw.read_text())
    assert len(expected) >= 15
    assert list(data["scenarios"]) == expected
    rows: list[dict[str, str]] = []
    for key, found in data["scenarios"].items():
        assert found["error"] is None, (key, found["error"])
        assert found["rows"], key
        assert all(results for results in found["sides"].values()), key
        rows += found["rows"]
    numbers = {row["number"] for row in rows}
    assert {str(n) for n in range(1, 12)} <= numbers  # every scenario of the issue list
    judged = [row for row in rows if row["target"] and "compiled language" not in row["target"]]
    assert judged
    verdicts = ("pass", "**miss**", "within noise")
    # a budget judged at this machine's speed keeps its absolute verdict beside it
    absolute = re.compile(r" \(.+ absolute: (pass|\*\*miss\*\*|within noise)\)")
    assert all(absolute.sub("", row["result"]) in verdicts for row in judged)
    text = markdown.read_text()
    assert text.startswith("# errwire benchmark results")
    assert "| # | scenario | errwire |" in text
    assert "`python -m benchmarks --smoke`" in text
    assert data["environment"]["packages"]["sentry-sdk"] != "not installed"
    assert (RESULTS.read_bytes() if RESULTS.exists() else None) == before
