"""The demo's pages: some succeed, most fail in the ways real applications do."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

import errwire
from errwire._local import read_events
from errwire.integrations.django import conf

from . import payments
from .models import Order

log = logging.getLogger("demo.shop")

PAGES = [
    ("/ok/", "succeeds: creates an order in SQLite", "nothing is captured"),
    ("/fail/database/", "queries a table that does not exist", "category database"),
    (
        "/fail/timeout/",
        "the payment provider never answers",
        "category timeout, component payments (under ASGI: shop, the view's)",
    ),
    ("/fail/validation/?quantity=-3", "rejects a negative quantity", "category validation"),
    ("/fail/noisy/", "the same error 500 times in a loop", "1 event; the rest are counted"),
    (
        "/fail/secrets/",
        "an error with a card number, API key and password",
        "scrubbed: shows the stored event",
    ),
    ("/fail/logged/", "an error that is handled and logged", "captured by ErrwireHandler"),
    ("/fail/not-found/", "raises Http404", "4xx: not an error by default"),
    ("/async/ok/", "an async view that succeeds", "nothing is captured"),
    ("/async/fail/", "an async view whose await times out", "captured under ASGI or WSGI alike"),
]


def index(request: HttpRequest) -> HttpResponse:
    try:
        config = conf.get_config()
        destination = (
            f"Sentry ({config.dsn.split('@')[-1]})"
            if config.dsn and config.resolved_transport == "sentry"
            else f"the local SQLite sink {config.resolved_local_db_path}"
        )
    except Exception as exc:
        destination = f"nowhere: errwire is misconfigured ({exc})"
    return render(
        request,
        "demo/index.html",
        {"pages": PAGES, "destination": destination, "status": errwire.status()},
    )


def ok(request: HttpRequest) -> HttpResponse:
    order = Order.objects.create(reference=uuid.uuid4().hex[:12], quantity=1)
    return HttpResponse(f"Order {order.reference} created; {Order.objects.count()} orders so far.")


def fail_database(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT total FROM invoices WHERE order_id = %s", [42])
    return HttpResponse("unreachable")


def fail_timeout(request: HttpRequest) -> HttpResponse:
    payments.charge("A-1001", 4999)
    return HttpResponse("charged")


def fail_validation(request: HttpRequest) -> HttpResponse:
    quantity = int(request.GET.get("quantity", "-1"))
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    return HttpResponse(f"{quantity} ok")


def fail_noisy(request: HttpRequest) -> HttpResponse:
    accepted = 0
    for attempt in range(500):
        try:
            raise ConnectionResetError(
                f"inventory service reset the connection (attempt {attempt})"
            )
        except ConnectionResetError as exc:
            accepted += errwire.capture_error(exc, component="inventory")
    status = errwire.status()
    return JsonResponse(
        {
            "raised": 500,
            "accepted_by_capture": accepted,
            "note": "the storm guard folds repeats of one raise site; dedup suppresses the "
            "rest within its window; each event reports how many it stands for",
            "suppression": status.get("suppression"),
        }
    )


def fail_secrets(request: HttpRequest) -> HttpResponse:
    marker = uuid.uuid4().hex[:8]
    try:
        raise payments.PaymentDeclined(
            f"[{marker}] charge refused for jane.doe@example.com: card 4111 1111 1111 1111, "
            "Authorization: Bearer sk_live_51HxDemoSecretKey0123456789abcdef, password=hunter2"
        )
    except payments.PaymentDeclined as exc:
        errwire.capture_error(
            exc,
            component="payments",
            context={
                "card_number": "4111111111111111",
                "api_key": "sk_live_51HxDemoSecretKey0123456789abcdef",
                "customer_email": "jane.doe@example.com",
                "password": "hunter2",
                "order_id": 1001,
            },
        )
    errwire.flush(3.0)
    stored = _stored_event(marker)
    return JsonResponse(
        {
            "what_was_raised": "a message and context full of secrets (see demo/views.py)",
            "what_errwire_stored": stored
            or "not in the local sink (delivering to Sentry? look there)",
        },
        json_dumps_params={"indent": 2},
    )


def _stored_event(marker: str) -> dict[str, Any] | None:
    try:
        config = conf.get_config()
    except Exception:
        return None
    for event in read_events(config.resolved_local_db_path, limit=50):
        if marker in json.dumps(event):
            return {k: event.get(k) for k in ("message", "exception", "context", "category")}
    return None


def fail_logged(request: HttpRequest) -> HttpResponse:
    try:
        {"sku": "X-1"}["price"]
    except KeyError:
        log.exception("price lookup failed; showing the product without a price")
    return HttpResponse("The page worked; the error was logged (and captured by ErrwireHandler).")


def fail_not_found(request: HttpRequest) -> HttpResponse:
    raise Http404("no such product")


async def async_ok(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    return HttpResponse("async ok")


async def async_fail(request: HttpRequest) -> HttpResponse:
    await asyncio.wait_for(asyncio.Event().wait(), timeout=0.05)
    return HttpResponse("unreachable")


def events(request: HttpRequest) -> HttpResponse:
    """The latest events in the local sink (what errwire recorded)."""
    config = conf.get_config()
    rows = read_events(config.resolved_local_db_path, limit=100)
    return render(
        request, "demo/events.html", {"events": rows, "path": config.resolved_local_db_path}
    )
