"""Project Wycheproof vectors (tests/vectors/wycheproof, Apache-2.0) against gateway.verify.

* json_web_signature_test.json: every case of every group whose JWK is an HS256/HS384/HS512 `oct` key.
* hmac_sha{256,384,512}_test.json: every case, carried over to JWS (see the HMAC section).

A missing or altered vector file is a collection error / a failing test, never a skip.

Where a Wycheproof label cannot hold under docs/python-api.md, the expected outcome is the contract's,
and the disagreement is written down below next to its tcId (CONTRACT_OUTCOME / NON_OBJECT_PAYLOAD).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import gateway
import pytest

from tests.jwt_support import HASH_BYTES, HASHES, NOW, assert_no_leak, b64d, b64e, config_error, dumps, mac

VECTORS = Path(__file__).parent / "vectors" / "wycheproof"

# sha256 of the files as copied from upstream (see vectors/wycheproof/README.md).
SHA256 = {
    "json_web_signature_test.json": "637dec6611583d54e2e21330bb8fcf7f2b4c82e70b83349788300bde5009eecd",
    "hmac_sha256_test.json": "38f4cae1be5726d0af0c3e8967d4124157c0855736dccc6a7d0b40b8739bf93c",
    "hmac_sha384_test.json": "3de38524ab4be17477a01f24e150b33bbd3878514fb890e4ba84529814cf5013",
    "hmac_sha512_test.json": "e2bdd5918effd57f74e3fc3f9286797a6a544051f0e824b3e9ed495eaf89b01e",
    "LICENSE": "58d1e17ffe5109a7ae296caafcadfdbe6a7d176f0bc4ab01e12a689b0499d8bd",
}


def load(name: str) -> dict[str, Any]:
    # No try/except: a missing file must break collection loudly, not turn into skipped tests.
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def test_vector_files_are_present_and_unchanged() -> None:
    for name, digest in SHA256.items():
        path = VECTORS / name
        assert path.is_file(), f"missing vector file {path}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} differs from upstream"
    assert (VECTORS / "README.md").is_file()


# --- JSON Web Signature ---------------------------------------------------------------------------

JWS = load("json_web_signature_test.json")


def _jws_cases() -> list[Any]:
    cases = []
    for group in JWS["testGroups"]:
        jwk = group.get("private") or group.get("public") or {}
        if jwk.get("kty") != "oct" or not str(jwk.get("alg", "")).startswith("HS"):
            continue
        for case in group["tests"]:
            cases.append(pytest.param(jwk, case, id=f"tc{case['tcId']}-{case['comment']}"))
    return cases


JWS_CASES = _jws_cases()


def test_all_hmac_jws_groups_were_loaded() -> None:
    # hs256 (17), rfc7520 Figure 35 (twice, 1 each), base64 (21): guards against an empty parametrization.
    assert len(JWS_CASES) == 40
    assert {c.values[0]["alg"] for c in JWS_CASES} == {"HS256"}


def _is_json_serialization(case: dict[str, Any]) -> bool:
    jws = case["jws"]
    if "JsonSerialization" in case.get("flags", []) or not isinstance(jws, str):
        return True
    try:
        return isinstance(json.loads(jws), dict)
    except ValueError:
        return False


# Wycheproof labels these "valid", but the header / payload part contains '?', which is not in the
# base64url alphabet; docs/python-api.md requires strict base64url -> MalformedToken. In 373 the MAC
# is the one of the payload *without* the '?', so the token has two defects and either report is
# right (the MAC is over the transmitted text); tests/test_verify.py checks a '?' with a matching MAC.
CONTRACT_OUTCOME: dict[int, tuple[Any, str]] = {
    372: (gateway.MalformedToken, "'?' inside the header part is not base64url"),
    373: ((gateway.MalformedToken, gateway.InvalidSignature), "'?' ends the payload part; MAC is of the text without it"),
}

# Wycheproof tcIds 367 ("invalidBase64Padding") and 370 ("invalidBase64PaddingInPayload") are, in the
# upstream file, byte-for-byte the same string as tcId 357 ("ValidMac"): the padding they are named
# after is not in them. They still have to be refused (their payload "Test" is not a JSON object);
# padding itself is covered in tests/test_verify.py.
SAME_AS_357 = {367, 370}


def _secret(jwk: dict[str, Any]) -> bytes:
    return b64d(jwk["k"])


def _key_forms(jwk: dict[str, Any]) -> dict[str, Any]:
    secret = _secret(jwk)
    return {"bytes": secret, "kid-map": {jwk["kid"]: secret}}


def _verify(jws: str, key: Any, alg: str, secret: bytes) -> dict:
    return gateway.verify(
        jws, key, algorithms=[alg], now=NOW, allow_weak_key=len(secret) < HASH_BYTES[alg]
    )


def _payload_object(jws: str) -> dict | None:
    try:
        value = json.loads(b64d(jws.split(".")[1]))
    except (ValueError, IndexError):
        return None
    return value if isinstance(value, dict) else None


@pytest.mark.parametrize("key_form", ["bytes", "kid-map"])
@pytest.mark.parametrize(("jwk", "case"), JWS_CASES)
def test_jws_vector(jwk: dict[str, Any], case: dict[str, Any], key_form: str) -> None:
    if _is_json_serialization(case):
        pytest.skip("out of scope: JWS JSON serialization; gateway accepts compact serialization only")
    tc, jws, alg, secret = case["tcId"], case["jws"], jwk["alg"], _secret(jwk)
    key = _key_forms(jwk)[key_form]

    if tc in SAME_AS_357:
        assert jws == next(c.values[1]["jws"] for c in JWS_CASES if c.values[1]["tcId"] == 357)

    if tc in CONTRACT_OUTCOME:
        expected, _why = CONTRACT_OUTCOME[tc]
        with pytest.raises(expected) as info:
            _verify(jws, key, alg, secret)
        assert_no_leak(info.value, jws, secret)
        return

    if case["result"] == "invalid":
        with pytest.raises(gateway.JWTError) as info:
            _verify(jws, key, alg, secret)
        assert_no_leak(info.value, jws, secret)
        return

    assert case["result"] == "valid"
    claims = _payload_object(jws)
    if claims is not None:
        assert _verify(jws, key, alg, secret) == claims
        return
    # The MAC is right but the payload ("foo", "Test", RFC 7520's prose) is not a JSON object, which the
    # contract refuses with MalformedToken. Because the signature is checked before the claims are
    # looked at, the MAC verdict is still observable: the vector as-is gets past the signature check
    # (MalformedToken), the same vector with one MAC bit flipped stops at it (InvalidSignature).
    with pytest.raises(gateway.MalformedToken) as info:
        _verify(jws, key, alg, secret)
    assert_no_leak(info.value, jws, secret)
    h, p, s = jws.split(".")
    bad = bytearray(b64d(s))
    bad[0] ^= 0x01
    tampered = f"{h}.{p}.{b64e(bytes(bad))}"
    with pytest.raises(gateway.InvalidSignature) as info:
        _verify(tampered, key, alg, secret)
    assert_no_leak(info.value, tampered, secret)


@pytest.mark.parametrize(
    ("jwk", "case"), [c for c in JWS_CASES if c.values[1]["result"] == "valid" and c.values[1]["tcId"] not in CONTRACT_OUTCOME]
)
def test_jws_vector_key_and_header_sign_claims(jwk: dict[str, Any], case: dict[str, Any]) -> None:
    """The vector's own header text (spaces, newlines, kid) with a JSON-object payload signed by its key."""
    h = case["jws"].split(".")[0]
    claims = {"wycheproof": case["tcId"], "sub": "vector"}
    p = b64e(dumps(claims))
    secret = _secret(jwk)
    token = f"{h}.{p}.{b64e(mac(secret, f'{h}.{p}', jwk['alg']))}"
    for key in _key_forms(jwk).values():
        assert _verify(token, key, jwk["alg"], secret) == claims


