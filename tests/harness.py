"""Real processes for end-to-end tests: echo origins, redis-server and `gateway serve`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

import gateway
from gateway.cli import EXAMPLE_CATCH_ALL, example_config_text

SECRET = "e2e-secret-e2e-secret-e2e-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited early with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def worker_pid(parent: int) -> int:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    assert children, "granian worker not found"
    return int(children[0])


@contextmanager
def echo_origin(tmp: Path, name: str = "echo") -> Iterator[int]:
    port = free_port()
    # Output to files: an unread pipe fills up and blocks the process writing to it.
    p = subprocess.Popen(
        [sys.executable, "-m", "gateway.echo", "--listen", f"127.0.0.1:{port}", "--name", name],
        stderr=(tmp / f"origin-{name}-{port}.log").open("wb"),
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", p)
        yield port
    finally:
        stop(p)


@contextmanager
def redis_server(tmp: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not on PATH: install it (apt-get install redis-server); .ci/run does"
    port = free_port()
    p = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=(tmp / f"redis-{port}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, p)
        yield port, p
    finally:
        stop(p)


class Gateway:
    def __init__(self, proc: subprocess.Popen[bytes], base: str, stdout: Path, stderr: Path):
        self.proc = proc
        self.base = base
        self.stdout = stdout
        self.stderr = stderr

    def log_lines(self) -> list[str]:
        return [ln for ln in self.stdout.read_text().splitlines() if ln.startswith("{")]


@contextmanager
def gateway_serve(config: Path, env: dict[str, str] | None = None, workers: int = 1) -> Iterator[Gateway]:
    port = free_port()
    out, err = config.with_suffix(f".{port}.stdout"), config.with_suffix(f".{port}.stderr")
    p = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}", "--workers", str(workers)],
        stdout=out.open("wb"),
        stderr=err.open("wb"),
        env={**os.environ, "JWT_SECRET": SECRET, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(base + "/__gateway/health", p)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n--- gateway stderr ---\n{err.read_text()}") from None
        yield Gateway(p, base, out, err)
    finally:
        stop(p)


def raw_request(base: str, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Sends exact bytes (no client-side normalization) and parses one response."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), v.strip())
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body


EXAMPLES = Path(gateway.__file__).parent / "examples"


def example_config(web: int, regional: int, *, before_catch_all: str = "", tables: str = "", server: str = "", trusted: str | None = None) -> str:
    """The README's example config on these origin ports. `before_catch_all` adds routes where they
    can match, `tables` adds top-level tables (origins, experiments), `server` adds `[server]` keys."""
    text = example_config_text(web, regional)
    if trusted is not None:
        text = text.replace('trusted_proxies = ["127.0.0.1/32", "::1/128"]', f"trusted_proxies = {trusted}", 1)
    if server:
        text = text.replace("[server]\n", "[server]\n" + server.rstrip("\n") + "\n", 1)
    at = text.index(EXAMPLE_CATCH_ALL)
    return text[:at] + tables + before_catch_all + "\n" + text[at:]


def example_site(tmp: Path, stack: ExitStack, **config: str) -> Gateway:
    """Two echo origins ("web", "regional") and `gateway serve` on the example config (see
    `example_config` for the keywords); everything is stopped when `stack` closes."""
    web = stack.enter_context(echo_origin(tmp, "web"))
    regional = stack.enter_context(echo_origin(tmp, "regional"))
    (tmp / "gateway.toml").write_text(example_config(web, regional, **config))
    (tmp / "regions.json").write_text((EXAMPLES / "regions.json").read_text())
    return stack.enter_context(gateway_serve(tmp / "gateway.toml"))
