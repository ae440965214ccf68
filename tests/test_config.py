"""gateway.config: what load() accepts, refuses and warns about, in-process (no server).

Each behaviour here was added or changed by issue 9 and the test failed on the loader before it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway import pipeline
from gateway.config import Config, ConfigError, load, parse_duration, parse_size
from gateway.request import Request
from tests.harness import SECRET

SITE = """
[origins.web]
url = "http://127.0.0.1:9000"
"""

CATCH_ALL = """
[[routes]]
match = "/:path*"
origin = "web"
"""


def config(tmp_path: Path, text: str) -> Config:
    return load(tmp_path / "gateway.toml", text)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load(tmp_path / "gateway.toml", text)
    return e.value.problems


# ---------------------------------------------------------------- durations: strings only


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('[origins.web]\nurl = "http://127.0.0.1:9000"\ntimeout = {v}\n' + CATCH_ALL, "origins.web.timeout"),
        (SITE + '[[routes]]\nmatch = "/:path*"\norigin = "web"\ntimeout = {v}\n', "routes[0].timeout"),
        (SITE + '[auth.api]\nsecret = "env:JWT_SECRET"\nleeway = {v}\n' + CATCH_ALL, "auth.api.leeway"),
        (SITE + '[experiments.ab]\ncookie = "ab"\nvariants = {{ a = 1 }}\nmax_age = {v}\n' + CATCH_ALL, "experiments.ab.max_age"),
        (SITE + '[kv.r]\nbackend = "redis"\nurl = "redis://127.0.0.1:6379/0"\ncache_ttl = {v}\n' + CATCH_ALL, "kv.r.cache_ttl"),
    ],
)
def test_a_bare_number_is_refused_for_every_duration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, key: str) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert config(tmp_path, table.format(v='"5s"'))  # the documented form loads
    got = problems(tmp_path, table.format(v="5"))
    assert got == [f'{tmp_path / "gateway.toml"}: {key}: is 5 (expected a duration string such as "5s"; a bare number is ambiguous)'], got
    assert any("a bare number is ambiguous" in p and '"0.5s"' in p for p in problems(tmp_path, table.format(v="0.5")))


def test_durations_and_sizes_parse_as_documented() -> None:
    assert parse_duration("500ms") == 0.5 and parse_duration("10s") == 10 and parse_duration("5m") == 300
    assert parse_duration("1h") == 3600 and parse_duration("1d") == 86400
    assert parse_duration(5) is None and parse_duration(5.0) is None and parse_duration(True) is None
    assert parse_duration("5") is None and parse_duration("-5s") is None
    # Sizes stay strings or an integer number of bytes.
    assert parse_size("20MB") == 20_000_000 and parse_size("512KiB") == 512 * 1024 and parse_size(1024) == 1024


# ---------------------------------------------------------------- trusted proxies (fault 5)

TRUST = "[server]\ntrusted_proxies = [{nets}]\n" + SITE + CATCH_ALL


def _server_verdict(cfg: Config, peer: str) -> bool:
    return cfg.server.is_trusted(peer)


def _pipeline_verdict(cfg: Config, peer: str) -> bool:
    # What the stages make of it: the headers stage appends to a trusted peer's X-Forwarded-For.
    request = Request("GET", b"/", b"", [(b"host", b"t"), (b"x-forwarded-for", b"198.51.100.7")], peer, "http")
    ctx = asyncio.run(pipeline.explain(cfg, request, None))
    return (b"x-forwarded-for", f"198.51.100.7, {peer}".encode()) in ctx.forward_headers


@pytest.mark.parametrize("verdict", [_server_verdict, _pipeline_verdict], ids=["Server.is_trusted", "pipeline"])
def test_trust_verdicts_follow_the_config_through_reloads(tmp_path: Path, verdict) -> None:
    # A verdict cached under id(config) outlives the config: CPython hands the same id to the next
    # config loaded in its place, so alternating reloads got the previous config's verdicts.
    # Whether an id is reused depends on the allocator, so reload often enough to see it happen.
    texts = [TRUST.format(nets='"10.0.0.0/8"'), TRUST.format(nets='"192.168.0.0/16"')]
    wrong = []
    for i in range(1000):
        trusted = i % 2 == 0
        cfg = config(tmp_path, texts[i % 2])
        if verdict(cfg, "10.1.2.3") != trusted:
            wrong.append(i)
        del cfg
        gc.collect(0)
    assert not wrong, f"{len(wrong)} of 1000 reloads got a stale trust verdict (first at reload {wrong[0]})"


def test_is_trusted(tmp_path: Path) -> None:
    server = config(tmp_path, TRUST.format(nets='"127.0.0.1/32", "10.0.0.0/8", "::1/128"')).server
    assert server.is_trusted("127.0.0.1") and server.is_trusted("10.255.0.1") and server.is_trusted("::1")
    for peer in ("127.0.0.2", "192.168.1.1", "::2", None, "", "not-an-address", "unix:/tmp/sock"):
        assert not server.is_trusted(peer), peer
    assert server.is_trusted("10.255.0.1"), "a cached verdict must stay the same"
    assert not config(tmp_path, SITE + CATCH_ALL).server.is_trusted("127.0.0.1"), "nobody is trusted by default"


# ---------------------------------------------------------------- host names (fault 1)


def _hosted(host: str) -> str:
    return SITE + f'[[routes]]\nmatch = "/admin/:path*"\nhost = "{host}"\norigin = "web"\n' + CATCH_ALL


@pytest.mark.parametrize(("written", "normalized"), [("admin.example.com", "admin.example.com"), ("Admin.Example.COM.", "admin.example.com"), ("[::1]", "::1"), ("::1", "::1")])
def test_a_route_host_is_normalized_at_load(tmp_path: Path, written: str, normalized: str) -> None:
    # Compared with the request's host name, which is lower-case without port or trailing dot.
    assert config(tmp_path, _hosted(written)).routes[0].host == normalized


@pytest.mark.parametrize("written", ["admin.example.com:8080", "[::1]:8080", "Admin.example.com:"])
def test_a_route_host_with_a_port_is_refused(tmp_path: Path, written: str) -> None:
    got = problems(tmp_path, _hosted(written))
    assert len(got) == 1 and ": routes[0].host: " in got[0] and "port" in got[0], got


@pytest.mark.parametrize("written", ["http://admin.example.com", "admin example.com", "admin.example.com/x", ""])
def test_a_route_host_that_is_no_host_name_is_refused(tmp_path: Path, written: str) -> None:
    got = problems(tmp_path, _hosted(written))
    assert len(got) == 1 and ": routes[0].host: " in got[0], got


def test_a_host_condition_matches_the_normalized_host(tmp_path: Path) -> None:
    cond = config(tmp_path, SITE + '[[routes]]\nmatch = "/:path*"\nhas = [{ type = "host", value = "Admin\\\\.example\\\\.com\\\\." }]\norigin = "web"\n').routes[0].has[0]
    assert cond.value is not None and cond.value.match("admin.example.com") and not cond.value.match("admin.example.com.evil")
    got = problems(tmp_path, SITE + '[[routes]]\nmatch = "/:path*"\nmissing = [{ type = "host", value = "admin\\\\.example\\\\.com:8080" }]\norigin = "web"\n')
    assert len(got) == 1 and ": routes[0].missing[0].value: " in got[0] and "port" in got[0], got


ADMIN = (
    SITE
    + """
