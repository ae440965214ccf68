"""SIGHUP reloads the config under load without failing a request; a bad config is refused."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.harness import echo_origin, gateway_serve

CONFIG = """
[server]
access_log = false
[origins.web]
url = "http://127.0.0.1:{port}"
[[routes]]
match = "/:path*"
origin = "web"
response_headers = {{ "X-Config" = "{version}" }}
"""


def test_reload_under_load_drops_nothing_and_refuses_a_bad_config(tmp_path: Path) -> None:
    with echo_origin(tmp_path) as port:
        cfg = tmp_path / "gateway.toml"
        cfg.write_text(CONFIG.format(port=port, version="one"))
        with gateway_serve(cfg) as gw:
            stop = threading.Event()
            seen: dict[str, int] = {}
            failures: list[str] = []

            def load() -> None:
                with httpx.Client(base_url=gw.base, timeout=10) as c:
                    while not stop.is_set():
                        try:
                            r = c.get("/x")
                        except httpx.HTTPError as e:
                            failures.append(repr(e))
                            continue
                        if r.status_code != 200:
                            failures.append(f"status {r.status_code}")
                        v = r.headers.get("x-config", "?")
                        seen[v] = seen.get(v, 0) + 1

            threads = [threading.Thread(target=load) for _ in range(4)]
            for t in threads:
                t.start()
            try:
                time.sleep(1)
                cfg.write_text(CONFIG.format(port=port, version="two"))
                gw.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 15
                while httpx.get(gw.base + "/y").headers.get("x-config") != "two":
                    assert time.monotonic() < deadline, "the new config never took effect"
                    time.sleep(0.2)
                time.sleep(1.5)  # let the old worker stop while the load continues
                cfg.write_text("this is [not valid toml")
                gw.proc.send_signal(signal.SIGHUP)
                time.sleep(4)
            finally:
                stop.set()
                for t in threads:
                    t.join()
            assert not failures, failures[:5]
            assert seen.get("one", 0) > 0 and seen.get("two", 0) > 0, seen
            assert set(seen) <= {"one", "two"}, seen
            # The bad file was refused: still serving "two", and the refusal is logged with the problem.
            assert httpx.get(gw.base + "/z").headers["x-config"] == "two"
            log = gw.stderr.read_text()
            assert "(toml)" in log and "expected valid TOML" in log and "still serving the previous config" in log
