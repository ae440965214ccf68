"""Hypothesis: interoperability with PyJWT in both directions, and that any change to a token is refused.

Claims are arbitrary JSON-compatible values (text keys, big ints, finite floats, bools, None, nested
lists/dicts). Registered claim names are left out of random claims, since both libraries give them
meaning (PyJWT also type-checks sub/jti).
"""

from __future__ import annotations


import gateway
import jwt as pyjwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.jwt_support import KEYS, NOW, assert_no_leak, make, same_json

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = 1 << 24  # max_length for these tests: random claims may be large

RESERVED = {"exp", "nbf", "iat", "iss", "aud", "sub", "jti"}
keys = st.text(max_size=12).filter(lambda k: k not in RESERVED)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5), max_leaves=20
)
claims_st = st.dictionaries(keys, json_values, max_size=8)
algs = st.sampled_from(["HS256", "HS384", "HS512"])


@SETTINGS
@given(claims=claims_st, alg=algs)
def test_pyjwt_tokens_verify_here(claims: dict, alg: str) -> None:
    token = pyjwt.encode(claims, KEYS[alg], algorithm=alg)
    got = gateway.verify(token, KEYS[alg], algorithms=[alg], now=NOW, max_length=BIG)
    assert same_json(got, claims), (got, claims)


@SETTINGS
@given(claims=claims_st, alg=algs)
def test_gateway_tokens_verify_in_pyjwt(claims: dict, alg: str) -> None:
    token = gateway.encode(claims, KEYS[alg], algorithm=alg)
    got = pyjwt.decode(token, KEYS[alg], algorithms=[alg])
    assert same_json(got, claims), (got, claims)
    again = gateway.verify(token, KEYS[alg], algorithms=[alg], now=NOW, max_length=BIG)
    assert same_json(again, claims), (again, claims)


@st.composite
def token_and_mutation(draw: st.DrawFn) -> tuple[bytes, str, int, int]:
    alg = draw(algs)
    claims = draw(st.dictionaries(keys, scalars, max_size=3))
    token = make(claims, alg=alg, key=KEYS[alg]).encode("ascii")
    pos = draw(st.integers(min_value=0, max_value=len(token) - 1))
    new = draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != token[pos]))
    return token, alg, pos, new


@SETTINGS
@given(case=token_and_mutation())
def test_any_single_byte_change_is_refused(case: tuple[bytes, str, int, int]) -> None:
    token, alg, pos, new = case
    key = KEYS[alg]
    assert gateway.verify(token, key, algorithms=[alg], now=NOW) is not None
    changed = token[:pos] + bytes([new]) + token[pos + 1 :]
    with pytest.raises(gateway.JWTError) as info:
        gateway.verify(changed, key, algorithms=[alg], now=NOW)
    assert_no_leak(info.value, changed, key)
    # the same change in a str token (code point = byte value)
    text = changed.decode("latin-1")
    with pytest.raises(gateway.JWTError) as info:
        gateway.verify(text, key, algorithms=[alg], now=NOW)
    assert_no_leak(info.value, text, key)


@SETTINGS
@given(case=token_and_mutation())
def test_any_single_byte_change_is_refused_by_a_verifier(case: tuple[bytes, str, int, int]) -> None:
    token, alg, pos, new = case
    ver = gateway.Verifier(KEYS[alg], algorithms=["HS256", "HS384", "HS512"], allow_weak_key=True)
    assert ver.verify(token, now=NOW) is not None
    changed = token[:pos] + bytes([new]) + token[pos + 1 :]
    with pytest.raises(gateway.JWTError) as info:
        ver.verify(changed, now=NOW)
    assert_no_leak(info.value, changed, KEYS[alg])


@SETTINGS
@given(
    junk=st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300),
        st.lists(st.sampled_from(["eyJ", "a", "-", "_", ".", "=", " ", "é", "\x00", "\ud800", "\udfff"]), max_size=60).map("".join),
    )
)
def test_junk_is_a_jwt_error(junk: str | bytes) -> None:
    with pytest.raises(gateway.JWTError) as info:
        gateway.verify(junk, KEYS["HS256"], now=NOW)
    assert_no_leak(info.value, junk, KEYS["HS256"])


b64url_text = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=80)


@SETTINGS
@given(h=b64url_text, p=b64url_text, s=b64url_text)
def test_random_three_part_tokens_are_a_jwt_error(h: str, p: str, s: str) -> None:
    token = f"{h}.{p}.{s}"
    with pytest.raises(gateway.JWTError) as info:
        gateway.verify(token, KEYS["HS256"], now=NOW)
    assert_no_leak(info.value, token, KEYS["HS256"])
