"""End-to-end fixtures: real `gateway serve` processes, real echo origins, a real redis-server.

Everything here talks to processes over loopback sockets; nothing imports the gateway's internals
(apart from `gateway.verify` in the token test, which is a public API).

Helpers (importable as ``from tests.e2e.conftest import ...``):

- ``free_port()``, ``free_port_pair()``
- ``start_echo(name, tmp)`` / ``start_redis(tmp)`` / ``start_gateway(config, ...)``: each returns a
  handle with ``.stop()``; the fixtures below stop whatever they started.
- ``write_config(dir, text, files)``: writes gateway.toml (and side files) into a directory.
- ``raw_http(port, request_bytes)``: sends exact bytes over a socket, parses one HTTP/1.1 answer.
- ``make_token(...)``: an HS256 token minted with PyJWT (independent of the implementation).
- ``echoed(response)``: the echo origin's JSON, with ``.header(name)`` helpers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from tests import harness

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
GATEWAY_BIN = str(VENV_BIN / "gateway") if (VENV_BIN / "gateway").exists() else shutil.which("gateway") or "gateway"
PYTHON = sys.executable

# At least 32 bytes, as HS256 requires.
SECRET = "e2e-jwt-secret-0123456789abcdefghijklmnopqrstuvwxyz"
STARTUP_TIMEOUT = 20.0

TOKEN_RE = r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"


# --------------------------------------------------------------------------------------------
# ports and processes
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


def free_port_pair() -> int:
    """A port P such that P and P+1 are both free (the demo's web and regional origins)."""
    for _ in range(200):
        p = free_port()
        if p < 65000 and _port_free(p + 1):
            return p
    raise RuntimeError("no free pair of adjacent ports")


def port_is_listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


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

    def alive(self) -> bool:
        return self.popen.poll() is None

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


def _read(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")


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


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def start_echo(name: str, logdir: Path) -> tuple[Proc, int]:
    port = free_port()
    proc = spawn(f"echo-{name}", [PYTHON, "-m", "gateway.echo", "--listen", f"127.0.0.1:{port}", "--name", name], logdir)
    ok = wait_for(lambda: not proc.alive() or port_is_listening(port), 15)
    if not ok or not proc.alive():
        proc.stop()
        raise RuntimeError(f"echo origin {name} did not start on {port}:\n{proc.stderr_text()}")
    return proc, port


def start_redis(logdir: Path) -> tuple[Proc, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not on PATH: the end-to-end KV tests need a real redis-server "
            "(apt-get install redis-server; .ci/run installs it). Not skipping.",
            pytrace=False,
        )
    port = free_port()
    proc = spawn(
        "redis",
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(logdir)],
        logdir,
    )
    ok = wait_for(lambda: not proc.alive() or port_is_listening(port), 15)
    if not ok or not proc.alive():
        proc.stop()
        pytest.fail(f"redis-server did not start on {port}:\n{proc.stdout_text()}\n{proc.stderr_text()}", pytrace=False)
    return proc, port


def gateway_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ.copy()
    env["JWT_SECRET"] = SECRET
    env.pop("GATEWAY_CONFIG", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Gateway:
    proc: Proc
    port: int
    config: Path
    origins: dict[str, int] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.proc.stdout_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_log(self, predicate: Any, timeout: float = 3.0) -> dict[str, Any] | None:
        found: list[dict[str, Any]] = []

        def check() -> bool:
            for entry in self.log_lines():
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
    """`gateway serve --config FILE --listen 127.0.0.1:PORT`, ready when health answers 200 JSON.

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


def run_cli(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 30.0, cwd: str = "/", module: bool = False) -> subprocess.CompletedProcess[str]:
    argv = ([PYTHON, "-m", "gateway"] if module else [GATEWAY_BIN]) + args
    return subprocess.run(argv, check=False, capture_output=True, text=True, env=gateway_env(env), timeout=timeout, cwd=cwd)


# --------------------------------------------------------------------------------------------
# config files
# --------------------------------------------------------------------------------------------


def write_config(directory: Path, text: str, files: dict[str, str] | None = None, name: str = "gateway.toml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for fname, content in (files or {}).items():
        (directory / fname).parent.mkdir(parents=True, exist_ok=True)
        (directory / fname).write_text(content)
    path = directory / name
    path.write_text(text)
    return path


EXAMPLE_REGIONS = json.loads((harness.EXAMPLES / "regions.json").read_text())


def example_config(web: int, regional: int, extra_routes: str = "", extra_tables: str = "", trusted: str | None = None) -> str:
    """The README's example (python/gateway/examples/gateway.toml) on these origin ports, with
    `extra_routes` inserted before the catch-all route."""
    return harness.example_config(web, regional, before_catch_all=extra_routes, tables=extra_tables, trusted=trusted)


# Routes and tables the main gateway adds to the example (all before the catch-all).
MAIN_EXTRA_TABLES = """
[experiments.weighted]
cookie = "exp-w"
variants = {{ a = 1, b = 0 }}
max_age = "2h"
header = "X-Exp-W"
[origins.slow]
url = "http://127.0.0.1:{web}"
timeout = "1s"

[origins.down]
url = "http://127.0.0.1:{down}"
timeout = "5s"
"""

MAIN_EXTRA_ROUTES = """
[[routes]]
match = "/slow/:path*"
origin = "slow"

[[routes]]
match = "/slow-route/:path*"
origin = "web"
timeout = "1s"

[[routes]]
match = "/down/:path*"
origin = "down"

[[routes]]
match = "/upload/:path*"
origin = "web"
max_body = "1KB"

[[routes]]
match = "/cond/:path*"
has = [{ type = "header", key = "x-beta", value = "1" }]
origin = "web"
response_headers = { "X-Route" = "has-header" }

[[routes]]
match = "/cond/:path*"
has = [{ type = "query", key = "preview", value = "yes|true" }]
origin = "web"
response_headers = { "X-Route" = "has-query" }

[[routes]]
match = "/cond/:path*"
has = [{ type = "cookie", key = "beta-cookie" }]
origin = "web"
response_headers = { "X-Route" = "has-cookie" }

[[routes]]
match = "/cond/:path*"
missing = [{ type = "cookie", key = "session" }]
origin = "web"
response_headers = { "X-Route" = "missing-session" }

[[routes]]
match = "/cond/:path*"
origin = "web"
response_headers = { "X-Route" = "cond-fallback" }

[[routes]]
match = "/hosted/:path*"
host = "example.com"
origin = "regional"
response_headers = { "X-Route" = "host-example" }

[[routes]]
match = "/hosted/:path*"
origin = "web"
response_headers = { "X-Route" = "hosted-other" }

[[routes]]
match = ["/listed-a", '/listed-b/:id(\\d+)']
origin = "regional"
response_headers = { "X-Route" = "listed", "X-Listed-Id" = "{params.id|none}" }

[[routes]]
match = "/plus/:rest+"
origin = "web"
response_headers = { "X-Route" = "plus", "X-Rest" = "{params.rest}" }

[[routes]]
match = "/opt/:lang?/about"
origin = "web"
response_headers = { "X-Route" = "opt", "X-Opt-Lang" = "{params.lang|none}" }

[[routes]]
match = '/re/(\\d+)'
origin = "web"
response_headers = { "X-Route" = "re" }

[[routes]]
match = "/weighted/:path*"
experiment = "weighted"
origin = "web"
response_headers = { "X-Variant" = "{variant}", "X-Exp-W" = "{experiments.weighted}" }

[[routes]]
match = "/users/:id/posts/:post"
origin = "web"
response_headers = { "X-User-Param" = "{params.id}", "X-Post-Param" = "{params.post}", "X-Braces" = "{{id}}={params.id}" }
request_headers = { "X-Req-User" = "{params.id}" }

[[routes]]
match = "/ph/:path*"
auth = "session"
locale = true
experiment = "landing"
origin = "web"
response_headers = { "X-Country" = "{country}", "X-Lang" = "{lang}", "X-Sub" = "{claims.sub}", "X-Path-Param" = "{params.path}", "X-Exp" = "{experiments.landing}", "X-Currency" = "{kv.regions[{country}].currency}", "X-Currency-D" = "{kv.regions[{country}].currency|USD}", "X-Vat" = "{kv.regions[{country}].vat|0}" }
request_headers = { "X-Req-Country" = "{country}", "X-Req-Lang" = "{lang}", "X-Req-Sub" = "{claims.sub}", "X-Req-Param" = "{params.path}", "X-Req-Exp" = "{experiments.landing}", "X-Req-Currency" = "{kv.regions[{country}].currency|USD}" }

[[routes]]
match = "/shop/:path*"
locale = true
origin = "web"
response_headers = { "X-Region" = "{country}", "X-Currency" = "{kv.regions[{country}].currency|USD}" }
"""


@dataclass
class Echoed:
    """The echo origin's view of a request."""

    data: dict[str, Any]

    @property
    def path(self) -> str:
        return self.data["path"]

    @property
    def query(self) -> str:
        return self.data["query"]

    @property
    def origin(self) -> str:
        return self.data["origin"]

    @property
    def method(self) -> str:
        return self.data["method"]

    def headers(self, name: str) -> list[str]:
        return [v for k, v in self.data["headers"] if k.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        values = self.headers(name)
        assert len(values) <= 1, f"origin received {name} {len(values)} times: {values}"
        return values[0] if values else None


def echoed(resp: Any) -> Echoed:
    body = resp.content if hasattr(resp, "content") else resp.body
    try:
        data = json.loads(body)
    except ValueError:
        raise AssertionError(f"not the echo origin's JSON (status {getattr(resp, 'status_code', getattr(resp, 'status', '?'))}): {body[:300]!r}") from None
    assert isinstance(data, dict) and "path" in data and "headers" in data, f"not an echo answer: {data!r}"
    return Echoed(data)


def set_cookies(resp: httpx.Response) -> list[str]:
    return resp.headers.get_list("set-cookie")


def make_token(claims: dict[str, Any] | None = None, *, secret: str = SECRET, alg: str = "HS256", exp_in: float | None = 3600, headers: dict[str, Any] | None = None) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"sub": "user-123", "iat": now}
    if exp_in is not None:
        body["exp"] = now + int(exp_in)
    body.update(claims or {})
    return pyjwt.encode(body, secret, algorithm=alg, headers=headers)


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


def _recv_response(sock: socket.socket, method: str = "GET") -> RawResponse:
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


def raw_http(port: int, request: bytes, timeout: float = 10.0) -> RawResponse:
    """Sends `request` verbatim (no client-side path normalization) and reads one response."""
    method = request.split(b" ", 1)[0].decode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return _recv_response(s, method)


def raw_get(port: int, target: str, headers: dict[str, str] | None = None, method: str = "GET", timeout: float = 10.0) -> RawResponse:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    req = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return raw_http(port, req, timeout)


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def origins(e2e_dir: Path) -> Iterator[dict[str, int]]:
    """Two echo origins: "web" and "regional"."""
    procs = []
    ports = {}
    try:
        for name in ("web", "regional"):
            proc, port = start_echo(name, e2e_dir / "origins")
            procs.append(proc)
            ports[name] = port
        yield ports
    finally:
        for p in procs:
            p.stop()


@pytest.fixture(scope="session")
def main_gateway(e2e_dir: Path, origins: dict[str, int]) -> Iterator[Gateway]:
    """The issue's example config plus extra routes for conditions, errors, and placeholders."""
    down = free_port()  # nothing listens here
    text = example_config(
        origins["web"],
        origins["regional"],
        extra_routes=MAIN_EXTRA_ROUTES,
        extra_tables=MAIN_EXTRA_TABLES.format(web=origins["web"], down=down),
    )
    config = write_config(e2e_dir / "main", text, {"regions.json": json.dumps(EXAMPLE_REGIONS)})
    gw = start_gateway(config)
    gw.origins = {**origins, "down": down}
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="session")
def untrusted_gateway(e2e_dir: Path, origins: dict[str, int]) -> Iterator[Gateway]:
    """The example config with trusted_proxies that do NOT include 127.0.0.1 (the tests' address)."""
    text = example_config(origins["web"], origins["regional"], trusted='["10.0.0.0/8", "192.0.2.1/32"]')
    config = write_config(e2e_dir / "untrusted", text, {"regions.json": json.dumps(EXAMPLE_REGIONS)})
    gw = start_gateway(config)
    gw.origins = dict(origins)
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def client(main_gateway: Gateway) -> Iterator[httpx.Client]:
    with main_gateway.client() as c:
        yield c


class Launcher:
    """Starts gateways / echo origins / redis for one test and stops them afterwards."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self._stoppers: list[Any] = []

    def gateway(self, text: str, files: dict[str, str] | None = None, **kw: Any) -> Gateway:
        d = self.tmp / f"gw-{len(self._stoppers)}"
        config = write_config(d, text, files)
        gw = start_gateway(config, **kw)
        self._stoppers.append(gw.stop)
        return gw

    def echo(self, name: str) -> int:
        proc, port = start_echo(name, self.tmp / "origins")
        self._stoppers.append(proc.stop)
        return port

    def redis(self) -> tuple[Proc, int]:
        proc, port = start_redis(self.tmp / f"redis-{len(self._stoppers)}")
        self._stoppers.append(proc.stop)
        return proc, port

    def process(self, proc: Proc) -> Proc:
        self._stoppers.append(proc.stop)
        return proc

    def close(self) -> None:
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception:  # noqa: BLE001 - best effort teardown
                pass


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()


def assert_still_serving(gw: Gateway) -> None:
    """After an error, the very next ordinary request is answered correctly."""
    r = gw.get("/after-error/check?x=1", headers={"cookie": "ab-group=control"})
    assert r.status_code == 200, f"the gateway did not recover: {r.status_code} {r.text[:300]}"
    e = echoed(r)
    assert e.path == "/after-error/check" and e.query == "x=1"


class LineReader:
    """Reads a process's stdout pipe on a thread (for `gateway demo`, whose output we parse)."""

    def __init__(self, stream: Any):
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._t.start()

    def _run(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)
