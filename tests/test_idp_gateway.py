"""The gateway with keys from an identity provider, end to end: `gateway serve` in front of a real
origin (tests/recording_origin.py), its key set on a real local HTTPS server with its own CA
(tests/jwks_server.py), tokens signed with PyJWT + cryptography, a real HTTP client.

Covers: RS256/ES256/EdDSA tokens proxied with claims forwarded; rotation (a new kid verifies after
one refetch; a removed key stops after the next refresh); the IdP down since start (503 with
Retry-After and a JSON body, never the policy's 401/redirect; the access log says why) or slow (the
request waits at most jwks_timeout); the IdP down after a good fetch (served from the cache);
discovery; static keys from a file, reloaded on SIGHUP; explain naming the key that verified.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import GATEWAY_BIN, Gateway, gateway_env, start_gateway, wait_for, write_config
from tests.jwks_server import KeySetServer, SigningKey, TestCA
from tests.recording_origin import RecordingOrigin


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("idp-ca"))


@pytest.fixture
def origin() -> Iterator[RecordingOrigin]:
    o = RecordingOrigin()
    yield o
    o.close()


@pytest.fixture
def idp(ca: TestCA) -> Iterator[KeySetServer]:
    s = KeySetServer(ca, [SigningKey("RS256", "rsa-1"), SigningKey("ES256", "ec-1"), SigningKey("EdDSA", "ed-1")])
    yield s
    s.down()


def config_text(origin: RecordingOrigin, source: str, *, options: str = "", algorithms: str = '["RS256", "ES256", "EdDSA"]') -> str:
    return f"""
[origins.web]
url = "http://127.0.0.1:{origin.port}"

[auth.idp]
algorithms = {algorithms}
{source}
{options}
audience = "api"
forward_claims = {{ sub = "X-User-Id" }}
on_missing = {{ redirect = "/login" }}
on_invalid = {{ redirect = "/login" }}

[[routes]]
match = "/api/:path*"
auth = "idp"
origin = "web"

