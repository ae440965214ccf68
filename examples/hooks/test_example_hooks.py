"""The example hooks, tested two ways: called directly with a `gateway.HookRequest` made by the test
(how a user tests their own hooks), and served by a real `gateway serve` on this folder's
gateway.toml in front of a real echo origin."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import gateway
import pytest

from tests.harness import GATEWAY_BIN, SECRET, Gateway, echo_origin, gateway_env, gateway_serve, raw_get

HERE = Path(__file__).resolve().parent
KEY = "example-download-signing-key-0123456789abcdef"


@pytest.fixture(scope="module")
def hooks() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOWNLOAD_SIGNING_KEY", KEY)
        spec = importlib.util.spec_from_file_location("example_hooks_under_test", HERE / "hooks.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


def run(value: Any) -> Any:
    return asyncio.run(value) if asyncio.iscoroutine(value) else value


def request(path: str = "/", query: str = "", claims: dict[str, Any] | None = None, params: dict[str, str] | None = None, kv: dict[str, Any] | None = None) -> gateway.HookRequest:
    async def lookup(namespace: str, key: str) -> Any:
        return (kv or {}).get(key)

    return gateway.HookRequest(method="GET", path=path, query=query, claims=claims, params=params, kv=lookup)


# -------------------------------------------------------------------------------- called directly


def test_tenant(hooks: ModuleType) -> None:
    ok = run(hooks.tenant(request(claims={"tenant": "acme"}, params={"tenant": "acme"})))
    assert ok == gateway.Forward(set_headers={"X-Tenant": "acme"})
    for claims in ({"tenant": "globex"}, {}, {"tenant": ["acme"]}):
        assert run(hooks.tenant(request(claims=claims, params={"tenant": "acme"}))) == gateway.Respond(403, json={"error": "wrong_tenant"})


def test_feature_flag(hooks: ModuleType) -> None:
    flag = {"new-checkout": {"enabled": True, "tenants": ["acme"], "percent": 0}}
    on = run(hooks.new_checkout(request(claims={"sub": "u1", "tenant": "acme"}, params={"path": "cart"}, kv=flag)))
    assert on == gateway.Forward(path="/v2/checkout/cart", set_headers={"X-Flag-New-Checkout": "on"})
    off = run(hooks.new_checkout(request(claims={"sub": "u1", "tenant": "globex"}, params={"path": "cart"}, kv=flag)))
    assert off == gateway.Forward(set_headers={"X-Flag-New-Checkout": "off"})
    disabled = {"new-checkout": {"enabled": False, "tenants": ["acme"], "percent": 100}}
    assert run(hooks.new_checkout(request(claims={"sub": "u1", "tenant": "acme"}, kv=disabled))).set_headers == (("X-Flag-New-Checkout", "off"),)
    assert run(hooks.new_checkout(request(claims={"sub": "u1"}, kv={}))).set_headers == (("X-Flag-New-Checkout", "off"),)
    # The percentage rollout is stable per user and close to the share asked for.
    users = [f"user-{i}" for i in range(4000)]
    share = sum(hooks.in_rollout(u, 10) for u in users) / len(users)
    assert 0.08 < share < 0.12
    assert [hooks.in_rollout(u, 10) for u in users[:50]] == [hooks.in_rollout(u, 10) for u in users[:50]]
    assert all(hooks.in_rollout(u, 100) for u in users[:100]) and not any(hooks.in_rollout(u, 0) for u in users[:100])


def test_signed_download(hooks: ModuleType) -> None:
    link = hooks.signed_link("/downloads/report.pdf", 600)
    path, _, query = link.partition("?")
    assert hooks.signed_download(request(path, query)) is None
    expired = hooks.signed_link("/downloads/report.pdf", -1)
    assert hooks.signed_download(request(path, expired.partition("?")[2])) == gateway.Respond(403, json={"error": "link_expired"})
    # The signature covers the path and the expiry: neither can be changed.
    assert hooks.signed_download(request("/downloads/other.pdf", query)).json == {"error": "bad_signature"}
    expires = query.split("&")[0].split("=")[1]
    later = query.replace(f"expires={expires}", f"expires={int(expires) + 3600}")
    assert hooks.signed_download(request(path, later)).json == {"error": "bad_signature"}
    other_key = hooks.signed_link("/downloads/report.pdf", 600, key=b"another-key-another-key-another-key")
    assert hooks.signed_download(request(path, other_key.partition("?")[2])).json == {"error": "bad_signature"}
    for bad in ("", "expires=1", "sig=x", f"{query}&sig=x", "expires=-5&sig=x", "expires=99999999999999999999&sig=x"):
        assert hooks.signed_download(request(path, bad)).json == {"error": "unsigned_link"}, bad
    too_long = hooks.signed_link("/downloads/report.pdf", 30 * 86400)
    assert hooks.signed_download(request(path, too_long.partition("?")[2])).json == {"error": "bad_signature"}


def test_the_key_is_required_at_import() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DOWNLOAD_SIGNING_KEY"}
    r = subprocess.run([GATEWAY_BIN, "check", "--config", str(HERE / "gateway.toml")], capture_output=True, text=True, env={**env, "JWT_SECRET": SECRET}, timeout=60, check=False)
    assert r.returncode == 1
    assert "hooks.module: importing" in r.stdout and "set DOWNLOAD_SIGNING_KEY to a random secret of at least 32 bytes" in r.stdout


def test_the_example_config_checks() -> None:
    r = subprocess.run([GATEWAY_BIN, "check", "--config", str(HERE / "gateway.toml")], capture_output=True, text=True, env=gateway_env({"DOWNLOAD_SIGNING_KEY": KEY}), timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 hooks from file:hooks.py" in r.stdout


# -------------------------------------------------------------------------------- served for real


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("example-hooks")
    for name in ("hooks.py", "flags.json", "gateway.toml"):
        shutil.copy(HERE / name, tmp / name)
    with echo_origin(tmp) as port:
        cfg = tmp / "gateway.toml"
        cfg.write_text(cfg.read_text().replace("http://127.0.0.1:9000", f"http://127.0.0.1:{port}"))
        with gateway_serve(cfg, env={"DOWNLOAD_SIGNING_KEY": KEY}) as gw:
            yield gw


def _token(**claims: Any) -> str:
    now = int(time.time())
    return gateway.encode({"sub": "u1", "iat": now, "exp": now + 600, **claims}, SECRET)


def _echo_headers(r: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in json.loads(r.content)["headers"]}


def test_served_tenant(served: Gateway) -> None:
    r = served.get("/t/acme/orders", headers={"Authorization": f"Bearer {_token(tenant='acme')}", "X-Tenant": "globex"})
    assert r.status_code == 200
    assert _echo_headers(r)["x-tenant"] == "acme"
    r = served.get("/t/acme/orders", headers={"Authorization": f"Bearer {_token(tenant='globex')}"})
    assert (r.status_code, r.json()) == (403, {"error": "wrong_tenant"})


def test_served_feature_flag(served: Gateway) -> None:
    r = served.get("/checkout/cart", headers={"Authorization": f"Bearer {_token(tenant='acme')}"})
    assert json.loads(r.content)["path"] == "/v2/checkout/cart"
    assert _echo_headers(r)["x-flag-new-checkout"] == "on"
    r = served.get("/checkout/cart", headers={"Authorization": f"Bearer {_token(sub='not-in-rollout-7', tenant='globex')}"})
    assert json.loads(r.content)["path"] == "/checkout/cart"
    assert _echo_headers(r)["x-flag-new-checkout"] == "off"


def test_served_signed_download(served: Gateway, hooks: ModuleType) -> None:
    link = hooks.signed_link("/downloads/reports/q3.pdf", 300, key=KEY.encode())
    r = served.get(link)
    assert r.status_code == 200 and json.loads(r.content)["path"] == "/downloads/reports/q3.pdf"
    assert served.get("/downloads/reports/q3.pdf").json() == {"error": "unsigned_link"}
    assert served.get(link.replace("q3", "q4")).json() == {"error": "bad_signature"}
    # The hook sees the path as normalized (dot segments resolved, sent as raw bytes here), so the
    # signature covers the file actually served, however the path is spelled.
    query = link.partition("?")[2]
    assert raw_get(served.port, "/downloads/x/../reports/./q3.pdf?" + query).status == 200
    walked = raw_get(served.port, "/downloads/reports/q3.pdf/../q4.pdf?" + query)
    assert walked.status == 403 and json.loads(walked.body) == {"error": "bad_signature"}
