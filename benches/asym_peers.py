"""JWT verification peers with public keys (RS256, ES256, EdDSA) for the issue-10 micro-benchmark.

The asymmetric counterpart of ``benches/jwt_peers.py`` (HS256, issue 2), in the same shape: one
*prepared* adapter per library, ``verify(token) -> claims``, for the same configuration per
algorithm: one public key (RSA-2048 e=65537, P-256, Ed25519), the algorithm pinned, ``iss`` and
``aud`` checked, ``exp`` against the wall clock, no leeway. Key objects, verifier instances and claim
registries are built once, outside the timed call, as a service does at start-up ("key object
prepared once", the issue's own condition for PyJWT).

    gateway.Verifier  gateway.Verifier(KeySet.from_pem(pem, kid), [alg], audience, issuer).verify
                      (cache_size=0: every call verifies the signature)
    gateway.verify    gateway.verify(tok, keyset, [alg], AUD, ISS) (one-shot; the KeySet prepared once)
    PyJWT             jwt.decode with a `cryptography` public-key object or a PyJWK (the faster of the
                      module function and a PyJWT() instance, chosen by a short calibration)
    joserfc           jwt.decode(tok, RSAKey/ECKey/OKPKey, algorithms=[alg]) + JWTClaimsRegistry.validate
    authlib           JsonWebToken([alg]).decode(tok, key, claims_options) + claims.validate()
    jwcrypto          jwt.JWT(jwt=tok, key=JWK, algs=[alg], check_claims={iss, aud, exp}) + json.loads
    oxyjwt            oxyjwt.decode(tok, DecodingKey.from_*_pem(pem), ...) or with the PEM (faster one)
    ryjwt             only installs on Python >= 3.12; listed as skipped with the reason otherwise

A peer that cannot be imported, or that has no API for an algorithm, is kept with ``skipped`` set to
the reason, never dropped. ``check_peer`` proves an adapter right before it is timed: the good token
returns the claims; a flipped signature bit, a token signed by another key of the same type, an
expired token, malformed tokens, a wrong issuer, a wrong audience and an HS256 token whose "secret"
is the public key's PEM (algorithm confusion) all raise.

The tokens are made here with `cryptography`'s primitives (no peer's JWT encoder), so every peer
sees byte-identical tokens. ``raw_cases`` gives the same keys, signing inputs and signatures to the
Rust raw-verify floor (benches/crypto_choice/src/bin/raw_verify.rs).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt_peers as jp
from jwt_peers import Peer, _fastest, _version, b64url

ISS = jp.ISS
AUD = jp.AUD
KID = "bench-key-1"


def _gateway_version() -> str:
    """The installed distribution's version, or where the package comes from when it is not installed
    (a worktree's venv puts python/ on sys.path instead)."""
    v = _version("gateway")
    return v if v != "?" else "source tree"

ALGORITHMS = ("RS256", "ES256", "EdDSA")
# Correctness-only tokens each adapter must reject (besides the timed scenarios' bad ones).
SCENARIOS = ("success", "bad-signature", "expired", "malformed", "malformed-short")
EXTRA = ("other-key", "wrong-iss", "wrong-aud", "hs256-public-key-as-secret")


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class KeyMaterial:
    alg: str
    private: Any  # a `cryptography` private key
    public: Any  # its public key object
    pem: bytes  # SPKI public key PEM
    jwk: dict[str, Any]  # the public JWK (with kid, alg, use)
    raw: bytes  # the public key in the form aws-lc-rs parses (PKCS#1 DER / SEC1 point / 32 bytes)

    def sign(self, signing_input: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        if self.alg == "RS256":
            return self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        if self.alg == "ES256":
            r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS r || s (RFC 7518 §3.4)
        if self.alg == "EdDSA":
            return self.private.sign(signing_input)
        raise ValueError(self.alg)


def make_key(alg: str) -> KeyMaterial:
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    def b64int(n: int, size: int | None = None) -> str:
        return b64url(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))

    if alg == "RS256":
        priv: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = priv.public_key()
        nums = pub.public_numbers()
        jwk = {"kty": "RSA", "n": b64int(nums.n), "e": b64int(nums.e)}
        raw = pub.public_bytes(ser.Encoding.DER, ser.PublicFormat.PKCS1)
    elif alg == "ES256":
        priv = ec.generate_private_key(ec.SECP256R1())
        pub = priv.public_key()
        nums = pub.public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": b64int(nums.x, 32), "y": b64int(nums.y, 32)}
        raw = pub.public_bytes(ser.Encoding.X962, ser.PublicFormat.UncompressedPoint)
    elif alg == "EdDSA":
        priv = ed25519.Ed25519PrivateKey.generate()
        pub = priv.public_key()
        raw = pub.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    else:
        raise ValueError(alg)
    pem = pub.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    jwk.update(kid=KID, alg=alg, use="sig")
    return KeyMaterial(alg, priv, pub, pem, jwk, raw)


@dataclass(frozen=True)
class AsymTokenSet:
    alg: str
    key: KeyMaterial
    claims: dict[str, Any]
    tokens: dict[str, str]  # scenario -> token
    extra: dict[str, str]  # correctness-only tokens

    @property
    def algs(self) -> list[str]:
        return [self.alg]


def _sign(km: KeyMaterial, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = b64url(_json(header)) + "." + b64url(_json(claims))
    return signing_input + "." + b64url(km.sign(signing_input.encode("ascii")))


def _flip_signature_bit(token: str) -> str:
    """The same token with one bit of the signature's middle byte flipped (right length, wrong value)."""
    import base64

    h, p, s = token.split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    sig[len(sig) // 2] ^= 0x01
    return f"{h}.{p}.{b64url(bytes(sig))}"


def make_tokens(alg: str, now: int | None = None) -> AsymTokenSet:
    km = make_key(alg)
    other = make_key(alg)
    now = int(time.time()) if now is None else now
    header = {"alg": alg, "typ": "JWT", "kid": KID}
    claims = {
        "sub": "user-48213",
        "iss": ISS,
        "aud": AUD,
        "iat": now,
        "exp": now + 3600,
        "roles": ["reader", "writer"],
    }
    good = _sign(km, header, claims)
    _h, p, s = good.split(".")
    tokens = {
        "success": good,
        "bad-signature": _flip_signature_bit(good),
        "expired": _sign(km, header, dict(claims, iat=now - 7200, exp=now - 3600)),
        "malformed": b64url(b"this is not JSON") + "." + p + "." + s,
        "malformed-short": "abc.def",
    }
    hs_header = b64url(_json({"alg": "HS256", "typ": "JWT", "kid": KID})) + "." + p
    confused = hs_header + "." + b64url(hmac.new(km.pem, hs_header.encode(), hashlib.sha256).digest())
    extra = {
        "other-key": _sign(other, header, claims),
        "wrong-iss": _sign(km, header, dict(claims, iss="https://evil.example.com")),
        "wrong-aud": _sign(km, header, dict(claims, aud="billing-api")),
        "hs256-public-key-as-secret": confused,
    }
    return AsymTokenSet(alg, km, claims, tokens, extra)


def raw_cases(sets: list[AsymTokenSet]) -> str:
    """Lines for raw_verify: ``ALG KEY_HEX SIGNING_INPUT_HEX SIGNATURE_HEX`` from each set's good token."""
    import base64

    out = []
    for ts in sets:
        h, p, s = ts.tokens["success"].split(".")
        sig = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        out.append(f"{ts.alg} {ts.key.raw.hex()} {f'{h}.{p}'.encode().hex()} {sig.hex()}")
    return "\n".join(out) + "\n"


# --- adapters ---------------------------------------------------------------------------------


def _gateway_keyset(ts: AsymTokenSet) -> Any:
    import gateway

    return gateway.KeySet.from_pem(ts.key.pem, kid=KID, algorithm=ts.alg)


def _gateway_verifier(ts: AsymTokenSet, cache_size: int = 0) -> Peer:
    import gateway

    v = gateway.Verifier(_gateway_keyset(ts), ts.algs, audience=AUD, issuer=ISS, cache_size=cache_size)
    name = "gateway.Verifier" if cache_size == 0 else "gateway.Verifier+cache"
    return Peer(
        name,
        v.verify,
        f"gateway.Verifier(KeySet.from_pem(pem, kid, alg), [{ts.alg!r}], audience, issuer, "
        f"cache_size={cache_size}).verify",
        _gateway_version(),
        exc_base=(gateway.JWTError,),
    )


def _gateway_verify(ts: AsymTokenSet) -> Peer:
    import gateway

    gverify = gateway.verify
    keys = _gateway_keyset(ts)
    algs = ts.algs

    def f(tok: str) -> Any:
        return gverify(tok, keys, algs, AUD, ISS)

    return Peer(
        "gateway.verify",
        f,
        f"gateway.verify(tok, keyset, [{ts.alg!r}], AUD, ISS) (one-shot; KeySet.from_pem made once)",
        _gateway_version(),
        exc_base=(gateway.JWTError,),
    )


def _pyjwt(ts: AsymTokenSet) -> Peer:
    import jwt

    key = ts.key.public  # the `cryptography` key object, prepared once
    jwk = jwt.PyJWK(ts.key.jwk, algorithm=ts.alg)
    inst = jwt.PyJWT()
    algs = ts.algs
    mod_decode = jwt.decode
    inst_decode = inst.decode

    def module_obj(tok: str) -> Any:
        return mod_decode(tok, key, algorithms=algs, audience=AUD, issuer=ISS)

    def instance_obj(tok: str) -> Any:
        return inst_decode(tok, key, algorithms=algs, audience=AUD, issuer=ISS)

    def module_jwk(tok: str) -> Any:
        return mod_decode(tok, jwk, algorithms=algs, audience=AUD, issuer=ISS)

    usage, f = _fastest(
        [
            ("jwt.decode(tok, cryptography public key object, algorithms, audience, issuer)", module_obj),
            ("jwt.PyJWT() instance .decode(tok, cryptography public key object, ...)", instance_obj),
            ("jwt.decode(tok, PyJWK(jwk), ...)", module_jwk),
        ],
        ts.tokens["success"],
    )
    return Peer("PyJWT", f, usage, _version("PyJWT"), exc_base=(jwt.PyJWTError,))


def _joserfc(ts: AsymTokenSet) -> Peer:
    from joserfc import jwk as jjwk
    from joserfc import jwt
    from joserfc.errors import JoseError, SecurityWarning

    cls = {"RS256": jjwk.RSAKey, "ES256": jjwk.ECKey, "EdDSA": jjwk.OKPKey}[ts.alg]
    key = cls.import_key(ts.key.pem)
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISS},
        aud={"essential": True, "value": AUD},
        exp={"essential": True},
    )
    decode = jwt.decode
    validate = registry.validate
    algs = ts.algs

    # joserfc warns on every EdDSA decode ("deprecated via RFC 9864", in favour of Ed25519); silenced
    # once here rather than per call, so the timed call carries none of our own overhead.
    warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

    def f(tok: str) -> Any:
        t = decode(tok, key, algorithms=algs)
        validate(t.claims)
        return t.claims

    return Peer(
        "joserfc",
        f,
        f"jwt.decode(tok, {cls.__name__}.import_key(pem), algorithms=[{ts.alg!r}]) + "
        "JWTClaimsRegistry(iss, aud, exp).validate",
        _version("joserfc"),
        exc_base=(JoseError,),
    )


def _authlib(ts: AsymTokenSet) -> Peer:
    import authlib.deprecate  # noqa: F401 - installs an "always" filter on import; let ours win

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # authlib.jose is deprecated in favour of joserfc
        from authlib.jose import ECKey, JsonWebToken, OKPKey, RSAKey
        from authlib.jose.errors import JoseError

    cls = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}[ts.alg]
    jwt = JsonWebToken(ts.algs)
    key = cls.import_key(ts.key.pem)
    options = {"iss": {"essential": True, "value": ISS}, "aud": {"essential": True, "value": AUD}}
    decode = jwt.decode

    def f(tok: str) -> Any:
        claims = decode(tok, key, claims_options=options)
        claims.validate()
        return claims

    return Peer(
        "authlib",
        f,
        f"JsonWebToken([{ts.alg!r}]).decode(tok, {cls.__name__}.import_key(pem), claims_options) + .validate()",
        _version("Authlib"),
        exc_base=(JoseError,),
    )


