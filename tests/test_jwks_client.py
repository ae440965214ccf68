"""gateway.JWKSClient over real sockets: a local HTTPS key-set server with its own CA (tests/jwks_server.py).

What is asserted is behaviour (what verifies, what is refused, how many fetches reached the server),
never how long something took.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import gateway
import pytest
from gateway import _core
from gateway.jwks import MAX_MAX_AGE, MIN_MAX_AGE, DiscoveryJWKSClient, JWKSClient, check_url, max_age_of

from tests.jwks_server import KeySetServer, SigningKey, TestCA


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def server(ca: TestCA) -> Iterator[KeySetServer]:
    s = KeySetServer(ca, [SigningKey("RS256", "k1")])
    yield s
    s.down()


def wait_for(predicate, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def client(server: KeySetServer, ca: TestCA, **kw) -> JWKSClient:  # type: ignore[no-untyped-def]
    return JWKSClient(server.url, ca_file=str(ca.ca_file), **kw)


# ---- what verifies ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "ES384", "EdDSA"])
def test_a_token_verifies_against_the_fetched_set(ca: TestCA, alg: str) -> None:
    key = SigningKey(alg, f"kid-{alg}")
    s = KeySetServer(ca, [SigningKey("RS256", "other"), key])
    try:
        c = JWKSClient(s.url, ca_file=str(ca.ca_file))
        assert s.fetches == 0  # never in the constructor
        claims = gateway.verify(key.sign({"sub": "alice"}), c, algorithms=[alg])
        assert claims["sub"] == "alice"
        assert s.fetches == 1
        # Cached: the next tokens cost no fetch.
        for _ in range(5):
            gateway.verify(key.sign(), c, algorithms=[alg])
        assert s.fetches == 1
    finally:
        s.down()


def test_entra_style_keys_without_alg_and_with_x5c(ca: TestCA) -> None:
    keys = [SigningKey("RS256", f"entra-{i}", jwk_alg=False) for i in range(3)]
    for k in keys:
        k.add_x5c()
    s = KeySetServer(ca, keys)
    try:
        c = JWKSClient(s.url, ca_file=str(ca.ca_file))
        assert gateway.verify(keys[1].sign({"sub": "entra"}), c, algorithms=["RS256"])["sub"] == "entra"
        # No alg on the keys: the caller's list still decides, and an RSA key never verifies HS256.
        with pytest.raises(_core.AlgorithmNotAllowed):
            gateway.verify(keys[1].sign(), c, algorithms=["PS256"])
    finally:
        s.down()


def test_a_verifier_over_the_client_and_a_wrong_signature(server: KeySetServer, ca: TestCA) -> None:
    c = client(server, ca)
    v = _core.Verifier(c, ["RS256"])
    good = server.keys[0].sign({"sub": "bob"})
    assert v.verify(good)["sub"] == "bob"
    forged = SigningKey("RS256", "k1").sign({"sub": "bob"})  # same kid, another private key
    with pytest.raises(_core.InvalidSignature):
        v.verify(forged)


# ---- single flight -----------------------------------------------------------------------------


def test_concurrent_first_use_makes_one_fetch(server: KeySetServer, ca: TestCA) -> None:
    server.delay = 0.5
    c = client(server, ca)
    results: list[object] = []
    errors: list[BaseException] = []

    def use() -> None:
        try:
            results.append(c.get_key_set())
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 8 and all(r is results[0] for r in results)
    assert server.fetches == 1


def test_sync_and_async_share_one_state(server: KeySetServer, ca: TestCA) -> None:
    server.delay = 0.3
    c = client(server, ca)

    async def main() -> object:
        assert c.current() is None  # never blocks; starts the fetch
        keys = await c.refresh()
        assert keys is not None
        return keys

    keys = asyncio.run(main())
    assert c.get_key_set() is keys  # the sync face sees the async fetch
    assert c.current() is keys
    assert server.fetches == 1


# ---- unknown kids: rotation, cooldown, floods -----------------------------------------------------


def test_a_key_rotated_in_verifies_after_one_refetch(server: KeySetServer, ca: TestCA) -> None:
    c = client(server, ca, cooldown=0)
    gateway.verify(server.keys[0].sign(), c, algorithms=["RS256"])
    new = SigningKey("RS256", "k2")
    server.keys = [server.keys[0], new]
    assert gateway.verify(new.sign({"sub": "new"}), c, algorithms=["RS256"])["sub"] == "new"
    assert server.fetches == 2


def test_an_unknown_kid_within_the_cooldown_fetches_nothing(server: KeySetServer, ca: TestCA) -> None:
    c = client(server, ca, cooldown=3600)
    gateway.verify(server.keys[0].sign(), c, algorithms=["RS256"])
    new = SigningKey("RS256", "k2")
    server.keys = [server.keys[0], new]
    with pytest.raises(_core.KeyNotFound):
        gateway.verify(new.sign(), c, algorithms=["RS256"])
    assert server.fetches == 1


def test_a_flood_of_random_kids_costs_no_fetch_within_the_cooldown(server: KeySetServer, ca: TestCA) -> None:
    c = client(server, ca, cooldown=3600)
    gateway.verify(server.keys[0].sign(), c, algorithms=["RS256"])
    attacker = SigningKey("RS256", None)
    for _ in range(200):
        with pytest.raises(_core.KeyNotFound):
            gateway.verify(attacker.sign(kid=uuid.uuid4().hex), c, algorithms=["RS256"])
    assert server.fetches == 1


def test_an_unknown_kid_is_remembered_after_one_refetch(server: KeySetServer, ca: TestCA) -> None:
    # cooldown 0: only the memory stands between a replayed bogus kid and a fetch per token.
    c = client(server, ca, cooldown=0)
    gateway.verify(server.keys[0].sign(), c, algorithms=["RS256"])
    bogus = SigningKey("RS256", "not-there").sign()
    for _ in range(50):
        with pytest.raises(_core.KeyNotFound):
            gateway.verify(bogus, c, algorithms=["RS256"])
    assert server.fetches == 2  # the first look, then one refetch for "not-there"


def test_a_remembered_kid_is_looked_for_again_once_the_set_changes(server: KeySetServer, ca: TestCA) -> None:
    c = client(server, ca, cooldown=0, cache_ttl=0.3)
    gateway.verify(server.keys[0].sign(), c, algorithms=["RS256"])
    later = SigningKey("RS256", "not-there")
    with pytest.raises(_core.KeyNotFound):
        gateway.verify(later.sign(), c, algorithms=["RS256"])
    assert server.fetches == 2 and "not-there" in c._unknown
    server.keys = [server.keys[0], later]  # the IdP publishes it later
    time.sleep(0.4)  # the regular refresh is due: it brings a changed set, and the memory goes
    c.current()
    wait_for(lambda: server.fetches == 3 and c._flight is None)
    assert gateway.verify(later.sign({"sub": "later"}), c, algorithms=["RS256"])["sub"] == "later"


def test_the_unknown_kid_memory_is_bounded(server: KeySetServer, ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import jwks

    monkeypatch.setattr(jwks, "UNKNOWN_KIDS_MAX", 5)
    c = client(server, ca, cooldown=0)
    c.get_key_set()
    tokens = [server.keys[0].sign(kid=f"kid-{i}") for i in range(12)]
    for t in tokens:
        with pytest.raises(_core.KeyNotFound):
            gateway.verify(t, c, algorithms=["RS256"])
    assert len(c._unknown) == 5 and "kid-11" in c._unknown and "kid-0" not in c._unknown
    # The oldest were forgotten, so kid-0 is looked for again (one fetch); kid-11 is not.
    before = server.fetches
    with pytest.raises(_core.KeyNotFound):
        gateway.verify(tokens[11], c, algorithms=["RS256"])
    assert server.fetches == before
    with pytest.raises(_core.KeyNotFound):
        gateway.verify(tokens[0], c, algorithms=["RS256"])
    assert server.fetches == before + 1


def test_a_removed_key_stops_verifying_after_the_next_refresh(server: KeySetServer, ca: TestCA) -> None:
    old, new = server.keys[0], SigningKey("RS256", "k2")
    server.keys = [old, new]
    c = client(server, ca, cache_ttl=0.2)
    gateway.verify(old.sign(), c, algorithms=["RS256"])
    server.keys = [new]
    time.sleep(0.3)  # the copy goes stale; the next use refreshes it in the background
    c.current()
    wait_for(lambda: server.fetches == 2 and c.status()["fresh"])
    with pytest.raises(_core.KeyNotFound):
        gateway.verify(old.sign(), c, algorithms=["RS256"])
    assert gateway.verify(new.sign(), c, algorithms=["RS256"])


# ---- failures ------------------------------------------------------------------------------------


def test_down_since_start_is_key_set_unavailable_naming_the_host(server: KeySetServer, ca: TestCA) -> None:
    c = client(server, ca)
    server.down()
    with pytest.raises(_core.KeySetUnavailable) as e:
        gateway.verify(SigningKey("RS256").sign(), c, algorithms=["RS256"])
    assert f"127.0.0.1:{server.port}" in str(e.value)
    assert "refused" in str(e.value).lower()
    assert isinstance(e.value, _core.JWTError) and not isinstance(e.value, _core.InvalidSignature)
    # Within the cooldown the next call does not try again: it fails at once, with the same reason.
    attempts = c.fetches
    with pytest.raises(_core.KeySetUnavailable):
        c.get_key_set()
    assert c.fetches == attempts


def test_a_failed_refresh_keeps_the_last_good_set(server: KeySetServer, ca: TestCA) -> None:
    c = client(server, ca, cache_ttl=0.2, cooldown=0, stale_if_error=3600)
    key = server.keys[0]
    gateway.verify(key.sign(), c, algorithms=["RS256"])
    for mode in ("down", "error", "garbage"):
        if mode == "down":
            server.down()
        else:
            server.up()
            server.mode = mode
        time.sleep(0.3)
        before = c.fetches
        c.current()
        wait_for(lambda: c.status()["error"] is not None and c.fetches > before and c._flight is None)  # noqa: B023
        assert gateway.verify(key.sign({"sub": mode}), c, algorithms=["RS256"])["sub"] == mode


def test_stale_beyond_stale_if_error_is_unavailable(server: KeySetServer, ca: TestCA) -> None:
    c = client(server, ca, cache_ttl=0.2, cooldown=0, stale_if_error=0)
    key = server.keys[0]
    gateway.verify(key.sign(), c, algorithms=["RS256"])
    server.mode = "error"
    time.sleep(0.3)
    with pytest.raises(_core.KeySetUnavailable) as e:
        gateway.verify(key.sign(), c, algorithms=["RS256"])
    assert "HTTP 500" in str(e.value)


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("garbage", "not a usable JWK Set"),
        ("not_a_set", "not a usable JWK Set"),
        ("huge", "limit"),
        ("huge_declared", "limit"),
        ("error", "HTTP 500"),
        ("redirect", "redirect, not followed"),
    ],
)
def test_a_bad_answer_is_refused_with_why_and_never_the_body(server: KeySetServer, ca: TestCA, mode: str, why: str) -> None:
    server.mode = mode
    c = client(server, ca)
    with pytest.raises(_core.KeySetUnavailable) as e:
        c.get_key_set()
    text = str(e.value)
    assert why in text and f"127.0.0.1:{server.port}" in text
    assert "maintenance" not in text and "AAAA" not in text and "evil" not in text


def test_a_slow_server_is_bounded_by_timeout(server: KeySetServer, ca: TestCA) -> None:
    server.delay = 3
    c = client(server, ca, timeout=0.5)
    with pytest.raises(_core.KeySetUnavailable) as e:
        c.get_key_set()
    assert "timed out" in str(e.value)


def test_a_trickling_body_is_cut_at_timeout_as_a_whole(server: KeySetServer, ca: TestCA) -> None:
    # Every byte arrives well within a per-read timeout; only a bound on the whole fetch stops it.
    server.mode = "trickle"
    c = client(server, ca, timeout=1)
    with pytest.raises(_core.KeySetUnavailable) as e:
        c.get_key_set()
    assert "timed out" in str(e.value)


def test_an_untrusted_certificate_is_refused(server: KeySetServer, tmp_path: Path) -> None:
    other = TestCA(tmp_path / "other", cn="someone else's CA")
    c = JWKSClient(server.url, ca_file=str(other.ca_file))
    with pytest.raises(_core.KeySetUnavailable) as e:
        c.get_key_set()
    assert "certificate" in str(e.value)
    # ... and so is the system's trust store, which does not know the test CA.
    with pytest.raises(_core.KeySetUnavailable):
        JWKSClient(server.url).get_key_set()
    assert server.fetches == 0  # nothing reached the handler: TLS failed first


def test_plain_http_to_loopback_is_allowed() -> None:
    s = KeySetServer(None, [SigningKey("ES256", "e1")])
    try:
        c = JWKSClient(s.url)
        assert gateway.verify(s.keys[0].sign(), c, algorithms=["ES256"])
    finally:
        s.down()


# ---- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example.com/jwks.json",
        "http://10.0.0.1/jwks.json",
        "ftp://idp.example.com/jwks.json",
        "idp.example.com/jwks.json",
        "https:///jwks.json",
        "https://user:pass@idp.example.com/jwks.json",
        "https://idp.example.com/jwks.json#x",
        "https://idp.example.com/jw ks.json",
    ],
)
def test_bad_urls_are_refused_at_construction(url: str) -> None:
    with pytest.raises(ValueError):
        JWKSClient(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/k", "http://localhost/k", "http://[::1]:9/k", "https://idp.example.com/.well-known/jwks.json?x=1"])
def test_good_urls_are_accepted(url: str) -> None:
    assert check_url(url).url == url


@pytest.mark.parametrize(("name", "value"), [("cache_ttl", 0), ("timeout", -1), ("cooldown", float("nan")), ("stale_if_error", float("inf"))])
def test_bad_numbers_are_refused(name: str, value: float) -> None:
    with pytest.raises(ValueError):
        JWKSClient("https://idp.example.com/k", **{name: value})


def test_an_unreadable_ca_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        JWKSClient("https://idp.example.com/k", ca_file=str(tmp_path / "nope.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ValueError):
        JWKSClient("https://idp.example.com/k", ca_file=str(junk))


# ---- Cache-Control ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "age", "expected"),
    [
        (None, None, None),
        ("public", None, None),
        ("public, max-age=3600", None, 3600.0),
        ("max-age=3600", "600", 3000.0),
        ("max-age=5", None, MIN_MAX_AGE),
        ("max-age=0, must-revalidate", None, MIN_MAX_AGE),
        ("no-store", None, MIN_MAX_AGE),
        ("max-age=31536000", None, MAX_MAX_AGE),
        ('max-age="120"', None, 120.0),
    ],
)
def test_max_age_is_read_and_clamped(header: str | None, age: str | None, expected: float | None) -> None:
    assert max_age_of(header, age) == expected


@pytest.mark.parametrize(("header", "low", "high"), [("max-age=5", 55, 60), ("max-age=31536000", 86000, 86400), (None, 595, 600), ("max-age=120", 115, 120)])
def test_the_fetched_set_is_fresh_for_the_clamped_max_age(server: KeySetServer, ca: TestCA, header: str | None, low: float, high: float) -> None:
    server.cache_control = header
    c = client(server, ca)
    c.get_key_set()
    assert low <= c.status()["fresh_for"] <= high


# ---- discovery -------------------------------------------------------------------------------------


def test_discovery_finds_the_key_set(server: KeySetServer, ca: TestCA) -> None:
    c = DiscoveryJWKSClient(server.issuer, ca_file=str(ca.ca_file))
    assert gateway.verify(server.keys[0].sign({"iss": server.issuer}), c, algorithms=["RS256"], issuer=server.issuer)
    assert (server.discoveries, server.fetches) == (1, 1)


def test_discovery_refuses_another_issuer_and_plain_http_jwks_uri(server: KeySetServer, ca: TestCA) -> None:
    server.issuer_override = server.issuer.rstrip("/")  # not identical: a trailing slash differs
    with pytest.raises(_core.KeySetUnavailable, match="identical"):
        DiscoveryJWKSClient(server.issuer, ca_file=str(ca.ca_file)).get_key_set()
    server.issuer_override = None
    server.jwks_uri_override = "http://keys.example.com/jwks.json"
    with pytest.raises(_core.KeySetUnavailable, match="loopback"):
        DiscoveryJWKSClient(server.issuer, ca_file=str(ca.ca_file)).get_key_set()
    assert server.fetches == 0


def test_an_https_issuer_cannot_point_discovery_at_loopback_http(server: KeySetServer, ca: TestCA) -> None:
    plain = KeySetServer(None, [SigningKey("RS256", "k1")])
    try:
        server.jwks_uri_override = plain.url  # http://127.0.0.1:PORT/jwks.json
        with pytest.raises(_core.KeySetUnavailable, match="plain http"):
            DiscoveryJWKSClient(server.issuer, ca_file=str(ca.ca_file)).get_key_set()
        assert plain.fetches == 0
    finally:
        plain.down()
