"""A corpus of fake but realistic secrets and personal data for the leak harness.

Every plant has a distinct value (so a leak is attributable to one plant), the
carrier text it is planted in, and the *needles*: the substrings that must
never appear in anything errwire writes or sends. Values are generated from a
fixed seed, so a failing case names the same value on every run.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass

__all__ = ["PLANTS", "Plant", "encodings"]

_rng = random.Random(0x5EC12E7)

_WORDS = [
    *("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"),
    *("juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"),
    *("sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"),
]
_COLOURS = ["red", "green", "blue", "amber", "violet"]

# Text a scrubber must leave alone; each plant's own tag makes it attributable.
_LEADS = ("checkout failed for", "retrying payment with", "could not sync account")
_TAILS = ("while retrying payment", "before the invoice run", "after the nightly export")


@dataclass(frozen=True)
class Plant:
    id: str  # e.g. "email-03"
    kind: str
    value: str  # the secret exactly as planted (its form inside ``text``)
    needles: tuple[str, ...]  # substrings that must not leave the process
    text: str  # a harmless sentence with ``value`` in it
    keep: tuple[str, ...]  # harmless phrases of ``text`` that must survive


def _alnum(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _luhn_complete(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return partial + str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        d = digit * 2 if i % 2 == 1 else digit
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    check = 98 - int(numeric) % 97
    return f"{country}{check:02d}{bban}"


def _grouped(text: str, size: int = 4) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


_counters: dict[str, int] = {}
_plants: list[Plant] = []


def _add(kind: str, value: str, form: str | None = None, needles: tuple[str, ...] = ()) -> None:
    """Plant ``value`` (shown as ``form``, e.g. ``password=<value>``) in a sentence."""
    n = _counters.get(kind, 0)
    _counters[kind] = n + 1
    i = len(_plants)
    tag = f"{_WORDS[i % 26]}-{_COLOURS[i // 26 % 5]}"
    lead = f"{_LEADS[i % 3]} {tag}"
    tail = f"{_TAILS[i % 3]} {tag}"
    shown = form if form is not None else value
    _plants.append(
        Plant(
            id=f"{kind}-{n:02d}",
            kind=kind,
            value=value,
            needles=tuple(dict.fromkeys(needles or (value,))),
            text=f"{lead} {shown} {tail}",
            keep=(lead, tail),
        )
    )


_FIRST = ["maria", "jonas", "priya", "tomasz", "ingrid", "rafael", "keiko", "olusegun"]
_LAST = ["kowalczyk", "lindqvist", "okonkwo", "haraldsen", "vasquez", "nakamura"]


def _person(i: int) -> str:
    return f"{_FIRST[i % len(_FIRST)]}.{_LAST[(i * 5 + 1) % len(_LAST)]}{_rng.randint(100, 999)}"


def _build() -> None:
    # emails
    for i in range(8):
        domain = ("example-mail.com", "corp-example.org", "mailbox.example.net")[i % 3]
        _add("email", f"{_person(i)}@{domain}")
    # IPv4 (three-digit last octet: no needle is a prefix of another) and IPv6
    octets = _rng.sample(range(100, 250), 12)
    for i in range(6):
        net = ("203.0.113", "198.51.100", "192.0.2")[i % 3]
        _add("ipv4", f"{net}.{octets[i]}")
    for i in range(5):  # full and compressed (``::``) forms, all valid addresses
        groups = [f"{_rng.randint(0x1000, 0xFFFF):x}" for _ in range(6)]
        if i % 2:
            _add("ipv6", f"2001:db8:{groups[0]}::{':'.join(groups[3:])}")
        else:
            _add("ipv6", f"2001:db8:{':'.join(groups)}")
    # MAC addresses
    for i in range(4):
        sep = ":" if i % 2 == 0 else "-"
        _add("mac", sep.join(f"{_rng.randint(0, 255):02x}" for _ in range(6)))
    # secrets in key=value / key: value / JSON / header form, including inside longer keys
    forms = (
        ("password", "{k}={v}"),
        ("db_password", "{k}={v}"),
        ("passwd", "{k}: {v}"),
        ("pwd", "{k}={v}"),
        ("client_secret", '"{k}": "{v}"'),
        ("access_token", "{k}={v}"),
        ("api_key", '"{k}": "{v}"'),
        ("apikey", "{k}={v}"),
        ("aws_access_key", "{k}: {v}"),
        ("private_key", "{k}={v}"),
        ("X-Api-Key", "{k}: {v}"),
        ("X-Auth-Token", "{k}: {v}"),
        ("sessionid", "{k}={v}"),
        ("csrf_token", '"{k}": "{v}"'),
        ("request_signature", "{k}={v}"),
        ("service_credential", "{k}: {v}"),
        ("SESSION", "{k}={v}"),
        ("Cookie", "{k}: theme=dark; sid={v}"),
    )
    for key, fmt in forms:
        value = _alnum(6, string.ascii_lowercase) + "!" + _alnum(10)
        if key in ("access_token", "csrf_token", "request_signature"):
            value = _alnum(32)
        _add("keyvalue", value, fmt.format(k=key, v=value))
    # Bearer / Basic / Token credentials
    for _ in range(4):
        token = _alnum(40, string.ascii_letters + string.digits + "-_")
        _add("bearer", token, f"Authorization: Bearer {token}")
    for _ in range(3):
        user = f"svc{_alnum(5, string.ascii_lowercase)}"
        password = _alnum(14)
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        _add("basic", encoded, f"Authorization: Basic {encoded}", (encoded, password))
    token = _alnum(40, string.hexdigits.lower()[:16])
    _add("token-auth", token, f"Authorization: Token {token}")
    # JWTs
    for i in range(4):
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"sub": f"user-{_alnum(8)}", "iat": 1_700_000_000 + i, "role": "admin"}
        body = _b64url(json.dumps(claims).encode())
        sig = _b64url(_rng.randbytes(32))
        jwt = f"{header}.{body}.{sig}"
        _add("jwt", jwt, needles=(jwt, body, sig))
    # well-known key formats
    upper = string.ascii_uppercase + string.digits
    for _ in range(4):
        _add("aws-key", "AKIA" + _alnum(16, upper))
    aws_secret = _alnum(40, string.ascii_letters + string.digits + "/+")
    _add("aws-secret", aws_secret, f"aws_secret_access_key={aws_secret}")
    for prefix in ("ghp_", "gho_", "ghs_", "github_pat_"):
        length = 82 if prefix == "github_pat_" else 36
        _add("github", prefix + _alnum(length))
    for prefix in ("xoxb", "xoxp", "xoxa"):
        team, bot = _rng.randint(10**10, 10**11), _rng.randint(10**10, 10**11)
        value = f"{prefix}-{team}-{bot}-{_alnum(24)}"
        _add("slack", value)
    for prefix in ("sk_live_", "rk_live_", "sk_test_"):
        _add("stripe", prefix + _alnum(24))
    for _ in range(3):
        _add("google", "AIza" + _alnum(35, string.ascii_letters + string.digits + "_-"))
    # a PEM private key: every body line is a needle
    body_lines = [base64.b64encode(_rng.randbytes(48)).decode() for _ in range(5)]
    pem = "\n".join(
        ["-----BEGIN RSA PRIVATE KEY-----", *body_lines, "-----END RSA PRIVATE KEY-----"]
    )
    _add("pem", pem, needles=tuple(body_lines))
    # Luhn-valid card numbers, plain, spaced and dashed
    for i, prefix in enumerate(("4", "51", "37", "6011", "4", "55")):
        length = 15 if prefix == "37" else 16
        digits = _luhn_complete(prefix + _alnum(length - 1 - len(prefix), string.digits))
        assert luhn_ok(digits)
        shown = (digits, _grouped(digits), "-".join(_grouped(digits).split()))[i % 3]
        _add("card", shown, needles=(shown, digits))
    # IBANs, compact and grouped
    for i, (country, n) in enumerate((("DE", 18), ("GB", 18), ("FR", 23), ("NL", 14))):
        if country == "GB":
            bban = "NWBK" + _alnum(14, string.digits)
        elif country == "NL":
            bban = "ABNA" + _alnum(10, string.digits)
        else:
            bban = _alnum(n, string.digits)
        iban = _iban(country, bban)
        shown = iban if i % 2 == 0 else _grouped(iban)
        _add("iban", shown, needles=(shown, iban))
    # phone numbers in common formats
    phones = (
        f"+1 415-555-{_rng.randint(1000, 9999)}",
        f"(212) 555-{_rng.randint(1000, 9999)}",
        f"+44 20 7946 {_rng.randint(1000, 9999)}",
        f"+49 30 {_rng.randint(1000000, 9999999)}",
        "+33 6 " + " ".join(str(_rng.randint(10, 99)) for _ in range(4)),
    )
    for phone in phones:
        compact = "".join(c for c in phone if c.isdigit())
        _add("phone", phone, needles=(phone, compact))
    # coordinates marked as lat/lon
    for i in range(4):
        lat = f"{_rng.uniform(-60, 60):.6f}"
        lon = f"{_rng.uniform(-170, 170):.6f}"
        form = (f"lat={lat}, lon={lon}", f"latitude: {lat} longitude: {lon}")[i % 2]
        _add("coords", f"{lat},{lon}", form, needles=(lat, lon))
    # home directories in file paths
    for i, fmt in enumerate(
        (
            "/home/{u}/projects/shop/settings.py",
            "/Users/{u}/code/shop/app.py",
            r"C:\Users\{u}\shop\run.py",
        )
    ):
        user = f"{_FIRST[i + 3]}{_alnum(4, string.ascii_lowercase)}"
        _add("home-path", user, fmt.format(u=user))
    # URL user:password credentials and query values
    schemes = ("postgres", "redis", "amqps", "mongodb+srv", "https", "mqtt")
    for scheme in schemes:
        user = f"svc_{_alnum(6, string.ascii_lowercase)}"
        password = _alnum(16)
        url = f"{scheme}://{user}:{password}@db.example-internal.com:5432/shop"
        _add("url-creds", password, url, needles=(password, f"{user}:{password}"))
    for i in range(5):
        value = _alnum(24)
        key = ("token", "code", "ref", "state", "sig")[i]
        url = f"https://api.example.com/v1/reset?{key}={value}&lang=en"
        _add("url-query", value, url)


_build()
PLANTS: tuple[Plant, ...] = tuple(_plants)
assert len({p.value for p in PLANTS}) == len(PLANTS), "plants must be distinct"


def encodings(needle: str) -> set[bytes]:
    """The forms of ``needle`` that would still reveal it in delivered bytes."""
    from urllib.parse import quote, quote_plus

    forms = {
        needle,
        json.dumps(needle)[1:-1],
        json.dumps(needle, ensure_ascii=False)[1:-1],
        quote(needle, safe=""),
        quote_plus(needle),
    }
    return {f.encode("utf-8") for f in forms}
