"""Auth policies end to end: missing/invalid/valid tokens, redirects, 401s, claim headers, logs."""

from __future__ import annotations

import base64
import time
import uuid
import warnings
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.conftest import SECRET, Gateway, echoed, make_token, set_cookies


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


CLEAR_PREFIX = "auth-token=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"


def assert_login_redirect(r: httpx.Response, original: str | None) -> None:
    assert r.status_code == 302, f"expected 302, got {r.status_code}: {r.text[:300]}"
    loc = r.headers.get("location")
    assert loc is not None, "302 without Location"
    parts = urlsplit(loc)
    assert not loc.startswith("//") and not loc.startswith("/\\"), f"Location is protocol-relative: {loc!r}"
    assert parts.scheme == "" and parts.netloc == "", f"Location must be relative, got {loc!r}"
    assert parts.path == "/login", loc
    if original is not None:
        assert parse_qs(parts.query, keep_blank_values=True) == {"next": [original]}, f"Location {loc!r} does not carry next={original!r}"


def auth_cookie_clears(r: httpx.Response) -> list[str]:
    return [c for c in set_cookies(r) if c.split("=", 1)[0].strip() == "auth-token"]


def assert_clears_auth_cookie(r: httpx.Response) -> None:
    clears = auth_cookie_clears(r)
    assert len(clears) == 1, f"expected one Set-Cookie expiring auth-token, got {set_cookies(r)}"
    assert clears[0].startswith(CLEAR_PREFIX), f"clear cookie is {clears[0]!r}, expected to start with {CLEAR_PREFIX!r}"


def invalid_tokens() -> dict[str, str]:
    good = make_token()
    head, body, sig = good.split(".")
    none_head = b64url(b'{"alg":"none","typ":"JWT"}')
    with warnings.catch_warnings():  # HS512 over the same 51-byte secret, on purpose
        warnings.simplefilter("ignore")
        hs512 = make_token(alg="HS512")
    return {
        "bad-signature": make_token(secret="another-secret-another-secret-0123456789abcd"),
        "tampered-payload": f"{head}.{make_token({'sub': 'admin'}).split('.')[1]}.{sig}",
        "expired-past-leeway": make_token(exp_in=-120),
        "wrong-alg-hs512": hs512,
        "alg-none": f"{none_head}.{body}.",
        "malformed": "not-a-jwt",
        "two-segments": f"{head}.{body}",
    }


INVALID = invalid_tokens()


# ---------------------------------------------------------------- session policy: redirects


@pytest.mark.parametrize(
    "target",
    ["/dashboard", "/dashboard/settings", "/dashboard/settings?tab=billing&x=1%202"],
)
def test_missing_token_redirects_to_login_with_next(main_gateway: Gateway, target: str) -> None:
    r = main_gateway.get(target)
    assert_login_redirect(r, target)
    assert auth_cookie_clears(r) == [], "on_missing has no clear_cookie"


def test_missing_token_trailing_slash_still_protected(main_gateway: Gateway) -> None:
    assert_login_redirect(main_gateway.get("/dashboard/"), None)


def test_redirect_is_relative_whatever_host_the_client_sends(main_gateway: Gateway) -> None:
    r = main_gateway.get(
        "/dashboard/x?y=1",
        headers={"host": "evil.example", "x-forwarded-host": "evil.example", "x-forwarded-proto": "https"},
    )
    assert_login_redirect(r, "/dashboard/x?y=1")
    assert "evil.example" not in r.headers["location"]


@pytest.mark.parametrize("kind", sorted(INVALID))
def test_invalid_cookie_token_redirects_and_clears_cookie(main_gateway: Gateway, kind: str) -> None:
    r = main_gateway.get("/dashboard/settings?a=b", headers={"cookie": f"auth-token={INVALID[kind]}"})
    assert_login_redirect(r, "/dashboard/settings?a=b")
    assert_clears_auth_cookie(r)


