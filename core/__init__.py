"""errwire: error telemetry that costs nothing when off and never blocks when on."""

from __future__ import annotations

__version__ = "0.1.0"
