"""Attacks on tokens from identity providers (issue 10), from a newcomer's and an attacker's side.

The library against tokens shaped like real IdPs' (Keycloak's mixed set with an encryption key,
Entra ID's alg-less keys with an x5c chain, Firebase's certificate map), PyJWT-migration traps, and
the gateway in front of a real origin (tests/recording_origin.py) with its key set on a real local
HTTPS server (tests/jwks_server.py): header tricks (embedded jwk, jku, x5u, x5c), alg confusion,
kid floods, duplicate kids, private keys leaked into a set, control characters in kids, and that no
token or key material ever reaches the access log, `explain` or `check`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

import gateway
from tests.harness import GATEWAY_BIN, Gateway, gateway_env, start_gateway, write_config
from tests.jwks_server import KeySetServer, SigningKey, TestCA
from tests.recording_origin import RecordingOrigin


def b64(obj: Any) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("atk-ca"))


@pytest.fixture
def origin() -> Iterator[RecordingOrigin]:
    o = RecordingOrigin()
    yield o
    o.close()


@pytest.fixture
def idp(ca: TestCA) -> Iterator[KeySetServer]:
    s = KeySetServer(ca, [SigningKey("RS256", "rsa-1"), SigningKey("ES256", "ec-1")])
    yield s
    s.down()


def config_text(origin: RecordingOrigin, source: str, *, algorithms: str = '["RS256", "ES256"]', extra: str = "") -> str:
    return f"""
[origins.web]
url = "http://127.0.0.1:{origin.port}"

[auth.idp]
algorithms = {algorithms}
{source}
audience = "api"
forward_claims = {{ sub = "X-User-Id" }}
token_from = ["bearer", "cookie:session", "query:access_token"]
{extra}

