"""End to end: `gateway serve` with the README's example config, real echo origins, a real client.

The origin answers with what it received, so each test checks both what the client got and what
the origin saw.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

import gateway
from tests.harness import SECRET, Gateway, example_site, raw_request



def token(**claims: object) -> str:
    now = int(time.time())
    return gateway.encode({"sub": "alice", "iat": now, "exp": now + 600, **claims}, SECRET)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with ExitStack() as stack:
        yield example_site(tmp_path_factory.mktemp("site"), stack)


def seen(r: httpx.Response) -> dict:
    """What the echo origin received."""
    assert r.headers.get("content-type") == "application/json", r.text
    body = r.json()
    body["header"] = {k.lower(): v for k, v in body["headers"]}
    return body


def get(site: Gateway, path: str, **kw: object) -> httpx.Response:
    return httpx.get(site.base + path, follow_redirects=False, timeout=10, **kw)  # type: ignore[arg-type]


# --- auth -------------------------------------------------------------------------------------


def test_missing_token_redirects_with_relative_next(site: Gateway) -> None:
    r = get(site, "/dashboard/settings?tab=a&x=1")
    assert r.status_code == 302
    assert r.headers["location"] == "/login?next=%2Fdashboard%2Fsettings%3Ftab%3Da%26x%3D1"
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize(
    "bad",
    [
        token()[:-3] + "AAA",  # forged signature
        gateway.encode({"sub": "alice", "exp": int(time.time()) - 3600}, SECRET),  # expired
        gateway.b64url_encode(b'{"alg":"none"}') + "." + gateway.b64url_encode(b'{"sub":"alice"}') + ".",
        gateway.encode({"sub": "alice"}, SECRET + "x"),  # another key
        "not-a-token",
    ],
    ids=["forged", "expired", "alg-none", "wrong-key", "garbage"],
)
def test_invalid_cookie_token_redirects_and_clears_it(site: Gateway, bad: str) -> None:
    r = get(site, "/dashboard", cookies={"auth-token": bad})
    assert r.status_code == 302
    assert r.headers["location"] == "/login?next=%2Fdashboard"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("auth-token=;") and "Max-Age=0" in cookie and "1970" in cookie
    assert bad not in r.text and bad[:20] not in r.headers["location"]


def test_valid_token_forwards_claims_and_strips_spoofed_headers(site: Gateway) -> None:
    r = get(site, "/dashboard/x", cookies={"auth-token": token(sub="user-42")}, headers={"X-User-Id": "admin", "x-USER-id": "root"})
    assert r.status_code == 200
    body = seen(r)
    assert body["path"] == "/dashboard/x"
    assert [v for k, v in body["headers"] if k.lower() == "x-user-id"] == ["user-42"]
    r = get(site, "/dashboard", headers={"Authorization": f"Bearer {token(sub='bob')}"})
    assert seen(r)["header"]["x-user-id"] == "bob"


def test_forwarded_claim_headers_are_removed_on_public_routes_too(site: Gateway) -> None:
    body = seen(get(site, "/public", headers={"X-User-Id": "admin"}))
    assert "x-user-id" not in body["header"]


def test_api_policy_answers_401_json_with_rfc6750_header(site: Gateway) -> None:
    r = get(site, "/api/protected/items")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"]
    r = get(site, "/api/protected/items", headers={"Authorization": "Bearer " + token()[:-2] + "xx"})
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.json()["error"] == "invalid_token"
    r = get(site, "/api/protected/items", headers={"Authorization": "Bearer " + token()})
    assert r.status_code == 200 and seen(r)["path"] == "/api/protected/items"


def test_api_policy_ignores_the_cookie(site: Gateway) -> None:
    assert get(site, "/api/protected/items", cookies={"auth-token": token()}).status_code == 401


def test_a_valid_cookie_among_same_name_ones_gets_through_and_two_authorization_headers_are_refused(site: Gateway) -> None:
    # A cookie planted for a longer path is sent first: it must not lock the user out (issue 9, fault 4).
    good, bad = token(), "x.y.z"
    status, headers, _ = raw_request(site.base, f"GET /dashboard HTTP/1.1\r\nHost: t\r\nCookie: auth-token={bad}\r\nCookie: auth-token={good}\r\n\r\n".encode())
    assert status == 200 and "set-cookie" not in headers
    status, _, _ = raw_request(site.base, f"GET /api/protected/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {good}\r\nAuthorization: Bearer {bad}\r\n\r\n".encode())
    assert status == 401


# --- paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["//dashboard", "/./dashboard", "/x/../dashboard", "/%64ashboard", "/DASHBOARD", "/dashboard/", "/dashboard/a/%2e%2e"])
def test_every_spelling_of_a_protected_path_needs_auth(site: Gateway, path: str) -> None:
    status, headers, _ = raw_request(site.base, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    assert status == 302, path
    assert headers["location"].startswith("/login?next=%2F")


@pytest.mark.parametrize("path", ["/dashboard%2fx", "/dashboard%2Fx", "/dash%5cboard", "/dashboard%00", "/dash\\board", "/dashboard;jsessionid=1", "/a%zz"])
def test_encoded_slashes_backslashes_nul_and_semicolons_are_refused(site: Gateway, path: str) -> None:
    status, headers, body = raw_request(site.base, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    assert status == 400, path
    assert json.loads(body)["error"] == "bad_request"


def test_origin_receives_the_normalized_path(site: Gateway) -> None:
    status, _, body = raw_request(
        site.base, f"GET //dashboard//a/./b/../c%7e HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token()}\r\n\r\n".encode()
    )
    assert status == 200
    assert json.loads(body)["path"] == "/dashboard/a/c~"


@pytest.mark.parametrize(
    "target",
    ["//evil.example/../dashboard", "/dashboard?next=//evil.example", "/dashboard?x=/%5Cevil.example", "/dashboard//evil.example"],
)
def test_open_redirect_tricks_stay_encoded(site: Gateway, target: str) -> None:
    status, headers, _ = raw_request(site.base, f"GET {target} HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode())
    assert status == 302
    loc = headers["location"]
    assert loc.startswith("/login?next=%2F")
    assert "//" not in loc and "\\" not in loc and "evil.example/" not in loc


# --- routing, locale, experiments ----------------------------------------------------------------


def test_methods_condition_and_fallthrough(site: Gateway) -> None:
    r = httpx.post(site.base + "/api/resize", content=b"img" * 1000)
    assert seen(r)["origin"] == "regional" and seen(r)["body_length"] == 3000
    r = get(site, "/api/resize")
    assert seen(r)["origin"] == "web"  # GET skips the POST-only route and reaches the catch-all


def test_country_prefix_region_header_and_kv_currency(site: Gateway) -> None:
    r = get(site, "/products", headers={"cf-ipcountry": "KR"})
    assert seen(r)["path"] == "/ko/products"
    assert r.headers["x-region"] == "KR" and r.headers["x-currency"] == "KRW"
    r = get(site, "/products", headers={"cf-ipcountry": "JP"})
    assert seen(r)["path"] == "/ja/products" and r.headers["x-currency"] == "JPY"
    r = get(site, "/products")
    assert seen(r)["path"] == "/products" and r.headers["x-region"] == "US" and r.headers["x-currency"] == "USD"
    r = get(site, "/products", headers={"cf-ipcountry": "FR"})
    assert r.headers["x-currency"] == "USD"  # no KV entry: the placeholder's default


def test_accept_language_when_the_country_gives_no_prefix(site: Gateway) -> None:
    r = get(site, "/products", headers={"cf-ipcountry": "FR", "Accept-Language": "fr;q=0.9, ko-KR;q=0.8"})
    assert seen(r)["path"] == "/ko/products"
    r = get(site, "/products", headers={"Accept-Language": "ja"})
    assert seen(r)["path"] == "/ja/products"


def test_a_path_that_already_has_a_locale_prefix_is_left_alone(site: Gateway) -> None:
    assert seen(get(site, "/ko/products", headers={"cf-ipcountry": "KR"}))["path"] == "/ko/products"
    assert seen(get(site, "/ja/products", headers={"cf-ipcountry": "KR"}))["path"] == "/ja/products"


def test_new_visitor_gets_a_variant_cookie_and_the_origin_learns_it(site: Gateway) -> None:
    r = get(site, "/landing")
    cookie = r.headers["set-cookie"]
    variant = cookie.split(";")[0].split("=")[1]
    assert variant in ("control", "variant")
    assert cookie == f"ab-group={variant}; Path=/; Max-Age=86400; SameSite=Lax; Secure"
    assert seen(r)["header"]["x-ab-group"] == variant


def test_returning_visitor_keeps_the_variant_and_bad_values_are_reassigned(site: Gateway) -> None:
    r = get(site, "/landing", cookies={"ab-group": "variant"})
    assert "set-cookie" not in r.headers and seen(r)["header"]["x-ab-group"] == "variant"
    r = get(site, "/landing", cookies={"ab-group": "hacker"}, headers={"X-AB-Group": "hacker"})
    assert r.headers["set-cookie"].split(";")[0] in ("ab-group=control", "ab-group=variant")
    assert seen(r)["header"]["x-ab-group"] in ("control", "variant")


def test_weights_split_new_visitors(site: Gateway) -> None:
    variants = [get(site, "/w").headers["set-cookie"].split(";")[0] for _ in range(200)]
    share = variants.count("ab-group=control") / len(variants)
    assert 0.3 < share < 0.7


def test_origin_set_cookie_is_kept_alongside_the_experiment_cookie(site: Gateway) -> None:
    r = get(site, "/landing", headers={"X-Echo-Set-Cookie": "session=abc; Path=/"})
    cookies = r.headers.get_list("set-cookie")
    assert "session=abc; Path=/" in cookies
    assert any(c.startswith("ab-group=") for c in cookies)


def test_forwarded_headers_from_a_trusted_peer_are_appended(site: Gateway) -> None:
    body = seen(get(site, "/fwd", headers={"X-Forwarded-For": "198.51.100.7", "Connection": "X-Secret", "X-Secret": "1"}))
    assert body["header"]["x-forwarded-for"] == "198.51.100.7, 127.0.0.1"
    assert body["header"]["x-forwarded-proto"] == "http"
    assert "x-secret" not in body["header"]  # named in Connection: hop-by-hop


def test_health_and_access_log(site: Gateway) -> None:
    r = get(site, "/__gateway/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    secret_token = token(sub="log-check")
    get(site, "/dashboard/log-check?token=" + secret_token, headers={"Authorization": "Bearer " + secret_token})
    time.sleep(0.3)
    lines = [json.loads(ln) for ln in site.log_lines()]
    entry = next(e for e in lines if e["path"] == "/dashboard/log-check")
    assert {"route", "status", "auth", "upstream_ms", "total_ms"} <= set(entry)
    assert entry["auth"] == "valid" and entry["status"] == 200
    everything = site.stdout.read_text() + site.stderr.read_text()
    assert secret_token not in everything and secret_token.split(".")[2] not in everything
    assert SECRET not in everything


def test_claims_that_cannot_be_header_values_are_not_forwarded(site: Gateway) -> None:
    r = get(site, "/dashboard/x", headers={"Authorization": f"Bearer {token(sub='a' + chr(1) + 'b')}", "X-User-Id": "spoof"})
    assert r.status_code == 200
    assert "x-user-id" not in seen(r)["header"]
    r = get(site, "/dashboard/x", headers={"Authorization": f"Bearer {token(sub='a' + chr(13) + chr(10) + 'Injected: 1')}"})
    assert r.status_code == 200 and "injected" not in seen(r)["header"]
    r = get(site, "/dashboard/x", headers={"Authorization": f"Bearer {token(sub='josé')}"})
    assert r.status_code == 200 and "x-user-id" in seen(r)["header"]


def test_null_sub_is_refused_and_wildcard_language_keeps_the_path(site: Gateway) -> None:
    # RFC 7519 §4.1.2: sub is a string; a null one is a malformed token (as PyJWT refuses it), so
    # it never reaches the origin, let alone as an X-User-Id.
    r = get(site, "/dashboard/x", headers={"Authorization": f"Bearer {token(sub=None)}"})
    assert r.status_code == 302 and r.headers["location"].startswith("/login")
    assert seen(get(site, "/products", headers={"Accept-Language": "*"}))["path"] == "/products"
    assert seen(get(site, "/products", headers={"Accept-Language": "*, ja;q=0.5"}))["path"] == "/ja/products"
