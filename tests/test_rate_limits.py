"""Rate limits (issue 12): `[limits.NAME]` and a route's `rate_limit`, over real sockets.

A real `gateway serve` (two worker processes for the memory store, whose one table they share), a
real echo origin, a real redis-server for the redis store and its outages. Limits use rates of a
few per hour so nothing refills while a test runs: the counts asserted are exact, not timed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from gateway import _core, limits, pipeline
from gateway.config import ConfigError, RateLimit, load
from gateway.request import from_url
from tests.harness import GATEWAY_BIN, SECRET, Gateway, Proc, free_port, gateway_env, port_is_listening, spawn, start_echo, start_gateway, start_redis, wait_for, write_config


def config_text(origin: int, limits_toml: str, routes: str, server: str = "") -> str:
    return f"""
[server]
{server}

[origins.web]
url = "http://127.0.0.1:{origin}"
timeout = "5s"

[auth.api]
secret = "env:JWT_SECRET"

{limits_toml}

{routes}
"""


@pytest.fixture(autouse=True)
def jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # For the configs loaded in this process (`gateway serve` gets it from harness.gateway_env).
    monkeypatch.setenv("JWT_SECRET", SECRET)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def serve(tmp: Path, stack: ExitStack, limits_toml: str, routes: str, *, workers: int = 1, server: str = "", origin: int | None = None, name: str = "gw") -> Gateway:
    if origin is None:
        proc, origin = start_echo(tmp, "web")
        stack.callback(proc.stop)
    path = write_config(tmp / name, config_text(origin, limits_toml, routes, server))
    gw = start_gateway(path, workers=workers)
    stack.callback(gw.stop)
    return gw


def worker_clients(gw: Gateway, stack: ExitStack, want: int = 2) -> list[httpx.Client]:
    """One keep-alive connection to each of `want` distinct worker processes (by health's pid)."""
    by_pid: dict[int, httpx.Client] = {}
    for _ in range(200):
        c = httpx.Client(base_url=gw.base, timeout=10, limits=httpx.Limits(max_connections=1))
        pid = c.get("/__gateway/health").json()["pid"]
        if pid in by_pid:
            c.close()
        else:
            by_pid[pid] = c
            stack.callback(c.close)
            if len(by_pid) == want:
                return list(by_pid.values())
    pytest.fail(f"could not reach {want} distinct workers: {sorted(by_pid)}")


def mapped_table(pid: int) -> Path:
    """The rate-limit table file worker `pid` has mapped (from /proc/PID/maps)."""
    paths = {line.split(None, 5)[5] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "gateway-limits-" in line}
    assert len(paths) == 1, paths
    return Path(paths.pop())


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


PER_IP = """
[limits.per_ip]
key = "ip"
rate = "1/h"
burst = 5
"""


def test_memory_store_is_one_count_shared_by_both_workers(tmp_path: Path, stack: ExitStack) -> None:
    gw = serve(tmp_path, stack, PER_IP, '[[routes]]\nmatch = "/api/:path*"\norigin = "web"\nrate_limit = ["per_ip"]\n\n[[routes]]\nmatch = "/:path*"\norigin = "web"\n', workers=2)
    a, b = worker_clients(gw, stack)
    responses = [(a if i % 2 else b).get(f"/api/item/{i}") for i in range(12)]
    # burst + 1 = 6 pass however the requests are spread over the two processes; the rest are refused.
    assert statuses(responses) == [200] * 6 + [429] * 6
    # Both processes map the one table file.
    pids = {c.get("/__gateway/health").json()["pid"] for c in (a, b)}
    assert len({mapped_table(pid) for pid in pids}) == 1
    # Routes without the limit are not counted.
    assert a.get("/free").status_code == 200 and b.get("/free").status_code == 200

    r = responses[-1]
    # 1 per hour: the next request passes in exactly one interval, 3600 s (whole seconds, rounded up).
    assert r.headers["retry-after"] == "3600"
    assert r.headers["ratelimit-policy"] == '"per_ip";q=1;w=3600'
    assert r.headers["ratelimit"] == '"per_ip";r=0;t=3600'
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "rate_limited", "detail": "over the rate limit per_ip; retry in 3600 s"}

    # One access-log line per request; the refused ones say which limit and how.
    def api_lines() -> list[dict[str, object]]:
        return [e for e in gw.log_entries() if str(e.get("path", "")).startswith("/api/")]

    assert gw.wait_log(lambda e: e.get("path") == "/api/item/11") is not None
    lines = api_lines()
    assert len(lines) == 12
    assert sorted(str(e["rate_limit"]) for e in lines) == ["per_ip:allowed"] * 6 + ["per_ip:limited"] * 6
    assert all(e["status"] == 429 for e in lines if e["rate_limit"] == "per_ip:limited")


