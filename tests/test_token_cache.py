"""The verified-token cache of ``Verifier(..., cache_size=N)`` (issue 10).

Only fully verified tokens get in; only the identical token hits; ``exp``/``nbf``/``iat`` are
checked again against ``now`` on every hit; entries are bounded; an entry whose key left a
key-set source's set is dropped; the dict handed out is the caller's; threads share it safely.
"""

from __future__ import annotations

import threading
from typing import Any

import gateway
import pytest

from tests.asym_support import b64d, b64e, keypair, make_token
from tests.jwt_support import KEY, NOW, make


class Source:
    """A key-set source (what ``gateway.JWKSClient`` is to a Verifier): hands out its current set."""

    def __init__(self, keys: gateway.KeySet) -> None:
        self.keys = keys
        self.asked: list[str | None] = []
        self.lock = threading.Lock()

    def _gateway_key_set(self, unknown_kid: str | None) -> gateway.KeySet:
        with self.lock:
            self.asked.append(unknown_kid)
            return self.keys


def _es256_set(*kids: str, n0: int = 0) -> gateway.KeySet:
    return gateway.KeySet.from_jwks({"keys": [keypair("p256", n0 + i).public_jwk(kid=kid) for i, kid in enumerate(kids)]})


def _es256_token(claims: dict[str, Any], kid: str, n: int = 0) -> str:
    return make_token("ES256", keypair("p256", n).private, claims, header={"alg": "ES256", "kid": kid})


def _flip_sig(token: str) -> str:
    h, p, s = token.split(".")
    sig = bytearray(b64d(s))
    sig[0] ^= 0x80
    return f"{h}.{p}.{b64e(bytes(sig))}"


