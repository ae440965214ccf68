"""Project Wycheproof's asymmetric JWS groups (json_web_signature_test.json, Apache-2.0) end to end
through ``gateway.verify`` and ``gateway.Verifier``.

Every case of every group with a ``public`` JWK (ES256, RS256/384/512, PS256/384/512, the RFC 7520
examples, keys meant for encryption, the ECDSA special cases). The key comes from the group's JWK
(``KeySet.from_jwk``, ``KeySet.from_jwks``, the JWK dict and its JSON text: all four must agree);
the allowed algorithms are the JWK's ``alg`` plus the JWS header's ``alg`` when that is an
asymmetric algorithm (so a "WrongPrimitive" token is refused by key selection, as a verifier
configured for both would, not by a construction error). rust/tests/jose_wycheproof.rs runs the
same groups at the jose level; the documented deviations are the same four tcIds.

Every valid vector's payload is not a JSON object ("foo", "", RFC 7520's prose), which the
contract refuses as MalformedToken *after* the signature check; so a valid vector must be
MalformedToken as-is and InvalidSignature with one signature bit flipped, and the vector's own
header with a JSON-object payload signed by the group's private key must return the claims.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import gateway
import jwt as pyjwt
import pytest

from tests.asym_support import ALGORITHMS, b64d, b64e, dumps, raw_sign
from tests.jwt_support import assert_no_leak

VECTORS = Path(__file__).parent / "vectors" / "wycheproof"
FILE = VECTORS / "json_web_signature_test.json"
SHA256 = "637dec6611583d54e2e21330bb8fcf7f2b4c82e70b83349788300bde5009eecd"

JWS = json.loads(FILE.read_text(encoding="utf-8"))  # a missing file is a collection error, never a skip

# The contract's verdict where it differs from Wycheproof's label (same as rust/tests/jose_wycheproof.rs):
# - 346, 350 (RFC 7520 Figure 20): the JWK says "alg": "PS256" and the token PS384. A JWK's own alg
#   must equal the header's (issue 10, key selection), so no key fits: KeyNotFound.
# - 347, 351 (RFC 7520 Figure 27): the JWK says "alg": "ES521", which is no JWS algorithm (ES512 is
#   meant). A JWK whose alg is not one we verify is refused when the key is loaded (unsupported_key),
#   never guessed at.
DEVIATIONS: dict[int, tuple[str, str]] = {
    346: ("KeyNotFound", "JWK alg PS256 != header alg PS384"),
    350: ("KeyNotFound", "JWK alg PS256 != header alg PS384 (key_ops variant)"),
    347: ("unsupported_key", "JWK alg ES521 is not a JWS algorithm"),
    351: ("unsupported_key", "JWK alg ES521 is not a JWS algorithm (key_ops variant)"),
}

# Groups whose JWK is refused when loaded, and the kind: keys for encryption (RFC 7517 §4.2/4.3) and
# the "ES521" JWKs above.
REFUSED_GROUP_KIND = {"rsa_encryption": "key_usage", "ec_key_for_encryption": "key_usage", "rfc7520": "unsupported_key", "rfc7520WithKeyOps": "unsupported_key"}

# What an invalid vector fails with, by its comment, when it is not the signature itself that is bad.
# Every other invalid vector must be InvalidSignature exactly (a regression that rejects it "for
# another reason" would hide a broken signature check).
STRUCTURAL = {
    "rejectsMissingSignatureAndSeparator": gateway.MalformedToken,  # two parts
    "rejectsMissingPayloadAndSeparator": gateway.MalformedToken,
    "rejectsMissingHeader": gateway.MalformedToken,  # empty header part
    "rejectsMissingHeaderAndSeparator": gateway.MalformedToken,
    "rejectsMissingHeaderAndSignature": gateway.MalformedToken,
    "rejectsMissingHeaderSignatureAndSeparator": gateway.MalformedToken,
    "rejectsMissingHeaderSignatureAndSeparators": gateway.MalformedToken,
    "rejectsEmptyString": gateway.MalformedToken,
    "rejectsModifiedHeader": gateway.KeyNotFound,  # kid "Xid-..." names no key of the set
    "rejectsSymmetryConfusionAttacks_aesKeyFromEcVerificationKeyBytes": gateway.AlgorithmNotAllowed,  # HS256
    "algIsNone": gateway.AlgorithmNotAllowed,
}


def _groups() -> list[dict[str, Any]]:
    return [g for g in JWS["testGroups"] if g.get("public")]


def _cases() -> list[Any]:
    out = []
    for group in _groups():
        for case in group["tests"]:
            out.append(pytest.param(group, case, id=f"tc{case['tcId']}-{group['comment']}-{case['comment']}"))
    return out


CASES = _cases()


def test_vector_file_is_unchanged_and_every_asymmetric_case_is_collected() -> None:
    assert hashlib.sha256(FILE.read_bytes()).hexdigest() == SHA256
    assert len(_groups()) == 19
    # the other 40 cases are the HMAC groups of tests/test_wycheproof.py
    assert len(CASES) == 361 == JWS["numberOfTests"] - 40
    algs = {g["public"].get("alg") for g in _groups()} - {None}
    assert algs == {"ES256", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES521"}
    assert all(isinstance(c.values[1]["jws"], str) for c in CASES), "compact serialization only"
    assert {c.values[1]["tcId"] for c in CASES} >= set(DEVIATIONS)


def _header(jws: str) -> dict[str, Any] | None:
    try:
        value = json.loads(b64d(jws.split(".")[0]))
    except (ValueError, IndexError):
        return None
    return value if isinstance(value, dict) else None


def _algorithms(group: dict[str, Any], jws: str) -> list[str]:
    own = group["public"].get("alg")
    header_alg = (_header(jws) or {}).get("alg")
    algs = [own] if own in ALGORITHMS else []
    if header_alg in ALGORITHMS and header_alg not in algs:
        algs.append(header_alg)
    return algs


def _key_forms(group: dict[str, Any]) -> dict[str, Any]:
    jwk = group["public"]
    return {
        "from_jwk": gateway.KeySet.from_jwk(jwk),
        "from_jwks": gateway.KeySet.from_jwks({"keys": [jwk]}),
        "jwk-dict": jwk,
        "jwk-json": json.dumps(jwk),
    }


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except gateway.JWTError as e:
        return e


@pytest.mark.parametrize(("group", "case"), CASES)
def test_asymmetric_jws_vector(group: dict[str, Any], case: dict[str, Any]) -> None:
    tc, jws, jwk = case["tcId"], case["jws"], group["public"]

    if (group["comment"] in REFUSED_GROUP_KIND and "alg" not in jwk) or jwk.get("alg") == "ES521":
        # The key itself is refused when loaded (a ValueError with a kind, never a JWTError from verify).
        kind = REFUSED_GROUP_KIND[group["comment"]]
        for load in (gateway.KeySet.from_jwk, lambda k: gateway.verify(jws, k, algorithms=["RS256", "ES256", "ES512"])):
            with pytest.raises(ValueError) as info:
                load(jwk)
            assert not isinstance(info.value, gateway.JWTError), info.value
            assert info.value.kind == kind, info.value
        # In a JWK Set the entry is skipped with its reason, and a set left empty is refused.
        with pytest.raises(ValueError) as info:
            gateway.KeySet.from_jwks({"keys": [jwk]})
        assert "skipped" in str(info.value)
        if tc in DEVIATIONS:
            assert DEVIATIONS[tc][0] == kind
        else:
            assert case["result"] == "invalid"
        return

    algs = _algorithms(group, jws)
    results = {}
    for name, key in _key_forms(group).items():
        results[name] = _outcome(lambda: gateway.verify(jws, key, algorithms=algs))
        results[name + "/Verifier"] = _outcome(lambda: gateway.Verifier(key, algorithms=algs).verify(jws))
    kinds = {type(r).__name__ for r in results.values()}
    assert len(kinds) == 1, f"the key forms disagree: {results}"
    outcome = next(iter(results.values()))
    if isinstance(outcome, BaseException):
        assert_no_leak(outcome, jws)

    if tc in DEVIATIONS:
        assert type(outcome).__name__ == DEVIATIONS[tc][0], outcome
        return
    if case["result"] == "invalid":
        expected = STRUCTURAL.get(case["comment"], gateway.InvalidSignature)
        if case["comment"].startswith("Using") and "WrongPrimitive" in case.get("flags", []):
            # A PS512-only key: a header RS256/PS256/... finds no key; a header PS512 over another
            # primitive's signature is a bad signature.
            expected = gateway.KeyNotFound if _header(jws)["alg"] != jwk["alg"] else gateway.InvalidSignature
        assert type(outcome) is expected, f"tc{tc} {case['comment']}: {outcome!r}"
        return

    assert case["result"] == "valid"
    # The signature verified; the payload is not a JSON object.
    assert isinstance(outcome, gateway.MalformedToken), outcome
    assert not isinstance(b64_json(jws.split(".")[1]), dict)
    h, p, s = jws.split(".")
    sig = bytearray(b64d(s))
    sig[len(sig) // 2] ^= 0x01
    tampered = f"{h}.{p}.{b64e(bytes(sig))}"
    with pytest.raises(gateway.InvalidSignature):
        gateway.verify(tampered, jwk, algorithms=algs)


def b64_json(part: str) -> Any:
    try:
        return json.loads(b64d(part))
    except ValueError:
        return None


def _signable() -> list[Any]:
    out = []
    for c in CASES:
        group, case = c.values
        if case["result"] == "valid" and case["tcId"] not in DEVIATIONS and group.get("private"):
            out.append(c)
    return out


def _private_key(jwk: dict[str, Any]) -> Any:
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    return (RSAAlgorithm if jwk["kty"] == "RSA" else ECAlgorithm).from_jwk(json.dumps(jwk))


@pytest.mark.parametrize(("group", "case"), _signable())
def test_vector_header_and_key_sign_claims(group: dict[str, Any], case: dict[str, Any]) -> None:
    """The vector's exact header text and the group's private key over a JSON-object payload: the
    claims come back, from every key form, and PyJWT agrees on the same token."""
    h = case["jws"].split(".")[0]
    alg = _header(case["jws"])["alg"]
    claims = {"wycheproof": case["tcId"], "sub": "vector"}
    p = b64e(dumps(claims))
    private = _private_key(group["private"])
    token = f"{h}.{p}.{b64e(raw_sign(alg, private, f'{h}.{p}'.encode()))}"
    for key in _key_forms(group).values():
        assert gateway.verify(token, key, algorithms=[alg]) == claims
    assert pyjwt.decode(token, private.public_key(), algorithms=[alg]) == claims


def test_embedded_jwk_header_is_never_the_key() -> None:
    """tcId 32: the header carries the attacker's own JWK and a signature by it. The verifier's key
    is the only key; the attacker's signature is invalid under it (never KeyNotFound or accepted)."""
    case = next(c for c in CASES if c.values[1]["tcId"] == 32)
    group, vec = case.values
    assert "jwk" in _header(vec["jws"])
    with pytest.raises(gateway.InvalidSignature):
        gateway.verify(vec["jws"], group["public"], algorithms=["ES256"])
