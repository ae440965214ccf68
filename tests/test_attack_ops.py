"""Attacks on issue 12 and 13's features where they meet: CORS, claim rules, api_status, rate limits
and Python hooks on the same routes, over real `gateway serve` processes and a RecordingOrigin.

Each test is a case the implementers had not tried; the ones marked xfail(strict) are faults whose
fix is too large for the attack (they are described in their reason).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import gateway
import httpx
import pytest

from tests.harness import GATEWAY_BIN, SECRET, Gateway, gateway_env, gateway_serve, wait_for, write_config
from tests.recording_origin import RecordingOrigin

APP = "https://app.example.com"

HOOKS_PY = '''
import gateway

@gateway.hook("early")
def own_cors(req):
    # A hook trying to be the CORS source (and to vary on something of its own).
    return gateway.Respond(200, json={"hook": True}, headers={"Access-Control-Allow-Origin": "https://evil.example", "Vary": "Cookie"})

@gateway.hook("request")
def escalate(req):
    # A buggy (or hostile) hook writing into the verified claims it was handed.
    try:
        req.claims["roles"].append("admin")
    except Exception:
        pass
    try:
        req.claims["org"]["tier"] = "enterprise"
    except Exception:
        pass
    return None

@gateway.hook("request")
async def flag_writer(req):
    flag = await req.kv("flags", "beta")
    seen = "missing" if not isinstance(flag, dict) else str(flag.get("on"))
    try:
        flag["on"] = True  # mutate what the KV lookup returned
    except Exception:
        pass
    return gateway.Forward(set_headers={"X-Seen-Beta": seen})
'''

CONFIG = """
[server]
trusted_proxies = ["127.0.0.1/32"]

[origins.web]
url = "http://127.0.0.1:{web}"

[auth.api]
secret = "env:JWT_SECRET"
token_from = ["bearer"]

[auth.session]
secret = "env:JWT_SECRET"
token_from = ["cookie:auth-token", "bearer"]
on_missing = {{ redirect = "/login" }}
on_invalid = {{ redirect = "/login", clear_cookie = "auth-token" }}

[cors.app]
origins = ["https://app.example.com", "https://*.example.com"]
methods = ["GET", "POST", "DELETE"]
headers = ["authorization", "content-type"]
expose = ["x-request-id"]
credentials = true

[limits.one_per_ip]
key = "ip"
rate = "1/h"
burst = 0

[limits.xff_ip]
key = "ip"
rate = "1/h"
burst = 0

[kv.flags]
backend = "file"
path = "flags.json"

[hooks]
module = "file:hooks.py"
timeout = "500ms"
on_error = "deny"

[[routes]]
match = "/rl/:p*"
cors = "app"
rate_limit = ["one_per_ip"]
origin = "web"

[[routes]]
match = "/xff/:p*"
rate_limit = ["xff_ip"]
origin = "web"

[[routes]]
match = "/api/:p*"
auth = "api"
cors = "app"
origin = "web"

[[routes]]
match = "/hooked/:p*"
cors = "app"
hooks = ["own_cors"]
origin = "web"

[[routes]]
match = "/claims/:p*"
auth = "api"
hooks = ["escalate"]
request_headers = {{ "X-Roles" = "{{claims.roles}}" }}
origin = "web"

[[routes]]
match = "/flags/:p*"
hooks = ["flag_writer"]
origin = "web"

