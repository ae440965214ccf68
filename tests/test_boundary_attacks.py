"""Attacks at the gateway's boundaries, each over real sockets against a real `gateway serve`: header
aliases (`X_User_Id`), spoofed condition headers, bad Host values, hostile claims, planted cookies,
`%3B`, `Connection: host`, dual-stack trusted proxies, broken origins, parser-refused smuggling and
managed header names in the config. (Found by the issue-9 review: a newcomer's and an attacker's pass
over the rebuilt request path.)

Setup: the README example config (tests/harness.py) with a RecordingOrigin as "web" and an echo
origin as "regional", plus, before the catch-all (`/:path*`, no auth):
- `/admin/:path*` scoped to `host = "admin.example.com"` with `auth = "session"`;
- `/rich/:path*` with an `[auth.rich]` policy forwarding a structured claim (`groups` -> X-Groups);
- `/regional/:path*` to the echo origin (which can misbehave on request, see gateway/echo.py).

Each test says what is promised (README / SECURITY.md / RFC).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.harness import SECRET, Gateway, wait_for, write_config
from tests.recording_origin import RecordingOrigin, site

TABLES = """
[auth.rich]
algorithms = ["HS256"]
secret = "env:JWT_SECRET"
token_from = ["bearer"]
on_missing = { status = 401 }
on_invalid = { status = 401 }
forward_claims = { sub = "X-User-Id", groups = "X-Groups" }
"""

ROUTES = """
[[routes]]
match = "/admin/:path*"
host = "admin.example.com"
auth = "session"
origin = "web"

[[routes]]
match = "/rich/:path*"
auth = "rich"
origin = "web"