def test_header_keys_count_apart_and_absent_headers_share_one_bucket(tmp_path: Path, stack: ExitStack) -> None:
    gw = serve(tmp_path, stack, '[limits.per_key]\nkey = "header:X-Api-Key"\nrate = "2/h"\nburst = 0\n', '[[routes]]\nmatch = "/:path*"\norigin = "web"\nrate_limit = ["per_key"]\n')
    with gw.client() as c:
        assert c.get("/", headers={"x-api-key": "alpha"}).status_code == 200
        assert c.get("/", headers={"x-api-key": "alpha"}).status_code == 429
        assert c.get("/", headers={"X-API-KEY": "beta"}).status_code == 200
        # Without the header: one shared bucket, not a way around the limit.
        assert c.get("/").status_code == 200
        assert c.get("/").status_code == 429
        assert c.get("/", headers={"x-api-key": "gamma"}).status_code == 200


def test_claim_keys_count_per_verified_identity_after_auth(tmp_path: Path, stack: ExitStack) -> None:
    gw = serve(
        tmp_path,
        stack,
        PER_IP.replace("burst = 5", "burst = 50") + '\n[limits.per_user]\nkey = "claim:org.user"\nrate = "1/h"\nburst = 1\n',
        '[[routes]]\nmatch = "/:path*"\norigin = "web"\nauth = "api"\nrate_limit = ["per_ip", "per_user"]\n',
    )

    def token(claims: dict[str, object]) -> dict[str, str]:
        return {"authorization": "Bearer " + _core.encode(claims, SECRET.encode(), "HS256")}

    alice, bob = token({"sub": "1", "org": {"user": "alice"}}), token({"sub": "2", "org": {"user": "bob"}})
    with gw.client() as c:
        assert [c.get("/", headers=alice).status_code for _ in range(3)] == [200, 200, 429]
        assert [c.get("/", headers=bob).status_code for _ in range(3)] == [200, 200, 429]
        # Refused by auth before the claim limit: a bad token is a 401, and is not counted per user.
        assert c.get("/", headers={"authorization": "Bearer nope"}).status_code == 401
        # A valid token without the claim: the shared missing bucket.
        nobody = token({"sub": "3"})
        assert [c.get("/", headers=nobody).status_code for _ in range(3)] == [200, 200, 429]
        r = c.get("/", headers=alice)
        assert r.headers["ratelimit-policy"] == '"per_user";q=1;w=3600'