[[routes]]
match = "/api/:path*"
auth = "idp"
origin = "web"
"""


def jwks_source(idp: KeySetServer, extra: str = "") -> str:
    return f'jwks_url = "{idp.url}"\njwks_ca_file = "file:ca.pem"\n{extra}'


def serve(tmp: Path, ca: TestCA, text: str, files: dict[str, str] | None = None) -> Gateway:
    return start_gateway(write_config(tmp, text, {"ca.pem": ca.ca_file.read_text(), **(files or {})}))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GATEWAY_BIN, *args], capture_output=True, text=True, env=gateway_env(), timeout=60)


# ---- the gateway ------------------------------------------------------------------------------


def test_header_tricks_never_choose_the_key(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    """A token carrying its own key (jwk), a key URL (jku, x5u) or a certificate chain (x5c) is
    verified with the IdP's keys only: the attacker's key in the header buys nothing."""
    gw = serve(tmp_path, ca, config_text(origin, jwks_source(idp)))
    try:
        attacker = SigningKey("RS256", "rsa-1")
        attacker.add_x5c()
        tricks: list[dict[str, Any]] = [
            {"jwk": attacker.jwk},
            {"jwk": attacker.jwk, "kid": None},
            {"jku": "https://127.0.0.1:1/evil.json"},
            {"x5u": "https://127.0.0.1:1/evil.pem"},
            {"x5c": attacker.jwk["x5c"]},
        ]
        mark = origin.mark()
        for extra in tricks:
            headers = {k: v for k, v in extra.items() if v is not None}
            kid = extra.get("kid", "rsa-1")
            hdr = {"kid": kid, **headers} if kid else headers
            token = jwt.encode({"sub": "mallory", "aud": "api"}, attacker.private, algorithm="RS256", headers=hdr)
            r = gw.get("/api/x", headers=bearer(token))
            assert r.status_code == 401, (extra.keys(), r.status_code, r.text)
        assert origin.since(mark) == ([], [])
        # The IdP's own key still works with those harmless members present.
        token = idp.keys[0].sign({"aud": "api", "sub": "alice"}, jku="https://127.0.0.1:1/evil.json")
        assert gw.get("/api/x", headers=bearer(token)).status_code == 200
    finally:
        gw.stop()


def test_alg_confusion_and_none_against_a_key_set(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    gw = serve(tmp_path, ca, config_text(origin, jwks_source(idp)))
    try:
        key = idp.keys[0]
        body = b64({"sub": "mallory", "aud": "api"})
        mark = origin.mark()
        for secret in (key.public_pem(), json.dumps(key.jwk).encode(), base64.urlsafe_b64decode(key.jwk["n"] + "==")):
            for alg, h in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
                head = b64({"alg": alg, "kid": "rsa-1", "typ": "JWT"})
                sig = b64(hmac.new(secret, f"{head}.{body}".encode(), h).digest())
                assert gw.get("/api/x", headers=bearer(f"{head}.{body}.{sig}")).status_code == 401
        for alg in ("none", "None", "NONE", ""):
            token = f"{b64({'alg': alg, 'kid': 'rsa-1'})}.{body}."
            assert gw.get("/api/x", headers=bearer(token)).status_code == 401
        assert origin.since(mark) == ([], [])
    finally:
        gw.stop()


def test_check_refuses_hmac_algorithms_beside_a_key_set_url(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    config = write_config(tmp_path, config_text(origin, jwks_source(idp), algorithms='["RS256", "HS256"]'), {"ca.pem": ca.ca_file.read_text()})
    out = run_cli("check", "--config", str(config))
    assert out.returncode != 0
    assert "algorithms" in out.stderr + out.stdout and "HS256" in out.stderr + out.stdout


def test_a_kid_flood_costs_at_most_one_fetch(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    gw = serve(tmp_path, ca, config_text(origin, jwks_source(idp, 'jwks_cooldown = "10m"')))
    try:
        assert gw.get("/api/x", headers=bearer(idp.keys[0].sign({"aud": "api"}))).status_code == 200
        before = idp.fetches
        attacker = SigningKey("RS256", None)
        with gw.client() as c:
            for _ in range(60):
                token = jwt.encode({"aud": "api"}, attacker.private, algorithm="RS256", headers={"kid": uuid.uuid4().hex})
                assert c.get("/api/x", headers=bearer(token)).status_code == 401
        assert idp.fetches - before <= 1
    finally:
        gw.stop()


def test_oversized_and_unicode_tokens_are_401_and_never_logged(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    gw = serve(tmp_path, ca, config_text(origin, jwks_source(idp)))
    try:
        key = idp.keys[0]
        big = key.sign({"aud": "api", "pad": "x" * 9000})
        weird_kid = jwt.encode({"aud": "api"}, SigningKey("RS256", None).private, algorithm="RS256", headers={"kid": "ключ\u202e\u2028\x1b[2J\n"})
        valid = key.sign({"aud": "api", "sub": "alice"})
        with gw.client() as c:
            assert c.get("/api/x", headers=bearer(big)).status_code == 401
            r = c.get("/api/x", headers=bearer(weird_kid))
            assert r.status_code == 401 and "\x1b" not in r.text
            assert c.get("/api/x", params={"access_token": valid}).status_code == 200
            assert c.get("/api/x", cookies={"session": big}).status_code == 401
            assert c.get("/api/x", headers=bearer(valid)).status_code == 200
        gw.wait_log(lambda e: False, 0.5)
        out = gw.all_output()
        for token in (big, weird_kid, valid):
            assert token.split(".")[2] not in out
            assert token.split(".")[1][:40] not in out
        assert "\x1b" not in out
    finally:
        gw.stop()


def test_a_key_set_leaking_a_private_key_is_refused_and_never_echoed(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    """An IdP that publishes a private member ("d") is broken: nothing it signed can be trusted, so
    the set is refused (503: the IdP's fault) and the private value appears nowhere."""
    leaked = SigningKey("RS256", "rsa-2")
    private_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(leaked.private))
    private_jwk.update(kid="rsa-2", use="sig", alg="RS256")
    idp.extra_members = [private_jwk]
    gw = serve(tmp_path, ca, config_text(origin, jwks_source(idp)))
    try:
        r = gw.get("/api/x", headers=bearer(leaked.sign({"aud": "api"})))
        assert r.status_code == 503 and r.json()["error"] == "key_set_unavailable"
        assert int(r.headers["retry-after"]) >= 1
        entry = gw.wait_log(lambda e: e.get("status") == 503)
        assert entry is not None and "private" in entry["auth_reason"]
        out = gw.all_output() + r.text
        for member in ("d", "p", "q", "dp", "dq", "qi"):
            assert private_jwk[member][:24] not in out
    finally:
        gw.stop()


