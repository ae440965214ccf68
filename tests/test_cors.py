"""CORS (issue 12): ``[cors.NAME]`` policies and a route's ``cors = "NAME"``, over real sockets.

One real `gateway serve` in front of a RecordingOrigin (which proves what did NOT reach it: the
preflights), a small origin with its own CORS middleware and a slow path (stdlib http.server in a
thread), and an origin port nobody listens on (502). Requests go out through httpx, or as exact bytes
where a header must be sent twice. Origin matching is also checked as a property (hypothesis): a
wildcard entry never matches anything but a subdomain of its domain, with its scheme and port.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gateway
import httpx
import pytest
from gateway.config import ConfigError, load
from gateway.cors import CorsPolicy
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import GATEWAY_BIN, SECRET, Gateway, free_port, gateway_env, gateway_serve, write_config
from tests.recording_origin import RecordingOrigin

ALLOWED = "https://app.example.com"
CORS_NAMES = ("access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods", "access-control-allow-headers", "access-control-expose-headers", "access-control-max-age")


class _OwnCorsOrigin(BaseHTTPRequestHandler):
    """An origin with CORS middleware of its own (which the gateway must override) and a slow path."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.startswith("/slow"):
            time.sleep(2)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Credentials", "false")
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Vary", "Accept-Language")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


CONFIG = """
[origins.web]
url = "http://127.0.0.1:{web}"

[origins.own]
url = "http://127.0.0.1:{own}"

[origins.down]
url = "http://127.0.0.1:{down}"

[auth.api]
secret = "env:JWT_SECRET"
token_from = ["bearer"]

[auth.session]
secret = "env:JWT_SECRET"
token_from = ["cookie:auth-token", "bearer"]
on_missing = {{ redirect = "/login" }}
on_invalid = {{ redirect = "/login", clear_cookie = "auth-token" }}

[cors.app]
origins = ["https://app.example.com", "https://*.example.com", "http://localhost:3000"]
methods = ["GET", "POST", "DELETE"]
headers = ["authorization", "content-type"]
expose = ["x-request-id"]
credentials = true
max_age = "10m"

[cors.public]
origins = ["*"]
expose = ["*"]

[[routes]]
match = "/api/:p*"
auth = "api"
cors = "app"
origin = "web"

[[routes]]
match = "/admin/:p*"
auth = "api"
cors = "app"
require = {{ all = [ {{ claim = "roles", contains = "admin" }} ] }}
origin = "web"

[[routes]]
match = "/items/:id"
methods = ["DELETE"]
auth = "api"
cors = "app"
origin = "web"

[[routes]]
match = "/session/:p*"
auth = "session"
cors = "app"
origin = "web"

[[routes]]
match = "/down/:p*"
cors = "app"
origin = "down"

[[routes]]
match = "/slow/:p*"
cors = "app"
timeout = "300ms"
origin = "own"

[[routes]]
match = "/own/:p*"
cors = "app"
origin = "own"

[[routes]]
match = "/small/:p*"
cors = "app"
max_body = 10
origin = "web"

[[routes]]
match = "/public/:p*"
cors = "public"
origin = "web"

[[routes]]
match = "/plain/:p*"
auth = "api"
origin = "web"
"""


class Site:
    def __init__(self, gw: Gateway, web: RecordingOrigin):
        self.gw, self.web = gw, web


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("cors")
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        own = ThreadingHTTPServer(("127.0.0.1", 0), _OwnCorsOrigin)
        own.daemon_threads = True
        threading.Thread(target=own.serve_forever, daemon=True).start()
        stack.callback(own.shutdown)
        cfg = write_config(tmp, CONFIG.format(web=web.port, own=own.server_address[1], down=free_port()))
        gw = stack.enter_context(gateway_serve(cfg))
        yield Site(gw, web)


def token(**claims: Any) -> str:
    now = int(time.time())
    return gateway.encode({"sub": "alice", "iat": now, "exp": now + 600, **claims}, SECRET)


def bearer(**claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(**claims)}"}


def cors_headers(r: httpx.Response) -> dict[str, list[str]]:
    return {n: r.headers.get_list(n) for n in CORS_NAMES if r.headers.get_list(n)}