def _jwcrypto(ts: AsymTokenSet) -> Peer:
    from jwcrypto import jwk, jwt
    from jwcrypto.common import JWException

    key = jwk.JWK.from_pem(ts.key.pem)
    algs = ts.algs
    check = {"iss": ISS, "aud": AUD, "exp": None}
    JWT = jwt.JWT
    loads = json.loads

    def f(tok: str) -> Any:
        return loads(JWT(jwt=tok, key=key, algs=algs, check_claims=check).claims)

    return Peer(
        "jwcrypto",
        f,
        f"json.loads(jwt.JWT(jwt=tok, key=JWK.from_pem(pem), algs=[{ts.alg!r}], "
        "check_claims={iss, aud, exp}).claims)",
        _version("jwcrypto"),
        exc_base=(JWException, ValueError),
    )


def _oxyjwt(ts: AsymTokenSet) -> Peer:
    import oxyjwt

    ctor = {"RS256": oxyjwt.DecodingKey.from_rsa_pem, "ES256": oxyjwt.DecodingKey.from_ec_pem,
            "EdDSA": oxyjwt.DecodingKey.from_ed_pem}[ts.alg]
    dkey = ctor(ts.key.pem)
    pem = ts.key.pem
    algs = ts.algs
    mod_decode = oxyjwt.decode

    def module_dkey(tok: str) -> Any:
        return mod_decode(tok, dkey, algorithms=algs, audience=AUD, issuer=ISS)

    def module_pem(tok: str) -> Any:
        return mod_decode(tok, pem, algorithms=algs, audience=AUD, issuer=ISS)

    candidates = [(f"oxyjwt.decode(tok, DecodingKey.{ctor.__name__}(pem), algorithms, audience, issuer)",
                   module_dkey)]
    try:
        module_pem(ts.tokens["success"])
        candidates.append(("oxyjwt.decode(tok, pem_bytes, algorithms, audience, issuer)", module_pem))
    except Exception:  # noqa: BLE001 - PEM bytes not accepted for this algorithm: the DecodingKey only
        pass
    usage, f = _fastest(candidates, ts.tokens["success"])
    return Peer("oxyjwt", f, usage, _version("oxyjwt"), exc_base=(oxyjwt.PyJWTError,))


