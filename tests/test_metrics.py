"""`[server] metrics_listen`: a real `gateway serve` with 2 workers, real traffic, /metrics scraped over
HTTP and read with prometheus_client's own parser (issue 12).

Figures reach the multiprocess files within a second (gateway.metrics.FLUSH_SECONDS), so the tests
poll the scrape until it holds what was sent — a wait with a deadline, never a timing assertion.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli import mint_token
from tests.harness import GATEWAY_BIN, PYTHON, SECRET, Gateway, echo_origin, free_port, gateway_env, gateway_serve, spawn, wait_for, write_config

ROUTES = {"/api/:path*", "/pub/:path*", "/down/:path*"}


def config_text(metrics_port: int, web: int, down: int) -> str:
    return f"""
[server]
metrics_listen = "127.0.0.1:{metrics_port}"
request_id = "X-Request-Id"
trace = true

[origins.web]
url = "http://127.0.0.1:{web}"

[origins.down]
url = "http://127.0.0.1:{down}"
timeout = "3s"

[auth.api]
secret = "env:JWT_SECRET"
token_from = ["bearer"]

[[routes]]
match = "/api/:path*"
auth = "api"
origin = "web"

[[routes]]
match = "/pub/:path*"
origin = "web"

[[routes]]
match = "/down/:path*"
origin = "down"
"""


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int, path: str = "/metrics") -> Samples:
    r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def metrics_dir(gw: Gateway) -> Path:
    """The private directory the workers write their figures to: the files their processes map."""
    for pid in worker_pids(gw):
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            path = line.split(maxsplit=5)[-1]
            if path.endswith(".db") and "/gateway-metrics-" in path:
                return Path(path).parent
    raise AssertionError("no worker has a metrics file mapped")


def _mapped(gw: Gateway) -> bool:
    try:
        metrics_dir(gw)
    except AssertionError:
        return False
    return True


def worker_pids(gw: Gateway) -> set[int]:
    return {int(p) for p in Path(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children").read_text().split()}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Gateway, int]]:
    with ExitStack() as stack:
        web = stack.enter_context(echo_origin(tmp_path, "web"))
        mport = free_port()
        path = write_config(tmp_path, config_text(mport, web, free_port()))
        gw = stack.enter_context(gateway_serve(path, workers=2))
        yield gw, mport


def fresh(gw: Gateway, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request on a new connection, so the two workers share the traffic."""
    with httpx.Client(base_url=gw.base, timeout=15) as c:
        return c.request(method, path, **kw)


