"""Property (issue 5): `gateway explain` and `gateway serve` agree on every generated request.

One real `gateway serve` (the README's example config plus routes with conditions and templates) in
front of two real echo origins; Hypothesis generates hostile and ordinary requests — path tricks,
encodings, tokens good and bad in cookie or Authorization, geo and language headers, experiment
cookies — and sends each as exact bytes. For each, `gateway.cli.explain()` (the function behind the
`gateway explain` command, called in-process with the same config file and peer) must predict what
the client got: the status, the Location, the Set-Cookie names, the response headers, and for proxied
requests the origin chosen, the exact path and query it received, and the headers the gateway set.
The only thing allowed to differ is a newly drawn A/B variant, which is random per request.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gateway
from gateway.cli import explain
from gateway.config import Config, load
from tests.harness import SECRET, example_site, raw_request

# Routes with what the example config lacks: has/missing conditions, path parameters and templates.
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
origin = "regional"

"""


class Site:
    def __init__(self, base: str, config: Config, env_secret: str):
        self.base = base
        self.config = config
        self.port = int(base.rsplit(":", 1)[1])
        self.env_secret = env_secret


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("agree")
    with ExitStack() as stack:
        served = example_site(tmp, stack, before_catch_all=EXTRA_ROUTES)
        old = os.environ.get("JWT_SECRET")
        os.environ["JWT_SECRET"] = SECRET  # explain() loads the same file in this process
        try:
            yield Site(served.base, load(str(tmp / "gateway.toml")), SECRET)
        finally:
            if old is None:
                os.environ.pop("JWT_SECRET", None)
            else:
                os.environ["JWT_SECRET"] = old


def _token(kind: str, sub: str) -> str:
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "exp": now + 600}
    if kind == "valid":
        return gateway.encode(claims, SECRET)
    if kind == "expired":
        return gateway.encode({**claims, "exp": now - 3600}, SECRET)
    if kind == "forged":
        return gateway.encode(claims, SECRET + "x")
    if kind == "hs512":
        return gateway.encode(claims, SECRET, algorithm="HS512", allow_weak_key=True)
    if kind == "alg-none":
        return gateway.b64url_encode(b'{"alg":"none"}') + "." + gateway.b64url_encode(json.dumps(claims).encode()) + "."
    return "not.a.token"


SEGMENTS = st.sampled_from(
    ["dashboard", "DashBoard", "api", "protected", "resize", "beta", "q", "login", "products", "ko", "ja", "x",
     "%64ashboard", "dash%62oard", ".", "..", "", "%2e", "%2E%2E", "a%20b", "%7E", "%41", "%2F", "%2f", "%5C",
     ";x=1", "x;y", "%00", "%zz", "%c0%ae", "%25", "%2564ashboard", "~user"]
)  # fmt: skip


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    segs = draw(st.lists(SEGMENTS, min_size=0, max_size=5))
    path = draw(st.sampled_from(["/", "//", "/./"])) + "/".join(segs)
    if draw(st.booleans()):
        path += "/"
    query = draw(st.sampled_from(["", "a=1", "v=42", "v=x", "next=//evil.example", "x=%2F&y=%00", "q=%E2%82%AC"]))
    headers: list[tuple[str, str]] = []
    kind = draw(st.sampled_from(["none", "valid", "expired", "forged", "hs512", "alg-none", "garbage"]))
    sub = draw(st.sampled_from(["alice", "a b", "x\u0007y", "émile"]))
    where = draw(st.sampled_from(["cookie", "bearer", "both"]))
    cookies = []
    if kind != "none":
        tok = _token(kind, sub)
        if where in ("cookie", "both"):
            cookies.append(f"auth-token={tok}")
        if where in ("bearer", "both"):
            headers.append(("authorization", f"Bearer {tok}"))
    ab = draw(st.sampled_from([None, "control", "variant", "bogus"]))
    if ab:
        cookies.append(f"ab-group={ab}")
    if draw(st.booleans()):
        cookies.append("opt-out=1")
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    country = draw(st.sampled_from([None, "KR", "JP", "US", "kr", "XX1"]))
    if country:
        headers.append(("cf-ipcountry", country))
    lang = draw(st.sampled_from([None, "ko", "ja;q=0.9, en;q=0.8", "*", "fr"]))
    if lang:
        headers.append(("accept-language", lang))
    beta = draw(st.sampled_from([None, "1", "yes", "no"]))
    if beta:
        headers.append(("x-beta", beta))
    if draw(st.booleans()):
        headers.append(("x-user-id", "spoofed"))
    method = draw(st.sampled_from(["GET", "GET", "POST", "HEAD"]))
    return {"method": method, "path": path, "query": query, "headers": headers, "ab": ab}


def _send(site: Site, req: dict[str, Any]) -> tuple[int, dict[str, list[str]], bytes]:
    target = req["path"] + (f"?{req['query']}" if req["query"] else "")
    lines = [f"{req['method']} {target} HTTP/1.1", f"Host: 127.0.0.1:{site.port}"]
    lines += [f"{k}: {v}" for k, v in req["headers"]]
    if req["method"] == "POST":
        lines.append("Content-Length: 0")
    lines.append("Connection: close")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    status, _, body = raw_request(site.base, raw)
    # raw_request keeps the first of repeated headers; Set-Cookie needs all of them: ask again.
    return status, _all_headers(site, raw), body


def _all_headers(site: Site, raw: bytes) -> dict[str, list[str]]:
    import socket

    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    out: dict[str, list[str]] = {}
    for line in data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        out.setdefault(k.strip().lower(), []).append(v.strip())
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(req=requests())
def test_explain_predicts_what_serve_does(site: Site, req: dict[str, Any]) -> None:
    status, headers, body = _send(site, req)
    url = f"http://127.0.0.1:{site.port}{req['path']}" + (f"?{req['query']}" if req["query"] else "")
    host_first = [("host", f"127.0.0.1:{site.port}"), *req["headers"]]
    ex = explain(site.config, req["method"], url, host_first, "127.0.0.1")
    cookie_names = sorted(c.split("=", 1)[0] for c in headers.get("set-cookie", []))
    assert cookie_names == sorted(c.split("=", 1)[0] for c in ex["set_cookies"]), (req, ex)
    new_variant = any(c.startswith("ab-group=") for c in ex["set_cookies"])
    if not new_variant:
        assert sorted(headers.get("set-cookie", [])) == sorted(ex["set_cookies"]), (req, ex)
    if ex["action"] != "proxy":
        assert status == ex["status"], (req, ex, body[:200])
        assert headers.get("location", [None])[0] == ex["location"], (req, ex)
        return
    # Proxied: the echo origin answers 200 with what it received (HEAD: no body to read).
    assert status == 200, (req, ex, body[:300])
    for name, value in ex["response_headers"].items():
        assert headers.get(name.lower(), [None])[0] == value, (name, req, ex)
    if req["method"] == "HEAD":
        return
    seen = json.loads(body)
    upstream = urlsplit(ex["upstream_url"])
    assert seen["origin"] == ex["origin"], (req, ex)
    assert seen["path"] == upstream.path, (req, ex)
    assert (seen["query"] or "") == upstream.query, (req, ex)
    got = {k.lower(): v for k, v in seen["headers"]}
    for name, value in ex["request_headers"].items():
        if name.lower() == "x-ab-group" and new_variant:
            assert got.get("x-ab-group") in ("control", "variant")
            continue
        assert got.get(name.lower()) == value, (name, req, ex)
    if "x-user-id" not in {k.lower() for k in ex["request_headers"]}:
        assert "x-user-id" not in got, (req, ex)
