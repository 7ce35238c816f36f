"""The request snapshot every integration attaches to events, built one way.

Integrations set a lazy object per request (``request_scope``); only when an
error is captured does ``extract()`` call ``request_info`` with what the
framework knows. The client address is anonymised and the user id hashed
here, before anything else sees them; with ``send_default_pii`` the raw values
are kept instead (see the Privacy section of the README).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["HEADER_ALLOW_LIST", "anonymise_ip", "hash_identifier", "request_info"]

# Headers worth knowing for debugging that carry no credentials.
HEADER_ALLOW_LIST = frozenset(
    {
        "user-agent",
        "content-type",
        "content-length",
        "accept",
        "accept-language",
        "referer",
        "host",
        "x-request-id",
    }
)
_SALT = os.urandom(
    16
)  # per process: hashed user ids group within a process's events, never reverse


def anonymise_ip(address: str | None) -> str | None:
    """Zero the host part: the last octet of IPv4, all but the first 48 bits of IPv6."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 4:
        return str(ipaddress.ip_network(f"{ip}/24", strict=False).network_address)
    return str(ipaddress.ip_network(f"{ip}/48", strict=False).network_address)


def hash_identifier(value: object, salt: bytes | None = None) -> str | None:
    """A stable, non-reversible token for a user id (keyed hash)."""
    if value is None or value == "":
        return None
    key = _SALT if salt is None else salt
    digest = hashlib.blake2b(str(value).encode("utf-8", "backslashreplace"), key=key, digest_size=8)
    return "user-" + digest.hexdigest()


def request_info(
    *,
    method: str | None,
    path: str | None,
    route: str | None = None,
    query_string: str | bytes | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    client: str | None = None,
    user_id: object = None,
    send_default_pii: bool = False,
) -> dict[str, Any]:
    """The snapshot dict: method, route, path (no query string), query keys with
    redacted values, allow-listed headers, anonymised client, hashed user.
    Cookies are never included. The scrubber still runs over all of it later."""
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    query = {k: "[REDACTED]" for k, _ in parse_qsl(query_string or "", keep_blank_values=True)}
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    kept = {name.title(): value for name, value in pairs if name.lower() in HEADER_ALLOW_LIST}
    info: dict[str, Any] = {
        "method": method,
        "route": route,
        "path": (path or "").split("?", 1)[0],
        "query": query,
        "headers": kept,
    }
    if send_default_pii:
        info["client"] = client
        info["user"] = None if user_id is None else str(user_id)
    else:
        info["client"] = anonymise_ip(client)
        info["user"] = hash_identifier(user_id)
    return info
