"""Benchmarks that are not a timing loop: memory per queued event and worker
throughput. Each prints one JSON object; ``python -m benchmarks`` runs them in
their own subprocesses."""

from __future__ import annotations

import json
import resource
import sys
import time
import tracemalloc

from errwire._config import make_config
from errwire._runtime import Runtime, default_scrubber
from errwire._transport import MemoryTransport

from ._fixtures import activate, exception_with_frames, quiet_runtime


def memory_per_event(count: int = 10_000) -> dict[str, float]:
    """Bytes retained per queued event (the exception itself excluded), and the
    peak RSS of a process holding a full queue."""
    import errwire

    exc = exception_with_frames(10)
    runtime = quiet_runtime(storm_window_seconds=0, queue_size=count)
    activate(runtime)
    errwire.capture_error(exc)  # warm caches
    runtime.worker_lane.drain()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(count):
        errwire.capture_error(exc, component="db", context={"table": "orders"})
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert runtime.worker_lane.depth == count
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return {
        "bytes_per_event": grown / count,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "events": count,
    }


def worker_throughput(count: int = 20_000) -> dict[str, float]:
    """Events per second from a full queue through every stage (with the real
    scrubber) to an in-memory transport."""
    import tempfile

    import errwire

    config = make_config(
        {
            "data_dir": tempfile.mkdtemp(prefix="errwire-bench-"),
            "queue_size": count,
            "storm_window_seconds": 0,
            "dedup_window_seconds": 0,
            "rate_limit_per_minute": 10**9,
        }
    )
    transport = MemoryTransport()
    runtime = Runtime(config, transport=transport, scrub=default_scrubber(config), autostart=False)
    activate(runtime)
    excs = [
        exception_with_frames(10, f"order {i} failed for user{i}@example.com") for i in range(100)
    ]
    for i in range(count):
        errwire.capture_error(excs[i % 100], component=f"c{i % 7}", context={"i": i})
    assert runtime.worker_lane.depth == count
    t0 = time.perf_counter()
    runtime.worker_lane.start()
    assert runtime.flush(120.0)
    elapsed = time.perf_counter() - t0
    assert len(transport.events) == count, len(transport.events)
    runtime.shutdown(5.0)
    return {"events_per_second": count / elapsed, "events": count, "seconds": elapsed}


if __name__ == "__main__":
    which = sys.argv[1]
    result = {"memory": memory_per_event, "throughput": worker_throughput}[which]()
    print(json.dumps(result))
