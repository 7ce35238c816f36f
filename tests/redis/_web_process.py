"""A web process for the fleet tests: errwire in Redis mode, driven line by line.

Run as ``python -m tests.redis._web_process NAME``; settings come from ERRWIRE_*
variables. Commands on stdin, one per line; each answers one JSON line on stdout:

    capture N COMPONENT   N distinct errors (distinct fingerprints) from this process
    same N                the same error N times (one fingerprint, shared by processes)
    status                this process's counters and forwarder state
    drain SECONDS         flush until nothing waits in the forward spool (or timeout)
    exit                  shut down (final heartbeat) and print the final counters
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import errwire


def word(n: int) -> str:
    """``n`` in letters only: fingerprints normalise digits, not words."""
    letters = "ghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, len(letters))
        out = letters[r] + out
        if n == 0:
            return out


def same() -> None:
    raise LookupError("the same error in every process")


def state() -> dict[str, Any]:
    s = errwire.status()
    return {"counters": s["counters"], "bus": s.get("bus", {})}


def main() -> int:
    name = sys.argv[1]
    runtime = errwire.init()
    pause = threading.Event()
    for line in sys.stdin:
        command, *args = line.split()
        reply: dict[str, Any] = {"ok": True}
        if command == "capture":
            for i in range(int(args[0])):
                try:
                    raise ValueError(f"evt {name} {word(i)} marker-{name}-{i}-{args[1]}")
                except ValueError as exc:
                    errwire.capture_error(exc, component=args[1])
            reply["flushed"] = errwire.flush(30)
        elif command == "same":
            for _ in range(int(args[0])):
                try:
                    same()
                except LookupError as exc:
                    errwire.capture_error(exc, component="dup")
            reply["flushed"] = errwire.flush(30)
        elif command == "status":
            reply.update(state())
        elif command == "drain":
            deadline = time.monotonic() + float(args[0])
            while time.monotonic() < deadline:
                errwire.flush(1)
                current = state()
                if current["counters"]["spooled"] == 0 and current["bus"]["spool_pending"] == 0:
                    break
                pause.wait(0.05)
            reply.update(state())
        elif command == "exit":
            errwire.flush(30)
            reply.update(state())
            errwire.shutdown(10)
            reply["counters"] = runtime.counters()  # after the final heartbeat
        print(json.dumps(reply), flush=True)
        if command == "exit":
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
