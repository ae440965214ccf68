"""Real processes for end-to-end tests: echo origins, redis-server and `gateway serve`, plus a raw
HTTP/1.1 client. Shared by tests/*.py and tests/e2e/ (whose conftest re-exports what its tests use).

Processes are started in their own session and their logs go to files (an unread pipe fills up and
blocks the child); stopping one also kills whatever is left in its process group (Granian workers,
demo origins).

- ports: ``free_port()``, ``free_port_pair()``, ``port_is_listening(port)``
- processes: ``spawn(name, argv, logdir)`` -> ``Proc``; ``stop(*procs)``; ``wait_for(predicate, timeout)``
- ``start_echo(tmp, name)`` / ``echo_origin(tmp, name)``: ``python -m gateway.echo``
- ``start_redis(tmp)`` / ``redis_server(tmp)``: a throwaway redis-server
- ``start_gateway(config)`` / ``gateway_serve(config)``: ``gateway serve`` -> ``Gateway``
- ``example_config(web, regional, ...)`` / ``example_site(tmp, stack)``: the README's example config
- ``raw_http(port, bytes)`` / ``raw_get(port, target)`` / ``raw_request(base, bytes)``: exact bytes out
- ``rss_kb(pid)``, ``cpu_seconds(pid)``, ``worker_pid(parent)``: a Granian worker's resources
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gateway
import httpx
import pytest
from gateway.cli import EXAMPLE_CATCH_ALL, example_config_text

# At least 32 bytes, as HS256 requires (51: tests mint HS512 tokens over it on purpose, too short for it).
SECRET = "e2e-jwt-secret-0123456789abcdefghijklmnopqrstuvwxyz"
STARTUP_TIMEOUT = 20.0

REPO = Path(__file__).resolve().parents[1]
_VENV_GATEWAY = REPO / ".venv" / "bin" / "gateway"
# The installed console script, as a user runs it.
GATEWAY_BIN = str(_VENV_GATEWAY) if _VENV_GATEWAY.exists() else shutil.which("gateway") or "gateway"
PYTHON = sys.executable
EXAMPLES = Path(gateway.__file__).parent / "examples"


# --------------------------------------------------------------------------------------------
# ports
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_pair(avoid: int | None = None) -> int:
    """A port P such that P and P+1 are both free (the demo's web and regional origins)."""
    for _ in range(200):
        p = free_port()
        if p < 65000 and avoid not in (p, p + 1) and _port_free(p + 1):
            return p
    raise RuntimeError("no free pair of adjacent ports")


def port_is_listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------


def _read(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")


@dataclass
class Proc:
    """A process started by the tests, in its own session so its children can be stopped too."""

    name: str
    popen: subprocess.Popen[bytes]
    stdout_path: Path | None = None
    stderr_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def args(self) -> Any:
        return self.popen.args

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send_signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def stderr_text(self) -> str:
        return _read(self.stderr_path)

    def stdout_text(self) -> str:
        return _read(self.stdout_path)

    def stop(self, sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
        p = self.popen
        pgid = None
        try:
            pgid = os.getpgid(p.pid)
        except OSError:
            pass
        if p.poll() is None:
            try:
                p.send_signal(sig)
            except OSError:
                pass
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        # Anything left in the process group we created (e.g. Granian workers, demo origins).
        if pgid is not None and pgid == p.pid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass


def spawn(name: str, argv: list[str], logdir: Path, env: dict[str, str] | None = None, cwd: str | None = None) -> Proc:
    logdir.mkdir(parents=True, exist_ok=True)
    stamp = f"{name}-{time.monotonic_ns()}"
    out, err = logdir / f"{stamp}.stdout", logdir / f"{stamp}.stderr"
    # Files, not pipes: an unread pipe fills up and blocks the child.
    with out.open("wb") as fout, err.open("wb") as ferr:
        popen = subprocess.Popen(
            argv,
            stdout=fout,
            stderr=ferr,
            stdin=subprocess.DEVNULL,
            env=env if env is not None else os.environ.copy(),
            cwd=cwd,
            start_new_session=True,
        )
    return Proc(name, popen, out, err)


def stop(*procs: Proc | subprocess.Popen[bytes]) -> None:
    """SIGTERM them all, then wait for each (SIGKILL after 10 s)."""
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except OSError:
                pass
    for p in procs:
        if isinstance(p, Proc):
            p.stop()
            continue
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def wait_http(url: str, proc: Proc | subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Until `url` answers anything over HTTP; fails early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited early with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wait_port(port: int, proc: Proc | subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited early with {proc.returncode}")
        if port_is_listening(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads) so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(parent: int) -> int:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    assert children, "granian worker not found"
    return int(children[0])


# --------------------------------------------------------------------------------------------
# echo origins and redis
# --------------------------------------------------------------------------------------------


def start_echo(tmp: Path, name: str = "echo", verbose: bool = False) -> tuple[Proc, int]:
    """`python -m gateway.echo` on a free port, ready when it answers HTTP. With `verbose`, it logs
    one line per request it receives to its stderr (``proc.stderr_text()``)."""
    port = free_port()
    argv = [PYTHON, "-m", "gateway.echo", "--listen", f"127.0.0.1:{port}", "--name", name] + (["--verbose"] if verbose else [])
    proc = spawn(f"origin-{name}", argv, tmp / "origins")
    try:
        wait_http(f"http://127.0.0.1:{port}/__ready", proc, 15)
    except RuntimeError as e:
        proc.stop()
        raise RuntimeError(f"echo origin {name} did not start on {port}: {e}\n{proc.stderr_text()}") from None
    return proc, port


@contextmanager
def echo_origin(tmp: Path, name: str = "echo") -> Iterator[int]:
    proc, port = start_echo(tmp, name)
    try:
        yield port
    finally:
        proc.stop()


def start_redis(tmp: Path) -> tuple[Proc, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not on PATH: the KV tests need a real redis-server "
            "(apt-get install redis-server; .ci/run installs it). Not skipping.",
            pytrace=False,
        )
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = spawn(
        "redis",
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        tmp,
    )
    ok = wait_for(lambda: not proc.alive() or port_is_listening(port), 15)
    if not ok or not proc.alive():
        proc.stop()
        pytest.fail(f"redis-server did not start on {port}:\n{proc.stdout_text()}\n{proc.stderr_text()}", pytrace=False)
    return proc, port


@contextmanager
def redis_server(tmp: Path) -> Iterator[tuple[int, Proc]]:
    proc, port = start_redis(tmp)
    try:
        yield port, proc
    finally:
        proc.stop()


# --------------------------------------------------------------------------------------------
# gateway serve
# --------------------------------------------------------------------------------------------


def gateway_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ.copy()
    env["JWT_SECRET"] = SECRET
    env.pop("GATEWAY_CONFIG", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Gateway:
    """A running `gateway serve` (see `start_gateway`)."""

    def __init__(self, proc: Proc, port: int, config: Path, origins: dict[str, int] | None = None):
        self.proc = proc
        self.port = port
        self.config = config
        self.origins: dict[str, int] = dict(origins or {})

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout(self) -> Path:
        assert self.proc.stdout_path is not None
        return self.proc.stdout_path

    @property
    def stderr(self) -> Path:
        assert self.proc.stderr_path is not None
        return self.proc.stderr_path

    def client(self, **kw: Any) -> httpx.Client:
        kw.setdefault("timeout", 15.0)
        return httpx.Client(base_url=self.base, follow_redirects=False, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        with self.client() as c:
            return c.get(path, **kw)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        with self.client() as c:
            return c.request(method, path, **kw)

    def raw(self, request: bytes, timeout: float = 10.0) -> RawResponse:
        return raw_http(self.port, request, timeout)

    def log_lines(self) -> list[str]:
        """The JSON access-log lines on stdout, as text."""
        return [ln.strip() for ln in self.proc.stdout_text().splitlines() if ln.strip().startswith("{")]

    def log_entries(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_lines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 3.0) -> dict[str, Any] | None:
        found: list[dict[str, Any]] = []

        def check() -> bool:
            for entry in self.log_entries():
                if predicate(entry):
                    found.append(entry)
                    return True
            return False

        wait_for(check, timeout)
        return found[0] if found else None

    def all_output(self) -> str:
        return self.proc.stdout_text() + "\n" + self.proc.stderr_text()

    def stop(self) -> None:
        self.proc.stop()


def start_gateway(config: Path, *, env: dict[str, str] | None = None, workers: int | None = None, cwd: str = "/") -> Gateway:
    """`gateway serve --config FILE --listen 127.0.0.1:PORT` with JWT_SECRET=SECRET, ready when
    health answers 200 JSON; its output goes to files under CONFIG_DIR/logs.

    Started from cwd "/" so relative paths in the config must resolve against the config's directory.
    """
    port = free_port()
    argv = [GATEWAY_BIN, "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    proc = spawn("gateway", argv, config.parent / "logs", env=gateway_env(env), cwd=cwd)
    gw = Gateway(proc, port, config)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            last_error = f"exited with {proc.popen.returncode}"
            break
        try:
            r = httpx.get(gw.base + "/__gateway/health", timeout=1.0)
            if r.status_code == 200 and isinstance(r.json(), dict):
                return gw
            last_error = f"health answered {r.status_code}: {r.text[:200]}"
        except (httpx.HTTPError, ValueError) as e:
            last_error = f"{type(e).__name__}: {e}"
        time.sleep(0.1)
    proc.stop()
    pytest.fail(
        f"gateway serve --config {config} did not become healthy within {STARTUP_TIMEOUT:.0f}s ({last_error})\n"
        f"--- stderr ---\n{proc.stderr_text()[-6000:]}\n--- stdout ---\n{proc.stdout_text()[-3000:]}",
        pytrace=False,
    )


@contextmanager
def gateway_serve(config: Path, env: dict[str, str] | None = None, workers: int = 1) -> Iterator[Gateway]:
    gw = start_gateway(config, env=env, workers=workers)
    try:
        yield gw
    finally:
        gw.stop()


# --------------------------------------------------------------------------------------------
# the README's example config
# --------------------------------------------------------------------------------------------


def write_config(directory: Path, text: str, files: dict[str, str] | None = None, name: str = "gateway.toml") -> Path:
    """Writes `text` as DIRECTORY/NAME and each of `files` (relative name -> content) beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    for fname, content in (files or {}).items():
        (directory / fname).parent.mkdir(parents=True, exist_ok=True)
        (directory / fname).write_text(content)
    path = directory / name
    path.write_text(text)
    return path


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


def example_files() -> dict[str, str]:
    """The side files the example config reads (regions.json)."""
    return {"regions.json": (EXAMPLES / "regions.json").read_text()}


def example_site(tmp: Path, stack: ExitStack, **config: str) -> Gateway:
    """Two echo origins ("web", "regional") and `gateway serve` on the example config (see
    `example_config` for the keywords); everything is stopped when `stack` closes."""
    web = stack.enter_context(echo_origin(tmp, "web"))
    regional = stack.enter_context(echo_origin(tmp, "regional"))
    path = write_config(tmp, example_config(web, regional, **config), example_files())
    gw = stack.enter_context(gateway_serve(path))
    gw.origins = {"web": web, "regional": regional}
    return gw


# --------------------------------------------------------------------------------------------
# raw HTTP/1.1 over a socket
# --------------------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_list(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def content(self) -> bytes:
        return self.body


def recv_response(sock: socket.socket, method: str = "GET") -> RawResponse:
    """Reads one HTTP/1.1 response: Content-Length, chunked, or to the end of the connection."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            if not buf:
                raise ConnectionError("connection closed without a response")
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    lower = {k.lower(): v for k, v in headers}
    body = rest
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return RawResponse(status, headers, b"")
    if "chunked" in lower.get("transfer-encoding", "").lower():
        data = body
        out = b""
        while True:
            while b"\r\n" not in data:
                more = sock.recv(65536)
                if not more:
                    return RawResponse(status, headers, out)
                data += more
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            while len(data) < size + 2:
                more = sock.recv(65536)
                if not more:
                    break
                data += more
            if size == 0:
                break
            out += data[:size]
            data = data[size + 2 :]
        return RawResponse(status, headers, out)
    if "content-length" in lower:
        length = int(lower["content-length"])
        while len(body) < length:
            more = sock.recv(65536)
            if not more:
                break
            body += more
        return RawResponse(status, headers, body[:length])
    while True:  # read to close
        try:
            more = sock.recv(65536)
        except TimeoutError:
            break
        if not more:
            break
        body += more
    return RawResponse(status, headers, body)


def send_head(gw: Gateway, head: bytes, peer: str = "127.0.0.1") -> RawResponse:
    """`head` verbatim (request line and headers, without the blank line, Host and Connection added)
    to `gw` from the local address `peer` (127.0.0.x: a trusted proxy or not)."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=15, source_address=(peer, 0)) as s:
        s.sendall(head + b"\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
        return recv_response(s)


def raw_http(port: int, request: bytes, timeout: float = 10.0) -> RawResponse:
    """Sends `request` verbatim (no client-side path normalization) and reads one response."""
    method = request.split(b" ", 1)[0].decode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return recv_response(s, method)


def raw_get(port: int, target: str, headers: dict[str, str] | None = None, method: str = "GET", timeout: float = 10.0) -> RawResponse:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    req = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return raw_http(port, req, timeout)


def raw_request(base: str, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """`raw_http` to a base URL, answering (status, {lower-case name: first value}, body)."""
    r = raw_http(int(base.rsplit(":", 1)[1]), request, timeout)
    headers: dict[str, str] = {}
    for k, v in r.headers:
        headers.setdefault(k.lower(), v)
    return r.status, headers, r.body
