"""Python hooks (issue 13) end to end: real `gateway serve` processes running a hook file these tests
write, in front of real recording origins (tests/recording_origin.py), probed over real sockets.

Each stage's changes are checked where they land: what the origin received (headers, path, which
origin) or what the client got (answers, response headers, Set-Cookies). Failures (an exception, a
timeout, a value the gateway refuses) are checked under both ``on_error`` values, with their log
lines; the hardening rules are checked after hooks that try to get a client's forwarded-claim or
X-Forwarded-For header through; a reload with a broken hook file is refused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import gateway
import httpx
import pytest

from tests.harness import GATEWAY_BIN, SECRET, Gateway, gateway_env, gateway_serve, raw_get, wait_for, worker_pid, write_config
from tests.recording_origin import RecordingOrigin

HOOKS = '''
import asyncio
import time
from pathlib import Path

import gateway

MARKS = Path(__file__).parent / "marks"


@gateway.hook("early")
def early_gate(req):
    if req.headers.get("x-deny") == "1":
        return gateway.Respond(451, body="blocked early", headers={"X-Why": "early", "Cache-Control": "no-store"})
    return None


@gateway.hook("request")
async def tenant(req: gateway.HookRequest):
    if req.claims.get("tenant") != req.params.get("tenant"):
        return gateway.Respond(403, json={"error": "wrong_tenant", "route": req.route})
    return gateway.Forward(set_headers={"X-Tenant": req.claims["tenant"]})


@gateway.hook("response")
def cache_policy(req, resp):
    if resp.status == 200 and "content-type" in resp.headers:
        return gateway.ResponseChanges(
            set_headers={"Cache-Control": "public, max-age=300", "X-Seen-Status": str(resp.status), "X-Tenant-Was": req.params.get("tenant", "")},
            remove_headers=["Content-Type"],
            set_cookies=["tenant-seen=1; Path=/; SameSite=Lax"],
        )


@gateway.hook("request")
def rewrite(req):
    return gateway.Forward(
        path="/v2/" + req.params["rest"] + "/../final",
        origin="other",
        remove_headers=["Cookie", "X-Drop-Me"],
        set_headers={"X-Client": req.client or "", "X-Country": req.country or "", "x-ab-group": "from-hook"},
        set_cookies=[gateway.set_cookie("rewritten", "yes", max_age=60)],
    )


@gateway.hook("early")
def snapshot(req):
    return gateway.Respond(200, json={
        "method": req.method, "path": req.path, "query": req.query, "route": req.route, "params": dict(req.params),
        "headers": dict(req.headers), "client": req.client, "claims": dict(req.claims), "dry_run": req.dry_run,
    })


@gateway.hook("request")
def snapshot_late(req):
    return gateway.Respond(200, json={
        "claims": dict(req.claims), "country": req.country, "lang": req.lang, "variants": dict(req.variants),
        "params": dict(req.params), "client": req.client, "headers": dict(req.headers),
    })


@gateway.hook("request")
async def flag(req):
    value = await req.kv("flags", req.params["name"])
    return gateway.Forward(set_headers={"X-Flag": "on" if value else "off"})


@gateway.hook("request")
def spoof_claim(req):
    # Tries to forward the client's own X-User-Id: the snapshot never shows it, so it reads "none";
    # setting a forwarded-claim header at all is refused.
    return gateway.Forward(set_headers={"X-User-Id": req.headers.get("x-user-id", "none")})


@gateway.hook("request")
def spoof_claim_underscore(req):
    # An origin behind CGI/WSGI reads X_User_Id as X-User-Id.
    return gateway.Forward(set_headers={"X_User_Id": "mallory"})


@gateway.hook("request")
def spoof_xff(req):
    return gateway.Forward(set_headers={"X-Forwarded-For": "203.0.113.9"})


@gateway.hook("request")
def raises(req):
    return 1 // 0


@gateway.hook("request")
async def sleeps(req):
    try:
        await asyncio.sleep(3)
    except asyncio.CancelledError:
        MARKS.mkdir(exist_ok=True)
        (MARKS / f"cancelled-{req.query}").write_text("1")
        raise
    MARKS.mkdir(exist_ok=True)
    (MARKS / f"finished-{req.query}").write_text("1")


@gateway.hook("request")
def slow_sync(req):
    time.sleep(0.6)
    return gateway.Forward(set_headers={"X-Slow": "done"})


@gateway.hook("request")
def bad_value(req):
    return {"status": 403, "token": "secret-value-never-logged"}


@gateway.hook("early")
def forward_too_early(req):
    return gateway.Forward(set_headers={"X-Early": "1"})


@gateway.hook("request")
def unknown_origin(req):
    return gateway.Forward(origin="nowhere")


@gateway.hook("request")
def exits(req):
    raise SystemExit(3)  # must not stop the worker


@gateway.hook("response")
def response_raises(req, resp):
    raise RuntimeError("response hook broke")


@gateway.hook("request")
async def waits_then_forwards(req):
    await asyncio.sleep(0.01)  # really waits: the rest runs under the timeout
    return gateway.Forward(set_headers={"X-Waited": "yes"})


@gateway.hook("request")
async def waits_then_raises(req):
    await asyncio.sleep(0.01)
    raise ValueError("after waiting")


@gateway.hook("early")
async def waits_then_answers(req):
    await asyncio.sleep(0.01)
    if req.headers.get("x-answer"):
        return gateway.Respond(202, json={"waited": True})


@gateway.hook("response")
async def waits_in_response(req, resp):
    await asyncio.sleep(0.01)
    return gateway.ResponseChanges(set_headers={"X-Response-Waited": str(resp.status)})


@gateway.hook("request")
def after_failure(req):
    return gateway.Forward(set_headers={"X-After": "ran"})
'''

CONFIG = """
[server]
access_log = false
trusted_proxies = {trusted}