[[routes]]
match = "/admin/:p*"
auth = "session"
cors = "app"
require = {{ all = [ {{ claim = "roles", contains = "admin" }} ] }}
origin = "web"
"""


class Site:
    def __init__(self, gw: Gateway, web: RecordingOrigin, config: Path):
        self.gw, self.web, self.config = gw, web, config


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("attack-ops")
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        cfg = write_config(tmp, CONFIG.format(web=web.port), {"hooks.py": HOOKS_PY, "flags.json": json.dumps({"beta": {"on": False}})})
        gw = stack.enter_context(gateway_serve(cfg))
        yield Site(gw, web, cfg)


def token(**claims: Any) -> str:
    now = int(time.time())
    return gateway.encode({"sub": "alice", "iat": now, "exp": now + 600, **claims}, SECRET)


def explain(config: Path, target: str, *headers: str, method: str = "GET") -> dict[str, Any]:
    argv = [GATEWAY_BIN, "explain", "--config", str(config), "--json", "-X", method, target]
    for h in headers:
        argv += ["-H", h]
    r = subprocess.run(argv, capture_output=True, text=True, env=gateway_env(), timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def expose_list(r: httpx.Response) -> set[str]:
    return {n.strip().lower() for v in r.headers.get_list("access-control-expose-headers") for n in v.split(",")}


# --------------------------------------------------------------------------------------------
# CORS x rate limits
# --------------------------------------------------------------------------------------------


def test_preflights_on_a_rate_limited_route_consume_no_quota_and_the_429_is_readable_by_the_page(site: Site) -> None:
    pre = {"Origin": APP, "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "authorization"}
    for _ in range(3):  # the limit is 1 per hour: a preflight that counted would use it up
        r = site.gw.request("OPTIONS", "/rl/a", headers=pre)
        assert r.status_code == 204, r.text
    with site.gw.client() as c:
        first = c.get("/rl/a", headers={"Origin": APP})
        assert first.status_code == 200, "the preflights used up the quota of the request they announced"
        limited = c.get("/rl/a", headers={"Origin": APP})
    assert limited.status_code == 429
    assert limited.headers["access-control-allow-origin"] == APP
    # Retry-After and RateLimit are not CORS-safelisted response headers (Fetch §3.2.4): without
    # Access-Control-Expose-Headers the page's fetch() sees a 429 but cannot read when to retry.
    assert {"retry-after", "ratelimit", "ratelimit-policy", "x-request-id"} <= expose_list(limited), limited.headers
    retry = limited.headers["retry-after"]
    assert retry.isdigit() and int(retry) > 0
    assert limited.headers["ratelimit"] == f'"one_per_ip";r=0;t={retry}'


def test_the_gateway_s_401_exposes_www_authenticate_to_an_allowed_origin(site: Site) -> None:
    r = site.gw.get("/api/x", headers={"Origin": APP})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == APP
    assert "www-authenticate" in expose_list(r), r.headers
    other = site.gw.get("/api/x", headers={"Origin": "https://evil.example"})
    assert "access-control-expose-headers" not in other.headers and "access-control-allow-origin" not in other.headers


# --------------------------------------------------------------------------------------------
# CORS x hooks, and explain agreeing with serve
# --------------------------------------------------------------------------------------------


def test_a_hook_answer_cannot_be_the_cors_source_and_explain_shows_what_serve_sends(site: Site) -> None:
    r = site.gw.get("/hooked/a", headers={"Origin": APP})
    assert r.status_code == 200 and r.json() == {"hook": True}
    assert r.headers.get_list("access-control-allow-origin") == [APP]
    assert r.headers.get_list("vary") == ["Cookie, Origin"]
    ex = explain(site.config, "/hooked/a", f"Origin: {APP}")
    shown: dict[str, list[str]] = {}
    for k, v in ex["response_headers"].items():
        shown.setdefault(k.lower(), []).append(v)
    assert shown.get("access-control-allow-origin") == [APP], f"explain shows a different answer than serve sends: {ex['response_headers']}"
    assert shown.get("vary") == ["Cookie, Origin"], ex["response_headers"]


# --------------------------------------------------------------------------------------------
# claim rules x api_status
# --------------------------------------------------------------------------------------------


def test_a_valid_token_failing_a_claim_rule_gets_403_json_on_a_redirect_policy_even_from_a_browser(site: Site) -> None:
    h = {"Authorization": f"Bearer {token(roles=['user'])}", "Accept": "text/html", "Origin": APP}
    r = site.gw.get("/admin/x", headers=h)
    assert r.status_code == 403 and r.json()["error"] == "forbidden", "never the login redirect for a valid token"
    assert r.headers["access-control-allow-origin"] == APP
    # No token: the browser is redirected, a fetch() asking for JSON gets 401 (api_status default).
    assert site.gw.get("/admin/x", headers={"Accept": "text/html"}).status_code == 302
    assert site.gw.get("/admin/x", headers={"Accept": "application/json"}).status_code == 401


# --------------------------------------------------------------------------------------------
# rate-limit keys
# --------------------------------------------------------------------------------------------


def test_a_client_port_in_x_forwarded_for_is_not_a_new_rate_limit_key(site: Site) -> None:
    # Some load balancers (Azure Application Gateway, ...) write "client-ip:port". A client that
    # opens a new connection per request then has a new port each time: counting per port would
    # give it a fresh bucket each time. The hooks' req.client already strips the port.
    statuses = [site.gw.get("/xff/a", headers={"X-Forwarded-For": f"203.0.113.9:{port}"}).status_code for port in (40001, 40002, 40003)]
    assert statuses == [200, 429, 429], statuses
    v6 = [site.gw.get("/xff/a", headers={"X-Forwarded-For": f"[2001:db8:1:2::{n}]:{port}"}).status_code for n, port in ((1, 5000), (2, 5001))]
    assert v6 == [200, 429], "one /64, whatever the port: " + str(v6)


# --------------------------------------------------------------------------------------------
# hook snapshots
# --------------------------------------------------------------------------------------------


def test_a_hook_cannot_change_the_verified_claims_through_its_snapshot(site: Site) -> None:
    mark = len(site.web.complete)
    r = site.gw.get("/claims/a", headers={"Authorization": f"Bearer {token(roles=['user'], org={'tier': 'free'})}"})
    assert r.status_code == 200, r.text
    seen = site.web.complete[mark:]
    assert seen and seen[-1].header("x-roles") == ['["user"]'], "a hook appended a role to the verified claims: " + str(seen[-1].header("x-roles") if seen else None)


def test_a_hook_mutating_a_kv_value_does_not_change_it_for_the_next_request(site: Site) -> None:
    mark = len(site.web.complete)
    for _ in range(3):
        assert site.gw.get("/flags/a").status_code == 200
    seen = [s.header("x-seen-beta") for s in site.web.complete[mark:]]
    assert seen == [["False"]] * 3, f"the KV cache kept a hook's write: {seen}"


# --------------------------------------------------------------------------------------------
# reload
# --------------------------------------------------------------------------------------------


def test_raising_a_rate_limit_by_reload_takes_effect_for_clients_over_the_old_one(tmp_path: Path) -> None:
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        text = '[origins.web]\nurl = "http://127.0.0.1:{port}"\n\n[limits.per_ip]\nkey = "ip"\nrate = "{rate}"\nburst = {burst}\n\n[[routes]]\nmatch = "/:p*"\nrate_limit = ["per_ip"]\norigin = "web"\n'
        cfg = write_config(tmp_path, text.format(port=web.port, rate="1/h", burst=0))
        gw = stack.enter_context(gateway_serve(cfg))
        with gw.client() as c:
            assert [c.get("/a").status_code for _ in range(2)] == [200, 429]
            cfg.write_text(text.format(port=web.port, rate="100/m", burst=50))
            gw.proc.send_signal(signal.SIGHUP)
            # The worker takes the new config on its first request after serve relays the signal to it
            # (SIGUSR1, asynchronous: on a busy machine a request can still land before it).
            assert wait_for(lambda: c.get("/a") is not None and "config reloaded" in gw.proc.stderr_text(), 15, 0.2), gw.all_output()
            # An operator raising a limit during an incident expects the clients it was refusing
            # to get through now, not when their time under the old (60x stricter) rate runs out.
            statuses = [c.get("/a").status_code for _ in range(6)]
        assert statuses == [200] * 6, statuses


# --------------------------------------------------------------------------------------------
# claim rules: a regex over a claim the user chooses
# --------------------------------------------------------------------------------------------


def test_a_claim_regex_with_nested_quantifiers_cannot_hang_a_worker(tmp_path: Path) -> None:
    """A pattern that backtracks exponentially in Python's re (([a-z0-9]+[.-]?)*@...) against an
    email the token's holder chose: the core's linear-time engine answers at once (a backtracking one
    would take hours on 40 letters and a '!'), and the rule still means what it says."""
    cfg = write_config(
        tmp_path,
        '[origins.web]\nurl = "http://127.0.0.1:9"\ntimeout = "2s"\n\n[auth.api]\nsecret = "env:JWT_SECRET"\ntoken_from = ["bearer"]\non_invalid = { status = 401 }\n\n'
        '[[routes]]\nmatch = "/:p*"\nauth = "api"\nrequire = { all = [ { claim = "email", matches = "([a-z0-9]+[.-]?)*@example[.]com" } ] }\norigin = "web"\n',
    )
    r = subprocess.run([GATEWAY_BIN, "check", "--config", str(cfg)], capture_output=True, text=True, env=gateway_env(), timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    with gateway_serve(cfg) as gw:
        def status(email: str) -> int:
            tok = gateway.encode({"sub": "u", "email": email, "exp": int(time.time()) + 300}, SECRET, "HS256")
            return httpx.get(f"{gw.base}/x", headers={"Authorization": f"Bearer {tok}"}, timeout=30).status_code

        assert status("a" * 40 + "!") == 403
        assert status("a" * 4000 + "!") == 403
        assert status("jo.ann@example.com") == 502  # the rule holds; the origin (port 9) is down


# --------------------------------------------------------------------------------------------
# hook timeouts
# --------------------------------------------------------------------------------------------

STUBBORN_PY = '''
import asyncio
import gateway

@gateway.hook("request")
async def stubborn(req):
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        await asyncio.sleep(0)  # swallows the cancellation and answers anyway
    return gateway.Respond(200, json={"late": True})
'''


def test_an_async_hook_that_swallows_its_cancellation_still_times_out(tmp_path: Path) -> None:
    text = '[origins.web]\nurl = "http://127.0.0.1:9"\n\n[hooks]\nmodule = "file:hooks.py"\ntimeout = "50ms"\non_error = "{on_error}"\n\n[[routes]]\nmatch = "/:p*"\nhooks = ["stubborn"]\norigin = "web"\n'
    for on_error, status in (("deny", 500), ("allow", 502)):  # allow: on to the origin (nobody listens on 9)
        cfg = write_config(tmp_path / on_error, text.format(on_error=on_error), {"hooks.py": STUBBORN_PY})
        with gateway_serve(cfg) as gw:
            r = gw.get("/x")
            assert r.status_code == status, f"on_error = {on_error}: the late value was used: {r.status_code} {r.text}"
            assert "did not finish within 50ms" in gw.proc.stderr_text()