[[routes]]
match = "/:path*"
origin = "web"
"""


def serve(tmp: Path, ca: TestCA, text: str, files: dict[str, str] | None = None) -> Gateway:
    files = {"ca.pem": ca.ca_file.read_text(), **(files or {})}
    return start_gateway(write_config(tmp, text, files))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def jwks_url(idp: KeySetServer, extra: str = "") -> str:
    return f'jwks_url = "{idp.url}"\njwks_ca_file = "file:ca.pem"\n{extra}'


def test_rs_es_eddsa_tokens_are_proxied_and_bad_ones_are_not(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    gw = serve(tmp_path, ca, config_text(origin, jwks_url(idp)))
    try:
        for key in idp.keys:
            r = gw.get("/api/me", headers=bearer(key.sign({"sub": f"user-{key.alg}", "aud": "api"})))
            assert r.status_code == 200, r.text
            assert ["x-user-id", f"user-{key.alg}"] in r.json()["headers"]
        # Fetched once, in the background at start (or on the first request), not per token.
        assert idp.fetches == 1
        forged = SigningKey("RS256", "rsa-1").sign({"aud": "api"})  # a known kid, another private key
        wrong_aud = idp.keys[0].sign({"aud": "other"})
        unknown_alg = SigningKey("PS256", "rsa-1").sign({"aud": "api"})
        mark = origin.mark()
        for token in (forged, wrong_aud, unknown_alg, "not.a.token"):
            r = gw.get("/api/me", headers=bearer(token))
            assert r.status_code == 302 and r.headers["location"].startswith("/login"), (token[:20], r.status_code)
        assert origin.since(mark) == ([], [])
    finally:
        gw.stop()


def test_rotation_new_kid_after_one_refetch_removed_key_after_the_next_refresh(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    old = idp.keys[0]
    gw = serve(tmp_path, ca, config_text(origin, jwks_url(idp, 'jwks_cooldown = "0s"\njwks_cache = "1s"')))
    try:
        assert gw.get("/api/x", headers=bearer(old.sign({"aud": "api"}))).status_code == 200
        new = SigningKey("RS256", "rsa-2")
        idp.keys = [old, new]
        fetched = idp.fetches
        r = gw.get("/api/x", headers=bearer(new.sign({"sub": "rotated", "aud": "api"})))
        assert r.status_code == 200 and ["x-user-id", "rotated"] in r.json()["headers"]
        assert idp.fetches >= fetched + 1
        # The IdP drops the old key: once the cached set has been refreshed, old tokens stop working.
        idp.keys = [new]
        old_token = old.sign({"aud": "api"})
        assert wait_for(lambda: gw.get("/api/x", headers=bearer(old_token)).status_code == 302, 15)
        assert gw.get("/api/x", headers=bearer(new.sign({"aud": "api"}))).status_code == 200
    finally:
        gw.stop()


def test_idp_down_since_start_is_503_with_retry_after_never_401_or_redirect(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    idp.down()
    gw = serve(tmp_path, ca, config_text(origin, jwks_url(idp)))
    try:
        r = gw.get("/api/me", headers=bearer(idp.keys[0].sign({"aud": "api"})))
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"] == "key_set_unavailable"
        assert "location" not in r.headers and "www-authenticate" not in r.headers
        # No token at all is the user's problem, not the IdP's: the policy's on_missing still applies.
        assert gw.get("/api/me").status_code == 302
        # Routes without auth are untouched.
        assert gw.get("/public").status_code == 200
        entry = gw.wait_log(lambda e: e.get("status") == 503)
        assert entry is not None and entry["auth"] == "unavailable"
        assert f"127.0.0.1:{idp.port}" in entry["auth_reason"] and "refused" in entry["auth_reason"]
        assert all(t.startswith(b"/public") for t in origin.targets())
    finally:
        gw.stop()


@pytest.mark.parametrize(("mode", "why"), [("huge", "limit"), ("garbage", "not a usable JWK Set"), ("redirect", "not followed")])
def test_a_bad_key_set_since_start_is_503_and_logged(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin, mode: str, why: str) -> None:
    idp.mode = mode
    gw = serve(tmp_path, ca, config_text(origin, jwks_url(idp)))
    try:
        r = gw.get("/api/me", headers=bearer(idp.keys[0].sign({"aud": "api"})))
        assert r.status_code == 503 and r.json()["error"] == "key_set_unavailable"
        entry = gw.wait_log(lambda e: e.get("status") == 503)
        assert entry is not None and why in entry["auth_reason"]
        assert "maintenance" not in gw.all_output() and "evil" not in gw.all_output()
    finally:
        gw.stop()


def test_idp_back_after_an_outage_serves_again(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    idp.down()
    gw = serve(tmp_path, ca, config_text(origin, jwks_url(idp, 'jwks_cooldown = "1s"')))
    try:
        token = idp.keys[0].sign({"aud": "api"})
        assert gw.get("/api/me", headers=bearer(token)).status_code == 503
        idp.up()
        assert wait_for(lambda: gw.get("/api/me", headers=bearer(token)).status_code == 200, 15)
    finally:
        gw.stop()


def test_a_slow_idp_holds_a_request_no_longer_than_jwks_timeout(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    idp.delay = 30
    gw = serve(tmp_path, ca, config_text(origin, jwks_url(idp, 'jwks_timeout = "500ms"')))
    try:
        # The client's own timeout (15 s) is far above jwks_timeout: a 503 proves the bound.
        r = gw.get("/api/me", headers=bearer(idp.keys[0].sign({"aud": "api"})))
        assert r.status_code == 503
        entry = gw.wait_log(lambda e: e.get("status") == 503)
        assert entry is not None and "timed out" in entry["auth_reason"]
    finally:
        idp.delay = 0
        gw.stop()


def test_idp_down_after_a_good_fetch_serves_from_the_cache(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    gw = serve(tmp_path, ca, config_text(origin, jwks_url(idp, 'jwks_cache = "1s"\njwks_cooldown = "0s"')))
    try:
        key = idp.keys[1]
        assert gw.get("/api/me", headers=bearer(key.sign({"aud": "api"}))).status_code == 200
        idp.down()
        time.sleep(1.2)  # the cached copy is stale now; refreshing it fails
        for i in range(5):
            assert gw.get("/api/me", headers=bearer(key.sign({"sub": f"u{i}", "aud": "api"}))).status_code == 200
    finally:
        gw.stop()


def test_discovery(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    source = f'discovery = true\nissuer = "{idp.issuer}"\njwks_ca_file = "file:ca.pem"'
    gw = serve(tmp_path, ca, config_text(origin, source))
    try:
        r = gw.get("/api/me", headers=bearer(idp.keys[2].sign({"aud": "api", "iss": idp.issuer, "sub": "disc"})))
        assert r.status_code == 200 and ["x-user-id", "disc"] in r.json()["headers"]
        # The issuer is checked on the token too.
        r = gw.get("/api/me", headers=bearer(idp.keys[2].sign({"aud": "api", "iss": "https://evil.example/"})))
        assert r.status_code == 302
        assert idp.discoveries == 1
    finally:
        gw.stop()


def test_static_keys_from_a_file_reloaded_on_sighup(tmp_path: Path, ca: TestCA, origin: RecordingOrigin) -> None:
    first, second = SigningKey("ES256", "s1"), SigningKey("RS256", "s2")
    files = {"keys/public.pem": first.public_pem().decode()}
    gw = serve(tmp_path, ca, config_text(origin, 'keys = "file:keys/public.pem"'), files)
    try:
        assert gw.get("/api/me", headers=bearer(first.sign({"aud": "api"}))).status_code == 200
        assert gw.get("/api/me", headers=bearer(second.sign({"aud": "api"}))).status_code == 302
        (tmp_path / "keys" / "jwks.json").write_text(json.dumps({"keys": [second.jwk]}))
        gw.config.write_text(config_text(origin, 'keys = "file:keys/jwks.json"'))
        gw.proc.send_signal(signal.SIGHUP)
        token = second.sign({"aud": "api"})
        assert wait_for(lambda: gw.get("/api/me", headers=bearer(token)).status_code == 200, 15)
        assert gw.get("/api/me", headers=bearer(first.sign({"aud": "api"}))).status_code == 302
    finally:
        gw.stop()


def explain(config: Path, token: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        [GATEWAY_BIN, "explain", "--config", str(config), "--json", "-H", f"Authorization: Bearer {token}", "/api/me"],
        capture_output=True,
        text=True,
        env=gateway_env(),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_explain_names_the_key_that_verified_or_why_none_fit(tmp_path: Path, ca: TestCA, idp: KeySetServer, origin: RecordingOrigin) -> None:
    config = write_config(tmp_path, config_text(origin, jwks_url(idp)), {"ca.pem": ca.ca_file.read_text()})
    e = explain(config, idp.keys[1].sign({"aud": "api"}))
    assert e["auth"]["outcome"] == "valid"
    why = " ".join(s["why"] for s in e["stages"] if s["stage"] == "auth")
    assert "kid='ec-1'" in why and "alg='ES256'" in why
    e = explain(config, SigningKey("ES256", "stranger").sign({"aud": "api"}))
    assert e["auth"]["outcome"] == "invalid"
    why = " ".join(s["why"] for s in e["stages"] if s["stage"] == "auth")
    assert "no key fits" in why and "kid='stranger'" in why and "'rsa-1'" in why
    idp.down()
    e = explain(config, idp.keys[0].sign({"aud": "api"}))
    assert e["status"] == 503 and e["auth"]["outcome"] == "unavailable"
    assert int(e["response_headers"]["Retry-After"]) >= 1
    assert "refused" in e["auth"]["reason"] and f"127.0.0.1:{idp.port}" in e["auth"]["reason"]
