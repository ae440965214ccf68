"""One rule turns a claim into header text, whichever way it is forwarded (issue 9, fault 8).

Setup: one real `gateway serve` on the README example config, plus an auth policy "claims" (the
example secret, bearer tokens) with `forward_claims = { note = "X-Note-Fwd" }` and a route
`/claims/:path*` using it with `request_headers = { "X-Note-Tpl" = "{claims.note}" }`. So the same
claim travels to the origin both ways under one rule. The "web" origin is a RecordingOrigin
(tests/recording_origin.py) that logs the raw header values it received.

Expected, for a `note` claim holding a control character (tab, LF, CR, CRLF, DEL, NUL, ESC...):
- neither header reaches the origin with a control character (0x00-0x1F, 0x7F) in its value;
- both mechanisms agree: either both leave the header out (an empty value counts as left out) or both
  send the very same text.
Ordinary claims (text, numbers, objects) are forwarded identically both ways (guards).

Today: forward_claims sends a tab as is (`a\\tb`) and drops a claim with any other control character,
while `{claims.note}` silently deletes the control characters (`ab`) — the two disagree on every one.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import gateway
import pytest

from tests.harness import GATEWAY_BIN, SECRET, Gateway, gateway_env
from tests.recording_origin import RecordingOrigin, site

POLICY = """
[auth.claims]
algorithms = ["HS256"]
secret = "env:JWT_SECRET"
token_from = ["bearer"]
on_missing = { status = 401 }
on_invalid = { status = 401 }
forward_claims = { note = "X-Note-Fwd" }
"""

ROUTE = """
[[routes]]
match = "/claims/:path*"
auth = "claims"
request_headers = { "X-Note-Tpl" = "{claims.note}" }
origin = "web"
"""

CONTROL = re.compile(r"[\x00-\x1f\x7f]")

WITH_CONTROLS = {
    "tab": "a\tb",
    "leading-tab": "\tab",
    "trailing-tab": "ab\t",
    "lf": "a\nb",
    "cr": "a\rb",
    "crlf-injection": "a\r\nX-Injected: 1",
    "del": "a\x7fb",
    "nul": "a\x00b",
    "esc": "a\x1b[31mb",
    "unit-separator": "a\x1fb",
}

ORDINARY: dict[str, Any] = {
    "text": "plain text",
    "utf8": "\u00e9mile",
    "number": 42,
    "object-with-tab-inside": {"k": "a\tb"},  # JSON text escapes it: no control character on the wire
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, RecordingOrigin]]:
    with ExitStack() as stack:
        yield site(tmp_path_factory.mktemp("claim-text"), stack, tables=POLICY, before_catch_all=ROUTE)


def _token(note: Any) -> str:
    now = int(time.time())
    return gateway.encode({"sub": "alice", "note": note, "iat": now, "exp": now + 600}, SECRET)


def _forwarded(gw: tuple[Gateway, RecordingOrigin], token: str) -> tuple[list[str], list[str]]:
    """(X-Note-Fwd values, X-Note-Tpl values) as the origin received them, raw."""
    g, origin = gw
    before = origin.mark()
    r = g.raw(f"GET /claims/x HTTP/1.1\r\nHost: www.example.com\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode())
    assert r.status == 200, f"the route did not forward: {r.status} {r.body[:200]!r}"
    complete, _ = origin.since(before)
    assert len(complete) == 1
    return complete[0].header("x-note-fwd"), complete[0].header("x-note-tpl")


def _outcome(values: list[str]) -> str | None:
    """What a mechanism did with the claim: None when left out (absent or empty), else its text."""
    assert len(values) <= 1, values
    return values[0] if values and values[0] != "" else None


def _check(fwd: list[str], tpl: list[str], claim: Any) -> None:
    with_controls = [v for v in fwd + tpl if CONTROL.search(v)]
    assert with_controls == [], f"claim {claim!r} reached the origin with a control character: forward_claims {fwd!r}, template {tpl!r}"
    assert _outcome(fwd) == _outcome(tpl), (
        f"claim {claim!r}: forward_claims sent {fwd!r} but {{claims.note}} sent {tpl!r} — one rule must give one outcome"
    )


@pytest.mark.parametrize("name", list(WITH_CONTROLS))
def test_a_claim_with_a_control_character_is_turned_into_header_text_one_way(gw: tuple[Gateway, RecordingOrigin], name: str) -> None:
    claim = WITH_CONTROLS[name]
    fwd, tpl = _forwarded(gw, _token(claim))
    _check(fwd, tpl, claim)


def test_a_token_from_gateway_token_cli_with_a_tab_claim(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """The same, with the token minted as a user would: `gateway token --claims ...`."""
    out = subprocess.run(
        [GATEWAY_BIN, "token", "--secret-env", "JWT_SECRET", "--claims", json.dumps({"sub": "alice", "note": "a\tb"}), "--ttl", "10m"],
        capture_output=True, text=True, env=gateway_env(), timeout=60, check=True,
    )
    fwd, tpl = _forwarded(gw, out.stdout.strip().splitlines()[-1])
    _check(fwd, tpl, "a\tb")


@pytest.mark.parametrize("name", list(ORDINARY))
def test_an_ordinary_claim_is_the_same_text_both_ways(gw: tuple[Gateway, RecordingOrigin], name: str) -> None:
    """Guard (passes today): the one rule must not change what ordinary claims become."""
    claim = ORDINARY[name]
    fwd, tpl = _forwarded(gw, _token(claim))
    _check(fwd, tpl, claim)
    sent = _outcome(fwd)
    assert sent is not None
    expected = claim if isinstance(claim, str) else json.dumps(claim, separators=(",", ":")) if isinstance(claim, dict) else str(claim)
    assert sent.encode("latin-1") == expected.encode()  # header text crosses as latin-1; the wire has UTF-8
