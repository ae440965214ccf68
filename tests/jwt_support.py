"""Helpers shared by the JWT test modules: an independent token builder and error-message checks.

Tokens are built here with Python's own ``base64``/``hmac``/``json`` so that the verifier is never
tested against tokens made by itself. Every byte of a hand-made token is chosen by the test, and the
MAC is always computed over exactly the text in the token, so the single defect a test introduces
is the only reason the token can be refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
from typing import Any

import gateway
import pytest

HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
HASH_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}

# Distinctive secrets so that a leak into an error message is recognisable.
KEY = b"K3y-for-gateway-tests-0123456789"  # 32 bytes: exactly the HS256 minimum
KEY48 = b"K3y-for-gateway-tests-0123456789-HS384-48-bytes!"
KEY64 = b"K3y-for-gateway-tests-0123456789-HS512-needs-sixty-four-bytes!!!"
KEYS = {"HS256": KEY, "HS384": KEY48, "HS512": KEY64}
assert [len(KEY), len(KEY48), len(KEY64)] == [32, 48, 64]

NOW = 1_700_000_000


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def mac(key: bytes, signing_input: str | bytes, alg: str = "HS256") -> bytes:
    if isinstance(signing_input, str):
        signing_input = signing_input.encode("utf-8")
    return hmac.new(key, signing_input, HASHES[alg]).digest()


def sign_parts(h: str, p: str, key: bytes = KEY, alg: str = "HS256") -> str:
    """``h.p.`` + the correct MAC over ``h.p`` (whatever text h and p are)."""
    return f"{h}.{p}.{b64e(mac(key, f'{h}.{p}', alg))}"


def make(
    claims: Any = None,
    header: Any = None,
    *,
    key: bytes = KEY,
    alg: str = "HS256",
    raw_header: bytes | None = None,
    raw_payload: bytes | None = None,
    sig: bytes | None = None,
) -> str:
    """A compact JWS. ``header`` defaults to ``{"alg": alg, "typ": "JWT"}``; raw_* give exact JSON bytes;
    ``sig`` replaces the (otherwise correct) MAC."""
    if raw_header is None:
        raw_header = dumps({"alg": alg, "typ": "JWT"} if header is None else header)
    if raw_payload is None:
        raw_payload = dumps({} if claims is None else claims)
    h, p = b64e(raw_header), b64e(raw_payload)
    s = mac(key, f"{h}.{p}", alg) if sig is None else sig
    return f"{h}.{p}.{b64e(s)}"


def secret_forms(key: bytes | str) -> list[str]:
    """Ways a secret could show up in a message."""
    raw = key.encode("utf-8") if isinstance(key, str) else key
    forms = {raw.hex(), raw.hex().upper(), b64e(raw), base64.b64encode(raw).decode(), repr(raw)}
    try:
        forms.add(raw.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    # a secret of a few bytes could appear by chance; only look for ones long enough to mean a leak
    return [f for f in forms if len(f) >= 8]


def assert_no_leak(exc: BaseException, token: str | bytes | None = None, keys: Any = ()) -> None:
    """The message never holds a secret or more than 16 consecutive characters of the token."""
    texts = [str(exc), repr(exc)] + [str(a) for a in getattr(exc, "args", ())]
    if isinstance(keys, (str, bytes)):
        keys = [keys]
    elif isinstance(keys, dict):
        keys = list(keys.values())
    for key in keys:
        for form in secret_forms(key):
            for text in texts:
                assert form not in text, f"error message contains the key: {text!r}"
    if isinstance(exc, gateway.JWTError):
        # whatever the token was, a piece of it would be a run of base64url characters
        for text in (str(exc),):
            runs = re.findall(r"[A-Za-z0-9_-]{17,}", text)
            assert not runs, f"error message holds a long base64url run {runs}: {text!r}"
            assert len(text) <= 200, f"error message is not short ({len(text)} chars): {text[:300]!r}"
            bad = [c for c in text if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029"]
            assert not bad, f"error message holds control characters {bad!r}: {text!r}"
    if token is not None:
        tok = token.decode("latin-1") if isinstance(token, (bytes, bytearray)) else token
        for text in texts:
            for i in range(max(0, len(tok) - 16)):
                piece = tok[i : i + 17]
                assert piece not in text, f"error message holds >16 chars of the token ({piece!r}): {text!r}"


def same_json(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 vs 1.0 differ) and the sign of -0.0 kept."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def config_error(fn: Any, *args: Any, **kw: Any) -> ValueError:
    """A configuration mistake: a plain ValueError, not a JWTError."""
    with pytest.raises(ValueError) as info:
        fn(*args, **kw)
    assert not isinstance(info.value, gateway.JWTError), f"config mistake reported as a token error: {info.value!r}"
    for a in args:
        if isinstance(a, (str, bytes)) and len(a) >= 8:
            assert_no_leak(info.value, keys=[a])
    return info.value