def _ryjwt(ts: AsymTokenSet) -> Peer:
    import ryjwt  # noqa: F401 - Python >= 3.12 only; not reached on 3.11 (ImportError -> skipped)

    # Not exercised here (no Python >= 3.12 with the gateway's extension on this machine): say so
    # rather than time an adapter that was never checked against the real API.
    raise ImportError("ryjwt imported but no asymmetric adapter written for its API yet")


ADAPTERS: list[tuple[str, str, Callable[[AsymTokenSet], Peer]]] = [
    ("gateway.Verifier", "gateway", _gateway_verifier),
    ("gateway.verify", "gateway", _gateway_verify),
    ("PyJWT", "PyJWT", _pyjwt),
    ("joserfc", "joserfc", _joserfc),
    ("authlib", "Authlib", _authlib),
    ("jwcrypto", "jwcrypto", _jwcrypto),
    ("oxyjwt", "oxyjwt", _oxyjwt),
    ("ryjwt", "ryjwt", _ryjwt),
]
PEER_NAMES = [a[0] for a in ADAPTERS]
BASELINE = "gateway.Verifier"


def build_peer(name: str, ts: AsymTokenSet) -> Peer:
    for n, dist, factory in ADAPTERS:
        if n == name:
            try:
                return factory(ts)
            except ImportError as e:
                reason = f"not importable ({type(e).__name__}: {e})"
                if name == "ryjwt":
                    import sys

                    reason += f"; ryjwt requires Python >= 3.12, this is {sys.version.split()[0]}"
                return Peer(name, version=_version(dist), skipped=reason)
            except (AttributeError, KeyError, NotImplementedError) as e:
                return Peer(name, version=_version(dist), skipped=f"no API for {ts.alg} ({type(e).__name__}: {e})")
    raise KeyError(name)