def preflight(site: Site, path: str, origin: str = ALLOWED, method: str = "DELETE", headers: str | None = "authorization, content-type") -> httpx.Response:
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        h["Access-Control-Request-Headers"] = headers
    return site.gw.request("OPTIONS", path, headers=h)


# --------------------------------------------------------------------------------------------
# preflights: answered by the gateway, before auth, never forwarded
# --------------------------------------------------------------------------------------------


def test_an_allowed_preflight_is_answered_204_without_a_token_and_not_forwarded(site: Site) -> None:
    mark = site.web.mark()
    r = preflight(site, "/api/things", origin="https://a.b.example.com")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert "content-length" not in r.headers  # RFC 9110 §8.6: none on a 204
    assert r.headers["access-control-allow-origin"] == "https://a.b.example.com"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-allow-methods"] == "GET, POST, DELETE"
    assert r.headers["access-control-allow-headers"] == "authorization, content-type"
    assert r.headers["access-control-max-age"] == "600"
    assert r.headers["vary"] == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    assert "www-authenticate" not in r.headers
    assert site.web.since(mark) == ([], [])
    line = site.gw.wait_log(lambda e: e["method"] == "OPTIONS" and e["path"] == "/api/things")
    assert line is not None and line["status"] == 204 and line["auth"] == "none"


def test_a_preflight_matches_a_route_by_the_method_it_asks_about(site: Site) -> None:
    # /items/:id allows only DELETE: its preflight (an OPTIONS) is still that route's.
    mark = site.web.mark()
    r = preflight(site, "/items/7", method="DELETE", headers=None)
    assert r.status_code == 204
    assert r.headers["access-control-allow-methods"] == "GET, POST, DELETE"
    r = preflight(site, "/items/7", method="GET", headers=None)
    assert r.status_code == 404  # no route takes a GET there: nothing to allow
    assert site.web.since(mark) == ([], [])


@pytest.mark.parametrize(
    ("origin", "method", "headers", "why"),
    [
        ("https://evil.com", "DELETE", None, "origin"),
        ("https://evil-example.com", "GET", None, "origin"),
        ("https://example.com", "GET", None, "origin"),
        ("https://app.example.com", "PATCH", None, "method"),
        ("https://app.example.com", "delete", None, "method"),  # methods are case-sensitive (Fetch)
        ("https://app.example.com", "DELETE", "authorization, x-secret", "header"),
        ("https://app.example.com", "DELETE", "authorization, bad header", "Access-Control-Request-Headers"),
        ("https://app.example.com", "DELETE", ",".join(f"x-h{i}" for i in range(70)), "Access-Control-Request-Headers"),
    ],
)
def test_a_refused_preflight_gets_no_cors_headers_and_is_not_forwarded(site: Site, origin: str, method: str, headers: str | None, why: str) -> None:
    mark = site.web.mark()
    r = preflight(site, "/api/things", origin=origin, method=method, headers=headers)
    assert r.status_code == 403
    assert cors_headers(r) == {}
    assert r.json()["error"] == "forbidden" and why in r.json()["detail"]
    assert "Origin" in r.headers["vary"]
    assert site.web.since(mark) == ([], [])


def test_two_origin_headers_are_refused_on_a_preflight(site: Site) -> None:
    r = site.gw.raw(
        b"OPTIONS /api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://app.example.com\r\nOrigin: https://evil.com\r\n"
        b"Access-Control-Request-Method: GET\r\nConnection: close\r\n\r\n"
    )
    assert r.status == 403
    assert not any(k.lower().startswith("access-control-") for k, _ in r.headers)


def test_an_options_request_that_is_not_a_preflight_goes_through_auth(site: Site) -> None:
    # No Access-Control-Request-Method: a real OPTIONS request, which needs a token like any other.
    r = site.gw.request("OPTIONS", "/api/x", headers={"Origin": ALLOWED})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == ALLOWED


def test_a_preflight_on_a_route_without_cors_is_not_answered_by_the_gateway(site: Site) -> None:
    r = preflight(site, "/plain/x")
    assert r.status_code == 401  # the route's auth, as before: no policy says what to allow
    assert cors_headers(r) == {} and "vary" not in r.headers


# --------------------------------------------------------------------------------------------
# actual requests: the origin's responses and the gateway's own answers
# --------------------------------------------------------------------------------------------


