"""`[auth.X]` key sources in gateway.toml: what `gateway check` accepts and refuses, without fetching.

Each refusal names the file, the key and what was expected; static keys are decoded by the core's
KeySet; URLs are checked for shape only (the key-set server counts zero fetches).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gateway.config import ConfigError, load

from tests.harness import GATEWAY_BIN, gateway_env, write_config
from tests.jwks_server import KeySetServer, SigningKey, TestCA


def config(auth: str) -> str:
    return f"""
[origins.web]
url = "http://127.0.0.1:9"

[auth.idp]
{auth}

[[routes]]
match = "/:path*"
auth = "idp"
origin = "web"
"""


def problems(tmp: Path, auth: str, files: dict[str, str] | None = None) -> list[str]:
    path = write_config(tmp, config(auth), files)
    with pytest.raises(ConfigError) as e:
        load(path)
    return e.value.problems


def loads(tmp: Path, auth: str, files: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return load(write_config(tmp, config(auth), files))


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ('algorithms = ["RS256"]\nsecret = "env:JWT_SECRET"\njwks_url = "https://idp.example.com/jwks.json"', "auth.idp: has both secret and jwks_url"),
        ('algorithms = ["RS256"]\nkeys = "file:k.pem"\ndiscovery = true\nissuer = "https://idp.example.com/"', "auth.idp: has both keys and discovery"),
        ('algorithms = ["RS256"]', "auth.idp: has no key source"),
        ('algorithms = ["HS256", "RS256"]\njwks_url = "https://idp.example.com/jwks.json"', "auth.idp.algorithms: has HS256, which needs a shared secret"),
        ('algorithms = ["RS256"]\nsecret = "env:JWT_SECRET"', "auth.idp.algorithms: has RS256 but the key source is a shared secret"),
        ('jwks_url = "https://idp.example.com/jwks.json"', "auth.idp.algorithms: is missing (required with jwks_url)"),
        ('algorithms = ["RS256"]\njwks_url = "http://idp.example.com/jwks.json"', "auth.idp.jwks_url: a key set URL is plain http:// to idp.example.com"),
        ('algorithms = ["RS256"]\njwks_url = "https://user:pw@idp.example.com/jwks.json"', "auth.idp.jwks_url: a key set URL has user info"),
        ('algorithms = ["RS256"]\njwks_url = "idp.example.com/jwks.json"', "auth.idp.jwks_url: a key set URL must start with https://"),
        ('algorithms = ["RS256"]\njwks_url = "https://idp.example.com/k"\njwks_cache = 600', "auth.idp.jwks_cache: is 600 (expected a duration string"),
        ('algorithms = ["RS256"]\njwks_url = "https://idp.example.com/k"\njwks_timeout = "soon"', "auth.idp.jwks_timeout: is 'soon'"),
        ('algorithms = ["RS256"]\njwks_url = "https://idp.example.com/k"\njwks_ca_file = "certs/ca.pem"', "auth.idp.jwks_ca_file: is 'certs/ca.pem' (expected \"file:PATH\""),
        ('algorithms = ["RS256"]\njwks_url = "https://idp.example.com/k"\njwks_ca_file = "file:missing.pem"', "auth.idp.jwks_ca_file: ca_file"),
        ('secret = "env:JWT_SECRET"\njwks_cooldown = "10s"', "auth.idp.jwks_cooldown: applies only to jwks_url or discovery, not secret"),
        ('algorithms = ["RS256"]\ndiscovery = true', "auth.idp.issuer: is missing or not one string, and discovery = true needs it"),
        ('algorithms = ["RS256"]\ndiscovery = "yes"\nissuer = "https://idp.example.com/"', "auth.idp.discovery: is 'yes' (expected true"),
        ('algorithms = ["RS256"]\ndiscovery = true\nissuer = "http://idp.example.com/"', "auth.idp.issuer: the issuer is plain http://"),
        ('algorithms = ["RS256"]\njwks_url = "https://idp.example.com/k"\ntoken_cache = -1', "auth.idp.token_cache: is -1"),
        ('algorithms = ["RS256"]\njwks_url = "https://idp.example.com/k"\njwks_cache = "0s"', "auth.idp.jwks_cache: is 0"),
        ('algorithms = ["RS256"]\nkeys = "keys.pem"', "auth.idp.keys: is 'keys.pem' (expected \"file:PATH\""),
        ('algorithms = ["RS256"]\nkeys = "file:nope.pem"', "auth.idp.keys: cannot read"),
    ],
)
def test_refused_with_the_key_and_what_was_expected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth: str, expected: str) -> None:
    monkeypatch.setenv("JWT_SECRET", "x" * 48)
    found = problems(tmp_path, auth)
    assert any(expected in p for p in found), found
    assert all(p.startswith(str(tmp_path / "gateway.toml") + ": ") for p in found)


def test_a_jwks_url_config_loads_without_fetching(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    server = KeySetServer(ca, [SigningKey("RS256", "k1")])
    try:
        text = f'algorithms = ["RS256"]\njwks_url = "{server.url}"\njwks_ca_file = "file:ca/ca.pem"\njwks_cache = "10m"\njwks_cooldown = "30s"\njwks_stale_if_error = "24h"\njwks_timeout = "5s"'
        cfg = loads(tmp_path, text)
        source = cfg.auth["idp"].key_source
        assert source.kind == "jwks_url" and source.client.cache_ttl == 600 and source.client.stale_if_error == 86400
        path = write_config(tmp_path, config(text))
        out = subprocess.run([GATEWAY_BIN, "check", "--config", str(path)], capture_output=True, text=True, env=gateway_env(), timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "ok" in out.stdout
        assert server.fetches == 0
    finally:
        server.down()


def test_check_refuses_a_bad_jwks_url_with_exit_1(tmp_path: Path) -> None:
    path = write_config(tmp_path, config('algorithms = ["RS256"]\njwks_url = "http://10.1.2.3/jwks.json"'))
    out = subprocess.run([GATEWAY_BIN, "check", "--config", str(path)], capture_output=True, text=True, env=gateway_env(), timeout=60)
    assert out.returncode == 1
    assert "auth.idp.jwks_url" in out.stdout and "loopback" in out.stdout


@pytest.mark.parametrize("form", ["pem", "jwks", "jwk", "cert"])
def test_static_keys_in_every_form_load(tmp_path: Path, form: str) -> None:
    key = SigningKey("ES256", "s1")
    if form == "pem":
        files = {"keys/k": key.public_pem().decode()}
    elif form == "jwks":
        files = {"keys/k": json.dumps({"keys": [key.jwk]})}
    elif form == "jwk":
        files = {"keys/k": json.dumps(key.jwk)}
    else:
        ca = TestCA(tmp_path / "ca")
        files = {"keys/k": ca.cert_file.read_text()}  # an X.509 certificate: its EC P-256 public key
    cfg = loads(tmp_path, 'algorithms = ["ES256"]\nkeys = "file:keys/k"', files)
    source = cfg.auth["idp"].key_source
    assert source.kind == "keys" and "ES256" in source.static.algorithms


def test_static_keys_that_fit_none_of_the_algorithms_are_refused(tmp_path: Path) -> None:
    files = {"k.pem": SigningKey("ES256", None).public_pem().decode()}
    found = problems(tmp_path, 'algorithms = ["RS256"]\nkeys = "file:k.pem"', files)
    assert any("auth.idp.algorithms" in p and "verify only" in p and "ES256" in p for p in found), found


def test_a_private_key_file_is_refused_and_not_echoed(tmp_path: Path) -> None:
    pem = SigningKey("ES256", None).private_pem().decode()
    found = problems(tmp_path, 'algorithms = ["ES256"]\nkeys = "file:k.pem"', {"k.pem": pem})
    assert any(p.startswith(f"{tmp_path / 'gateway.toml'}: auth.idp.keys:") for p in found), found
    body = "".join(pem.splitlines()[1:-1])
    assert not any(body[:40] in p for p in found)


def test_a_short_rsa_key_is_refused(tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = weak.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    found = problems(tmp_path, 'algorithms = ["RS256"]\nkeys = "file:k.pem"', {"k.pem": pem})
    assert any("auth.idp.keys" in p for p in found), found


def test_the_token_cache_defaults_on_and_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway

    secret = "x" * 48
    monkeypatch.setenv("JWT_SECRET", secret)
    token = gateway.encode({"sub": "u", "exp": 4102444800}, secret)
    on = loads(tmp_path / "on", 'secret = "env:JWT_SECRET"').auth["idp"].verifier
    off = loads(tmp_path / "off", 'secret = "env:JWT_SECRET"\ntoken_cache = 0').auth["idp"].verifier
    for v in (on, off):
        assert v.verify(token)["sub"] == "u" and v.verify(token)["sub"] == "u"
    assert (on.cache_len, off.cache_len) == (1, 0)
    # A key-set policy's per-version verifiers keep the policy's cache size.
    key = SigningKey("ES256", "s1")
    cfg = loads(tmp_path / "keys", 'algorithms = ["ES256"]\nkeys = "file:k.pem"\ntoken_cache = 8', {"k.pem": key.public_pem().decode()})
    source = cfg.auth["idp"].key_source
    v = source.verifier_for(source.current())
    v.verify(key.sign())
    assert v.cache_len == 1


def test_check_lists_static_keys_and_warns_about_skipped_ones(tmp_path: Path) -> None:
    good, enc = SigningKey("ES256", "good"), SigningKey("RS256", "enc-only")
    enc.jwk["use"] = "enc"
    files = {"jwks.json": json.dumps({"keys": [good.jwk, enc.jwk]})}
    path = write_config(tmp_path, config('algorithms = ["ES256"]\nkeys = "file:jwks.json"'), files)
    out = subprocess.run([GATEWAY_BIN, "check", "--config", str(path)], capture_output=True, text=True, env=gateway_env(), timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "warning:" in out.stdout and "'enc-only' is skipped" in out.stdout and '"enc"' in out.stdout
    assert "auth.idp: 1 key(s) from" in out.stdout and "'good' EC P-256 ES256" in out.stdout
    assert good.jwk["x"] not in out.stdout
