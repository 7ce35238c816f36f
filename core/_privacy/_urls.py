"""URLs of any scheme: credentials out, query values out, hosts by category, ids out of paths.

``postgres://admin:hunter2@10.0.0.5:5432/app?sslkey=x`` becomes
``postgres://[URL-CREDENTIALS]@[PRIVATE-IP]:5432/app?sslkey=[REDACTED]``.

* User info (anything before the last ``@`` of the authority, so passwords
  containing ``#``, ``?`` or ``:`` go too) becomes ``[URL-CREDENTIALS]``.
* Hosts: ``localhost`` and loopback/unspecified addresses -> ``[LOCALHOST]``,
  addresses that are not globally routable -> ``[PRIVATE-IP]``, other addresses ->
  ``[PUBLIC-IP]``, domain names are kept. In hash mode every host except localhost
  becomes ``[HOST-<10 hex>]`` (blake2b of the lower-cased name: stable across
  processes, so events still group by host; it hides a name from a reader, not
  from someone who can guess and hash candidate names).
* Query and ``key=value`` fragments: keys kept, non-empty values -> ``[REDACTED]``;
  a bare item that is not a plain name is redacted too.
* Path segments that look like ids or tokens: ``[ID]`` for UUIDs, runs of 4+
  digits (except years 1900-2099: ``/2024/01/post`` stays) and 16+ hex digits,
  ``[TOKEN]`` for random-looking strings (16+ characters). A file extension is
  kept (``/files/[ID].pdf``).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re

from errwire._privacy._checks import looks_random
from errwire._privacy._markers import (
    HOME_REPLACEMENT,
    HOST,
    ID,
    LOCALHOST,
    PRIVATE_IP,
    PUBLIC_IP,
    REDACTED,
    TOKEN,
    URL_CREDENTIALS,
    is_marker,
    marker,
)
from errwire._privacy._rules import Context, sub_near

__all__ = ["redact_query", "scrub_path_query", "scrub_urls", "segment_marker"]

_A = re.ASCII
_URL = re.compile(
    r"[A-Za-z](?<![A-Za-z0-9+.-].)[A-Za-z0-9+.-]{0,31}://[^\s\"'<>`]{0,4096}", _A | re.DOTALL
)
_PORT = re.compile(r"[0-9]{0,5}", _A)
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", _A
)
_DIGITS = re.compile(r"[0-9]{4,}", _A)
_YEAR = re.compile(r"(?:19|20)[0-9]{2}", _A)
_HEX16 = re.compile(r"[0-9a-fA-F]{16,}", _A)
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,5}", _A)
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z_.-]{0,31}", _A)
_PAIRS = {")": "(", "]": "[", "}": "{"}


def scrub_urls(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        scheme, _, rest = m.group(0).partition("://")
        body, tail = _split_trailing(rest)
        return scheme + "://" + _scrub_body_cached(body, ctx) + tail

    # Every match has its ``://`` within 32 characters of its start (the scheme).
    return sub_near(_URL, text, ("://",), 32, replace)


_BODIES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
_BODIES_ENTRIES = 1024
_CACHED_BODY = 512


def _scrub_body_cached(body: str, ctx: Context) -> str:
    """``_scrub_body``, remembered with the redactions it counted (replayed on a hit):
    the same URLs recur from message to message, and every URL is looked at again
    by the pass that confirms the text is clean. Only the host mode changes the
    answer."""
    if len(body) > _CACHED_BODY:
        return _scrub_body(body, ctx)
    key = (ctx.host_mode, body)
    hit = _BODIES.get(key)
    if hit is not None:
        for kind in hit[1]:
            ctx.bump(kind)
        return hit[0]
    kinds: list[str] = []

    def bump(kind: str) -> None:
        kinds.append(kind)
        ctx.bump(kind)

    out = _scrub_body(body, Context(bump=bump, keys=ctx.keys, host_mode=ctx.host_mode))
    if len(_BODIES) >= _BODIES_ENTRIES:
        _BODIES.clear()
    _BODIES[key] = (out, tuple(kinds))
    return out


def _split_trailing(body: str) -> tuple[str, str]:
    """Sentence punctuation after a URL is not part of it (unbalanced brackets neither)."""
    end = len(body)
    while end:
        c = body[end - 1]
        if c in ".,;:!?'" or (
            c in _PAIRS and body.count(_PAIRS[c], 0, end) < body.count(c, 0, end)
        ):
            end -= 1
        else:
            break
    return body[:end], body[end:]


def _scrub_body(body: str, ctx: Context) -> str:
    slash = body.find("/")
    authority = body if slash < 0 else body[:slash]
    at = authority.rfind("@")
    if at >= 0:
        before = authority[:at]
        q = _first_of(before, "?#")
        if q >= 0 and "=" in before[q:]:
            at = -1  # "host?email=a@b.c": an @ in the query, not user info
    out: list[str] = []
    if at >= 0:
        userinfo = authority[:at]
        if userinfo and not is_marker(userinfo):
            ctx.bump(URL_CREDENTIALS)
            userinfo = marker(URL_CREDENTIALS)
        out.append(userinfo + "@")
        host_start = at + 1
        end = _first_of(authority, "?#", host_start)
        host_end = end if end >= 0 else len(authority)
    else:
        host_start = 0
        end = _first_of(body, "/?#")
        host_end = end if end >= 0 else len(body)
    hostport = body[host_start:host_end]
    out.append(_scrub_hostport(hostport, ctx))
    out.append(scrub_path_query(body[host_end:], ctx))
    return "".join(out)


def _first_of(text: str, chars: str, start: int = 0) -> int:
    found = [i for i in (text.find(c, start) for c in chars) if i >= 0]
    return min(found) if found else -1


def _scrub_hostport(hostport: str, ctx: Context) -> str:
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            return _scrub_host(hostport, ctx)
        host, port = hostport[: close + 1], hostport[close + 1 :]
    else:
        colon = hostport.rfind(":")
        if colon >= 0 and _PORT.fullmatch(hostport, colon + 1):
            host, port = hostport[:colon], hostport[colon:]
        else:
            host, port = hostport, ""
    return _scrub_host(host, ctx) + port


def _scrub_host(host: str, ctx: Context) -> str:
    if not host or is_marker(host) or host == HOME_REPLACEMENT:
        return host  # already scrubbed ("file://~/x" after the home rule)
    inner = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    name = inner.rstrip(".").lower()
    kind = _host_kind(name)
    if kind is DOMAIN:
        if ctx.host_mode != "hash":
            return host
    elif kind != LOCALHOST and ctx.host_mode == "hash":
        kind = DOMAIN
    if kind is DOMAIN:
        ctx.bump(HOST)
        return _hashed(name)
    ctx.bump(kind)
    return marker(kind)


DOMAIN = "domain"


@functools.lru_cache(maxsize=1024)
def _host_kind(name: str) -> str:
    """LOCALHOST, PRIVATE_IP, PUBLIC_IP or DOMAIN for a lower-case host name."""
    if name == "localhost" or name.endswith(".localhost"):
        return LOCALHOST
    if not name or not (name[0].isdigit() or ":" in name):
        return DOMAIN
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return DOMAIN
    if ip.is_loopback or ip.is_unspecified:
        return LOCALHOST
    return PUBLIC_IP if ip.is_global else PRIVATE_IP


@functools.lru_cache(maxsize=1024)
def _hashed(name: str) -> str:
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=5)
    return f"[{HOST}-{digest.hexdigest().upper()}]"


def scrub_path_query(rest: str, ctx: Context) -> str:
    """``/path?query#fragment`` with id-like segments and query values redacted."""
    hash_i = rest.find("#")
    q_i = rest.find("?")
    if hash_i >= 0 and q_i > hash_i:
        q_i = -1
    path_end = min(i for i in (q_i, hash_i, len(rest)) if i >= 0)
    out = [_scrub_segments(rest[:path_end], ctx)]
    if q_i >= 0:
        out.append("?" + redact_query(rest[q_i + 1 : hash_i if hash_i >= 0 else len(rest)], ctx))
    if hash_i >= 0:
        out.append("#" + _scrub_fragment(rest[hash_i + 1 :], ctx))
    return "".join(out)