# --- HMAC -----------------------------------------------------------------------------------------
#
# A Wycheproof MacTest case is (key, msg, tag, tagSize, result). `msg` is arbitrary bytes and cannot be
# a JWS signing input, so each case is carried over to a JWS made with the case's key:
#   signing input SI = b64url({"alg":A,"typ":"JWT"}) "." b64url({"wycheproof":..., "msg": hex(msg)})
#   signature       = HMAC(key, SI)[:tagSize] XOR (tag XOR HMAC(key, msg)[:tagSize])
# i.e. the correct MAC of SI, truncated like the vector's and with exactly the vector's bit errors.
#   * tagSize == hash size, valid   -> verify returns the claims
#   * tagSize == hash size, invalid -> InvalidSignature (same bits flipped as in the vector)
#   * tagSize <  hash size          -> InvalidSignature (a truncated MAC has the wrong length), whereas
#                                      the untruncated MAC of the same SI is accepted
# Keys shorter than the hash output need allow_weak_key=True and are refused (ValueError) without it.

HMAC_FILES = {"HS256": "hmac_sha256_test.json", "HS384": "hmac_sha384_test.json", "HS512": "hmac_sha512_test.json"}
HMAC = {alg: load(name) for alg, name in HMAC_FILES.items()}


def _hmac_cases() -> list[Any]:
    cases = []
    for alg, data in HMAC.items():
        assert data["algorithm"] == "HMACSHA" + alg[2:]
        for group in data["testGroups"]:
            for case in group["tests"]:
                cases.append(
                    pytest.param(alg, group["tagSize"], case, id=f"{alg}-tag{group['tagSize']}-tc{case['tcId']}")
                )
    return cases


