"""KV namespaces: the file backend (relative path, reload on change) and a real redis-server
(prefix, cache_ttl, outage -> last cached value or the placeholder default, never a 500)."""

from __future__ import annotations

import json
import signal
import time

import pytest
import redis

from tests.e2e.conftest import Gateway, Launcher, echoed, wait_for

PINNED = {"cookie": "ab-group=control"}


def kv_config(web: int, kv_tables: str, extra_headers: str = "") -> str:
    return f"""
[server]
trusted_proxies = ["127.0.0.1/32"]

[origins.web]
url = "http://127.0.0.1:{web}"
timeout = "5s"

[locale]
country_from = "header:cf-ipcountry"
default_country = "US"
countries = {{ KR = "/ko" }}

{kv_tables}

[[routes]]
match = "/:path*"
origin = "web"
locale = true
response_headers = {{ "X-Region" = "{{country}}", "X-Currency" = "{{kv.regions[{{country}}].currency|USD}}"{extra_headers} }}
request_headers = {{ "X-Req-Currency" = "{{kv.regions[{{country}}].currency|USD}}" }}
"""


def currency(gw: Gateway, country: str) -> str | None:
    r = gw.get("/shop", headers={"cf-ipcountry": country, **PINNED})
    assert r.status_code == 200, f"KV lookups must never fail the request: {r.status_code} {r.text[:300]}"
    value = r.headers.get("x-currency")
    assert echoed(r).headers("X-Req-Currency") == [value], "request and response placeholders disagree"
    return value


# ---------------------------------------------------------------- file backend


@pytest.mark.parametrize(("country", "expected"), [("KR", "KRW"), ("JP", "JPY"), ("US", "USD"), ("FR", "USD")])
def test_file_kv_lookup_with_default(main_gateway: Gateway, country: str, expected: str) -> None:
    r = main_gateway.get("/shop/item", headers={"cf-ipcountry": country, **PINNED})
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("x-region") == country
    assert r.headers.get("x-currency") == expected


def test_file_kv_relative_to_config_and_reloaded(launch: Launcher) -> None:
    web = launch.echo("web")
    files = {"data/regions.json": json.dumps({"KR": {"currency": "KRW"}})}
    text = kv_config(web, '[kv.regions]\nbackend = "file"\npath = "data/regions.json"\n')
    gw = launch.gateway(text, files)  # started from cwd "/", so the path must resolve against the config's dir
    assert currency(gw, "KR") == "KRW"
    assert currency(gw, "DE") == "USD"

    regions = gw.config.parent / "data" / "regions.json"
    tmp = regions.with_suffix(".tmp")
    tmp.write_text(json.dumps({"KR": {"currency": "WON"}, "DE": {"currency": "EUR"}}, indent=2))
    tmp.replace(regions)
    assert wait_for(lambda: currency(gw, "KR") == "WON", 5, interval=0.25), "the KV file was not reloaded within 5s"
    assert currency(gw, "DE") == "EUR"

    # Rewritten in place this time (same inode), as editors and `cat >` do.
    regions.write_text(json.dumps({"KR": {"currency": "KRW-2"}}))
    assert wait_for(lambda: currency(gw, "KR") == "KRW-2", 5, interval=0.25), "an in-place rewrite was not picked up"
    assert currency(gw, "DE") == "USD"


def test_file_kv_broken_file_keeps_serving(launch: Launcher) -> None:
    web = launch.echo("web")
    files = {"regions.json": json.dumps({"KR": {"currency": "KRW"}})}
    gw = launch.gateway(kv_config(web, '[kv.regions]\nbackend = "file"\npath = "regions.json"\n'), files)
    assert currency(gw, "KR") == "KRW"
    (gw.config.parent / "regions.json").write_text("{not json")
    time.sleep(2.2)
    value = currency(gw, "KR")  # status 200 is asserted inside
    assert value in ("KRW", "USD")


# ---------------------------------------------------------------- redis backend


def redis_tables(port: int) -> str:
    return f"""
[kv.regions]
backend = "redis"
url = "redis://127.0.0.1:{port}/0"
cache_ttl = "1s"

[kv.geo]
backend = "redis"
url = "redis://127.0.0.1:{port}/0"
prefix = "cfg:geo:"
cache_ttl = "1s"
"""


def test_redis_kv_values_default_prefix_and_custom_prefix(launch: Launcher) -> None:
    web = launch.echo("web")
    _, port = launch.redis()
    r = redis.Redis(port=port)
    r.set("regions:KR", json.dumps({"currency": "KRW"}))
    r.set("cfg:geo:KR", json.dumps({"currency": "KRW-GEO", "zone": {"name": "Asia/Seoul"}}))
    r.set("KR", json.dumps({"currency": "WRONG-NO-PREFIX"}))
    text = kv_config(web, redis_tables(port), ', "X-Geo" = "{kv.geo[{country}].currency|none}", "X-Zone" = "{kv.geo[{country}].zone.name|none}"')
    gw = launch.gateway(text)
    assert currency(gw, "KR") == "KRW"
    assert currency(gw, "JP") == "USD", "a key not in redis takes the placeholder default"
    resp = gw.get("/x", headers={"cf-ipcountry": "KR", **PINNED})
    assert resp.headers.get("x-geo") == "KRW-GEO"
    assert resp.headers.get("x-zone") == "Asia/Seoul"


def test_redis_kv_cache_ttl(launch: Launcher) -> None:
    web = launch.echo("web")
    _, port = launch.redis()
    r = redis.Redis(port=port)
    r.set("regions:KR", json.dumps({"currency": "KRW"}))
    gw = launch.gateway(kv_config(web, redis_tables(port)))
    assert currency(gw, "KR") == "KRW"
    r.set("regions:KR", json.dumps({"currency": "WON"}))
    assert currency(gw, "KR") == "KRW", "within cache_ttl the cached value is served"
    assert wait_for(lambda: currency(gw, "KR") == "WON", 4, interval=0.2), "the value did not refresh after cache_ttl (1s)"


def test_redis_down_serves_last_cached_value_or_default(launch: Launcher) -> None:
    web = launch.echo("web")
    redis_proc, port = launch.redis()
    r = redis.Redis(port=port)
    r.set("regions:KR", json.dumps({"currency": "KRW"}))
    gw = launch.gateway(kv_config(web, redis_tables(port)))
    assert currency(gw, "KR") == "KRW"
    before = len(gw.all_output())

    redis_proc.stop(sig=signal.SIGKILL)
    assert not redis_proc.alive()
    for wait in (0.0, 1.5):  # inside and past cache_ttl
        time.sleep(wait)
        t0 = time.monotonic()
        assert currency(gw, "KR") == "KRW", "redis down: the last cached value must be served"
        assert time.monotonic() - t0 < 3
    t0 = time.monotonic()
    assert currency(gw, "JP") == "USD", "redis down, nothing cached: the placeholder default"
    assert time.monotonic() - t0 < 3
    assert gw.get("/__gateway/health").status_code == 200
    assert wait_for(lambda: "redis" in gw.all_output()[before:].lower(), 3), "the redis outage was not logged"
