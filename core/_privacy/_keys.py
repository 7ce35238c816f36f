"""Which keys name a secret, which name coordinates, which headers may be kept.

A key is split into words (``X-Api-Key`` -> x, api, key; ``dbPassword`` -> db,
password) and is secret when a word, or the words run together, contains a secret
term: password, passwd, passphrase, pass, pwd, secret, token, api key, access key,
private key, signing/encryption/master/client key, auth, authorization, session,
sessionid, sid, cookie, csrf, xsrf, signature, sig, hmac, credential, jwt, pin,
otp, cvv, cvc, ssn. ``author``/``authority``/``authenticated`` are not ``auth``.

Keys that describe a secret rather than hold one are not secret: any word among
count, size, length, ttl, timeout, age, expiry/expires, type, kind, name, enabled,
required, version, method, algorithm, limit, min/max/num/total, format, policy,
domain, path, secure, httponly, samesite, engine, backend (``max_tokens``,
``token_type``, ``session_cookie_age``, ``password_length``). Users allow-list
further keys by name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

__all__ = [
    "ALLOWED_HEADERS",
    "GEO_PAIR",
    "GEO_SINGLE",
    "NEVER_HEADERS",
    "SECRET",
    "KeyPolicy",
    "geo_kind",
    "header_name",
    "is_strong_secret_key",
    "key_words",
    "notable_key",
    "secret_key",
]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", re.ASCII)
_NON_ALNUM = re.compile(r"[^a-z0-9]+", re.ASCII)

_SECRET_WORDS = frozenset(
    [
        "pass",
        "pwd",
        "pin",
        "otp",
        "ssn",
        "jwt",
        "sid",
        "sig",
        "hmac",
        "auth",
        "cvv",
        "cvc",
        "cookie",
        "cookies",
        "session",
        "sessionid",
        "secret",
        "secrets",
        "token",
        "tokens",
        "password",
        "passwd",
        "passphrase",
        "credential",
        "credentials",
        "signature",
        "csrf",
        "xsrf",
        "apikey",
        "authorization",
    ]
)
_SECRET_COMPACT = re.compile(
    r"password|passwd|passphrase|secret|token(?!iz)|apikey|accesskey|privatekey|signingkey"
    r"|encryptionkey|masterkey|clientkey|authkey|authorization|session|credential|csrf|xsrf"
    r"|cookie|signature",
    re.ASCII,
)
_STRONG = re.compile(r"pass|pwd|secret|privatekey|credential", re.ASCII)
_STRONG_WORDS = frozenset(["pin", "otp", "cvv", "cvc", "ssn"])
_META_WORDS = frozenset(
    [
        "count",
        "counts",
        "size",
        "length",
        "len",
        "ttl",
        "timeout",
        "age",
        "expiry",
        "expires",
        "expired",
        "expiration",
        "type",
        "types",
        "kind",
        "name",
        "names",
        "enabled",
        "disabled",
        "required",
        "valid",
        "validity",
        "version",
        "method",
        "algorithm",
        "alg",
        "scheme",
        "limit",
        "limits",
        "min",
        "max",
        "num",
        "total",
        "format",
        "policy",
        "domain",
        "path",
        "secure",
        "httponly",
        "samesite",
        "engine",
        "backend",
    ]
)
_GEO_SINGLE = frozenset(["lat", "latitude", "lon", "lng", "long", "longitude"])
_GEO_PAIR = frozenset(
    [
        "latlng",
        "latlon",
        "latlong",
        "coords",
        "coordinates",
        "coord",
        "geo",
        "gps",
        "location",
        "geolocation",
        "geopoint",
    ]
)


def key_words(key: str) -> tuple[str, ...]:
    """``"X-Api-Key"`` -> ``("x", "api", "key")``; ``"dbPassword"`` -> ``("db", "password")``."""
    spaced = _CAMEL.sub("_", key[:128]).lower()
    return tuple(w for w in _NON_ALNUM.split(spaced) if w)


@functools.lru_cache(maxsize=4096)
def secret_key(key: str) -> bool:
    """True when a value stored under ``key`` is a secret (ignoring any allow-list)."""
    words = key_words(key)
    if not words:
        return False
    hit = any(w in _SECRET_WORDS for w in words) or _SECRET_COMPACT.search("".join(words))
    if not hit:
        return False
    return not any(w in _META_WORDS for w in words)


def is_strong_secret_key(key: str) -> bool:
    """Password-like keys: redacted even when followed by a plain word (``password: admin``)."""
    words = key_words(key)
    return any(w in _STRONG_WORDS for w in words) or _STRONG.search("".join(words)) is not None


def geo_kind(key: str) -> str | None:
    """``"single"`` for a latitude or longitude key, ``"pair"`` for a lat/lon pair key."""
    words = key_words(key)
    if not words:
        return None
    if words[-1] in _GEO_SINGLE and len(words) <= 3:
        return "single"
    compact = "".join(words)
    if compact in _GEO_PAIR or words[-1] in _GEO_PAIR:
        return "pair"
    return None


@functools.lru_cache(maxsize=4096)
def notable_key(key: str) -> bool:
    """True when ``key`` names a secret or coordinates (ignoring any allow-list): what a
    ``KeyPolicy`` can classify as other than ordinary, so False rules out a redaction."""
    return secret_key(key) or geo_kind(key) is not None


def _normal(key: str) -> str:
    return "".join(key_words(key))


SECRET = 1
GEO_SINGLE = 2
GEO_PAIR = 3
_CACHE_SIZE = 4096


class KeyPolicy:
    """Secret-key decisions with the user's allow-list applied (cached: keys repeat)."""

    __slots__ = ("_allowed", "_cache")

    def __init__(self, allow_keys: Collection[str]) -> None:
        for k in allow_keys:
            if not isinstance(k, str) or not k:
                raise ValueError(f"allow_keys must hold non-empty strings; got {k!r}")
        self._allowed = frozenset(_normal(k) for k in allow_keys)
        self._cache: dict[str, int] = {}

    def allowed(self, key: str) -> bool:
        return bool(self._allowed) and _normal(key) in self._allowed

    def is_secret(self, key: str) -> bool:
        return self.classify(key) == SECRET

    def classify(self, key: str) -> int:
        """0 for an ordinary key, ``SECRET``, ``GEO_SINGLE`` or ``GEO_PAIR``."""
        verdict = self._cache.get(key)
        if verdict is None:
            k = key[:128]
            if self.allowed(k):
                verdict = 0
            elif secret_key(k):
                verdict = SECRET
            else:
                kind = geo_kind(k)
                verdict = 0 if kind is None else GEO_SINGLE if kind == "single" else GEO_PAIR
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = verdict
        return verdict


# Request headers kept (values scrubbed); everything else is dropped. Users add
# names through allow_keys; the NEVER set cannot be allow-listed.
ALLOWED_HEADERS = frozenset(
    [
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "content-length",
        "content-type",
        "host",
        "origin",
        "referer",
        "user-agent",
        "x-forwarded-proto",
        "x-request-id",
    ]
)
NEVER_HEADERS = frozenset(["cookie", "set-cookie", "authorization", "proxy-authorization"])


def header_name(name: str) -> str:
    """Canonical header name: ``HTTP_USER_AGENT`` and ``User-Agent`` -> ``user-agent``."""
    low = name.strip().lower().replace("_", "-")
    if low.startswith("http-"):
        low = low[5:]
    return low
