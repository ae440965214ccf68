"""Locale prefixes from a trusted geo header or Accept-Language, and A/B variant cookies."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import Gateway, echoed, make_token, set_cookies

AB_COOKIE_RE = re.compile(r"^ab-group=(control|variant); Path=/; Max-Age=86400; SameSite=Lax; Secure$")
PINNED = {"cookie": "ab-group=control"}  # keeps the experiment out of the way in locale tests


# ---------------------------------------------------------------- locale


@pytest.mark.parametrize(
    ("country", "path", "expected"),
    [
        ("KR", "/products", "/ko/products"),
        ("JP", "/products", "/ja/products"),
        ("KR", "/products/shoes/1", "/ko/products/shoes/1"),
        ("KR", "/ko/products", "/ko/products"),
        ("JP", "/ja", "/ja"),
        ("KR", "/kokoro", "/ko/kokoro"),
    ],
)
def test_trusted_country_header_prefixes_path(main_gateway: Gateway, country: str, path: str, expected: str) -> None:
    r = main_gateway.get(path, headers={"cf-ipcountry": country, **PINNED})
    assert r.status_code == 200, r.text[:300]
    assert echoed(r).path == expected
    assert r.headers.get("x-region") == country


def test_default_country_without_header(main_gateway: Gateway) -> None:
    r = main_gateway.get("/products", headers=PINNED)
    assert r.status_code == 200
    assert echoed(r).path == "/products"
    assert r.headers.get("x-region") == "US"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cf-ipcountry": "FR", "accept-language": "ko-KR,ko;q=0.9,en;q=0.5"}, "/ko/products"),
        ({"accept-language": "ja,en;q=0.5"}, "/ja/products"),
        ({"accept-language": "en-US,en;q=0.9"}, "/products"),
        ({"accept-language": "fr;q=0.9, ko;q=0.8"}, "/ko/products"),
    ],
)
def test_accept_language_when_country_gives_no_prefix(main_gateway: Gateway, headers: dict[str, str], expected: str) -> None:
    r = main_gateway.get("/products", headers={**headers, **PINNED})
    assert r.status_code == 200
    assert echoed(r).path == expected
    assert r.headers.get("x-region") == headers.get("cf-ipcountry", "US")


def test_country_wins_over_accept_language(main_gateway: Gateway) -> None:
    r = main_gateway.get("/products", headers={"cf-ipcountry": "KR", "accept-language": "ja", **PINNED})
    assert echoed(r).path == "/ko/products"


def test_untrusted_peer_cannot_set_country(untrusted_gateway: Gateway) -> None:
    r = untrusted_gateway.get("/products", headers={"cf-ipcountry": "KR", **PINNED})
    assert r.status_code == 200, r.text[:300]
    assert echoed(r).path == "/products", "cf-ipcountry from an untrusted peer must be ignored"
    assert r.headers.get("x-region") == "US"


def test_untrusted_peer_still_gets_accept_language(untrusted_gateway: Gateway) -> None:
    r = untrusted_gateway.get("/products", headers={"cf-ipcountry": "JP", "accept-language": "ko", **PINNED})
    assert echoed(r).path == "/ko/products"
    assert r.headers.get("x-region") == "US"


def test_locale_does_not_apply_to_routes_without_it(main_gateway: Gateway) -> None:
    r = main_gateway.get("/dashboard/x", headers={"cf-ipcountry": "KR", "authorization": f"Bearer {make_token()}"})
    assert r.status_code == 200
    assert echoed(r).path == "/dashboard/x"


# ---------------------------------------------------------------- experiments


def ab_cookies(r) -> list[str]:  # type: ignore[no-untyped-def]
    return [c for c in set_cookies(r) if c.startswith("ab-group=")]


def test_new_visitor_is_assigned_a_variant(main_gateway: Gateway) -> None:
    r = main_gateway.get("/landing")
    assert r.status_code == 200, r.text[:300]
    cookies = ab_cookies(r)
    assert len(cookies) == 1, f"expected one ab-group Set-Cookie, got {set_cookies(r)}"
    m = AB_COOKIE_RE.match(cookies[0])
    assert m, f"Set-Cookie is {cookies[0]!r}"
    assert echoed(r).header("X-AB-Group") == m.group(1), "the origin must learn the new visitor's variant"


def test_both_variants_are_assigned(main_gateway: Gateway) -> None:
    seen = set()
    with main_gateway.client() as c:
        for _ in range(40):
            c.cookies.clear()
            r = c.get("/landing")
            (cookie,) = ab_cookies(r)
            seen.add(AB_COOKIE_RE.match(cookie).group(1))  # type: ignore[union-attr]
            if len(seen) == 2:
                break
    assert seen == {"control", "variant"}, f"50/50 weights over 40 visitors gave only {seen}"


@pytest.mark.parametrize("variant", ["control", "variant"])
def test_returning_visitor_keeps_variant(main_gateway: Gateway, variant: str) -> None:
    r = main_gateway.get("/landing", headers={"cookie": f"other=1; ab-group={variant}; x=y", "X-AB-Group": "forged"})
    assert r.status_code == 200
    assert ab_cookies(r) == [], "a visitor with a valid variant must not be reassigned"
    assert echoed(r).headers("X-AB-Group") == [variant]


@pytest.mark.parametrize("bad", ["bogus", "", "Control", "variant2"])
def test_invalid_variant_cookie_is_reassigned(main_gateway: Gateway, bad: str) -> None:
    r = main_gateway.get("/landing", headers={"cookie": f"ab-group={bad}"})
    assert r.status_code == 200
    cookies = ab_cookies(r)
    assert len(cookies) == 1, f"got {set_cookies(r)}"
    m = AB_COOKIE_RE.match(cookies[0])
    assert m, cookies[0]
    assert echoed(r).header("X-AB-Group") == m.group(1)


def test_origin_set_cookie_is_kept_alongside(main_gateway: Gateway) -> None:
    r = main_gateway.get("/landing", headers={"X-Echo-Set-Cookie": "theme=dark; Path=/"})
    cookies = set_cookies(r)
    assert "theme=dark; Path=/" in cookies, f"the origin's Set-Cookie was lost: {cookies}"
    assert len(ab_cookies(r)) == 1, cookies


def test_origin_set_cookie_alone_for_returning_visitor(main_gateway: Gateway) -> None:
    r = main_gateway.get("/landing", headers={"X-Echo-Set-Cookie": "theme=light", "cookie": "ab-group=variant"})
    assert set_cookies(r) == ["theme=light"]


def test_no_experiment_on_routes_without_one(main_gateway: Gateway) -> None:
    r = main_gateway.get("/dashboard/x", headers={"authorization": f"Bearer {make_token()}"})
    assert r.status_code == 200
    assert ab_cookies(r) == []
    assert echoed(r).headers("X-AB-Group") == []
