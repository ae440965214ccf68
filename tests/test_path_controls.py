"""Control characters in the request path, encoded or raw, get a 400 and never reach an origin
(issue 9, fault 3; the README's "Paths" section promises 400 for NUL and other control characters).

Setup: one real `gateway serve` on the README example config; its "web" origin is a RecordingOrigin
(tests/recording_origin.py) that logs every request target it receives.

Expected, for every encoded control character (%00-%1F, %7F, either case of hex digits) anywhere in
the path, on the catch-all route and on the session-protected `/dashboard/:path*` (with a valid token,
and without one — the path is refused before auth runs): status 400 and nothing at the origin.
Raw control bytes in the request target: refused (400, or the HTTP server closes the connection),
never forwarded.

Today: only %00 is refused; `/dashboard%09`, `%0a`, `%0D%0A`, `%7f`, `%1F`, `%0d` get 200 from the
catch-all, the protected route forwards them with a valid token (200) and redirects without one (302),
and the origin receives the encoded control character in its request target.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import gateway
import pytest

from tests.harness import SECRET, Gateway
from tests.recording_origin import RecordingOrigin, site

ENCODED = ["%09", "%0a", "%0A", "%0d", "%0D%0A", "%7f", "%7F", "%1F", "%1b", "%01"]

CATCH_ALL = [f"/dashboard{e}" for e in ENCODED] + [f"/products{e}x" for e in ENCODED]
PROTECTED = [f"/dashboard/x{e}" for e in ENCODED] + [f"/dashboard/{e}/settings" for e in ENCODED]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, RecordingOrigin]]:
    with ExitStack() as stack:
        yield site(tmp_path_factory.mktemp("path-controls"), stack)


def _token() -> str:
    now = int(time.time())
    return gateway.encode({"sub": "alice", "iat": now, "exp": now + 600}, SECRET)


def _send(gw: tuple[Gateway, RecordingOrigin], target: bytes, headers: dict[str, str] | None = None) -> tuple[int | None, list[bytes]]:
    """Status (None when the server closed the connection without answering) and the targets the
    origin received for this request."""
    g, origin = gw
    before = origin.mark()
    head = b"GET " + target + b" HTTP/1.1\r\nHost: www.example.com\r\nCookie: ab-group=control\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode("latin-1")
    head += b"Connection: close\r\n\r\n"
    try:
        status: int | None = g.raw(head).status
    except ConnectionError:
        status = None
    complete, aborted = origin.since(before)
    return status, [s.target for s in complete + aborted]


@pytest.mark.parametrize("target", CATCH_ALL)
def test_encoded_control_character_on_the_catch_all_is_400(gw: tuple[Gateway, RecordingOrigin], target: str) -> None:
    status, reached = _send(gw, target.encode())
    assert reached == [], f"{target} reached the origin (answered {status})"
    assert status == 400, f"{target}: expected 400 for a control character in the path, got {status}"


@pytest.mark.parametrize("target", PROTECTED)
def test_encoded_control_character_on_a_protected_route_is_400_even_with_a_valid_token(gw: tuple[Gateway, RecordingOrigin], target: str) -> None:
    status, reached = _send(gw, target.encode(), {"Authorization": f"Bearer {_token()}"})
    assert reached == [], f"{target} reached the origin with a valid token (answered {status})"
    assert status == 400, f"{target}: expected 400 for a control character in the path, got {status}"


@pytest.mark.parametrize("target", PROTECTED[:4])
def test_encoded_control_character_on_a_protected_route_is_400_not_a_login_redirect(gw: tuple[Gateway, RecordingOrigin], target: str) -> None:
    # The path is refused while normalizing, before auth: a 302 would carry the control
    # character into the login page's `next` parameter.
    status, reached = _send(gw, target.encode())
    assert (status, reached) == (400, []), f"{target} without a token: expected 400, got {status}"


def test_encoded_nul_is_400(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """Guard (passes today): %00 was already refused."""
    assert _send(gw, b"/dashboard%00") == (400, [])
    assert _send(gw, b"/dashboard/x%00", {"Authorization": f"Bearer {_token()}"}) == (400, [])


@pytest.mark.parametrize("byte", [b"\x01", b"\x09", b"\x1b", b"\x1f", b"\x7f"], ids=lambda b: f"0x{b[0]:02x}")
@pytest.mark.parametrize("where", ["/dashboard{}", "/dashboard/x{}y"])
def test_raw_control_byte_in_the_target_is_refused(gw: tuple[Gateway, RecordingOrigin], where: str, byte: bytes) -> None:
    """Guard (passes today: Granian refuses these itself): whichever layer refuses a raw control
    byte, it answers 400 or closes, and the origin never sees it."""
    prefix, suffix = where.split("{}")
    status, reached = _send(gw, prefix.encode() + byte + suffix.encode(), {"Authorization": f"Bearer {_token()}"})
    assert reached == []
    assert status in (400, None)