def test_explain_never_prints_the_token_or_key_material(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    """The Authorization header (or the token cookie) is forwarded to the origin as sent, so explain's
    list of forwarded headers held the whole bearer token: explain output is pasted into tickets."""
    config = write_config(tmp_path, config_text(origin, jwks_source(idp)), {"ca.pem": ca.ca_file.read_text()})
    key = idp.keys[0]
    for token in (key.sign({"aud": "api"}), SigningKey("RS256", "rsa-1").sign({"aud": "api"}), key.sign({"aud": "other"})):
        for fmt in ((), ("--json",)):
            for how in (["-H", f"Authorization: Bearer {token}", "/api/me"], ["-H", f"Cookie: a=1; session={token}", "/api/me"], [f"/api/me?access_token={token}&x=1"]):
                out = run_cli("explain", "--config", str(config), *fmt, *how)
                assert out.returncode == 0, out.stderr
                text = out.stdout + out.stderr
                assert token.split(".")[2] not in text and token.split(".")[1] not in text, (fmt, how[0])
                assert key.jwk["n"][:32] not in text
    # What is not a token stays as it was.
    out = run_cli("explain", "--config", str(config), "-H", "X-Note: v1.2.3 host.example.com", "/api/me")
    assert "v1.2.3 host.example.com" not in out.stdout  # not forwarded: the route needs auth
    out = run_cli("explain", "--config", str(config), "--json", "-H", f"Authorization: Bearer {key.sign({'aud': 'api'})}", "-H", "X-Note: v1.2.3 host.example.com", "/api/me")
    forwarded = dict(json.loads(out.stdout)["forwarded_headers"])
    assert forwarded["x-note"] == "v1.2.3 host.example.com"
    assert forwarded["authorization"].startswith("Bearer <token eyJ") and "redacted" in forwarded["authorization"]


# ---- gateway check on static keys -------------------------------------------------------------


def static_config(tmp: Path, keys_file: str, algorithms: str = '["RS256", "ES256"]') -> Path:
    text = f"""
[origins.web]
url = "http://127.0.0.1:9"

[auth.idp]
algorithms = {algorithms}
keys = "file:{keys_file}"

[[routes]]
match = "/api/:path*"
auth = "idp"
origin = "web"
"""
    return write_config(tmp, text, {})


def test_check_refuses_static_keys_that_share_a_kid(tmp_path: Path) -> None:
    """Two keys of one type under one kid make every token with that kid KeyNotFound (the core will
    not guess between them): check passed such a file, and every such token was then refused."""
    a, b = SigningKey("RS256", "k1"), SigningKey("RS256", "k1")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [a.jwk, b.jwk, SigningKey("ES256", "k1").jwk]}))
    out = run_cli("check", "--config", str(static_config(tmp_path, "jwks.json")))
    assert out.returncode == 1, out.stdout
    said = out.stdout + out.stderr
    assert "jwks.json" in said and "auth.idp.keys" in said and "'k1'" in said and "shared" in said and "expected" in said
    assert a.jwk["n"][:24] not in said
    # Same kid, different types or algorithms: the token's alg tells them apart, so that is fine.
    rs, ps = SigningKey("RS256", "k1"), SigningKey("PS256", "k1")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [rs.jwk, ps.jwk, SigningKey("ES256", "k1").jwk]}))
    out = run_cli("check", "--config", str(static_config(tmp_path, "jwks.json", '["RS256", "PS256", "ES256"]')))
    assert out.returncode == 0, out.stderr


def test_a_single_jwk_file_is_told_from_a_set_by_parsing(tmp_path: Path) -> None:
    """keys = "file:..." took any file holding the text "keys" for a JWK Set, so a single JWK whose
    kid is "keys" was refused; a set spelt with an escaped member name was read as one JWK."""
    key = SigningKey("RS256", "keys")
    (tmp_path / "one.json").write_text(json.dumps(key.jwk))
    out = run_cli("check", "--config", str(static_config(tmp_path, "one.json")))
    assert out.returncode == 0, out.stderr
    other = SigningKey("ES256", "e1")
    (tmp_path / "set.json").write_text('{"\\u006beys": [' + json.dumps(other.jwk) + "]}")
    out = run_cli("check", "--config", str(static_config(tmp_path, "set.json")))
    assert out.returncode == 0, out.stderr
    assert "'e1'" in out.stdout


# ---- the library against real IdPs' shapes ----------------------------------------------------


def _cert_pem(key: SigningKey) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    copy = SigningKey(key.alg, key.kid)
    copy.private = key.private
    copy.add_x5c()
    der = base64.b64decode(copy.jwk["x5c"][0])
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()


