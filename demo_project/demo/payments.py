"""A payment provider client whose provider never answers (a network timeout).

The "provider" is a local socket that accepts connections and never replies,
so the demo needs no network and the timeout is real.
"""

from __future__ import annotations

import socket
import threading
import urllib.request


class PaymentDeclined(Exception):
    """The provider refused a charge."""


_lock = threading.Lock()
_blackhole: socket.socket | None = None


def _provider_url() -> str:
    global _blackhole
    with _lock:
        if _blackhole is None:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)  # the kernel completes the handshake; nobody ever reads
            _blackhole = sock
        port = _blackhole.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/charges"


def charge(order_reference: str, amount_cents: int, *, timeout: float = 0.3) -> bytes:
    """POST a charge; raises ``TimeoutError`` because the provider never answers."""
    request = urllib.request.Request(  # noqa: S310 (http only, to the local blackhole)
        _provider_url(), data=f"order={order_reference}&amount={amount_cents}".encode()
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body: bytes = response.read()
        return body