def test_ip_key_is_the_trusted_proxy_aware_client_address(tmp_path: Path, stack: ExitStack) -> None:
    limits_toml = '[limits.per_ip]\nkey = "ip"\nrate = "1/h"\nburst = 0\n'
    routes = '[[routes]]\nmatch = "/:path*"\norigin = "web"\nrate_limit = ["per_ip"]\n'
    trusted = serve(tmp_path, stack, limits_toml, routes, server='trusted_proxies = ["127.0.0.1/32"]', name="trusted")
    with trusted.client() as c:
        # Behind a trusted proxy: the rightmost hop that is not a trusted proxy is the client.
        assert c.get("/", headers={"x-forwarded-for": "203.0.113.1"}).status_code == 200
        assert c.get("/", headers={"x-forwarded-for": "203.0.113.2"}).status_code == 200
        # A client that prepends its own hops cannot change its key: 203.0.113.1 is still counted.
        assert c.get("/", headers={"x-forwarded-for": "198.51.100.9, 203.0.113.1"}).status_code == 429
        # Trusted proxies on the right are skipped.
        assert c.get("/", headers={"x-forwarded-for": "203.0.113.2, 127.0.0.1"}).status_code == 429
        # IPv6 clients are counted by their /64.
        assert c.get("/", headers={"x-forwarded-for": "2001:db8:1:2::1"}).status_code == 200
        assert c.get("/", headers={"x-forwarded-for": "2001:db8:1:2:ffff::9"}).status_code == 429
        assert c.get("/", headers={"x-forwarded-for": "2001:db8:1:3::1"}).status_code == 200
    untrusted = serve(tmp_path, stack, limits_toml, routes, name="untrusted", origin=_origin_port(trusted))
    with untrusted.client() as c:
        # From a peer that is not trusted, X-Forwarded-For is the client's word: the peer is the key.
        assert c.get("/", headers={"x-forwarded-for": "203.0.113.1"}).status_code == 200
        assert c.get("/", headers={"x-forwarded-for": "203.0.113.2"}).status_code == 429


def _origin_port(gw: Gateway) -> int:
    text = gw.config.read_text()
    return int(text.split('url = "http://127.0.0.1:')[1].split('"')[0])


REDIS_LIMITS = """
[limits.shared]
key = "ip"
rate = "1/h"
burst = 3
store = "redis"
redis = "redis://127.0.0.1:{port}/0"
on_store_error = "{on_error}"
"""


def test_redis_store_is_one_count_shared_by_two_instances(tmp_path: Path, stack: ExitStack) -> None:
    redis_proc, port = start_redis(tmp_path / "redis")
    stack.callback(redis_proc.stop)
    toml = REDIS_LIMITS.format(port=port, on_error="deny")
    routes = '[[routes]]\nmatch = "/:path*"\norigin = "web"\nrate_limit = ["shared"]\n'
    one = serve(tmp_path, stack, toml, routes, name="one")
    two = serve(tmp_path, stack, toml, routes, name="two", origin=_origin_port(one))
    with one.client() as c1, two.client() as c2:
        got = [(c1 if i % 2 else c2).get(f"/r{i}").status_code for i in range(8)]
    assert got == [200] * 4 + [429] * 4
    # Redis holds hashes, never the address itself.
    keys = subprocess.run(["redis-cli", "-p", str(port), "--scan", "--pattern", "*"], capture_output=True, text=True, timeout=10).stdout.split()
    assert keys and all(k.startswith("gateway:rl:shared:") for k in keys) and not any("127.0.0.1" in k for k in keys)
    r = httpx.get(one.base + "/x")
    assert r.status_code == 429 and r.headers["retry-after"] == "3600" and r.headers["ratelimit-policy"] == '"shared";q=1;w=3600'


def test_redis_outage_degrades_as_configured_allow_and_deny(tmp_path: Path, stack: ExitStack) -> None:
    redis_proc, port = start_redis(tmp_path / "redis")
    stack.callback(redis_proc.stop)
    toml = REDIS_LIMITS.format(port=port, on_error="allow") + REDIS_LIMITS.format(port=port, on_error="deny").replace("[limits.shared]", "[limits.strict]")
    routes = '[[routes]]\nmatch = "/open/:p*"\norigin = "web"\nrate_limit = ["shared"]\n\n[[routes]]\nmatch = "/closed/:p*"\norigin = "web"\nrate_limit = ["strict"]\n'
    gw = serve(tmp_path, stack, toml, routes, workers=2)
    with gw.client() as c:
        assert c.get("/open/1").status_code == 200
        assert c.get("/closed/1").status_code == 200
        redis_proc.stop()
        # allow: through, uncounted; deny: 503 with Retry-After. Never a 500, never a hang.
        for i in range(6):
            assert c.get(f"/open/{i}").status_code == 200
            r = c.get(f"/closed/{i}")
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert r.json()["error"] == "service_unavailable"
    assert gw.wait_log(lambda e: e.get("rate_limit") == "strict:store_error_denied") is not None
    assert gw.wait_log(lambda e: e.get("rate_limit") == "shared:store_error_allowed") is not None
    # The outage is logged, not once per request.
    warnings = [ln for ln in gw.proc.stderr_text().splitlines() if "cannot be reached" in ln]
    assert 1 <= len(warnings) <= 4, warnings  # at most once per limit's redis per worker


