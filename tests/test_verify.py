"""Adversarial tests for every rule of docs/python-api.md, each asserting the exact exception class.

Tokens are made by tests/jwt_support.py with Python's base64/hmac/json. Whenever a test puts a
defect into the header or payload text, the MAC is computed over that exact text, so the defect is the
only thing wrong with the token. Every refusal also checks that the message holds neither the key
nor more than 16 consecutive characters of the token.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import threading
from typing import Any

import gateway
import jwt as pyjwt
import pytest

from tests.jwt_support import (
    KEY,
    KEY48,
    KEY64,
    KEYS,
    NOW,
    assert_no_leak,
    b64d,
    b64e,
    config_error,
    dumps,
    mac,
    make,
    same_json,
    sign_parts,
)

UTC = datetime.timezone.utc
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
HS256 = {"alg": "HS256", "typ": "JWT"}


class Entry:
    """The same check through gateway.verify(...) and through Verifier(...).verify(...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, token: Any, key: Any = KEY, now: Any = NOW, **kw: Any) -> dict:
        if self.kind == "verify":
            return gateway.verify(token, key, now=now, **kw)
        return gateway.Verifier(key, **kw).verify(token, now=now)

    def ok(self, token: Any, key: Any = KEY, **kw: Any) -> dict:
        claims = self(token, key, **kw)
        assert type(claims) is dict
        return claims

    def bad(self, exc: Any, token: Any, key: Any = KEY, **kw: Any) -> BaseException:
        with pytest.raises(exc) as info:
            self(token, key, **kw)
        assert_no_leak(info.value, token, key)
        return info.value


@pytest.fixture(params=["verify", "Verifier"])
def v(request: pytest.FixtureRequest) -> Entry:
    return Entry(request.param)


def parts(token: str) -> list[str]:
    return token.split(".")


# --- the exception hierarchy ------------------------------------------------------------------------


def test_exception_hierarchy() -> None:
    assert issubclass(gateway.JWTError, ValueError)
    for name in [
        "MalformedToken",
        "InvalidSignature",
        "AlgorithmNotAllowed",
        "ExpiredToken",
        "NotYetValid",
        "InvalidIssuer",
        "InvalidAudience",
        "MissingClaim",
    ]:
        cls = getattr(gateway, name)
        assert issubclass(cls, gateway.JWTError) and cls is not gateway.JWTError, name


def test_a_plain_good_token(v: Entry) -> None:
    claims = {"sub": "alice", "exp": NOW + 60, "nbf": NOW - 60, "iat": NOW}
    assert v.ok(make(claims)) == claims


# --- structure --------------------------------------------------------------------------------------

GOOD = make({"sub": "alice"})
H, P, S = parts(GOOD)


@pytest.mark.parametrize(
    "token",
    [
        f"{H}.{P}",
        f"{H}{P}{S}",
        f"{H}.{P}.{S}.",
        f"{H}.{P}.{S}.{S}",
        f"{H}.{P}.{P}.{S}",
        f".{H}.{P}.{S}",
        f"{H}..{P}.{S}",
        f"{H}.{P}..{S}",
        "..",
        "...",
        ".",
        "",
        "a",
        H,
    ],
    ids=[
        "two-parts",
        "no-dots",
        "trailing-dot",
        "four-parts",
        "four-parts-payload-twice",
        "leading-dot",
        "double-dot-1",
        "double-dot-2",
        "only-dots",
        "three-dots",
        "one-dot",
        "empty",
        "one-char",
        "header-only",
    ],
)
def test_not_three_parts(v: Entry, token: str) -> None:
    v.bad(gateway.MalformedToken, token)


def test_empty_header_part(v: Entry) -> None:
    v.bad(gateway.MalformedToken, sign_parts("", P))


def test_empty_payload_part(v: Entry) -> None:
    v.bad(gateway.MalformedToken, sign_parts(H, ""))


def test_empty_signature_part(v: Entry) -> None:
    # "" is valid base64url for zero bytes: a zero-length MAC has the wrong length
    v.bad(gateway.InvalidSignature, f"{H}.{P}.")


def test_all_parts_empty_but_signed(v: Entry) -> None:
    v.bad(gateway.MalformedToken, sign_parts("", ""))


def _padded(part: str) -> str:
    assert len(part) % 4, "needs a part whose length is not a multiple of 4"
    return part + "=" * (-len(part) % 4)


def _with_len_mod(obj_base: dict, mod: int, key: str = "pad") -> str:
    """b64url(JSON(obj)) whose length % 4 == mod (a pad member grows until it fits)."""
    for n in range(8):
        text = b64e(dumps({**obj_base, key: "x" * n}))
        if len(text) % 4 == mod:
            return text
    raise AssertionError


@pytest.mark.parametrize("mod", [2, 3])
def test_padding_in_header(v: Entry, mod: int) -> None:
    h = _with_len_mod(HS256, mod)
    assert v.ok(sign_parts(h, P)) == {"sub": "alice"}
    v.bad(gateway.MalformedToken, sign_parts(_padded(h), P))


@pytest.mark.parametrize("mod", [2, 3])
def test_padding_in_payload(v: Entry, mod: int) -> None:
    p = _with_len_mod({"sub": "alice"}, mod)
    assert v.ok(sign_parts(H, p))["sub"] == "alice"
    v.bad(gateway.MalformedToken, sign_parts(H, _padded(p)))
    v.bad(gateway.MalformedToken, sign_parts(H, p + "===="))


def test_padding_in_signature(v: Entry) -> None:
    assert len(S) == 43
    v.bad(gateway.MalformedToken, f"{H}.{P}.{S}=")
    v.bad(gateway.MalformedToken, f"{H}.{P}.{S}==")
    v.bad(gateway.MalformedToken, f"{H}.{P}.{S}====")


def test_padding_inside_a_part(v: Entry) -> None:
    v.bad(gateway.MalformedToken, sign_parts(H[:8] + "=" + H[8:], P))
    v.bad(gateway.MalformedToken, f"{H}.{P}.{S[:20]}={S[20:]}")


def _with_url_chars() -> tuple[str, str]:
    """A header and payload whose base64url text contains both '-' and '_'."""
    h = b64e(dumps({"alg": "HS256", "kid": "???>>>", "typ": "JWT"}))
    p = b64e(dumps({"sub": "???>>>~~~"}))
    assert "-" in h + p and "_" in h + p
    return h, p


@pytest.mark.parametrize(("url", "std"), [("-", "+"), ("_", "/")])
def test_standard_alphabet_chars_in_header_and_payload(v: Entry, url: str, std: str) -> None:
    h, p = _with_url_chars()
    assert v.ok(sign_parts(h, p), {"???>>>": KEY}) == {"sub": "???>>>~~~"}
    if url in h:
        v.bad(gateway.MalformedToken, sign_parts(h.replace(url, std), p), {"???>>>": KEY})
    if url in p:
        v.bad(gateway.MalformedToken, sign_parts(h, p.replace(url, std)), {"???>>>": KEY})


@pytest.mark.parametrize(("url", "std"), [("-", "+"), ("_", "/")])
def test_standard_alphabet_chars_in_signature(v: Entry, url: str, std: str) -> None:
    for n in range(1000):
        token = make({"n": n})
        h, p, s = parts(token)
        if url in s:
            break
    else:
        raise AssertionError("no signature with that character")
    v.ok(token)
    v.bad(gateway.MalformedToken, f"{h}.{p}.{s.replace(url, std)}")


WHITESPACE = [" ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\xa0", "\u3000", "\u2028", "\ufeff"]


@pytest.mark.parametrize("ws", WHITESPACE, ids=[repr(w) for w in WHITESPACE])
def test_whitespace_anywhere(v: Entry, ws: str) -> None:
    v.bad(gateway.MalformedToken, ws + GOOD)
    v.bad(gateway.MalformedToken, GOOD + ws)
    v.bad(gateway.MalformedToken, f"{H}{ws}.{P}.{S}")
    v.bad(gateway.MalformedToken, sign_parts(H[:10] + ws + H[10:], P))
    v.bad(gateway.MalformedToken, sign_parts(H + ws, P))
    v.bad(gateway.MalformedToken, sign_parts(H, ws + P))
    v.bad(gateway.MalformedToken, sign_parts(H, P[:5] + ws + P[5:]))
    v.bad(gateway.MalformedToken, f"{H}.{P}.{ws}{S}")
    v.bad(gateway.MalformedToken, f"{H}.{P}.{S[:21]}{ws}{S[21:]}")
    v.bad(gateway.MalformedToken, f"{H}.{P}.{S}{ws}")