[[routes]]
match = "/regional/:path*"
origin = "regional"
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, RecordingOrigin]]:
    with ExitStack() as stack:
        yield site(tmp_path_factory.mktemp("review-i9"), stack, tables=TABLES, before_catch_all=ROUTES)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(payload_json: str) -> str:
    """An HS256 token over exactly this payload text (so it can hold JSON no Python encoder emits)."""
    head = _b64(b'{"alg":"HS256","typ":"JWT"}')
    body = _b64(payload_json.encode())
    sig = _b64(hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def _get(g: Gateway, target: str, headers: list[str], host: str | None = "gw.test") -> tuple[int, dict[str, str | None]]:
    lines = [f"GET {target} HTTP/1.1"] + ([f"Host: {host}"] if host is not None else []) + headers + ["Connection: close"]
    r = g.raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return r.status, {"location": r.header("location")}


def _reached(origin: RecordingOrigin, mark: tuple[int, int]) -> list:
    complete, aborted = origin.since(mark)
    return complete + aborted


# ----------------------------------------------------------------------------------------------
# 1. Forwarded-claim headers spoofed with '_' instead of '-'
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spoof", ["X_User_Id", "x_user_id", "X-User_Id"])
def test_underscore_spelling_of_a_claim_header_never_reaches_the_origin(gw: tuple[Gateway, RecordingOrigin], spoof: str) -> None:
    """SECURITY.md: "Forwarded-claim headers (e.g. X-User-Id) are removed from every request on every
    route"; an origin "believes X-User-Id because only the gateway can set it". CGI/WSGI/PHP/Rack
    origins read headers as HTTP_X_USER_ID, where `X_User_Id` and `X-User-Id` are the same name
    (nginx drops underscore names by default for this reason). Today the `_` spelling is forwarded
    byte for byte, on public routes and next to the real one on protected routes."""
    g, origin = gw
    mark = origin.mark()
    status, _ = _get(g, "/products", [f"{spoof}: admin"])
    assert status == 200
    seen = _reached(origin, mark)
    assert len(seen) == 1
    names = [k.lower().replace("_", "-") for k, _ in seen[0].headers]
    assert "x-user-id" not in names, f"the origin received a client-sent {spoof}: admin (reads as HTTP_X_USER_ID)"


# ----------------------------------------------------------------------------------------------
# 2. A validly signed token with a big integer in a forwarded claim: 500
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("groups", ["[18446744073709551616]", '{"n": 18446744073709551616}'])
def test_big_integer_inside_a_forwarded_claim_is_not_a_500(gw: tuple[Gateway, RecordingOrigin], groups: str) -> None:
    """README: a claim becomes header text "arrays and objects as compact JSON"; SECURITY.md: "a bad
    token -> the policy's 302 or 401, never a 500". An array/object claim holding an integer over
    64 bits makes orjson.dumps raise TypeError in gateway/text.py header_text: Granian answers 500
    "Internal server error", a traceback is printed, and the access-log line says status 0.
    (`gateway explain` crashes with the same traceback.)"""
    g, _ = gw
    token = _token(f'{{"sub":"alice","exp":{int(time.time()) + 600},"groups":{groups}}}')
    before = len(g.log_entries())
    status, _ = _get(g, "/rich/x", [f"Authorization: Bearer {token}"])
    assert status != 500, "a validly signed token with a >64-bit integer in a forwarded claim gets a 500"
    assert status in (200, 401)
    assert wait_for(lambda: len(g.log_entries()) > before, 3)
    assert g.log_entries()[-1]["status"] == status, "the access log must record the status the client got"


# ----------------------------------------------------------------------------------------------
# 3. Planted same-name cookies beyond the candidate cap lock the user out
# ----------------------------------------------------------------------------------------------


def test_eight_planted_cookies_do_not_lock_out_a_valid_session(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """SECURITY.md: "A planted cookie cannot lock a user out": anyone who can set a cookie for the
    domain can plant same-name `auth-token` cookies at longer paths, which browsers send first. Only
    the first 8 are tried, so planting 8 (browsers keep ~50-180 per domain) pushes the real session
    out of reach: 302 to /login for a user holding a valid token. (clear_cookie is rightly withheld.)"""
    g, origin = gw
    valid = _token(f'{{"sub":"alice","exp":{int(time.time()) + 600}}}')
    cookie = "; ".join([f"auth-token=planted{i}" for i in range(8)] + [f"auth-token={valid}"])
    mark = origin.mark()
    status, headers = _get(g, "/dashboard/x", [f"Cookie: {cookie}"])
    assert status == 200, f"8 planted auth-token cookies lock out a valid session: {status} -> {headers['location']}"
    assert len(_reached(origin, mark)) == 1


# ----------------------------------------------------------------------------------------------
# 4. Host values that are not a host are routed (and forwarded) instead of refused
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "x@admin.example.com",  # new URL("http://" + host).hostname == "admin.example.com"
        "admin.example.com..",
        "admin.example.com,other.test",
        "admin.example.com/",
        "admin.example.com:80:80",
        None,  # no Host at all on HTTP/1.1
    ],
)
def test_invalid_or_missing_host_is_refused_not_routed_past_a_host_scoped_route(gw: tuple[Gateway, RecordingOrigin], host: str | None) -> None:
    """RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host or with an invalid
    Host value. Today these skip the `host = "admin.example.com"` auth route, fall through to the
    catch-all and reach the origin with the bad Host, where code that builds a URL from Host (e.g.
    `new URL(req.url, "http://" + host)`, urllib's urlsplit) reads `admin.example.com`."""
    g, origin = gw
    mark = origin.mark()
    status, _ = _get(g, "/admin/settings", [], host=host)
    reached = _reached(origin, mark)
    assert reached == [], f"Host: {host!r} reached the origin without a token on /admin/settings (answered {status})"
    assert status in (302, 400)


# ----------------------------------------------------------------------------------------------
# 5. A Connection header can remove the Host the request was routed by
# ----------------------------------------------------------------------------------------------