@pytest.mark.parametrize("kind", ["bad-signature", "expired-past-leeway", "malformed"])
def test_invalid_bearer_on_session_route_is_invalid_too(main_gateway: Gateway, kind: str) -> None:
    r = main_gateway.get("/dashboard", headers={"authorization": f"Bearer {INVALID[kind]}"})
    assert_login_redirect(r, "/dashboard")
    assert_clears_auth_cookie(r)


def test_expired_within_leeway_is_accepted(main_gateway: Gateway) -> None:
    token = make_token({"sub": "leeway-user"}, exp_in=-10)  # leeway = "30s"
    r = main_gateway.get("/dashboard/home", headers={"cookie": f"auth-token={token}"})
    assert r.status_code == 200, r.text[:300]
    assert echoed(r).header("X-User-Id") == "leeway-user"


def test_valid_cookie_token_is_proxied_with_forwarded_claims(main_gateway: Gateway) -> None:
    token = make_token({"sub": "alice"})
    r = main_gateway.get(
        "/dashboard/settings?tab=1",
        headers={"cookie": f"theme=dark; auth-token={token}", "X-User-Id": "admin"},
    )
    assert r.status_code == 200, r.text[:300]
    e = echoed(r)
    assert e.origin == "web"
    assert e.path == "/dashboard/settings" and e.query == "tab=1"
    assert e.headers("X-User-Id") == ["alice"], "the client's X-User-Id must be removed and the claim forwarded"
    assert auth_cookie_clears(r) == []


def test_valid_bearer_token_on_session_route(main_gateway: Gateway) -> None:
    token = make_token({"sub": "bob"})
    r = main_gateway.get("/dashboard", headers={"authorization": f"Bearer {token}", "x-user-id": "root"})
    assert r.status_code == 200, r.text[:300]
    e = echoed(r)
    assert e.path in ("/dashboard", "/dashboard/")
    assert e.headers("X-User-Id") == ["bob"]


def test_cookie_is_tried_before_bearer(main_gateway: Gateway) -> None:
    token = make_token({"sub": "cookie-user"})
    r = main_gateway.get("/dashboard/a", headers={"cookie": f"auth-token={token}", "authorization": "Bearer garbage"})
    assert r.status_code == 200, r.text[:300]
    assert echoed(r).headers("X-User-Id") == ["cookie-user"]


def test_similar_prefix_is_not_protected(main_gateway: Gateway) -> None:
    for path in ("/dashboardx", "/dashboard-admin/x"):
        r = main_gateway.get(path, headers={"cookie": "ab-group=control"})
        assert r.status_code == 200, f"{path}: {r.status_code}"
        assert echoed(r).path == path


# ---------------------------------------------------------------- api policy: 401 JSON


def test_api_missing_token_is_401_json(main_gateway: Gateway) -> None:
    r = main_gateway.get("/api/protected/data")
    assert r.status_code == 401, r.text[:300]
    assert "location" not in r.headers
    www = r.headers.get("www-authenticate", "")
    assert www.startswith("Bearer"), f"WWW-Authenticate is {www!r}"
    assert r.headers.get("content-type", "").startswith("application/json")
    assert isinstance(r.json(), dict)


