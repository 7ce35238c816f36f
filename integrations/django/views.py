"""``health``: a JSON view users can route to probe this process's telemetry.

``path("health/errwire/", errwire.integrations.django.views.health)``. Answers
200 when telemetry works (or is switched off on purpose) and 503 when it is
configured on but not running, its circuit breaker is open, its queue is full,
its worker died, or most sends fail.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from errwire import _api

from . import conf

__all__ = ["FAILURE_RATE", "health", "health_report"]

FAILURE_RATE = 0.5  # more failed sends than this share of attempts is unhealthy


def health_report() -> dict[str, Any]:
    """The health view's body: ``status`` is ``ok``, ``disabled`` or ``unhealthy``."""
    problems: list[str] = []
    try:
        expected = conf.get_config().enabled
    except ImproperlyConfigured as exc:
        expected = True
        problems.append(f"configuration: {exc}")
    snap = _api.status()
    if not snap.get("initialised"):
        if expected and not problems:
            problems.append("errwire is not running")
        return {
            "status": "unhealthy" if problems else "disabled",
            "problems": problems,
            "enabled": False,
        }
    counters = snap["counters"]
    queue = snap["queue"]
    breaker = snap["delivery"]["breaker"]
    if breaker.get("state") == "open":
        problems.append("circuit breaker open")
    if queue["depth"] >= queue["capacity"]:
        problems.append("queue full")
    if counters["captured"] and not snap["worker_alive"]:
        problems.append("worker thread not running")
    failed, delivered = counters["failed"], counters["delivered"]
    if failed and failed / (failed + delivered) > FAILURE_RATE:
        problems.append(f"failure rate {failed / (failed + delivered):.0%}")
    return {
        "status": "unhealthy" if problems else ("ok" if snap["enabled"] else "disabled"),
        "problems": problems,
        "enabled": snap["enabled"],
        "worker_alive": snap["worker_alive"],
        "transport": snap["delivery"].get("transport"),
        "breaker": breaker.get("state"),
        "queue": {"depth": queue["depth"], "capacity": queue["capacity"]},
        "outbox_pending": snap["outbox"]["pending"],
        "counters": {
            key: counters[key] for key in ("captured", "delivered", "spooled", "failed", "rejected")
        }
        | {"dropped": sum(counters["dropped"].values())},
    }


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    report = health_report()
    return JsonResponse(report, status=503 if report["status"] == "unhealthy" else 200)
