"""A host-scoped auth route cannot be skipped by how the client spells the Host header (issue 9, fault 1).

Setup: one real `gateway serve` on the README example config, plus two routes before its catch-all
(`/:path*`, no auth):
- `/admin/:path*` with `host = "admin.example.com"` and `auth = "session"` (302 to /login when no token);
- `/hadmin/:path*` with `has = [{type = "host", value = "admin\\.example\\.com"}]` and `auth = "session"`.
The "web" origin is a RecordingOrigin (tests/recording_origin.py) whose own log says what reached it.

Expected: host names compare without the port and one trailing dot, case-insensitively, everywhere
(route `host` and `host` conditions alike). So `admin.example.com:8080`, `admin.example.com.`,
`ADMIN.example.com:80`, ... all select the protected route: 302 to /login, and the origin never sees
the request. Garbage spellings of the same host (brackets, empty port) must also never reach the
origin unauthenticated: either the protected route applies (302) or the request is refused (400).
Two Host headers stay 400.

Today: every variant falls through to the catch-all and the origin answers 200 (an auth bypass) —
except `ADMIN.example.com` without a port on the `host` route, which already compares case-insensitively
(it still skips the `has` host condition).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.harness import Gateway
from tests.recording_origin import RecordingOrigin, site

ROUTES = """
[[routes]]
match = "/admin/:path*"
host = "admin.example.com"
auth = "session"
origin = "web"

[[routes]]
match = "/hadmin/:path*"
has = [{ type = "host", value = "admin\\\\.example\\\\.com" }]
auth = "session"
origin = "web"
"""

PROTECTED = ["/admin/settings", "/hadmin/settings"]

# Spellings of admin.example.com that name the same host (RFC 9110 §4.2.3 / §7.2: the port is not
# part of the host name; DNS names compare case-insensitively; a trailing dot is the same FQDN).
SAME_HOST = [
    "admin.example.com:8080",
    "admin.example.com:80",
    "admin.example.com.",
    "admin.example.com.:8080",
    "ADMIN.example.com",
    "ADMIN.example.com:80",
    "Admin.Example.COM.",
]

# Not well-formed, but a lenient parser could read them as admin.example.com.
GARBAGE = [
    "[admin.example.com]",
    "[admin.example.com]:8080",
    "admin.example.com:",
    "admin.example.com:notaport",
]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, RecordingOrigin]]:
    with ExitStack() as stack:
        yield site(tmp_path_factory.mktemp("host-routing"), stack, before_catch_all=ROUTES)


def _get(gw: tuple[Gateway, RecordingOrigin], path: str, host_lines: list[str]) -> tuple[int, str | None, list[bytes]]:
    """Status, Location, and the targets the origin received (whole or not) for this request."""
    g, origin = gw
    before = origin.mark()
    head = f"GET {path} HTTP/1.1\r\n" + "".join(f"Host: {h}\r\n" for h in host_lines) + "Connection: close\r\n\r\n"
    r = g.raw(head.encode("latin-1"))
    complete, aborted = origin.since(before)
    return r.status, r.header("location"), [s.target for s in complete + aborted]


def _login(path: str) -> str:
    return "/login?next=" + path.replace("/", "%2F")


@pytest.mark.parametrize("path", PROTECTED)
def test_the_exact_host_is_protected(gw: tuple[Gateway, RecordingOrigin], path: str) -> None:
    """Guard (passes today): the spelling the config uses selects the protected route."""
    assert _get(gw, path, ["admin.example.com"]) == (302, _login(path), [])


@pytest.mark.parametrize("host", SAME_HOST)
@pytest.mark.parametrize("path", PROTECTED)
def test_port_trailing_dot_and_case_do_not_skip_the_protected_route(gw: tuple[Gateway, RecordingOrigin], path: str, host: str) -> None:
    status, location, reached = _get(gw, path, [host])
    assert reached == [], f"Host: {host} let {path} reach the origin without a token (answered {status})"
    assert (status, location) == (302, _login(path)), f"Host: {host} must select the session-protected route {path}"


@pytest.mark.parametrize("host", GARBAGE)
@pytest.mark.parametrize("path", PROTECTED)
def test_garbage_spellings_of_the_host_never_reach_the_origin_unauthenticated(gw: tuple[Gateway, RecordingOrigin], path: str, host: str) -> None:
    status, _, reached = _get(gw, path, [host])
    assert reached == [], f"Host: {host} let {path} reach the origin without a token (answered {status})"
    assert status in (302, 400), f"Host: {host} on {path}: expected the protected route's 302 or a 400, got {status}"


def test_another_host_still_falls_through_to_the_catch_all(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """Guard (passes today): normalizing must not make the host-scoped route match other hosts."""
    for host in ("other.example.com", "admin.example.com.evil.test", "evil-admin.example.com:8080"):
        assert _get(gw, "/admin/settings", [host]) == (200, None, [b"/admin/settings"]), host


@pytest.mark.parametrize(
    "hosts",
    [["admin.example.com", "other.example.com"], ["other.example.com", "admin.example.com"], ["admin.example.com", "admin.example.com:8080"]],
)
def test_two_host_headers_stay_400(gw: tuple[Gateway, RecordingOrigin], hosts: list[str]) -> None:
    """Guard (passes today): RFC 9112 §3.2 — more than one Host header is a 400."""
    assert _get(gw, "/admin/settings", hosts)[0::2] == (400, [])