def test_connection_header_cannot_change_the_host_the_origin_sees(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """README: the origin receives the request that was routed. `Connection: host` makes the gateway
    drop the client's Host as hop-by-hop, so the origin gets the origin URL's authority
    (127.0.0.1:PORT) instead of the Host the gateway routed on; `gateway explain` shows no Host at all.
    Host is not a hop-by-hop header; naming it in Connection must not remove it."""
    g, origin = gw
    mark = origin.mark()
    status, _ = _get(g, "/products", ["Connection: host"], host="shop.example.com")
    assert status == 200
    seen = _reached(origin, mark)
    assert len(seen) == 1
    assert seen[0].header("host") == ["shop.example.com"], f"origin saw Host {seen[0].header('host')}"


# ----------------------------------------------------------------------------------------------
# 6. An encoded ';' passes where a raw ';' is refused
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/dashboard%3bjsessionid=x", "/dashboard%3B/settings"])
def test_encoded_semicolon_is_refused_like_a_raw_one(gw: tuple[Gateway, RecordingOrigin], target: str) -> None:
    """SECURITY.md refuses `;` path parameters because "origins disagree about them"; `%3B` is the same
    ambiguity one decode later (Spring's StrictHttpFirewall and Jetty 10+ reject it for that
    reason: a decode-then-strip origin reads /dashboard%3bx as /dashboard). Today it is not
    refused: it misses the /dashboard/:path* auth route and reaches the origin via the catch-all."""
    g, origin = gw
    mark = origin.mark()
    status, _ = _get(g, target, [])
    assert _reached(origin, mark) == [], f"{target} reached the origin without a token ({status})"
    assert status in (302, 400)


# ----------------------------------------------------------------------------------------------
# 7. An origin that resets mid-body: a traceback per request on stdout
# ----------------------------------------------------------------------------------------------


def test_origin_reset_mid_body_prints_no_traceback(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """README: access log lines are JSON on stdout; origin failures are logged as one rate-limited
    warning. An origin that resets mid-body makes `_send_response` re-raise, and Granian prints
    "[ERROR] Application callable raised an exception" and a ~20-line traceback on stdout, in the
    access-log stream, for every such request (no rate limit): a broken origin floods the logs."""
    g, _ = gw
    start_out, start_err = len(g.proc.stdout_text()), len(g.proc.stderr_text())
    for _ in range(3):
        try:
            _get(g, "/regional/x", ["X-Echo-Mode: reset", "X-Echo-Bytes: 300000"])
        except (ConnectionError, OSError, ValueError):
            pass
    time.sleep(0.5)
    out = g.proc.stdout_text()[start_out:] + g.proc.stderr_text()[start_err:]
    assert "Traceback" not in out, "an origin reset mid-body printed a Python traceback:\n" + out[out.find("Traceback") - 200 :][:1500]


# ----------------------------------------------------------------------------------------------
# 8. Requests refused by the HTTP server itself: 400, never forwarded (and, as the README says,
#    answered by Granian before the gateway sees them, so not in the gateway's access log)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /products HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: xchunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        b"GET /products HTTP/1.1\r\nHost: gw.test\r\nX-A: 1\r\n X-B: folded\r\nConnection: close\r\n\r\n",
        b"POST /products HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab",
    ],
    ids=["unknown-transfer-coding", "obs-fold", "conflicting-content-length"],
)
def test_a_request_the_http_server_refuses_never_reaches_the_origin(gw: tuple[Gateway, RecordingOrigin], request_bytes: bytes) -> None:
    """Smuggling attempts Granian's parser refuses (an unknown transfer coding, obs-fold, conflicting
    Content-Length) get its bare 400 and never reach an origin. They never reach the gateway's code
    either, so they leave no access-log line: the README says so (Limits)."""
    g, origin = gw
    before = len(g.log_entries())
    mark = origin.mark()
    r = g.raw(request_bytes)
    assert r.status == 400
    assert _reached(origin, mark) == []
    assert len(g.log_entries()) == before


# ----------------------------------------------------------------------------------------------
# 9. forward_claims may name headers the gateway manages (request_headers may not)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Host", "Transfer-Encoding", "Content-Length", "Connection"])
def test_check_refuses_a_forwarded_claim_in_a_managed_header(tmp_path, header: str) -> None:  # type: ignore[no-untyped-def]
    """`request_headers` refuses Host, Content-Length and hop-by-hop names ("is a header the gateway
    manages"); `forward_claims` accepts them. Since every forwarded-claim header is also removed from
    every request on every route, `forward_claims = { sub = "Cookie" }` silently strips every
    visitor's cookies everywhere, `"Host"` strips Host everywhere and replaces it with the subject on
    protected routes, and `"Transfer-Encoding"` lets a claim write the framing header. `gateway check`
    says ok to all of them."""
    cfg = write_config(
        tmp_path,
        f"""
[origins.web]
url = "http://127.0.0.1:9"

[auth.s]
algorithms = ["HS256"]
secret = "env:JWT_SECRET"
token_from = ["bearer"]
on_missing = {{ status = 401 }}
on_invalid = {{ status = 401 }}
forward_claims = {{ sub = "{header}" }}

[[routes]]
match = "/:path*"
auth = "s"
origin = "web"
""",
    )
    r = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(cfg)], capture_output=True, text=True, env={**os.environ, "JWT_SECRET": SECRET}, timeout=60)
    assert r.returncode == 1, f"gateway check accepted forward_claims into {header}:\n{r.stdout}{r.stderr}"
    assert "forward_claims" in r.stdout + r.stderr


# ----------------------------------------------------------------------------------------------
# 10. Listening on [::], an IPv4 trusted proxy is never trusted (it arrives as ::ffff:a.b.c.d)
# ----------------------------------------------------------------------------------------------


