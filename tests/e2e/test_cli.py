"""The CLI: check (every problem as FILE: key.path: what (expected)), serve refusing bad configs,
explain (agreeing with serve), token, --workers."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt as pyjwt
import pytest
import tomllib

from tests.e2e.conftest import (
    EXAMPLE_REGIONS,
    GATEWAY_BIN,
    SECRET,
    TOKEN_RE,
    Gateway,
    Launcher,
    echoed,
    example_config,
    free_port,
    gateway_env,
    make_token,
    port_is_listening,
    run_cli,
    set_cookies,
    spawn,
    wait_for,
    write_config,
)

LINE_RE = re.compile(r"^(?P<file>.+?): (?P<key>[A-Za-z0-9_.\[\]\-]+): (?P<what>.+) \((?P<expected>.+)\)$")


def problem_lines(output: str, config: Path) -> dict[str, str]:
    """key.path -> the whole line, for every line shaped `FILE: key.path: what (expected)`."""
    out = {}
    for line in output.splitlines():
        m = LINE_RE.match(line.strip())
        if m and (m.group("file") == str(config) or Path(m.group("file")).name == config.name):
            out[m.group("key")] = line.strip()
    return out


def good_config_text() -> str:
    return example_config(9000, 9001)


def write_example(tmp: Path, text: str) -> Path:
    return write_config(tmp, text, {"regions.json": json.dumps(EXAMPLE_REGIONS)})


# ---------------------------------------------------------------- check


def test_check_accepts_the_example_config(tmp_path: Path) -> None:
    config = write_example(tmp_path, good_config_text())
    r = run_cli(["check", "--config", str(config)])
    assert r.returncode == 0, r.stdout + r.stderr


def test_check_via_python_module(tmp_path: Path) -> None:
    config = write_example(tmp_path, good_config_text())
    r = run_cli(["check", "--config", str(config)], module=True)
    assert r.returncode == 0, r.stdout + r.stderr


LITERAL_SECRET = "s3cr3t-literal-value-that-is-long-enough-0123456789"

BAD_CASES: dict[str, tuple[str, str, str]] = {
    # name: (old, new, expected key.path)
    "unknown-origin": ('match = "/dashboard/:path*"\nauth = "session"\norigin = "web"', 'match = "/dashboard/:path*"\nauth = "session"\norigin = "nope"', "routes[0].origin"),
    "bad-duration": ('url = "http://127.0.0.1:9000"\ntimeout = "10s"', 'url = "http://127.0.0.1:9000"\ntimeout = "10x"', "origins.web.timeout"),
    "literal-secret": ('[auth.session]\nalgorithms = ["HS256"]\nsecret = "env:JWT_SECRET"', f'[auth.session]\nalgorithms = ["HS256"]\nsecret = "{LITERAL_SECRET}"', "auth.session.secret"),
    "typo-key": ('default_country = "US"', 'default_contry = "US"', "locale.default_contry"),
    "missing-env": ('[auth.api]\nalgorithms = ["HS256"]\nsecret = "env:JWT_SECRET"', '[auth.api]\nalgorithms = ["HS256"]\nsecret = "env:GATEWAY_E2E_UNSET_SECRET"', "auth.api.secret"),
    "bad-pattern": ('match = "/api/resize"', 'match = "/api/resize/:("', "routes[2].match"),
}


def _bad(names: list[str]) -> str:
    text = good_config_text()
    for name in names:
        old, new, _ = BAD_CASES[name]
        assert old in text, f"test bug: {old!r} not in the example"
        text = text.replace(old, new, 1)
    return text


def _key_reported(lines: dict[str, str], key: str) -> str | None:
    for k, line in lines.items():
        if k == key or k.startswith(key + "["):
            return line
    return None


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_check_reports_each_problem(tmp_path: Path, name: str) -> None:
    config = write_example(tmp_path, _bad([name]))
    r = run_cli(["check", "--config", str(config)])
    output = r.stdout + r.stderr
    assert r.returncode == 1, f"exit {r.returncode}\n{output}"
    key = BAD_CASES[name][2]
    line = _key_reported(problem_lines(output, config), key)
    assert line is not None, f"no line `{config}: {key}: what is wrong (expected)` in:\n{output}"
    assert LITERAL_SECRET not in output, "the literal secret was echoed back"
    if name == "unknown-origin":
        assert "nope" in line
    if name == "bad-duration":
        assert "10x" in line
    if name == "missing-env":
        assert "GATEWAY_E2E_UNSET_SECRET" in line


def test_check_lists_every_problem_at_once(tmp_path: Path) -> None:
    config = write_example(tmp_path, _bad(sorted(BAD_CASES)))
    r = run_cli(["check", "--config", str(config)])
    output = r.stdout + r.stderr
    assert r.returncode == 1, output
    lines = problem_lines(output, config)
    missing = [BAD_CASES[n][2] for n in BAD_CASES if _key_reported(lines, BAD_CASES[n][2]) is None]
    assert not missing, f"problems not reported: {missing}\n{output}"
    assert LITERAL_SECRET not in output


MORE_PROBLEMS = """
[sever]
listen = "127.0.0.1:1"