[origins.web]
url = "http://127.0.0.1:{web}"

[origins.other]
url = "http://127.0.0.1:{other}"

[auth.session]
secret = "env:JWT_SECRET"
token_from = ["bearer"]
forward_claims = {{ sub = "X-User-Id" }}

[auth.api]
secret = "env:JWT_SECRET"
token_from = ["bearer"]

[locale]
country_from = "header:cf-ipcountry"
default_country = "US"

[experiments.ab]
cookie = "ab"
variants = {{ a = 1, b = 0 }}
header = "X-AB-Group"

[kv.flags]
backend = "file"
path = "flags.json"

[hooks]
module = "file:hooks.py"
timeout = "400ms"  # well above what the hooks that wait 10 ms need on a loaded machine
on_error = "{on_error}"

[[routes]]
match = "/t/:tenant/:path*"
auth = "session"
hooks = ["tenant", "cache_policy"]
origin = "web"

[[routes]]
match = "/early/:path*"
auth = "api"
hooks = ["early_gate"]
origin = "web"

[[routes]]
match = "/rewrite/:rest*"
locale = true
experiment = "ab"
hooks = ["rewrite"]
origin = "web"

[[routes]]
match = "/snapshot/:id"
auth = "session"
hooks = ["snapshot"]
origin = "web"

[[routes]]
match = "/late/:id"
auth = "session"
locale = true
experiment = "ab"
hooks = ["snapshot_late"]
origin = "web"

[[routes]]
match = "/flag/:name"
hooks = ["flag"]
origin = "web"

[[routes]]
match = "/spoof-claim"
auth = "session"
hooks = ["spoof_claim", "after_failure"]
origin = "web"

[[routes]]
match = "/spoof-claim-underscore"
auth = "session"
hooks = ["spoof_claim_underscore", "after_failure"]
origin = "web"

[[routes]]
match = "/spoof-xff"
hooks = ["spoof_xff", "after_failure"]
origin = "web"

[[routes]]
match = "/raises"
hooks = ["raises", "after_failure"]
origin = "web"

[[routes]]
match = "/sleeps"
hooks = ["sleeps", "after_failure"]
origin = "web"

[[routes]]
match = "/slow-sync"
hooks = ["slow_sync"]
origin = "web"

[[routes]]
match = "/bad-value"
hooks = ["bad_value", "after_failure"]
origin = "web"

[[routes]]
match = "/forward-too-early"
hooks = ["forward_too_early", "after_failure"]
origin = "web"

[[routes]]
match = "/unknown-origin"
hooks = ["unknown_origin", "after_failure"]
origin = "web"