def _noncanonical(part: str) -> str:
    """Same decoded bytes (for a lenient decoder), different unused trailing bits."""
    assert len(part) % 4 in (2, 3)
    idx = ALPHABET.index(part[-1])
    unused = 0b1111 if len(part) % 4 == 2 else 0b11
    assert idx & unused == 0, "input must be canonical"
    changed = part[:-1] + ALPHABET[idx | 1]
    assert b64d(changed) == b64d(part) and changed != part
    return changed


@pytest.mark.parametrize("mod", [2, 3])
def test_noncanonical_trailing_bits_in_header(v: Entry, mod: int) -> None:
    h = _with_len_mod(HS256, mod)
    v.ok(sign_parts(h, P))
    v.bad(gateway.MalformedToken, sign_parts(_noncanonical(h), P))


@pytest.mark.parametrize("mod", [2, 3])
def test_noncanonical_trailing_bits_in_payload(v: Entry, mod: int) -> None:
    p = _with_len_mod({"sub": "alice"}, mod)
    v.ok(sign_parts(H, p))
    v.bad(gateway.MalformedToken, sign_parts(H, _noncanonical(p)))


@pytest.mark.parametrize("alg", ["HS256", "HS512"])  # 43 and 86 characters: 2 and 4 unused bits
def test_noncanonical_trailing_bits_in_signature(v: Entry, alg: str) -> None:
    token = make({"sub": "alice"}, alg=alg, key=KEYS[alg])
    h, p, s = parts(token)
    v.ok(token, KEYS[alg], algorithms=[alg])
    # a lenient decoder yields exactly the right MAC from this text
    v.bad(gateway.MalformedToken, f"{h}.{p}.{_noncanonical(s)}", KEYS[alg], algorithms=[alg])


def test_impossible_base64_length(v: Entry) -> None:
    # 4k+1 characters cannot be base64 of anything
    v.bad(gateway.MalformedToken, sign_parts(H + "A" * (4 - len(H) % 4 + 1), P))
    v.bad(gateway.MalformedToken, f"{H}.{P}.{S}AA")  # 45 chars for a 32-byte MAC... or 33 bytes
    v.bad(gateway.MalformedToken, f"{H}.{P}.{S[:41]}")  # 41 = 4*10+1


@pytest.mark.parametrize("char", ["é", "\x00", "\x7f", "😀", "\u0130", "Ａ", "?", "#", "*", "%", "~", "!", "$"])
def test_non_base64url_characters(v: Entry, char: str) -> None:
    v.bad(gateway.MalformedToken, sign_parts(H[:6] + char + H[6:], P))
    v.bad(gateway.MalformedToken, sign_parts(H, P[:4] + char + P[4:]))
    v.bad(gateway.MalformedToken, f"{H}.{P}.{S[:10]}{char}{S[10:]}")
    v.bad(gateway.MalformedToken, f"{H}.{P}.{S[:-1]}{char}")


@pytest.mark.parametrize("char", [chr(0xD800), chr(0xDC80), chr(0xDFFF)], ids=repr)
def test_lone_surrogate_in_str_token(v: Entry, char: str) -> None:
    """A str token may hold any code point, lone surrogates included: still a MalformedToken (a JWTError),
    not a UnicodeEncodeError, which would escape `except gateway.JWTError` and carry the token in .object."""
    v.bad(gateway.MalformedToken, GOOD + char)
    v.bad(gateway.MalformedToken, char + GOOD)
    v.bad(gateway.MalformedToken, f"{H}.{P[:3]}{char}{P[3:]}.{S}")
    v.bad(gateway.MalformedToken, char)


def test_non_ascii_bytes_token(v: Entry) -> None:
    for byte in [b"\xff", b"\x80", b"\xc3\xa9", b"\x00"]:
        hp = H.encode() + b"." + P[:3].encode() + byte + P[3:].encode()
        token = hp + b"." + b64e(mac(KEY, hp)).encode()
        v.bad(gateway.MalformedToken, token)
        v.bad(gateway.MalformedToken, GOOD.encode() + byte)


def test_str_and_bytes_tokens_agree(v: Entry) -> None:
    claims = {"sub": "alice", "n": 1}
    token = make(claims)
    assert v.ok(token) == v.ok(token.encode("ascii")) == claims
    v.bad(gateway.InvalidSignature, make(claims, key=KEY48).encode("ascii"))
    v.bad(gateway.MalformedToken, (" " + token).encode("ascii"))


@pytest.mark.parametrize("token", [None, 123, 1.5, ["a.b.c"], {"t": 1}, object()], ids=repr)
def test_token_of_wrong_type(token: Any) -> None:
    with pytest.raises(TypeError):
        gateway.verify(token, KEY, now=NOW)
    with pytest.raises(TypeError):
        gateway.Verifier(KEY).verify(token, now=NOW)


def test_json_serialization_is_not_accepted(v: Entry) -> None:
    flattened = json.dumps({"payload": P, "protected": H, "signature": S})
    general = json.dumps({"payload": P, "signatures": [{"protected": H, "signature": S}]})
    v.bad(gateway.MalformedToken, flattened)
    v.bad(gateway.MalformedToken, general)


# --- header and claims must be JSON objects -------------------------------------------------------

NOT_OBJECTS = [
    b"[]",
    b'[{"alg":"HS256"}]',
    b'"x"',
    b"1",
    b"null",
    b"true",
    b"{",
    b"",
    b"{}x",
    b'{"a":1}{"b":2}',
    b'{"a":1,}',
    b"{'a':1}",
    b'{"a":01}',
    b'{"a":1.}',
    b'{"a":.5}',
    b'{"a":+1}',
    b'{"a":0x10}',
    b'{"a":1e}',
    b'{"a":-}',
    b'{"a":"\x01"}',
    b'{"a":"\\x41"}',
    b'{"a":"\xff"}',
    b'{"a":"\xc3"}',
    b'{"a":"\xed\xa0\x80"}',
    b'{a:1}',
    b'{"a" 1}',
    b'{"a":tru}',
    b'{"a":undefined}',
]


@pytest.mark.parametrize("raw", NOT_OBJECTS, ids=repr)
def test_header_not_a_json_object(v: Entry, raw: bytes) -> None:
    v.bad(gateway.MalformedToken, make({"sub": "a"}, raw_header=raw))


@pytest.mark.parametrize("raw", NOT_OBJECTS, ids=repr)
def test_claims_not_a_json_object(v: Entry, raw: bytes) -> None:
    v.bad(gateway.MalformedToken, make(raw_payload=raw))


# --- duplicate member names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"alg":"HS256","alg":"HS256"}',
        b'{"alg":"none","alg":"HS256"}',
        b'{"alg":"HS256","alg":"none"}',
        b'{"alg":"HS256","typ":"JWT","typ":"JWT"}',
        b'{"alg":"HS256","kid":"a","kid":"a"}',
        b'{"alg":"HS256","\\u0061lg":"HS256"}',
        b'{"alg":"HS256","x":{"y":1,"y":2}}',
        b'{"alg":"HS256","x":[{"y":1,"y":1}]}',
    ],
    ids=repr,
)
def test_duplicate_names_in_header(v: Entry, raw: bytes) -> None:
    v.bad(gateway.MalformedToken, make({"sub": "a"}, raw_header=raw), {"a": KEY} if b'"kid"' in raw else KEY)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"sub":"a","sub":"b"}',
        b'{"sub":"a","sub":"a"}',
        b'{"exp":1,"exp":9999999999}',
        b'{"exp":9999999999,"exp":1}',
        b'{"a":{"b":1,"b":2}}',
        b'{"a":[1,{"b":1,"b":2}]}',
        b'{"a":[[[{"x":{"y":1,"y":1}}]]]}',
        b'{"sub":"a","s\\u0075b":"b"}',
        b'{"a":{"\\u00e9":1,"\xc3\xa9":2}}',
        b'{"\\ud83d\\ude00":1,"\xf0\x9f\x98\x80":2}',
        b'{"":1,"":2}',
    ],
    ids=repr,
)
def test_duplicate_names_in_claims(v: Entry, raw: bytes) -> None:
    v.bad(gateway.MalformedToken, make(raw_payload=raw))


