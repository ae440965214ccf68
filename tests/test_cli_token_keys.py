"""`gateway token --alg RS256|PS256|ES256|ES384|EdDSA --key FILE`: test tokens signed with a private
key (PEM or a private JWK), checked by PyJWT (an independent implementation) and by gateway.verify
with the public key. Key material never appears in what the command prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gateway
import jwt as pyjwt
import pytest

from tests.jwks_server import SigningKey


def token(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    return subprocess.run([sys.executable, "-m", "gateway", "token", *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "ES384", "EdDSA"])
def test_a_pem_private_key_mints_a_token_pyjwt_and_the_gateway_verify(tmp_path: Path, alg: str) -> None:
    key = SigningKey(alg, None)
    (tmp_path / "private.pem").write_bytes(key.private_pem())
    r = token("--alg", alg.lower(), "--key", str(tmp_path / "private.pem"), "--kid", "k-1", "--aud", "api", "--claims", '{"sub": "alice"}')
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    header = pyjwt.get_unverified_header(tok)
    assert header["alg"] == alg and header["kid"] == "k-1"
    claims = pyjwt.decode(tok, key.private.public_key(), algorithms=[alg], audience="api")
    assert claims["sub"] == "alice" and claims["exp"] > claims["iat"]
    keys = gateway.KeySet.from_pem(key.public_pem(), kid="k-1")
    assert gateway.verify(tok, keys, algorithms=[alg], audience="api")["sub"] == "alice"


def test_a_private_jwk_mints_with_its_own_kid(tmp_path: Path) -> None:
    key = SigningKey("ES256", None)
    jwk = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(key.private))
    jwk["kid"] = "from-jwk"
    (tmp_path / "private.jwk").write_text(json.dumps(jwk))
    r = token("--alg", "ES256", "--key", str(tmp_path / "private.jwk"))
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    assert pyjwt.get_unverified_header(tok)["kid"] == "from-jwk"
    assert pyjwt.decode(tok, key.private.public_key(), algorithms=["ES256"])["sub"] == "demo-user"


def test_an_asymmetric_alg_without_a_key_is_a_usage_error() -> None:
    r = token("--alg", "RS256")
    assert r.returncode == 2 and "--key" in r.stderr and r.stdout == ""


def test_a_key_with_an_hmac_alg_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_bytes(SigningKey("ES256", None).private_pem())
    r = token("--alg", "HS256", "--key", str(tmp_path / "k.pem"))
    assert r.returncode == 2 and "--key" in r.stderr


def test_an_unreadable_key_is_one_line_exit_1(tmp_path: Path) -> None:
    r = token("--alg", "ES256", "--key", str(tmp_path / "missing.pem"))
    assert r.returncode == 1 and "cannot read" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_public_key_cannot_sign_and_is_not_echoed(tmp_path: Path) -> None:
    key = SigningKey("ES256", None)
    pem = key.public_pem().decode()
    (tmp_path / "public.pem").write_text(pem)
    r = token("--alg", "ES256", "--key", str(tmp_path / "public.pem"))
    assert r.returncode == 1 and r.stdout == ""
    assert pem.splitlines()[1][:30] not in r.stderr