HMAC_CASES = _hmac_cases()


def test_all_hmac_vectors_were_loaded() -> None:
    for alg, data in HMAC.items():
        assert sum(len(g["tests"]) for g in data["testGroups"]) == data["numberOfTests"] == 174, alg
    assert len(HMAC_CASES) == 3 * 174


@pytest.mark.parametrize(("alg", "tag_bits", "case"), HMAC_CASES)
def test_hmac_vector_reading(alg: str, tag_bits: int, case: dict[str, Any]) -> None:
    """The vectors are read correctly: Python's HMAC agrees with each label."""
    key, msg, tag = (bytes.fromhex(case[k]) for k in ("key", "msg", "tag"))
    ref = hmac.new(key, msg, HASHES[alg]).digest()[: tag_bits // 8]
    assert (hmac.compare_digest(ref, tag)) == (case["result"] == "valid")


@pytest.mark.parametrize(("alg", "tag_bits", "case"), HMAC_CASES)
def test_hmac_vector_through_jws(alg: str, tag_bits: int, case: dict[str, Any]) -> None:
    key, msg, tag = (bytes.fromhex(case[k]) for k in ("key", "msg", "tag"))
    t = tag_bits // 8
    assert len(tag) == t
    ref = hmac.new(key, msg, HASHES[alg]).digest()[:t]
    delta = bytes(a ^ b for a, b in zip(tag, ref))

    claims = {"wycheproof": f"{HMAC_FILES[alg]}#{case['tcId']}", "msg": case["msg"]}
    h = b64e(dumps({"alg": alg, "typ": "JWT"}))
    p = b64e(dumps(claims))
    full = mac(key, f"{h}.{p}", alg)
    sig = bytes(a ^ b for a, b in zip(full[:t], delta))
    token = f"{h}.{p}.{b64e(sig)}"
    weak = len(key) < HASH_BYTES[alg]

    def verify(tok: str) -> dict:
        return gateway.verify(tok, key, algorithms=[alg], now=NOW, allow_weak_key=weak)

    if t == HASH_BYTES[alg] and case["result"] == "valid":
        assert verify(token) == claims
    else:
        with pytest.raises(gateway.InvalidSignature) as info:
            verify(token)
        assert_no_leak(info.value, token, key)
        if t < HASH_BYTES[alg]:
            assert verify(f"{h}.{p}.{b64e(full)}") == claims

    if weak:
        config_error(gateway.verify, f"{h}.{p}.{b64e(full)}", key, algorithms=[alg], now=NOW)
        config_error(gateway.Verifier, key, algorithms=[alg])


def test_hmac_key_longer_than_block_is_hashed_first() -> None:
    """65-byte keys exceed SHA-256's 64-byte block: HMAC hashes them first (RFC 2104). Sanity check that
    such vectors exist in the set, so the parametrized test above exercises that path."""
    long_keys = [c for c in HMAC_CASES if c.values[0] == "HS256" and len(c.values[2]["key"]) // 2 > 64]
    assert long_keys