def test_same_name_in_different_objects_is_fine(v: Entry) -> None:
    raw = b'{"a":{"b":1},"c":{"b":2},"d":[{"b":3},{"b":4}],"b":5}'
    assert v.ok(make(raw_payload=raw)) == json.loads(raw)


# --- crit / b64 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "crit": ["exp"], "exp": 1},
        {"alg": "HS256", "crit": []},
        {"alg": "HS256", "crit": None},
        {"alg": "HS256", "crit": ["b64"], "b64": False},
        {"alg": "HS256", "b64": False},
        {"alg": "HS256", "b64": True},
    ],
    ids=repr,
)
def test_crit_and_b64_headers(v: Entry, header: dict) -> None:
    v.bad(gateway.MalformedToken, make({"sub": "a"}, header))


def test_key_carrying_headers_are_ignored(v: Entry) -> None:
    attacker = b"attacker-chosen-secret-32-bytes!"
    header = {
        "alg": "HS256",
        "jku": "https://evil.example/jwks",
        "jwk": {"kty": "oct", "k": b64e(attacker)},
        "x5u": "https://evil.example/cert",
    }
    assert v.ok(make({"sub": "a"}, header)) == {"sub": "a"}
    v.bad(gateway.InvalidSignature, make({"sub": "a"}, header, key=attacker))


# --- alg -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "none ", ""])
def test_alg_none_never_accepted(v: Entry, alg: str) -> None:
    header = {"alg": alg, "typ": "JWT"}
    h, p = b64e(dumps(header)), P
    v.bad(gateway.AlgorithmNotAllowed, f"{h}.{p}.")
    v.bad(gateway.AlgorithmNotAllowed, sign_parts(h, p))  # even with a correct HS256 MAC
    v.bad(gateway.AlgorithmNotAllowed, f"{h}.{p}.", algorithms=["HS256", "HS384", "HS512"], key=KEY64)


def test_header_escapes_are_decoded_before_checks(v: Entry) -> None:
    assert v.ok(make({"n": 1}, raw_header=b'{"alg":"HS\\u0032\\u0035\\u0036"}')) == {"n": 1}
    assert v.ok(make({"n": 1}, raw_header=b'{"\\u0061lg":"HS256","\\u006bid":"k\\u0031"}', key=K1), KEYMAP) == {"n": 1}
    v.bad(gateway.AlgorithmNotAllowed, make({"n": 1}, raw_header=b'{"\\u0061lg":"none"}'))
    v.bad(gateway.AlgorithmNotAllowed, make({"n": 1}, raw_header=b'{"alg":"n\\u006fne"}'))
    v.bad(gateway.AlgorithmNotAllowed, make({"n": 1}, raw_header=b'{"alg":"HS256\\u0000"}'))
    v.bad(gateway.MalformedToken, make({"n": 1}, raw_header=b'{"alg":"HS256","\\u0063rit":["x"],"x":1}'))
    v.bad(gateway.MalformedToken, make({"n": 1}, raw_header=b'{"alg":"HS256","b\\u0036\\u0034":false}'))
    v.bad(gateway.InvalidSignature, make({"n": 1}, raw_header=b'{"alg":"HS256","kid":"k\\u0031"}', key=K2), KEYMAP)
    v.bad(gateway.MalformedToken, make({"n": 1}, raw_header=b'{"alg":"HS256","kid":1}', key=K1), KEYMAP)


@pytest.mark.parametrize("alg", ["HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA", "hs256", "HS256 ", " HS256", "HS256\x00", "HS2566"])
def test_alg_not_in_policy(v: Entry, alg: str) -> None:
    key = KEYS.get(alg, KEY)
    token = make({"sub": "a"}, {"alg": alg}, key=key, alg=alg if alg in KEYS else "HS256")
    v.bad(gateway.AlgorithmNotAllowed, token, key, algorithms=["HS256"])


@pytest.mark.parametrize(
    "alg",
    ["A" * 5000, "x\nInjected: log line\r\n", "\x1b[31mred", "\u2028x", "\x00", GOOD, "é" * 300],
    ids=["long", "crlf", "ansi", "u2028", "nul", "token-text", "non-ascii"],
)
def test_echoed_header_text_is_short_and_clean(v: Entry, alg: str) -> None:
    """Whatever of the header a message repeats is bounded and has no control characters (checked in bad())."""
    token = make({"sub": "a"}, {"alg": alg})
    exc = v.bad(gateway.AlgorithmNotAllowed, token, max_length=1 << 20)
    assert_no_leak(exc, GOOD)


def test_hs512_token_against_hs256_policy_even_with_right_key(v: Entry) -> None:
    token = make({"sub": "a"}, alg="HS512", key=KEY64)
    v.bad(gateway.AlgorithmNotAllowed, token, KEY64, algorithms=["HS256"])
    assert v.ok(token, KEY64, algorithms=["HS256", "HS512"]) == {"sub": "a"}


@pytest.mark.parametrize("alg", [256, None, True, ["HS256"], {"HS256": 1}, 1.5])
def test_alg_not_a_string(v: Entry, alg: Any) -> None:
    # RFC 7515 §4.1.1: a required string. Missing, null or another type is one kind (documented).
    v.bad(gateway.MalformedToken, make({"sub": "a"}, {"alg": alg}))


def test_alg_missing(v: Entry) -> None:
    v.bad(gateway.MalformedToken, make({"sub": "a"}, {"typ": "JWT"}))


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_each_hs_alg(v: Entry, alg: str) -> None:
    token = make({"sub": alg}, alg=alg, key=KEYS[alg])
    assert v.ok(token, KEYS[alg], algorithms=[alg]) == {"sub": alg}
    token = make({"sub": alg}, alg=alg, key=KEY64)
    assert v.ok(token, KEY64, algorithms=["HS256", "HS384", "HS512"]) == {"sub": alg}


# --- signature -------------------------------------------------------------------------------------

MAC = mac(KEY, f"{H}.{P}")


@pytest.mark.parametrize(
    "sig",
    [
        MAC[:31],
        MAC[:16],
        MAC[:1],
        MAC + b"\x00",
        MAC + MAC,
        MAC[:31] + bytes([MAC[31] ^ 1]),
        bytes([MAC[0] ^ 0x80]) + MAC[1:],
        bytes(32),
        b"\xff" * 32,
        mac(KEY, f"{H}.{P}", "HS384"),
        mac(KEY64, f"{H}.{P}", "HS512"),
        mac(KEY, f"{H}.{P}", "HS512")[:32],
    ],
    ids=[
        "truncated-31",
        "truncated-16",
        "one-byte",
        "over-long-33",
        "doubled",
        "last-bit",
        "first-bit",
        "zeros",
        "ones",
        "hs384-mac",
        "hs512-mac",
        "hs512-mac-truncated",
    ],
)
def test_bad_signature(v: Entry, sig: bytes) -> None:
    v.bad(gateway.InvalidSignature, f"{H}.{P}.{b64e(sig)}")