@pytest.mark.parametrize("kind", ["bad-signature", "expired-past-leeway", "wrong-alg-hs512", "alg-none", "malformed"])
def test_api_invalid_token_is_401_invalid_token(main_gateway: Gateway, kind: str) -> None:
    token = INVALID[kind]
    r = main_gateway.get("/api/protected/data", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text[:300]
    www = r.headers.get("www-authenticate", "")
    assert www.startswith("Bearer") and 'error="invalid_token"' in www, f"WWW-Authenticate is {www!r}"
    assert r.headers.get("content-type", "").startswith("application/json")
    assert isinstance(r.json(), dict)
    assert token not in r.text and token not in str(r.headers)
    assert SECRET not in r.text


def test_api_policy_ignores_cookie_tokens(main_gateway: Gateway) -> None:
    r = main_gateway.get("/api/protected/data", headers={"cookie": f"auth-token={make_token()}"})
    assert r.status_code == 401
    assert r.headers.get("www-authenticate", "").startswith("Bearer")


def test_api_valid_bearer_is_proxied(main_gateway: Gateway) -> None:
    r = main_gateway.get(
        "/api/protected/data?q=1",
        headers={"authorization": f"Bearer {make_token({'sub': 'api-user'})}", "x-user-id": "admin"},
    )
    assert r.status_code == 200, r.text[:300]
    e = echoed(r)
    assert e.path == "/api/protected/data" and e.query == "q=1"
    assert e.headers("X-User-Id") == [], "a client's X-User-Id must never reach the origin"


def test_client_x_user_id_removed_on_public_route(main_gateway: Gateway) -> None:
    r = main_gateway.get("/products", headers={"X-User-Id": "admin", "cookie": "ab-group=control"})
    assert r.status_code == 200
    assert echoed(r).headers("X-User-Id") == []


# ---------------------------------------------------------------- logs


def test_access_log_records_auth_outcomes(main_gateway: Gateway) -> None:
    marker = uuid.uuid4().hex[:10]
    cases = {
        f"/dashboard/log-missing-{marker}": ({}, 302, "missing"),
        f"/dashboard/log-invalid-{marker}": ({"cookie": "auth-token=garbage.garbage.garbage"}, 302, "invalid"),
        f"/dashboard/log-valid-{marker}": ({"authorization": f"Bearer {make_token()}"}, 200, "valid"),
        f"/log-public-{marker}": ({"cookie": "ab-group=control"}, 200, "none"),
    }
    for path, (headers, status, _) in cases.items():
        assert main_gateway.get(path, headers=headers).status_code == status
    for path, (_, status, outcome) in cases.items():
        entry = main_gateway.wait_log(lambda e, p=path: e.get("path") == p)
        assert entry is not None, f"no access-log line with path {path!r} on stdout"
        for key in ("route", "method", "path", "status", "auth", "upstream_ms", "total_ms"):
            assert key in entry, f"access-log line lacks {key!r}: {entry}"
        assert entry["method"] == "GET"
        assert entry["status"] == status, entry
        assert entry["auth"] == outcome, entry
        assert isinstance(entry["total_ms"], (int, float))
        if status == 200:
            assert isinstance(entry["upstream_ms"], (int, float)), entry


def test_tokens_and_secret_never_logged_or_echoed(main_gateway: Gateway) -> None:
    marker = uuid.uuid4().hex[:10]
    valid = make_token({"sub": f"log-{marker}"})
    expired = make_token({"sub": f"exp-{marker}"}, exp_in=-3600)
    forged = make_token({"sub": f"forged-{marker}"}, secret="forged-secret-forged-secret-0123456789abcd")
    requests = [
        ("/dashboard/" + marker, {"cookie": f"auth-token={valid}"}),
        ("/dashboard/" + marker, {"authorization": f"Bearer {expired}"}),
        ("/api/protected/" + marker, {"authorization": f"Bearer {forged}"}),
        (f"/public-{marker}?token={valid}&access_token={forged}", {"cookie": "ab-group=control"}),
    ]
    for path, headers in requests:
        r = main_gateway.get(path, headers=headers)
        assert r.status_code in (200, 302, 401)
        if r.status_code != 200:  # gateway-made answers never carry tokens
            for tok in (valid, expired, forged):
                assert tok not in r.text and tok.split(".")[2] not in str(r.headers)
    assert main_gateway.wait_log(lambda e: e.get("path") == f"/public-{marker}") is not None
    time.sleep(0.2)
    output = main_gateway.all_output()
    assert SECRET not in output, "the JWT secret appears in the gateway's output"
    for tok in (valid, expired, forged):
        assert tok.split(".")[2] not in output, "a token appears in the gateway's output"
        assert tok.split(".")[1] not in output, "a token's payload appears in the gateway's output"
