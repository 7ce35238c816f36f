"""What the per-request benchmarks (scenario 8) share: timing, paired rounds, the
peers' setup, the sizes per mode and the table rows, so Django, Flask and
Starlette are measured and reported the same way."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._registry import Mode, Results, Row, fmt_ns, median_of, ratio

__all__ = [
    "PEERS",
    "Run",
    "compared",
    "discard_transport",
    "http_scope",
    "otel_tracer_provider",
    "request_rows",
    "sizes",
    "start_response",
    "timed",
    "verdict",
]

Run = Callable[[int], None]

# side label -> what the table says about how the peer is configured
PEERS = {
    "sentry-sdk": "sentry-sdk {integration}, errors only (its default), discarding transport",
    "sentry-sdk + tracing": "sentry-sdk {integration}, traces_sample_rate=1.0, "
    "discarding transport",
    "opentelemetry": "OpenTelemetry {otel} middleware, SDK TracerProvider, "
    "BatchSpanProcessor with a discarding exporter, default sampler",
}

_SIZES: dict[str, tuple[int, int, int]] = {
    # requests per round, rounds inside one process, rounds of the runner
    "smoke": (30, 3, 1),
    "quick": (200, 5, 1),
    "full": (1000, 9, 2),
}


def sizes(mode: Mode) -> tuple[int, int, int]:
    return _SIZES[mode]


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


def compared(runs: dict[str, Run], requests: int, rounds: int) -> dict[str, float]:
    """Medians per variant, and of the per-round differences against the first
    ("bare"), with half their interquartile range (``<name>_overhead_spread``).
    The variants run in turn, round by round, the order rotating."""
    for run in runs.values():
        run(max(20, requests // 10))  # warm up: first-request setup, caches
    names = list(runs)
    values: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)  # no variant always runs first
        for name in names[shift:] + names[:shift]:
            values[name].append(timed(runs[name], requests))
    result = {name: statistics.median(found) for name, found in values.items()}
    base = names[0]
    for name in names[1:]:
        diffs = [y - x for x, y in zip(values[base], values[name], strict=True)]
        result[f"{name}_overhead"] = statistics.median(diffs)
        q1, _, q3 = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else (0.0, 0.0, 0.0)
        result[f"{name}_overhead_spread"] = (q3 - q1) / 2
    return result


def verdict(overhead: float, spread: float, budget: float) -> str:
    """pass / miss against the budget, or "within noise" when the spread of the
    per-round differences straddles it (a loaded machine cannot resolve it)."""
    if overhead + spread <= budget:
        return "pass"
    if overhead - spread > budget:
        return "**miss**"
    return "within noise"


def discard_transport() -> Any:
    """A sentry-sdk transport class that drops envelopes (no network in the timing)."""
    from sentry_sdk.transport import Transport

    class Discard(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            return None

    return Discard


def otel_tracer_provider() -> None:
    """The OpenTelemetry SDK set up as its docs recommend for production tracing:
    a ``TracerProvider`` with a ``BatchSpanProcessor``; the exporter discards."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    trace.set_tracer_provider(provider)


def peer_measure(bare: Run, make_peer: Callable[[], Run], requests: int, rounds: int,
                 patches: bool) -> dict[str, float]:  # fmt: skip
    """A peer's overhead in its own process. One that patches the framework for the
    whole process (sentry-sdk) is set up after the bare rounds; a plain middleware
    (OpenTelemetry) alternates with the bare app round by round."""
    if not patches:
        found = compared({"bare": bare, "peer": make_peer()}, requests, rounds)
        return {
            "bare": found["bare"],
            "peer": found["peer"],
            "overhead": found["peer_overhead"],
            "spread": found["peer_overhead_spread"],
        }
    bare(max(20, requests // 10))
    bare_values = [timed(bare, requests) for _ in range(rounds)]
    peer = make_peer()
    peer(max(20, requests // 10))
    peer_values = [timed(peer, requests) for _ in range(rounds)]
    return {
        "bare": statistics.median(bare_values),
        "peer": statistics.median(peer_values),
        "overhead": statistics.median(peer_values) - statistics.median(bare_values),
        "spread": 0.0,
    }


def _pm(ns: float, spread: float) -> str:
    return f"{ns / 1000:+.2f} ± {spread / 1000:.2f} µs"


def request_rows(
    title: str,
    budget: float,
    results: Results,
    labels: dict[str, str],
    layer_text: str,
    extra: Sequence[tuple[str, str, str]] = (),
) -> list[Row]:
    """Rows for one framework: errwire's overhead in the app beside each peer's, then
    errwire's layer alone. ``extra``: (result key, scenario text suffix, note) for
    more errwire-only rows (Django's do-nothing middleware)."""
    runs = results["errwire"]
    app = [r["app"] for r in runs]
    overhead = median_of(app, "errwire_overhead")
    spread = median_of(app, "errwire_overhead_spread")
    bare = median_of(app, "bare")
    target = f"<= {budget / 1000:g} µs"
    result = verdict(overhead, spread, budget)
    rows = []
    for side, text in labels.items():
        if side not in results:
            continue
        peer = median_of(results[side], "overhead")
        rows.append(
            Row(
                "8",
                f"{title}: overhead per request (bare {fmt_ns(bare)})",
                _pm(overhead, spread),
                text,
                f"{peer / 1000:+.2f} µs",
                ratio(overhead, peer),
                target=target,
                result=result,
            )
        )
    for key, suffix, note in extra:
        value = median_of(app, f"{key}_overhead")
        value_spread = median_of(app, f"{key}_overhead_spread")
        rows.append(Row("8", f"{title}: {suffix}", _pm(value, value_spread), note))
    layer = [r["layer"] for r in runs]
    layer_overhead = median_of(layer, "errwire_overhead")
    layer_spread = median_of(layer, "errwire_overhead_spread")
    rows.append(
        Row(
            "8",
            f"{title}: errwire's layer alone ({layer_text})",
            _pm(layer_overhead, layer_spread),
            "n/a: the peers' layers patch or wrap the framework; timed in the app above",
            target=target,
            result=verdict(layer_overhead, layer_spread, budget),
        )
    )
    return rows