def check_peer(peer: Peer, ts: AsymTokenSet) -> None:
    """Raise AssertionError unless the adapter accepts the good token and rejects every bad one.

    Records the exception class seen per bad token in ``peer.raised``.
    """
    assert peer.verify is not None, f"{peer.name} is skipped: {peer.skipped}"
    got = peer.verify(ts.tokens["success"])
    assert isinstance(got, dict), f"{peer.name}: success returned {type(got).__name__}, not a dict"
    assert dict(got) == ts.claims, f"{peer.name}: success returned {dict(got)!r}, expected {ts.claims!r}"
    must_fail = [(s, ts.tokens[s]) for s in SCENARIOS if s != "success"] + list(ts.extra.items())
    for scenario, tok in must_fail:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = peer.verify(tok)
        except Exception as e:  # noqa: BLE001 - any exception of the library counts as a rejection
            cls = type(e)
            foreign = "" if (not peer.exc_base or isinstance(e, peer.exc_base)) else " (not a library error)"
            peer.raised[scenario] = f"{cls.__module__.split('.')[0]}.{cls.__name__}{foreign}"
        else:
            raise AssertionError(f"{peer.name}: {scenario} token was accepted: {out!r}")


def package_versions() -> dict[str, str]:
    dists = ["PyJWT", "cryptography", "joserfc", "Authlib", "jwcrypto", "oxyjwt", "ryjwt"]
    return {"gateway": _gateway_version(), **{d: _version(d) for d in dists}}
