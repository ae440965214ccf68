"""One claims parser (fault 6): production builds the claims dict with the same JSON walker that
`cargo test` and the fuzz targets drive, and the cheap early "expired" path gives the verdict the
full parse would give. Malformed claims are malformed whether the token is live or expired."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from gateway import _core

KEY = b"k" * 64
NOW = int(time.time())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims_json: str) -> str:
    """A token over exactly these claims bytes (no re-encoding by a JSON library)."""
    signing = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(claims_json.encode())
    mac = hmac.new(KEY, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(mac)


def nested(arrays: int, exp: int) -> str:
    return f'{{"sub":"a","exp":{exp},"deep":{"[" * arrays}{"]" * arrays}}}'


V = _core.Verifier(KEY)
LIVE, EXPIRED = NOW + 3600, NOW - 3600


@pytest.mark.parametrize("exp", [LIVE, EXPIRED], ids=["live", "expired"])
def test_claims_nested_64_deep_are_malformed_live_or_expired(exp: int) -> None:
    # The claims object plus 64 nested arrays: one level over the limit of 64.
    with pytest.raises(_core.MalformedToken):
        V.verify(token(nested(64, exp)))


@pytest.mark.parametrize(
    "claims",
    [
        '{"exp":%d,"deep":%s1%s}' % (EXPIRED, '{"a":' * 64, "}" * 64),
        '{"exp":%d,"a":{"b":1,"b":2}}' % EXPIRED,
        '{"exp":%d,"exp":%d}' % (EXPIRED, LIVE),
        '{"exp":%d,"a":"\\q"}' % EXPIRED,
        '{"exp":%d} x' % EXPIRED,
        '{"exp":%d,"aud":[{"x":1,"x":1}]}' % EXPIRED,
    ],
)
def test_malformed_wins_over_expired(claims: str) -> None:
    with pytest.raises(_core.MalformedToken):
        V.verify(token(claims))


def test_one_level_under_the_limit_is_fine() -> None:
    claims = V.verify(token(nested(63, LIVE)))
    depth, v = 0, claims["deep"]
    while isinstance(v, list) and v:
        depth, v = depth + 1, v[0]
    assert depth + 1 == 63
    with pytest.raises(_core.ExpiredToken):
        V.verify(token(nested(63, EXPIRED)))


def test_the_dict_is_what_json_loads_makes() -> None:
    doc = '{"sub":"a","exp":%d,"n":12345678901234567890123,"f":1.5e3,"s":"caf\\u00e9","l":[null,true,{"x":[]}]}' % LIVE
    assert V.verify(token(doc)) == json.loads(doc)


def test_expired_float_and_spaced_exp_agree_with_the_integer_form() -> None:
    for doc in ['{"exp":%d}' % EXPIRED, '{"exp": %d}' % EXPIRED, '{"exp":%d.5}' % EXPIRED]:
        with pytest.raises(_core.ExpiredToken):
            V.verify(token(doc))


def test_required_claim_missing_is_reported_the_same_on_both_paths() -> None:
    v = _core.Verifier(KEY, require=["sub"])
    for exp in (LIVE, EXPIRED):
        with pytest.raises(_core.MissingClaim):
            v.verify(token('{"exp":%d}' % exp))


def test_a_claim_required_twice_is_still_present() -> None:
    v = _core.Verifier(KEY, require=["sub", "sub"])
    assert v.verify(token('{"sub":"a","exp":%d}' % LIVE))["sub"] == "a"
