"""RS/HS algorithm confusion at the gateway: a public key can never become an HMAC secret, and a
token whose header names an asymmetric algorithm never reaches a protected origin.

The classic attack: a service that verifies RS256 with a public key is tricked into verifying an
HS256 token whose MAC was made with that (public) key text. The gateway only does HS* today, so the
two doors are: a public key configured as a `secret` (refused at start), and a token that names RS256,
ES256, PS256 or EdDSA in its header (refused as invalid, whatever its signature)."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

import gateway
from tests.harness import SECRET, Gateway, example_config, example_site

EXAMPLE = Path(gateway.__file__).parent / "examples"
PUBLIC_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhCnBBK1LsZX0wGbmQ69je3PVtOdk\n"
    "o7qJKl33Me/5GBkLYWLg3VgEWB1+4n0qs3311FcsIY9CW6b+plOimdeUNQ==\n"
    "-----END PUBLIC KEY-----\n"
)


def _config_text() -> str:
    return example_config(9000, 9001)


def _hs256(header: bytes, claims: bytes, key: bytes) -> str:
    signing_input = gateway.b64url_encode(header) + "." + gateway.b64url_encode(claims)
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + gateway.b64url_encode(mac)


@pytest.mark.parametrize("how", ["file", "env"])
def test_a_public_key_configured_as_secret_is_refused_at_start(tmp_path: Path, how: str) -> None:
    (tmp_path / "public.pem").write_text(PUBLIC_PEM)
    (tmp_path / "regions.json").write_text((EXAMPLE / "regions.json").read_text())
    source = f"file:{tmp_path / 'public.pem'}" if how == "file" else "env:PUBLIC_KEY"
    text = _config_text().replace('secret = "env:JWT_SECRET"', f'secret = "{source}"', 1)
    assert source in text
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(text)
    env = {"JWT_SECRET": SECRET, "PUBLIC_KEY": PUBLIC_PEM, "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(cfg)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0, r.stdout
    out = r.stdout + r.stderr
    assert f"{cfg}: auth.session.secret:" in out
    assert "public key" in out.lower()
    assert "MFkwEwYHKoZIzj0CAQYI" not in out, "the key material must not be echoed"


@pytest.mark.parametrize("allow", [None, "false", "true", '"yes"'])
def test_a_short_secret_is_refused_unless_allow_weak_key(tmp_path: Path, allow: str | None) -> None:
    (tmp_path / "short").write_text("sixteen-bytes-ok")
    (tmp_path / "regions.json").write_text((EXAMPLE / "regions.json").read_text())
    line = f'secret = "file:{tmp_path / "short"}"' + (f"\nallow_weak_key = {allow}" if allow else "")
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(_config_text().replace('secret = "env:JWT_SECRET"', line, 1))
    env = {"JWT_SECRET": SECRET, "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(cfg)], capture_output=True, text=True, env=env, timeout=60)
    out = r.stdout + r.stderr
    if allow == "true":
        assert r.returncode == 0, out
    elif allow == '"yes"':
        assert r.returncode != 0 and f"{cfg}: auth.session.allow_weak_key: is 'yes' (expected true or false)" in out, out
    else:
        assert r.returncode != 0 and f"{cfg}: auth.session.secret: the secret is 16 bytes; HS256 needs at least 32" in out, out
        assert "allow_weak_key = true" in out and "sixteen-bytes-ok" not in out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with ExitStack() as stack:
        yield example_site(tmp_path_factory.mktemp("confusion"), stack)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA", "RS512"])
@pytest.mark.parametrize("key", ["secret", "public-pem"])
def test_a_token_naming_an_asymmetric_alg_never_reaches_the_origin(site: Gateway, alg: str, key: str) -> None:
    now = int(time.time())
    claims = f'{{"sub":"admin","iat":{now},"exp":{now + 600}}}'.encode()
    mac_key = SECRET.encode() if key == "secret" else PUBLIC_PEM.encode()
    token = _hs256(f'{{"alg":"{alg}","typ":"JWT"}}'.encode(), claims, mac_key)
    r = httpx.get(site.base + "/dashboard", cookies={"auth-token": token}, follow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["location"].startswith("/login"), r.text
    assert "auth-token=;" in r.headers.get("set-cookie", "") or "auth-token=" in r.headers.get("set-cookie", "")
    # The same claims MAC'd as HS256 with the real secret do get through: the refusal is the alg's.
    ok = _hs256(b'{"alg":"HS256","typ":"JWT"}', claims, SECRET.encode())
    r = httpx.get(site.base + "/dashboard", cookies={"auth-token": ok}, follow_redirects=False, timeout=10)
    assert r.status_code == 200, r.text
