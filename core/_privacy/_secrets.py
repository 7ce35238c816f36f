"""Credentials recognised by their shape: private keys, JWTs, vendor token formats,
``Bearer``/``Basic``/``Token`` credentials and random-looking strings.

Every pattern starts at a token boundary and has bounded repetition, so the cost
per input character is bounded (no nested quantifiers, no unbounded backtracking).
Private key blocks are found with ``str.find`` rather than a pattern, because the
body between BEGIN and END is long and a truncated message may have no END.
"""

from __future__ import annotations

import re

from errwire._privacy._checks import looks_random
from errwire._privacy._markers import (
    AWS_KEY,
    GITHUB_TOKEN,
    GOOGLE_KEY,
    JWT,
    PRIVATE_KEY,
    SLACK_TOKEN,
    STRIPE_KEY,
    TOKEN,
    is_marker,
    marker,
)
from errwire._privacy._rules import Context

__all__ = [
    "scrub_auth_schemes",
    "scrub_jwts",
    "scrub_known_tokens",
    "scrub_private_keys",
    "scrub_random_tokens",
]

_A = re.ASCII

# ---------------------------------------------------------------- PEM private keys

_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----", _A)
# What follows an unterminated BEGIN line: base64, headers, escaped newlines.
_PEM_TAIL = re.compile(r"[A-Za-z0-9+/=\s\\:,.()-]{0,65536}", _A)


def scrub_private_keys(text: str, ctx: Context) -> str:
    out: list[str] = []
    pos = 0
    end_at = -2  # -2: not searched yet; -1: no END anywhere after
    for m in _PEM_BEGIN.finditer(text):
        if m.start() < pos:
            continue
        if end_at != -1 and end_at < m.end():
            end_at = text.find("-----END ", m.end())
        if end_at >= 0:
            close = text.find("-----", end_at + 9, end_at + 80)
            stop = close + 5 if close >= 0 else end_at + 9
        else:
            tail = _PEM_TAIL.match(text, m.end())
            stop = tail.end() if tail else m.end()
        out.append(text[pos : m.start()])
        out.append(marker(PRIVATE_KEY))
        ctx.bump(PRIVATE_KEY)
        pos = stop
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


# ---------------------------------------------------------------- JWT

_JWT = re.compile(
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,4096}\.[A-Za-z0-9_-]{2,8192}\.[A-Za-z0-9_-]{0,4096}"
    r"(?:\.[A-Za-z0-9_-]{1,8192}){0,2}",
    _A,
)


