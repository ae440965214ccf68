"""The `gateway` command as a user runs it: check, serve refusing bad configs, explain, token, demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import gateway
import httpx

from tests.harness import (
    SECRET,
    echo_origin,
    example_config,
    example_files,
    free_port,
    free_port_pair,
    gateway_serve,
    stop,
    wait_http,
    write_config,
)

EXAMPLE = Path(gateway.__file__).parent / "examples" / "gateway.toml"
ENV = {**os.environ, "JWT_SECRET": SECRET}


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, env=env or ENV, timeout=timeout)


def test_check_accepts_the_readme_example() -> None:
    r = run("check", "--config", str(EXAMPLE))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok" in r.stdout


BAD = """
[server]
listen = "nowhere"
[origins.web]
url = "http://127.0.0.1:9000"
timeout = "10x"
[auth.session]
secret = "hunter2-the-actual-secret"
token_from = ["cookie:auth-token", "carrier-pigeon"]
on_missing = { redirect = "https://evil.example/login" }
[auth.api]
secret = "env:GATEWAY_TEST_UNSET_VARIABLE"
[experiments.landing]
cookie = "ab-group"
variants = { control = -1 }
[[routes]]
match = "/dashboard/:path*"
auth = "sesion"
origin = "web"
tiemout = "1s"
[[routes]]
match = "/u/:id(["
origin = "webb"
response_headers = { "X-A" = "{nope}" }
"""


def test_check_lists_every_problem_with_file_key_and_expectation(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BAD)
    r = run("check", "--config", str(cfg), env={k: v for k, v in ENV.items() if k != "GATEWAY_TEST_UNSET_VARIABLE"})
    assert r.returncode == 1
    lines = r.stdout.strip().splitlines()
    for line in lines:
        assert re.match(rf"^{re.escape(str(cfg))}: [\w.\[\]\-]+: .+ \(.+\)$", line), line
    text = r.stdout
    for key in [
        "server.listen",
        "origins.web.timeout",
        "auth.session.secret",
        "auth.session.token_from[1]",
        "auth.session.on_missing.redirect",
        "auth.api.secret",
        "experiments.landing.variants",
        "routes[0].auth",
        "routes[0].tiemout",
        "routes[1].match",
        "routes[1].origin",
        "routes[1].response_headers.X-A",
    ]:
        assert f": {key}:" in text, f"{key} not reported:\n{text}"
    assert "hunter2" not in text, "a literal secret must never be echoed"
    assert "GATEWAY_TEST_UNSET_VARIABLE is not set" in text


def test_serve_refuses_a_bad_config_without_serving(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BAD)
    r = run("serve", "--config", str(cfg), "--listen", f"127.0.0.1:{free_port()}", timeout=30)
    assert r.returncode == 1
    assert "routes[1].origin" in r.stderr and "not serving" in r.stderr


def test_token_mints_a_verifiable_token() -> None:
    r = run("token", "--secret-env", "JWT_SECRET", "--claims", '{"sub": "carol", "role": "admin"}', "--ttl", "15m")
    assert r.returncode == 0, r.stderr
    claims = gateway.verify(r.stdout.strip(), SECRET)
    assert claims["sub"] == "carol" and claims["role"] == "admin"
    assert abs(claims["exp"] - (time.time() + 900)) < 30
    assert run("token", "--secret-env", "GATEWAY_TEST_UNSET_VARIABLE").returncode == 1
    assert run("token", "--claims", "[1]").returncode == 1
    assert run("token", "--ttl", "soon").returncode == 1


def explain(config: Path, *args: str) -> dict:
    r = run("explain", "--config", str(config), "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_explain_says_which_route_matched_and_why_others_did_not() -> None:
    e = explain(EXAMPLE, "--method", "GET", "http://localhost/api/resize")
    assert e["route"]["index"] == 3
    reasons = {s["index"]: s["reason"] for s in e["skipped"]}
    assert "does not match" in reasons[0] and "does not match" in reasons[1]
    assert "method GET" in reasons[2]
    e = explain(EXAMPLE, "http://localhost/dashboard/x?a=1")
    assert e["auth"] == {"policy": "session", "outcome": "missing", "reason": e["auth"]["reason"], "api_status": "redirect: the request does not prefer JSON"}
    assert e["action"] == "redirect" and e["status"] == 302 and e["location"] == "/login?next=%2Fdashboard%2Fx%3Fa%3D1"
    e = explain(EXAMPLE, "-H", "cf-ipcountry: KR", "-H", "Cookie: ab-group=control", "http://localhost/products?x=1")
    assert e["normalized_path"] == "/products"
    assert e["upstream_url"] == "http://127.0.0.1:9000/ko/products?x=1"
    assert e["response_headers"]["X-Region"] == "KR"
    assert e["request_headers"]["X-AB-Group"] == "control" and e["set_cookies"] == []
    e = explain(EXAMPLE, "http://localhost/a%2fb")
    assert e["status"] == 400 and e["route"] is None
    r = run("explain", "--config", str(EXAMPLE), "http://localhost/dashboard")
    assert "route" in r.stdout and "302" in r.stdout


def test_explain_and_serve_agree(tmp_path: Path) -> None:
    with echo_origin(tmp_path, "web") as web, echo_origin(tmp_path, "regional") as regional:
        cfg = write_config(tmp_path, example_config(web, regional), example_files())
        now = int(time.time())
        good = gateway.encode({"sub": "z", "exp": now + 60}, SECRET)
        cases = [
            ("GET", "/dashboard", []),
            ("GET", "/dashboard/a", [f"Authorization: Bearer {good}"]),
            ("GET", "/dashboard/a", [f"Cookie: auth-token={good[:-2]}zz"]),
            ("GET", "/api/protected/x", []),
            ("POST", "/api/resize", []),
            ("GET", "/api/resize", ["cf-ipcountry: JP", "Cookie: ab-group=variant"]),
            ("GET", "/x/../dashboard", []),
            ("GET", "/a%2Fb", []),
        ]
        with gateway_serve(cfg) as site:
            for method, path, headers in cases:
                e = explain(cfg, "--method", method, *sum((["-H", h] for h in headers), []), "http://127.0.0.1" + path)
                hdrs = dict(h.split(": ", 1) for h in headers)
                r = httpx.request(method, site.base + path, headers=hdrs, follow_redirects=False)
                assert r.status_code == e["status"], (method, path, e)
                if e["action"] == "redirect":
                    assert r.headers["location"] == e["location"]
                if e["action"] == "proxy":
                    assert r.json()["path"] == urlsplit(e["upstream_url"]).path


def test_demo_runs_the_whole_product(tmp_path: Path) -> None:
    port = free_port()
    origin_port = free_port_pair(avoid=port)
    out = tmp_path / "demo.out"
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    p = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--listen", f"127.0.0.1:{port}", "--origin-port", str(origin_port)],
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/__gateway/health", p, timeout=30)
        text = out.read_text()
        tok = re.search(r"^\s+(eyJ[\w-]+\.[\w-]+\.[\w-]+)\s*$", text, re.M)
        assert tok, text
        assert text.count("curl ") >= 3
        assert httpx.get(base + "/dashboard").status_code == 302
        r = httpx.get(base + "/dashboard/settings", headers={"Authorization": f"Bearer {tok.group(1)}"})
        assert r.status_code == 200 and r.json()["origin"] == "web"
        r = httpx.get(base + "/products", headers={"cf-ipcountry": "KR"})
        assert r.json()["path"] == "/ko/products" and r.headers["x-region"] == "KR"
    finally:
        stop(p)


def test_explain_records_why_each_stage_decided() -> None:
    """explain runs serve's stages in order and each says why it decided what it did."""
    now = int(time.time())
    good = gateway.encode({"sub": "alice", "exp": now + 60}, SECRET)
    e = explain(EXAMPLE, "-H", f"Authorization: Bearer {good}", "-H", "Accept-Language: ko", "--peer", "203.0.113.9", "http://localhost/dashboard/x")
    stages = [s["stage"] for s in e["stages"]]
    # In pipeline order, each at least once; the dashboard route has no locale or experiment.
    order = ["normalize", "match", "auth", "locale", "headers", "proxy"]
    assert [s for s in dict.fromkeys(stages) if s in order] == order, stages
    why = {s["stage"]: s["why"] for s in e["stages"]}
    assert "valid token" in why["auth"]
    assert "not applied" in why["locale"] and "locale = true" in why["locale"]
    assert "not trusted" in " ".join(s["why"] for s in e["stages"] if s["stage"] == "headers")
    assert why["proxy"].startswith("GET http://127.0.0.1:9000/dashboard/x")
    assert e["request_headers"]["X-User-Id"] == "alice"

    # A refused path says which rule refused it, and no later stage runs.
    e = explain(EXAMPLE, "http://localhost/a%2fb")
    assert [s["stage"] for s in e["stages"]] == ["normalize"]
    assert e["status"] == 400 and "refused" in e["stages"][0]["why"] and "(refused)" not in e["stages"][0]["why"]
    assert e["error"]["kind"] == "bad_request" and e["error"]["detail"] in e["stages"][0]["why"]

    # An unauthenticated request: auth is the last stage and says what was missing.
    e = explain(EXAMPLE, "http://localhost/dashboard")
    assert [s["stage"] for s in e["stages"]][-1] == "auth"
    assert "missing" in e["stages"][-1]["why"] and "cookie:auth-token" in e["stages"][-1]["why"]


def test_explain_does_not_prefix_a_path_already_under_a_locale_in_other_case() -> None:
    # Route literals match without case, so /KO/x is under /ko already: not /ko/KO/x.
    e = explain(EXAMPLE, "-H", "cf-ipcountry: KR", "http://localhost/KO/x")
    assert e["upstream_url"] == "http://127.0.0.1:9000/KO/x", e["upstream_url"]
    e = explain(EXAMPLE, "-H", "cf-ipcountry: KR", "http://localhost/x")
    assert e["upstream_url"] == "http://127.0.0.1:9000/ko/x"


def test_explain_takes_a_url_without_scheme_or_host() -> None:
    # host/path is http://host/path; a bare /path is sent with Host: localhost, as any client would.
    e = explain(EXAMPLE, "localhost/dashboard")
    assert e["status"] == 302 and e["normalized_path"] == "/dashboard", e
    e = explain(EXAMPLE, "/products")
    assert e["action"] == "proxy" and ("host", "localhost") in [tuple(h) for h in e["forwarded_headers"]], e
