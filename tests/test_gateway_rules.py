"""End to end: route conditions, untrusted peers, placeholders and KV namespaces (file and redis)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis

import gateway
from tests.harness import SECRET, Gateway, echo_origin, gateway_serve, redis_server

CONFIG = """
[server]
trusted_proxies = ["10.0.0.0/8"]          # the test client (127.0.0.1) is NOT trusted
[origins.web]
url = "http://127.0.0.1:{web}"
[origins.beta]
url = "http://127.0.0.1:{beta}"
[auth.session]
secret = "env:JWT_SECRET"
token_from = ["cookie:auth-token", "bearer"]
on_missing = {{ redirect = "/login" }}
on_invalid = {{ redirect = "/login", clear_cookie = "auth-token" }}
[locale]
country_from = "header:cf-ipcountry"
default_country = "US"
countries = {{ KR = "/ko" }}
[kv.regions]
backend = "file"
path = "regions.json"
[kv.live]
backend = "redis"
url = "redis://127.0.0.1:{redis}/0"
cache_ttl = "300ms"
[[routes]]
match = "/beta/:rest*"
has = [{{ type = "header", key = "x-beta", value = "1|yes" }}]
missing = [{{ type = "cookie", key = "opt-out" }}]
origin = "beta"
[[routes]]
match = "/q"
has = [{{ type = "query", key = "v", value = "\\\\d+" }}]
origin = "beta"
[[routes]]
match = "/hosted"
host = "app.example.com"
origin = "beta"
[[routes]]
match = "/me/:section"
auth = "session"
origin = "web"
request_headers = {{ "X-Section" = "{{params.section}}", "X-Plan" = "{{claims.plan|free}}", "X-Whole" = "{{{{literal}}}}" }}
[[routes]]
match = "/live/:key"
origin = "web"
response_headers = {{ "X-Live" = "{{kv.live[{{params.key}}].value|none}}" }}
[[routes]]
match = "/:path*"
locale = true
origin = "web"
response_headers = {{ "X-Region" = "{{country}}", "X-Lang" = "{{kv.regions[{{country}}].language|?}}" }}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Path, int]]:
    tmp = tmp_path_factory.mktemp("rules")
    with ExitStack() as stack:
        web = stack.enter_context(echo_origin(tmp, "web"))
        beta = stack.enter_context(echo_origin(tmp, "beta"))
        redis_port, redis_proc = stack.enter_context(redis_server(tmp))
        (tmp / "regions.json").write_text(json.dumps({"US": {"language": "en"}, "KR": {"language": "ko"}}))
        (tmp / "gateway.toml").write_text(CONFIG.format(web=web, beta=beta, redis=redis_port))
        site = stack.enter_context(gateway_serve(tmp / "gateway.toml"))
        yield site, tmp, redis_port


def get(site: Gateway, path: str, **kw: object) -> httpx.Response:
    return httpx.get(site.base + path, follow_redirects=False, timeout=10, **kw)  # type: ignore[arg-type]


def origin_of(r: httpx.Response) -> str:
    return r.json()["origin"]


def test_has_and_missing_conditions(env) -> None:
    site, _, _ = env
    assert origin_of(get(site, "/beta/x", headers={"x-beta": "1"})) == "beta"
    assert origin_of(get(site, "/beta/x", headers={"x-beta": "yes"})) == "beta"
    assert origin_of(get(site, "/beta/x", headers={"x-beta": "1x"})) == "web"  # the value regex must match whole
    assert origin_of(get(site, "/beta/x")) == "web"
    assert origin_of(get(site, "/beta/x", headers={"x-beta": "1"}, cookies={"opt-out": "1"})) == "web"
    assert origin_of(get(site, "/q?v=12")) == "beta"
    assert origin_of(get(site, "/q?v=a")) == "web"


def test_host_condition(env) -> None:
    site, _, _ = env
    assert origin_of(get(site, "/hosted", headers={"Host": "app.example.com"})) == "beta"
    assert origin_of(get(site, "/hosted", headers={"Host": "other.example.com"})) == "web"


