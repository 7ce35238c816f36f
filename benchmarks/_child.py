"""``python -m benchmarks._child MODULE FUNCTION JSON_KWARGS``: run one side of a
scenario in this fresh process and print its result as JSON on the last line
(a result with ``"hard_exit": true`` ends the process at once, without atexit).

A fresh process per measurement keeps libraries that patch frameworks or keep
process-wide clients (sentry-sdk, OpenTelemetry) from touching the other sides.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

__all__ = ["main"]


def main(argv: list[str]) -> int:
    module, function, kwargs = argv
    result = getattr(importlib.import_module(module), function)(**json.loads(kwargs))
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
    if result.get("hard_exit"):  # sends stuck in a blackhole must not hold the exit
        os._exit(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
