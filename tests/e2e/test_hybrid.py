"""examples/hybrid/: the documented command starts two gateway instances, one redis, a web origin and
the Pillow resizer; a rate limit of N per minute holds across both instances, the upload route keeps
its own body limit and timeout, and stopping redis degrades as the config says.

Everything is the example's own: `python examples/hybrid/run.py` with free ports, its gateway.toml, its
resizer. Requests come "from" distinct client addresses through X-Forwarded-For, which the instances
believe because the peer (127.0.0.1) is the example's trusted proxy, as a load balancer would be.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import PYTHON, Proc, free_port, gateway_env, port_is_listening, run_cli, spawn, wait_for

REPO = Path(__file__).resolve().parents[2]
HYBRID = REPO / "examples" / "hybrid"


class Hybrid:
    def __init__(self, proc: Proc, ports: dict[str, int]):
        self.proc = proc
        self.ports = ports
        self.a = f"http://127.0.0.1:{ports['a']}"
        self.b = f"http://127.0.0.1:{ports['b']}"


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hybrid]:
    ports: dict[str, int] = {}
    while len(set(ports.values())) < 5:
        ports = {k: free_port() for k in ("a", "b", "web", "regional", "redis")}
    argv = [
        PYTHON,
        str(HYBRID / "run.py"),
        "--ports",
        f"{ports['a']},{ports['b']}",
        "--web-port",
        str(ports["web"]),
        "--regional-port",
        str(ports["regional"]),
        "--redis-port",
        str(ports["redis"]),
    ]
    proc = spawn("hybrid", argv, tmp_path_factory.mktemp("hybrid"), env=gateway_env())
    try:
        if not wait_for(lambda: "hybrid: up" in proc.stdout_text() or not proc.alive(), 90, 0.2) or not proc.alive():
            pytest.fail(f"the hybrid example did not start:\n{proc.stdout_text()}\n{proc.stderr_text()}", pytrace=False)
        yield Hybrid(proc, ports)
    finally:
        proc.stop(signal.SIGTERM, wait=30)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 60)).save(out, "PNG")
    return out.getvalue()


def test_the_command_says_where_to_go_and_both_instances_read_regions_from_redis(hybrid: Hybrid) -> None:
    text = hybrid.proc.stdout_text()
    assert hybrid.a in text and hybrid.b in text and "Ctrl-C stops everything" in text
    for base in (hybrid.a, hybrid.b):
        r = httpx.get(base + "/products", headers={"cf-ipcountry": "KR"})
        assert r.status_code == 200
        assert r.headers["x-currency"] == "KRW"  # from the one redis, loaded by run.py
        assert r.json()["path"] == "/ko/products"


def test_uploads_are_resized_by_the_regional_origin_with_their_own_body_limit(hybrid: Hybrid) -> None:
    headers = {"x-forwarded-for": "198.51.100.10", "content-type": "image/png"}
    r = httpx.post(hybrid.b + "/api/resize?width=100", content=png(640, 480), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["x-served-by"] == "regional-resizer"
    assert Image.open(io.BytesIO(r.content)).size == (100, 75)
    # 3 MB: over the site's 1 MB max_body, under the resize route's 20 MB: the origin sees it.
    noise = io.BytesIO()
    Image.frombytes("RGB", (1000, 1000), os.urandom(3 * 10**6)).save(noise, "PNG")
    big = noise.getvalue()
    assert len(big) > 3 * 10**6
    r = httpx.post(hybrid.a + "/api/resize?width=50", content=big, headers=headers, timeout=30)
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (50, 50)
    assert httpx.post(hybrid.a + "/api/other", content=big, headers=headers, timeout=30).status_code == 413
    r = httpx.post(hybrid.a + "/api/resize?width=50", content=b"\0" * (21 * 10**6), headers=headers, timeout=60)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    r = httpx.post(hybrid.a + "/api/resize", content=b"not an image", headers=headers, timeout=30)
    assert r.status_code == 400 and r.json()["error"] == "not_an_image"
    # The route's own 30 s timeout, not the web origin's 10 s.
    out = run_cli(["explain", "--config", str(HYBRID / "gateway.toml"), "--method", "POST", "http://localhost/api/resize"])
    assert out.returncode == 0, out.stderr
    assert "timeout 30s, body limit 20000000 bytes" in out.stdout
    assert "uploads (30/m, burst 5, key ip, store redis)" in out.stdout


def test_a_limit_of_n_per_minute_holds_across_both_instances_within_ten_percent(hybrid: Hybrid) -> None:
    limit = tomllib.loads((HYBRID / "gateway.toml").read_text())["limits"]["per_ip"]
    per_minute, burst = int(limit["rate"].split("/")[0]), limit["burst"]
    assert limit["rate"].endswith("/m") and limit["store"] == "redis"
    client_ip = {"x-forwarded-for": "203.0.113.77"}
    counts = {200: 0, 429: 0}
    other: list[int] = []
    sent: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()

    def client(n: int) -> None:
        # Four clients, each alternating between the instances: well over 10 requests a second in all.
        with httpx.Client(base_url=hybrid.a, headers=client_ip) as a, httpx.Client(base_url=hybrid.b, headers=client_ip) as b:
            i = 0
            while (now := time.monotonic()) - start < 6.0:
                status = (a if (i + n) % 2 else b).get(f"/api/items/{n}/{i}").status_code
                with lock:
                    sent.append(now)
                    if status in counts:
                        counts[status] += 1
                    else:
                        other.append(status)
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The window the requests were sent in (thread and connection start-up on a busy machine is not in it).
    elapsed = max(sent) - min(sent)
    assert not other, f"statuses other than 200 and 429: {other[:10]}"
    allowed, refused = counts[200], counts[429]
    # GCRA: burst + 1 at once, then one every 60/N seconds, whichever instance answers.
    expected = burst + 1 + elapsed * per_minute / 60
    print(f"hybrid: {allowed} allowed, {refused} refused in {elapsed:.2f} s across both instances; GCRA expects {expected:.1f}")
    assert refused > 0, f"the client never went over the limit ({allowed} requests in {elapsed:.1f} s): nothing was measured"
    assert abs(allowed - expected) <= 0.10 * expected, f"{allowed} allowed in {elapsed:.2f} s across both instances; expected {expected:.0f} +/- 10 %"


def test_stopping_redis_degrades_as_configured(hybrid: Hybrid) -> None:
    who = {"x-forwarded-for": "192.0.2.200"}
    assert httpx.get(hybrid.a + "/api/before", headers=who).status_code == 200
    subprocess.run(["redis-cli", "-p", str(hybrid.ports["redis"]), "shutdown", "nosave"], capture_output=True, timeout=10)
    assert wait_for(lambda: not port_is_listening(hybrid.ports["redis"]), 10)
    for base in (hybrid.a, hybrid.b):
        # per_ip: on_store_error = "allow" -> served.
        for i in range(3):
            assert httpx.get(f"{base}/api/during/{i}", headers=who, timeout=10).status_code == 200
        # uploads: on_store_error = "deny" -> 503 with Retry-After, the origin never asked.
        r = httpx.post(base + "/api/resize?width=10", content=png(20, 20), headers=who, timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"] == "service_unavailable"
        # KV: the cached value or the default, never an error.
        r = httpx.get(base + "/products", headers={"cf-ipcountry": "KR"}, timeout=10)
        assert r.status_code == 200 and r.headers["x-currency"] in ("KRW", "USD")
    # The example keeps running without redis, and says so.
    assert hybrid.proc.alive()
    assert wait_for(lambda: "redis stopped" in hybrid.proc.stderr_text() + hybrid.proc.stdout_text(), 5)