[[routes]]
match = "/exits"
hooks = ["exits", "after_failure"]
origin = "web"

[[routes]]
match = "/response-raises"
hooks = ["response_raises"]
origin = "web"

[[routes]]
match = "/waits"
hooks = ["waits_then_answers", "waits_then_forwards", "after_failure", "waits_in_response"]
origin = "web"

[[routes]]
match = "/waits-then-raises"
hooks = ["waits_then_raises", "after_failure"]
origin = "web"

[[routes]]
match = "/:path*"
origin = "web"
"""


def token(**claims: object) -> str:
    now = int(time.time())
    return gateway.encode({"sub": "alice", "iat": now, "exp": now + 600, **claims}, SECRET)


def bearer(**claims: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(**claims)}"}


@dataclass
class Site:
    gw: Gateway
    web: RecordingOrigin
    other: RecordingOrigin
    dir: Path

    def stderr(self) -> str:
        return self.gw.stderr.read_text()


def _site(tmp: Path, stack: ExitStack, on_error: str, trusted: str = "[]") -> Site:
    web, other = RecordingOrigin("web"), RecordingOrigin("other")
    stack.callback(web.close)
    stack.callback(other.close)
    cfg = write_config(tmp, CONFIG.format(web=web.port, other=other.port, on_error=on_error, trusted=trusted), {"hooks.py": HOOKS, "flags.json": '{"beta": true, "old": false}'})
    gw = stack.enter_context(gateway_serve(cfg))
    return Site(gw, web, other, tmp)


@pytest.fixture(scope="module")
def deny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with ExitStack() as stack:
        yield _site(tmp_path_factory.mktemp("hooks-deny"), stack, "deny")


@pytest.fixture(scope="module")
def allow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with ExitStack() as stack:
        yield _site(tmp_path_factory.mktemp("hooks-allow"), stack, "allow")


def received(origin: RecordingOrigin, mark: tuple[int, int]) -> list[dict[str, list[str]]]:
    """Each request the origin received since `mark`: lower-case header name -> values, plus target."""
    out = []
    for seen in origin.since(mark)[0]:
        h: dict[str, list[str]] = {"(target)": [seen.target.decode("latin-1")]}
        for k, v in seen.headers:
            h.setdefault(k.lower(), []).append(v)
        out.append(h)
    return out


# --------------------------------------------------------------------------------------------
# each stage's changes land where documented
# --------------------------------------------------------------------------------------------


def test_request_hook_forward_reaches_the_origin_and_response_hook_reaches_the_client(deny: Site) -> None:
    mark = deny.web.mark()
    r = deny.gw.get("/t/acme/docs", headers={**bearer(tenant="acme"), "X-Tenant": "client-copy"})
    assert r.status_code == 200, r.text
    (got,) = received(deny.web, mark)
    assert got["x-tenant"] == ["acme"], "the hook's value, and only it (the client's copy is dropped)"
    assert got["x-user-id"] == ["alice"]
    # The response hook saw the origin's status and headers and changed what the client got.
    assert r.headers["cache-control"] == "public, max-age=300"
    assert r.headers["x-seen-status"] == "200"
    assert r.headers["x-tenant-was"] == "acme"
    assert "content-type" not in r.headers
    assert r.headers.get_list("set-cookie") == ["tenant-seen=1; Path=/; SameSite=Lax"]
    assert json.loads(r.content)["target"] == "/t/acme/docs", "the body is the origin's, untouched"


def test_request_hook_answers_and_the_origin_is_not_asked(deny: Site) -> None:
    mark = deny.web.mark()
    r = deny.gw.get("/t/acme/docs", headers=bearer(tenant="globex"))
    assert r.status_code == 403
    assert r.json() == {"error": "wrong_tenant", "route": "/t/:tenant/:path*"}
    assert r.headers["content-type"] == "application/json"
    assert received(deny.web, mark) == []
    # Auth still runs before request hooks: no token is auth's 401, not the hook's 403.
    assert deny.gw.get("/t/acme/docs").status_code == 401


def test_early_hook_answers_before_auth(deny: Site) -> None:
    r = deny.gw.get("/early/x", headers={"X-Deny": "1"})  # no token: auth would say 401
    assert (r.status_code, r.text) == (451, "blocked early")
    assert r.headers["x-why"] == "early"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    assert deny.gw.get("/early/x").status_code == 401
    mark = deny.web.mark()
    assert deny.gw.get("/early/x", headers={"Authorization": f"Bearer {token()}"}).status_code == 200
    assert len(received(deny.web, mark)) == 1


def test_forward_changes_path_origin_headers_and_cookies(deny: Site) -> None:
    mark_web, mark_other = deny.web.mark(), deny.other.mark()
    r = deny.gw.get(
        "/rewrite/a/b?q=1",
        headers={"Cookie": "ab=a; session=s3cret", "X-Drop-Me": "1", "X-Keep-Me": "1", "X-AB-Group": "client", "X-Client": "forged"},
    )
    assert r.status_code == 200, r.text
    assert received(deny.web, mark_web) == [], "the hook picked the other origin"
    (got,) = received(deny.other, mark_other)
    assert got["(target)"] == ["/v2/a/final?q=1"], "the hook's path, normalized; the query as sent"
    assert "cookie" not in got and "x-drop-me" not in got
    assert got["x-keep-me"] == ["1"]
    assert got["x-client"] == ["127.0.0.1"]
    assert got["x-country"] == ["US"]
    # The hook replaced the experiment stage's header (names compare without case): one value only.
    assert got["x-ab-group"] == ["from-hook"]
    assert got["x-forwarded-for"] == ["127.0.0.1"]
    cookies = r.headers.get_list("set-cookie")
    assert any(c.startswith("rewritten=yes;") and "Max-Age=60" in c for c in cookies), cookies


def test_the_snapshot_holds_what_the_stage_knows_and_hides_what_the_gateway_owns(deny: Site) -> None:
    r = deny.gw.get(
        "/snapshot/7?x=%41&y",
        headers={"X-User-Id": "mallory", "X-Forwarded-For": "198.51.100.1", "X-Real-IP": "198.51.100.2", "Cookie": "a=b", "X-Custom": "v1"},
    )
    snap = r.json()
    assert snap["method"] == "GET" and snap["path"] == "/snapshot/7" and snap["query"] == "x=%41&y"
    assert snap["route"] == "/snapshot/:id" and snap["params"] == {"id": "7"}
    assert snap["claims"] == {} and snap["dry_run"] is False, "early hooks run before auth"
    assert snap["client"] == "127.0.0.1", "an untrusted peer's X-Forwarded-For is not believed"
    headers = snap["headers"]
    assert headers["x-custom"] == "v1" and headers["cookie"] == "a=b"
    for owned in ("x-user-id", "x-forwarded-for", "x-real-ip"):
        assert owned not in headers, f"{owned} from the client reached a hook"

    late = deny.gw.get("/late/9", headers={**bearer(role="admin"), "Accept-Language": "ko", "cf-ipcountry": "KR"}).json()
    assert late["claims"]["sub"] == "alice" and late["claims"]["role"] == "admin"
    assert late["country"] == "US", "cf-ipcountry from an untrusted peer is ignored"
    assert late["variants"] == {"ab": "a"} and late["params"] == {"id": "9"}


def test_client_address_behind_a_trusted_proxy(tmp_path: Path) -> None:
    with ExitStack() as stack:
        site = _site(tmp_path, stack, "deny", trusted='["127.0.0.1/32", "10.0.0.0/8"]')
        # Right-most untrusted address: 10.0.0.5 is one of the trusted proxies, 192.0.2.1 is spoofable.
        snap = site.gw.get("/snapshot/1", headers={"X-Forwarded-For": "192.0.2.1, 198.51.100.7, 10.0.0.5"}).json()
        assert snap["client"] == "198.51.100.7"
        assert snap["headers"]["x-forwarded-for"] == "192.0.2.1, 198.51.100.7, 10.0.0.5", "a trusted peer's forwarding headers are shown"
        late = site.gw.get("/late/1", headers={**bearer(), "cf-ipcountry": "kr"}).json()
        assert late["country"] == "KR"


def test_kv_lookup_from_a_hook(deny: Site) -> None:
    mark = deny.web.mark()
    assert deny.gw.get("/flag/beta").status_code == 200
    assert deny.gw.get("/flag/old").status_code == 200
    assert deny.gw.get("/flag/missing").status_code == 200
    assert [h["x-flag"] for h in received(deny.web, mark)] == [["on"], ["off"], ["off"]]


def test_hooks_that_really_wait(deny: Site) -> None:
    # Each hook here awaits a real timer; the ones after it still run, in order, and each stage's
    # changes still land.
    mark = deny.web.mark()
    r = deny.gw.get("/waits")
    assert r.status_code == 200
    assert r.headers["x-response-waited"] == "200"
    (got,) = received(deny.web, mark)
    assert got["x-waited"] == ["yes"] and got["x-after"] == ["ran"]
    r = deny.gw.get("/waits", headers={"X-Answer": "1"})
    assert (r.status_code, r.json()) == (202, {"waited": True})
    assert received(deny.web, mark)[1:] == []


def test_routes_without_hooks_are_untouched(deny: Site) -> None:
    mark = deny.web.mark()
    r = deny.gw.get("/plain/x", headers={"X-Tenant": "t", "X-Forwarded-For": "1.2.3.4"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert "cache-control" not in r.headers
    (got,) = received(deny.web, mark)
    assert got["x-tenant"] == ["t"] and got["x-forwarded-for"] == ["127.0.0.1"]


# --------------------------------------------------------------------------------------------
# the hardening rules hold after every hook
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/spoof-claim", "/spoof-claim-underscore", "/spoof-xff"])
def test_a_hook_cannot_forward_gateway_owned_headers_deny(deny: Site, path: str) -> None:
    mark = deny.web.mark()
    r = deny.gw.get(path, headers={**bearer(), "X-User-Id": "mallory", "X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 500
    assert r.json()["error"] == "hook_failed"
    assert received(deny.web, mark) == [], "a refused Forward under deny reaches no origin"


def test_a_hook_cannot_forward_gateway_owned_headers_allow(allow: Site) -> None:
    mark = allow.web.mark()
    assert allow.gw.get("/spoof-claim", headers={**bearer(), "X-User-Id": "mallory"}).status_code == 200
    assert allow.gw.get("/spoof-xff", headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}).status_code == 200
    assert allow.gw.get("/spoof-claim-underscore", headers=bearer()).status_code == 200
    claim, xff, underscore = received(allow.web, mark)
    assert claim["x-user-id"] == ["alice"], "only the verified claim"
    assert underscore["x-user-id"] == ["alice"] and "x_user_id" not in underscore
    assert xff["x-forwarded-for"] == ["127.0.0.1"] and "x-real-ip" not in xff
    # The refused value changed nothing, and the next hook still ran.
    assert claim["x-after"] == ["ran"] and xff["x-after"] == ["ran"]
    log = allow.stderr()
    assert "hook 'spoof_claim' (request) returned a Forward setting X-User-Id, which carries a verified claim" in log
    assert "hook 'spoof_xff' (request) returned a Forward setting X-Forwarded-For, a header the gateway manages" in log


# --------------------------------------------------------------------------------------------
# failures under both on_error values
# --------------------------------------------------------------------------------------------

FAILING = ["/raises", "/bad-value", "/forward-too-early", "/unknown-origin", "/exits", "/waits-then-raises"]


@pytest.mark.parametrize("path", FAILING)
def test_failures_deny(deny: Site, path: str) -> None:
    mark = deny.web.mark()
    r = deny.gw.get(path)
    assert r.status_code == 500
    assert r.json() == {"error": "hook_failed", "detail": "a hook failed on this request"}
    assert received(deny.web, mark) == []
    # The next request is served normally.
    assert deny.gw.get("/plain").status_code == 200


@pytest.mark.parametrize("path", FAILING)
def test_failures_allow(allow: Site, path: str) -> None:
    mark = allow.web.mark()
    r = allow.gw.get(path)
    assert r.status_code == 200, r.text
    (got,) = received(allow.web, mark)
    assert got["(target)"] == [path]
    assert got["x-after"] == ["ran"], "as if the failing hook returned None: the next hook runs"


def test_failure_logs(deny: Site, allow: Site) -> None:
    for path in FAILING:
        deny.gw.get(path)
    allow.gw.get("/raises")
    for site in (deny, allow):
        assert wait_for(lambda s=site: "ZeroDivisionError" in s.stderr(), 5)  # type: ignore[misc]
    before = deny.stderr().count("return 1 // 0")
    for _ in range(5):
        deny.gw.get("/raises")
    log = deny.stderr()
    # Rate-limited per hook: at most one traceback per 10 s, so five failures in a row add at most one.
    assert 1 <= before and log.count("return 1 // 0") - before <= 1, log
    assert "hook 'raises' (request) raised ZeroDivisionError: integer division or modulo by zero on GET /raises; answering 500 hook_failed (on_error = deny)" in log
    assert "Traceback (most recent call last)" in log and "return 1 // 0" in log, "the traceback points into the hook"
    assert "hook 'bad_value' (request) returned a dict; expected None or gateway.Respond or gateway.Forward" in log
    assert "secret-value-never-logged" not in log, "a bad value is named by type, never printed"
    assert "hook 'forward_too_early' (early) returned a gateway.hooks.api.Forward; expected None or gateway.Respond" in log
    assert "with origin 'nowhere', which is not an [origins.NAME] (have: other, web)" in log
    assert "going on as if it returned None (on_error = allow)" in allow.stderr()


@pytest.mark.parametrize("on_error", ["deny", "allow"])
def test_timeout_cancels_an_async_hook(deny: Site, allow: Site, on_error: str) -> None:
    site = deny if on_error == "deny" else allow
    mark = site.web.mark()
    r = site.gw.get(f"/sleeps?{on_error}")
    marks = site.dir / "marks"
    assert wait_for(lambda: (marks / f"cancelled-{on_error}").exists(), 5), "the hook was not cancelled"
    if on_error == "deny":
        assert r.status_code == 500 and r.json()["error"] == "hook_failed"
        assert received(site.web, mark) == []
    else:
        assert r.status_code == 200
        (got,) = received(site.web, mark)
        assert got["x-after"] == ["ran"]
    time.sleep(3.2)  # the hook's sleep would have ended by now, had it not been cancelled
    assert not (marks / f"finished-{on_error}").exists()
    log = site.stderr()
    assert "hook 'sleeps' did not finish within 400ms (cancelled) on GET /sleeps" in log
    assert "await asyncio.sleep(3)" in log, "the traceback shows where the hook was waiting"
    assert site.gw.get("/plain").status_code == 200


def test_a_sync_hook_over_its_timeout_is_logged_and_its_value_used(deny: Site) -> None:
    mark = deny.web.mark()
    assert deny.gw.get("/slow-sync").status_code == 200
    (got,) = received(deny.web, mark)
    assert got["x-slow"] == ["done"]
    assert wait_for(lambda: "hook 'slow_sync' took" in deny.stderr(), 5)
    assert "over [hooks] timeout 400ms; it ran to its end" in deny.stderr()


def test_response_hook_failure(deny: Site, allow: Site) -> None:
    r = deny.gw.get("/response-raises")
    assert r.status_code == 500 and r.json()["error"] == "hook_failed", "deny: the origin's answer is not sent"
    r = allow.gw.get("/response-raises")
    assert r.status_code == 200 and r.json()["target"] == "/response-raises", "allow: the origin's answer as it was"
    assert wait_for(lambda: "RuntimeError: response hook broke" in deny.stderr(), 5)


# --------------------------------------------------------------------------------------------
# reload and check
# --------------------------------------------------------------------------------------------

RELOAD_HOOKS = '''
import gateway

@gateway.hook("request")
def version(req):
    return gateway.Forward(set_headers={"X-Hook-Version": "VERSION"})
'''

RELOAD_CONFIG = """
[server]
access_log = false
[origins.web]
url = "http://127.0.0.1:{port}"
[hooks]
module = "file:hooks.py"
[[routes]]
match = "/:path*"
hooks = ["version"]
origin = "web"
"""


def test_reload_reimports_and_refuses_a_broken_hook_file(tmp_path: Path) -> None:
    origin = RecordingOrigin("web")
    try:
        hooks = tmp_path / "hooks.py"
        cfg = write_config(tmp_path, RELOAD_CONFIG.format(port=origin.port), {"hooks.py": RELOAD_HOOKS.replace("VERSION", "one")})

        def version(gw: Gateway) -> list[str]:
            mark = origin.mark()
            assert gw.get("/x").status_code == 200
            return received(origin, mark)[0]["x-hook-version"]

        with gateway_serve(cfg) as gw:
            assert version(gw) == ["one"]
            hooks.write_text(RELOAD_HOOKS.replace("VERSION", "two"))
            gw.proc.send_signal(signal.SIGHUP)
            assert wait_for(lambda: version(gw) == ["two"], 10), "the reload did not re-import the hook file"
            hooks.write_text("import gateway\n\n@gateway.hook('request')\ndef version(req)\n    return None\n")
            gw.proc.send_signal(signal.SIGHUP)
            # A worker reloads on its next request.
            assert wait_for(lambda: gw.get("/x").status_code == 200 and "config reload refused" in gw.stderr.read_text(), 10)
            log = gw.stderr.read_text()
            assert f"hooks.module: importing {hooks} failed: SyntaxError" in log and "(line 4)" in log
            assert version(gw) == ["two"], "the previous hooks keep serving"
            hooks.write_text("import gateway\nraise RuntimeError('no config for you')\n")
            gw.proc.send_signal(signal.SIGHUP)
            assert wait_for(lambda: gw.get("/x").status_code == 200 and "RuntimeError: no config for you (at hooks.py line 2)" in gw.stderr.read_text(), 10)
            assert version(gw) == ["two"]
            # A worker that starts now (a crash, then a respawn) cannot import the broken file either:
            # it serves the last good config with the hook code that loaded with it.
            old_worker = worker_pid(gw.proc.pid)
            os.kill(old_worker, signal.SIGKILL)

            def respawned() -> bool:
                try:
                    return worker_pid(gw.proc.pid) != old_worker and version(gw) == ["two"]
                except (AssertionError, OSError, httpx.HTTPError, IndexError):
                    return False

            assert wait_for(respawned, 20), gw.stderr.read_text()[-3000:]
    finally:
        origin.close()


def _check(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GATEWAY_BIN, "check", "--config", str(cfg)], capture_output=True, text=True, env=gateway_env(), timeout=60, check=False)


CHECK_HOOKS = '''
import gateway

@gateway.hook("request")
def tenant(req):
    return None

@gateway.hook("erly")
def typo(req):
    return None

@gateway.hook("response")
def wants_two(req):
    return None

@gateway.hook("early")
def unused(req):
    return None
'''


def test_check_imports_the_module_and_names_each_problem(tmp_path: Path) -> None:
    text = RELOAD_CONFIG.format(port=9).replace('hooks = ["version"]', 'hooks = ["tenant", "missing", "typo", "tenant"]')
    cfg = write_config(tmp_path, text, {"hooks.py": CHECK_HOOKS})
    r = _check(cfg)
    assert r.returncode == 1
    out = r.stdout
    assert f"{cfg}: routes[0].hooks[1]: names unknown hook 'missing' (not in file:hooks.py) (expected one of: tenant, typo, unused)" in out, out
    assert f"{cfg}: routes[0].hooks[2]: names hook 'typo' of unknown stage 'erly' (expected a hook of stage early, request, response" in out
    assert f"{cfg}: routes[0].hooks[3]: names hook 'tenant' twice (expected each hook once per route)" in out
    assert f"{cfg}: hooks.module: hook 'wants_two' (stage 'response') cannot be called as wants_two(req, resp) (expected a function taking (req, resp))" in out

    ok = RELOAD_CONFIG.format(port=9).replace('hooks = ["version"]', 'hooks = ["tenant"]')
    write_config(tmp_path, ok, {"hooks.py": CHECK_HOOKS.replace("def wants_two(req)", "def wants_two(req, resp)")})
    r = _check(cfg)
    assert r.returncode == 0, r.stdout
    assert "4 hooks from file:hooks.py" in r.stdout
    assert "warning: " in r.stdout and "hook 'unused' is listed by no route, so it never runs" in r.stdout
    assert "hook 'typo' has unknown stage 'erly', so it can never run" in r.stdout


@pytest.mark.parametrize(
    ("hooks_table", "files", "expected"),
    [
        ('module = "file:nope.py"', {}, "hooks.module: {dir}/nope.py is not a file (expected \"file:hooks.py\""),
        ('module = "no_such_module_xyz"', {}, "hooks.module: no module named 'no_such_module_xyz'"),
        ('module = "file:hooks.py"', {"hooks.py": "import gateway\nx = 1 +\n"}, "hooks.module: importing {dir}/hooks.py failed: SyntaxError: invalid syntax (line 2)"),
        ('module = "file:hooks.py"\ntimeout = 5', {"hooks.py": ""}, 'hooks.timeout: is 5 (expected a duration string such as "5s"'),
        ('module = "file:hooks.py"\non_error = "ignore"', {"hooks.py": ""}, "hooks.on_error: is 'ignore' (expected \"deny\""),
        ('module = "file:hooks.py"\nretries = 3', {"hooks.py": ""}, "hooks.retries: unknown key"),
    ],
)
def test_check_refuses_a_bad_hooks_table(tmp_path: Path, hooks_table: str, files: dict[str, str], expected: str) -> None:
    text = RELOAD_CONFIG.format(port=9).replace('module = "file:hooks.py"', hooks_table).replace('hooks = ["version"]\n', "")
    cfg = write_config(tmp_path, text, files)
    r = _check(cfg)
    assert r.returncode == 1
    assert f"{cfg}: " + expected.format(dir=tmp_path) in r.stdout, r.stdout


def test_a_route_naming_hooks_without_a_hooks_table_is_refused(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, '[origins.web]\nurl = "http://127.0.0.1:9"\n[[routes]]\nmatch = "/"\nhooks = ["x"]\norigin = "web"\n')
    r = _check(cfg)
    assert r.returncode == 1
    assert f"{cfg}: routes[0].hooks: names hooks but there is no [hooks] table" in r.stdout


def test_serve_refuses_to_start_with_a_broken_hook_module(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, RELOAD_CONFIG.format(port=9), {"hooks.py": "import gateway\nraise ImportError('boom')\n"})
    r = subprocess.run([GATEWAY_BIN, "serve", "--config", str(cfg), "--listen", "127.0.0.1:1"], capture_output=True, text=True, env=gateway_env(), timeout=60, check=False)
    assert r.returncode == 1
    assert "hooks.module: importing" in r.stderr and "ImportError: boom (at hooks.py line 2)" in r.stderr
    assert "not serving" in r.stderr


def test_explain_runs_early_and_request_hooks_in_dry_run(deny: Site) -> None:
    cfg = deny.gw.config
    out = subprocess.run(
        [GATEWAY_BIN, "explain", "--config", str(cfg), "-H", f"Authorization: Bearer {token(tenant='acme')}", "/t/acme/x", "--json"],
        capture_output=True, text=True, env=gateway_env(), timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    ex = json.loads(out.stdout)
    assert ex["action"] == "proxy"
    assert ex["hooks"] == [{"stage": "request", "hook": "tenant", "returned": {"type": "Forward", "set_headers": {"X-Tenant": "acme"}}}]
    assert ex["response_hooks"] == ["cache_policy"]
    assert ["X-Tenant", "acme"] in ex["forwarded_headers"]
    snap = subprocess.run([GATEWAY_BIN, "explain", "--config", str(cfg), "/snapshot/1", "--json"], capture_output=True, text=True, env=gateway_env(), timeout=60, check=False)
    ex = json.loads(snap.stdout)
    assert ex["action"] == "respond" and ex["status"] == 200
    assert json.loads(ex["body"])["dry_run"] is True
    text = subprocess.run([GATEWAY_BIN, "explain", "--config", str(cfg), "/raises"], capture_output=True, text=True, env=gateway_env(), timeout=60, check=False)
    assert "request hooks: hook 'raises' (request) raised ZeroDivisionError" in text.stdout
    assert "respond 500" in text.stdout


def test_raw_head_of_a_hook_answer(deny: Site) -> None:
    r = raw_get(deny.gw.port, "/early/x", {"X-Deny": "1"})
    assert r.status == 451
    assert r.header("content-length") == str(len(b"blocked early")) and r.body == b"blocked early"