def test_keycloak_set_with_rs_ps_eddsa_and_an_encryption_key() -> None:
    """Keycloak publishes its signing keys beside an RSA-OAEP encryption key (use "enc"): each
    signing key verifies its own tokens, and the encryption key never verifies anything, even a
    token its private half signed."""
    rs, ps, ed = SigningKey("RS256", "rs"), SigningKey("PS256", "ps"), SigningKey("EdDSA", "ed")
    enc = SigningKey("RS256", "enc")
    enc.jwk.update(use="enc", alg="RSA-OAEP")
    keys = gateway.KeySet.from_jwks({"keys": [rs.jwk, ps.jwk, ed.jwk, enc.jwk]})
    assert keys.skipped and keys.skipped[0][0] == "enc"
    algs = ["RS256", "PS256", "EdDSA"]
    for k in (rs, ps, ed):
        assert gateway.verify(k.sign({"sub": k.alg}), keys, algorithms=algs)["sub"] == k.alg
    with pytest.raises(gateway.KeyNotFound):
        gateway.verify(enc.sign(), keys, algorithms=algs)
    # An RS256 key's private half signing PS256 under the RS256 key's kid: the JWK's alg refuses it.
    with pytest.raises(gateway.KeyNotFound):
        gateway.verify(jwt.encode({"a": 1}, rs.private, algorithm="PS256", headers={"kid": "rs"}), keys, algorithms=algs)


def test_entra_keys_without_alg_and_with_a_certificate_chain() -> None:
    entra = SigningKey("RS256", "entra", jwk_alg=False)
    entra.add_x5c()
    entra.jwk["x5c"].append(entra.jwk["x5c"][0])  # leaf, then an issuer certificate
    entra.jwk["x5t"] = "bm90LWNoZWNrZWQ"
    keys = gateway.KeySet.from_jwks({"keys": [entra.jwk]})
    assert gateway.verify(entra.sign({"aud": "api"}, x5t="bm90LWNoZWNrZWQ"), keys, algorithms=["RS256"], audience="api")["sub"] == "user-1"
    # Without alg on the key, the caller's algorithms decide: an RS-only caller never takes PS256.
    ps_token = jwt.encode({"a": 1}, entra.private, algorithm="PS256", headers={"kid": "entra"})
    with pytest.raises(gateway.AlgorithmNotAllowed):
        gateway.verify(ps_token, keys, algorithms=["RS256"])


def test_the_same_key_listed_twice_under_one_kid_still_verifies() -> None:
    """IdPs republish a key (a second entry during rotation, the same key for two issuers); the two
    entries are one key, so there is nothing to choose between: the token must verify."""
    key = SigningKey("RS256", "k1")
    again = dict(key.jwk)
    keys = gateway.KeySet.from_jwks({"keys": [key.jwk, again]})
    assert gateway.verify(key.sign(), keys, algorithms=["RS256"])["sub"] == "user-1"


def test_a_firebase_certificate_map_verifies_by_kid() -> None:
    """Firebase (and Google's v1 certs) publish {kid: PEM certificate}. The mapping form of `key` is
    documented for HS* secrets only; with RS256 the caller gets 'public-key material ... verify with
    it under an RS/PS/ES/EdDSA algorithm instead' while already doing so. Expected: the mapping is a
    key set (each PEM under its kid), as PyJWT users do with certs[kid]."""
    a, b = SigningKey("RS256", "fb-1"), SigningKey("RS256", "fb-2")
    certs = {"fb-1": _cert_pem(a), "fb-2": _cert_pem(b)}
    assert gateway.verify(b.sign({"sub": "fire"}), certs, algorithms=["RS256"])["sub"] == "fire"


