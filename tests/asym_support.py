"""Keys and independent token makers for the asymmetric JWT tests (issue 10).

Keys are made here with `cryptography` (pyca, a well-kept OpenSSL binding) and tokens, where a
test needs a token the gateway did not make, with PyJWT + cryptography or by hand from the
primitives, so the verifier is never only tested against itself. RSA key generation is slow on a
shared machine: each kind of key is made once per test session (``keypair``).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import gateway
import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

NOW = 1_700_000_000

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"]

# Which key each algorithm needs (RFC 7518 §3.3-3.5, RFC 8037 §3.1).
KIND_OF = {
    "RS256": "rsa",
    "RS384": "rsa",
    "RS512": "rsa",
    "PS256": "rsa",
    "PS384": "rsa",
    "PS512": "rsa",
    "ES256": "p256",
    "ES384": "p384",
    "ES512": "p521",
    "EdDSA": "ed25519",
}
CURVES = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}
EC_SIZE = {"ES256": 32, "ES384": 48, "ES512": 66}
HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True)
class KeyPair:
    kind: str
    private: Any  # a cryptography private key object

    @property
    def public(self) -> Any:
        return self.private.public_key()

    @property
    def public_pem(self) -> bytes:
        return self.public.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)

    @property
    def public_der(self) -> bytes:
        return self.public.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)

    @property
    def private_pem(self) -> bytes:
        return self.private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())

    def public_jwk(self, **extra: Any) -> dict[str, Any]:
        jwk = json.loads(_pyjwt_alg(self.kind).to_jwk(self.public))
        jwk.update(extra)
        return jwk

    def private_jwk(self, **extra: Any) -> dict[str, Any]:
        jwk = json.loads(_pyjwt_alg(self.kind).to_jwk(self.private))
        jwk.update(extra)
        return jwk

    def material(self) -> list[str]:
        """The base64url public (and private) numbers, to prove they never appear in text."""
        out = []
        for jwk in (self.public_jwk(), self.private_jwk()):
            out += [v for k, v in jwk.items() if k in ("n", "x", "y", "d", "p", "q", "dp", "dq", "qi")]
        return out


def _pyjwt_alg(kind: str) -> Any:
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

    return {"rsa": RSAAlgorithm, "ed25519": OKPAlgorithm}.get(kind, ECAlgorithm)


def _generate(kind: str, bits: int = 2048) -> Any:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(CURVES[kind]())


def keypair(kind: str, n: int = 0, bits: int = 2048) -> KeyPair:
    """The n-th key of a kind ("rsa", "p256", "p384", "p521", "ed25519"), made once per session."""
    return _keypair(kind, n, bits)  # one cache key however the arguments are spelled


@functools.cache
def _keypair(kind: str, n: int, bits: int) -> KeyPair:
    return KeyPair(kind, _generate(kind, bits))


def key_for(alg: str, n: int = 0) -> KeyPair:
    return keypair(KIND_OF[alg], n)


def pyjwt_encode(claims: dict[str, Any], alg: str, pair: KeyPair, headers: dict[str, Any] | None = None) -> str:
    return pyjwt.encode(claims, pair.private, algorithm=alg, headers=headers)


def pyjwt_decode(token: str, alg: str, pair: KeyPair, **kw: Any) -> dict[str, Any]:
    return pyjwt.decode(token, pair.public, algorithms=[alg], options={"verify_aud": False}, **kw)


def raw_sign(alg: str, private: Any, signing_input: bytes) -> bytes:
    """The JWS signature (RFC 7518 §3) of ``signing_input``, made with cryptography directly."""
    if alg == "EdDSA":
        return private.sign(signing_input)
    h = HASH[alg[2:]]()
    if alg.startswith("RS"):
        return private.sign(signing_input, padding.PKCS1v15(), h)
    if alg.startswith("PS"):
        return private.sign(signing_input, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(h)))
    size = EC_SIZE[alg]
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def der_signature(p1363: bytes) -> bytes:
    """The ASN.1 DER form of an ECDSA ``r || s`` signature (what JWS forbids, RFC 7518 §3.4)."""
    half = len(p1363) // 2
    return encode_dss_signature(int.from_bytes(p1363[:half], "big"), int.from_bytes(p1363[half:], "big"))


def make_token(alg: str, private: Any, claims: Any = None, header: Any = None, raw_header: bytes | None = None) -> str:
    """A compact JWS over exactly these header/claims bytes, signed with cryptography."""
    if raw_header is None:
        raw_header = dumps(header if header is not None else {"alg": alg, "typ": "JWT"})
    h, p = b64e(raw_header), b64e(dumps({} if claims is None else claims))
    return f"{h}.{p}.{b64e(raw_sign(alg, private, f'{h}.{p}'.encode()))}"


def assert_no_material(text: str, *pairs: KeyPair) -> None:
    """No public or private number of these keys (nor a 16-character piece of one) is in ``text``."""
    for pair in pairs:
        for value in pair.material():
            for i in range(0, max(1, len(value) - 15), 8):
                piece = value[i : i + 16]
                assert piece not in text, f"key material {piece!r} appears in {text[:200]!r}"
    # a PEM body line or a long base64 run would be material too
    runs = re.findall(r"[A-Za-z0-9+/_-]{40,}", text)
    assert not runs, f"a long base64 run appears in {text[:200]!r}: {runs}"
