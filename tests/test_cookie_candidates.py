"""A planted same-name cookie cannot lock a user out (issue 9, fault 4).

Anyone who can set a cookie for the domain (a sibling subdomain, an HTTP page, an XSS elsewhere) can
add `auth-token=planted; Path=/dashboard`; browsers send longer-path cookies first, so the request
carries `Cookie: auth-token=planted; auth-token=<the user's real session>`.

Setup: one real `gateway serve` on the README example config — `/dashboard/:path*` uses the "session"
policy: `token_from = ["cookie:auth-token", "bearer"]`, on_invalid = 302 to /login with
`clear_cookie = "auth-token"`, `forward_claims = { sub = "X-User-Id" }`. The "web" origin is a
RecordingOrigin (tests/recording_origin.py) that logs every request and its headers.

The rule these tests pin down (the lead documents it in the README): every value of the token
cookie is a candidate, in the order sent; the gateway tries the first 50 candidates (RFC 6265 §6.1: what a browser keeps per domain
at least) and uses the first
that verifies. So:
- a valid session among the first 50 same-name cookies gets through: 200 from the origin, which
  receives `X-User-Id` from that token, and the answer carries NO Set-Cookie for auth-token (a clear
  would delete the user's real session at Path=/ while the planted one survives);
- a valid session only after 50 candidates does not get through (bounded work per request) and the
  policy's on_invalid applies (302 to /login), still without clearing the cookie the user holds;
- two invalid candidates are the policy's 302 as before (the origin never sees the request).

Before issue 9: only the first same-name cookie was looked at, so `planted; <valid>` was a 302 with
`Set-Cookie: auth-token=; Max-Age=0...` — the user was logged out by the attacker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import gateway
import pytest

from tests.harness import SECRET, Gateway, RawResponse
from tests.recording_origin import RecordingOrigin, site

BOUND = 50  # same-name candidates the gateway tries (stages/auth.py MAX_CANDIDATES)

PATH = "/dashboard/account"
LOGIN = "/login?next=%2Fdashboard%2Faccount"


def _now() -> int:
    return int(time.time())


def valid(sub: str = "alice") -> str:
    return gateway.encode({"sub": sub, "iat": _now(), "exp": _now() + 600}, SECRET)


# What an attacker can plant: garbage, a token signed with another key, an expired one of ours.
PLANTED = {
    "garbage": lambda: "planted",
    "forged": lambda: gateway.encode({"sub": "mallory", "iat": _now(), "exp": _now() + 600}, "x" * 40),
    "expired": lambda: gateway.encode({"sub": "mallory", "iat": _now() - 7200, "exp": _now() - 3600}, SECRET),
    "empty": lambda: "",
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, RecordingOrigin]]:
    with ExitStack() as stack:
        yield site(tmp_path_factory.mktemp("cookie-candidates"), stack)


def _send(gw: tuple[Gateway, RecordingOrigin], cookie_headers: list[str]) -> tuple[RawResponse, list[list[str]]]:
    """The answer, and the X-User-Id values of each request the origin received for it."""
    g, origin = gw
    before = origin.mark()
    head = f"GET {PATH} HTTP/1.1\r\nHost: www.example.com\r\n" + "".join(f"Cookie: {c}\r\n" for c in cookie_headers) + "Connection: close\r\n\r\n"
    r = g.raw(head.encode("latin-1"))
    complete, aborted = origin.since(before)
    return r, [s.header("x-user-id") for s in complete + aborted]


def _clears(r: RawResponse) -> list[str]:
    return [c for c in r.header_list("set-cookie") if c.lower().startswith("auth-token=")]


def _jar(*values: str) -> str:
    return "; ".join(f"auth-token={v}" for v in values)


@pytest.mark.parametrize("kind", list(PLANTED))
def test_planted_cookie_before_the_valid_session_does_not_lock_the_user_out(gw: tuple[Gateway, RecordingOrigin], kind: str) -> None:
    r, seen = _send(gw, [_jar(PLANTED[kind](), valid("alice"))])
    assert (r.status, seen, _clears(r)) == (200, [["alice"]], []), (
        f"auth-token={kind}; auth-token=<valid>: expected 200 from the origin with X-User-Id alice and no Set-Cookie "
        f"for auth-token; got {r.status} Location={r.header('location')} Set-Cookie={_clears(r)} origin saw {seen}"
    )


@pytest.mark.parametrize("kind", list(PLANTED))
def test_planted_cookie_after_the_valid_session(gw: tuple[Gateway, RecordingOrigin], kind: str) -> None:
    """Guard (passes today): the valid session first was always fine, and must stay so."""
    r, seen = _send(gw, [_jar(valid("alice"), PLANTED[kind]())])
    assert (r.status, seen, _clears(r)) == (200, [["alice"]], [])


def test_planted_cookie_in_a_separate_cookie_header(gw: tuple[Gateway, RecordingOrigin]) -> None:
    # Several Cookie header lines are one list (RFC 9113 §8.2.3 joins them with "; ").
    r, seen = _send(gw, [_jar("planted"), _jar(valid("alice"))])
    assert (r.status, seen, _clears(r)) == (200, [["alice"]], []), f"got {r.status} {r.headers}, origin saw {seen}"


def test_two_invalid_candidates_are_the_policy_redirect(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """Guard (passes today): nothing valid among the candidates → on_invalid, origin untouched."""
    r, seen = _send(gw, [_jar("planted", PLANTED["expired"]())])
    assert (r.status, r.header("location"), seen) == (302, LOGIN, [])


def test_the_valid_session_as_the_last_candidate_gets_through(gw: tuple[Gateway, RecordingOrigin]) -> None:
    planted = [f"planted{i}" for i in range(BOUND - 1)]
    r, seen = _send(gw, [_jar(*planted, valid("alice"))])
    assert (r.status, seen, _clears(r)) == (200, [["alice"]], []), (
        f"{BOUND - 1} planted then the valid session (candidate {BOUND}): expected 200 with X-User-Id alice, "
        f"got {r.status} Location={r.header('location')} Set-Cookie={_clears(r)}"
    )


@pytest.mark.parametrize("planted_count", [BOUND, BOUND + 30])
def test_a_valid_session_past_the_bound_is_not_looked_at(gw: tuple[Gateway, RecordingOrigin], planted_count: int) -> None:
    """Bounded work: candidates past the 50th are not verified, so the policy's on_invalid applies."""
    planted = [f"planted{i}" for i in range(planted_count)]
    r, seen = _send(gw, [_jar(*planted, valid("alice"))])
    assert (r.status, r.header("location"), seen) == (302, LOGIN, [])


@pytest.mark.parametrize("planted_count", [BOUND, BOUND + 30])
def test_a_failure_with_several_candidates_does_not_clear_the_users_cookie(gw: tuple[Gateway, RecordingOrigin], planted_count: int) -> None:
    """When several same-name cookies were sent, the one a clear would delete (Path=/) may be the
    user's real session: the on_invalid answer must not carry `clear_cookie`'s Set-Cookie."""
    planted = [f"planted{i}" for i in range(planted_count)]
    r, _ = _send(gw, [_jar(*planted, valid("alice"))])
    assert r.status == 302
    assert _clears(r) == [], f"{planted_count} planted + the valid session: {r.status} with Set-Cookie {_clears(r)}"


def test_a_single_invalid_cookie_is_still_cleared(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """Guard (passes today): with one auth-token cookie, on_invalid's clear_cookie still applies."""
    r, seen = _send(gw, [_jar(PLANTED["expired"]())])
    assert (r.status, r.header("location"), seen) == (302, LOGIN, [])
    assert len(_clears(r)) == 1 and "max-age=0" in _clears(r)[0].lower()
