"""RFC 7515 Appendix A.1: the HS256 example JWS, with the key from the RFC's JWK."""

from __future__ import annotations

import datetime

import gateway
import pytest

from tests.jwt_support import assert_no_leak, b64d

# RFC 7515 A.1.1 (header has CRLF + space inside the JSON; so does the payload)
TOKEN = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)
JWK = {
    "kty": "oct",
    "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
}
KEY = b64d(JWK["k"])
EXP = 1300819380
CLAIMS = {"iss": "joe", "exp": EXP, "http://example.com/is_root": True}


def test_key_is_64_bytes() -> None:
    assert len(KEY) == 64


def test_rfc7515_a1_verifies_just_before_exp() -> None:
    claims = gateway.verify(TOKEN, KEY, algorithms=["HS256"], now=EXP - 1)
    assert claims == CLAIMS
    assert claims["http://example.com/is_root"] is True
    assert type(claims["exp"]) is int


def test_rfc7515_a1_with_verifier_bytes_token_and_issuer() -> None:
    v = gateway.Verifier(KEY, algorithms=["HS256"], issuer="joe", require=["exp", "iss"])
    assert v.verify(TOKEN.encode("ascii"), now=EXP - 1) == CLAIMS
    assert v.verify(TOKEN, now=datetime.datetime.fromtimestamp(EXP - 1, datetime.timezone.utc)) == CLAIMS


def test_rfc7515_a1_is_expired_at_exp_and_by_the_wall_clock() -> None:
    with pytest.raises(gateway.ExpiredToken) as info:
        gateway.verify(TOKEN, KEY, algorithms=["HS256"], now=EXP)
    assert_no_leak(info.value, TOKEN, KEY)
    with pytest.raises(gateway.ExpiredToken) as info:
        gateway.verify(TOKEN, KEY, algorithms=["HS256"])
    assert_no_leak(info.value, TOKEN, KEY)


def test_rfc7515_a1_leeway_extends_exp() -> None:
    assert gateway.verify(TOKEN, KEY, algorithms=["HS256"], now=EXP + 9, leeway=10) == CLAIMS
    with pytest.raises(gateway.ExpiredToken):
        gateway.verify(TOKEN, KEY, algorithms=["HS256"], now=EXP + 10, leeway=10)


def test_rfc7515_a1_other_policies() -> None:
    with pytest.raises(gateway.InvalidSignature):
        gateway.verify(TOKEN, KEY[:-1] + b"\x00", algorithms=["HS256"], now=EXP - 1)
    with pytest.raises(gateway.AlgorithmNotAllowed):
        gateway.verify(TOKEN, KEY, algorithms=["HS512"], now=EXP - 1)
    with pytest.raises(gateway.InvalidIssuer):
        gateway.verify(TOKEN, KEY, algorithms=["HS256"], issuer="jane", now=EXP - 1)