def test_an_allowed_origin_gets_cors_headers_on_the_origins_response(site: Site) -> None:
    mark = site.web.mark()
    r = site.gw.get("/api/data", headers={"Origin": "http://localhost:3000", **bearer()})
    assert r.status_code == 200 and r.json()["origin"] == "web"
    assert cors_headers(r) == {
        "access-control-allow-origin": ["http://localhost:3000"],
        "access-control-allow-credentials": ["true"],
        "access-control-expose-headers": ["x-request-id"],
    }
    assert r.headers.get_list("vary") == ["Origin"]
    seen, _ = site.web.since(mark)
    assert len(seen) == 1 and seen[0].header("origin") == ["http://localhost:3000"]  # forwarded as sent


def test_the_origins_own_cors_headers_are_replaced_and_its_vary_merged(site: Site) -> None:
    r = site.gw.get("/own/x", headers={"Origin": ALLOWED})
    assert r.status_code == 200
    assert r.headers.get_list("access-control-allow-origin") == [ALLOWED]  # not also the origin's "*"
    assert r.headers.get_list("access-control-allow-credentials") == ["true"]
    assert r.headers.get_list("vary") == ["Accept-Encoding, Accept-Language, Origin"]
    # A disallowed origin: the origin's "*" does not leak through a route the gateway guards.
    r = site.gw.get("/own/x", headers={"Origin": "https://evil.com"})
    assert cors_headers(r) == {}
    assert r.headers.get_list("vary") == ["Accept-Encoding, Accept-Language, Origin"]


def _assert_allowed(r: httpx.Response, origin: str = ALLOWED) -> None:
    assert r.headers.get_list("access-control-allow-origin") == [origin], r.headers
    assert r.headers.get_list("access-control-allow-credentials") == ["true"]
    # The policy's expose list, plus the gateway's own non-safelisted headers this answer carries
    # (WWW-Authenticate on a 401/403, Retry-After and RateLimit on a 429/503) for the page to read.
    own = [n for n in ("retry-after", "ratelimit-policy", "ratelimit", "www-authenticate") if n in r.headers]
    assert r.headers.get_list("access-control-expose-headers") == [", ".join(["x-request-id", *own])]
    assert r.headers.get_list("vary") == ["Origin"]


