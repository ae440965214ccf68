"""gateway.asgi.JWTAuth in front of a real Starlette app, served by uvicorn, asked by httpx; its key
set from a real HTTPS server with its own CA (tests/jwks_server.py). WebSocket handshakes through
Starlette's TestClient (uvicorn here has no WebSocket library installed)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gateway import asgi
from tests.harness import REPO, free_port, spawn, stop, wait_for
from tests.jwks_server import KeySetServer, SigningKey, TestCA


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("asgi-ca"))


@pytest.fixture
def idp(ca: TestCA) -> Iterator[KeySetServer]:
    s = KeySetServer(ca, [SigningKey("RS256", "r1"), SigningKey("EdDSA", "e1")])
    yield s
    s.down()


def uvicorn(tmp: Path, idp: KeySetServer, ca: TestCA, cooldown: str = "30") -> tuple[object, str]:
    port = free_port()
    env = {**os.environ, "JWKS_URL": idp.url, "JWKS_CA_FILE": str(ca.ca_file), "JWKS_COOLDOWN": cooldown, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = spawn("uvicorn", [sys.executable, "-m", "uvicorn", "tests.asgi_app:app", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on", "--log-level", "warning"], tmp / "logs", env=env, cwd=str(REPO))

    def up() -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{port}/me", timeout=1)
            return True
        except httpx.HTTPError:
            return False

    assert wait_for(up, 20), proc.stderr_text()
    return proc, f"http://127.0.0.1:{port}"


def test_claims_reach_the_app_and_refusals_follow_rfc_6750(tmp_path: Path, ca: TestCA, idp: KeySetServer) -> None:
    proc, base = uvicorn(tmp_path, idp, ca, cooldown="0")
    try:
        with httpx.Client(base_url=base, timeout=15) as c:
            for key in idp.keys:
                r = c.get("/me", headers={"Authorization": f"Bearer {key.sign({'sub': key.alg, 'aud': 'api'})}"})
                assert r.status_code == 200, r.text
                assert r.json() == {"sub": key.alg, "started": "yes"}  # lifespan state kept, claims added
            r = c.get("/me", headers={"Cookie": "session=forged; session=" + idp.keys[0].sign({"sub": "cookie-user", "aud": "api"})})
            assert r.status_code == 200 and r.json()["sub"] == "cookie-user"
            r = c.get("/me")
            assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="api"'
            assert r.json()["error"] == "unauthorized"
            expired = idp.keys[0].sign({"aud": "api"}, ttl=-600)
            r = c.get("/me", headers={"Authorization": f"Bearer {expired}"})
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == 'Bearer realm="api", error="invalid_token", error_description="the token has expired"'
            assert expired not in r.text
            r = c.get("/me", headers=[("Authorization", f"Bearer {idp.keys[0].sign({'aud': 'api'})}"), ("Authorization", "Bearer x")])
            assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
            forged = SigningKey("RS256", "r1").sign({"aud": "api"})
            assert c.get("/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
            # A key rotated in at the IdP verifies after one refetch, without blocking the loop.
            new = SigningKey("ES256", "new")
            idp.keys = [*idp.keys, new]
            r = c.get("/me", headers={"Authorization": f"Bearer {new.sign({'sub': 'rotated', 'aud': 'api'})}"})
            assert r.status_code == 200 and r.json()["sub"] == "rotated"
    finally:
        stop(proc)  # type: ignore[arg-type]


def test_idp_down_is_503_with_retry_after(tmp_path: Path, ca: TestCA, idp: KeySetServer) -> None:
    idp.down()
    proc, base = uvicorn(tmp_path, idp, ca)
    try:
        r = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {idp.keys[0].sign({'aud': 'api'})}"}, timeout=15)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"] == "key_set_unavailable" and "www-authenticate" not in r.headers
    finally:
        stop(proc)  # type: ignore[arg-type]


def test_websocket_handshakes(ca: TestCA, idp: KeySetServer) -> None:
    from tests.asgi_app import build

    app = build(idp.url, str(ca.ca_file))
    with TestClient(app) as client:
        token = idp.keys[0].sign({"sub": "ws-user", "aud": "api"})
        with client.websocket_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
            assert ws.receive_text() == "ws-user"
        with pytest.raises(WebSocketDisconnect) as e:
            with client.websocket_connect("/ws") as ws:
                ws.receive_text()
        assert e.value.code == 1008


@pytest.mark.parametrize("bad", ["cookie:", "query:token", "header:bad name", "Bearer"])
def test_bad_token_sources_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        asgi.JWTAuth(lambda *a: None, object(), token_from=[bad])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        asgi.JWTAuth(lambda *a: None, object(), token_from="bearer")  # type: ignore[arg-type]