def test_figures_are_summed_across_workers_with_bounded_labels(site: tuple[Gateway, int]) -> None:
    gw, mport = site
    good = mint_token(SECRET, {"sub": "alice"}, 600)
    sent = {"pub": 0, "api_missing": 0, "api_invalid": 0, "api_valid": 0, "down": 0, "other": 0}
    for i in range(20):
        assert fresh(gw, "GET", f"/pub/a{i}").status_code == 200
        sent["pub"] += 1
    for _ in range(2):
        assert fresh(gw, "POST", "/pub/form", content=b"x=1").status_code == 200
    for _ in range(5):
        assert fresh(gw, "GET", "/api/me").status_code == 401
        sent["api_missing"] += 1
    for _ in range(3):
        assert fresh(gw, "GET", "/api/me", headers={"authorization": f"Bearer {good[:-2]}xx"}).status_code == 401
        sent["api_invalid"] += 1
    for _ in range(4):
        assert fresh(gw, "GET", "/api/me", headers={"authorization": f"Bearer {good}"}).status_code == 200
        sent["api_valid"] += 1
    for _ in range(3):
        assert fresh(gw, "GET", "/down/x").status_code == 502
        sent["down"] += 1
    # An extension method is forwarded, and counted under _OTHER (OpenTelemetry's bound on methods).
    assert fresh(gw, "BREW", "/pub/pot").status_code == 501
    # 200 paths no route takes: one series, "unmatched", whatever the paths were.
    randoms = [f"/r-{uuid.uuid4().hex}" for _ in range(200)]
    for p in randoms:
        assert fresh(gw, "GET", p).status_code == 404

    def complete() -> bool:
        s = scrape(mport)
        return value(s, "http_server_request_duration_seconds_count", http_route="unmatched", http_request_method="GET", http_response_status_code="404") == 200 and (
            total(s, "http_server_request_duration_seconds_count", http_route="/pub/:path*") == 23
        )

    assert wait_for(complete, 15, 0.2), scrape(mport)
    s = scrape(mport)

    # Both workers recorded (each has its own files in the private directory), and the scrape is the sum.
    directory = metrics_dir(gw)
    assert directory.stat().st_mode & 0o777 == 0o700
    writers = {int(f.stem.rsplit("_", 1)[1]) for f in directory.glob("histogram_*.db")}
    assert len(writers) == 2 and writers == worker_pids(gw), (writers, worker_pids(gw))

    req = "http_server_request_duration_seconds"
    assert value(s, f"{req}_count", http_route="/pub/:path*", http_request_method="GET", http_response_status_code="200") == 20
    assert value(s, f"{req}_count", http_route="/pub/:path*", http_request_method="POST", http_response_status_code="200") == 2
    assert value(s, f"{req}_count", http_route="/pub/:path*", http_request_method="_OTHER", http_response_status_code="501") == 1
    assert value(s, f"{req}_count", http_route="/api/:path*", http_request_method="GET", http_response_status_code="401") == 8
    assert value(s, f"{req}_count", http_route="/api/:path*", http_request_method="GET", http_response_status_code="200") == 4
    assert value(s, f"{req}_count", http_route="/down/:path*", http_request_method="GET", http_response_status_code="502") == 3
    # Buckets are cumulative and end at the count; the sum is a real duration.
    labels = {"http_route": "/pub/:path*", "http_request_method": "GET", "http_response_status_code": "200"}
    buckets = sorted(((float(dict(ls)["le"]), v) for (n, ls), v in s.items() if n == f"{req}_bucket" and set(labels.items()) <= ls), key=lambda b: b[0])
    assert [le for le, _ in buckets][-1] == float("inf") and buckets[-1][1] == 20
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert 0 < value(s, f"{req}_sum", **labels) < 20 * 15

    # The time the gateway adds, per route; the origin's time, per origin.
    assert total(s, "gateway_overhead_duration_seconds_count", http_route="/pub/:path*") == 23
    assert total(s, "gateway_overhead_duration_seconds_count", http_route="unmatched") == 200
    assert value(s, "gateway_upstream_duration_seconds_count", origin="web") == 20 + 2 + 1 + 4
    assert value(s, "gateway_upstream_duration_seconds_count", origin="down") == 3
    assert value(s, "gateway_auth_total", policy="api", outcome="missing") == 5
    assert value(s, "gateway_auth_total", policy="api", outcome="invalid") == 3
    assert value(s, "gateway_auth_total", policy="api", outcome="valid") == 4
    assert value(s, "gateway_upstream_errors_total", origin="down", kind="upstream_connect") == 3
    assert total(s, "gateway_upstream_errors_total", origin="web") == 0

    # Bounded labels: routes from the config and the two fixed values, never a raw path.
    routes = {dict(ls)["http_route"] for (n, ls), _ in s.items() if "http_route" in dict(ls)}
    assert routes <= ROUTES | {"unmatched", "/__gateway/health"}, routes
    every_value = {v for (_, ls), _ in s.items() for _, v in ls}
    assert not any(p.lstrip("/") in v for p in randoms for v in every_value)
    assert not any("alice" in v or good[:20] in v for v in every_value)
    assert len(s) < 600, len(s)


