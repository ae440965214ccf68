"""Graceful drain: SIGTERM to `gateway serve` while requests are in flight to a slow origin.

Requests count as in flight once the origin has received them (the slow origin here, a threaded
HTTP server in the test process, counts each one as it arrives, then sleeps); every one of them must complete with 200, and the gateway must exit 0. `drain_timeout`
bounds the wait: a request slower than it is cut and the gateway still exits. (WebSocket sessions
closed with 1001 on SIGTERM: tests/test_websocket.py.)
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.harness import gateway_serve, wait_for, write_config


class SlowOrigin(ThreadingHTTPServer):
    """Answers every GET after `X-Sleep` seconds; `arrived` lists the paths as they arrive."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.arrived: list[str] = []
        self.lock = threading.Lock()
        self.port = self.server_address[1]

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(1 for p in self.arrived if p.startswith(prefix))


class _SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SlowOrigin

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        with self.server.lock:
            self.server.arrived.append(self.path)
        time.sleep(float(self.headers.get("X-Sleep", "0")))
        body = b"done " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


@contextmanager
def slow_origin() -> Iterator[SlowOrigin]:
    origin = SlowOrigin()
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    try:
        yield origin
    finally:
        origin.shutdown()
        origin.server_close()

CONFIG = """
[server]
drain_timeout = "{drain}"

[origins.slow]
url = "http://127.0.0.1:{port}"
timeout = "60s"

[[routes]]
match = "/:p*"
origin = "slow"
"""

CLIENTS = 24


def test_sigterm_under_load_fails_no_request_in_flight(tmp_path: Path) -> None:
    with slow_origin() as origin:
        path = write_config(tmp_path, CONFIG.format(drain="20s", port=origin.port))
        with gateway_serve(path, workers=2) as gw:

            async def load() -> list[int | str]:
                limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
                async with httpx.AsyncClient(base_url=gw.base, timeout=30, limits=limits) as client:

                    async def one(i: int) -> int | str:
                        try:
                            r = await client.get(f"/slow/{i}", headers={"X-Sleep": "3"})
                            return r.status_code
                        except httpx.HTTPError as e:
                            return f"{type(e).__name__}: {e}"

                    tasks = [asyncio.ensure_future(one(i)) for i in range(CLIENTS)]
                    # SIGTERM once every request has reached the origin: all of them are in flight
                    # (unless the machine is so slow that the first ones are answered already).
                    while origin.count("/slow/") < CLIENTS:
                        await asyncio.sleep(0.02)
                    gw.proc.send_signal(signal.SIGTERM)
                    in_flight[0] = sum(1 for t in tasks if not t.done())
                    return list(await asyncio.gather(*tasks))

            in_flight = [0]
            results = asyncio.run(asyncio.wait_for(load(), 60))
            assert in_flight[0] >= CLIENTS // 2, f"only {in_flight[0]} requests were in flight at SIGTERM"
            failed = [r for r in results if r != 200]
            assert failed == [], f"{len(failed)} of {CLIENTS} in-flight requests failed: {failed[:3]}"
            gw.proc.popen.wait(30)
            assert gw.proc.returncode == 0, gw.proc.stderr_text()[-2000:]


def test_drain_timeout_bounds_the_wait(tmp_path: Path) -> None:
    with slow_origin() as origin:
        path = write_config(tmp_path, CONFIG.format(drain="1s", port=origin.port))
        with gateway_serve(path) as gw:

            async def slow_request() -> str:
                async with httpx.AsyncClient(base_url=gw.base, timeout=60) as client:
                    task = asyncio.ensure_future(client.get("/slow/forever", headers={"X-Sleep": "15"}))
                    while origin.count("/slow/forever") < 1:
                        await asyncio.sleep(0.02)
                    gw.proc.send_signal(signal.SIGTERM)
                    try:
                        r = await task
                        return f"answered {r.status_code}"
                    except httpx.HTTPError as e:
                        return type(e).__name__

            outcome = asyncio.run(asyncio.wait_for(slow_request(), 50))
            # The request outlived drain_timeout: its worker was stopped, the connection cut.
            assert not outcome.startswith("answered 200"), outcome
            assert wait_for(lambda: not gw.proc.alive(), 20)
            assert gw.proc.returncode == 0