[auth.session]
secret = "env:JWT_SECRET"
token_from = ["cookie:auth-token"]
on_missing = { status = 401 }

[[routes]]
match = "/admin/:path*"
HOSTED
auth = "session"
origin = "web"
"""
    + CATCH_ALL
)


@pytest.mark.parametrize("how", ['host = "admin.example.com"', 'has = [{ type = "host", value = "admin\\\\.example\\\\.com" }]'])
@pytest.mark.parametrize("host", ["admin.example.com", "admin.example.com:8080", "admin.example.com.", "ADMIN.example.com:80", "Admin.Example.Com.:443"])
def test_a_host_scoped_route_is_not_skipped_for_a_port_case_or_trailing_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, host: str) -> None:
    # Issue 9 fault 1: these fell through to the catch-all and reached the origin without a token.
    monkeypatch.setenv("JWT_SECRET", SECRET)
    request = Request("GET", b"/admin/users", b"", [(b"host", host.encode())], "203.0.113.9", "http")
    ctx = asyncio.run(pipeline.explain(config(tmp_path, ADMIN.replace("HOSTED", how)), request, None))
    assert ctx.route is not None and ctx.route.index == 0 and ctx.status == 401, (ctx.route, ctx.status)


# ---------------------------------------------------------------- file-backed KV


def _kv(path: str) -> str:
    return SITE + f'[kv.regions]\nbackend = "file"\npath = "{path}"\n' + CATCH_ALL


@pytest.mark.parametrize(
    ("content", "why"),
    [(None, "No such file"), ("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), ('"KRW"', "JSON object"), ("", "not valid JSON")],
)
def test_a_file_kv_that_cannot_be_used_is_a_problem_at_load(tmp_path: Path, content: str | None, why: str) -> None:
    data = tmp_path / "data" / "regions.json"
    if content is not None:
        data.parent.mkdir()
        data.write_text(content)
    got = problems(tmp_path, _kv("data/regions.json"))
    assert len(got) == 1 and ": kv.regions.path: " in got[0] and str(data) in got[0] and why in got[0], got


def test_a_file_kv_that_is_a_directory_is_a_problem_at_load(tmp_path: Path) -> None:
    (tmp_path / "regions.json").mkdir()
    got = problems(tmp_path, _kv("regions.json"))
    assert len(got) == 1 and ": kv.regions.path: " in got[0], got


def test_a_usable_file_kv_loads(tmp_path: Path) -> None:
    (tmp_path / "regions.json").write_text(json.dumps({"KR": {"currency": "KRW"}}))
    kv = config(tmp_path, _kv("regions.json")).kv["regions"]
    assert kv.backend == "file" and kv.path == tmp_path / "regions.json"


def test_check_names_the_missing_kv_file(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(_kv("regions.json"))
    r = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(tmp_path / "gateway.toml")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "kv.regions.path" in r.stdout and str(tmp_path / "regions.json") in r.stdout, r.stdout + r.stderr


# ---------------------------------------------------------------- warnings


def test_a_locale_placeholder_on_a_route_without_locale_is_a_warning(tmp_path: Path) -> None:
    text = (
        SITE
        + '[locale]\ncountry_from = "header:cf-ipcountry"\n[server]\ntrusted_proxies = ["127.0.0.1/32"]\n'
        + '[kv.regions]\nbackend = "redis"\nurl = "redis://127.0.0.1:6379/0"\n'
        + '[[routes]]\nmatch = "/a"\nlocale = true\nresponse_headers = { "X-Region" = "{country}" }\norigin = "web"\n'
        + '[[routes]]\nmatch = "/b"\nrequest_headers = { "X-Region" = "{country}", "X-Cur" = "{kv.regions[{country}].currency|USD}" }\norigin = "web"\n'
        + '[[routes]]\nmatch = "/c"\nresponse_headers = { "X-Lang" = "lang={lang|en}" }\norigin = "web"\n'
    )
    cfg = config(tmp_path, text)
    f = tmp_path / "gateway.toml"
    assert cfg.warnings == (
        f"{f}: routes[1].request_headers.X-Region: uses {{country}} but this route has no locale = true, so it is always empty (expected locale = true on the route)",
        f"{f}: routes[1].request_headers.X-Cur: uses {{country}} but this route has no locale = true, so it is always empty (expected locale = true on the route)",
        f"{f}: routes[2].response_headers.X-Lang: uses {{lang}} but this route has no locale = true, so it is always empty (expected locale = true on the route)",
    )


def test_a_country_header_nobody_may_send_is_a_warning(tmp_path: Path) -> None:
    text = SITE + '[locale]\ncountry_from = "header:cf-ipcountry"\n' + CATCH_ALL
    (w,) = config(tmp_path, text).warnings
    assert ": locale.country_from: " in w and "trusted_proxies" in w
    assert config(tmp_path, text + '[server]\ntrusted_proxies = ["10.0.0.0/8"]\n').warnings == ()
    assert config(tmp_path, SITE + CATCH_ALL).warnings == ()


def test_check_prints_warnings_and_still_succeeds(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(SITE + '[[routes]]\nmatch = "/:path*"\nresponse_headers = { "X-Region" = "{country}" }\norigin = "web"\n')
    r = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(tmp_path / "gateway.toml")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"warning: {tmp_path / 'gateway.toml'}: routes[0].response_headers.X-Region: uses {{country}}"), lines
    assert "ok" in lines[-1]


# ---------------------------------------------------------------- every knob is in the TOML


def test_runtime_mode_and_io_threads_are_server_keys(tmp_path: Path) -> None:
    server = config(tmp_path, SITE + CATCH_ALL).server
    assert server.runtime_mode == "auto" and server.io_threads == 1
    server = config(tmp_path, '[server]\nruntime_mode = "st"\nio_threads = 4\n' + SITE + CATCH_ALL).server
    assert server.runtime_mode == "st" and server.io_threads == 4
    got = problems(tmp_path, '[server]\nruntime_mode = "fast"\nio_threads = 0\n' + SITE + CATCH_ALL)
    assert len(got) == 2 and ": server.runtime_mode: is 'fast' (" in got[0] and ": server.io_threads: is 0 (" in got[1], got
    got = problems(tmp_path, '[server]\nio_threads = "4"\n' + SITE + CATCH_ALL)
    assert len(got) == 1 and ": server.io_threads: " in got[0], got


def test_serve_passes_the_server_knobs_on_and_prints_warnings(tmp_path: Path) -> None:
    """A real `gateway serve`: its worker runs with the configured upstream I/O threads (read by the
    core from the worker's environment) and the warnings are printed at start."""
    from tests.harness import gateway_serve

    cfg = tmp_path / "gateway.toml"
    cfg.write_text('[server]\nruntime_mode = "st"\nio_threads = 3\n' + SITE + '[[routes]]\nmatch = "/:path*"\nresponse_headers = { "X-L" = "{lang}" }\norigin = "web"\n')
    with gateway_serve(cfg) as gw:
        assert gw.get("/__gateway/health").status_code == 200
        pid = gw.get("/__gateway/health").json()["pid"]  # the worker that answered
        gw.get("/")  # the core's upstream runtime starts with the first forward (the origin is down: 502)
        deadline = time.monotonic() + 5  # the runtime's threads start in the background
        while True:
            names = [Path(t, "comm").read_text().strip() for t in Path(f"/proc/{pid}/task").iterdir()]
            if names.count("gateway-io") == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert names.count("gateway-io") == 3, names
        assert f"warning: {cfg}: routes[0].response_headers.X-L: uses {{lang}}" in gw.stderr.read_text()


# ---------------------------------------------------------------- template parameter names (fault 7)


def _params_route(match: str, value: str) -> str:
    return SITE + f"[[routes]]\nmatch = {match}\nrequest_headers = {{ \"X-P\" = \"{value}\" }}\norigin = \"web\"\n"


@pytest.mark.parametrize(
    ("match", "value", "path", "rendered"),
    [
        ('"/(api|rpc)/:x"', "{params.0}-{params.x}", "/rpc/7", "rpc-7"),
        ('"/a/(b)(c)/:y(\\\\d+)/(d)"', "{params.0}{params.1}{params.2}{params.y}", "/a/bc/7/d", "bcd7"),
        ('["/a/:id", "/b/:slug*"]', "{params.id|-}{params.slug|-}", "/b/x/y", "-x/y"),
    ],
)
def test_templates_accept_every_name_the_router_captures(tmp_path: Path, match: str, value: str, path: str, rendered: str) -> None:
    cfg = config(tmp_path, _params_route(match, value))
    ctx = asyncio.run(pipeline.explain(cfg, Request("GET", path.encode(), b"", [(b"host", b"t")], "203.0.113.9", "http"), None))
    assert ctx.route is cfg.routes[0] and ctx.set_headers["X-P"] == rendered, ctx.trace


@pytest.mark.parametrize(
    ("match", "value"),
    [
        ('"/(api|rpc)/:x"', "{params.1}"),  # one unnamed group: only "0"
        ('"/x/(foo:bar)"', "{params.bar}"),  # ":bar" inside a group's regex is no parameter
        ('"/:id"', "{params.ID}"),
    ],
)
def test_templates_refuse_names_the_router_does_not_capture(tmp_path: Path, match: str, value: str) -> None:
    got = problems(tmp_path, _params_route(match, value))
    assert len(got) == 1 and ": routes[0].request_headers.X-P: " in got[0] and "no parameter named" in got[0], got


@pytest.mark.parametrize(
    ("match", "path"),
    [("/(api|rpc)/:x", "/rpc/7"), ("/a/(b)(c)/:y(\\d+)/(d)", "/a/bc/7/d"), ("/b/:slug*", "/b/x/y"), ("/:a/:b?", "/x"), ("/f/:rest+", "/f/1/2")],
)
def test_the_names_templates_may_use_are_the_names_the_router_captures(match: str, path: str) -> None:
    from gateway import _core

    routes = _core.RouteSet([[match]])
    params = routes.params(0, path)
    assert params is not None
    assert sorted(routes.param_names(0)) == sorted(params), (routes.param_names(0), params)


# ---------------------------------------------------------------- messages in the user's terms


def test_a_bad_condition_regex_is_reported_in_the_users_terms(tmp_path: Path) -> None:
    got = problems(tmp_path, SITE + '[[routes]]\nmatch = "/:path*"\nhas = [{ type = "header", key = "x-a", value = "[" }]\norigin = "web"\n')
    assert len(got) == 1 and "routes[0].has[0].value: is not a valid regex" in got[0] and "\\Z" not in got[0], got


def test_an_https_origin_needs_only_its_url(tmp_path: Path) -> None:
    # Issue 11: verified against the system's roots, Host and SNI from the URL.
    config = load(tmp_path / "gateway.toml", '[origins.web]\nurl = "https://fn.example.com"\n' + CATCH_ALL)
    web = config.origins["web"]
    assert (web.scheme, web.port, web.sni, web.tls_verify, web.http2, web.fixed_host) == ("https", 443, "fn.example.com", True, "auto", "fn.example.com")
    assert web.tls is not None and config.warnings == ()


def test_a_bad_origin_url_is_one_problem_not_two(tmp_path: Path) -> None:
    for url in ("ftp://fn.example.com", "https://fn.example.com:99999", "https://user@fn.example.com"):
        got = problems(tmp_path, f'[origins.web]\nurl = "{url}"\n' + CATCH_ALL)
        assert len(got) == 1 and "origins.web.url" in got[0], got


def test_forward_claims_may_not_name_a_header_the_gateway_manages(tmp_path: Path) -> None:
    policy = '[auth.s]\nsecret = "env:JWT_SECRET"\nforward_claims = {{ sub = "{h}" }}\n'
    for header in ("Cookie", "Host", "authorization", "X-Forwarded-For", "Transfer-Encoding"):
        got = problems(tmp_path, SITE + policy.format(h=header) + CATCH_ALL)
        assert any(f"auth.s.forward_claims.sub: is '{header}', a header the gateway manages" in p for p in got), got