def test_explain_lists_the_limits_and_counts_nothing(tmp_path: Path, stack: ExitStack) -> None:
    proc, origin = start_echo(tmp_path, "web")
    stack.callback(proc.stop)
    # The redis store's server is not even running: explain never asks a store.
    text = config_text(
        origin,
        '[limits.per_ip]\nkey = "ip"\nrate = "1/h"\nburst = 0\n\n[limits.per_key]\nkey = "header:X-Api-Key"\nrate = "1/h"\nstore = "redis"\nredis = "redis://127.0.0.1:1/0"\non_store_error = "deny"\n',
        '[[routes]]\nmatch = "/:path*"\norigin = "web"\nrate_limit = ["per_ip", "per_key"]\n',
    )
    path = write_config(tmp_path / "explain", text)
    out = subprocess.run(
        [GATEWAY_BIN, "explain", "--config", str(path), "-H", "X-Api-Key: s3cret-api-key", "http://localhost/x"], capture_output=True, text=True, env=gateway_env(), timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "per_ip (1/h, burst 0, key ip, store memory): applies to ip 127.0.0.1; not counted (dry run)" in out.stdout
    assert "per_key (1/h, burst 0, key header:x-api-key, store redis): applies to header x-api-key (present)" in out.stdout
    assert "s3cret-api-key" not in out.stdout.split("sends")[0]  # the stages never print the key's value
    assert "result     : forwarded" in out.stdout

    # In one process with the memory table: many explains, then the one real request still passes.
    config = load(path)
    request = from_url("GET", "http://localhost/x", [], "192.0.2.7")
    for _ in range(5):
        ctx = asyncio.run(pipeline.explain(config, request, None))
        assert ctx.answer is None
    mem = config.limits["per_ip"]
    assert limits.memory.check(mem, "192.0.2.7")[0] is True
    assert limits.memory.check(mem, "192.0.2.7")[0] is False


def test_flood_of_distinct_keys_never_grows_the_table_and_a_hot_key_stays_limited(tmp_path: Path, stack: ExitStack) -> None:
    # The table `gateway serve` made for its workers: its file is the whole of the memory store.
    gw = serve(tmp_path, stack, '[limits.per_key]\nkey = "header:X-Api-Key"\nrate = "1/h"\nburst = 0\n', '[[routes]]\nmatch = "/:path*"\norigin = "web"\nrate_limit = ["per_key"]\n')
    with gw.client() as c:
        pid = c.get("/__gateway/health").json()["pid"]
        assert c.get("/", headers={"x-api-key": "hot"}).status_code == 200
        table = mapped_table(pid)
        size = table.stat().st_size
        assert size == 64 + 8 * limits.DEFAULT_SLOTS
        # Its pages are reserved at start (a full /dev/shm fails then, not as a SIGBUS in a worker later).
        assert table.stat().st_blocks * 512 >= size
        for i in range(400):
            assert c.get("/", headers={"x-api-key": f"flood-{i}"}).status_code == 200
            if i % 50 == 0:
                assert c.get("/", headers={"x-api-key": "hot"}).status_code == 429
        assert table.stat().st_size == size
        assert c.get("/", headers={"x-api-key": "hot"}).status_code == 429

    # A table far smaller than the flood (64 slots, 20,000 keys): same size after, the hot key still
    # limited, and every flooding key is refused on its second request (shared counts, stricter).
    small = _core.RateTable.create(str(tmp_path / "small"), 64, os.urandom(16))
    before = (tmp_path / "small").stat().st_size
    now = _core.monotonic_us()
    assert small.check(b"hot", None, 3_600_000_000, 0, now_us=now)[0]
    for i in range(20_000):
        small.check(b"k", str(i), 3_600_000_000, 0, now_us=now)
    assert (tmp_path / "small").stat().st_size == before == small.size_bytes == 64 + 8 * 64
    assert small.live(now) == 64
    assert not small.check(b"hot", None, 3_600_000_000, 0, now_us=now)[0]
    assert not any(small.check(b"k", str(i), 3_600_000_000, 0, now_us=now)[0] for i in range(2000))


def test_client_ip_reads_x_forwarded_for_only_through_trusted_proxies(tmp_path: Path) -> None:
    path = write_config(tmp_path, config_text(9, "", '[[routes]]\nmatch = "/:p*"\norigin = "web"\n', server='trusted_proxies = ["10.0.0.0/8"]'))
    config = load(path)

    def ip(peer: str, xff: list[str]) -> str:
        from gateway.context import RequestContext

        req = from_url("GET", "http://localhost/", [("x-forwarded-for", v) for v in xff], peer)
        return limits.client_ip(RequestContext(config, req, None, 0.0))

    assert ip("192.0.2.1", ["203.0.113.5"]) == "192.0.2.1"
    assert ip("10.0.0.1", ["203.0.113.5"]) == "203.0.113.5"
    assert ip("10.0.0.1", ["198.51.100.1, 203.0.113.5", "10.1.1.1"]) == "203.0.113.5"
    assert ip("10.0.0.1", ["10.9.9.9, 10.1.1.1"]) == "10.9.9.9"
    assert ip("10.0.0.1", []) == "10.0.0.1"
    assert ip("2001:db8::1", []) == "2001:db8::/64"
    assert ip("::ffff:192.0.2.9", []) == "192.0.2.9"


BAD_CONFIGS = [
    ('[limits.a]\nkey = "ip"\nrate = "100/d"\n', 'limits.a.rate: is \'100/d\' (expected "N/s", "N/m" or "N/h"'),
    ('[limits.a]\nkey = "ip"\nrate = "0/s"\n', "limits.a.rate: is '0/s'"),
    ('[limits.a]\nkey = "ip"\nrate = 100\n', "limits.a.rate: is 100"),
    ('[limits.a]\nkey = "ip"\n', "limits.a.rate: is missing"),
    ('[limits.a]\nkey = "ip"\nrate = "1/s"\nburst = -1\n', "limits.a.burst: is -1 (expected a whole number of requests, 0 or more)"),
    ('[limits.a]\nkey = "ip"\nrate = "1/s"\nburst = 2.5\n', "limits.a.burst: is 2.5"),
    ('[limits.a]\nkey = "ip"\nrate = "1/h"\nburst = 100000000\n', "limits.a.burst: 100000000 at 1/h takes longer than 30 days to refill"),
    ('[limits.a]\nkey = "cookie:sid"\nrate = "1/s"\n', "limits.a.key: is 'cookie:sid' (expected \"ip\", \"header:NAME\" or \"claim:NAME\""),
    ('[limits.a]\nkey = "header:"\nrate = "1/s"\n', "limits.a.key: is 'header:'"),
    ('[limits.a]\nrate = "1/s"\n', "limits.a.key: is missing"),
    ('[limits.a]\nkey = "ip"\nrate = "1/s"\nstore = "disk"\n', "limits.a.store: is 'disk'"),
    ('[limits.a]\nkey = "ip"\nrate = "1/s"\nstore = "redis"\n', 'limits.a.redis: is missing but store is "redis"'),
    ('[limits.a]\nkey = "ip"\nrate = "1/s"\nstore = "redis"\nredis = "http://x:1/0"\n', "limits.a.redis: is 'http://x:1/0'"),
    ('[limits.a]\nkey = "ip"\nrate = "1/s"\nstore = "redis"\nredis = "redis://:pw@h:99999/0"\n', "limits.a.redis: is 'redis://***@h:99999/0'"),
    ('[limits.a]\nkey = "ip"\nrate = "1/s"\nstore = "redis"\nredis = "redis://h/0"\non_store_error = "ignore"\n', "limits.a.on_store_error: is 'ignore'"),
    ('[limits.a]\nkey = "ip"\nrate = "1/s"\nredis = "redis://h:0/0"\n', "limits.a.redis: is 'redis://h:0/0'"),
    ('[limits.a]\nkey = "ip"\nrate = "1/s"\nwindow = "1m"\n', "limits.a.window: unknown key"),
    ('[limits."a b"]\nkey = "ip"\nrate = "1/s"\n', "limits.a b: 'a b' is not a usable limit name"),
]


@pytest.mark.parametrize(("table", "problem"), BAD_CONFIGS)
def test_bad_limit_tables_are_refused_with_file_key_and_expected(tmp_path: Path, table: str, problem: str) -> None:
    path = write_config(tmp_path, config_text(9, table, '[[routes]]\nmatch = "/:p*"\norigin = "web"\n'))
    with pytest.raises(ConfigError) as e:
        load(path)
    assert any(line.startswith(f"{path}: ") and problem in line for line in e.value.problems), e.value.problems
    assert "pw" not in "\n".join(e.value.problems)


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ('rate_limit = ["nope"]', "routes[0].rate_limit[0]: names unknown limit 'nope' (expected one of: by_user, per_ip)"),
        ('rate_limit = ["per_ip", "per_ip"]', "routes[0].rate_limit[1]: names 'per_ip' twice"),
        ('rate_limit = ["by_user"]', "routes[0].rate_limit[0]: 'by_user' is keyed by a claim but this route has no auth"),
        ("rate_limit = 3", "routes[0].rate_limit: is 3"),
    ],
)
def test_bad_route_rate_limits_are_refused(tmp_path: Path, route: str, problem: str) -> None:
    toml = '[limits.per_ip]\nkey = "ip"\nrate = "1/s"\n\n[limits.by_user]\nkey = "claim:sub"\nrate = "1/s"\n'
    path = write_config(tmp_path, config_text(9, toml, f'[[routes]]\nmatch = "/:p*"\norigin = "web"\n{route}\n'))
    with pytest.raises(ConfigError) as e:
        load(path)
    assert any(problem in line for line in e.value.problems), e.value.problems
    out = subprocess.run([GATEWAY_BIN, "check", "--config", str(path)], capture_output=True, text=True, env=gateway_env(), timeout=60)
    assert out.returncode == 1 and problem in out.stdout