def test_geo_and_forwarded_headers_from_an_untrusted_peer_are_ignored(env) -> None:
    site, _, _ = env
    r = get(site, "/products", headers={"cf-ipcountry": "KR", "X-Forwarded-For": "1.2.3.4", "X-Forwarded-Host": "evil"})
    body = r.json()
    headers = {k.lower(): v for k, v in body["headers"]}
    assert body["path"] == "/products" and r.headers["x-region"] == "US"
    assert "cf-ipcountry" not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-host"] != "evil"


def test_request_header_placeholders(env) -> None:
    site, _, _ = env
    now = int(time.time())
    tok = gateway.encode({"sub": "a", "plan": "pro", "exp": now + 60}, SECRET)
    headers = {k.lower(): v for k, v in get(site, "/me/billing", cookies={"auth-token": tok}, headers={"X-Plan": "spoof"}).json()["headers"]}
    assert headers["x-section"] == "billing"
    assert headers["x-plan"] == "pro"
    assert headers["x-whole"] == "{literal}"
    tok = gateway.encode({"sub": "a", "exp": now + 60}, SECRET)
    headers = {k.lower(): v for k, v in get(site, "/me/x", cookies={"auth-token": tok}).json()["headers"]}
    assert headers["x-plan"] == "free"


def test_file_kv_is_reloaded_when_it_changes(env) -> None:
    site, tmp, _ = env
    assert get(site, "/p").headers["x-lang"] == "en"
    (tmp / "regions.json").write_text(json.dumps({"US": {"language": "en-US"}}))
    deadline = time.monotonic() + 5
    while get(site, "/p").headers["x-lang"] != "en-US":
        assert time.monotonic() < deadline, "the KV file change was not picked up"
        time.sleep(0.2)
    (tmp / "regions.json").write_text("{ not json")
    time.sleep(1.5)
    assert get(site, "/p").headers["x-lang"] == "en-US", "an invalid file keeps the last values"


def test_redis_kv_with_cache_and_outage(env, tmp_path: Path) -> None:
    site, _, port = env
    client = redis.Redis(port=port)
    client.set("live:k1", json.dumps({"value": "one"}))
    assert get(site, "/live/k1").headers["x-live"] == "one"
    client.set("live:k1", json.dumps({"value": "two"}))
    time.sleep(0.5)  # past cache_ttl
    assert get(site, "/live/k1").headers["x-live"] == "two"
    assert get(site, "/live/missing").headers["x-live"] == "none"
    client.shutdown(nosave=True)
    time.sleep(0.5)
    # Redis is down: the last cached value, or the default, and never a 500.
    r = get(site, "/live/k1")
    assert r.status_code == 200 and r.headers["x-live"] == "two"
    r = get(site, "/live/never-seen")
    assert r.status_code == 200 and r.headers["x-live"] == "none"


def test_a_route_condition_regex_cannot_hang_a_worker(tmp_path: Path) -> None:
    """`has` values are the client's: a pattern with nested quantifiers (exponential in a
    backtracking engine) is matched in linear time by the core, and still means what it says."""
    from tests.harness import echo_origin, gateway_serve, write_config

    with echo_origin(tmp_path, "web") as web:
        cfg = write_config(
            tmp_path,
            f'[origins.web]\nurl = "http://127.0.0.1:{web}"\n\n[[routes]]\nmatch = "/:p*"\nhas = [{{ type = "header", key = "x-mail", value = "([a-z0-9]+[.-]?)*@example[.]com" }}]\norigin = "web"\n',
        )
        with gateway_serve(cfg) as gw:
            assert httpx.get(f"{gw.base}/x", headers={"X-Mail": "a" * 40 + "!"}, timeout=30).status_code == 404
            assert httpx.get(f"{gw.base}/x", headers={"X-Mail": "a" * 6000 + "!"}, timeout=30).status_code == 404
            assert httpx.get(f"{gw.base}/x", headers={"X-Mail": "jo.ann@example.com"}, timeout=30).status_code == 200
