"""Property: `gateway explain` and `gateway serve` agree on every generated request.

One real `gateway serve` on the README's example config (python/gateway/examples/gateway.toml with
its origins moved to two real echo origins, as tests/test_gateway.py does): protected routes with a
redirecting and a 401 policy, locale prefixes from cf-ipcountry / Accept-Language, the A/B experiment,
a method-conditioned route to the other origin. Hypothesis builds requests from route literals, dot
segments, empty segments, percent-encodings (good, bad and encoded `/` `\\` NUL), `;`, raw UTF-8, query
strings, tokens of every kind in the cookie and/or Authorization, geo and language headers, the
experiment cookie, spoofed and hop-by-hop headers, and sends each as exact bytes over a socket.

The prediction comes from the `gateway explain` command itself, run in-process:
``gateway.cli.main(["explain", "--config", FILE, "-X", METHOD, "-H", "Name: value", ..., URL, "--json"])``
with stdout captured — the same argv parsing, config loading (the same file serve was started with),
header parsing and decision as a user's `gateway explain --json`; a subprocess per example would cost
~0.5 s. `test_in_process_explain_is_the_cli` checks the in-process output against the real CLI.

Compared per request: the status (302 / 401 / 403 / 400 / 204 / proxied 200), Location, WWW-Authenticate,
every CORS header and Vary, every Set-Cookie, and for proxied requests the origin that answered, the exact path and query it received,
every request header it received (each name's values in order), and the response headers the route adds; for an
answer a Python hook made, its headers and body. The config adds two routes with early and request hooks (issue 13):
explain runs them in dry-run, serve for real, and the two must agree. The only value allowed to differ is a newly
drawn A/B variant, which is random per request.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gateway
import pytest
from gateway.cli import main as gateway_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.harness import (
    GATEWAY_BIN,
    SECRET,
    Gateway,
    RawResponse,
    example_site,
    gateway_env,
    gateway_serve,
    raw_http,
    write_config,
)

VARIANTS = ("control", "variant")  # [experiments.landing] in the example

# What the example lacks: has/missing conditions on header, cookie and query, path parameters and
# request-header templates (before its catch-all, so they can match).
EXTRA_ROUTES = """
[[routes]]
match = "/beta/:slug"
has = [{ type = "header", key = "x-beta", value = "1|yes" }]
missing = [{ type = "cookie", key = "opt-out" }]
request_headers = { "X-Slug" = "{params.slug}" }
origin = "regional"

[[routes]]
match = "/q/:rest*"
has = [{ type = "query", key = "v", value = "[0-9]+" }]
response_headers = { "X-Rest" = "{params.rest|none}" }
origin = "regional"

[[routes]]
match = "/admin/:path*"
auth = "session"
cors = "app"
require = { all = [ { claim = "roles", contains = "admin" } ], any = [ { claim = "org.tier", in = ["pro", "team"] }, { claim = "scope", contains = "admin:all" } ] }
origin = "web"

[[routes]]
match = "/cors/:path*"
methods = ["GET", "DELETE"]
auth = "api"
cors = "app"
origin = "regional"
"""

# CORS policies for the routes above (issue 12).
EXTRA_TABLES = """
[cors.app]
origins = ["https://app.example.com", "https://*.example.com"]
methods = ["GET", "POST", "DELETE"]
headers = ["authorization", "content-type"]
expose = ["x-request-id"]
credentials = true
max_age = "10m"
"""


# Python hooks (issue 13) on two routes: an early gate, a request hook that answers or changes the
# forward (headers, path, origin, cookies, a KV lookup keyed by the country), one that decides by the
# verified claims, and a hook failure (on_error = "deny": 500 hook_failed on both sides).
HOOK_TABLES = """
[hooks]
module = "file:hooks.py"
timeout = "2s"
on_error = "deny"
"""

HOOK_ROUTES = """
[[routes]]
match = "/hooked/:rest*"
locale = true
hooks = ["gate", "decorate"]
origin = "web"

[[routes]]
match = "/hooked-auth/:rest*"
auth = "session"
hooks = ["gate", "by_claims"]
origin = "web"
"""

HOOKS_PY = """
import gateway


@gateway.hook("early")
def gate(req):
    if req.headers.get("x-beta") == "no":
        return gateway.Respond(409, json={"gate": req.path, "query": req.query, "claims": len(req.claims)}, headers={"X-Gate": "closed"})
    return None