[origins.web]
url = "ftp://127.0.0.1:9000"

[origins.ok]
url = "http://127.0.0.1:9000"

[kv.k]
backend = "memcached"

[experiments.e]
cookie = "c"
variants = { a = -1 }

[[routes]]
match = "/x/:path*"
origin = "ok"
methods = ["FETCH"]
has = [{ type = "body", key = "x" }, { type = "header", key = "x", value = "(" }]
response_headers = { "X-A" = "{nope}" }
max_body = "lots"
"""


def test_check_reports_problems_in_every_section(tmp_path: Path) -> None:
    config = write_config(tmp_path, MORE_PROBLEMS)
    r = run_cli(["check", "--config", str(config)])
    output = r.stdout + r.stderr
    assert r.returncode == 1, output
    lines = problem_lines(output, config)
    expected = [
        "sever",
        "origins.web.url",
        "kv.k.backend",
        "experiments.e.variants",
        "routes[0].methods",
        "routes[0].has[0].type",
        "routes[0].has[1].value",
        "routes[0].response_headers.X-A",
        "routes[0].max_body",
    ]
    missing = [k for k in expected if _key_reported(lines, k) is None and not any(key.startswith(k + ".") for key in lines)]
    assert not missing, f"problems not reported as `FILE: key.path: what (expected)`: {missing}\n{output}"


@pytest.mark.parametrize("content", [None, "x = [", "[[routes]]\nmatch = 1\n"])
def test_check_unreadable_or_invalid_toml_is_exit_1(tmp_path: Path, content: str | None) -> None:
    config = tmp_path / "gateway.toml"
    if content is not None:
        config.write_text(content)
    r = run_cli(["check", "--config", str(config)])
    output = r.stdout + r.stderr
    assert r.returncode == 1, output
    assert any(line.startswith(f"{config}: ") for line in output.splitlines()), output


def test_check_secret_file_relative_to_config_dir(tmp_path: Path) -> None:
    text = good_config_text().replace('secret = "env:JWT_SECRET"', 'secret = "file:secrets/jwt.key"')
    config = write_config(tmp_path, text, {"regions.json": json.dumps(EXAMPLE_REGIONS), "secrets/jwt.key": SECRET + "\n"})
    r = run_cli(["check", "--config", str(config)], env={"JWT_SECRET": ""})  # cwd is "/"
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / "secrets" / "jwt.key").unlink()
    r = run_cli(["check", "--config", str(config)])
    output = r.stdout + r.stderr
    assert r.returncode == 1, output
    assert _key_reported(problem_lines(output, config), "auth.session.secret") is not None, output


def test_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    config = write_example(tmp_path, _bad(["unknown-origin", "bad-duration", "literal-secret"]))
    port = free_port()
    proc = spawn("gateway-bad", [GATEWAY_BIN, "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"], tmp_path / "logs", env=gateway_env(), cwd="/")
    try:
        try:
            proc.popen.wait(20)
        except Exception:  # noqa: BLE001
            pytest.fail(f"serve with a bad config is still running; listening={port_is_listening(port)}")
        output = proc.stdout_text() + proc.stderr_text()
        assert proc.popen.returncode != 0, output
        assert not port_is_listening(port)
        lines = problem_lines(output, config)
        for key in ("routes[0].origin", "origins.web.timeout", "auth.session.secret"):
            assert _key_reported(lines, key) is not None, f"serve did not report {key}:\n{output}"
        assert LITERAL_SECRET not in output
    finally:
        proc.stop()


# ---------------------------------------------------------------- explain


def explain(gw: Gateway, url: str, method: str = "GET", headers: dict[str, str] | None = None) -> dict[str, Any]:
    args = ["explain", "--config", str(gw.config), "--method", method]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    args += [url, "--json"]
    r = run_cli(args)
    assert r.returncode == 0, f"explain failed ({r.returncode}): {r.stdout}{r.stderr}"
    data = json.loads(r.stdout)
    for key in ("normalized_path", "route", "skipped", "auth", "action", "status", "location", "origin", "upstream_url", "request_headers", "response_headers", "set_cookies"):
        assert key in data, f"explain --json lacks {key!r}: {data}"
    assert data["action"] in ("proxy", "redirect", "respond")
    assert set(data["auth"]) >= {"policy", "outcome", "reason"}
    assert data["auth"]["outcome"] in ("none", "missing", "valid", "invalid")
    return data


def _ci(d: dict[str, str], name: str) -> str | None:
    for k, v in d.items():
        if k.lower() == name.lower():
            return v
    return None


def route_index(gw: Gateway, match: str, **conds: Any) -> int:
    routes = tomllib.loads(gw.config.read_text())["routes"]
    for i, r in enumerate(routes):
        if r["match"] == match and all(r.get(k) == v for k, v in conds.items()):
            return i
    raise AssertionError(f"no route {match}")


def test_explain_redirect_agrees_with_serve(main_gateway: Gateway) -> None:
    x = explain(main_gateway, "http://127.0.0.1/dashboard/a?x=1")
    served = main_gateway.get("/dashboard/a?x=1")
    assert x["action"] == "redirect" and x["status"] == 302 == served.status_code
    assert x["location"] == served.headers["location"]
    assert x["route"]["index"] == 0 and "/dashboard/:path*" in x["route"]["match"]
    assert x["auth"]["policy"] == "session" and x["auth"]["outcome"] == "missing"
    assert x["normalized_path"] == "/dashboard/a"


def test_explain_invalid_token_agrees_with_serve(main_gateway: Gateway) -> None:
    headers = {"Cookie": "auth-token=garbage.garbage.garbage"}
    x = explain(main_gateway, "http://127.0.0.1/dashboard", headers=headers)
    served = main_gateway.get("/dashboard", headers=headers)
    assert x["action"] == "redirect" and served.status_code == 302
    assert x["auth"]["outcome"] == "invalid" and x["auth"]["reason"]
    assert x["location"] == served.headers["location"]
    assert sorted(x["set_cookies"]) == sorted(set_cookies(served))
    assert any(c.startswith("auth-token=;") for c in x["set_cookies"])


def test_explain_valid_token_agrees_with_serve(main_gateway: Gateway) -> None:
    token = make_token({"sub": "explained"})
    headers = {"Authorization": f"Bearer {token}"}
    x = explain(main_gateway, "http://127.0.0.1/dashboard/a?x=1", headers=headers)
    served = main_gateway.get("/dashboard/a?x=1", headers=headers)
    assert served.status_code == 200 and x["action"] == "proxy"
    assert x["auth"]["outcome"] == "valid" and x["origin"] == "web"
    e = echoed(served)
    up = urlsplit(x["upstream_url"])
    assert up.port == main_gateway.origins["web"] and up.path == e.path and up.query == e.query
    assert _ci(x["request_headers"], "X-User-Id") == "explained" == e.header("X-User-Id")
    decision = {k: x[k] for k in ("route", "skipped", "auth", "location", "request_headers", "response_headers", "set_cookies")}
    assert token not in json.dumps(decision), "explain's decision must not carry the token"


@pytest.mark.parametrize(("headers", "outcome"), [({}, "missing"), ({"Authorization": "Bearer nope"}, "invalid")])
def test_explain_401_agrees_with_serve(main_gateway: Gateway, headers: dict[str, str], outcome: str) -> None:
    x = explain(main_gateway, "http://127.0.0.1/api/protected/x", headers=headers)
    served = main_gateway.get("/api/protected/x", headers=headers)
    assert x["action"] == "respond" and x["status"] == 401 == served.status_code
    assert x["auth"]["policy"] == "api" and x["auth"]["outcome"] == outcome
    assert x["route"]["index"] == 1


def test_explain_locale_and_experiment_agree_with_serve(main_gateway: Gateway) -> None:
    headers = {"cf-ipcountry": "KR", "Cookie": "ab-group=variant"}
    x = explain(main_gateway, "http://127.0.0.1/products?id=3", headers=headers)
    served = main_gateway.get("/products?id=3", headers=headers)
    e = echoed(served)
    assert x["action"] == "proxy" and served.status_code == 200
    assert x["route"]["index"] == route_index(main_gateway, "/:path*")
    assert urlsplit(x["upstream_url"]).path == e.path == "/ko/products"
    assert _ci(x["response_headers"], "X-Region") == "KR" == served.headers["x-region"]
    assert _ci(x["request_headers"], "X-AB-Group") == "variant" == e.header("X-AB-Group")
    assert x["set_cookies"] == [] and set_cookies(served) == []


def test_explain_new_visitor_gets_experiment_cookie(main_gateway: Gateway) -> None:
    x = explain(main_gateway, "http://127.0.0.1/landing")
    assert x["action"] == "proxy"
    cookies = [c for c in x["set_cookies"] if c.startswith("ab-group=")]
    assert len(cookies) == 1 and re.match(r"^ab-group=(control|variant); Path=/; Max-Age=86400; SameSite=Lax; Secure$", cookies[0]), x["set_cookies"]
    variant = cookies[0].split(";")[0].split("=")[1]
    assert _ci(x["request_headers"], "X-AB-Group") == variant


def test_explain_method_fallthrough_lists_skipped_route(main_gateway: Gateway) -> None:
    x = explain(main_gateway, "http://127.0.0.1/api/resize")
    served = main_gateway.get("/api/resize", headers={"cookie": "ab-group=control"})
    assert x["route"]["index"] == route_index(main_gateway, "/:path*")
    assert echoed(served).origin == "web" and x["origin"] == "web"
    skipped = {s["index"]: s for s in x["skipped"]}
    assert 2 in skipped, f"route 2 (POST /api/resize) is not listed as skipped: {x['skipped']}"
    assert skipped[2]["match"] and "/api/resize" in skipped[2]["match"]
    assert "POST" in skipped[2]["reason"] or "method" in skipped[2]["reason"].lower(), skipped[2]
    for s in x["skipped"]:
        assert s["reason"], s

    post = explain(main_gateway, "http://127.0.0.1/api/resize", method="POST")
    assert post["route"]["index"] == 2 and post["origin"] == "regional"
    assert urlsplit(post["upstream_url"]).port == main_gateway.origins["regional"]


def test_explain_conditions_agree_with_serve(main_gateway: Gateway) -> None:
    for headers, expected in (({"x-beta": "1"}, "has-header"), ({"Cookie": "session=1"}, "cond-fallback")):
        x = explain(main_gateway, "http://127.0.0.1/cond/z", headers=headers)
        served = main_gateway.get("/cond/z", headers=headers)
        assert served.headers["x-route"] == expected == _ci(x["response_headers"], "X-Route")
        skipped_reasons = [s["reason"] for s in x["skipped"]]
        assert all(skipped_reasons), x["skipped"]


def test_explain_refused_path_agrees_with_serve(main_gateway: Gateway) -> None:
    from tests.e2e.conftest import raw_get

    x = explain(main_gateway, "http://127.0.0.1/dashboard%2fx")
    served = raw_get(main_gateway.port, "/dashboard%2fx")
    assert x["status"] == 400 == served.status
    assert x["action"] == "respond"


def test_explain_normalizes_like_serve(main_gateway: Gateway) -> None:
    x = explain(main_gateway, "http://127.0.0.1//x/../dashboard/./a")
    assert x["normalized_path"] == "/dashboard/a"
    assert x["route"]["index"] == 0 and x["action"] == "redirect"


def test_explain_text_output(main_gateway: Gateway) -> None:
    r = run_cli(["explain", "--config", str(main_gateway.config), "http://127.0.0.1/dashboard"])
    assert r.returncode == 0, r.stderr
    assert "/dashboard" in r.stdout and "302" in r.stdout


# ---------------------------------------------------------------- token


@pytest.mark.parametrize(("ttl", "seconds"), [("1h", 3600), ("15m", 900)])
def test_token_is_verifiable_and_expires_after_ttl(ttl: str, seconds: int) -> None:
    import gateway

    r = run_cli(["token", "--secret-env", "JWT_SECRET", "--claims", '{"sub": "alice", "role": "admin"}', "--ttl", ttl])
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert re.fullmatch(TOKEN_RE, token), f"stdout is not just a token: {r.stdout!r}"
    claims = gateway.verify(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["role"] == "admin"
    assert abs(claims["exp"] - (time.time() + seconds)) < 60
    assert pyjwt.get_unverified_header(token)["alg"] == "HS256"
    assert pyjwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "alice"
    assert SECRET not in r.stdout + r.stderr


def test_token_is_accepted_by_serve(main_gateway: Gateway) -> None:
    r = run_cli(["token", "--secret-env", "JWT_SECRET", "--claims", '{"sub": "minted"}'])
    token = r.stdout.strip()
    served = main_gateway.get("/dashboard/me", headers={"cookie": f"auth-token={token}"})
    assert served.status_code == 200
    assert echoed(served).header("X-User-Id") == "minted"


def test_token_without_secret_env_fails() -> None:
    r = run_cli(["token", "--secret-env", "GATEWAY_E2E_UNSET_SECRET"])
    assert r.returncode != 0
    assert not re.search(TOKEN_RE, r.stdout)


# ---------------------------------------------------------------- serve --workers


def test_serve_with_two_workers(launch: Launcher) -> None:
    web, regional = launch.echo("web"), launch.echo("regional")
    text = example_config(web, regional)
    gw = launch.gateway(text, {"regions.json": json.dumps(EXAMPLE_REGIONS)}, workers=2)
    with gw.client() as c:
        for _ in range(10):
            assert c.get("/products", headers={"cookie": "ab-group=control"}).status_code == 200
        assert c.get("/dashboard").status_code == 302
    assert wait_for(lambda: len(gw.log_lines()) >= 11, 3)


# ---------------------------------------------------------------- SIGHUP reload (README)


def test_sighup_reloads_config_and_keeps_last_good_one(launch: Launcher) -> None:
    import os
    import signal

    web = launch.echo("web")
    base = f"""
