"""Path normalization over raw sockets: no spelling of a protected path skips auth; refused shapes are 400;
the origin receives exactly the normalized path."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    Gateway,
    assert_still_serving,
    echoed,
    make_token,
    raw_get,
)

PROTECTED_SPELLINGS = [
    "//dashboard",
    "/./dashboard",
    "/x/../dashboard",
    "/%64ashboard",
    "/%64%61shboard",
    "///dashboard/",
    "/dashboard/./",
    "/x/y/../../dashboard",
]


@pytest.mark.parametrize("target", PROTECTED_SPELLINGS)
def test_other_spellings_of_dashboard_require_auth(main_gateway: Gateway, target: str) -> None:
    r = raw_get(main_gateway.port, target)
    assert r.status == 302, f"{target!r} answered {r.status}, expected the login redirect: {r.body[:200]!r}"
    loc = r.header("location") or ""
    assert loc.startswith("/login?") and not loc.startswith("//"), loc


@pytest.mark.parametrize(
    "target",
    [
        "//dashboard/settings",
        "/./dashboard/settings",
        "/x/../dashboard/settings",
        "/%64ashboard/settings",
        "/dashboard//settings",
        "/dashboard/./settings",
        "/dashboard/a/../settings",
        "/dashboard/%73ettings",
    ],
)
def test_origin_receives_normalized_path(main_gateway: Gateway, target: str) -> None:
    token = make_token({"sub": "norm-user"})
    r = raw_get(main_gateway.port, target, {"Authorization": f"Bearer {token}"})
    assert r.status == 200, f"{target!r}: {r.status} {r.body[:200]!r}"
    e = echoed(r)
    assert e.path == "/dashboard/settings", f"{target!r} reached the origin as {e.path!r}"
    assert e.header("X-User-Id") == "norm-user"


@pytest.mark.parametrize(
    "target",
    [
        "/dashboard%2fx",
        "/dashboard%2Fx",
        "/dashboard%5cx",
        "/dashboard%5Cx",
        "/dashboard\\x",
        "/dashboard%00",
        "/dashboard/x%00y",
        "/dashboard;x",
        "/dashboard/x;jsessionid=1",
        "/public%2fx",
        "/products%2F..%2Fdashboard",
        "/x%2F..%2Fdashboard",
    ],
)
def test_refused_paths_are_400(main_gateway: Gateway, target: str) -> None:
    token = make_token()
    r = raw_get(main_gateway.port, target, {"Authorization": f"Bearer {token}"})
    assert r.status == 400, f"{target!r} answered {r.status}: {r.body[:200]!r}"
    assert len(r.body) < 2048, "error bodies are short"
    assert b'"body_sha256"' not in r.body, "a refused path reached the origin"


def test_gateway_serves_normally_after_refused_paths(main_gateway: Gateway) -> None:
    for target in ("/dashboard%2fx", "/a\\b", "/x%00", "/y;z"):
        assert raw_get(main_gateway.port, target).status == 400
    assert_still_serving(main_gateway)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("//products///list", "/products/list"),
        ("/products/./list/../items", "/products/items"),
        ("/%7Euser", "/~user"),
        ("/%41bc-%5F%2E%2d", "/Abc-_.-"),
        ("/a%20b", "/a%20b"),
    ],
)
def test_public_paths_normalized_before_proxying(main_gateway: Gateway, target: str, expected: str) -> None:
    r = raw_get(main_gateway.port, target, {"Cookie": "ab-group=control"})
    assert r.status == 200, f"{target!r}: {r.status} {r.body[:200]!r}"
    e = echoed(r)
    if expected == "/a%20b":
        assert e.path.upper() == expected.upper(), f"{target!r} reached the origin as {e.path!r}"
    else:
        assert e.path == expected, f"{target!r} reached the origin as {e.path!r}"


def test_dotdot_above_root_never_reaches_origin(main_gateway: Gateway) -> None:
    r = raw_get(main_gateway.port, "/../../etc/passwd", {"Cookie": "ab-group=control"})
    assert r.status in (200, 400), r.status
    if r.status == 200:
        assert echoed(r).path == "/etc/passwd"


def test_dotdot_cannot_escape_into_protected_area_without_auth(main_gateway: Gateway) -> None:
    r = raw_get(main_gateway.port, "/public/../../dashboard/admin")
    assert r.status in (302, 400), f"answered {r.status}"


def test_query_is_passed_verbatim_and_not_normalized(main_gateway: Gateway) -> None:
    r = raw_get(main_gateway.port, "/products?a=1&b=%2F&c=..%2F", {"Cookie": "ab-group=control"})
    assert r.status == 200, r.body[:200]
    e = echoed(r)
    assert e.path == "/products"
    assert e.query == "a=1&b=%2F&c=..%2F"


@pytest.mark.parametrize("target", ["/DASHBOARD", "/Dashboard/x", "/%44ashboard", "/dAsHbOaRd/settings?x=1"])
def test_protected_literals_match_case_insensitively(main_gateway: Gateway, target: str) -> None:
    """SECURITY.md: route literals match case-insensitively, so /DASHBOARD is protected like /dashboard."""
    r = raw_get(main_gateway.port, target)
    assert r.status == 302, f"{target!r} answered {r.status}"
    assert (r.header("location") or "").startswith("/login?")
