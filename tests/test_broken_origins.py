"""Broken origins never take the gateway down, and leave no file descriptors or memory behind.

Real processes: an echo origin told to misbehave per request (X-Echo-Mode), a port with nothing
listening, and `gateway serve`. After thousands of failures the worker's open FDs and RSS are
compared with their values before.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import echo_origin, free_port, gateway_serve, raw_http, rss_kb, worker_pid


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp = tmp_path_factory.mktemp("broken")
    dead_port = free_port()
    with echo_origin(tmp) as origin_port:
        cfg = tmp / "gateway.toml"
        cfg.write_text(
            f"""
[server]
access_log = false
[origins.web]
url = "http://127.0.0.1:{origin_port}"
timeout = "5s"
[origins.dead]
url = "http://127.0.0.1:{dead_port}"
[[routes]]
match = "/slow/:p*"
origin = "web"
timeout = "300ms"
[[routes]]
match = "/dead/:p*"
origin = "dead"
[[routes]]
match = "/:path*"
origin = "web"
"""
        )
        with gateway_serve(cfg) as gw:
            yield gw.base, gw.proc.pid


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_each_failure_maps_to_its_status(gateway: tuple[str, int]) -> None:
    base, _ = gateway
    with httpx.Client(base_url=base, timeout=10) as c:
        assert c.get("/dead/x").status_code == 502
        t = time.monotonic()
        assert c.get("/slow/x", headers={"X-Echo-Sleep": "3"}).status_code == 504
        assert time.monotonic() - t < 2, "504 must come at the route's timeout"
        assert c.get("/m", headers={"X-Echo-Mode": "malformed"}).status_code == 502
        assert c.get("/c", headers={"X-Echo-Mode": "close"}).status_code == 502
        assert c.get("/s", headers={"X-Echo-Status": "503"}).status_code == 503  # an origin's own 5xx passes
        assert c.get("/ok").status_code == 200


def test_reset_mid_body_closes_the_client_connection(gateway: tuple[str, int]) -> None:
    base, _ = gateway
    host, port = base.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"GET /r HTTP/1.1\r\nHost: x\r\nX-Echo-Mode: reset\r\nX-Echo-Bytes: 4000000\r\n\r\n")
    got = b""
    t = time.monotonic()
    while True:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        got += d
        assert time.monotonic() - t < 10, "connection hung instead of closing"
    s.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) < 4000000, "the client must see a short body, not a complete one"
    assert httpx.get(base + "/after", timeout=5).status_code == 200


def test_no_fd_or_memory_leak_after_ten_thousand_failures(gateway: tuple[str, int]) -> None:
    base, pid = gateway
    worker = worker_pid(pid)
    httpx.get(base + "/warm")

    async def hammer(n: int) -> dict[int, int]:
        counts: dict[int, int] = {}
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as c:
            plans = [
                ("/dead/x", {}),
                ("/m", {"X-Echo-Mode": "malformed"}),
                ("/c", {"X-Echo-Mode": "close"}),
                ("/ok", {}),
            ]
            sem = asyncio.Semaphore(32)

            async def one(i: int) -> None:
                path, headers = plans[i % len(plans)]
                async with sem:
                    r = await c.get(path, headers=headers)
                counts[r.status_code] = counts.get(r.status_code, 0) + 1

            await asyncio.gather(*(one(i) for i in range(n)))
        return counts

    asyncio.run(hammer(1000))  # warm pools and allocator
    fds_before, rss_before = open_fds(worker), rss_kb(worker)
    counts = asyncio.run(hammer(10000))
    time.sleep(0.5)
    fds_after, rss_after = open_fds(worker), rss_kb(worker)
    assert counts == {502: 7500, 200: 2500}, counts
    assert fds_after - fds_before <= 8, f"open FDs {fds_before} -> {fds_after}"
    assert rss_after - rss_before < 16 * 1024, f"RSS {rss_before} -> {rss_after} kB"


@pytest.mark.parametrize("status", ["101", "100", "103"])
def test_an_informational_answer_the_gateway_did_not_ask_for_is_a_502(gateway: tuple[str, int], status: str) -> None:
    """The gateway never asks an origin to switch protocols, so an origin's 101 (or a 1xx taken as the
    final answer) would hand the client's connection to whatever the origin speaks next: 502 instead."""
    base, _ = gateway
    raw = f"GET /s HTTP/1.1\r\nHost: t\r\nX-Echo-Status: {status}\r\nConnection: close\r\n\r\n".encode()
    r = raw_http(int(base.rsplit(":", 1)[1]), raw)
    assert r.status == 502, (status, r.status, r.headers)
