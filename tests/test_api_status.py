"""API clients on redirect policies (issue 12): ``api_status`` on a redirect action.

A real `gateway serve` whose session policy redirects to /login: requests whose ``Accept`` ranks
JSON above HTML (RFC 9110 §12.5.1, q-values; see gateway/accept.py) or that send
``X-Requested-With: XMLHttpRequest`` get the JSON error with ``WWW-Authenticate: Bearer`` (RFC 6750
§3) instead of the 302; browsers' Accept headers still get the redirect. ``api_status = 403`` and
``api_status = false`` are served too, and malformed values refused at load. The Accept ranking is
also checked against an independent reading of the RFC as a property (hypothesis).
"""

from __future__ import annotations

import subprocess
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import gateway
import pytest
from gateway._core import Request
from gateway.accept import json_preference, parse_accept
from gateway.config import ConfigError, load
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import GATEWAY_BIN, SECRET, Gateway, echo_origin, gateway_env, gateway_serve, write_config

CONFIG = """
[origins.web]
url = "http://127.0.0.1:{web}"

[auth.session]
secret = "env:JWT_SECRET"
token_from = ["cookie:auth-token", "bearer"]
on_missing = {{ redirect = "/login" }}
on_invalid = {{ redirect = "/login", clear_cookie = "auth-token" }}

[auth.strict]
secret = "env:JWT_SECRET"
on_missing = {{ redirect = "/login", api_status = 403 }}
on_invalid = {{ redirect = "/login", api_status = 403 }}

[auth.always]
secret = "env:JWT_SECRET"
on_missing = {{ redirect = "/login", api_status = false }}
on_invalid = {{ redirect = "/login", api_status = false }}

[[routes]]
match = "/app/:p*"
auth = "session"
origin = "web"

[[routes]]
match = "/strict/:p*"
auth = "strict"
origin = "web"

[[routes]]
match = "/always/:p*"
auth = "always"
origin = "web"
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("api-status")
    with ExitStack() as stack:
        web = stack.enter_context(echo_origin(tmp, "web"))
        yield stack.enter_context(gateway_serve(write_config(tmp, CONFIG.format(web=web))))


CHROME_NAV = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
FIREFOX_NAV = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

# (headers, whether the request prefers JSON)
ACCEPTS: list[tuple[dict[str, str], bool]] = [
    ({"Accept": CHROME_NAV}, False),
    ({"Accept": FIREFOX_NAV}, False),
    ({"Accept": "*/*"}, False),  # fetch()'s and curl's default: no preference
    ({}, False),
    ({"Accept": "application/json"}, True),
    ({"Accept": "application/json, text/plain, */*"}, True),  # axios: JSON named, HTML only by */*
    ({"Accept": "application/json, text/javascript, */*; q=0.01"}, True),  # jQuery dataType json
    ({"Accept": "text/html, application/json"}, False),  # equal and both named: not a preference
    ({"Accept": "application/json, text/html"}, False),  # order means nothing (RFC 9110 §12.5.1)
    ({"Accept": "text/html;q=0.9, application/json"}, True),
    ({"Accept": "text/html, application/json;q=0.9"}, False),
    ({"Accept": "application/json;q=0"}, False),  # q=0: not acceptable
    ({"Accept": "application/json;q=0, text/html;q=0"}, False),
    ({"Accept": "application/*"}, True),
    ({"Accept": "application/problem+json"}, True),  # RFC 6839 +json
    ({"Accept": "application/vnd.api+json, */*;q=0.1"}, True),
    ({"Accept": "text/*, application/json;q=0.5"}, False),
    ({"Accept": "text/plain, application/json;q=0.9"}, True),  # no range covers text/html: not acceptable
    ({"Accept": "application/json;q=2"}, False),  # an invalid weight: the range is ignored
    ({"Accept": "application/json;q=abc, text/html;q=0.5"}, False),
    ({"Accept": "application/json;q=0.5;charset=utf-8, text/html;q=0.4"}, True),
    ({"Accept": "APPLICATION/JSON"}, True),  # media types compare without case
    ({"Accept": "json"}, False),
    ({"Accept": "garbage,,;;,q=1"}, False),
    ({"X-Requested-With": "XMLHttpRequest"}, True),
    ({"X-Requested-With": "xmlhttprequest", "Accept": CHROME_NAV}, True),
    ({"X-Requested-With": "fetch"}, False),
]


@pytest.mark.parametrize(("headers", "api"), ACCEPTS, ids=[f"{i}:{h}" for i, (h, _) in enumerate(ACCEPTS)])
def test_a_missing_token_redirects_browsers_and_answers_api_clients(gw: Gateway, headers: dict[str, str], api: bool) -> None:
    with gw.client() as c:
        c.headers.pop("accept", None)  # httpx sends */* unless told otherwise: send only what the case says
        r = c.get("/app/reports?x=1", headers=headers)
    if api:
        assert r.status_code == 401, r.headers
        assert r.json() == {"error": "unauthorized", "detail": "a token is required"}
        assert r.headers["www-authenticate"] == 'Bearer realm="gateway"'  # RFC 6750 §3: no error code without a token
        assert r.headers["content-type"] == "application/json" and "location" not in r.headers
    else:
        assert r.status_code == 302
        assert r.headers["location"] == "/login?next=%2Fapp%2Freports%3Fx%3D1"


def test_an_invalid_token_says_invalid_token_and_still_clears_the_cookie(gw: Gateway) -> None:
    with gw.client() as c:
        c.cookies.set("auth-token", "not.a.token")
        r = c.get("/app/x", headers={"Accept": "application/json"})
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"
        assert r.headers["www-authenticate"] == 'Bearer realm="gateway", error="invalid_token"'
        assert r.headers["set-cookie"].startswith("auth-token=; Path=/; Max-Age=0")
        expired = gateway.encode({"sub": "a", "exp": int(time.time()) - 3600}, SECRET)
        r = c.get("/app/x", headers={"Accept": "text/html", "Authorization": f"Bearer {expired}"})
        assert r.status_code == 302  # a browser with a bad token: still the login page


def test_a_valid_token_is_unaffected(gw: Gateway) -> None:
    tok = gateway.encode({"sub": "a", "exp": int(time.time()) + 600}, SECRET)
    r = gw.get("/app/x", headers={"Accept": "application/json", "Authorization": f"Bearer {tok}"})
    assert r.status_code == 200 and r.json()["origin"] == "web"


def test_api_status_403_and_false(gw: Gateway) -> None:
    r = gw.get("/strict/x", headers={"Accept": "application/json"})
    assert r.status_code == 403 and r.json()["error"] == "unauthorized" and r.headers["www-authenticate"].startswith("Bearer")
    assert gw.get("/strict/x", headers={"Accept": "text/html"}).status_code == 302
    r = gw.get("/always/x", headers={"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"})
    assert r.status_code == 302 and r.headers["location"] == "/login?next=%2Falways%2Fx"


def test_the_access_log_says_what_was_sent(gw: Gateway) -> None:
    gw.get("/app/logged", headers={"Accept": "application/json"})
    line = gw.wait_log(lambda e: e["path"] == "/app/logged")
    assert line is not None and line["status"] == 401 and line["auth"] == "missing"


def test_explain_shows_the_choice(gw: Gateway) -> None:
    def explain(*headers: str) -> dict:
        argv = [GATEWAY_BIN, "explain", "--config", str(gw.config), "--json"]
        for h in headers:
            argv += ["-H", h]
        return json.loads(subprocess.run([*argv, "http://h/app/x"], capture_output=True, text=True, env=gateway_env(), check=True).stdout)

    e = explain("Accept: application/json, text/plain, */*")
    assert e["status"] == 401 and e["action"] == "respond"
    assert e["auth"]["api_status"].startswith("api_status 401 instead of the redirect: Accept ranks JSON (q=1) above HTML (q=1 by a wildcard)")
    assert e["response_headers"]["WWW-Authenticate"] == 'Bearer realm="gateway"'
    e = explain("Accept: " + CHROME_NAV)
    assert e["status"] == 302 and e["auth"]["api_status"] == "redirect: the request does not prefer JSON"


# --------------------------------------------------------------------------------------------
# the config
# --------------------------------------------------------------------------------------------

BASE = '[origins.web]\nurl = "http://127.0.0.1:9"\n[[routes]]\nmatch = "/:p*"\norigin = "web"\nauth = "s"\n[auth.s]\nsecret = "env:JWT_SECRET"\n'


@pytest.mark.parametrize(
    ("action", "key", "expected"),
    [
        ('{ redirect = "/login", api_status = true }', "auth.s.on_missing.api_status", "a 4xx status such as 401, or false"),
        ('{ redirect = "/login", api_status = 302 }', "auth.s.on_missing.api_status", "a 4xx status"),
        ('{ redirect = "/login", api_status = "401" }', "auth.s.on_missing.api_status", "a 4xx status"),
        ("{ status = 401, api_status = 401 }", "auth.s.on_missing.api_status", "beside redirect"),
    ],
)
def test_a_bad_api_status_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str, key: str, expected: str) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    path = write_config(tmp_path, BASE + f"on_missing = {action}\n")
    with pytest.raises(ConfigError) as e:
        load(path)
    assert any(line.startswith(f"{path}: {key}:") and expected in line for line in e.value.problems), e.value.problems


def test_api_status_defaults_to_401_on_redirect_actions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    cfg = load(write_config(tmp_path, BASE + 'on_missing = { redirect = "/login" }\non_invalid = { redirect = "/login", api_status = false }\n'))
    assert cfg.auth["s"].on_missing.api_status == 401 and cfg.auth["s"].on_invalid.api_status is None


# --------------------------------------------------------------------------------------------
# the ranking, as a property
# --------------------------------------------------------------------------------------------

TYPES = ["application/json", "text/html", "application/*", "text/*", "*/*", "text/plain", "application/xml", "application/problem+json", "image/png"]


def _independent(ranges: list[tuple[str, float]]) -> bool:
    """RFC 9110 §12.5.1 read directly: a type's weight is that of its most specific range."""

    def weight(target: str) -> tuple[float, bool]:
        t, s = target.split("/")
        for candidate, explicit in ((f"{t}/{s}", True), (f"{t}/*", False), ("*/*", False)):
            for r, q in ranges:
                if r == candidate:
                    return q, explicit
        return 0.0, False

    json = max([weight("application/json")] + [(q, True) for r, q in ranges if r.endswith("+json")])
    return json[0] > 0 and json > weight("text/html")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TYPES), st.sampled_from([1.0, 0.9, 0.5, 0.1, 0.0])), max_size=6, unique_by=lambda x: x[0]))
def test_the_ranking_follows_rfc_9110(ranges: list[tuple[str, float]]) -> None:
    accept = ", ".join(f"{r};q={q:g}" for r, q in ranges)
    req = Request("GET", b"/", b"", [(b"host", b"h"), (b"accept", accept.encode())] if ranges else [(b"host", b"h")], "127.0.0.1", "http")
    assert (json_preference(req) is not None) == _independent(ranges), accept
    assert len(parse_accept(accept)) == len(ranges)