[origins.web]
url = "http://127.0.0.1:{web}"

[[routes]]
match = "/:path*"
origin = "web"
response_headers = {{ "X-Version" = "{{VERSION}}" }}
"""
    gw = launch.gateway(base.replace("{VERSION}", "one"))
    assert gw.get("/v").headers.get("x-version") == "one"

    gw.config.write_text(base.replace("{VERSION}", "two"))
    os.kill(gw.proc.pid, signal.SIGHUP)
    assert wait_for(lambda: gw.get("/v").headers.get("x-version") == "two", 10, interval=0.2), "SIGHUP did not load the new config"

    gw.config.write_text(base.replace("{VERSION}", "three").replace('origin = "web"', 'origin = "nowhere"'))
    os.kill(gw.proc.pid, signal.SIGHUP)

    def refused_and_logged() -> bool:
        r = gw.get("/v")
        assert r.status_code == 200 and r.headers.get("x-version") == "two", "an invalid reload must keep the last good config"
        return "routes[0].origin" in gw.all_output()

    assert wait_for(refused_and_logged, 10, interval=0.2), "the refused reload's problems were not logged"
    for _ in range(5):
        r = gw.get("/v")
        assert r.status_code == 200 and r.headers.get("x-version") == "two", "an invalid reload must keep the last good config"
        time.sleep(0.1)
    assert gw.proc.alive()