@pytest.fixture(params=["HS256", "ES256"])
def setup(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    """(verifier factory, token maker) for an HMAC and an asymmetric verifier."""
    if request.param == "HS256":
        return (lambda **kw: gateway.Verifier(KEY, algorithms=["HS256"], **kw)), (lambda claims: make(claims))
    pem = keypair("p256").public_pem
    return (lambda **kw: gateway.Verifier(pem, algorithms=["ES256"], **kw)), (
        lambda claims: make_token("ES256", keypair("p256").private, claims)
    )


def test_cache_is_off_by_default_and_counts_entries(setup: tuple[Any, Any]) -> None:
    new, tok = setup
    assert new().cache_len == 0
    v = new()
    v.verify(tok({"sub": "a"}), now=NOW)
    assert v.cache_len == 0
    v = new(cache_size=4)
    t = tok({"sub": "a"})
    assert v.verify(t, now=NOW) == {"sub": "a"}
    assert v.cache_len == 1
    assert v.verify(t, now=NOW) == {"sub": "a"}
    assert v.verify(t.encode(), now=NOW) == {"sub": "a"}, "bytes and str are the same token"
    assert v.cache_len == 1


def test_only_fully_verified_tokens_get_in(setup: tuple[Any, Any]) -> None:
    new, tok = setup
    v = new(cache_size=16, audience="api", issuer="https://idp.test/")
    good = {"aud": "api", "iss": "https://idp.test/", "exp": NOW + 60}
    refused = [
        (_flip_sig(tok(good)), gateway.InvalidSignature),
        (tok({**good, "exp": NOW - 1}), gateway.ExpiredToken),
        (tok({**good, "nbf": NOW + 60}), gateway.NotYetValid),
        (tok({**good, "aud": "other"}), gateway.InvalidAudience),
        (tok({**good, "iss": "https://evil.test/"}), gateway.InvalidIssuer),
        (tok({**good, "sub": 5}), gateway.MalformedToken),
    ]
    for token, error in refused:
        for _ in range(2):
            with pytest.raises(error):
                v.verify(token, now=NOW)
    assert v.cache_len == 0
    # The expired/nbf tokens have good signatures: at a time they are valid they verify (and get in).
    assert v.verify(refused[1][0], now=NOW - 10)["exp"] == NOW - 1
    assert v.cache_len == 1


def test_a_forged_token_never_hits_after_the_real_one_is_cached(setup: tuple[Any, Any]) -> None:
    new, tok = setup
    v = new(cache_size=16)
    real = tok({"sub": "alice", "admin": False})
    assert v.verify(real, now=NOW)["sub"] == "alice"
    h, p, s = real.split(".")
    forged_payload = b64e(b'{"sub":"alice","admin":true}')
    forgeries = [
        _flip_sig(real),
        f"{h}.{forged_payload}.{s}",  # the real signature on other claims
        f"{h}.{p}.{s[:-1]}",  # truncated signature
        f"{h}.{p}.{s}A",  # lengthened signature
        f"{h}.{p}.",  # no signature
        real + " ",
        " " + real,
        real + "\n",
        real.replace(".", "..", 1),
    ]
    for forged in forgeries:
        with pytest.raises(gateway.JWTError):
            v.verify(forged, now=NOW)
    assert v.cache_len == 1
    assert v.verify(real, now=NOW) == {"sub": "alice", "admin": False}


def test_non_canonical_signature_text_is_another_token() -> None:
    """The last base64url character of a signature has spare bits; a lenient decoder reads a token
    with them set as the same signature. Such text must not hit the cached entry, and is refused."""
    pem = keypair("rsa").public_pem
    v = gateway.Verifier(pem, algorithms=["RS256"], cache_size=4)
    real = make_token("RS256", keypair("rsa").private, {"sub": "a"})
    v.verify(real, now=NOW)
    h, p, s = real.split(".")
    assert len(s) % 4 == 2  # 256 bytes -> 342 characters: the last one carries 4 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(s[-1])
    for spare in (1, 2, 4, 8):
        twin = f"{h}.{p}.{s[:-1]}{alphabet[last ^ spare]}"
        with pytest.raises(gateway.MalformedToken):
            v.verify(twin, now=NOW)
    assert v.cache_len == 1


def test_exp_nbf_iat_are_checked_again_on_every_hit(setup: tuple[Any, Any]) -> None:
    new, tok = setup
    v = new(cache_size=8, leeway=5)
    t = tok({"exp": NOW + 10, "nbf": NOW - 10, "iat": NOW - 10})
    assert v.verify(t, now=NOW)
    assert v.verify(t, now=NOW + 14)  # within leeway, a hit
    with pytest.raises(gateway.ExpiredToken):
        v.verify(t, now=NOW + 15)
    with pytest.raises(gateway.ExpiredToken):
        v.verify(t, now=NOW + 10**6)
    assert v.verify(t, now=NOW), "verified afresh once time is back in range"
    with pytest.raises(gateway.NotYetValid):
        v.verify(t, now=NOW - 16)  # before nbf - leeway (and iat - leeway)
    assert v.verify(t, now=NOW - 15)
    # iat alone: a hit at a time before the token was issued is refused.
    t2 = tok({"iat": NOW})
    assert v.verify(t2, now=NOW)
    with pytest.raises(gateway.NotYetValid):
        v.verify(t2, now=NOW - 6)


def test_datetime_now_on_a_hit() -> None:
    import datetime

    v = gateway.Verifier(KEY, cache_size=4)
    t = make({"exp": NOW + 10})
    v.verify(t, now=NOW)
    late = datetime.datetime.fromtimestamp(NOW + 11, tz=datetime.timezone.utc)
    with pytest.raises(gateway.ExpiredToken):
        v.verify(t, now=late)


def test_entries_are_bounded_and_evicted_tokens_still_verify(setup: tuple[Any, Any]) -> None:
    new, tok = setup
    v = new(cache_size=8)
    tokens = [tok({"sub": f"user-{i}", "exp": NOW + 60}) for i in range(100)]
    for round_ in range(2):
        for i, t in enumerate(tokens):
            assert v.verify(t, now=NOW)["sub"] == f"user-{i}"
            assert v.cache_len <= 8
    assert v.cache_len >= 1


def test_returned_dicts_are_the_callers_own() -> None:
    v = gateway.Verifier(KEY, cache_size=4)
    claims = {"sub": "a", "roles": ["r1", {"scope": ["read"]}], "ctx": {"tenant": {"id": 1}, "tags": []}, "n": 1}
    t = make(claims)
    first = v.verify(t, now=NOW)  # a miss: the cache must have kept its own copy
    first["sub"] = "mallory"
    first["roles"].append("admin")
    first["roles"][1]["scope"].append("write")
    first["ctx"]["tenant"]["id"] = 2
    first["ctx"]["tags"].append("x")
    del first["n"]
    second = v.verify(t, now=NOW)  # a hit
    assert second == claims
    second["roles"][1]["scope"].clear()
    second["ctx"].clear()
    third = v.verify(t, now=NOW)
    assert third == claims
    assert third is not second and third["roles"] is not second["roles"]
    assert third["roles"][1] is not second["roles"][1]


def test_a_key_that_leaves_the_source_drops_its_entries() -> None:
    source = Source(_es256_set("k0", "k1"))
    v = gateway.Verifier(source, algorithms=["ES256"], cache_size=16)
    t0, t1 = _es256_token({"sub": "zero"}, "k0", 0), _es256_token({"sub": "one"}, "k1", 1)
    assert v.verify(t0, now=NOW) == {"sub": "zero"}
    assert v.verify(t1, now=NOW) == {"sub": "one"}
    assert v.cache_len == 2
    assert v.verify(t0, now=NOW) == {"sub": "zero"}  # a hit while k0 is in the set

    source.keys = _es256_set("k1", n0=1)  # k0 rotated out at the IdP
    with pytest.raises(gateway.KeyNotFound):
        v.verify(t0, now=NOW)
    assert source.asked[-1] == "k0", "the source was asked once more with the unknown kid"
    assert v.cache_len == 1
    with pytest.raises(gateway.KeyNotFound):
        v.verify(t0, now=NOW)
    assert v.verify(t1, now=NOW) == {"sub": "one"}, "the other key's entries stay"

    # The same kid now names a different key: the old token's entry must not survive.
    source.keys = gateway.KeySet.from_jwks({"keys": [keypair("p256", 5).public_jwk(kid="k1")]})
    with pytest.raises(gateway.InvalidSignature):
        v.verify(t1, now=NOW)
    assert v.cache_len == 0


def test_a_source_whose_set_is_refetched_with_the_same_key_keeps_hitting() -> None:
    source = Source(_es256_set("k0"))
    v = gateway.Verifier(source, algorithms=["ES256"], cache_size=4)
    t = _es256_token({"sub": "a"}, "k0")
    v.verify(t, now=NOW)
    source.keys = _es256_set("k0")  # a new KeySet object holding the same key (a refetch)
    assert v.verify(t, now=NOW) == {"sub": "a"}
    assert v.cache_len == 1


def test_a_key_set_source_that_fails_is_not_papered_over_by_the_cache() -> None:
    """While the source raises (the IdP is down and nothing usable is cached), a cached entry is not
    served past it: the source's error reaches the caller."""

    class Down(Source):
        down = False

        def _gateway_key_set(self, unknown_kid: str | None) -> gateway.KeySet:
            if self.down:
                raise gateway.KeySetUnavailable("key set unavailable: the IdP is down")
            return super()._gateway_key_set(unknown_kid)

    source = Down(_es256_set("k0"))
    v = gateway.Verifier(source, algorithms=["ES256"], cache_size=4)
    t = _es256_token({"sub": "a"}, "k0")
    v.verify(t, now=NOW)
    source.down = True
    with pytest.raises(gateway.KeySetUnavailable):
        v.verify(t, now=NOW)
    source.down = False
    assert v.verify(t, now=NOW) == {"sub": "a"}


def test_with_key_set_keeps_policy_and_cache_size_not_entries() -> None:
    v = gateway.Verifier(_es256_set("k0"), algorithms=["ES256"], audience="api", cache_size=3)
    t = _es256_token({"aud": "api"}, "k0")
    v.verify(t, now=NOW)
    w = v.with_key_set(_es256_set("k0"))
    assert w.cache_len == 0
    assert (w.algorithms, w.audience) == (["ES256"], ["api"])
    assert w.verify(t, now=NOW) == {"aud": "api"}
    with pytest.raises(gateway.InvalidAudience):
        w.verify(_es256_token({"aud": "web"}, "k0"), now=NOW)
    for i in range(10):
        w.verify(_es256_token({"aud": "api", "i": i}, "k0"), now=NOW)
    assert w.cache_len <= 3
    # rotated: the new verifier does not know k0's tokens
    x = v.with_key_set(_es256_set("k1", n0=1))
    with pytest.raises(gateway.KeyNotFound):
        x.verify(t, now=NOW)
    with pytest.raises(ValueError) as info:
        gateway.Verifier(KEY, algorithms=["HS256"], cache_size=2).with_key_set(_es256_set("k0"))
    assert info.value.kind == "key_type_mismatch"


def test_threads_share_the_cache_safely() -> None:
    """Many threads verify the same and different tokens (and forgeries) through one small cache:
    every answer is the right one."""
    source = Source(_es256_set("k0"))
    verifiers = [
        (gateway.Verifier(KEY, cache_size=4), lambda c: make(c)),
        (gateway.Verifier(source, algorithms=["ES256"], cache_size=4), lambda c: _es256_token(c, "k0")),
    ]
    errors: list[str] = []
    for v, tok in verifiers:
        tokens = [(tok({"sub": f"u{i}", "exp": NOW + 100}), f"u{i}") for i in range(12)]
        forged = [_flip_sig(t) for t, _ in tokens[:4]]
        expired = tok({"sub": "old", "exp": NOW - 1})
        barrier = threading.Barrier(8)

        def work(seed: int, v: Any = v, tokens: Any = tokens, forged: Any = forged, expired: str = expired) -> None:
            barrier.wait()
            for j in range(60):
                t, sub = tokens[(seed * 7 + j) % len(tokens)] if j % 3 else tokens[0]
                try:
                    got = v.verify(t, now=NOW)
                    got["sub"] = "mutated-by-" + str(seed)
                    got2 = v.verify(t, now=NOW)
                    if got2["sub"] != sub:
                        errors.append(f"{sub} came back as {got2['sub']}")
                except Exception as e:  # noqa: BLE001 - collected and asserted below
                    errors.append(repr(e))
                for bad, error in ((forged[j % 4], gateway.InvalidSignature), (expired, gateway.ExpiredToken)):
                    try:
                        v.verify(bad, now=NOW)
                        errors.append("a bad token verified")
                    except error:
                        pass
                    except Exception as e:  # noqa: BLE001
                        errors.append(repr(e))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert v.cache_len <= 4
    assert not errors, errors[:5]


@pytest.mark.parametrize("change", ["kid renamed", "alg restricted"])
def test_a_hit_agrees_with_a_fresh_verification_after_the_set_changes(change: str) -> None:
    """The cache may only save work: after the set changes, a cached token gets exactly the answer a
    fresh verifier gives. Here the same key stays in the set but no longer fits the token (its kid
    was renamed, or it was restricted to another algorithm), so a fresh verification is KeyNotFound."""
    pair = keypair("rsa")
    source = Source(gateway.KeySet.from_jwks({"keys": [pair.public_jwk(kid="k")]}))
    v = gateway.Verifier(source, algorithms=["RS256", "PS256"], cache_size=4)
    t = make_token("PS256", pair.private, {"sub": "a"}, header={"alg": "PS256", "kid": "k"})
    assert v.verify(t, now=NOW) == {"sub": "a"}
    if change == "kid renamed":
        source.keys = gateway.KeySet.from_jwks({"keys": [pair.public_jwk(kid="k-2026")]})
    else:
        source.keys = gateway.KeySet.from_jwks({"keys": [pair.public_jwk(kid="k", alg="RS256")]})
    fresh = gateway.Verifier(source, algorithms=["RS256", "PS256"], cache_size=4)
    with pytest.raises(gateway.KeyNotFound):
        fresh.verify(t, now=NOW)
    with pytest.raises(gateway.KeyNotFound):
        v.verify(t, now=NOW)
