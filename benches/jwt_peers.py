"""JWT HS256 verification peers for the issue-2 micro-benchmarks.

One adapter per library. Each adapter is a *prepared* callable ``verify(token) -> claims`` for the
same configuration: HS256 only, one 32-byte random secret, ``iss`` and ``aud`` checked, ``exp``
checked against the wall clock, no leeway. Keys, key objects, verifier instances and claim
registries are built once, outside the timed call, as a service would at start-up.

    gateway.Verifier  gateway.Verifier(key, ["HS256"], audience=AUD, issuer=ISS).verify
    gateway.verify    gateway.verify(tok, key, ["HS256"], AUD, ISS)
    PyJWT             jwt.decode / jwt.PyJWT().decode, str key or PyJWK (the fastest of these
                      on this machine, chosen by a short calibration; see ``Peer.usage``)
    oxyjwt            oxyjwt.decode / oxyjwt.PyJWT().decode, bytes key or DecodingKey (fastest)
    joserfc           jwt.decode(tok, OctKey, algorithms=["HS256"]) + JWTClaimsRegistry.validate
    authlib           JsonWebToken(["HS256"]).decode(tok, OctKey, claims_options) + .validate()
    ryjwt             a prepared ryjwt key object (only installs on Python >= 3.12)

A peer that cannot be imported is kept with ``skipped`` set to the reason, never dropped.
``check_peer`` proves an adapter right once before it is timed: the good token returns the claims,
and a bad signature, an expired token, malformed tokens, a wrong issuer and a wrong audience raise.

Only the standard library is needed to build the tokens, so every peer sees byte-identical tokens
that no peer's encoder produced.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.metadata
import json
import os
import time
import timeit
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ALG = "HS256"
ALGS = [ALG]
ISS = "https://auth.example.com"
AUD = "orders-api"

# Timed scenarios, in table order. "malformed" is a three-part token whose header is valid base64url
# but not JSON (the signature and payload are those of the good token); "malformed-short" is 'abc.def'.
SCENARIOS = ("success", "bad-signature", "expired", "malformed", "malformed-short")

# Scenarios where gateway.Verifier must be >= 40x faster than PyJWT.
PYJWT_40X_SCENARIOS = ("success", "bad-signature", "expired")

# The 16 base64url characters that can end a 43-character (32-byte) MAC with canonical (zero)
# trailing bits; swapping one for another gives a different, still strictly valid, signature.
_CANONICAL_LAST = "AEIMQUYcgkosw048"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def sign_hs256(header: dict[str, Any] | bytes, payload: dict[str, Any], secret: bytes) -> str:
    h = header if isinstance(header, bytes) else _json(header)
    signing_input = b64url(h) + "." + b64url(_json(payload))
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


@dataclass(frozen=True)
class TokenSet:
    secret: bytes
    claims: dict[str, Any]  # the claims of the good token
    tokens: dict[str, str]  # scenario -> token (the timed ones)
    extra: dict[str, str]  # correctness-only tokens: wrong-iss, wrong-aud


def make_tokens(secret: bytes | None = None, now: int | None = None) -> TokenSet:
    secret = os.urandom(32) if secret is None else secret
    now = int(time.time()) if now is None else now
    header = {"alg": ALG, "typ": "JWT"}
    claims = {
        "sub": "user-48213",
        "iss": ISS,
        "aud": AUD,
        "iat": now,
        "exp": now + 3600,
        "roles": ["reader", "writer"],
    }
    good = sign_hs256(header, claims, secret)

    last = good[-1]
    assert last in _CANONICAL_LAST, "a 32-byte MAC always ends in a canonical base64url character"
    swapped = _CANONICAL_LAST[(_CANONICAL_LAST.index(last) + 1) % len(_CANONICAL_LAST)]
    bad_sig = good[:-1] + swapped

    expired_claims = dict(claims, iat=now - 7200, exp=now - 3600)
    expired = sign_hs256(header, expired_claims, secret)

    _h, p, s = good.split(".")
    not_json_header = b64url(b"this is not JSON") + "." + p + "." + s

    tokens = {
        "success": good,
        "bad-signature": bad_sig,
        "expired": expired,
        "malformed": not_json_header,
        "malformed-short": "abc.def",
    }
    extra = {
        "wrong-iss": sign_hs256(header, dict(claims, iss="https://evil.example.com"), secret),
        "wrong-aud": sign_hs256(header, dict(claims, aud="billing-api"), secret),
    }
    return TokenSet(secret=secret, claims=claims, tokens=tokens, extra=extra)


@dataclass
class Peer:
    name: str
    verify: Callable[[str], Any] | None = None
    usage: str = ""
    version: str = ""
    skipped: str | None = None  # reason, when the peer cannot be used here
    exc_base: tuple[type[BaseException], ...] = ()
    raised: dict[str, str] = field(default_factory=dict)  # scenario -> exception class seen in check
    failed_check: str | None = None


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _quick_cost(f: Callable[[str], Any], token: str, number: int = 1000, repeat: int = 3) -> float:
    """Best seconds per call over a few short repeats; used only to choose among usages of one library."""
    f(token)
    t = timeit.Timer("f(tok)", globals={"f": f, "tok": token})
    return min(t.repeat(repeat=repeat, number=number)) / number


def _fastest(candidates: list[tuple[str, Callable[[str], Any]]], token: str) -> tuple[str, Callable[[str], Any]]:
    if len(candidates) == 1:
        return candidates[0]
    return min(candidates, key=lambda c: _quick_cost(c[1], token))


# --- adapters ---------------------------------------------------------------------------------


def _gateway_verifier(ts: TokenSet) -> Peer:
    import gateway

    v = gateway.Verifier(ts.secret, ALGS, audience=AUD, issuer=ISS)
    return Peer(
        "gateway.Verifier",
        v.verify,
        'gateway.Verifier(key, ["HS256"], audience=AUD, issuer=ISS).verify (bound method)',
        _version("gateway"),
        exc_base=(gateway.JWTError,),
    )


def _gateway_verify(ts: TokenSet) -> Peer:
    import gateway

    gverify = gateway.verify
    key = ts.secret

    def f(tok: str) -> Any:
        return gverify(tok, key, ALGS, AUD, ISS)

    return Peer(
        "gateway.verify",
        f,
        'gateway.verify(tok, key, ["HS256"], AUD, ISS) (one-shot, key and options per call)',
        _version("gateway"),
        exc_base=(gateway.JWTError,),
    )


def _pyjwt(ts: TokenSet) -> Peer:
    import jwt

    key = ts.secret
    inst = jwt.PyJWT()
    jwk = jwt.PyJWK({"kty": "oct", "k": b64url(key)}, algorithm=ALG)
    mod_decode = jwt.decode
    inst_decode = inst.decode

    def module_bytes(tok: str) -> Any:
        return mod_decode(tok, key, algorithms=ALGS, audience=AUD, issuer=ISS)

    def instance_bytes(tok: str) -> Any:
        return inst_decode(tok, key, algorithms=ALGS, audience=AUD, issuer=ISS)

    def module_jwk(tok: str) -> Any:
        return mod_decode(tok, jwk, algorithms=ALGS, audience=AUD, issuer=ISS)

    def instance_jwk(tok: str) -> Any:
        return inst_decode(tok, jwk, algorithms=ALGS, audience=AUD, issuer=ISS)

    usage, f = _fastest(
        [
            ("jwt.decode(tok, key_bytes, algorithms, audience, issuer)", module_bytes),
            ("jwt.PyJWT() instance .decode(tok, key_bytes, ...)", instance_bytes),
            ("jwt.decode(tok, PyJWK(oct), ...)", module_jwk),
            ("jwt.PyJWT() instance .decode(tok, PyJWK(oct), ...)", instance_jwk),
        ],
        ts.tokens["success"],
    )
    return Peer("PyJWT", f, usage, _version("PyJWT"), exc_base=(jwt.PyJWTError,))


def _oxyjwt(ts: TokenSet) -> Peer:
    import oxyjwt

    key = ts.secret
    dkey = oxyjwt.DecodingKey.from_secret(key)
    inst = oxyjwt.PyJWT()
    mod_decode = oxyjwt.decode
    inst_decode = inst.decode

    def module_bytes(tok: str) -> Any:
        return mod_decode(tok, key, algorithms=ALGS, audience=AUD, issuer=ISS)

    def module_dkey(tok: str) -> Any:
        return mod_decode(tok, dkey, algorithms=ALGS, audience=AUD, issuer=ISS)

    def instance_dkey(tok: str) -> Any:
        return inst_decode(tok, dkey, algorithms=ALGS, audience=AUD, issuer=ISS)

    usage, f = _fastest(
        [
            ("oxyjwt.decode(tok, key_bytes, algorithms, audience, issuer)", module_bytes),
            ("oxyjwt.decode(tok, DecodingKey.from_secret(key), ...)", module_dkey),
            ("oxyjwt.PyJWT() instance .decode(tok, DecodingKey, ...)", instance_dkey),
        ],
        ts.tokens["success"],
    )
    return Peer("oxyjwt", f, usage, _version("oxyjwt"), exc_base=(oxyjwt.PyJWTError,))


def _joserfc(ts: TokenSet) -> Peer:
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import OctKey

    key = OctKey.import_key(ts.secret)
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISS},
        aud={"essential": True, "value": AUD},
        exp={"essential": True},
    )
    decode = jwt.decode
    validate = registry.validate

    def f(tok: str) -> Any:
        t = decode(tok, key, algorithms=ALGS)
        validate(t.claims)
        return t.claims

    return Peer(
        "joserfc",
        f,
        'jwt.decode(tok, OctKey, algorithms=["HS256"]) + JWTClaimsRegistry(iss, aud, exp).validate',
        _version("joserfc"),
        exc_base=(JoseError,),
    )


def _authlib(ts: TokenSet) -> Peer:
    import authlib.deprecate  # noqa: F401 - installs an "always" filter on import; let ours win

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # authlib.jose is deprecated in favour of joserfc
        from authlib.jose import JsonWebToken, OctKey
        from authlib.jose.errors import JoseError

    jwt = JsonWebToken(ALGS)
    key = OctKey.import_key(ts.secret)
    options = {"iss": {"essential": True, "value": ISS}, "aud": {"essential": True, "value": AUD}}
    decode = jwt.decode

    def f(tok: str) -> Any:
        claims = decode(tok, key, claims_options=options)
        claims.validate()
        return claims

    return Peer(
        "authlib",
        f,
        'JsonWebToken(["HS256"]).decode(tok, OctKey, claims_options={iss, aud}) + claims.validate()',
        _version("Authlib"),
        exc_base=(JoseError,),
    )


def _ryjwt(ts: TokenSet) -> Peer:
    import ryjwt

    base = getattr(ryjwt, "RYJWTError", Exception)
    # The API moved between releases: SecretKey(secret, algorithms, audience, issuer) in newer ones,
    # RYJWT(key, algorithms).decode(tok, audience=, issuer=) in older ones.
    if hasattr(ryjwt, "SecretKey"):
        try:
            k = ryjwt.SecretKey(ts.secret, algorithms=ALGS, audience=AUD, issuer=ISS)
            return Peer("ryjwt", k.decode, "ryjwt.SecretKey(secret, algorithms, audience, issuer).decode",
                        _version("ryjwt"), exc_base=(base,))
        except TypeError:
            k = ryjwt.SecretKey(ts.secret, algorithms=ALGS)
            kdecode = k.decode

            def f(tok: str) -> Any:
                return kdecode(tok, audience=AUD, issuer=ISS)

            return Peer("ryjwt", f, "ryjwt.SecretKey(secret, algorithms).decode(tok, audience=, issuer=)",
                        _version("ryjwt"), exc_base=(base,))
    r = ryjwt.RYJWT(ts.secret, algorithms=ALGS)
    rdecode = r.decode

    def g(tok: str) -> Any:
        return rdecode(tok, audience=AUD, issuer=ISS)

    return Peer("ryjwt", g, "ryjwt.RYJWT(secret, algorithms).decode(tok, audience=, issuer=)",
                _version("ryjwt"), exc_base=(base,))


ADAPTERS: list[tuple[str, str, Callable[[TokenSet], Peer]]] = [
    # (name, distribution, factory)
    ("gateway.Verifier", "gateway", _gateway_verifier),
    ("gateway.verify", "gateway", _gateway_verify),
    ("PyJWT", "PyJWT", _pyjwt),
    ("oxyjwt", "oxyjwt", _oxyjwt),
    ("joserfc", "joserfc", _joserfc),
    ("authlib", "Authlib", _authlib),
    ("ryjwt", "ryjwt", _ryjwt),
]
PEER_NAMES = [a[0] for a in ADAPTERS]
BASELINE = "gateway.Verifier"


def build_peer(name: str, ts: TokenSet) -> Peer:
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
            except AttributeError as e:  # e.g. gateway built without Verifier yet
                return Peer(name, version=_version(dist), skipped=f"API missing ({e})")
    raise KeyError(name)


def build_peers(ts: TokenSet) -> list[Peer]:
    return [build_peer(n, ts) for n in PEER_NAMES]


def check_peer(peer: Peer, ts: TokenSet) -> None:
    """Raise AssertionError unless the adapter accepts the good token and rejects every bad one.

    Records the exception class seen per scenario in ``peer.raised``.
    """
    assert peer.verify is not None, f"{peer.name} is skipped: {peer.skipped}"
    got = peer.verify(ts.tokens["success"])
    assert isinstance(got, dict), f"{peer.name}: success returned {type(got).__name__}, not a dict"
    assert dict(got) == ts.claims, f"{peer.name}: success returned {dict(got)!r}, expected {ts.claims!r}"
    must_fail = [(s, ts.tokens[s]) for s in SCENARIOS if s != "success"] + list(ts.extra.items())
    for scenario, tok in must_fail:
        try:
            out = peer.verify(tok)
        except Exception as e:  # noqa: BLE001 - any exception of the library counts as a rejection
            cls = type(e)
            foreign = "" if (not peer.exc_base or isinstance(e, peer.exc_base)) else " (not a library error)"
            peer.raised[scenario] = f"{cls.__module__.split('.')[0]}.{cls.__name__}{foreign}"
        else:
            raise AssertionError(f"{peer.name}: {scenario} token was accepted: {out!r}")


def checked_peers(ts: TokenSet) -> list[Peer]:
    """All peers, each either usable and checked, skipped with a reason, or marked failed_check."""
    peers = build_peers(ts)
    for p in peers:
        if p.skipped is None:
            try:
                check_peer(p, ts)
            except AssertionError as e:
                p.failed_check = str(e)
    return peers


def package_versions() -> dict[str, str]:
    dists = ["gateway", "PyJWT", "oxyjwt", "joserfc", "Authlib", "ryjwt", "cryptography", "orjson",
             "pytest-benchmark"]
    return {d: _version(d) for d in dists}
