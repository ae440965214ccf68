"""End-to-end fixtures: real `gateway serve` processes, real echo origins, a real redis-server.

Everything here talks to processes over loopback sockets; nothing imports the gateway's internals
(apart from `gateway.verify` in the token test, which is a public API). The processes, the raw HTTP
client and the example config come from tests/harness.py, shared with the tests outside e2e/.

Helpers (importable as ``from tests.e2e.conftest import ...``):

- ``free_port()``, ``free_port_pair()``, ``port_is_listening(port)``, ``wait_for(predicate, timeout)``
- ``spawn(name, argv, logdir)`` -> ``Proc``; the ``launch`` fixture starts gateways / echo origins /
  redis for one test and stops them afterwards.
- ``write_config(dir, text, files)``: writes gateway.toml (and side files) into a directory.
- ``raw_http(port, request_bytes)`` / ``raw_get(port, target)``: sends exact bytes over a socket,
  parses one HTTP/1.1 answer.
- ``make_token(...)``: an HS256 token minted with PyJWT (independent of the implementation).
- ``echoed(response)``: the echo origin's JSON, with ``.header(name)`` helpers.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from tests import harness
from tests.harness import (  # noqa: F401 - re-exported for the e2e tests
    GATEWAY_BIN,
    PYTHON,
    SECRET,
    Gateway,
    Proc,
    RawResponse,
    free_port,
    free_port_pair,
    gateway_env,
    port_is_listening,
    raw_get,
    raw_http,
    spawn,
    start_echo,
    start_gateway,
    start_redis,
    wait_for,
    write_config,
)
from tests.harness import recv_response as _recv_response  # noqa: F401 - used by test_proxy_errors

TOKEN_RE = r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"


def run_cli(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 30.0, cwd: str = "/", module: bool = False) -> subprocess.CompletedProcess[str]:
    argv = ([PYTHON, "-m", "gateway"] if module else [GATEWAY_BIN]) + args
    return subprocess.run(argv, check=False, capture_output=True, text=True, env=gateway_env(env), timeout=timeout, cwd=cwd)


# --------------------------------------------------------------------------------------------
# config files
# --------------------------------------------------------------------------------------------


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
# fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def origins(e2e_dir: Path) -> Iterator[dict[str, int]]:
    """Two echo origins: "web" and "regional"."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(harness.echo_origin(e2e_dir, name)) for name in ("web", "regional")}


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
    with harness.gateway_serve(write_config(e2e_dir / "main", text, harness.example_files())) as gw:
        gw.origins = {**origins, "down": down}
        yield gw


@pytest.fixture(scope="session")
def untrusted_gateway(e2e_dir: Path, origins: dict[str, int]) -> Iterator[Gateway]:
    """The example config with trusted_proxies that do NOT include 127.0.0.1 (the tests' address)."""
    text = example_config(origins["web"], origins["regional"], trusted='["10.0.0.0/8", "192.0.2.1/32"]')
    with harness.gateway_serve(write_config(e2e_dir / "untrusted", text, harness.example_files())) as gw:
        gw.origins = dict(origins)
        yield gw


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
        proc, port = start_echo(self.tmp, name)
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