def test_every_single_bit_of_the_mac_matters(v: Entry) -> None:
    for i in range(len(MAC) * 8):
        bad = bytearray(MAC)
        bad[i // 8] ^= 1 << (i % 8)
        v.bad(gateway.InvalidSignature, f"{H}.{P}.{b64e(bytes(bad))}")


@pytest.mark.parametrize(
    "key",
    # (not KEY + b"\x00": HMAC zero-pads keys to the block size, so that one is the same HMAC key)
    [KEY[:-1] + b"!", b"!" + KEY[1:], KEY + b"\x01", KEY48, KEY.upper(), KEY.decode()[::-1]],
    ids=["last-byte", "first-byte", "appended-byte", "other", "upper", "reversed"],
)
def test_wrong_key(v: Entry, key: Any) -> None:
    v.bad(gateway.InvalidSignature, GOOD, key)


def test_str_key_is_its_utf8_bytes(v: Entry) -> None:
    key = "é" * 16  # 16 characters, 32 UTF-8 bytes: not weak
    token = make({"sub": "a"}, key=key.encode("utf-8"))
    assert v.ok(token, key) == {"sub": "a"}
    assert v.ok(token, key.encode("utf-8")) == {"sub": "a"}
    assert v.ok(GOOD, KEY.decode("ascii")) == {"sub": "alice"}


DEFECTIVE_CLAIMS = {
    "expired": {"exp": NOW - 100},
    "not-yet-valid": {"nbf": NOW + 100},
    "exp-string": {"exp": "soon"},
    "exp-null": {"exp": None},
    "iss-wrong": {"iss": "mallory"},
    "aud-wrong": {"aud": "other"},
    "aud-bad-type": {"aud": 5},
}


@pytest.mark.parametrize("name", list(DEFECTIVE_CLAIMS))
def test_signature_is_checked_before_claims(v: Entry, name: str) -> None:
    claims = DEFECTIVE_CLAIMS[name]
    wrong = make(claims, key=KEY48)
    v.bad(gateway.InvalidSignature, wrong, issuer="joe", audience="api", require=["sub"])


@pytest.mark.parametrize(
    "raw",
    [b"foo", b"[]", b'{"a":1,"a":2}', b'{"a":NaN}', b'{"a":{"b":1,"b":2}}', b'{"exp":"x"}'],
    ids=repr,
)
def test_signature_is_checked_before_claims_are_parsed(v: Entry, raw: bytes) -> None:
    v.bad(gateway.MalformedToken, make(raw_payload=raw))  # right MAC: the claims are the problem
    v.bad(gateway.InvalidSignature, make(raw_payload=raw, key=KEY48))  # wrong MAC: stop there


# --- kid -------------------------------------------------------------------------------------------

K1 = b"first-secret-for-kid-k1-32bytes!"
K2 = b"second-secret-for-kid-k2-32bytes"
KEYMAP = {"k1": K1, "k2": K2}


def test_kid_selects_the_secret(v: Entry) -> None:
    assert v.ok(make({"n": 1}, {"alg": "HS256", "kid": "k1"}, key=K1), KEYMAP) == {"n": 1}
    assert v.ok(make({"n": 2}, {"alg": "HS256", "kid": "k2"}, key=K2), KEYMAP) == {"n": 2}
    assert v.ok(make({"n": 3}, {"alg": "HS256", "kid": "k2"}, key=K2), {"k2": K2.decode()}) == {"n": 3}


def test_kid_pointing_at_the_other_secret(v: Entry) -> None:
    v.bad(gateway.InvalidSignature, make({"n": 1}, {"alg": "HS256", "kid": "k1"}, key=K2), KEYMAP)
    v.bad(gateway.InvalidSignature, make({"n": 1}, {"alg": "HS256", "kid": "k2"}, key=K1), KEYMAP)


@pytest.mark.parametrize(
    "kid",
    ["k3", "", "K1", "k1 ", " k1", "k1\x00", "../../x", "../k1", "/etc/passwd", "k1/../k1", 'k1"', "'k1'", "k1\\", "k\u0131", "*", "%"],
    ids=repr,
)
def test_unknown_kid(v: Entry, kid: str) -> None:
    for secret in (K1, K2):
        v.bad(gateway.InvalidSignature, make({"n": 1}, {"alg": "HS256", "kid": kid}, key=secret), KEYMAP)


def test_missing_kid_with_a_key_map(v: Entry) -> None:
    for secret in (K1, K2):
        v.bad(gateway.InvalidSignature, make({"n": 1}, {"alg": "HS256"}, key=secret), KEYMAP)
        v.bad(gateway.InvalidSignature, make({"n": 1}, {"alg": "HS256"}, key=secret), {"k1": secret})


@pytest.mark.parametrize("kid", [1, 0, None, True, ["k1"], {"k1": 1}, 1.5], ids=repr)
def test_non_string_kid(v: Entry, kid: Any) -> None:
    v.bad(gateway.MalformedToken, make({"n": 1}, {"alg": "HS256", "kid": kid}, key=K1), KEYMAP)


def test_kid_is_ignored_with_a_single_secret(v: Entry) -> None:
    assert v.ok(make({"n": 1}, {"alg": "HS256", "kid": "whatever"}), KEY) == {"n": 1}


def test_key_map_entries_are_checked() -> None:
    config_error(gateway.Verifier, {"k1": K1, "weak": b"short"})
    config_error(gateway.verify, GOOD, {"k1": K1, "weak": "short"}, now=NOW)
    with pytest.raises(TypeError):
        gateway.Verifier({"k1": 12345})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        gateway.Verifier({1: K1})  # type: ignore[dict-item]


# --- key strength and kind -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "size"), [("HS256", 31), ("HS256", 1), ("HS384", 47), ("HS384", 32), ("HS512", 63), ("HS512", 32), ("HS512", 48)]
)
def test_weak_key_refused_unless_allowed(alg: str, size: int) -> None:
    key = bytes(range(65, 65 + size))
    token = make({"sub": "a"}, alg=alg, key=key)
    config_error(gateway.Verifier, key, algorithms=[alg])
    config_error(gateway.verify, token, key, algorithms=[alg], now=NOW)
    config_error(gateway.encode, {"sub": "a"}, key, algorithm=alg)
    config_error(gateway.Verifier, key.decode("ascii"), algorithms=[alg])
    assert gateway.verify(token, key, algorithms=[alg], now=NOW, allow_weak_key=True) == {"sub": "a"}
    assert gateway.Verifier(key, algorithms=[alg], allow_weak_key=True).verify(token, now=NOW) == {"sub": "a"}
    assert gateway.verify(gateway.encode({"sub": "a"}, key, algorithm=alg, allow_weak_key=True), key,
                          algorithms=[alg], now=NOW, allow_weak_key=True) == {"sub": "a"}


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_key_of_exactly_the_hash_size_is_fine(alg: str) -> None:
    token = make({"sub": "a"}, alg=alg, key=KEYS[alg])
    assert gateway.Verifier(KEYS[alg], algorithms=[alg]).verify(token, now=NOW) == {"sub": "a"}


def test_32_byte_key_ok_for_hs256_not_for_hs512() -> None:
    assert gateway.verify(GOOD, KEY, algorithms=["HS256"], now=NOW) == {"sub": "alice"}
    config_error(gateway.Verifier, KEY, algorithms=["HS512"])
    config_error(gateway.Verifier, KEY, algorithms=["HS384"])


def test_key_weak_for_one_of_the_allowed_algs_never_verifies_that_alg() -> None:
    token512 = make({"sub": "a"}, alg="HS512", key=KEY)
    try:
        verifier = gateway.Verifier(KEY, algorithms=["HS256", "HS512"])
    except ValueError as exc:
        assert not isinstance(exc, gateway.JWTError)
        return
    with pytest.raises(ValueError) as info:
        verifier.verify(token512, now=NOW)
    assert not isinstance(info.value, gateway.JWTError)


PUBLIC_KEYS = {
    "pem-spki": (
        "-----BEGIN PUBLIC KEY-----\n"
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhCnBBK1LsZX0wGbmQ69je3PVtOdk\n"
        "o7qJKl33Me/5GBkLYWLg3VgEWB1+4n0qs3311FcsIY9CW6b+plOimdeUNQ==\n"
        "-----END PUBLIC KEY-----\n"
    ),
    "pem-pkcs1": (
        "-----BEGIN RSA PUBLIC KEY-----\n"
        "MIGJAoGBAO8MMIu8mDPcRIW5deBOF0oycVkz/MHsf/rAfacUX9mw+hua5tDxvdcZ\n"
        "t5QgfXCoP1t4N0wo9M+he1ZeTI4/6NfJuBVlduBRJIs+TMvza9NgG3CRtnmA8uyw\n"
        "+cmhyEy6jMCiGnVA5Rq6Kl8pw4xSXJpQsjDWSCApF6ZOrAuwtbSjAgMBAAE=\n"
        "-----END RSA PUBLIC KEY-----\n"
    ),
    "ssh-rsa": (
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDvDDCLvJgz3ESFuXXgThdKMnFZM/zB7H/6wH2nFF/ZsPobmubQ8b3XGbeUIH1wqD9"
        "beDdMKPTPoXtWXkyOP+jXybgVZXbgUSSLPkzL82vTYBtwkbZ5gPLssPnJochMuozAohp1QOUauipfKcOMUlyaULIw1kggKRemTqwLsLW0ow=="
    ),
    "ssh-ed25519": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZ8dhollbsBHCdPtmIYe/O+ebQYmsCeoS3ON4p9lGNY",
    "ecdsa-sha2": (
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIQpwQStS7GV9MBm5kOvY3tz1bTnZKO6iSp"
        "d9zHv+RgZC2Fi4N1YBFgdfuJ9KrN99dRXLCGPQlum/qZTopnXlDU="
    ),
}


