"""`gateway demo`: everything in one command, probed like a new user would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.conftest import (
    GATEWAY_BIN,
    TOKEN_RE,
    LineReader,
    Proc,
    free_port,
    free_port_pair,
    run_cli,
)


@dataclass
class Demo:
    base: str
    port: int
    token: str
    curl_lines: list[str]
    output: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    port, origin_port = free_port(), free_port_pair()
    env = os.environ.copy()
    env.pop("JWT_SECRET", None)  # a new user has none: the demo must make its own
    env["PYTHONUNBUFFERED"] = "1"
    popen = subprocess.Popen(
        [GATEWAY_BIN, "demo", "--listen", f"127.0.0.1:{port}", "--origin-port", str(origin_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(tmp_path_factory.mktemp("demo")),
        start_new_session=True,
    )
    proc = Proc("demo", popen)
    reader = LineReader(popen.stdout)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        healthy = False
        while time.monotonic() < deadline and popen.poll() is None:
            try:
                if httpx.get(base + "/__gateway/health", timeout=1).status_code == 200:
                    healthy = True
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        if not healthy:
            pytest.fail(f"gateway demo did not become healthy (exit {popen.poll()}):\n{reader.text()[-4000:]}", pytrace=False)
        time.sleep(0.2)
        text = reader.text()
        tokens = re.findall(TOKEN_RE, text)
        curl_lines = [ln.strip() for ln in text.splitlines() if re.match(r"^\s*(\$\s*)?curl\s", ln)]
        yield Demo(base, port, tokens[0] if tokens else "", curl_lines, text)
    finally:
        proc.stop()


def test_demo_prints_token_and_three_curl_lines(demo: Demo) -> None:
    assert demo.token, f"no token in the demo's output:\n{demo.output}"
    assert len(demo.curl_lines) >= 3, f"expected three curl lines:\n{demo.output}"
    for line in demo.curl_lines:
        assert f":{demo.port}" in line, f"curl line does not point at the --listen address: {line}"


def test_demo_health(demo: Demo) -> None:
    r = httpx.get(demo.base + "/__gateway/health")
    assert r.status_code == 200 and r.json().get("status") == "ok"


def test_demo_public_path_is_proxied_to_demo_origin(demo: Demo) -> None:
    r = httpx.get(demo.base + "/products?x=1", headers={"cookie": "ab-group=control"})
    assert r.status_code == 200
    data = r.json()
    assert data["path"].endswith("/products") and data["query"] == "x=1" and data["method"] == "GET"


def test_demo_dashboard_without_token_redirects(demo: Demo) -> None:
    r = httpx.get(demo.base + "/dashboard", follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"].startswith("/login?")


def test_demo_dashboard_with_printed_token(demo: Demo) -> None:
    for headers in ({"authorization": f"Bearer {demo.token}"}, {"cookie": f"auth-token={demo.token}"}):
        r = httpx.get(demo.base + "/dashboard/settings", headers=headers, follow_redirects=False)
        assert r.status_code == 200, f"{headers}: {r.status_code} {r.text[:300]}"
        names = {k.lower(): v for k, v in r.json()["headers"]}
        assert names.get("x-user-id"), "the demo token's sub was not forwarded"


def test_demo_curl_lines_work(demo: Demo) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is not on PATH; cannot try the demo's curl lines", pytrace=False)
    for line in demo.curl_lines[:3]:
        cmd = re.sub(r"^\$\s*", "", line.split("  #")[0]).strip()
        r = subprocess.run(["bash", "-c", cmd + " -sS --max-time 10"], check=False, capture_output=True, text=True, timeout=15)
        assert r.returncode == 0, f"{cmd}: {r.stderr}"
        status = re.search(r"HTTP/1\.1 (\d{3})", r.stdout)
        assert status and int(status.group(1)) < 500, f"{cmd}:\n{r.stdout[:500]}"


def test_demo_default_listen_is_8080() -> None:
    r = run_cli(["demo", "--help"])
    assert r.returncode == 0
    assert "--listen" in r.stdout and "--origin-port" in r.stdout
    assert "8080" in r.stdout


def test_demo_ships_a_python_hook(demo: Demo) -> None:
    hook_lines = [ln for ln in demo.curl_lines if "/t/acme/" in ln]
    assert hook_lines, f"no curl line for the demo's hook:\n{demo.output}"
    r = httpx.get(demo.base + "/t/acme/orders", headers={"authorization": f"Bearer {demo.token}", "x-tenant": "spoofed"})
    assert r.status_code == 200, r.text[:300]
    names = {k.lower(): v for k, v in r.json()["headers"]}
    assert names["x-tenant"] == "acme", "the hook's X-Tenant, not the client's"
    r = httpx.get(demo.base + "/t/globex/orders", headers={"authorization": f"Bearer {demo.token}"})
    assert (r.status_code, r.json()) == (403, {"error": "wrong_tenant"})