def scrub_jwts(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        ctx.bump(JWT)
        return marker(JWT)

    return _JWT.sub(replace, text)


# ---------------------------------------------------------------- vendor formats

# Patterns consume one character of a small class first and check the token
# boundary right after it (``[..](?<!B.)``), then pick a branch by that character
# (``(?<=A)``): this lets the regex engine skip straight to candidate characters,
# where a leading look-behind (or named groups at the top) would be tried at every
# position of the text.
_B = r"(?<![A-Za-z0-9_-].)"
_KNOWN = re.compile(
    r"[AgxsprwySnh$]" + _B + r"(?:"
    r"(?<=A)(?P<aws>(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|PKA|ROA|SCA)[A-Z0-9]{16}(?![A-Za-z0-9]))"
    r"|(?P<github>(?<=g)(?:h[pousr]_[A-Za-z0-9]{36,251}|ithub_pat_[A-Za-z0-9_]{22,244}))"
    r"|(?P<slack>(?<=x)(?:ox[abposre]-[A-Za-z0-9-]{10,250}|app-[0-9]-[A-Za-z0-9-]{10,250}))"
    r"|(?P<stripe>(?<=[spr])k_(?:live|test)_[A-Za-z0-9]{10,247}|(?<=w)hsec_[A-Za-z0-9]{20,247})"
    r"|(?P<google>(?<=A)Iza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])|(?<=y)a29\.[0-9A-Za-z_-]{20,2048})"
    r"|(?P<token>(?<=s)k-(?:proj-|ant-)?[A-Za-z0-9_-]{20,256}"
    r"|(?<=g)lpat-[A-Za-z0-9_-]{20,64}"
    r"|(?<=n)pm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"
    r"|(?<=p)ypi-[A-Za-z0-9_-]{50,512}"
    r"|(?<=S)G\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"
    r"|(?<=h)f_[A-Za-z0-9]{30,40}(?![A-Za-z0-9])"
    r"|(?<=\$)(?:2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}|argon2(?:id|i|d)\$[^\s\"']{10,512}"
    r"|[156]\$[^\s$\"']{1,64}\$[./A-Za-z0-9]{20,128}))"
    r")",
    _A | re.DOTALL,
)
_KNOWN_KIND = {
    "aws": AWS_KEY,
    "github": GITHUB_TOKEN,
    "slack": SLACK_TOKEN,
    "stripe": STRIPE_KEY,
    "google": GOOGLE_KEY,
    "token": TOKEN,
}
_HAS_DIGIT = re.compile(r"[0-9]", _A)


def scrub_known_tokens(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        group = m.lastgroup or "token"
        whole = m.group(0)
        if group == "token" and whole.startswith("sk-") and not _HAS_DIGIT.search(whole):
            return whole  # "sk-learn-style-words": OpenAI keys always carry digits
        kind = _KNOWN_KIND[group]
        ctx.bump(kind)
        return marker(kind)

    return _KNOWN.sub(replace, text)


# ---------------------------------------------------------------- auth schemes

_SCHEME = re.compile(
    r"[BbTtAOJN]" + _B + r"(?:(?<=B)(?:earer|EARER|asic|ASIC|ot)|(?<=b)(?:earer|asic)"
    r"|(?<=T)(?:oken|OKEN)|(?<=t)oken|(?<=A)(?:piKey|pi-Key)|(?<=O)Auth|(?<=J)WT"
    r"|(?<=N)(?:egotiate|TLM))[ \t]{1,4}(?P<cred>[A-Za-z0-9._~+/-]{8,4096}=*)",
    _A | re.DOTALL,
)
_DIGEST = re.compile(r"D" + _B + r"igest[ \t]{1,4}username=[^\r\n]{1,2048}", _A | re.DOTALL)


def credential_like(value: str) -> bool:
    """A scheme's argument that is a credential, not prose (``Token validation failed``)."""
    if len(value) >= 24 or value.endswith("=") or _HAS_DIGIT.search(value):
        return True
    return any(c.isupper() for c in value[1:]) and any(c.islower() for c in value)


def scrub_auth_schemes(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        if not credential_like(m.group("cred")):
            return m.group(0)
        ctx.bump(TOKEN)
        return m.group(0)[: m.start("cred") - m.start()] + marker(TOKEN)

    def replace_digest(m: re.Match[str]) -> str:
        ctx.bump(TOKEN)
        return "Digest " + marker(TOKEN)

    text = _SCHEME.sub(replace, text)
    if "Digest" in text:
        text = _DIGEST.sub(replace_digest, text)
    return text


# ---------------------------------------------------------------- random-looking strings

_RUN = re.compile(
    r"[A-Za-z0-9+/_-](?<![A-Za-z0-9+/_.~-].)[A-Za-z0-9+/_-]{15,4095}={0,2}"
    r"(?![A-Za-z0-9+/=_-]|\.[A-Za-z0-9])",
    _A | re.DOTALL,
)
# Secret-like position: right after ``=``/``:`` or a word that announces a secret.
_SECRET_BEFORE = re.compile(
    r"(?:[=:][ \t]{0,2}[\"']?|(?:key|token|secret|password|passwd|pwd|credential|auth|signature"
    r"|sig|apikey)[\"']?(?:[ \t:=]{1,3}|[ \t]{1,2}(?:is|was|of)[ \t]{1,2})[\"']?)$",
    re.IGNORECASE | _A,
)
STANDALONE_MIN = 24
POSITIONED_MIN = 16


def scrub_random_tokens(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        token = m.group(0)
        start = m.start()
        if start and is_marker(text[start - 1 : m.end() + 1]):
            return token  # a marker's name (``[HOST-3FA9C2D1E0]``)
        positioned = _SECRET_BEFORE.search(text, max(0, start - 20), start) is not None
        minimum = POSITIONED_MIN if positioned else STANDALONE_MIN
        if looks_random(token, minimum):
            ctx.bump(TOKEN)
            return marker(TOKEN)
        if "/" not in token:
            return token
        pieces = token.split("/")
        changed = False
        for i, piece in enumerate(pieces):
            if looks_random(piece, minimum):
                pieces[i] = marker(TOKEN)
                ctx.bump(TOKEN)
                changed = True
        return "/".join(pieces) if changed else token

    return _RUN.sub(replace, text)
