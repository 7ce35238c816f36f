"""The ASGI HTTP scope the tests send through apps and middleware by hand."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["http_scope"]


def http_scope(
    path: str = "/",
    *,
    method: str = "GET",
    query: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = ((b"host", b"testserver"),),
    client: tuple[str, int] = ("127.0.0.1", 50000),
    server: tuple[str, int] = ("testserver", 80),
) -> dict[str, Any]:
    """A fresh HTTP scope, as a server builds one for a request to ``path``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": list(headers),
        "client": client,
        "server": server,
    }
