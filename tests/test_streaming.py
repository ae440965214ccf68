"""Bodies stream through the gateway in bounded memory, both ways, over real sockets.

A real echo origin and a real `gateway serve` process; the gateway worker's RSS is read from
/proc while a 1 GB upload passes and while a slow client downloads from a fast origin.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import echo_origin, gateway_serve, rss_kb, worker_pid

SECRET = "s" * 40


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp = tmp_path_factory.mktemp("stream")
    with echo_origin(tmp) as origin_port:
        cfg = tmp / "gateway.toml"
        cfg.write_text(
            f"""
[server]
access_log = false
[origins.web]
url = "http://127.0.0.1:{origin_port}"
timeout = "60s"
[[routes]]
match = "/upload"
methods = ["POST", "PUT"]
origin = "web"
max_body = "2GB"
[[routes]]
match = "/:path*"
origin = "web"
"""
        )
        with gateway_serve(cfg) as gw:
            yield gw.base, gw.proc.pid


def test_one_gigabyte_upload_streams_in_bounded_memory(gateway: tuple[str, int]) -> None:
    base, pid = gateway
    worker = worker_pid(pid)
    httpx.get(base + "/warm")
    idle = rss_kb(worker)
    chunk = os.urandom(1 << 20)
    total = 1 << 30
    digest = hashlib.sha256()
    peak = idle

    def body() -> Iterator[bytes]:
        nonlocal peak
        sent = 0
        while sent < total:
            digest.update(chunk)
            sent += len(chunk)
            if sent % (64 << 20) == 0:
                peak = max(peak, rss_kb(worker))
            yield chunk

    r = httpx.post(base + "/upload", content=body(), timeout=120)
    assert r.status_code == 200
    echoed = r.json()
    assert echoed["body_length"] == total
    assert echoed["body_sha256"] == digest.hexdigest()
    peak = max(peak, rss_kb(worker))
    # "Within a few MB of idle": chunks are bounded (4 in flight), never the body.
    assert peak - idle < 48 * 1024, f"RSS grew {(peak - idle) / 1024:.1f} MB during a 1 GB upload"


def test_slow_client_does_not_make_the_gateway_buffer_a_fast_origin(gateway: tuple[str, int]) -> None:
    base, pid = gateway
    worker = worker_pid(pid)
    idle = rss_kb(worker)
    host, port = base.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nX-Echo-Bytes: 500000000\r\n\r\n")
    got = 0
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        got += len(s.recv(8192))
        time.sleep(0.002)
    grown = rss_kb(worker) - idle
    s.close()
    assert got > 0
    # The origin would send 500 MB at loopback speed; the gateway holds only what the client took.
    assert grown < 32 * 1024, f"RSS grew {grown / 1024:.1f} MB while a slow client read {got} bytes"
    # And the gateway still answers normally afterwards.
    assert httpx.get(base + "/after").status_code == 200


def test_large_download_arrives_intact(gateway: tuple[str, int]) -> None:
    base, _ = gateway
    with httpx.stream("GET", base + "/big", headers={"X-Echo-Bytes": str(50 << 20)}, timeout=60) as r:
        assert r.status_code == 200
        n = sum(len(c) for c in r.iter_bytes())
    assert n == 50 << 20