def test_a_good_limits_config_loads_with_its_derived_values(tmp_path: Path) -> None:
    toml = '[limits.per_ip]\nkey = "ip"\nrate = "100/m"\nburst = 20\n\n[limits.per_user]\nkey = "claim:sub"\nrate = "10/s"\nstore = "redis"\nredis = "redis://127.0.0.1:6379/0"\n'
    path = write_config(tmp_path, config_text(9, toml, '[[routes]]\nmatch = "/:p*"\norigin = "web"\nauth = "api"\nrate_limit = ["per_ip", "per_user"]\n'))
    config = load(path)
    per_ip, per_user = config.limits["per_ip"], config.limits["per_user"]
    assert (per_ip.interval_us, per_ip.tolerance_us) == (600_000, 12_000_000)
    assert (per_user.interval_us, per_user.tolerance_us, per_user.on_store_error) == (100_000, 0, "allow")
    assert config.route_limits[0] == ((per_ip,), (per_user,))


# ---------------------------------------------------------------- the redis connection itself


def _limit(url: str, rate: str = "1/h", burst: int = 1) -> RateLimit:
    count, unit = rate.split("/")
    return RateLimit("pipe", "ip", None, int(count), {"s": 1, "m": 60, "h": 3600}[unit], burst, "redis", url, "deny")