def test_a_firebase_certificate_map_never_becomes_hmac_secrets() -> None:
    """Whatever the mapping form does, a certificate under a kid is never an HMAC secret."""
    key = SigningKey("RS256", "fb-1")
    cert = _cert_pem(key)
    head = b64({"alg": "HS256", "kid": "fb-1"})
    body = b64({"sub": "mallory"})
    sig = b64(hmac.new(cert.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(ValueError) as e:
        gateway.verify(f"{head}.{body}.{sig}", {"fb-1": cert}, algorithms=["HS256"])
    assert getattr(e.value, "kind", None) == "public_key_as_secret"
    assert cert.splitlines()[1][:20] not in str(e.value)


def test_supabase_es256_and_its_legacy_hs256_never_mix() -> None:
    """Supabase moves projects from an HS256 secret to ES256 keys: a verifier for the new keys must
    not take the old HS256 tokens (nor the JWK as a secret), and the new tokens verify."""
    es = SigningKey("ES256", "sb")
    keys = gateway.KeySet.from_jwks({"keys": [es.jwk]})
    assert gateway.verify(es.sign({"aud": "authenticated", "role": "authenticated"}), keys, algorithms=["ES256"], audience="authenticated")["role"] == "authenticated"
    head, body = b64({"alg": "HS256", "kid": "sb"}), b64({"aud": "authenticated"})
    sig = b64(hmac.new(json.dumps(es.jwk).encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    legacy = f"{head}.{body}.{sig}"
    with pytest.raises(gateway.JWTError):
        gateway.verify(legacy, keys, algorithms=["ES256"], audience="authenticated")
    with pytest.raises(ValueError):
        gateway.verify(legacy, keys, algorithms=["ES256", "HS256"], audience="authenticated")


def test_a_bad_answer_after_a_good_fetch_keeps_the_set_until_stale_if_error_then_503(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    """The IdP starts answering garbage, an empty set, an error or a redirect after a good fetch: the
    last good set keeps serving (it is never wiped by a bad answer), and once it is older than
    jwks_stale_if_error the answer is 503 with Retry-After — never a 401 that signs users out."""
    gw = serve(tmp_path, ca, config_text(origin, jwks_source(idp, 'jwks_cache = "1s"\njwks_cooldown = "0s"\njwks_stale_if_error = "3s"')))
    try:
        key = idp.keys[0]
        token = key.sign({"aud": "api", "sub": "alice"})
        assert gw.get("/api/x", headers=bearer(token)).status_code == 200
        for mode in ("garbage", "not_a_set", "error", "redirect"):
            idp.mode = mode
            fetched = idp.fetches
            assert wait_for_fetch(idp, fetched, gw, key)
            r = gw.get("/api/x", headers=bearer(key.sign({"aud": "api", "sub": mode})))
            if r.status_code == 503:  # the set went past stale_if_error while this mode was tried
                break
            assert r.status_code == 200, (mode, r.status_code, r.text)
        idp.mode = "garbage"
        from tests.harness import wait_for

        assert wait_for(lambda: gw.get("/api/x", headers=bearer(key.sign({"aud": "api"}))).status_code == 503, 20)
        r = gw.get("/api/x", headers=bearer(token))
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and "location" not in r.headers
        idp.mode = "ok"
        assert wait_for(lambda: gw.get("/api/x", headers=bearer(key.sign({"aud": "api"}))).status_code == 200, 20)
    finally:
        gw.stop()


def wait_for_fetch(idp: KeySetServer, fetched: int, gw: Gateway, key: SigningKey) -> bool:
    """Requests until the gateway has tried the IdP again (its set is 1 s fresh)."""
    from tests.harness import wait_for

    return wait_for(lambda: gw.get("/api/x", headers=bearer(key.sign({"aud": "api"}))).status_code in (200, 503) and idp.fetches > fetched, 10)


# ---- public keys as HMAC secrets ---------------------------------------------------------------


def _ed25519_spki_base64() -> tuple[SigningKey, str]:
    from cryptography.hazmat.primitives import serialization

    key = SigningKey("EdDSA", "ed")
    der = key.private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, base64.b64encode(der).decode()  # 60 characters, as `openssl pkey -pubout` less its armour


def test_an_ed25519_public_key_in_base64_is_never_an_hmac_secret() -> None:
    """RSA and EC public keys as unarmoured base64 DER are refused as HMAC secrets; the Ed25519 one
    (60 characters, so not 'weak' either) is taken, and anyone holding the public key can then mint
    HS256 tokens."""
    _, spki = _ed25519_spki_base64()
    head, body = b64({"alg": "HS256"}), b64({"sub": "mallory"})
    sig = b64(hmac.new(spki.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(ValueError) as e:
        gateway.verify(f"{head}.{body}.{sig}", spki, algorithms=["HS256"])
    assert getattr(e.value, "kind", None) == "public_key_as_secret"


def test_check_refuses_an_ed25519_public_key_as_the_secret(tmp_path: Path) -> None:
    _, spki = _ed25519_spki_base64()
    text = """
[origins.web]
url = "http://127.0.0.1:9"

[auth.app]
secret = "file:secret.txt"

[[routes]]
match = "/api/:path*"
auth = "app"
origin = "web"
"""
    config = write_config(tmp_path, text, {"secret.txt": spki})
    out = run_cli("check", "--config", str(config))
    assert out.returncode == 1, out.stdout
    assert "public" in out.stdout + out.stderr and spki[16:40] not in out.stdout + out.stderr


def test_check_reports_a_malformed_algorithms_once_and_as_written(tmp_path: Path) -> None:
    """algorithms = "RS256" (a string, as PyJWT accepts) was reported, then its HS256 stand-in was
    reported as well ("has HS256, which needs a shared secret") — an algorithm the user never wrote."""
    key = SigningKey("RS256", "k1")
    (tmp_path / "pub.pem").write_bytes(key.public_pem())
    out = run_cli("check", "--config", str(static_config(tmp_path, "pub.pem", '"RS256"')))
    said = out.stdout + out.stderr
    assert out.returncode == 1
    assert "auth.idp.algorithms" in said and '["RS256"]' in said
    assert "HS256" not in said, said


def test_a_key_set_with_a_duplicate_kid_refuses_its_tokens_without_refetching_each_time(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    """Two different keys under one kid: the gateway never guesses which (401, the log says why),
    and the ambiguity does not turn every such request into a fetch from the IdP."""
    twin = SigningKey("RS256", "rsa-1")
    idp.keys = [idp.keys[0], twin, idp.keys[1]]
    gw = serve(tmp_path, ca, config_text(origin, jwks_source(idp, 'jwks_cooldown = "0s"')))
    try:
        assert gw.get("/api/x", headers=bearer(idp.keys[2].sign({"aud": "api"}))).status_code == 200
        r = gw.get("/api/x", headers=bearer(twin.sign({"aud": "api"})))
        assert r.status_code == 401
        fetched = idp.fetches
        with gw.client() as c:
            for i in range(20):
                assert c.get("/api/x", headers=bearer(twin.sign({"aud": "api", "sub": f"u{i}"}))).status_code == 401
        assert idp.fetches == fetched
        assert "share kid" in r.json()["detail"]
    finally:
        gw.stop()


def test_many_token_cookies_with_unknown_kids_wait_for_a_slow_idp_once(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    """Every same-name cookie is a candidate (up to 50). Each one with an unknown kid waited up to
    jwks_timeout for the (slow) refetch in turn, so one request held for 50 x jwks_timeout — a
    request must wait for the IdP no longer than jwks_timeout in all. The client's own timeout (10 s)
    is far above jwks_timeout (1 s) and far below 30 x 1 s: an answer at all proves the bound."""
    gw = serve(tmp_path, ca, config_text(origin, jwks_source(idp, 'jwks_cooldown = "0s"\njwks_timeout = "1s"')))
    try:
        key = idp.keys[0]
        assert gw.get("/api/x", headers=bearer(key.sign({"aud": "api"}))).status_code == 200
        idp.delay = 30
        stranger = SigningKey("RS256", None)
        cookies = "; ".join(
            "session=" + jwt.encode({"aud": "api"}, stranger.private, algorithm="RS256", headers={"kid": f"unknown-{i}"}) for i in range(30)
        )
        with httpx.Client(base_url=gw.base, timeout=10.0) as c:
            r = c.get("/api/x", headers={"Cookie": cookies})
        assert r.status_code == 401
    finally:
        idp.delay = 0
        gw.stop()


def test_asgi_middleware_waits_for_a_slow_idp_once_per_request(tmp_path: Path, ca: TestCA) -> None:
    """gateway.asgi.JWTAuth tries every same-name cookie too, and waited the client's timeout (2 s
    in tests/asgi_app.py) for each: 30 cookies held a request for a minute. Client timeout 15 s."""
    from tests.test_asgi import uvicorn

    server = KeySetServer(ca, [SigningKey("RS256", "r1")])
    proc, base = uvicorn(tmp_path, server, ca, cooldown="0")
    try:
        good = server.keys[0].sign({"aud": "api", "sub": "alice"})
        assert httpx.get(base + "/me", headers=bearer(good), timeout=15).status_code == 200
        server.delay = 30
        stranger = SigningKey("RS256", None)
        cookies = "; ".join(
            "session=" + jwt.encode({"aud": "api"}, stranger.private, algorithm="RS256", headers={"kid": f"unknown-{i}"}) for i in range(30)
        )
        r = httpx.get(base + "/me", headers={"Cookie": cookies}, timeout=15)
        assert r.status_code == 401
    finally:
        server.delay = 0
        proc.stop()  # type: ignore[attr-defined]
        server.down()
