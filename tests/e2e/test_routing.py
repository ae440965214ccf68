"""Route selection (methods, host, has/missing, match lists) and header placeholders."""

from __future__ import annotations

import hashlib

import pytest

from tests.e2e.conftest import Gateway, echoed, make_token, set_cookies

PINNED = {"cookie": "ab-group=control"}


# ---------------------------------------------------------------- methods


def test_post_resize_goes_to_regional_origin(main_gateway: Gateway) -> None:
    body = b"image-bytes" * 1000
    r = main_gateway.request("POST", "/api/resize?w=100", content=body)
    assert r.status_code == 200, r.text[:300]
    e = echoed(r)
    assert e.origin == "regional"
    assert e.method == "POST" and e.path == "/api/resize" and e.query == "w=100"
    assert e.data["body_length"] == len(body)
    assert e.data["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_post_resize_trailing_slash_matches_too(main_gateway: Gateway) -> None:
    r = main_gateway.request("POST", "/api/resize/", content=b"x")
    assert r.status_code == 200
    assert echoed(r).origin == "regional"


def test_get_resize_falls_through_to_next_route(main_gateway: Gateway) -> None:
    r = main_gateway.get("/api/resize", headers=PINNED)
    assert r.status_code == 200, r.text[:300]
    e = echoed(r)
    assert e.origin == "web", "GET must skip the POST-only route"
    assert e.path == "/api/resize"
    assert r.headers.get("x-region") == "US", "the catch-all route's response headers apply"


# ---------------------------------------------------------------- has / missing / host


@pytest.mark.parametrize(
    ("target", "headers", "expected"),
    [
        ("/cond/a", {"x-beta": "1"}, "has-header"),
        ("/cond/a", {"x-beta": "11"}, "missing-session"),  # value is a whole-value regex
        ("/cond/a", {"x-beta": "0"}, "missing-session"),
        ("/cond/a?preview=yes", {}, "has-query"),
        ("/cond/a?preview=true&x=1", {}, "has-query"),
        ("/cond/a?preview=no", {}, "missing-session"),
        ("/cond/a", {"cookie": "beta-cookie=anything"}, "has-cookie"),
        ("/cond/a", {"cookie": "beta-cookie=1; session=abc"}, "has-cookie"),
        ("/cond/a", {}, "missing-session"),
        ("/cond/a", {"cookie": "session=abc"}, "cond-fallback"),
        ("/cond/a?preview=yes", {"x-beta": "1"}, "has-header"),  # first matching route wins
        ("/cond/a?preview=no", {"x-beta": "2", "cookie": "session=1"}, "cond-fallback"),
    ],
)
def test_has_and_missing_conditions(main_gateway: Gateway, target: str, headers: dict[str, str], expected: str) -> None:
    r = main_gateway.get(target, headers=headers)
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("x-route") == expected
    assert echoed(r).path == "/cond/a"


@pytest.mark.parametrize(
    ("host", "expected", "origin"),
    [("example.com", "host-example", "regional"), ("other.example", "hosted-other", "web")],
)
def test_host_condition(main_gateway: Gateway, host: str, expected: str, origin: str) -> None:
    r = main_gateway.get("/hosted/page", headers={"host": host})
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("x-route") == expected
    assert echoed(r).origin == origin


# ---------------------------------------------------------------- placeholders


def test_params_placeholders(main_gateway: Gateway) -> None:
    r = main_gateway.get("/users/42/posts/7", headers={"X-Req-User": "forged"})
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("x-user-param") == "42"
    assert r.headers.get("x-post-param") == "7"
    assert r.headers.get("x-braces") == "{id}=42", "{{ and }} are literal braces"
    assert echoed(r).headers("X-Req-User") == ["42"], "route request_headers replace what the client sent"


def test_all_placeholders_in_response_and_request_headers(main_gateway: Gateway) -> None:
    token = make_token({"sub": "ph-user"})
    r = main_gateway.get(
        "/ph/a/b",
        headers={
            "cookie": f"auth-token={token}; ab-group=variant",
            "cf-ipcountry": "KR",
            "accept-language": "ko-KR,ko;q=0.9",
            "X-Req-Sub": "forged",
        },
    )
    assert r.status_code == 200, r.text[:300]
    h = r.headers
    assert h.get("x-country") == "KR"
    assert h.get("x-lang") == "ko"
    assert h.get("x-sub") == "ph-user"
    assert h.get("x-path-param") == "a/b"
    assert h.get("x-exp") == "variant"
    assert h.get("x-currency") == "KRW"
    assert h.get("x-currency-d") == "KRW"
    assert h.get("x-vat") == "0", "a missing KV field takes the |default"
    e = echoed(r)
    assert e.path == "/ko/ph/a/b"
    assert e.headers("X-Req-Country") == ["KR"]
    assert e.headers("X-Req-Lang") == ["ko"]
    assert e.headers("X-Req-Sub") == ["ph-user"]
    assert e.headers("X-Req-Param") == ["a/b"]
    assert e.headers("X-Req-Exp") == ["variant"]
    assert e.headers("X-Req-Currency") == ["KRW"]
    assert e.headers("X-User-Id") == ["ph-user"]


def test_experiment_placeholder_for_new_visitor(main_gateway: Gateway) -> None:
    token = make_token({"sub": "ph-new"})
    r = main_gateway.get("/ph/x", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200
    (cookie,) = [c for c in set_cookies(r) if c.startswith("ab-group=")]
    variant = cookie.split(";")[0].split("=", 1)[1]
    assert r.headers.get("x-exp") == variant
    assert echoed(r).headers("X-Req-Exp") == [variant]
    assert echoed(r).headers("X-AB-Group") == [variant]


def test_kv_placeholder_default_for_unknown_key(main_gateway: Gateway) -> None:
    token = make_token({"sub": "ph-fr"})
    r = main_gateway.get("/ph/x", headers={"authorization": f"Bearer {token}", "cf-ipcountry": "FR", **PINNED})
    assert r.status_code == 200
    assert r.headers.get("x-country") == "FR"
    assert r.headers.get("x-currency-d") == "USD"
    assert echoed(r).headers("X-Req-Currency") == ["USD"]


def test_protected_placeholder_route_still_requires_auth(main_gateway: Gateway) -> None:
    r = main_gateway.get("/ph/x", headers={"cf-ipcountry": "KR"})
    assert r.status_code == 302
    assert "x-sub" not in r.headers


def test_placeholder_values_cannot_inject_headers(main_gateway: Gateway) -> None:
    # A claim with CR/LF must not split the response or the forwarded request.
    token = make_token({"sub": "evil\r\nX-Injected: 1"})
    r = main_gateway.get("/ph/x", headers={"authorization": f"Bearer {token}", **PINNED})
    assert r.status_code in (200, 302, 400)
    assert "x-injected" not in r.headers
    if r.status_code == 200:
        assert echoed(r).headers("X-Injected") == []


# ---------------------------------------------------------------- match lists and regex params


@pytest.mark.parametrize(
    ("target", "listed", "param"),
    [("/listed-a", True, "none"), ("/listed-a/", True, "none"), ("/listed-b/12", True, "12"), ("/listed-b/abc", False, None)],
)
def test_match_list_and_regex_param(main_gateway: Gateway, target: str, listed: bool, param: str | None) -> None:
    r = main_gateway.get(target, headers=PINNED)
    assert r.status_code == 200, r.text[:300]
    if listed:
        assert r.headers.get("x-route") == "listed"
        assert r.headers.get("x-listed-id") == param
        assert echoed(r).origin == "regional"
    else:
        assert "x-route" not in r.headers
        assert echoed(r).origin == "web"


@pytest.mark.parametrize(
    ("target", "route", "extra"),
    [
        ("/plus/a", "plus", ("x-rest", "a")),
        ("/plus/a/b/c", "plus", ("x-rest", "a/b/c")),
        ("/plus", None, None),  # :rest+ needs at least one segment
        ("/opt/about", "opt", ("x-opt-lang", "none")),
        ("/opt/ko/about", "opt", ("x-opt-lang", "ko")),
        ("/opt/ko/en/about", None, None),
        ("/re/123", "re", None),
        ("/re/12a", None, None),
    ],
)
def test_matcher_syntax(main_gateway: Gateway, target: str, route: str | None, extra: tuple[str, str] | None) -> None:
    r = main_gateway.get(target, headers=PINNED)
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("x-route") == route, f"{target} matched {r.headers.get('x-route')!r}"
    if extra:
        assert r.headers.get(extra[0]) == extra[1]
    assert echoed(r).path == target


def test_weighted_experiment_and_variant_placeholder(main_gateway: Gateway) -> None:
    for _ in range(8):
        r = main_gateway.get("/weighted/x")
        assert r.status_code == 200
        cookies = [c for c in set_cookies(r) if c.startswith("exp-w=")]
        assert cookies == ["exp-w=a; Path=/; Max-Age=7200; SameSite=Lax; Secure"], set_cookies(r)
        assert r.headers.get("x-variant") == "a" and r.headers.get("x-exp-w") == "a"
        assert echoed(r).headers("X-Exp-W") == ["a"]
    r = main_gateway.get("/weighted/x", headers={"cookie": "exp-w=b"})
    assert [c for c in set_cookies(r) if c.startswith("exp-w=")] == [], "an existing valid variant is kept even at weight 0"
    assert r.headers.get("x-variant") == "b"
