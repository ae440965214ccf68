"""`gateway token` as a user runs it, for making test tokens: expired ones (a negative --ttl), tokens
for an audience and an issuer, not-yet-valid ones, other HMAC algorithms, and a short throwaway secret.
Every token is checked by verifying it, with gateway.verify and with PyJWT (an independent
implementation)."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import gateway
import jwt as pyjwt
import pytest

SECRET = "cli-token-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"  # 64 bytes: enough for HS512
assert len(SECRET) == 64


def token(*args: str, secret: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    if secret is not None:
        env["JWT_SECRET"] = secret
    return subprocess.run([sys.executable, "-m", "gateway", "token", *args], capture_output=True, text=True, env=env, timeout=60)


def minted(*args: str, secret: str = SECRET) -> str:
    r = token(*args, secret=secret)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
    assert r.stderr == "", r.stderr
    return r.stdout.strip()


def unverified(tok: str) -> tuple[dict, dict]:
    def part(s: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))

    head, body, _ = tok.split(".")
    return part(head), part(body)


@pytest.mark.parametrize("args", [["--ttl", "-1h"], ["--ttl=-1h"], ["--ttl", "-5m"], ["--ttl=-5m"], ["--ttl", "-90s", "--claims", '{"sub": "x"}']])
def test_a_negative_ttl_mints_an_expired_token(args: list[str]) -> None:
    tok = minted(*args)
    _, claims = unverified(tok)
    ttl = {"-1h": -3600, "-5m": -300, "-90s": -90}[args[0].split("=")[-1] if "=" in args[0] else args[1]]
    assert abs(claims["exp"] - (time.time() + ttl)) < 30, claims
    with pytest.raises(gateway.ExpiredToken):
        gateway.verify(tok, SECRET)
    with pytest.raises(pyjwt.ExpiredSignatureError):
        pyjwt.decode(tok, SECRET, algorithms=["HS256"])
    # Still a well-signed token: only its time is wrong (its iat is after its exp, so iat is not checked here).
    assert gateway.verify(tok, SECRET, now=claims["exp"] - 1, options={"verify_iat": False})["sub"]


def test_a_bad_negative_ttl_is_refused_in_one_line() -> None:
    r = token("--ttl", "-soon")
    assert r.returncode == 1 and "--ttl" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stdout == ""


def test_audience_and_issuer_round_trip() -> None:
    tok = minted("--aud", "api", "--iss", "https://auth.example.com")
    claims = gateway.verify(tok, SECRET, audience="api", issuer="https://auth.example.com")
    assert claims["aud"] == "api" and claims["iss"] == "https://auth.example.com"
    assert pyjwt.decode(tok, SECRET, algorithms=["HS256"], audience="api", issuer="https://auth.example.com")["aud"] == "api"
    with pytest.raises(gateway.InvalidAudience):
        gateway.verify(tok, SECRET, audience="web")
    with pytest.raises(gateway.InvalidIssuer):
        gateway.verify(tok, SECRET, audience="api", issuer="https://other.example.com")


def test_several_audiences() -> None:
    tok = minted("--aud", "api", "--aud", "web")
    assert unverified(tok)[1]["aud"] == ["api", "web"]
    assert gateway.verify(tok, SECRET, audience="web")["aud"] == ["api", "web"]
    assert pyjwt.decode(tok, SECRET, algorithms=["HS256"], audience="api")["aud"] == ["api", "web"]


def test_flags_win_over_the_same_claims_in_claims_json_only_when_given() -> None:
    _, claims = unverified(minted("--claims", '{"sub": "carol", "aud": "a", "iss": "i"}'))
    assert (claims["sub"], claims["aud"], claims["iss"]) == ("carol", "a", "i")
    _, claims = unverified(minted("--claims", '{"aud": "a"}', "--aud", "b"))
    assert claims["aud"] == "b"


def test_not_before() -> None:
    tok = minted("--nbf", "10m")
    _, claims = unverified(tok)
    assert abs(claims["nbf"] - (time.time() + 600)) < 30
    with pytest.raises(gateway.NotYetValid):
        gateway.verify(tok, SECRET)
    with pytest.raises(pyjwt.ImmatureSignatureError):
        pyjwt.decode(tok, SECRET, algorithms=["HS256"])
    _, claims = unverified(minted("--nbf=-1m"))
    assert abs(claims["nbf"] - (time.time() - 60)) < 30


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_algorithm(alg: str) -> None:
    tok = minted("--alg", alg)
    assert unverified(tok)[0]["alg"] == alg
    assert gateway.verify(tok, SECRET, algorithms=[alg])["sub"]
    assert pyjwt.decode(tok, SECRET, algorithms=[alg])["sub"]


def test_an_unknown_algorithm_is_a_usage_error() -> None:
    r = token("--alg", "RS256")
    assert r.returncode == 2 and "--alg" in r.stderr and r.stdout == ""


def test_a_weak_secret_names_the_cli_flag_not_a_python_argument() -> None:
    r = token(secret="too-short")
    assert r.returncode == 1 and r.stdout == ""
    assert "--allow-weak-key" in r.stderr, r.stderr
    assert "allow_weak_key=True" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # An HS512 token needs 64 bytes: a 51-byte secret is enough for HS256 but not for it.
    r = token("--alg", "HS512", secret=SECRET[:51])
    assert r.returncode == 1 and "HS512" in r.stderr and "--allow-weak-key" in r.stderr, r.stderr


def test_allow_weak_key_mints_with_a_short_secret() -> None:
    tok = minted("--allow-weak-key", secret="too-short")
    with pytest.raises(ValueError):
        gateway.verify(tok, "too-short")  # the library refuses short keys too, unless told
    assert gateway.verify(tok, "too-short", allow_weak_key=True)["sub"] == "demo-user"


def test_the_readme_token_examples_run() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    lines = [m.group(1) for m in re.finditer(r"^gateway token\s+(.*?)\s*(?:#.*)?$", readme, re.M)]
    assert len(lines) >= 7, lines
    for line in lines:
        args = shlex.split(line)
        tok = minted(*args)
        _, claims = unverified(tok)
        # Well signed whatever its times say.
        algs = [a for a in ("HS256", "HS384", "HS512") if a in args] or ["HS256"]
        pyjwt.decode(tok, SECRET, algorithms=algs, options={"verify_exp": False, "verify_nbf": False, "verify_aud": False})
        assert claims["sub"] in ("demo-user", "alice"), line
