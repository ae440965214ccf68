"""RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA verification (issue 10): interoperability
with PyJWT + cryptography both ways, tamper resistance, JOSE key selection, algorithm confusion,
the KeySet API, ``unverified_header``/``unverified_claims``, and PyJWT's ``options``.

Keys are made by the test with ``cryptography``; tokens the gateway did not make come from PyJWT
or from cryptography's primitives (tests/asym_support.py), so nothing is only checked against itself.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import time
from typing import Any

import gateway
import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.asym_support import (
    ALGORITHMS,
    EC_SIZE,
    KIND_OF,
    KeyPair,
    assert_no_material,
    b64d,
    b64e,
    der_signature,
    dumps,
    key_for,
    keypair,
    make_token,
    pyjwt_encode,
    raw_sign,
)
from tests.jwt_support import KEY, NOW, assert_no_leak, same_json

# Modest: 10 algorithms share 2 cores with other agents; each example still signs and verifies.
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

REGISTERED = {"exp", "nbf", "iat", "aud", "iss", "sub", "jti"}
json_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    json_text,
)
json_value = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4), max_leaves=12)
claims_strategy = st.builds(
    lambda extra, sub, exp: {**extra, **({"sub": sub} if sub is not None else {}), **({"exp": exp} if exp is not None else {})},
    st.dictionaries(json_text.filter(lambda k: k not in REGISTERED), json_value, max_size=6),
    st.none() | json_text,
    # PyJWT checks exp against the wall clock, the gateway against NOW: valid for both.
    st.none() | st.integers(min_value=int(time.time()) + 86400, max_value=int(time.time()) + 10**8),
)


def _verify_key_forms(pair: KeyPair, alg: str) -> list[Any]:
    return [
        pair.public_pem,
        pair.public_pem.decode(),
        pair.public_jwk(),
        json.dumps(pair.public_jwk()),
        gateway.KeySet.from_pem(pair.public_pem),
        gateway.KeySet.from_jwk(pair.public_jwk(alg=alg, use="sig")),
        gateway.KeySet.from_jwks({"keys": [pair.public_jwk(kid="k")]}),
        {"keys": [pair.public_jwk(kid="k")]},
    ]


# --- interoperability ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
@SETTINGS
@given(claims=claims_strategy, data=st.data())
def test_pyjwt_tokens_verify_here_with_the_same_claims(alg: str, claims: dict[str, Any], data: st.DataObject) -> None:
    pair = key_for(alg)
    token = pyjwt_encode(claims, alg, pair, headers={"kid": "k"})
    key = data.draw(st.sampled_from(_verify_key_forms(pair, alg)))
    got = gateway.verify(token, key, algorithms=[alg], now=NOW)
    assert same_json(got, claims), (got, claims)
    # and through a cached Verifier, twice (the second is a hit)
    v = gateway.Verifier(key, algorithms=[alg, "RS256"] if alg != "RS256" and KIND_OF[alg] == "rsa" else [alg], cache_size=2)
    assert same_json(v.verify(token, now=NOW), claims)
    assert same_json(v.verify(token, now=NOW), claims)


@pytest.mark.parametrize("alg", ALGORITHMS)
@SETTINGS
@given(claims=claims_strategy, kid=st.none() | json_text, as_jwk=st.booleans(), extra=st.dictionaries(st.sampled_from(["typ", "cty", "x-t"]), json_text, max_size=2))
def test_gateway_tokens_verify_in_pyjwt(alg: str, claims: dict[str, Any], kid: str | None, as_jwk: bool, extra: dict[str, str]) -> None:
    pair = key_for(alg)
    headers = {**extra, **({"kid": kid} if kid is not None else {})}
    private: Any = pair.private_jwk() if as_jwk else pair.private_pem
    token = gateway.encode(claims, private, algorithm=alg, headers=headers)
    decoded = pyjwt.decode_complete(token, pair.public, algorithms=[alg], options={"verify_aud": False})
    assert same_json(decoded["payload"], claims)
    assert decoded["header"]["alg"] == alg
    for name, value in headers.items():
        assert decoded["header"][name] == value
    assert same_json(gateway.verify(token, pair.public_pem, algorithms=[alg], now=NOW), claims)
    if alg.startswith("ES"):
        assert len(b64d(token.split(".")[2])) == 2 * EC_SIZE[alg], "JWS ECDSA signatures are r || s (RFC 7518 §3.4)"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_encode_accepts_every_private_key_form(alg: str) -> None:
    pair = key_for(alg)
    forms: list[Any] = [
        pair.private_pem,
        pair.private_pem.decode(),
        pair.private.private_bytes(ser.Encoding.DER, ser.PrivateFormat.PKCS8, ser.NoEncryption()),
        pair.private_jwk(),
        json.dumps(pair.private_jwk()),
    ]
    if pair.kind == "rsa":
        forms.append(pair.private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption()))
    elif pair.kind != "ed25519":
        forms.append(pair.private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption()))  # SEC1
    for private in forms:
        token = gateway.encode({"sub": "s"}, private, algorithm=alg)
        assert pyjwt.decode(token, pair.public, algorithms=[alg]) == {"sub": "s"}


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_encode_refuses_keys_that_cannot_sign_the_algorithm(alg: str) -> None:
    other = {"rsa": "p256", "p256": "p384", "p384": "p521", "p521": "p256", "ed25519": "rsa"}[KIND_OF[alg]]
    wrong = keypair(other)
    for key in (wrong.private_pem, wrong.private_jwk(), key_for(alg).public_pem, key_for(alg).public_jwk(), KEY):
        with pytest.raises((ValueError, TypeError)) as info:
            gateway.encode({"sub": "s"}, key, algorithm=alg)
        assert not isinstance(info.value, gateway.JWTError)
        assert_no_material(str(info.value), wrong, key_for(alg))


# --- tampering -----------------------------------------------------------------------------------

_TOKENS: dict[str, str] = {}


def _fixed_token(alg: str) -> str:
    if alg not in _TOKENS:
        _TOKENS[alg] = pyjwt_encode({"sub": "alice", "exp": NOW + 3600, "role": "user"}, alg, key_for(alg), headers={"kid": "k"})
    return _TOKENS[alg]


def _must_refuse(token: bytes, key: Any, alg: str) -> None:
    try:
        got = gateway.verify(token, key, algorithms=[alg], now=NOW)
    except gateway.JWTError as e:
        assert_no_leak(e)
        return
    raise AssertionError(f"a changed token verified: {token!r} -> {got}")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_single_byte_position_change_is_rejected(alg: str) -> None:
    """Each byte of the token replaced by a neighbour character, a base64url character that keeps the
    length, and a byte with its top bit set: header, payload, dots and signature alike."""
    token = _fixed_token(alg).encode()
    key = key_for(alg).public_pem
    assert gateway.verify(token, key, algorithms=[alg], now=NOW)["sub"] == "alice"
    for i, old in enumerate(token):
        for new in {old ^ 0x01, old ^ 0x20, ord("A") if old != ord("A") else ord("B"), 0x80 | old, ord(".") if old != ord(".") else ord("x")}:
            if new != old:
                _must_refuse(token[:i] + bytes([new]) + token[i + 1 :], key, alg)


@pytest.mark.parametrize("alg", ALGORITHMS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_rejected(alg: str, data: st.DataObject) -> None:
    token = _fixed_token(alg).encode()
    i = data.draw(st.integers(0, len(token) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != token[i]))
    changed = token[:i] + bytes([new]) + token[i + 1 :]
    keys = data.draw(st.sampled_from(_verify_key_forms(key_for(alg), alg)))
    _must_refuse(changed, keys, alg)
    if new < 0x80:
        _must_refuse(changed.decode(), keys, alg)  # type: ignore[arg-type]
    # inserting or deleting a byte, too
    _must_refuse(token[:i] + token[i + 1 :], keys, alg)
    _must_refuse(token[:i] + bytes([new]) + token[i:], keys, alg)


# --- key selection -------------------------------------------------------------------------------


def _set(*entries: dict[str, Any]) -> gateway.KeySet:
    return gateway.KeySet.from_jwks({"keys": list(entries)})


def test_header_alg_picks_key_type_and_curve() -> None:
    """One kid-less key of each type and curve in one set: each algorithm finds its own."""
    kinds = ["rsa", "p256", "p384", "p521", "ed25519"]
    keys = _set(*(keypair(k).public_jwk() for k in kinds))
    assert keys.algorithms == ALGORITHMS
    for alg in ALGORITHMS:
        assert gateway.verify(make_token(alg, key_for(alg).private, {"a": alg}), keys, algorithms=ALGORITHMS) == {"a": alg}
    # A P-256 signature under a header that names P-384's algorithm is checked with the P-384 key.
    forged = make_token("ES256", keypair("p256").private, {"a": 1}, header={"alg": "ES384"})
    with pytest.raises(gateway.InvalidSignature):
        gateway.verify(forged, keys, algorithms=ALGORITHMS)
    # ... and with no P-384 key at all, no key fits.
    with pytest.raises(gateway.KeyNotFound):
        gateway.verify(forged, _set(keypair("p256").public_jwk()), algorithms=["ES256", "ES384"])
    # An RSA signature under "alg": "ES256" never reaches the RSA key.
    with pytest.raises(gateway.KeyNotFound):
        gateway.verify(make_token("RS256", keypair("rsa").private, {}, header={"alg": "ES256"}), _set(keypair("rsa").public_jwk()), algorithms=["RS256", "ES256"])


def test_kid_must_match_in_a_set_and_may_be_shared_across_types() -> None:
    rsa0, p256 = keypair("rsa"), keypair("p256")
    keys = _set(rsa0.public_jwk(kid="2026"), p256.public_jwk(kid="2026"), keypair("rsa", 1).public_jwk(kid="2025"))
    assert keys.kids == ["2026", "2026", "2025"]
    rs = make_token("RS256", rsa0.private, {"t": "rs"}, header={"alg": "RS256", "kid": "2026"})
    es = make_token("ES256", p256.private, {"t": "es"}, header={"alg": "ES256", "kid": "2026"})
    assert gateway.verify(rs, keys, algorithms=["RS256", "ES256"]) == {"t": "rs"}
    assert gateway.verify(es, keys, algorithms=["RS256", "ES256"]) == {"t": "es"}
    for kid in ["2024", "", "2026 ", "2025"]:  # unknown, empty, near miss, the other RSA key's
        token = make_token("RS256", rsa0.private, {}, header={"alg": "RS256", "kid": kid})
        with pytest.raises((gateway.KeyNotFound, gateway.InvalidSignature)) as info:
            gateway.verify(token, keys, algorithms=["RS256"])
        assert type(info.value) is (gateway.InvalidSignature if kid == "2025" else gateway.KeyNotFound)
        assert_no_leak(info.value, token)
    # a kid that is not a string is malformed, never matched loosely
    for kid in [2026, None, ["2026"]]:
        with pytest.raises(gateway.MalformedToken):
            gateway.verify(make_token("RS256", rsa0.private, {}, header={"alg": "RS256", "kid": kid}), keys, algorithms=["RS256"])


def test_a_kid_less_token_verifies_only_when_exactly_one_key_fits() -> None:
    rsa0, rsa1, p256 = keypair("rsa"), keypair("rsa", 1), keypair("p256")
    token = make_token("RS256", rsa0.private, {"n": 1})
    assert gateway.verify(token, _set(rsa0.public_jwk(kid="a")), algorithms=["RS256"]) == {"n": 1}
    assert gateway.verify(token, _set(rsa0.public_jwk(kid="a"), p256.public_jwk(kid="b")), algorithms=["RS256", "ES256"]) == {"n": 1}
    # a second RSA key that could verify RS256: ambiguous, whichever is right
    for keys in (_set(rsa0.public_jwk(kid="a"), rsa1.public_jwk(kid="b")), _set(rsa1.public_jwk(), rsa0.public_jwk())):
        with pytest.raises(gateway.KeyNotFound) as info:
            gateway.verify(token, keys, algorithms=["RS256"])
        assert "kid" in str(info.value)
    # ...unless the other key is restricted to another algorithm by its own alg
    assert gateway.verify(token, _set(rsa0.public_jwk(kid="a"), rsa1.public_jwk(kid="b", alg="PS256")), algorithms=["RS256", "PS256"]) == {"n": 1}
    # a kid used twice for the same type is ambiguous as well
    dup = _set(rsa0.public_jwk(kid="a"), rsa1.public_jwk(kid="a"))
    with pytest.raises(gateway.KeyNotFound):
        gateway.verify(make_token("RS256", rsa0.private, {}, header={"alg": "RS256", "kid": "a"}), dup, algorithms=["RS256"])


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_a_single_key_given_alone_without_kid_verifies_whatever_kid(alg: str) -> None:
    pair = key_for(alg)
    for kid in ["anything", "", None]:
        token = make_token(alg, pair.private, {"k": kid}, header={"alg": alg, **({"kid": kid} if kid is not None else {})})
        for key in (pair.public_pem, pair.public_der, pair.public_jwk(), json.dumps(pair.public_jwk()), gateway.KeySet.from_pem(pair.public_pem), gateway.KeySet.from_jwk(pair.public_jwk())):
            assert gateway.verify(token, key, algorithms=[alg]) == {"k": kid}
        # once the key has a kid of its own, a token naming another kid does not fit
        named = [gateway.KeySet.from_pem(pair.public_pem, kid="mine"), gateway.KeySet.from_jwk(pair.public_jwk(kid="mine")), pair.public_jwk(kid="mine")]
        for key in named:
            if kid is None:
                assert gateway.verify(token, key, algorithms=[alg]) == {"k": kid}
            else:
                with pytest.raises(gateway.KeyNotFound):
                    gateway.verify(token, key, algorithms=[alg])


def test_jwk_alg_must_equal_the_header_alg() -> None:
    pair = keypair("rsa")
    for own in ["RS256", "PS256", "RS512"]:
        keys = _set(pair.public_jwk(kid="k", alg=own))
        assert keys.algorithms == [own]
        for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]:
            token = make_token(alg, pair.private, {"alg": alg}, header={"alg": alg, "kid": "k"})
            if alg == own:
                assert gateway.verify(token, keys, algorithms=[alg]) == {"alg": alg}
            else:
                with pytest.raises(gateway.KeyNotFound):
                    gateway.verify(token, keys, algorithms=[own, alg])
    # from_pem's algorithm= is the same restriction
    ps = gateway.KeySet.from_pem(pair.public_pem, algorithm="PS384")
    assert ps.algorithms == ["PS384"]
    with pytest.raises(gateway.KeyNotFound):
        gateway.verify(make_token("RS384", pair.private, {}), ps, algorithms=["RS384", "PS384"])
    # a JWK alg that does not fit the key, or is not a JWS signature algorithm, is refused
    for bad in ["ES256", "EdDSA", "HS256", "RSA-OAEP", "none", "rs256"]:
        with pytest.raises(ValueError) as info:
            gateway.KeySet.from_jwk(pair.public_jwk(alg=bad))
        assert info.value.kind in {"invalid_key", "unsupported_key", "key_type_mismatch"}
    # and a Verifier whose algorithms no key can verify is refused when made
    with pytest.raises(ValueError) as info:
        gateway.Verifier(pair.public_jwk(alg="PS256"), algorithms=["RS256"])
    assert info.value.kind == "key_type_mismatch"


@pytest.mark.parametrize(
    ("members", "usable"),
    [
        ({"use": "sig"}, True),
        ({"key_ops": ["verify"]}, True),
        ({"key_ops": ["sign", "verify"]}, True),
        ({"use": "sig", "key_ops": ["verify"]}, True),
        ({"use": "enc"}, False),
        ({"use": "SIG"}, False),
        ({"use": ""}, False),
        ({"key_ops": ["sign"]}, False),
        ({"key_ops": ["encrypt", "wrapKey"]}, False),
        ({"key_ops": []}, False),
        ({"key_ops": "verify"}, False),
        ({"key_ops": ["verify", "verify"]}, False),
        ({"use": "sig", "key_ops": ["encrypt"]}, False),
        ({"use": 1}, False),
    ],
)
def test_use_must_be_sig_and_key_ops_must_include_verify(members: dict[str, Any], usable: bool) -> None:
    pair = keypair("p256")
    jwk = pair.public_jwk(kid="k", **members)
    token = make_token("ES256", pair.private, {"ok": True}, header={"alg": "ES256", "kid": "k"})
    if usable:
        assert gateway.verify(token, jwk, algorithms=["ES256"]) == {"ok": True}
        assert gateway.KeySet.from_jwks({"keys": [jwk]}).kids == ["k"]
        return
    with pytest.raises(ValueError) as info:
        gateway.KeySet.from_jwk(jwk)
    assert info.value.kind in {"key_usage", "malformed_key"}
    # in a set it is skipped with its reason, and the set's other keys still work
    other = keypair("p256", 1)
    keys = gateway.KeySet.from_jwks({"keys": [jwk, other.public_jwk(kid="o")]})
    assert keys.kids == ["o"]
    assert [kid for kid, _ in keys.skipped] == ["k"]
    with pytest.raises(gateway.KeyNotFound):
        gateway.verify(token, keys, algorithms=["ES256"])


@pytest.mark.parametrize("bits", [1024, 2047])
def test_rsa_keys_under_2048_bits_are_refused(bits: int) -> None:
    small = keypair("rsa", 0, bits)
    token = make_token("RS256", small.private, {"s": 1})
    for load in (
        lambda: gateway.KeySet.from_pem(small.public_pem),
        lambda: gateway.KeySet.from_jwk(small.public_jwk()),
        lambda: gateway.verify(token, small.public_pem, algorithms=["RS256"]),
        lambda: gateway.verify(token, small.public_der, algorithms=["RS256"], allow_weak_key=True),
        lambda: gateway.Verifier(small.public_jwk(), algorithms=["RS256"], allow_weak_key=True),
    ):
        with pytest.raises(ValueError) as info:
            load()
        assert info.value.kind == "weak_key"
        assert str(bits) in str(info.value)
    keys = gateway.KeySet.from_jwks({"keys": [small.public_jwk(kid="small"), keypair("rsa").public_jwk(kid="ok")]})
    assert keys.kids == ["ok"]
    assert keys.skipped[0][0] == "small"
    with pytest.raises(gateway.KeyNotFound):
        gateway.verify(make_token("RS256", small.private, {}, header={"alg": "RS256", "kid": "small"}), keys, algorithms=["RS256"])


def test_rsa_4096_and_exponent_3_verify() -> None:
    big = keypair("rsa", 0, 4096)
    assert gateway.verify(make_token("PS512", big.private, {"b": 1}), big.public_pem, algorithms=["PS512"]) == {"b": 1}
    assert gateway.KeySet.from_pem(big.public_pem).describe()[0]["bits"] == 4096


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_ecdsa_signatures_must_be_fixed_length_r_s(alg: str) -> None:
    pair = key_for(alg)
    h, p = b64e(dumps({"alg": alg})), b64e(dumps({"sub": "e"}))
    good = raw_sign(alg, pair.private, f"{h}.{p}".encode())
    size = EC_SIZE[alg]
    assert len(good) == 2 * size
    assert gateway.verify(f"{h}.{p}.{b64e(good)}", pair.public_pem, algorithms=[alg]) == {"sub": "e"}
    r, s = good[:size], good[size:]
    bad = {
        "der": der_signature(good),
        "short-by-one": good[:-1],
        "long-by-one": good + b"\x00",
        "left-padded": b"\x00" + good,
        "r-only": r,
        "r-s-padded-each": b"\x00" + r + b"\x00" + s,
        "r-s-stripped": r.lstrip(b"\x00")[:-1] + s,
        "empty": b"",
        "s-r-swapped": s + r,
        "zeros": bytes(2 * size),
    }
    for name, sig in bad.items():
        with pytest.raises(gateway.InvalidSignature) as info:
            gateway.verify(f"{h}.{p}.{b64e(sig)}", pair.public_pem, algorithms=[alg])
        assert_no_leak(info.value)
        assert name  # for the traceback


def test_es512_on_p521_with_leading_zero_coordinates() -> None:
    """P-521 coordinates are 66 bytes (RFC 7518 §6.2.1.2), often with leading zero bits; a JWK with a
    coordinate shortened by its leading zero byte is not a valid JWK."""
    for n in range(40):
        pair = keypair("p521", n)
        jwk = pair.public_jwk()
        x = b64d(jwk["x"])
        assert len(x) == 66
        if x[0] == 0:
            break
    else:
        pytest.fail("no P-521 key with a leading zero byte in x in 40 keys")
    token = make_token("ES512", pair.private, {"p": 521})
    assert gateway.verify(token, jwk, algorithms=["ES512"]) == {"p": 521}
    assert gateway.verify(token, pair.public_pem, algorithms=["ES512"]) == {"p": 521}
    with pytest.raises(ValueError) as info:
        gateway.KeySet.from_jwk({**jwk, "x": b64e(x[1:])})
    assert info.value.kind in {"invalid_key", "malformed_key"}
    assert gateway.KeySet.from_jwk(jwk).describe() == [{"kid": None, "kty": "EC", "crv": "P-521", "alg": None}]


def _cert_der(pair: KeyPair, cn: str = "idp") -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    signer = keypair("p256", 7)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pair.public)
        .serial_number(1)
        .not_valid_before(when)
        .not_valid_after(when + datetime.timedelta(days=30))
        .sign(signer.private, hashes.SHA256())
    )
    return cert.public_bytes(ser.Encoding.DER)


def test_x5c_leaf_must_be_the_jwks_own_key() -> None:
    rsa0, rsa1, p256 = keypair("rsa"), keypair("rsa", 1), keypair("p256")
    own = base64.b64encode(_cert_der(rsa0)).decode()
    ca = base64.b64encode(_cert_der(keypair("p256", 7), "ca")).decode()
    token = make_token("RS256", rsa0.private, {"x5c": 1}, header={"alg": "RS256", "kid": "e"})
    # Entra ID's shape: no alg, kid + x5t + x5c, n/e
    entra = rsa0.public_jwk(kid="e", use="sig", x5t="abc", x5c=[own, ca])
    assert gateway.verify(token, {"keys": [entra]}, algorithms=["RS256"]) == {"x5c": 1}
    # x5c alone (no n/e): the leaf's key is the key
    leaf_only = {"kty": "RSA", "kid": "e", "x5c": [own]}
    assert gateway.verify(token, {"keys": [leaf_only]}, algorithms=["RS256"]) == {"x5c": 1}
    other = base64.b64encode(_cert_der(rsa1)).decode()
    ec_cert = base64.b64encode(_cert_der(p256)).decode()
    for bad, kinds in [
        (rsa0.public_jwk(kid="e", x5c=[other]), {"invalid_key"}),  # another key's certificate
        (rsa0.public_jwk(kid="e", x5c=[ca, own]), {"invalid_key"}),  # the leaf is first
        ({"kty": "RSA", "kid": "e", "x5c": [ec_cert]}, {"invalid_key", "key_type_mismatch"}),  # an EC cert in an RSA JWK
        ({"kty": "EC", "crv": "P-384", "kid": "e", "x5c": [ec_cert]}, {"invalid_key", "key_type_mismatch"}),  # wrong curve
        (rsa0.public_jwk(kid="e", x5c=[]), {"malformed_key"}),
        (rsa0.public_jwk(kid="e", x5c=own), {"malformed_key"}),
        (rsa0.public_jwk(kid="e", x5c=[own.replace("+", "-").replace("/", "_").rstrip("=") + "!"]), {"malformed_key"}),
        (rsa0.public_jwk(kid="e", x5c=[base64.b64encode(b"not a certificate").decode()]), {"malformed_key"}),
    ]:
        with pytest.raises(ValueError) as info:
            gateway.KeySet.from_jwk(bad)
        assert info.value.kind in kinds, (bad.get("x5c"), info.value)
        # in a set: skipped, so a token naming it finds no key
        keys = gateway.KeySet.from_jwks({"keys": [bad, p256.public_jwk(kid="other")]})
        assert keys.kids == ["other"]
        with pytest.raises(gateway.KeyNotFound):
            gateway.verify(token, keys, algorithms=["RS256", "ES256"])
    # EC: x/y against the leaf too
    p256b = keypair("p256", 1)
    with pytest.raises(ValueError):
        gateway.KeySet.from_jwk(p256.public_jwk(x5c=[base64.b64encode(_cert_der(p256b)).decode()]))
    assert len(gateway.KeySet.from_jwk(p256.public_jwk(x5c=[ec_cert]))) == 1


# --- algorithm confusion ----------------------------------------------------------------------------


def _hs256_with(secret: bytes, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    import hashlib
    import hmac

    h = b64e(dumps(header or {"alg": "HS256", "typ": "JWT"}))
    p = b64e(dumps(claims))
    return f"{h}.{p}.{b64e(hmac.new(secret, f'{h}.{p}'.encode(), hashlib.sha256).digest())}"


def test_an_rsa_public_key_is_never_an_hmac_secret_in_any_door() -> None:
    pair = keypair("rsa")
    pem = pair.public_pem
    forged_claims = {"sub": "admin"}
    forms: list[Any] = [pem, pem.decode(), pair.public_der, pair.public_jwk(), json.dumps(pair.public_jwk()), {"keys": [pair.public_jwk()]}, gateway.KeySet.from_pem(pem)]
    for key in forms:
        for algs in (["HS256"], ["RS256", "HS256"], ["HS512", "RS256"]):
            with pytest.raises(ValueError) as info:
                gateway.Verifier(key, algorithms=algs)
            assert info.value.kind in {"public_key_as_secret", "key_type_mismatch"}, (type(key), algs, info.value)
    # The attack itself: HS256 tokens MACed with each text form of the public key, sent to RS verifiers.
    verifiers = [gateway.Verifier(k, algorithms=["RS256"]) for k in forms] + [gateway.Verifier(pem, algorithms=["RS256"], cache_size=8)]
    for mac_key in (pem, pem.strip(), pair.public_der, json.dumps(pair.public_jwk()).encode(), b64d(pair.public_jwk()["n"])):
        for header in ({"alg": "HS256"}, {"alg": "HS256", "kid": "k"}, {"alg": "RS256"}):
            forged = _hs256_with(mac_key, forged_claims, header)
            for v in verifiers:
                with pytest.raises((gateway.AlgorithmNotAllowed, gateway.InvalidSignature)):
                    v.verify(forged)


def test_an_hs_token_to_an_rsa_verifier_and_rs_to_a_secret_verifier_are_refused() -> None:
    pair = keypair("rsa")
    hs = _hs256_with(KEY, {"sub": "x"})
    with pytest.raises(gateway.AlgorithmNotAllowed):
        gateway.verify(hs, pair.public_pem, algorithms=["RS256"])
    rs = make_token("RS256", pair.private, {"sub": "x"})
    with pytest.raises(gateway.AlgorithmNotAllowed):
        gateway.verify(rs, KEY, algorithms=["HS256"])
    # a secret never verifies RS*: refused when the verifier is made
    for key in (KEY, {"k1": KEY}):
        with pytest.raises(ValueError) as info:
            gateway.Verifier(key, algorithms=["HS256", "RS256"])
        assert info.value.kind == "key_type_mismatch"
    with pytest.raises(ValueError):
        gateway.Verifier(KEY, algorithms=["RS256"])


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_never_accepted(alg: str) -> None:
    pair = keypair("rsa")
    h, p = b64e(dumps({"alg": alg})), b64e(dumps({"sub": "root"}))
    for sig in ("", b64e(b"x"), b64e(raw_sign("RS256", pair.private, f"{h}.{p}".encode()))):
        for key, algs in ((pair.public_pem, ["RS256"]), (KEY, ["HS256"]), ({"keys": [pair.public_jwk()]}, ALGORITHMS)):
            with pytest.raises(gateway.AlgorithmNotAllowed):
                gateway.verify(f"{h}.{p}.{sig}", key, algorithms=algs)
    for algs in (["none"], [alg], ["RS256", alg]):
        with pytest.raises(ValueError) as info:
            gateway.Verifier(pair.public_pem, algorithms=algs)
        assert info.value.kind == "unknown_algorithm"


def test_eddsa_means_ed25519_and_ed448_is_refused_clearly() -> None:
    e448 = ed448.Ed448PrivateKey.generate()
    pem = e448.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    jwk = json.loads(pyjwt.algorithms.OKPAlgorithm.to_jwk(e448.public_key()))
    assert jwk["crv"] == "Ed448"
    for load in (lambda: gateway.KeySet.from_pem(pem), lambda: gateway.KeySet.from_jwk(jwk), lambda: gateway.Verifier(pem, algorithms=["EdDSA"]), lambda: gateway.Verifier(jwk, algorithms=["EdDSA"])):
        with pytest.raises(ValueError) as info:
            load()
        assert info.value.kind == "unsupported_key"
        assert "Ed448" in str(info.value) and "Ed25519" in str(info.value)
    keys = gateway.KeySet.from_jwks({"keys": [{**jwk, "kid": "448"}, keypair("ed25519").public_jwk(kid="25519")]})
    assert keys.kids == ["25519"] and keys.skipped[0][0] == "448"
    # An Ed448 token (PyJWT signs it as EdDSA) against Ed25519 keys: refused.
    token = pyjwt.encode({"sub": "x"}, e448, algorithm="EdDSA")
    with pytest.raises(gateway.JWTError):
        gateway.verify(token, keypair("ed25519").public_pem, algorithms=["EdDSA"])
    with pytest.raises(ValueError) as info:
        gateway.Verifier(keypair("ed25519").public_pem, algorithms=["Ed448"])
    assert info.value.kind == "unsupported_algorithm"


def test_other_curves_and_key_types_are_refused_clearly() -> None:
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    for pem in (k1,):
        with pytest.raises(ValueError) as info:
            gateway.KeySet.from_pem(pem)
        assert info.value.kind == "unsupported_key"
    for jwk in ({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}, {"kty": "OKP", "crv": "X25519", "x": b64e(bytes(32))}, {"kty": "RSA-X"}, {"kty": "oct"}):
        with pytest.raises(ValueError):
            gateway.KeySet.from_jwk(jwk)


# --- KeySet API --------------------------------------------------------------------------------------


def test_keyset_constructors_accept_dict_str_and_bytes() -> None:
    pair = keypair("p384")
    jwk = pair.public_jwk(kid="a", alg="ES384", use="sig")
    for value in (jwk, json.dumps(jwk), json.dumps(jwk).encode()):
        ks = gateway.KeySet.from_jwk(value)
        assert (len(ks), ks.kids, ks.algorithms) == (1, ["a"], ["ES384"])
    for value in ({"keys": [jwk]}, json.dumps({"keys": [jwk]}), json.dumps({"keys": [jwk]}).encode()):
        assert gateway.KeySet.from_jwks(value).kids == ["a"]
    for value in (pair.public_pem, pair.public_pem.decode()):
        ks = gateway.KeySet.from_pem(value, kid="p", algorithm="ES384")
        assert (ks.kids, ks.algorithms) == (["p"], ["ES384"])
    rsa_pair = keypair("rsa")
    pkcs1 = rsa_pair.public.public_bytes(ser.Encoding.PEM, ser.PublicFormat.PKCS1)
    cert = x509.load_der_x509_certificate(_cert_der(rsa_pair)).public_bytes(ser.Encoding.PEM)
    for pem in (pkcs1, cert, b"subject=CN = idp\nissuer=CN = idp\n" + cert):
        ks = gateway.KeySet.from_pem(pem)
        assert ks.describe() == [{"kid": None, "kty": "RSA", "bits": 2048, "alg": None}]
        assert gateway.verify(make_token("RS256", rsa_pair.private, {"c": 1}), ks, algorithms=["RS256"]) == {"c": 1}
    for bad in (123, None, ["keys"], 1.5):
        with pytest.raises(TypeError):
            gateway.KeySet.from_jwks(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            gateway.KeySet.from_jwk(bad)  # type: ignore[arg-type]


def test_keyset_describe_kids_algorithms_skipped() -> None:
    pairs = [keypair("rsa"), keypair("p256"), keypair("p521"), keypair("ed25519")]
    entries = [
        pairs[0].public_jwk(kid="r", alg="PS256"),
        pairs[1].public_jwk(kid="e"),
        pairs[2].public_jwk(kid="p", use="sig"),
        pairs[3].public_jwk(),
        pairs[1].public_jwk(kid="enc", use="enc"),
        {"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64e(bytes(32))},
        {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": pairs[0].public_jwk()["n"], "e": "AQAB"},
        {"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": b64e(bytes(32)), "y": b64e(bytes(31) + b"\x01")},
        {"kty": "RSA", "kid": "e1", "n": pairs[0].public_jwk()["n"], "e": "AQ"},
    ]
    ks = gateway.KeySet.from_jwks({"keys": entries})
    assert len(ks) == 4
    assert ks.kids == ["r", "e", "p", None]
    assert ks.algorithms == ["PS256", "ES256", "ES512", "EdDSA"]
    assert ks.describe() == [
        {"kid": "r", "kty": "RSA", "bits": 2048, "alg": "PS256"},
        {"kid": "e", "kty": "EC", "crv": "P-256", "alg": None},
        {"kid": "p", "kty": "EC", "crv": "P-521", "alg": None},
        {"kid": None, "kty": "OKP", "crv": "Ed25519", "alg": None},
    ]
    assert [kid for kid, _ in ks.skipped] == ["enc", "x", "oaep", "off-curve", "e1"]
    assert all(isinstance(why, str) and why for _, why in ks.skipped)
    text = repr(ks) + json.dumps(ks.describe()) + json.dumps(ks.skipped)
    assert_no_material(text, *pairs)
    assert "KeySet" in repr(ks)


def test_private_key_material_is_refused_never_used_and_never_echoed() -> None:
    pairs = [keypair("rsa"), keypair("p256"), keypair("ed25519")]
    for pair in pairs:
        alg = {"rsa": "RS256", "p256": "ES256", "ed25519": "EdDSA"}[pair.kind]
        token = make_token(alg, pair.private, {})
        for load in (
            lambda: gateway.KeySet.from_pem(pair.private_pem),
            lambda: gateway.KeySet.from_jwk(pair.private_jwk()),
            lambda: gateway.KeySet.from_jwks({"keys": [pair.private_jwk(kid="leaked"), keypair("p384").public_jwk(kid="fine")]}),
            lambda: gateway.verify(token, pair.private_pem, algorithms=[alg]),
            lambda: gateway.verify(token, pair.private_jwk(), algorithms=[alg]),
            lambda: gateway.Verifier(pair.public_pem + pair.private_pem, algorithms=[alg]),
        ):
            with pytest.raises(ValueError) as info:
                load()
            assert info.value.kind == "private_key", info.value
            assert_no_material(str(info.value) + repr(info.value), pair)


def test_key_errors_never_contain_key_material() -> None:
    pair = keypair("rsa")
    jwk = pair.public_jwk()
    bad_inputs = [
        {**jwk, "n": jwk["n"] + "!"},
        {**jwk, "e": "AQAB", "n": jwk["n"][:200]},
        {**jwk, "x5c": [base64.b64encode(_cert_der(keypair("rsa", 1))).decode()]},
        json.dumps(jwk)[:-1],
        json.dumps(jwk).replace('"e"', '"n":"AQAB","e"', 1),  # duplicate member
        pair.public_pem.replace(b"M", b"N", 3),
        pair.public_pem[:-40],
        pair.public_der[:-1],
    ]
    for bad in bad_inputs:
        with pytest.raises(ValueError) as info:
            gateway.KeySet.from_jwk(bad) if isinstance(bad, (dict, str)) else gateway.KeySet.from_pem(bad)
        assert_no_material(str(info.value) + repr(info.value), pair, keypair("rsa", 1))
        assert info.value.kind in {"malformed_key", "invalid_key", "weak_key", "key_type_mismatch"}


def test_a_jwk_set_with_too_many_keys_or_bad_shape_is_refused() -> None:
    one = keypair("p256").public_jwk()
    with pytest.raises(ValueError) as info:
        gateway.KeySet.from_jwks({"keys": [dict(one, kid=str(i)) for i in range(1001)]})
    assert "1000" in str(info.value)
    assert len(gateway.KeySet.from_jwks({"keys": [dict(one, kid=str(i)) for i in range(50)]})) == 50
    for bad in ({}, {"keys": {}}, {"keys": "x"}, {"keys": [1]}, [one], {"keys": [], "x": 1}):
        with pytest.raises((ValueError, TypeError)):
            gateway.KeySet.from_jwks(bad)  # type: ignore[arg-type]


# --- unverified_header / unverified_claims -------------------------------------------------------


def test_unverified_header_and_claims_decode_without_verifying() -> None:
    pair = keypair("ed25519")
    token = make_token("EdDSA", pair.private, {"sub": "a", "n": [1, {"b": None}]}, header={"alg": "EdDSA", "kid": "k", "x5t": "t", "nested": {"a": [1]}})
    assert gateway.unverified_header(token) == {"alg": "EdDSA", "kid": "k", "x5t": "t", "nested": {"a": [1]}}
    assert gateway.unverified_claims(token) == {"sub": "a", "n": [1, {"b": None}]}
    assert gateway.unverified_claims(token.encode()) == gateway.unverified_claims(token)
    # nothing is verified: a forged or expired token decodes the same, and so does alg none
    h, p, _ = token.split(".")
    forged = f"{h}.{b64e(dumps({'sub': 'root'}))}.AAAA"
    assert gateway.unverified_claims(forged) == {"sub": "root"}
    assert gateway.unverified_header(f"{b64e(dumps({'alg': 'none'}))}.{p}.") == {"alg": "none"}
    # fresh dicts each time
    a = gateway.unverified_claims(token)
    a["n"].append(2)
    assert gateway.unverified_claims(token)["n"] == [1, {"b": None}]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.e30.",
        "e30.!!!.",
        f"{b64e(b'not json')}.{b64e(b'not json')}.",
        f"{b64e(b'[1]')}.{b64e(b'[1]')}.",
        f"{b64e(b'null')}.{b64e(b'1')}.",
        "e30=.e30=.",  # padded
        "\ud800.e30.",  # not valid Unicode
        "e30." + "A" * (70 * 1024) + ".",  # oversized
    ],
)
def test_unverified_decoding_errors_are_malformed(token: str) -> None:
    for fn in (gateway.unverified_header, gateway.unverified_claims):
        part = 0 if fn is gateway.unverified_header else 1
        pieces = token.split(".")
        if len(pieces) == 3 and pieces[part] == "e30":
            continue  # that part is fine ({}); the other function covers the broken one
        with pytest.raises(gateway.MalformedToken) as info:
            fn(token)
        assert_no_leak(info.value, token)


# --- PyJWT's options ------------------------------------------------------------------------------


def test_options_verify_signature_false_is_refused() -> None:
    token = make_token("ES256", keypair("p256").private, {})
    for value in (False,):
        with pytest.raises(ValueError) as info:
            gateway.verify(token, keypair("p256").public_pem, algorithms=["ES256"], options={"verify_signature": value})
        assert not isinstance(info.value, gateway.JWTError)
        assert "unverified_claims" in str(info.value)
        with pytest.raises(ValueError):
            gateway.Verifier(keypair("p256").public_pem, algorithms=["ES256"], options={"verify_signature": value})
    for value in (0, None, "false", "no"):
        with pytest.raises((ValueError, TypeError)):
            gateway.verify(token, keypair("p256").public_pem, algorithms=["ES256"], options={"verify_signature": value})
    assert gateway.verify(token, keypair("p256").public_pem, algorithms=["ES256"], options={"verify_signature": True}) == {}


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: gateway.verify(make_token("ES256", keypair("p256").private, {}), keypair("p256").public_pem, algorithms=["ES256"], options={"verify_signature": False}), id="verify-verify_signature-False"),
        pytest.param(lambda: gateway.verify(make_token("ES256", keypair("p256").private, {}), keypair("p256").public_pem, algorithms=["ES256"], options={"verify_jti": True}), id="verify-unknown-option"),
        pytest.param(lambda: gateway.encode({}, keypair("p256").private_pem, algorithm="ES256", headers={"kid": 1}), id="encode-kid-not-str"),
        pytest.param(lambda: gateway.encode({}, keypair("p256").private_pem, algorithm="ES256", headers={"crit": ["exp"]}), id="encode-crit"),
        pytest.param(lambda: gateway.encode({}, keypair("p256").private_pem, algorithm="ES256", headers={"alg": "ES384"}), id="encode-alg-conflict"),
    ],
)
def test_value_errors_carry_a_kind(call: Any) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert isinstance(getattr(info.value, "kind", None), str), repr(info.value)


def test_verifier_options_errors_carry_the_bad_option_kind() -> None:
    for options in ({"verify_signature": False}, {"verify_jti": True}, {"leeway": 5}):
        with pytest.raises(ValueError) as info:
            gateway.Verifier(KEY, options=options)
        assert info.value.kind == "bad_option"


def test_options_refuse_unknown_names_and_non_bool_values() -> None:
    for options in ({"verify_jti": True}, {"leeway": 5}, {"verify_exp": 0}, {"verify_aud": "yes"}, {"require": [1]}, {"require": b"exp"}):
        with pytest.raises((ValueError, TypeError)) as info:
            gateway.Verifier(KEY, options=options)
        assert not isinstance(info.value, gateway.JWTError)
    with pytest.raises(TypeError):
        gateway.Verifier(KEY, options=[("verify_exp", False)])  # type: ignore[arg-type]


PYJWT_ERRORS = {
    pyjwt.ExpiredSignatureError: gateway.ExpiredToken,
    pyjwt.ImmatureSignatureError: gateway.NotYetValid,
    pyjwt.InvalidAudienceError: gateway.InvalidAudience,
    pyjwt.InvalidIssuerError: gateway.InvalidIssuer,
    pyjwt.MissingRequiredClaimError: gateway.MissingClaim,
}

CLAIM_CASES = {
    "exp": [None, NOW - 10, NOW + 10],
    "nbf": [None, NOW + 10],
    "iat": [None, NOW + 10],
    "aud": [None, "api", "web", ["web", "api"]],
    "iss": [None, "https://idp.test/", "https://evil.test/"],
}
OPTION_CASES = [
    {},
    {"verify_exp": False},
    {"verify_nbf": False},
    {"verify_iat": False},
    {"verify_aud": False},
    {"verify_iss": False},
    {"require": ["exp", "iss"]},
    {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False, "verify_iss": False},
]


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - compared below
        return e


@pytest.mark.parametrize("options", OPTION_CASES, ids=lambda o: json.dumps(o))
@pytest.mark.parametrize("audience", [None, "api"])
def test_options_agree_with_pyjwt(options: dict[str, Any], audience: str | None) -> None:
    """Each combination of claims under each options dict: the same verdict as PyJWT's decode with
    the same token, key, audience, issuer and options (and the mapped error class)."""
    pair = keypair("p256")
    names = list(CLAIM_CASES)
    mismatches: list[Any] = []
    for values in itertools.product(*CLAIM_CASES.values()):
        claims = {k: v for k, v in zip(names, values) if v is not None}
        # PyJWT takes the wall clock; the claims above are relative to NOW, so shift them to now.
        now = int(time.time())
        shifted = {k: (v - NOW + now if k in ("exp", "nbf", "iat") else v) for k, v in claims.items()}
        token = make_token("ES256", pair.private, shifted)
        theirs = _outcome(lambda: pyjwt.decode(token, pair.public, algorithms=["ES256"], audience=audience, issuer="https://idp.test/", options=options))
        ours = _outcome(lambda: gateway.verify(token, pair.public_pem, algorithms=["ES256"], audience=audience, issuer="https://idp.test/", options=options, now=now))
        if isinstance(theirs, Exception):
            expected = next((g for p, g in PYJWT_ERRORS.items() if isinstance(theirs, p)), None)
            assert expected is not None, theirs
            assert isinstance(ours, gateway.JWTError), (shifted, options, audience, theirs, ours)
            if not isinstance(ours, expected):
                # Two time faults at once (expired and not yet valid): PyJWT reports nbf/iat first,
                # the gateway exp first (its early verdict); either is right. Anything else is a mismatch.
                two_time_faults = isinstance(ours, gateway.ExpiredToken) and isinstance(theirs, pyjwt.ImmatureSignatureError)
                if not two_time_faults:
                    mismatches.append((shifted, options, audience, type(theirs).__name__, type(ours).__name__))
        else:
            assert ours == theirs, (shifted, options, audience, ours)
    assert not mismatches, mismatches[:5]


# --- encode's private keys: what it signs with, verify must accept --------------------------------


def test_encode_refuses_encrypted_and_unsupported_private_keys() -> None:
    encrypted = keypair("rsa").private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.BestAvailableEncryption(b"pw"))
    e448 = ed448.Ed448PrivateKey.generate().private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    k1 = ec.generate_private_key(ec.SECP256K1()).private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    for key, alg in ((encrypted, "RS256"), (e448, "EdDSA"), (k1, "ES256")):
        with pytest.raises(ValueError) as info:
            gateway.encode({"a": 1}, key, algorithm=alg)
        assert info.value.kind == "unsupported_key"
        assert "PRIVATE" not in str(info.value)
    # a private JWK whose public members are another key's is refused, never signed with
    mixed = {**keypair("p256").private_jwk(), "x": keypair("p256", 1).public_jwk()["x"], "y": keypair("p256", 1).public_jwk()["y"]}
    with pytest.raises(ValueError):
        gateway.encode({"a": 1}, mixed, algorithm="ES256")
    with pytest.raises(ValueError) as info:
        gateway.encode({"a": 1}, keypair("p256").private_jwk(use="enc"), algorithm="ES256")
    assert info.value.kind == "key_usage"
    for claims, error in (({"a": b"x"}, TypeError), ({"a": float("nan")}, ValueError), ({1: 1}, TypeError)):
        with pytest.raises(error):
            gateway.encode(claims, keypair("p256").private_pem, algorithm="ES256")


def test_encode_refuses_a_weak_rsa_key_as_weak() -> None:
    small = keypair("rsa", 0, 1024)
    for allow in (False, True):  # allow_weak_key is for HMAC secrets; verify never accepts < 2048 bits
        with pytest.raises(ValueError) as info:
            gateway.encode({"a": 1}, small.private_pem, algorithm="RS256", allow_weak_key=allow)
        assert info.value.kind == "weak_key" and "1024" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "members", "alg"),
    [
        ("p256", {"key_ops": ["verify"]}, "ES256"),
        ("p256", {"key_ops": ["encrypt"]}, "ES256"),
        ("p256", {"alg": "ES384"}, "ES256"),
        ("rsa", {"alg": "RS256"}, "PS256"),
        ("ed25519", {"alg": "ES256"}, "EdDSA"),
    ],
)
def test_encode_honours_a_private_jwks_key_ops_and_alg(kind: str, members: dict[str, Any], alg: str) -> None:
    pair = keypair(kind)
    # what verify does with the matching public JWK (alg/key_ops are public members)
    public = {**pair.public_jwk(), **{k: v for k, v in members.items() if k == "alg"}}
    if "alg" in members and members["alg"] in ALGORITHMS and KIND_OF[members["alg"]] == kind:
        token = make_token(alg, pair.private, {"a": 1})
        with pytest.raises(gateway.KeyNotFound):
            gateway.verify(token, public, algorithms=[alg, members["alg"]])
    with pytest.raises(ValueError) as info:
        gateway.encode({"a": 1}, pair.private_jwk(**members), algorithm=alg)
    assert info.value.kind in {"key_usage", "key_type_mismatch", "invalid_key"}


# --- construction errors are ValueErrors with a documented kind, never token errors ---------------


@pytest.mark.parametrize("case", ["pem-two-keys", "jwks-nothing-usable", "jwks-empty"])
def test_keyset_construction_errors_are_not_token_errors(case: str) -> None:
    pair = keypair("rsa")
    load = {
        "pem-two-keys": lambda: gateway.KeySet.from_pem(pair.public_pem + keypair("p256").public_pem),
        "jwks-nothing-usable": lambda: gateway.KeySet.from_jwks({"keys": [pair.public_jwk(use="enc")]}),
        "jwks-empty": lambda: gateway.KeySet.from_jwks({"keys": []}),
    }[case]
    with pytest.raises(ValueError) as info:
        load()
    assert not isinstance(info.value, gateway.JWTError), repr(info.value)


def test_a_jwk_is_told_from_a_jwk_set_by_parsing_not_by_substring() -> None:
    pair = keypair("rsa")
    token = make_token("RS256", pair.private, {"a": 1}, header={"alg": "RS256", "kid": "keys"})
    for key in (pair.public_jwk(kid="keys"), json.dumps(pair.public_jwk(kid="keys"))):
        assert gateway.verify(token, key, algorithms=["RS256"]) == {"a": 1}


def test_rsa_signatures_must_be_the_modulus_length() -> None:
    """RFC 8017 §8.2.2: a signature of k bytes. One whose leading zero byte was dropped is invalid."""
    pair = keypair("rsa")
    for i in range(4000):
        token = make_token("RS256", pair.private, {"i": i})
        h, p, s = token.split(".")
        sig = b64d(s)
        if sig[0] == 0:
            break
    else:
        pytest.fail("no RSA signature with a leading zero byte in 4000")
    assert gateway.verify(token, pair.public_pem, algorithms=["RS256"]) == {"i": i}
    for bad in (sig[1:], b"\x00" + sig, sig + b"\x00"):
        with pytest.raises(gateway.InvalidSignature):
            gateway.verify(f"{h}.{p}.{b64e(bad)}", pair.public_pem, algorithms=["RS256"])


def test_rsa_key_limits() -> None:
    jwk = keypair("rsa").public_jwk()
    cases = {
        "16384-bit": ({"n": b64e(b"\xff" * 2048)}, "unsupported_key"),
        "e=1": ({"e": "AQ"}, "invalid_key"),
        "e even": ({"e": b64e((65536).to_bytes(3, "big"))}, "invalid_key"),
        "e 72 bits": ({"e": b64e(b"\x01" * 9)}, "invalid_key"),
        "n not base64url": ({"n": jwk["n"].replace("-", "+")}, "malformed_key"),
        "n padded": ({"n": jwk["n"] + "=" * (-len(jwk["n"]) % 4 or 4)}, "malformed_key"),
    }
    for name, (members, kind) in cases.items():
        with pytest.raises(ValueError) as info:
            gateway.KeySet.from_jwk({**jwk, **members})
        assert info.value.kind == kind, (name, info.value)
    # a modulus with a leading zero byte is the same key
    same = gateway.KeySet.from_jwk({**jwk, "n": b64e(b"\x00" + b64d(jwk["n"]))})
    assert gateway.verify(make_token("RS256", keypair("rsa").private, {"z": 0}), same, algorithms=["RS256"]) == {"z": 0}


# --- key-set sources (what gateway.JWKSClient is to a verifier) -----------------------------------


class Rotating:
    """A key-set source whose set changes when asked about a kid it does not have (a refetch)."""

    def __init__(self, current: gateway.KeySet, after_refetch: gateway.KeySet | None = None) -> None:
        self.current, self.after = current, after_refetch
        self.asked: list[str | None] = []

    def _gateway_key_set(self, unknown_kid: str | None) -> gateway.KeySet:
        self.asked.append(unknown_kid)
        if unknown_kid is not None and self.after is not None:
            self.current = self.after
        return self.current


def test_a_new_kid_verifies_after_one_refetch_and_unknown_kids_do_not_loop() -> None:
    old, new = keypair("rsa"), keypair("rsa", 1)
    source = Rotating(_set(old.public_jwk(kid="old")), _set(old.public_jwk(kid="old"), new.public_jwk(kid="new")))
    v = gateway.Verifier(source, algorithms=["RS256"])
    assert v.verify(make_token("RS256", old.private, {"k": "old"}, header={"alg": "RS256", "kid": "old"})) == {"k": "old"}
    assert source.asked == [None]
    assert v.verify(make_token("RS256", new.private, {"k": "new"}, header={"alg": "RS256", "kid": "new"})) == {"k": "new"}
    assert source.asked == [None, None, "new"], "asked once more, with the token's kid"
    source.asked.clear()
    with pytest.raises(gateway.KeyNotFound):
        v.verify(make_token("RS256", new.private, {}, header={"alg": "RS256", "kid": "random-kid"}))
    assert source.asked == [None, "random-kid"], "one refetch request per verification, never a loop"
    source.asked.clear()
    # a bad signature with a known kid is not a reason to refetch
    with pytest.raises(gateway.InvalidSignature):
        v.verify(make_token("RS256", old.private, {}, header={"alg": "RS256", "kid": "new"}))
    assert source.asked == [None]
    source.asked.clear()
    # a kid-less token that no key fits: nothing to ask about
    with pytest.raises(gateway.KeyNotFound):
        v.verify(make_token("RS256", keypair("rsa", 2).private, {}))
    assert source.asked == [None]


def test_a_source_error_reaches_the_caller_as_is() -> None:
    class Down:
        def _gateway_key_set(self, unknown_kid: str | None) -> gateway.KeySet:
            raise gateway.KeySetUnavailable("key set unavailable: connection refused")

    with pytest.raises(gateway.KeySetUnavailable) as info:
        gateway.verify(make_token("RS256", keypair("rsa").private, {}), Down(), algorithms=["RS256"])
    assert info.value.kind == "key_set_unavailable"
    assert issubclass(gateway.KeySetUnavailable, gateway.JWTError) and issubclass(gateway.KeyNotFound, gateway.JWTError)
    assert not issubclass(gateway.KeyNotFound, gateway.InvalidSignature) and not issubclass(gateway.KeySetUnavailable, gateway.InvalidSignature)

    class Wrong:
        def _gateway_key_set(self, unknown_kid: str | None) -> Any:
            return {"keys": []}

    with pytest.raises(TypeError):
        gateway.verify(make_token("RS256", keypair("rsa").private, {}), Wrong(), algorithms=["RS256"])
    with pytest.raises(ValueError) as verr:
        gateway.Verifier(Down(), algorithms=["HS256"])
    assert verr.value.kind == "key_type_mismatch"


def test_verifier_repr_and_errors_never_show_keys() -> None:
    pairs = [keypair("rsa"), keypair("p256"), keypair("ed25519")]
    keys = _set(*(p.public_jwk(kid=p.kind) for p in pairs))
    v = gateway.Verifier(keys, algorithms=["RS256", "ES256", "EdDSA"], cache_size=4)
    text = repr(v) + repr(keys) + repr(gateway.Verifier(pairs[0].public_pem, algorithms=["RS256"]))
    own_alg = {"rsa": "RS256", "p256": "ES256", "ed25519": "EdDSA"}
    for p in pairs:
        alg = own_alg[p.kind]
        for kid in ("rsa", "p256", "ed25519", "nope"):
            try:
                v.verify(make_token(alg, p.private, {}, header={"alg": alg, "kid": kid}))
            except gateway.JWTError as e:
                text += str(e) + repr(e)
    assert_no_material(text, *pairs)