@pytest.mark.parametrize("name", list(PUBLIC_KEYS))
@pytest.mark.parametrize("form", ["str", "bytes", "crlf", "leading-newline", "in-key-map"])
def test_public_key_as_hmac_secret_is_refused(name: str, form: str) -> None:
    text = PUBLIC_KEYS[name]
    key: Any = {
        "str": text,
        "bytes": text.encode(),
        "crlf": text.replace("\n", "\r\n").encode(),
        "leading-newline": "\n" + text,
        "in-key-map": {"k1": K1, "pub": text},
    }[form]
    # the classic confusion attack: the attacker signs HS256 with the public key text as the secret
    raw = key["pub"] if isinstance(key, dict) else key
    raw = raw.encode() if isinstance(raw, str) else raw
    token = make({"sub": "admin"}, {"alg": "HS256", "kid": "pub"}, key=raw)
    for allow in (False, True):
        config_error(gateway.Verifier, key, allow_weak_key=allow)
        config_error(gateway.verify, token, key, now=NOW, allow_weak_key=allow)
        config_error(gateway.encode, {"sub": "admin"}, raw, allow_weak_key=allow)


# --- algorithms / config arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    "algorithms",
    [["none"], ["HS256", "none"], ["NONE"], ["None"], ["RS256"], ["HS256", "RS256"], ["ES256"], ["hs256"], ["HS1"], [], [""]],
    ids=repr,
)
def test_bad_algorithms_list(algorithms: list[str]) -> None:
    config_error(gateway.Verifier, KEY64, algorithms=algorithms)
    config_error(gateway.verify, GOOD, KEY64, algorithms=algorithms, now=NOW)


@pytest.mark.parametrize("algorithm", ["none", "RS256", "hs256", ""])
def test_bad_encode_algorithm(algorithm: str) -> None:
    config_error(gateway.encode, {"sub": "a"}, KEY64, algorithm=algorithm)


def test_other_config_mistakes() -> None:
    config_error(gateway.Verifier, KEY, audience=[])
    config_error(gateway.verify, GOOD, KEY, audience=[], now=NOW)
    config_error(gateway.Verifier, KEY, leeway=-1)
    config_error(gateway.Verifier, KEY, leeway=-0.5)
    config_error(gateway.Verifier, KEY, leeway=datetime.timedelta(seconds=-1))
    config_error(gateway.verify, GOOD, KEY, leeway=-1, now=NOW)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key": 12345},
        {"key": None},
        {"key": ["k"]},
        {"leeway": "10"},
        {"audience": 5},
        {"issuer": 5},
        {"audience": [b"api"]},
        {"algorithms": [256]},
        {"require": [1]},
        {"max_length": "big"},
    ],
    ids=repr,
)
def test_wrong_argument_types(kwargs: dict) -> None:
    kw = {"key": KEY, **kwargs}
    key = kw.pop("key")
    with pytest.raises(TypeError):
        gateway.Verifier(key, **kw)
    with pytest.raises(TypeError):
        gateway.verify(GOOD, key, now=NOW, **kw)


@pytest.mark.parametrize("now", ["1700000000", [NOW], b"1"], ids=repr)
def test_now_of_wrong_type(now: Any) -> None:
    with pytest.raises(TypeError):
        gateway.verify(GOOD, KEY, now=now)
    with pytest.raises(TypeError):
        gateway.Verifier(KEY).verify(GOOD, now=now)