def _scrub_segments(path: str, ctx: Context) -> str:
    if "/" not in path:
        return path
    segments = path.split("/")
    for i, seg in enumerate(segments):
        kind = segment_marker(seg)
        if kind is not None:
            ctx.bump(kind)
            stem, dot, ext = seg.rpartition(".")
            suffix = dot + ext if stem and _EXTENSION.fullmatch(ext) else ""
            segments[i] = marker(kind) + suffix
    return "/".join(segments)


def segment_marker(segment: str) -> str | None:
    """``ID`` or ``TOKEN`` for a path segment that identifies a record or carries a secret."""
    if not segment or is_marker(segment):
        return None
    stem, _, ext = segment.rpartition(".")
    if not stem or not _EXTENSION.fullmatch(ext):
        stem = segment
    if is_marker(stem):
        return None
    if _UUID.fullmatch(stem) or (_DIGITS.fullmatch(stem) and not _YEAR.fullmatch(stem)):
        return ID
    if _HEX16.fullmatch(stem) and any(c.isdigit() for c in stem) and not stem.isdigit():
        return ID
    if looks_random(stem, 16):
        return TOKEN
    return None


def redact_query(query: str, ctx: Context) -> str:
    """``a=1&b=&flag`` -> ``a=[REDACTED]&b=&flag``: keys kept, values gone."""
    items = query.split("&")
    for i, item in enumerate(items):
        key, eq, value = item.partition("=")
        if eq:
            if value and not is_marker(value):
                ctx.bump(REDACTED)
                items[i] = key + "=" + marker(REDACTED)
        elif item and not is_marker(item) and not _PLAIN_NAME.fullmatch(item):
            ctx.bump(REDACTED)
            items[i] = marker(REDACTED)
    return "&".join(items)


def _scrub_fragment(fragment: str, ctx: Context) -> str:
    if "=" in fragment:
        return redact_query(fragment, ctx)  # "#access_token=...&state=..."
    if fragment.startswith(("/", "!/")):
        return scrub_path_query(fragment, ctx)  # single-page-app routes
    if looks_random(fragment, 16):
        ctx.bump(TOKEN)
        return marker(TOKEN)
    return fragment
