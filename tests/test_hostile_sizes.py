"""Bounded inputs (issue 5): huge cookies, huge tokens and thousands of cookies get a fast 4xx, cost
linear CPU, keep memory flat, and never reach the origin; the gateway answers normally afterwards.

Two real gateways in front of real echo origins: one on the default limits (32 KiB of request headers),
where all of these are refused with 431 before any parsing, and one with `max_header_bytes` raised to
1 MB, where they reach the cookie parser and the JWT verifier (whose own 8 KiB token limit refuses the
big tokens before decoding). "No quadratic time" is checked without a clock: the worker's CPU time for
10 000-cookie requests is compared with that for 1 000-cookie requests (linear ~10x; quadratic ~100x).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

import gateway
from tests.harness import SECRET, Gateway, example_site, rss_kb, worker_pid

def _site(tmp: Path, stack: ExitStack, extra_server: str = "") -> Gateway:
    return example_site(tmp, stack, server="access_log = false\n" + extra_server)


@pytest.fixture(scope="module")
def default_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with ExitStack() as stack:
        yield _site(tmp_path_factory.mktemp("default-limits"), stack)


@pytest.fixture(scope="module")
def roomy_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with ExitStack() as stack:
        yield _site(tmp_path_factory.mktemp("roomy-limits"), stack, 'max_header_bytes = "1MB"\n')


def send(site: Gateway, path: str, *headers: bytes) -> tuple[int, dict[str, list[str]], bytes]:
    """Exact bytes on a fresh connection; the whole answer (the gateway closes after refusals)."""
    port = int(site.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: gw\r\n" + b"".join(h + b"\r\n" for h in headers) + b"Connection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    out: dict[str, list[str]] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        out.setdefault(k.strip().lower(), []).append(v.strip())
    return int(lines[0].split()[1]), out, body


def valid_token() -> str:
    now = int(time.time())
    return gateway.encode({"sub": "alice", "iat": now, "exp": now + 600}, SECRET)


def cookies(n: int, first: str = "", last: str = "") -> bytes:
    # Short pairs (5 bytes each) so 10 000 of them still fit the echo origin's 64 KiB header line.
    parts = ([first] if first else []) + [f"{chr(97 + i % 26)}=1" for i in range(n)] + ([last] if last else [])
    return b"Cookie: " + "; ".join(parts).encode()


def never_reached_origin(body: bytes) -> None:
    if body:
        assert "origin" not in json.loads(body), "the echo origin answered: the request got through"


def worker_cpu_seconds(site: Gateway) -> float:
    fields = Path(f"/proc/{worker_pid(site.proc.pid)}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


HOSTILE = {
    "64 KiB cookie": ("/dashboard", b"Cookie: auth-token=" + b"a" * 65536),
    "1 MB bearer token": ("/api/protected/x", b"Authorization: Bearer " + b"a" * 1_000_000),
    "1 MB token in a cookie": ("/dashboard", b"Cookie: auth-token=" + b"a" * 1_000_000),
    "10 000 cookies": ("/dashboard", cookies(10_000)),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_default_limits_refuse_with_431_before_parsing(default_site: Gateway, name: str) -> None:
    path, header = HOSTILE[name]
    status, headers, body = send(default_site, path, header)
    assert status == 431, (name, status, body[:200])
    never_reached_origin(body)
    # ... and the next ordinary request is answered as usual.
    status, headers, _ = send(default_site, "/dashboard")
    assert status == 302 and headers["location"] == ["/login?next=%2Fdashboard"]


def test_a_300_kb_token_reaches_the_verifier_and_is_refused_as_invalid(roomy_site: Gateway) -> None:
    big = "a" * 300_000
    status, headers, body = send(roomy_site, "/dashboard", f"Cookie: auth-token={big}".encode())
    assert status == 302 and headers["location"] == ["/login?next=%2Fdashboard"]
    assert any(c.startswith("auth-token=;") for c in headers.get("set-cookie", [])), headers
    status, headers, body = send(roomy_site, "/api/protected/x", f"Authorization: Bearer {big}".encode())
    assert status == 401 and b"invalid_token" in body
    never_reached_origin(body)
    # A well-formed token that is merely long (over the 8 KiB verifier limit, validly signed) is refused too.
    now = int(time.time())
    long_valid = gateway.encode({"sub": "alice", "iat": now, "exp": now + 600, "pad": "p" * 20_000}, SECRET)
    status, headers, body = send(roomy_site, "/dashboard/x", f"Authorization: Bearer {long_valid}".encode())
    assert status == 302, body[:200]


@pytest.mark.parametrize("junk_before", [0, 4000])
def test_10_000_cookies_are_parsed_and_the_token_among_them_is_found(roomy_site: Gateway, junk_before: int) -> None:
    tok = f"auth-token={valid_token()}"
    header = cookies(junk_before, last=tok) + b"; " + cookies(10_000 - junk_before)[len(b"Cookie: ") :]
    status, _, body = send(roomy_site, "/dashboard/x", header)
    assert status == 200, body[:200]
    seen = {k.lower(): v for k, v in json.loads(body)["headers"]}
    assert seen["x-user-id"] == "alice"


def test_cookies_past_the_4096th_pair_are_not_read(roomy_site: Gateway) -> None:
    # SECURITY.md: the parser reads at most 4096 pairs; a token hidden behind more is simply not
    # seen (the request is anonymous), which bounds the work without ever letting anything through.
    status, headers, body = send(roomy_site, "/dashboard/x", cookies(10_000, last=f"auth-token={valid_token()}"))
    assert status == 302 and headers["location"] == ["/login?next=%2Fdashboard%2Fx"]
    never_reached_origin(body)


def test_cookie_parsing_cost_is_linear_and_memory_stays_flat(roomy_site: Gateway) -> None:
    small, large = cookies(1_000), cookies(10_000)
    for _ in range(5):  # warm up: pools, caches, first-use allocations
        send(roomy_site, "/dashboard", large)
    rss_before = rss_kb(worker_pid(roomy_site.proc.pid))

    def cpu_for(header: bytes, n: int) -> float:
        start = worker_cpu_seconds(roomy_site)
        for _ in range(n):
            status, _, body = send(roomy_site, "/dashboard", header)
            assert status == 302
            never_reached_origin(body)
        return worker_cpu_seconds(roomy_site) - start

    base = cpu_for(b"Cookie: a=1", 200)
    t_small = cpu_for(small, 200)
    t_large = cpu_for(large, 200)
    # Per-request overhead (base) is common to both; what grows with the cookie count must grow ~10x
    # for 10x the cookies. Quadratic parsing would make it ~100x. Clock ticks are 10 ms: keep slack.
    grow_small = max(t_small - base, 0.05)
    grow_large = max(t_large - base, 0.0)
    assert grow_large < 40 * grow_small, (base, t_small, t_large)
    assert t_large < 30, f"200 requests with 10 000 cookies took {t_large:.1f} s of CPU"
    rss_after = rss_kb(worker_pid(roomy_site.proc.pid))
    assert rss_after - rss_before < 20_000, (rss_before, rss_after)