def test_metrics_are_on_their_own_listener_only(site: tuple[Gateway, int]) -> None:
    gw, mport = site
    for path in ("/__gateway/metrics", "/metrics"):
        r = gw.get(path)
        assert r.status_code == 404 and b"http_server_request_duration_seconds" not in r.content, (path, r.status_code)
    assert fresh(gw, "GET", "/pub/x").status_code == 200
    base = f"http://127.0.0.1:{mport}"
    for path in ("/", "/metric", "/metrics/x", "/pub/x"):
        r = httpx.get(base + path, timeout=10)
        assert r.status_code == 404 and b"http_server" not in r.content, path
    assert httpx.get(base + "/metrics?name[]=x", timeout=10).status_code == 200
    head = httpx.head(base + "/metrics", timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert httpx.post(base + "/metrics", content=b"x", timeout=10).status_code == 501
    # OpenMetrics when the scraper asks for it (Prometheus does), from prometheus_client's encoder.
    om = httpx.get(base + "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}, timeout=10)
    assert om.headers["content-type"].startswith("application/openmetrics-text") and om.text.rstrip().endswith("# EOF")
    # Scrapes are not requests through the gateway: no access-log lines for them.
    assert not any("metrics" in str(e.get("path")) and e.get("status") == 200 for e in gw.log_entries())


def test_a_killed_worker_figures_stay_and_its_replacement_adds_to_them(site: tuple[Gateway, int]) -> None:
    gw, mport = site
    for i in range(30):
        assert fresh(gw, "GET", f"/pub/{i}").status_code == 200
    count = "http_server_request_duration_seconds_count"
    labels = {"http_route": "/pub/:path*", "http_request_method": "GET", "http_response_status_code": "200"}
    assert wait_for(lambda: value(scrape(mport), count, **labels) == 30, 15, 0.2)
    before = worker_pids(gw)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: len(worker_pids(gw)) == 2 and victim not in worker_pids(gw), 30, 0.2), worker_pids(gw)
    # A counter never goes backwards: the dead worker's flushed figures are still in the sum.
    assert value(scrape(mport), count, **labels) == 30
    for i in range(10):
        assert fresh(gw, "GET", f"/pub/{i}").status_code == 200
    assert wait_for(lambda: value(scrape(mport), count, **labels) == 40, 15, 0.2), value(scrape(mport), count, **labels)


def test_the_metrics_directory_is_removed_when_serve_stops(tmp_path: Path) -> None:
    with echo_origin(tmp_path, "web") as web:
        mport = free_port()
        path = write_config(tmp_path, config_text(mport, web, free_port()))
        with gateway_serve(path) as gw:
            assert gw.get("/pub/x").status_code == 200
            found: list[Path] = []
            assert wait_for(lambda: found.append(metrics_dir(gw)) is None if _mapped(gw) else False, 10)
            directory = found[0]
            assert directory.is_dir()
            assert f"metrics at http://127.0.0.1:{mport}/metrics" in gw.proc.stderr_text()
        assert wait_for(lambda: not directory.exists(), 10)


def test_a_busy_metrics_port_is_refused_at_start_with_the_key(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        mport = busy.getsockname()[1]
        path = write_config(tmp_path, config_text(mport, free_port(), free_port()))
        r = subprocess.run([GATEWAY_BIN, "serve", "--config", str(path), "--listen", f"127.0.0.1:{free_port()}"], env=gateway_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{mport}" in r.stderr and "server.metrics_listen" in r.stderr, r.stderr


def test_open_websockets_of_a_dead_worker_are_forgotten(tmp_path: Path) -> None:
    """gateway_websockets_open is a live sum: a worker that dies takes its connections with it
    (prometheus_client's mark_process_dead, run by the listener at each scrape)."""
    from gateway import metrics

    directory = tmp_path / "m"
    directory.mkdir(mode=0o700)
    code = (
        "import signal\n"
        "from gateway import metrics, observe\n"
        "assert metrics.start_worker()\n"
        "observe.websocket_opened('/ws/:room'); observe.websocket_opened('/ws/:room'); observe.websocket_closed('/ws/:room')\n"
        "observe.websocket_opened('/chat')\n"
        "observe.key_set_fetch('sso', 'ok'); observe.key_set_fetch('sso', 'error'); observe.key_set_fetch('sso', 'ok')\n"
        # A request a rate limit decided (the fields the rate-limit stage sets), through the single exit.
        "import time\n"
        "from gateway.config import load\n"
        "from gateway.context import RequestContext\n"
        "from gateway.request import from_url\n"
        "cfg = load('g.toml', '[server]\\naccess_log = false\\n[origins.web]\\nurl = \"http://127.0.0.1:9\"\\n[[routes]]\\nmatch = \"/api/:path*\"\\norigin = \"web\"\\n')\n"
        "for decision in ('allowed', 'allowed', 'limited'):\n"
        "    ctx = RequestContext(cfg, from_url('GET', '/api/x', [], '127.0.0.1'), None, time.perf_counter())\n"
        "    ctx.route = cfg.routes[0]; ctx.status = 429 if decision == 'limited' else 200\n"
        "    ctx.rate_limit = ('per_ip', decision)\n"
        "    observe.request_done(ctx)\n"
        "print('ready', flush=True)\n"
        "signal.pause()\n"
    )
    worker = spawn("fake-worker", [PYTHON, "-c", code], tmp_path / "logs", env=gateway_env({"GATEWAY_METRICS_DIR": str(directory)}))
    port = free_port()
    listener = metrics.start_listener("127.0.0.1", port, str(directory))
    try:
        assert wait_for(lambda: "ready" in worker.stdout_text(), 20), worker.stderr_text()
        s = scrape(port)
        assert value(s, "gateway_websockets_open", http_route="/ws/:room") == 1
        assert value(s, "gateway_websockets_open", http_route="/chat") == 1
        # Outside a request (no event loop), counts are written through at once.
        assert value(s, "gateway_key_set_fetches_total", policy="sso", outcome="ok") == 2
        assert value(s, "gateway_key_set_fetches_total", policy="sso", outcome="error") == 1
        assert value(s, "gateway_rate_limit_total", limit="per_ip", decision="allowed") == 2
        assert value(s, "gateway_rate_limit_total", limit="per_ip", decision="limited") == 1
        assert value(s, "http_server_request_duration_seconds_count", http_route="/api/:path*", http_request_method="GET", http_response_status_code="429") == 1
        worker.stop(signal.SIGKILL)
        worker.popen.wait(10)
        s = scrape(port)
        assert value(s, "gateway_websockets_open", http_route="/ws/:room") == 0
        assert value(s, "gateway_key_set_fetches_total", policy="sso", outcome="ok") == 2  # counters stay
    finally:
        listener.shutdown()
        listener.server_close()
        worker.stop()


def test_idle_connections_to_the_metrics_port_are_bounded(tmp_path: Path) -> None:
    """A flood of connections that say nothing holds at most MAX_SCRAPES threads; the rest are closed
    at once, and once the flood goes, scrapes are answered again."""
    import socket

    from gateway import metrics

    directory = tmp_path / "m"
    directory.mkdir(mode=0o700)
    port = free_port()
    listener = metrics.start_listener("127.0.0.1", port, str(directory))
    idle = []
    try:
        for _ in range(metrics.MAX_SCRAPES):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        # Every slot is held by a connection that sends nothing: the next one is closed unanswered.
        extra = socket.create_connection(("127.0.0.1", port), timeout=5)
        extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for(lambda: _closed(extra), 10)
        extra.close()
        for s in idle:
            s.close()
        assert wait_for(lambda: _scrapes(port), 10)
    finally:
        for s in idle:
            s.close()
        listener.shutdown()
        listener.server_close()


def _closed(sock: Any) -> bool:
    import socket

    try:
        return sock.recv(1) == b""
    except socket.timeout:  # still open, and silent
        return False
    except OSError:  # reset
        return True


def _scrapes(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_open_websocket_is_counted_while_it_lasts(tmp_path: Path) -> None:
    """gateway_websockets_open follows a real session through the gateway: 1 while it is open, 0
    once the client has closed it (the proxy calls observe.websocket_opened/closed)."""
    import asyncio

    from websockets.asyncio.client import connect

    from tests.ws_origin import WSOrigin

    origin = WSOrigin()
    try:
        mport = free_port()
        path = write_config(
            tmp_path,
            f"""
[server]
metrics_listen = "127.0.0.1:{mport}"

[origins.ws]
url = "http://127.0.0.1:{origin.port}"

[[routes]]
match = "/room/:path*"
origin = "ws"
""",
        )
        with gateway_serve(path, workers=1) as gw:

            def open_now() -> float:
                return total(scrape(mport), "gateway_websockets_open")

            async def session() -> None:
                async with connect(f"ws://127.0.0.1:{gw.port}/room/a") as ws:
                    await ws.send("hi")
                    assert await ws.recv() == "hi"
                    assert await asyncio.to_thread(wait_for, lambda: open_now() == 1, 10), scrape(mport)

            asyncio.run(session())
            assert wait_for(lambda: open_now() == 0, 10), scrape(mport)
    finally:
        origin.close()