def test_naive_datetime_now_is_refused_or_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract asks for an aware datetime. A naive one must not be read as local time: either it is
    refused, or (like PyJWT) taken as UTC. The local zone is set to UTC+9 to tell the two apart."""
    import time

    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    try:
        naive = datetime.datetime(2023, 11, 14, 22, 13, 20)  # == NOW in UTC
        assert naive.replace(tzinfo=UTC).timestamp() == NOW
        token = make({"exp": NOW + 1, "nbf": NOW})
        try:
            claims = gateway.verify(token, KEY, now=naive)
        except (TypeError, ValueError) as exc:
            assert not isinstance(exc, gateway.JWTError), exc
        else:
            assert claims == {"exp": NOW + 1, "nbf": NOW}
            with pytest.raises(gateway.ExpiredToken) as info:
                gateway.verify(token, KEY, now=naive + datetime.timedelta(seconds=1))
            assert_no_leak(info.value, keys=[KEY, KEY48, KEY64, K1, K2])
    finally:
        monkeypatch.undo()
        time.tzset()


# --- exp / nbf / iat --------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["1700000000", "", True, False, None, [], [NOW + 100], {}, {"t": NOW}], ids=repr)
def test_time_claims_must_be_numbers(v: Entry, claim: str, value: Any) -> None:
    v.bad(gateway.MalformedToken, make({claim: value}))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_time_claims_as_numbers(v: Entry, claim: str) -> None:
    value = {"exp": NOW + 100, "nbf": NOW - 100, "iat": NOW - 100}[claim]
    for number in (value, float(value), value + 0.25):
        assert v.ok(make({claim: number})) == {claim: number}


def test_exp_boundaries(v: Entry) -> None:
    # expired iff exp <= now - leeway
    v.bad(gateway.ExpiredToken, make({"exp": NOW}))
    v.bad(gateway.ExpiredToken, make({"exp": NOW - 1}))
    v.bad(gateway.ExpiredToken, make({"exp": 0}))
    v.bad(gateway.ExpiredToken, make({"exp": -(10**30)}))
    v.bad(gateway.ExpiredToken, make({"exp": NOW - 0.5}))
    v.bad(gateway.ExpiredToken, make({"exp": float(NOW)}))
    assert v.ok(make({"exp": NOW + 1}))["exp"] == NOW + 1
    assert v.ok(make({"exp": NOW + 0.25}))["exp"] == NOW + 0.25
    assert v.ok(make({"exp": 10**30}))["exp"] == 10**30
    assert v.ok(make({"exp": 1e300}))["exp"] == 1e300


def test_time_claims_beyond_float_range_and_precision(v: Entry) -> None:
    """The comparisons are on the numbers, not on their nearest doubles."""
    assert v.ok(make({"exp": 10**400}))["exp"] == 10**400
    v.bad(gateway.ExpiredToken, make({"exp": -(10**400)}))
    v.bad(gateway.NotYetValid, make({"nbf": 10**400}))


def test_time_comparison_is_exact_beyond_2_53(v: Entry) -> None:
    """"Expired iff exp <= now - leeway" on the numbers: 2**53 + 1 has no double of its own, so a
    comparison done in doubles calls exp = 2**53 + 1 expired at now = 2**53. (No practical impact:
    that is ~285 million years from now; it checks that the rule is implemented as written.)"""
    big = 2**53
    assert v.ok(make({"exp": big + 1}), now=big) == {"exp": big + 1}
    v.bad(gateway.ExpiredToken, make({"exp": big}), now=big)
    v.bad(gateway.NotYetValid, make({"nbf": big + 1}), now=big)
    assert v.ok(make({"nbf": big}), now=big) == {"nbf": big}


@pytest.mark.parametrize("leeway", [10, 10.0, datetime.timedelta(seconds=10)], ids=repr)
def test_exp_with_leeway(v: Entry, leeway: Any) -> None:
    v.bad(gateway.ExpiredToken, make({"exp": NOW - 10}), leeway=leeway)
    v.bad(gateway.ExpiredToken, make({"exp": NOW - 11}), leeway=leeway)
    assert v.ok(make({"exp": NOW - 9}), leeway=leeway) == {"exp": NOW - 9}
    assert v.ok(make({"exp": NOW - 9.75}), leeway=leeway) == {"exp": NOW - 9.75}
    assert v.ok(make({"exp": NOW}), leeway=leeway) == {"exp": NOW}


def test_fractional_leeway_and_now(v: Entry) -> None:
    v.bad(gateway.ExpiredToken, make({"exp": NOW - 0.5}), leeway=0.5)
    assert v.ok(make({"exp": NOW - 0.25}), leeway=0.5)
    assert v.ok(make({"exp": NOW - 0.25}), leeway=datetime.timedelta(milliseconds=500))
    v.bad(gateway.ExpiredToken, make({"exp": NOW + 1}), now=NOW + 1.0)
    assert v.ok(make({"exp": NOW + 1}), now=NOW + 0.75)


def test_nbf_boundaries(v: Entry) -> None:
    # not yet valid iff nbf > now + leeway
    assert v.ok(make({"nbf": NOW})) == {"nbf": NOW}
    assert v.ok(make({"nbf": NOW - 1})) == {"nbf": NOW - 1}
    assert v.ok(make({"nbf": -(10**30)}))
    v.bad(gateway.NotYetValid, make({"nbf": NOW + 1}))
    v.bad(gateway.NotYetValid, make({"nbf": NOW + 0.25}))
    v.bad(gateway.NotYetValid, make({"nbf": 10**30}))


@pytest.mark.parametrize("leeway", [10, 10.0, datetime.timedelta(seconds=10)], ids=repr)
def test_nbf_with_leeway(v: Entry, leeway: Any) -> None:
    assert v.ok(make({"nbf": NOW + 10}), leeway=leeway) == {"nbf": NOW + 10}
    assert v.ok(make({"nbf": NOW + 9.5}), leeway=leeway)
    v.bad(gateway.NotYetValid, make({"nbf": NOW + 11}), leeway=leeway)
    v.bad(gateway.NotYetValid, make({"nbf": NOW + 10.25}), leeway=leeway)


def test_nan_leeway_is_refused_or_harmless() -> None:
    """exp <= now - NaN is false: a NaN leeway must be refused, not silently turn the exp/nbf checks off."""
    nan = float("nan")
    try:
        ver = gateway.Verifier(KEY, leeway=nan)
    except ValueError as e:
        assert not isinstance(e, gateway.JWTError)
        return
    with pytest.raises(gateway.ExpiredToken) as info:
        ver.verify(make({"exp": NOW - 1000}), now=NOW)
    assert_no_leak(info.value, keys=[KEY, KEY48, KEY64, K1, K2])
    with pytest.raises(gateway.NotYetValid) as info2:
        ver.verify(make({"nbf": NOW + 1000}), now=NOW)
    assert_no_leak(info2.value, keys=[KEY, KEY48, KEY64, K1, K2])


@pytest.mark.parametrize("bad_now", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_now_is_refused(bad_now: float) -> None:
    # A NaN `now` would make every comparison false and silently turn exp/nbf checking off.
    for token in (make({"exp": NOW - 1000}), make({"nbf": NOW + 1000}), make({"sub": "a"})):
        with pytest.raises(ValueError) as info:
            gateway.verify(token, KEY, now=bad_now)
        assert not isinstance(info.value, gateway.JWTError)
        with pytest.raises(ValueError):
            gateway.Verifier(KEY).verify(token, now=bad_now)


def test_exp_and_nbf_window(v: Entry) -> None:
    token = make({"nbf": NOW - 5, "exp": NOW + 5})
    assert v.ok(token)
    v.bad(gateway.NotYetValid, token, now=NOW - 6)
    v.bad(gateway.ExpiredToken, token, now=NOW + 5)
    assert v.ok(token, now=NOW + 6, leeway=2)


def test_now_as_datetime(v: Entry) -> None:
    token = make({"exp": NOW + 1, "nbf": NOW})
    at = datetime.datetime.fromtimestamp(NOW, UTC)
    assert v.ok(token, now=at)
    seoul = at.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
    assert v.ok(token, now=seoul)
    assert v.ok(token, now=at + datetime.timedelta(milliseconds=999))
    v.bad(gateway.ExpiredToken, token, now=at + datetime.timedelta(seconds=1))
    v.bad(gateway.ExpiredToken, token, now=seoul + datetime.timedelta(seconds=1))
    v.bad(gateway.NotYetValid, token, now=at - datetime.timedelta(milliseconds=1))


def test_wall_clock_is_the_default() -> None:
    import time

    t = int(time.time())
    assert gateway.verify(make({"exp": t + 3600, "nbf": t - 3600}), KEY) == {"exp": t + 3600, "nbf": t - 3600}
    with pytest.raises(gateway.ExpiredToken) as info:
        gateway.verify(make({"exp": t - 3600}), KEY)
    assert_no_leak(info.value, keys=[KEY, KEY48, KEY64, K1, K2])
    with pytest.raises(gateway.NotYetValid) as info2:
        gateway.Verifier(KEY).verify(make({"nbf": t + 3600}))
    assert_no_leak(info2.value, keys=[KEY, KEY48, KEY64, K1, K2])


# --- iss --------------------------------------------------------------------------------------------


def test_issuer_string(v: Entry) -> None:
    assert v.ok(make({"iss": "joe"}), issuer="joe") == {"iss": "joe"}
    v.bad(gateway.InvalidIssuer, make({"iss": "jane"}), issuer="joe")
    v.bad(gateway.InvalidIssuer, make({"iss": "Joe"}), issuer="joe")
    v.bad(gateway.InvalidIssuer, make({"iss": "joe "}), issuer="joe")
    v.bad(gateway.InvalidIssuer, make({"iss": "jo"}), issuer="joe")
    v.bad(gateway.InvalidIssuer, make({"iss": ""}), issuer="joe")
    v.bad(gateway.MissingClaim, make({"sub": "joe"}), issuer="joe")


def test_issuer_sequence(v: Entry) -> None:
    for issuer in (["a", "b"], ("a", "b")):
        assert v.ok(make({"iss": "a"}), issuer=issuer)
        assert v.ok(make({"iss": "b"}), issuer=issuer)
        v.bad(gateway.InvalidIssuer, make({"iss": "c"}), issuer=issuer)
        v.bad(gateway.InvalidIssuer, make({"iss": "ab"}), issuer=issuer)
        v.bad(gateway.MissingClaim, make({}), issuer=issuer)


@pytest.mark.parametrize("iss", [1, None, True, ["joe"], {"joe": 1}, 1.5], ids=repr)
def test_issuer_not_a_string(v: Entry, iss: Any) -> None:
    v.bad(gateway.InvalidIssuer, make({"iss": iss}), issuer="joe")


def test_a_string_issuer_or_audience_is_not_a_sequence_of_characters(v: Entry) -> None:
    v.bad(gateway.InvalidIssuer, make({"iss": "j"}), issuer="joe")
    v.bad(gateway.InvalidAudience, make({"aud": "a"}), audience="api")
    v.bad(gateway.InvalidAudience, make({"aud": ["a", "p", "i"]}), audience="api")


def test_iss_ignored_when_no_issuer_expected(v: Entry) -> None:
    assert v.ok(make({"iss": "anyone"})) == {"iss": "anyone"}


# --- aud --------------------------------------------------------------------------------------------


def test_audience_string(v: Entry) -> None:
    assert v.ok(make({"aud": "api"}), audience="api") == {"aud": "api"}
    assert v.ok(make({"aud": ["web", "api"]}), audience="api") == {"aud": ["web", "api"]}
    v.bad(gateway.InvalidAudience, make({"aud": "web"}), audience="api")
    v.bad(gateway.InvalidAudience, make({"aud": "API"}), audience="api")
    v.bad(gateway.InvalidAudience, make({"aud": "apix"}), audience="api")
    v.bad(gateway.InvalidAudience, make({"aud": ["web"]}), audience="api")
    v.bad(gateway.InvalidAudience, make({"aud": []}), audience="api")
    v.bad(gateway.MissingClaim, make({"sub": "x"}), audience="api")


def test_audience_sequence(v: Entry) -> None:
    for audience in (["a", "b"], ("a", "b")):
        assert v.ok(make({"aud": "b"}), audience=audience)
        assert v.ok(make({"aud": ["c", "a"]}), audience=audience)
        v.bad(gateway.InvalidAudience, make({"aud": "c"}), audience=audience)
        v.bad(gateway.InvalidAudience, make({"aud": ["c", "d"]}), audience=audience)
        v.bad(gateway.MissingClaim, make({}), audience=audience)


@pytest.mark.parametrize(
    "aud", [5, None, True, {"api": 1}, ["api", 1], [1, "api"], ["api", None], [["api"]], ["api", {"x": 1}], 1.5], ids=repr
)
def test_audience_of_wrong_type(v: Entry, aud: Any) -> None:
    v.bad(gateway.InvalidAudience, make({"aud": aud}), audience="api")


@pytest.mark.parametrize("aud", ["api", ["api"], [], "", 5, None], ids=repr)
def test_token_with_aud_but_no_audience_expected(v: Entry, aud: Any) -> None:
    v.bad(gateway.InvalidAudience, make({"aud": aud}))


# --- require ----------------------------------------------------------------------------------------


def test_require(v: Entry) -> None:
    claims = {"sub": "a", "exp": NOW + 10, "jti": "x"}
    assert v.ok(make(claims), require=["sub", "exp", "jti"]) == claims
    assert v.ok(make(claims), require=("sub",)) == claims
    assert v.ok(make(claims), require=[]) == claims
    v.bad(gateway.MissingClaim, make(claims), require=["iat"])
    v.bad(gateway.MissingClaim, make(claims), require=["sub", "nbf"])
    v.bad(gateway.MissingClaim, make({}), require=["exp"])
    v.bad(gateway.MissingClaim, make({"Sub": "a"}), require=["sub"])
    v.bad(gateway.MissingClaim, make({"x": {"sub": "a"}}), require=["sub"])


# --- max_length -------------------------------------------------------------------------------------


def token_of_length(length: int, key: bytes = KEY) -> str:
    for kid in range(8):
        header = {"alg": "HS256", **({"kid": "k" * kid} if kid else {})}
        h = b64e(dumps(header))
        fixed = len(h) + 1 + 1 + 43
        for n in range(length):
            raw = 10 + n  # {"pad":"..."}
            plen = 4 * (raw // 3) + (0, 2, 3)[raw % 3]
            if fixed + plen == length:
                token = make({"pad": "x" * n}, header, key=key)
                assert len(token) == length
                return token
            if fixed + plen > length:
                break
    raise AssertionError(length)


def test_default_max_length_is_8192(v: Entry) -> None:
    key_map = {"k" * i: KEY for i in range(1, 8)}
    ok = token_of_length(8192)
    key: Any = key_map if '"kid"' in b64d(ok.split(".")[0]).decode() else KEY
    assert v.ok(ok, key)["pad"]
    too_long = token_of_length(8193)
    key = key_map if '"kid"' in b64d(too_long.split(".")[0]).decode() else KEY
    v.bad(gateway.MalformedToken, too_long, key)
    v.bad(gateway.MalformedToken, too_long.encode(), key)


def test_max_length_is_checked_before_anything_else(v: Entry) -> None:
    # wrong MAC and expired, but too long: the length is what is reported
    long_bad = make({"exp": 1, "pad": "x" * 9000}, key=KEY48)
    v.bad(gateway.MalformedToken, long_bad)
    v.bad(gateway.MalformedToken, "x" * 1_000_000)
    v.bad(gateway.MalformedToken, "." * 100_000)


def test_custom_max_length(v: Entry) -> None:
    for length in (100, 200, 1000):
        token = token_of_length(length)
        key: Any = {"k" * i: KEY for i in range(1, 8)} if '"kid"' in b64d(token.split(".")[0]).decode() else KEY
        assert v.ok(token, key, max_length=length)
        v.bad(gateway.MalformedToken, token, key, max_length=length - 1)
    big = make({"pad": "x" * 20_000})
    assert v.ok(big, max_length=1 << 20)["pad"] == "x" * 20_000
    v.bad(gateway.MalformedToken, big)


# --- claim values -----------------------------------------------------------------------------------


PAYLOADS = [
    b'{"n":1000000000000000000000000000000}',
    b'{"n":-1000000000000000000000000000000}',
    b'{"n":18446744073709551616,"m":18446744073709551615,"o":9223372036854775808,"p":-9223372036854775809}',
    b'{"n":9007199254740993}',
    b'{"n":' + b"9" * 300 + b"}",
    b'{"f":1.5,"g":0.1,"h":1e-7,"i":1.7976931348623157e308,"j":5e-324,"k":-0.0,"l":2.5E+3,"m":1E2}',
    b'{"f":1.0,"g":-0,"h":0,"i":0.30000000000000004,"j":123456789.123456789}',
    b'{"f":1.00000000000000011102230246251565404236316680908203125}',
    b'{"a":{"b":{"c":[1,[2,[3,{"d":null}]]]}},"e":[],"f":{},"g":[true,false,null]}',
    b'{"s":"\\u00e9\\ud83d\\ude00\\u0000\\n\\t\\"\\\\\\/","t":"\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4","u":"\xf0\x9f\x98\x80"}',
    b'{"\xc3\xa9":1,"\\u00e8":2,"":3," ":4}',
    b'{ "spaced" : [ 1 , 2 ] ,\n\t"x" : { } }',
]


@pytest.mark.parametrize("raw", PAYLOADS, ids=lambda r: r[:40].decode("utf-8", "replace"))
def test_claim_values_as_python_json_gives_them(v: Entry, raw: bytes) -> None:
    expected = json.loads(raw)
    got = v.ok(make(raw_payload=raw))
    assert same_json(got, expected), (got, expected)


def test_big_int_exact_round_trip(v: Entry) -> None:
    claims = {"n": 10**30, "m": -(10**30), "l": [2**64, 2**200]}
    got = v.ok(make(claims))
    assert got == claims and type(got["n"]) is int and got["n"] == 10**30
    got = v.ok(gateway.encode(claims, KEY))
    assert got == claims and type(got["l"][1]) is int


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":-Infinity}',
        b'{"a":[1,NaN]}',
        b'{"a":{"b":Infinity}}',
        b'{"exp":Infinity}',
        b'{"exp":NaN}',
        b'{"nbf":-Infinity}',
        b'{"a":nan}',
        b'{"a":inf}',
    ],
    ids=repr,
)
def test_nan_and_infinity_rejected(v: Entry, raw: bytes) -> None:
    v.bad(gateway.MalformedToken, make(raw_payload=raw))


def test_claims_dict_is_fresh_and_plain(v: Entry) -> None:
    token = make({"a": [1], "b": {"c": 2}})
    first = v.ok(token)
    first["a"].append(2)
    first["b"]["d"] = 3
    assert v.ok(token) == {"a": [1], "b": {"c": 2}}
    assert type(first["a"]) is list and type(first["b"]) is dict


DEEP = r"""
import sys, gateway
sys.path.insert(0, {root!r})
from tests.jwt_support import make, KEY
depth = int(sys.argv[1])
raw = b'{{"a":' + b"[" * depth + b"]" * depth + b"}}"
try:
    r = gateway.verify(make(raw_payload=raw), KEY, now=1, max_length=1 << 24)
    print("dict" if type(r) is dict else "other")
