"""A malformed or abandoned chunked request body is the client's fault: a 400, never a 500 or a log
flood, and never a complete request at the origin (issue 9, fault 2).

Setup: one real `gateway serve` on the README example config; its "web" origin (the catch-all's) is a
RecordingOrigin (tests/recording_origin.py) that parses chunked bodies strictly and logs each request
as complete (head and whole body arrived) or aborted. The client is a raw socket.

Expected for `POST /upload` with `Transfer-Encoding: chunked` and a broken body (chunk-size line
`1zz`, a non-hex or overflowing size, chunk data longer than its size):
- the gateway answers 400 with `Connection: close` (RFC 9112 §7.1: a recipient that cannot parse the
  chunked framing must treat the message as incomplete; §9.6/§11.2: close after a framing error);
- the origin receives at most an aborted request — never a complete request with a body;
- exactly one access-log line (JSON on stdout) for the request, with status 400;
- no `Future exception was never retrieved` and no ERROR lines on stderr.
A client that abandons a chunked upload halfway leaves no ERROR lines, no complete request at the
origin, and the gateway keeps serving.

Today: `1zz` gets `500 Internal server error` (from Granian), no access-log line, the request head
already at the origin, and `ERROR asyncio: Future exception was never retrieved` on stderr.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.harness import Gateway, RawResponse, recv_response, wait_for
from tests.recording_origin import RecordingOrigin, Seen, site

ERROR_SPAM = re.compile(r"Future exception was never retrieved|\bERROR\b|Traceback")

# (id, body bytes after the head) — each one a chunked body no parser may accept.
MALFORMED = [
    ("size-1zz", b"1zz\r\nabc\r\n0\r\n\r\n"),
    ("size-not-hex", b"xyz\r\nabc\r\n0\r\n\r\n"),
    ("size-overflow", b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
    ("data-longer-than-size", b"3\r\nabcdef\r\n0\r\n\r\n"),
    ("second-chunk-1zz", b"3\r\nabc\r\n1zz\r\nx\r\n0\r\n\r\n"),
]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, RecordingOrigin]]:
    with ExitStack() as stack:
        yield site(tmp_path_factory.mktemp("request-framing"), stack)


def _head(path: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: www.example.com\r\nCookie: ab-group=control\r\nTransfer-Encoding: chunked\r\n\r\n".encode()


def _log_for(g: Gateway, path: str) -> list[dict]:
    return [e for e in g.log_entries() if e.get("path") == path]


def _settle(g: Gateway, origin: RecordingOrigin) -> None:
    """Lets late effects show: an aborted forward reaching the origin, a dropped future's exception
    being logged when it is collected (the gateway keeps serving while we wait)."""
    for _ in range(3):
        assert g.get("/products", headers={"Cookie": "ab-group=control"}).status_code == 200
    time.sleep(0.5)


def _complete_with_body(seen: list[Seen], path: str) -> list[Seen]:
    return [s for s in seen if s.target == path.encode() and s.complete]


def _problems(g: Gateway, origin: RecordingOrigin, path: str, r: RawResponse | None, before: tuple[int, int], err_before: int) -> list[str]:
    """Every way the handling of one malformed request at `path` differs from what is expected."""
    complete, _ = origin.since(before)
    problems = []
    if r is None or r.status != 400:
        problems.append(f"expected 400, got {r.status if r else 'no answer'} {r.body[:60]!r}" if r else "expected 400, got no answer")
    if r is not None and (r.header("connection") or "").lower() != "close":
        problems.append(f"expected Connection: close, got headers {r.headers}")
    if _complete_with_body(complete, path):
        problems.append(f"the origin received a complete request: {_complete_with_body(complete, path)}")
    lines = _log_for(g, path)
    if [e.get("status") for e in lines] != [400]:
        problems.append(f"expected exactly one access-log line with status 400 for {path}, got {lines}")
    spam = g.proc.stderr_text()[err_before:]
    if ERROR_SPAM.search(spam):
        problems.append(f"stderr has ERROR lines:\n{spam}")
    return problems


@pytest.mark.parametrize(("name", "body"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_chunked_body_is_400_with_connection_close(gw: tuple[Gateway, RecordingOrigin], name: str, body: bytes) -> None:
    g, origin = gw
    path = f"/upload/{name}"
    before, err_before = origin.mark(), len(g.proc.stderr_text())
    with socket.create_connection(("127.0.0.1", g.port), timeout=10) as s:
        s.sendall(_head(path) + body)
        r = recv_response(s, "POST")
    _settle(g, origin)
    problems = _problems(g, origin, path, r, before, err_before)
    assert not problems, f"{name}:\n- " + "\n- ".join(problems)


def test_the_issue_input_verbatim(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """`POST /upload` with chunk size `1zz`: 400 + Connection: close, one log line, no ERROR, the
    origin never holds a complete request."""
    g, origin = gw
    before, err_before = origin.mark(), len(g.proc.stderr_text())
    r = g.raw(_head("/upload") + b"1zz\r\nhello\r\n0\r\n\r\n")
    _settle(g, origin)
    problems = _problems(g, origin, "/upload", r, before, err_before)
    assert not problems, "POST /upload with chunk size 1zz:\n- " + "\n- ".join(problems)


@pytest.mark.parametrize("cut", ["after-head", "mid-chunk", "after-a-chunk"])
def test_an_abandoned_chunked_upload_leaves_no_error_spam(gw: tuple[Gateway, RecordingOrigin], cut: str) -> None:
    g, origin = gw
    path = f"/upload/abandoned-{cut}"
    sent = {"after-head": b"", "mid-chunk": b"a\r\nhello", "after-a-chunk": b"5\r\nhello\r\n"}[cut]
    before, err_before = origin.mark(), len(g.proc.stderr_text())
    with socket.create_connection(("127.0.0.1", g.port), timeout=10) as s:
        s.sendall(_head(path) + sent)
        time.sleep(0.3)  # the gateway has the head and has started forwarding
    # The client is gone. The origin may see the forward aborted, but never a finished request.
    wait_for(lambda: len(origin.since(before)[1]) > 0, 1.0)
    _settle(g, origin)
    complete, _ = origin.since(before)
    assert _complete_with_body(complete, path) == [], f"an abandoned upload reached the origin as a complete request: {complete}"
    new_stderr = g.proc.stderr_text()[err_before:]
    assert not ERROR_SPAM.search(new_stderr), f"stderr after one abandoned upload:\n{new_stderr}"
    assert g.get("/__gateway/health").status_code == 200


def test_bytes_after_a_malformed_body_are_never_read_as_a_next_request(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """After a framing error the connection's remaining bytes have no known boundary: the gateway
    answers once and closes (RFC 9112 §7.1 / §9.6); a request pipelined behind the broken body is
    never answered and never forwarded."""
    g, origin = gw
    before = origin.mark()
    smuggled = b"GET /products/smuggled HTTP/1.1\r\nHost: www.example.com\r\nCookie: ab-group=control\r\n\r\n"
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as s:
        s.sendall(_head("/upload/pipelined") + b"1zz\r\nabc\r\n0\r\n\r\n" + smuggled)
        first = recv_response(s, "POST")
        s.settimeout(2)  # a closing server answers EOF at once; an open one would idle here
        try:
            second = recv_response(s, "GET").status
        except (ConnectionError, TimeoutError, OSError):
            second = None
    _settle(g, origin)
    complete, aborted = origin.since(before)
    assert b"/products/smuggled" not in [x.target for x in complete + aborted], "the pipelined request reached the origin"
    assert (first.status, second) == (400, None), f"expected one 400 and then the connection closed, got {first.status} then {second}"


def test_a_well_formed_chunked_upload_still_reaches_the_origin_whole(gw: tuple[Gateway, RecordingOrigin]) -> None:
    """Guard (passes today): the fix must not refuse valid chunked bodies."""
    g, origin = gw
    before = origin.mark()
    r = g.raw(_head("/upload/good") + b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
    assert r.status == 200
    complete, aborted = origin.since(before)
    assert [(s.target, s.body) for s in complete] == [(b"/upload/good", b"hello world")]
    assert aborted == []