def test_ipv4_trusted_proxy_is_trusted_on_a_dual_stack_listener(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`trusted_proxies = ["127.0.0.1/32"]` and `gateway serve --listen [::]:PORT` (the usual way to
    listen on every address): a connection from 127.0.0.1 reaches the app as `::ffff:127.0.0.1`, which
    `Server.is_trusted` compares as an IPv6 address, so the proxy is not trusted: its cf-ipcountry is
    ignored (everyone gets default_country) and X-Forwarded-For is replaced by `::ffff:127.0.0.1`."""
    from tests.harness import GATEWAY_BIN, echo_origin, free_port, gateway_env, spawn, wait_http

    with echo_origin(tmp_path, "web") as web:
        cfg = write_config(
            tmp_path,
            f"""
[server]
trusted_proxies = ["127.0.0.1/32"]

[origins.web]
url = "http://127.0.0.1:{web}"

[locale]
country_from = "header:cf-ipcountry"
default_country = "US"
countries = {{ KR = "/ko" }}

[[routes]]
match = "/:path*"
locale = true
origin = "web"
""",
        )
        port = free_port()
        proc = spawn("gateway-v6", [GATEWAY_BIN, "serve", "--config", str(cfg), "--listen", f"[::]:{port}"], tmp_path / "logs", env=gateway_env())
        try:
            wait_http(f"http://127.0.0.1:{port}/__gateway/health", proc)
            import httpx

            r = httpx.get(f"http://127.0.0.1:{port}/products", headers={"cf-ipcountry": "KR", "X-Forwarded-For": "203.0.113.7"}, timeout=10)
            seen = r.json()
            xff = [v for k, v in seen["headers"] if k == "x-forwarded-for"]
            assert seen["path"] == "/ko/products", f"the trusted proxy's cf-ipcountry was ignored: origin got {seen['path']}"
            assert len(xff) == 1 and xff[0].startswith("203.0.113.7, "), f"X-Forwarded-For from the trusted proxy was replaced: {xff}"
        finally:
            proc.stop()


# ----------------------------------------------------------------------------------------------
# 11. Route conditions believe the headers the gateway says it does not believe
# ----------------------------------------------------------------------------------------------

UNTRUSTED_ROUTES = """
[[routes]]
match = "/kr-only/:path*"
has = [{ type = "header", key = "cf-ipcountry", value = "KR" }]
origin = "regional"

[[routes]]
match = "/intranet/:path*"
has = [{ type = "header", key = "x-forwarded-for", value = "10\\\\..*" }]
origin = "regional"
"""


@pytest.fixture(scope="module")
def untrusted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, RecordingOrigin]]:
    """The example config with trusted_proxies = [] (the test client is not a trusted proxy)."""
    with ExitStack() as stack:
        yield site(tmp_path_factory.mktemp("review-i9-untrusted"), stack, trusted="[]", before_catch_all=UNTRUSTED_ROUTES)


@pytest.mark.parametrize(
    ("target", "spoof"),
    [("/kr-only/x", "cf-ipcountry: KR"), ("/intranet/x", "X-Forwarded-For: 10.0.0.1")],
)
def test_route_conditions_do_not_believe_spoofed_geo_or_forwarded_headers(untrusted: tuple[Gateway, RecordingOrigin], target: str, spoof: str) -> None:
    """SECURITY.md: "The geo header (cf-ipcountry) and X-Forwarded-*/Forwarded are only believed from
    trusted_proxies; from anyone else they are dropped and replaced." The locale stage and the
    forwarded headers keep that promise, but `has`/`missing` conditions read the client's raw header:
    from an untrusted peer, `cf-ipcountry: KR` selects a KR-only route and `X-Forwarded-For: 10.0.0.1`
    selects an "intranet" route. The condition should see what the gateway believes (the header as
    absent / the peer's own address), so the request falls through to the catch-all ("web")."""
    g, origin = untrusted
    mark = origin.mark()
    status, _ = _get(g, target, [spoof])
    assert status == 200
    assert len(_reached(origin, mark)) == 1, f"an untrusted client's {spoof!r} selected the route behind it (the request went to 'regional')"


def test_guard_without_the_spoofed_header_the_catch_all_answers(untrusted: tuple[Gateway, RecordingOrigin]) -> None:
    """Guard (passes today): without the header the condition fails and "web" answers."""
    g, origin = untrusted
    for target in ("/kr-only/x", "/intranet/x"):
        mark = origin.mark()
        assert _get(g, target, [])[0] == 200
        assert len(_reached(origin, mark)) == 1, target