except gateway.MalformedToken:
    print("MalformedToken")
"""


@pytest.mark.parametrize("depth", [200, 100_000])
def test_deep_nesting_does_not_crash(depth: int) -> None:
    """Either parsed or MalformedToken; run in a child so a stack overflow cannot take pytest down."""
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    r = subprocess.run(
        [sys.executable, "-c", DEEP.format(root=root), str(depth)], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert r.stdout.strip() in {"dict", "MalformedToken"}, r.stdout


# --- error messages ---------------------------------------------------------------------------------


def test_messages_never_hold_key_or_token_for_a_long_key_map() -> None:
    secret = "S" * 40 + "-unique-secret-text-" + "T" * 40
    keymap = {"kid-1": secret}
    token = make({"sub": "x" * 200}, {"alg": "HS256", "kid": "kid-1"}, key=b"other" * 10)
    with pytest.raises(gateway.InvalidSignature) as info:
        gateway.verify(token, keymap, now=NOW)
    assert_no_leak(info.value, token, keymap)
    with pytest.raises(ValueError) as cinfo:
        gateway.verify(token, {"kid-1": "weak-secret-1234"}, now=NOW)
    assert "weak-secret-1234" not in str(cinfo.value)


# --- Verifier ---------------------------------------------------------------------------------------


def test_verifier_is_unaffected_by_later_changes_to_its_arguments() -> None:
    algorithms, audience, issuer, require = ["HS256"], ["api"], ["joe"], ["sub"]
    keymap = {"k1": K1}
    ver = gateway.Verifier(keymap, algorithms=algorithms, audience=audience, issuer=issuer, require=require)
    algorithms.append("HS512")
    audience[0] = "evil"
    issuer.append("mallory")
    require.clear()
    keymap["k1"] = K2
    keymap["k2"] = K2
    good = make({"sub": "a", "aud": "api", "iss": "joe"}, {"alg": "HS256", "kid": "k1"}, key=K1)
    assert ver.verify(good, now=NOW)["sub"] == "a"
    cases = [
        (gateway.InvalidSignature, make({"sub": "a", "aud": "api", "iss": "joe"}, {"alg": "HS256", "kid": "k2"}, key=K2)),
        (gateway.InvalidAudience, make({"sub": "a", "aud": "evil", "iss": "joe"}, {"alg": "HS256", "kid": "k1"}, key=K1)),
        (gateway.InvalidIssuer, make({"sub": "a", "aud": "api", "iss": "mallory"}, {"alg": "HS256", "kid": "k1"}, key=K1)),
        (gateway.MissingClaim, make({"aud": "api", "iss": "joe"}, {"alg": "HS256", "kid": "k1"}, key=K1)),
        (gateway.AlgorithmNotAllowed, make({"sub": "a"}, {"alg": "HS512", "kid": "k1"}, key=K1, alg="HS512")),
    ]
    for exc, token in cases:
        with pytest.raises(exc) as info:
            ver.verify(token, now=NOW)
        assert_no_leak(info.value, token, [K1, K2])


def test_verifier_is_immutable() -> None:
    ver = gateway.Verifier(KEY)
    with pytest.raises((AttributeError, TypeError)):
        ver.key = KEY48  # type: ignore[attr-defined]
    with pytest.raises((AttributeError, TypeError)):
        ver.algorithms = ["HS512"]  # type: ignore[misc]


def _outcome(ver: gateway.Verifier, token: str, now: float) -> Any:
    try:
        return ("ok", ver.verify(token, now=now))
    except gateway.JWTError as exc:
        return ("err", type(exc).__name__)


def test_verifier_is_thread_safe() -> None:
    ver = gateway.Verifier({"k1": K1, "k2": K2}, audience="api", issuer="joe", leeway=5)
    tokens = []
    for i in range(40):
        claims = {"sub": f"user-{i}", "aud": "api", "iss": "joe", "exp": NOW + (i % 7) - 3, "n": 10**20 + i}
        kid = "k1" if i % 2 else "k2"
        key = KEYMAP[kid] if i % 5 else K1 if kid == "k2" else K2  # every 5th has the wrong key
        token = make(claims, {"alg": "HS256", "kid": kid}, key=key)
        if i % 11 == 0:
            token = token[:-3]  # wrong length / non-canonical
        if i % 13 == 0:
            claims["aud"] = "web"
            token = make(claims, {"alg": "HS256", "kid": kid}, key=KEYMAP[kid])
        tokens.append(token)
    expected = [_outcome(ver, t, NOW + 2) for t in tokens]
    kinds = {e[1] if e[0] == "err" else "ok" for e in expected}
    assert {"ok", "InvalidSignature", "ExpiredToken", "InvalidAudience"} <= kinds, kinds

    failures: list[str] = []
    barrier = threading.Barrier(4)

    def worker(seed: int) -> None:
        barrier.wait()
        for j in range(1000):
            k = (j * 7 + seed) % len(tokens)
            got = _outcome(ver, tokens[k], NOW + 2)
            if got != expected[k]:
                failures.append(f"thread {seed} token {k}: {got} != {expected[k]}")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures[:5]


# --- encode -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_encode_round_trips(alg: str) -> None:
    claims = {"sub": "alice", "n": 10**30, "f": 0.1, "u": "é😀", "l": [1, None, True], "d": {"x": {}}, "exp": NOW + 60}
    token = gateway.encode(claims, KEYS[alg], algorithm=alg)
    assert isinstance(token, str)
    h, p, s = token.split(".")
    for part in (h, p, s):
        assert set(part) <= set(ALPHABET) and part
    assert json.loads(b64d(h))["alg"] == alg
    assert json.loads(b64d(p)) == claims
    assert b64d(s) == mac(KEYS[alg], f"{h}.{p}", alg)
    assert gateway.verify(token, KEYS[alg], algorithms=[alg], now=NOW) == claims
    assert pyjwt.decode(token, KEYS[alg], algorithms=[alg], options={"verify_exp": False}) == claims


def test_encode_with_str_key_and_pyjwt() -> None:
    key = KEY.decode()
    token = gateway.encode({"sub": "a"}, key)
    assert pyjwt.decode(token, key, algorithms=["HS256"]) == {"sub": "a"}
    assert gateway.verify(pyjwt.encode({"sub": "a"}, key, algorithm="HS256"), key, now=NOW) == {"sub": "a"}


def test_encode_headers_add_kid() -> None:
    token = gateway.encode({"sub": "a"}, K2, headers={"kid": "k2"})
    header = pyjwt.get_unverified_header(token)
    assert header["kid"] == "k2" and header["alg"] == "HS256"
    assert gateway.verify(token, KEYMAP, now=NOW) == {"sub": "a"}
    with pytest.raises(gateway.InvalidSignature) as info:
        gateway.verify(gateway.encode({"sub": "a"}, K2, headers={"kid": "k1"}), KEYMAP, now=NOW)
    assert_no_leak(info.value, keys=[KEY, KEY48, KEY64, K1, K2])
    extra = pyjwt.get_unverified_header(gateway.encode({"sub": "a"}, K2, headers={"kid": "k2", "cty": "x"}))
    assert extra["cty"] == "x"


def test_encoded_algorithm_must_be_allowed() -> None:
    token = gateway.encode({"sub": "a"}, KEY64, algorithm="HS384")
    with pytest.raises(gateway.AlgorithmNotAllowed) as info:
        gateway.verify(token, KEY64, algorithms=["HS256"], now=NOW)
    assert_no_leak(info.value, keys=[KEY, KEY48, KEY64, K1, K2])
    with pytest.raises(gateway.AlgorithmNotAllowed) as info:
        gateway.verify(token, KEY64, algorithms=["HS512"], now=NOW)
    assert_no_leak(info.value, keys=[KEY, KEY48, KEY64, K1, K2])
    assert gateway.verify(token, KEY64, algorithms=["HS384"], now=NOW) == {"sub": "a"}


@pytest.mark.parametrize(
    "claims",
    [{"a": object()}, {"a": {1, 2}}, {"a": b"bytes"}, {"a": [1, object()]}, {"a": {"b": datetime.date(2020, 1, 1)}}, {"a": 1j}],
    ids=["object", "set", "bytes", "nested-object", "date", "complex"],
)
def test_encode_non_json_claims(claims: dict) -> None:
    with pytest.raises(TypeError):
        gateway.encode(claims, KEY)


@pytest.mark.parametrize("claims", [[1, 2], "x", None, 5], ids=repr)
def test_encode_claims_not_a_mapping(claims: Any) -> None:
    with pytest.raises(TypeError):
        gateway.encode(claims, KEY)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")], ids=repr)
def test_encode_refuses_nan_and_infinity(value: float) -> None:
    with pytest.raises((ValueError, TypeError)):
        gateway.encode({"a": value}, KEY)


def test_encode_datetimes_become_int_timestamps() -> None:
    exp = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    nbf = datetime.datetime(2029, 12, 31, 15, 0, 0, 750000, tzinfo=datetime.timezone(datetime.timedelta(hours=9)))
    iat = datetime.datetime.fromtimestamp(NOW, UTC)
    token = gateway.encode({"exp": exp, "nbf": nbf, "iat": iat, "sub": "a"}, KEY)
    payload = json.loads(b64d(token.split(".")[1]))
    assert payload["exp"] == 1893456000 and type(payload["exp"]) is int
    assert payload["nbf"] == int(nbf.timestamp()) == 1893391200 and type(payload["nbf"]) is int
    assert payload["iat"] == NOW and type(payload["iat"]) is int
    assert b'"exp":1893456000' in b64d(token.split(".")[1]).replace(b" ", b"")
    assert pyjwt.decode(gateway.encode({"exp": exp}, KEY), KEY, algorithms=["HS256"], options={"verify_exp": False}) == {"exp": 1893456000}
    assert gateway.verify(token, KEY, now=1893391201) == payload


def test_encode_output_is_verified_by_pyjwt_with_claim_checks() -> None:
    token = gateway.encode({"sub": "a", "aud": "api", "iss": "joe", "exp": NOW + 60, "nbf": NOW - 60}, KEY)
    claims = pyjwt.decode(
        token, KEY, algorithms=["HS256"], audience="api", issuer="joe", options={"verify_exp": False, "verify_nbf": False}
    )
    assert claims["sub"] == "a"


# --- b64url helpers ---------------------------------------------------------------------------------


def test_b64url_helpers() -> None:
    for data in (b"", b"\x00", b"\xff\xfe", b"abc", bytes(range(256))):
        text = gateway.b64url_encode(data)
        assert text == b64e(data)
        assert gateway.b64url_decode(text) == data
        assert gateway.b64url_decode(text.encode()) == data
    for bad in ("YQ==", "YQ=", "a+b/", "Y Q", "YR", "Y", "é", "YQ\n"):
        with pytest.raises(ValueError):
            gateway.b64url_decode(bad)