@gateway.hook("request")
async def decorate(req):
    rest = req.params.get("rest") or ""
    if "boom" in rest:
        raise RuntimeError("boom")
    if rest.startswith("answer"):
        return gateway.Respond(202, body=f"{req.country}:{req.lang}:{req.dry_run is not None}", headers={"X-Country": req.country or ""})
    region = await req.kv("regions", req.country or "US")
    return gateway.Forward(
        set_headers={"X-Currency": (region or {}).get("currency", "none"), "X-Beta": "hook"},
        remove_headers=["Cookie"] if "drop" in rest else (),
        path=("/moved/" + rest) if rest.startswith("ko") or rest.startswith("move") else None,
        origin="regional" if "a" in rest else None,
        set_cookies=["hooked=1; Path=/; SameSite=Lax"],
    )


@gateway.hook("request")
def by_claims(req):
    if req.claims.get("sub") == "bob":
        return gateway.Respond(403, json={"error": "no_bob", "role": req.claims.get("role")})
    return gateway.Forward(set_headers={"X-Sub": req.claims.get("sub", "?")}, remove_headers=["X-Beta"])
"""


@dataclass
class Site:
    gw: Gateway
    config: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with ExitStack() as stack, pytest.MonkeyPatch.context() as mp:
        mp.setenv("JWT_SECRET", SECRET)  # the in-process explain loads the config, as serve does
        tmp = tmp_path_factory.mktemp("explain-vs-serve")
        (tmp / "hooks.py").write_text(HOOKS_PY)
        gw = example_site(tmp, stack, server="access_log = false\n", before_catch_all=EXTRA_ROUTES + HOOK_ROUTES, tables=EXTRA_TABLES + HOOK_TABLES)
        yield Site(gw, gw.config)


# --------------------------------------------------------------------------------------------
# requests
# --------------------------------------------------------------------------------------------


@dataclass
class Req:
    method: str
    target: str  # path[?query], sent as UTF-8 bytes
    headers: list[tuple[str, str]]  # as sent, in order (after Host)

    def wire(self, port: int) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.method in ("POST", "PUT"):
            lines.append("Content-Length: 0")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    def explain_argv(self, config: Path, port: int) -> list[str]:
        argv = ["explain", "--config", str(config), "-X", self.method]
        sent = list(self.headers) + ([("Content-Length", "0")] if self.method in ("POST", "PUT") else []) + [("Connection", "close")]
        for k, v in sent:
            argv += ["-H", f"{k}: {v}"]
        return [*argv, f"http://127.0.0.1:{port}{self.target}", "--json"]


def _token(kind: str) -> str:
    now = int(time.time())
    claims = {"sub": "alice", "iat": now, "exp": now + 600}
    if kind == "valid":
        return gateway.encode(claims, SECRET)
    if kind == "valid-bob":
        return gateway.encode({**claims, "sub": "bob", "role": "admin"}, SECRET)
    if kind == "admin-pro":  # passes /admin's claim rules
        return gateway.encode({**claims, "roles": ["admin"], "org": {"tier": "pro"}}, SECRET)
    if kind == "admin-scope":
        return gateway.encode({**claims, "roles": "admin", "scope": "read admin:all"}, SECRET)
    if kind == "admin-free":  # fails them: any holds for none
        return gateway.encode({**claims, "roles": ["admin"], "org": {"tier": "free"}}, SECRET)
    if kind == "roles-number":  # a number where an array is expected
        return gateway.encode({**claims, "roles": 7, "org": {"tier": "pro"}}, SECRET)
    if kind == "in-leeway":  # expired 5 s ago; the example allows 30 s of leeway
        return gateway.encode({**claims, "exp": now - 5}, SECRET)
    if kind == "expired":
        return gateway.encode({**claims, "exp": now - 3600}, SECRET)
    if kind == "not-yet":
        return gateway.encode({**claims, "nbf": now + 3600}, SECRET)
    if kind == "forged":
        return gateway.encode(claims, SECRET[::-1])
    if kind == "tampered":
        head, _, sig = gateway.encode(claims, SECRET).split(".")
        return f"{head}.{gateway.b64url_encode(json.dumps({**claims, 'sub': 'admin'}).encode())}.{sig}"
    if kind == "hs512":
        return gateway.encode(claims, SECRET, algorithm="HS512", allow_weak_key=True)
    if kind == "alg-none":
        return gateway.b64url_encode(b'{"alg":"none"}') + "." + gateway.b64url_encode(json.dumps(claims).encode()) + "."
    return {"garbage": "not.a.token", "two-parts": "eyJhbGciOiJIUzI1NiJ9.e30"}[kind]


TOKEN_KINDS = ["valid", "valid-bob", "admin-pro", "admin-scope", "admin-free", "roles-number", "in-leeway", "expired", "not-yet", "forged", "tampered", "hs512", "alg-none", "garbage", "two-parts"]

LITERALS = ["hooked", "hooked-auth", "answer", "boom", "move", "drop", "dashboard", "Dashboard", "DASHBOARD", "api", "API", "protected", "resize", "login", "products", "ko", "ja", "KO", "__gateway", "health"]
DOTS = [".", "..", "%2e", "%2E%2e", ".%2E", "...", "..%2f"]
TRICKY = ["", ";x=1", "a;b", "%2F", "%2f", "%5C", "%5c", "%00", "%0a", "%zz", "%", "%4", "%c0%ae", "%25", "%2564ashboard", "%64ashboard", "dash%62oard", "%7E", "~u"]
HEADS = [
    "dashboard", "Dashboard", "DASHBOARD", "%64ashboard", "dash%42oard", "x/../dashboard", "./dashboard", ".%2e/dashboard",
    "api/protected", "API/Protected", "api//protected", "api/%70rotected", "api/protected/..", "api/resize", "api/resize", "api/resize/", "api/Resize",
    "products", "ko", "ja/products", "", "login", "beta", "beta/x", "Beta/%78", "q", "q/a/b",
    "admin", "admin/x", "Admin/users", "cors", "cors/x", "CORS/%78",
    "hooked", "hooked/answer", "hooked/move", "hooked/ko", "hooked/drop", "hooked/x/boom", "Hooked/a", "hooked-auth", "hooked-auth/a",
]  # fmt: skip
PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,=:@"

percent = st.builds(lambda b, lower: (f"%{b:02x}" if lower else f"%{b:02X}"), st.integers(0, 255), st.booleans())
segment = st.one_of(
    st.sampled_from(LITERALS),
    st.sampled_from(DOTS),
    st.sampled_from(TRICKY),
    st.text(alphabet=PCHAR, min_size=1, max_size=6),
    st.lists(st.one_of(percent, st.text(alphabet=PCHAR, min_size=1, max_size=3)), min_size=1, max_size=3).map("".join),
    st.sampled_from(["é", "한국", "caf\u00e9"]),  # raw UTF-8 in the path
)
query_part = st.one_of(
    st.text(alphabet=PCHAR + "/?%;", max_size=8),
    st.lists(percent, min_size=1, max_size=3).map("".join),
    st.sampled_from(["next=//evil.example", "next=/%5Cevil.example", "a=1&a=2", "=", "&&", "v=%E2%82%AC", "x=%2F..%2F", "v=42", "v=4x", "v="]),
)


ORIGINS = (None, None, "https://app.example.com", "https://a.b.example.com", "https://example.com", "https://evil-example.com", "null", "https://APP.example.com")


@st.composite
def requests(
    draw: st.DrawFn,
    heads: list[str] = HEADS,
    methods: tuple[str, ...] = ("GET", "GET", "GET", "HEAD", "POST", "POST", "PUT", "DELETE", "OPTIONS"),
    origins: tuple[str | None, ...] = ORIGINS,
) -> Req:
    # Mostly start at a route (spelled in many ways) so the protected routes get their share.
    head = draw(st.sampled_from(heads) if draw(st.integers(0, 3)) else st.lists(segment, min_size=1, max_size=2).map("/".join))
    path = draw(st.sampled_from(["/", "/", "//", "/./", "/../"])) + "/".join([head, *draw(st.lists(segment, max_size=4))])
    if draw(st.booleans()):
        path += "/"
    target = path
    if draw(st.integers(0, 2)):
        target += "?" + "&".join(draw(st.lists(query_part, min_size=1, max_size=3)))
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []

    cookie_kind = draw(st.sampled_from([None, None, "valid", "valid", *TOKEN_KINDS, "empty"]))
    if cookie_kind:
        cookies.append("auth-token=" + ("" if cookie_kind == "empty" else _token(cookie_kind)))
    bearer_kind = draw(st.sampled_from([None, None, "valid", "valid", *TOKEN_KINDS]))
    if bearer_kind:
        scheme = draw(st.sampled_from(["Bearer", "Bearer", "bearer", "BEARER", "Basic", "Bearer "]))
        headers.append(("Authorization", f"{scheme} {_token(bearer_kind)}"))
        if draw(st.integers(0, 9)) == 0:  # a second Authorization header: ambiguous, refused as invalid
            headers.append(("Authorization", f"Bearer {_token('valid')}"))
    ab = draw(st.sampled_from([None, None, *VARIANTS, "bogus", "", "Control"]))
    if ab is not None:
        cookies.append(f"ab-group={ab}")
    if draw(st.booleans()):
        cookies.append(draw(st.sampled_from(["other=1", "opt-out=1"])))
    if cookies:
        order = draw(st.permutations(cookies))
        if len(order) > 1 and draw(st.booleans()):  # split over two Cookie headers
            headers += [("Cookie", "; ".join(order[:1])), ("Cookie", "; ".join(order[1:]))]
        else:
            headers.append(("Cookie", "; ".join(order)))
    country = draw(st.sampled_from([None, "KR", "JP", "US", "FR", "kr", "K1", "KOR"]))
    if country is not None:
        headers.append(("cf-ipcountry", country))
    lang = draw(st.sampled_from([None, "ko", "ja-JP,ja;q=0.9", "fr;q=0.9, ko;q=0.8", "*", "*, ja;q=0.5", "en", "ko;q=0", "x;;q=zz"]))
    if lang is not None:
        headers.append(("Accept-Language", lang))
    beta = draw(st.sampled_from([None, None, "1", "yes", "no", "1 "]))
    if beta is not None:
        headers.append(("X-Beta", beta))
    if draw(st.booleans()):
        headers.append(("X-User-Id", "spoofed"))
    if draw(st.booleans()):
        headers.append(("X-Forwarded-For", "198.51.100.7"))
    if draw(st.integers(0, 3)) == 0:
        headers.append(("X-Hop", "1"))
        headers.append(("Connection", "X-Hop"))  # names a hop-by-hop header: never forwarded
    # CORS (issue 12): an Origin, allowed or hostile, and sometimes a preflight's request headers.
    origin = draw(st.sampled_from(origins))
    if origin is not None:
        headers.append(("Origin", origin))
    method = draw(st.sampled_from(methods))
    if method == "OPTIONS" and draw(st.integers(0, 3)):
        headers.append(("Access-Control-Request-Method", draw(st.sampled_from(["GET", "DELETE", "PATCH", "delete"]))))
        if draw(st.booleans()):
            headers.append(("Access-Control-Request-Headers", draw(st.sampled_from(["authorization", "Content-Type, Authorization", "x-other", ""]))))
    # api_status (issue 12): the redirect policy answers JSON to requests that prefer it.
    accept = draw(st.sampled_from([None, None, "text/html,application/xhtml+xml,*/*;q=0.8", "application/json", "application/json, text/plain, */*", "*/*", "text/html;q=0.5, application/json;q=0.4"]))
    if accept is not None:
        headers.append(("Accept", accept))
    if draw(st.integers(0, 5)) == 0:
        headers.append(("X-Requested-With", "XMLHttpRequest"))
    return Req(method, target, draw(st.permutations(headers)))


# --------------------------------------------------------------------------------------------
# the two sides
# --------------------------------------------------------------------------------------------


def explain_in_process(site: Site, req: Req) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            gateway_cli(req.explain_argv(site.config, site.gw.port))
        except SystemExit as e:
            assert e.code in (0, None), f"gateway explain exited {e.code}"
    return json.loads(out.getvalue())


def served(site: Site, req: Req) -> RawResponse:
    return raw_http(site.gw.port, req.wire(site.gw.port))


def _variant_cookie(cookies: list[str]) -> str | None:
    for c in cookies:
        if c.startswith("ab-group="):
            return c.split(";", 1)[0].split("=", 1)[1]
    return None


def assert_agree(site: Site, req: Req, ex: dict[str, Any], r: RawResponse) -> None:
    ctx = f"\n{req.method} {req.target}\nheaders={req.headers}\nexplain={json.dumps(ex, indent=1)}\nserved={r.status} {r.headers} {r.body[:300]!r}"
    # A new visitor's variant is drawn at random on each side; everything else must be equal.
    ex_variant, got_variant = _variant_cookie(ex["set_cookies"]), _variant_cookie(r.header_list("set-cookie"))
    fresh = ex_variant is not None  # explain sets the cookie only when it draws a variant
    if fresh:
        assert got_variant in VARIANTS, "serve drew no variant where explain did" + ctx
    expected_cookies = [c.replace(f"ab-group={ex_variant};", f"ab-group={got_variant};") if fresh else c for c in ex["set_cookies"]]
    assert r.header_list("set-cookie") == expected_cookies, "Set-Cookie" + ctx

    # The CORS headers (issue 12): exactly those explain predicts, on answers and forwards alike.
    cors = {k.lower(): v for k, v in r.headers if k.lower().startswith("access-control-") or k.lower() == "vary"}
    assert cors == {k.lower(): v for k, v in ex["response_headers"].items() if k.lower().startswith("access-control-") or k.lower() == "vary"}, "CORS headers" + ctx
    if ex["action"] != "proxy":
        assert r.status == ex["status"], "status" + ctx
        assert r.header("location") == ex["location"], "Location" + ctx
        if "body" in ex:  # a hook's own answer: its headers and body
            for name, value in ex["response_headers"].items():
                assert r.header_list(name) == [value], f"hook answer header {name}" + ctx
            if req.method != "HEAD":
                assert r.body.decode("utf-8") == ex["body"], "hook answer body" + ctx
            return
        assert r.header("www-authenticate") == ex["response_headers"].get("WWW-Authenticate"), "WWW-Authenticate" + ctx
        if ex["action"] == "redirect" or r.status == 204:
            assert r.body == b"", "a redirect or a preflight's 204 has no body" + ctx
        elif req.method != "HEAD":
            body = json.loads(r.body)  # the gateway's own JSON error
            assert set(body) == {"error", "detail"}, "explain says refused; this is not the gateway's error" + ctx
        return

    assert r.status == 200, "explain says proxied; the echo origin answers 200" + ctx
    for name, value in ex["response_headers"].items():
        assert r.header_list(name) == [value], f"response header {name}" + ctx
    if req.method == "HEAD":
        return
    seen = json.loads(r.body)
    upstream = urlsplit(ex["upstream_url"])
    assert seen["origin"] == ex["origin"], "origin" + ctx
    assert upstream.port == site.gw.origins[ex["origin"]], "upstream port" + ctx
    assert seen["method"] == req.method, "method" + ctx
    assert seen["path"] == upstream.path, "upstream path" + ctx
    assert seen["query"] == upstream.query, "upstream query" + ctx
    predicted = [(k, got_variant if fresh and k.lower() == "x-ab-group" else v) for k, v in ex["forwarded_headers"]]
    assert _fields(seen["headers"]) == _fields(predicted), "headers the origin received" + ctx


def _fields(headers: list[Any]) -> dict[str, list[str]]:
    """Name -> values in order: what HTTP says a header section means (the proxy's HTTP client
    groups repeated fields, which moves them relative to other names but not to each other)."""
    out: dict[str, list[str]] = {}
    for k, v in headers:
        out.setdefault(k.lower(), []).append(v)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=requests())
def test_explain_predicts_what_serve_does(site: Site, req: Req) -> None:
    r = served(site, req)
    ex = explain_in_process(site, req)
    # The mix of outcomes shows with --hypothesis-show-statistics.
    event(f"{ex['action']} {ex['status']}" + (f" via {ex['origin']}" if ex["origin"] and ex["action"] == "proxy" else ""))
    event(f"auth {ex['auth']['policy']}: {ex['auth']['outcome']}")
    if ex["cors"]:
        event("cors: " + ex["cors"]["decision"].split(" by ")[0].split(":")[0])
    for h in ex["hooks"]:
        event(f"hook {h['hook']}: " + (h["returned"]["type"] if h.get("returned") else "failed" if "error" in h else "None"))
    assert_agree(site, req, ex, r)


# The routes with CORS, claim rules and a redirect policy's api_status (issue 12), on their own, so
# they get many examples of their own: preflights, hostile origins, failing claims, Accept headers.
ISSUE_12_HEADS = ["admin", "admin/x", "Admin/users", "cors", "cors/x", "CORS/%78", "dashboard", "dashboard/x"]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=requests(heads=ISSUE_12_HEADS, methods=("GET", "GET", "HEAD", "DELETE", "OPTIONS", "OPTIONS", "OPTIONS"), origins=ORIGINS + ("https://app.example.com",) * 4))
def test_explain_predicts_serve_on_cors_and_claim_routes(site: Site, req: Req) -> None:
    r = served(site, req)
    ex = explain_in_process(site, req)
    event(f"{ex['action']} {ex['status']}")
    if ex["cors"]:
        event("cors: " + ex["cors"]["decision"].split(" by ")[0].split(":")[0])
    if ex["require"]:
        event("require: " + str(ex["require"]["outcome"]).split(":")[0])
    if ex["auth"]["api_status"]:
        event("api_status: " + ex["auth"]["api_status"].split(":")[0])
    assert_agree(site, req, ex, r)


# Requests whose outcome is known, so the property above cannot pass by never reaching a branch.
KNOWN = [
    (Req("GET", "/dashboard/a?x=1", []), "redirect", 302),
    (Req("GET", "/x/../DASHBOARD//a", [("Cookie", "auth-token=" + _token("expired"))]), "redirect", 302),
    (Req("GET", "/dashboard", [("Authorization", "Bearer " + _token("valid"))]), "proxy", 200),
    (Req("GET", "/api/protected/x", []), "respond", 401),
    (Req("GET", "/api/protected/x", [("Authorization", "Bearer " + _token("forged"))]), "respond", 401),
    (Req("GET", "/dashboard%2fx", []), "respond", 400),
    (Req("GET", "/a;b", []), "respond", 400),
    (Req("POST", "/api/resize", [("Cookie", "ab-group=variant")]), "proxy", 200),
    (Req("GET", "/products?q=1", [("cf-ipcountry", "KR"), ("Cookie", "ab-group=control")]), "proxy", 200),
    (Req("GET", "/products", [("Accept-Language", "ja")]), "proxy", 200),
    (Req("GET", "/caf\u00e9/%7E", [("Cookie", "ab-group=control")]), "proxy", 200),
    # issue 12: preflights, claim rules, api_status
    (Req("OPTIONS", "/cors/x", [("Origin", "https://a.example.com"), ("Access-Control-Request-Method", "DELETE")]), "respond", 204),
    (Req("OPTIONS", "/cors/x", [("Origin", "https://evil-example.com"), ("Access-Control-Request-Method", "DELETE")]), "respond", 403),
    (Req("GET", "/cors/x", [("Origin", "https://app.example.com")]), "respond", 401),
    (Req("GET", "/admin/x", [("Authorization", "Bearer " + _token("admin-pro")), ("Origin", "https://app.example.com")]), "proxy", 200),
    (Req("GET", "/admin/x", [("Authorization", "Bearer " + _token("admin-free")), ("Accept", "text/html")]), "respond", 403),
    (Req("GET", "/admin/x", [("Authorization", "Bearer " + _token("roles-number"))]), "respond", 403),
    (Req("GET", "/dashboard/x", [("Accept", "application/json")]), "respond", 401),
    (Req("GET", "/dashboard/x", [("Accept", "text/html"), ("X-Requested-With", "XMLHttpRequest")]), "respond", 401),
    (Req("GET", "/hooked/x", [("X-Beta", "no")]), "respond", 409),
    (Req("GET", "/hooked/answer", [("cf-ipcountry", "KR"), ("Accept-Language", "ja")]), "respond", 202),
    (Req("GET", "/hooked/move/on?q=1", [("cf-ipcountry", "JP"), ("Cookie", "a=b")]), "proxy", 200),
    (Req("GET", "/hooked/drop/a", [("Cookie", "a=b")]), "proxy", 200),
    (Req("GET", "/hooked/boom", []), "respond", 500),
    (Req("GET", "/hooked-auth/x", [("Authorization", "Bearer " + _token("valid-bob"))]), "respond", 403),
    (Req("GET", "/hooked-auth/x", [("Authorization", "Bearer " + _token("valid")), ("X-Beta", "1"), ("X-User-Id", "spoofed")]), "proxy", 200),
]


@pytest.mark.parametrize(("req", "action", "status"), KNOWN, ids=[f"{r.method} {r.target[:30]}" for r, _, _ in KNOWN])
def test_known_requests(site: Site, req: Req, action: str, status: int) -> None:
    ex = explain_in_process(site, req)
    assert (ex["action"], ex["status"]) == (action, status), ex
    assert_agree(site, req, ex, served(site, req))


def test_in_process_explain_is_the_cli(site: Site) -> None:
    """What the property compares against is what `gateway explain --json` prints."""
    for req, _, _ in KNOWN[:4] + KNOWN[8:9]:
        argv = req.explain_argv(site.config, site.gw.port)
        cli = subprocess.run([GATEWAY_BIN, *argv], capture_output=True, text=True, env=gateway_env(), timeout=60, check=False)
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout) == explain_in_process(site, req), req


# --------------------------------------------------------------------------------------------
# octets outside ASCII: header bytes pass through unchanged; a raw query is percent-encoded
# --------------------------------------------------------------------------------------------


def test_raw_utf8_in_the_query_is_forwarded_percent_encoded(site: Site) -> None:
    # A request target must be ASCII (RFC 9112 §3.2); the gateway encodes what a client should have.
    req = Req("GET", "/products?q=caf\u00e9&x=%41", [("Cookie", "ab-group=control")])
    ex = explain_in_process(site, req)
    r = served(site, req)
    assert urlsplit(ex["upstream_url"]).query == "q=caf%C3%A9&x=%41"
    assert json.loads(r.body)["query"] == "q=caf%C3%A9&x=%41"


def test_raw_utf8_in_the_query_of_a_redirect(site: Site) -> None:
    req = Req("GET", "/dashboard?q=caf\u00e9", [])
    ex = explain_in_process(site, req)
    r = served(site, req)
    # next= carries the forwarded form of the query, itself percent-encoded once more.
    assert ex["location"] == "/login?next=%2Fdashboard%3Fq%3Dcaf%25C3%25A9"
    assert r.header("location") == ex["location"]


def test_raw_utf8_in_a_header_value_reaches_the_origin_as_sent(site: Site) -> None:
    req = Req("GET", "/products", [("Cookie", "ab-group=control"), ("X-Name", "caf\u00e9")])
    ex = explain_in_process(site, req)
    assert ["x-name", "caf\u00e9"] in ex["forwarded_headers"]
    seen = json.loads(served(site, req).body)
    assert [v.encode("latin-1") for k, v in seen["headers"] if k.lower() == "x-name"] == ["caf\u00e9".encode()]


def test_a_latin1_header_byte_reaches_the_origin_as_sent(site: Site) -> None:
    # Not UTF-8 at all (a legacy client): still passed through byte for byte.
    raw = Req("GET", "/products", [("Cookie", "ab-group=control")]).wire(site.gw.port).replace(b"Connection: close", b"X-Name: caf\xe9\r\nConnection: close")
    seen = json.loads(raw_http(site.gw.port, raw).body)
    assert [v.encode("latin-1") for k, v in seen["headers"] if k.lower() == "x-name"] == [b"caf\xe9"]


def test_a_non_ascii_claim_is_forwarded_as_utf8(site: Site) -> None:
    now = int(time.time())
    tok = gateway.encode({"sub": "\u00e9mile \ud55c", "iat": now, "exp": now + 600}, SECRET)
    req = Req("GET", "/dashboard/x", [("Authorization", f"Bearer {tok}")])
    ex = explain_in_process(site, req)
    assert [v for k, v in ex["forwarded_headers"] if k.lower() == "x-user-id"] == ["\u00e9mile \ud55c"]
    seen = json.loads(served(site, req).body)
    assert [v.encode("latin-1") for k, v in seen["headers"] if k.lower() == "x-user-id"] == ["\u00e9mile \ud55c".encode()]


def test_utf8_in_an_origin_response_header_reaches_the_client_as_sent(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def origin() -> None:  # one raw answer with UTF-8 in a header value
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Name: caf\xc3\xa9 \xed\x95\x9c\r\nConnection: close\r\n\r\nok")

    t = threading.Thread(target=origin, daemon=True)
    t.start()
    with listener:
        cfg = write_config(tmp_path, f'[origins.o]\nurl = "http://127.0.0.1:{port}"\n[[routes]]\nmatch = "/:p*"\norigin = "o"\n')
        with gateway_serve(cfg) as gw:
            r = gw.raw(b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    t.join(5)
    assert r.status == 200 and r.body == b"ok"
    assert (r.header("x-name") or "").encode("latin-1") == "caf\u00e9 \ud55c".encode()