def test_redis_restart_and_script_flush_are_recovered_from(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    redis_proc, port = start_redis(tmp_path / "r1")
    url = f"redis://127.0.0.1:{port}/0"
    limit = _limit(url, burst=2)

    async def scenario() -> list[object]:
        store = limits.RedisStore(url)
        out: list[object] = []
        key = "a"
        out.append([(await store.check(limit, key) or (None,))[0] for _ in range(4)])
        # The server forgets its scripts: the next check loads it again, on the same connection.
        subprocess.run(["redis-cli", "-p", str(port), "script", "flush"], check=True, capture_output=True, timeout=10)
        out.append((await store.check(limit, "b") or (None,))[0])
        # The server goes away: a store error (None), then, once it is back, counting resumes.
        redis_proc.stop()
        out.append(await store.check(limit, "c"))
        # A new server on the same port (empty, without the script): after the down window the
        # store reconnects, loads the script and counts again.
        again.append(spawn("redis-again", [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""], tmp_path / "r2"))
        assert wait_for(lambda: port_is_listening(port), 15)
        await asyncio.sleep(limits.REDIS_DOWN_FOR + 0.1)
        out.append([(await store.check(limit, key) or (None,))[0] for _ in range(4)])
        return out

    again: list[Proc] = []
    try:
        with caplog.at_level("WARNING", logger="gateway.limits"):
            first = asyncio.run(scenario())
        assert first == [[True, True, True, False], True, None, [True, True, True, False]]
        assert "cannot be reached" in caplog.text and "is back after" in caplog.text
    finally:
        redis_proc.stop()
        for p in again:
            p.stop()


def test_a_redis_that_never_answers_is_a_bounded_store_error(tmp_path: Path) -> None:
    import socket
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])  # reads nothing, answers nothing
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    limit = _limit(url)

    async def scenario() -> list[object]:
        store = limits.RedisStore(url)
        # Many requests at once: all get the store error, none hangs (the whole gather is bounded).
        return await asyncio.wait_for(asyncio.gather(*(store.check(limit, str(i)) for i in range(50))), 5)

    try:
        assert asyncio.run(scenario()) == [None] * 50
        assert accepted, "the check never reached the silent server"
    finally:
        stop.set()
        t.join()
        for s in accepted:
            s.close()
        silent.close()