def test_the_gateways_own_answers_carry_the_allowed_origins_cors_headers(site: Site) -> None:
    o = {"Origin": ALLOWED}
    r = site.gw.get("/api/x", headers=o)  # no token
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    _assert_allowed(r)
    r = site.gw.get("/api/x", headers={**o, "Authorization": "Bearer not.a.token"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    _assert_allowed(r)
    r = site.gw.get("/admin/x", headers={**o, **bearer(roles=["user"])})  # claim rules
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    _assert_allowed(r)
    r = site.gw.get("/session/x", headers={**o, "Accept": "text/html"})  # redirect policy, a browser
    assert r.status_code == 302
    _assert_allowed(r)
    r = site.gw.get("/down/x", headers=o)  # nobody listens: the gateway's 502
    assert r.status_code == 502 and r.json()["error"] == "bad_gateway"
    _assert_allowed(r)
    r = site.gw.get("/slow/x", headers=o)  # over the route's 300 ms: the gateway's 504
    assert r.status_code == 504 and r.json()["error"] == "gateway_timeout"
    _assert_allowed(r)
    r = site.gw.request("POST", "/small/x", headers=o, content=b"x" * 100)  # over max_body: 413
    assert r.status_code == 413
    _assert_allowed(r)


def test_a_404_has_no_cors_headers(site: Site) -> None:
    # No route, so no policy: nothing is allowed.
    r = site.gw.get("/nowhere", headers={"Origin": ALLOWED})
    assert r.status_code == 404 and cors_headers(r) == {}


HOSTILE = [
    "https://evil-example.com",
    "https://example.com",  # the bare domain of a *.example.com entry
    "https://example.com.evil.com",
    "https://app.example.com.evil.com",
    "https://app.example.com.",  # a trailing dot is another origin to a browser
    "https://APP.EXAMPLE.COM",  # no browser serializes an origin in upper case
    "HTTPS://app.example.com",
    "http://app.example.com",  # another scheme
    "https://app.example.com:8443",  # another port
    "https://app.example.com:443",  # the default port written out: not a serialization
    "https://app.example.com/",
    "https://app.example.com/path",
    "https://user@app.example.com",
    "https://app.example.com@evil.com",
    "https://evil.com#.example.com",
    "https://evil.com?.example.com",
    "https://evil.com\\.example.com",
    "https://.example.com",
    "https://a..example.com",
    "https://*.example.com",
    "null",
    "*",
    "",
    "https://app.example.com, https://evil.com",
    "http://localhost:3001",
    "http://localhost",
    "https://" + "a." * 300 + "example.com",
]


@pytest.mark.parametrize("origin", HOSTILE)
def test_hostile_origins_get_no_cors_headers(site: Site, origin: str) -> None:
    for r in (
        site.gw.get("/api/x", headers={"Origin": origin}),  # the gateway's 401
        site.gw.get("/api/x", headers={"Origin": origin, **bearer()}),  # the origin's 200
        preflight(site, "/api/x", origin=origin, headers=None),
    ):
        assert r.status_code in (200, 401, 403)
        assert cors_headers(r) == {}, (origin, r.status_code, r.headers)
        assert "Origin" in r.headers["vary"]


def test_origin_bytes_outside_ascii_get_no_cors_headers(site: Site) -> None:
    r = site.gw.raw(b"GET /api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://\xc3\xa4pp.example.com\r\nConnection: close\r\n\r\n")
    assert r.status == 401
    assert not any(k.lower().startswith("access-control-") for k, _ in r.headers)


def test_two_origin_headers_get_no_cors_headers(site: Site) -> None:
    r = site.gw.raw(b"GET /api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://app.example.com\r\nOrigin: https://app.example.com\r\nConnection: close\r\n\r\n")
    assert r.status == 401
    assert not any(k.lower().startswith("access-control-") for k, _ in r.headers)
    assert r.header("vary") == "Origin"


def test_without_an_origin_a_cors_route_still_varies_on_it(site: Site) -> None:
    # A shared cache must not hand a response made without CORS headers to a cross-origin page.
    r = site.gw.get("/api/x", headers=bearer())
    assert r.status_code == 200
    assert cors_headers(r) == {} and r.headers.get_list("vary") == ["Origin"]
    r = site.gw.get("/plain/x", headers=bearer())  # a route without cors: untouched
    assert r.status_code == 200 and "vary" not in r.headers


def test_a_star_policy_answers_star_without_credentials(site: Site) -> None:
    r = site.gw.get("/public/x", headers={"Origin": "https://anyone.test"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    assert r.headers["access-control-expose-headers"] == "*"
    r = preflight(site, "/public/x", origin="null", method="POST", headers=None)
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == "GET, HEAD, POST"  # the default methods


def test_explain_shows_the_cors_decision(site: Site) -> None:
    def explain(*args: str) -> dict[str, Any]:
        out = subprocess.run([GATEWAY_BIN, "explain", "--config", str(site.gw.config), "--json", *args], capture_output=True, text=True, env=gateway_env(), check=True)
        return json.loads(out.stdout)

    e = explain("-X", "OPTIONS", "-H", "Origin: https://x.example.com", "-H", "Access-Control-Request-Method: POST", "http://h/api/x")
    assert e["status"] == 204 and e["cors"]["policy"] == "app" and "preflight allowed" in e["cors"]["decision"]
    assert e["response_headers"]["Access-Control-Allow-Origin"] == "https://x.example.com"
    assert [s["stage"] for s in e["stages"]][-1] == "cors"  # auth never ran
    e = explain("-H", "Origin: https://evil.com", "http://h/api/x")
    assert "not allowed" in e["cors"]["decision"] and e["status"] == 401
    assert "Access-Control-Allow-Origin" not in e["response_headers"] and e["response_headers"]["Vary"] == "Origin"
    text = subprocess.run([GATEWAY_BIN, "explain", "--config", str(site.gw.config), "-H", f"Origin: {ALLOWED}", "http://h/api/x"], capture_output=True, text=True, env=gateway_env(), check=True).stdout
    assert "cors" in text and "origin allowed by app" in text and f"Access-Control-Allow-Origin: {ALLOWED}" in text


# --------------------------------------------------------------------------------------------
# the config: refused with file, key and expected form
# --------------------------------------------------------------------------------------------

BASE = '[origins.web]\nurl = "http://127.0.0.1:9"\n[[routes]]\nmatch = "/:p*"\norigin = "web"\ncors = "app"\n'


def problems(text: str, tmp_path: Path) -> list[str]:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load(path)
    return e.value.problems


@pytest.mark.parametrize(
    ("table", "key", "expected"),
    [
        ('origins = ["*"]\ncredentials = true', "cors.app.origins[0]", "one by one"),
        ('origins = ["null"]', "cors.app.origins[0]", "Origin: null"),
        ('origins = ["https://app.example.com/"]', "cors.app.origins[0]", "has a path"),
        ('origins = ["https://app.example.com/x"]', "cors.app.origins[0]", "has a path"),
        ('origins = ["app.example.com"]', "cors.app.origins[0]", "expected an origin"),
        ('origins = ["https://app.example.com."]', "cors.app.origins[0]", "trailing dot"),
        ('origins = ["https://*.com"]', "cors.app.origins[0]", "at least two labels"),
        ('origins = ["https://app.*.com"]', "cors.app.origins[0]", "whole leading label"),
        ('origins = ["https://*example.com"]', "cors.app.origins[0]", "whole leading label"),
        ('origins = ["https://a.com:99999"]', "cors.app.origins[0]", "1 to 65535"),
        ("origins = []", "cors.app.origins", "non-empty list"),
        ("origins = 5", "cors.app.origins", "non-empty list"),
        ('methods = ["GET"]', "cors.app.origins", "is missing"),
        ('origins = ["*"]\nmethods = ["FETCH"]', "cors.app.methods", "expected methods"),
        ('origins = ["*"]\nheaders = ["bad header"]', "cors.app.headers", "request header names"),
        ('origins = ["https://a.com"]\ncredentials = true\nexpose = ["*"]', "cors.app.expose", "response header names"),
        ('origins = ["*"]\nmax_age = 600', "cors.app.max_age", "bare number"),
        ('origins = ["*"]\ncredentials = "yes"', "cors.app.credentials", "true or false"),
        ('origins = ["*"]\nallow = ["x"]', "cors.app.allow", "expected one of"),
    ],
)
def test_a_bad_cors_table_is_refused_with_file_key_and_expected(tmp_path: Path, table: str, key: str, expected: str) -> None:
    lines = problems(BASE + "[cors.app]\n" + table + "\n", tmp_path)
    assert any(line.startswith(f"{tmp_path / 'gateway.toml'}: {key}:") and expected in line for line in lines), lines


def test_an_unknown_cors_name_on_a_route_is_refused(tmp_path: Path) -> None:
    lines = problems(BASE + '[cors.other]\norigins = ["*"]\n', tmp_path)
    assert lines == [f"{tmp_path / 'gateway.toml'}: routes[0].cors: names unknown CORS policy 'app' (expected one of: other)"]


def test_gateway_check_refuses_credentials_with_a_star_origin(tmp_path: Path) -> None:
    path = write_config(tmp_path, BASE + '[cors.app]\norigins = ["https://a.example.com", "*"]\ncredentials = true\n')
    r = subprocess.run([GATEWAY_BIN, "check", "--config", str(path)], capture_output=True, text=True, env=gateway_env(), check=False)
    assert r.returncode == 1
    assert f"{path}: cors.app.origins[1]: is \"*\" with credentials = true" in r.stdout + r.stderr


def test_configured_origins_are_normalized_as_browsers_serialize_them(tmp_path: Path) -> None:
    path = write_config(tmp_path, BASE + '[cors.app]\norigins = ["HTTPS://App.Example.COM:443", "http://LOCALHOST:3000", "https://*.Example.org:8443", "http://[::1]:80"]\n')
    policy = load(path).cors["app"]
    assert policy.origins == frozenset({"https://app.example.com", "http://localhost:3000", "http://[::1]"})
    assert policy.wildcards == (("https", ".example.org", "8443"),)
    assert policy.allows_origin("https://app.example.com") and policy.allows_origin("https://x.example.org:8443")
    assert not policy.allows_origin("https://x.example.org")


# --------------------------------------------------------------------------------------------
# origin matching, as a property
# --------------------------------------------------------------------------------------------


def _policy(*origins: str) -> CorsPolicy:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        quoted = ", ".join(f'"{o}"' for o in origins)
        return load(write_config(Path(d), BASE + f"[cors.app]\norigins = [{quoted}]\n")).cors["app"]


WILD = _policy("https://*.example.com")
label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8).filter(lambda s: not s.startswith("-") and not s.endswith("-"))
noise = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEXYZ0123456789-_.:/@#?\\*% ", max_size=12)


@settings(max_examples=500, deadline=None)
@given(
    scheme=st.sampled_from(["https", "http", "HTTPS", "wss", "https:"]),
    before=st.lists(st.one_of(label, noise), max_size=3),
    core=st.sampled_from(["example.com", "examplecom", "example.co", "exampl.com", "xample.com", "EXAMPLE.com", "example.com.", "example.comx"]),
    after=st.one_of(st.just(""), noise, st.sampled_from([".evil.com", ":443", ":8443", "/", "/x", "."])),
    sep=st.sampled_from([".", "", "-", "_", "@"]),
)
def test_a_wildcard_matches_only_subdomains_with_its_scheme_and_port(scheme: str, before: list[str], core: str, after: str, sep: str) -> None:
    host = ".".join(before) + (sep if before else "") + core + after
    origin = f"{scheme}://{host}"
    allowed = WILD.allows_origin(origin)
    # What may match, written independently of the implementation: https, then one or more
    # lower-case DNS labels, then exactly ".example.com", then nothing at all.
    labels = host[: -len(".example.com")].split(".") if host.endswith(".example.com") else []
    expected = (
        scheme == "https"
        and host.endswith(".example.com")
        and bool(labels)
        and all(lbl and all(ch in "abcdefghijklmnopqrstuvwxyz0123456789-_" for ch in lbl) and lbl[0] != "-" and lbl[-1] != "-" for lbl in labels)
    )
    assert allowed == expected, origin


EXACT = "https://app.example.com"


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """The exact origin with one character changed, inserted, deleted or case-flipped, or anything."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=40))
    i = draw(st.integers(0, len(EXACT)))
    ch = draw(st.sampled_from(list("aAeE.:/-_ \t@#?%*0") + [chr(0x430), "\x00"]))
    mode = draw(st.sampled_from(["change", "insert", "delete", "case"]))
    if mode == "insert":
        return EXACT[:i] + ch + EXACT[i:]
    if i == len(EXACT):
        i -= 1
    if mode == "delete":
        return EXACT[:i] + EXACT[i + 1 :]
    if mode == "case":
        return EXACT[:i] + EXACT[i].swapcase() + EXACT[i + 1 :]
    return EXACT[:i] + ch + EXACT[i + 1 :]


@settings(max_examples=500, deadline=None)
@given(near_misses())
def test_an_exact_entry_matches_only_itself(origin: str) -> None:
    # Alone, and beside a wildcard for another domain (which makes the matcher parse the origin).
    assert _EXACT.allows_origin(origin) == (origin == EXACT), origin
    assert _EXACT_AND_WILD.allows_origin(origin) == (origin == EXACT), origin


_EXACT = _policy(EXACT)
_EXACT_AND_WILD = _policy(EXACT, "https://*.example.org")


def test_a_route_header_that_cors_would_drop_is_warned_about(tmp_path: Path) -> None:
    path = write_config(tmp_path, BASE + 'response_headers = { "Access-Control-Allow-Origin" = "*" }\n[cors.app]\norigins = ["https://a.example.com"]\n')
    warnings = load(path).warnings
    assert warnings == (
        f"{path}: routes[0].response_headers.Access-Control-Allow-Origin: is dropped: the route's cors policy 'app' is the only source of CORS headers (expected it in [cors.NAME] instead)",
    )


def test_a_route_method_the_policy_does_not_allow_is_warned_about(tmp_path: Path) -> None:
    path = write_config(tmp_path, BASE + 'methods = ["GET", "PUT", "PATCH", "OPTIONS"]\n[cors.app]\norigins = ["https://a.example.com"]\nmethods = ["GET"]\n')
    assert load(path).warnings == (
        f"{path}: routes[0].methods: lists PATCH, PUT, not in cors.app.methods: browsers' preflights for them are refused (expected them in cors.app.methods too)",
    )