def test_redis_password_and_database_from_the_url(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    proc = spawn("redis-auth", [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--requirepass", "Sup3r-s3cret"], tmp_path)
    try:
        assert wait_for(lambda: port_is_listening(port), 15)
        good, bad = f"redis://:Sup3r-s3cret@127.0.0.1:{port}/5", f"redis://:wrong-pass@127.0.0.1:{port}/5"

        async def scenario() -> tuple[object, object]:
            ok = await limits.RedisStore(good).check(_limit(good), "k")
            refused = await limits.RedisStore(bad).check(_limit(bad), "k")
            return ok, refused

        with caplog.at_level("WARNING", logger="gateway.limits"):
            ok, refused = asyncio.run(scenario())
        assert ok is not None and ok[0] is True
        assert refused is None
        assert "AUTH refused: WRONGPASS" in caplog.text and "wrong-pass" not in caplog.text and "Sup3r" not in caplog.text
        keys = subprocess.run(["redis-cli", "-p", str(port), "-a", "Sup3r-s3cret", "-n", "5", "--no-auth-warning", "keys", "*"], capture_output=True, text=True, timeout=10).stdout.split()
        assert len(keys) == 1 and keys[0].startswith("gateway:rl:pipe:")
    finally:
        proc.stop()


def test_the_issues_own_example_loads_with_a_warning_for_the_unused_redis_keys(tmp_path: Path) -> None:
    toml = """
[limits.per_ip]
key = "ip"                 # "ip" | "header:NAME" | "claim:NAME"; claim keys run after auth, the others before it
rate = "100/m"             # N per s, m or h
burst = 20
store = "memory"           # "memory": one count per instance, shared by its worker processes | "redis"
redis = "redis://127.0.0.1:6379/0"
on_store_error = "allow"   # "allow" | "deny" when redis cannot be reached

[limits.per_user]
key = "claim:sub"
rate = "10/s"
"""
    path = write_config(tmp_path, config_text(9, toml, '[[routes]]\nmatch = "/api/:path*"\norigin = "web"\nauth = "api"\nrate_limit = ["per_ip", "per_user"]\n'))
    config = load(path)
    assert config.limits["per_ip"].store == "memory" and config.limits["per_ip"].redis is None
    assert any('limits.per_ip.redis: is set but store is "memory", so it is not used' in w for w in config.warnings)
    assert any("limits.per_ip.on_store_error: is set" in w for w in config.warnings)
