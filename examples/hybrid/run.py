"""Starts the hybrid example: one command, everything on this machine, Ctrl-C stops it all.

    python examples/hybrid/run.py            # from the repository, with the gateway installed

- redis-server on 6390 (a throwaway one, unless --redis-url names yours), loaded with the region
  config from python/gateway/examples/regions.json;
- the web origin on 9100 (`python -m gateway.echo`, which answers every request with what it got);
- the regional origin on 9101 (examples/hybrid/resizer.py: resizes uploaded images with Pillow);
- two `gateway serve` instances on 8080 and 8081, two workers each, serving examples/hybrid/gateway.toml:
  KV regions and rate limits in the one redis, so a client is counted once across both.

Ports are flags (--ports 8080,8081 --web-port --regional-port --redis-port); the config is copied to
a temporary directory with them filled in. A port in use is reported before anything starts.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PORTS = {"gateway": (8080, 8081), "web": 9100, "regional": 9101, "redis": 6390}


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            time.sleep(0.1)
    return False


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Stack:
    """The processes started so far, each in its own session; stopped in reverse order."""

    def __init__(self, logdir: Path):
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logdir = logdir

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, quiet: bool = True) -> subprocess.Popen[bytes]:
        out = open(self.logdir / f"{name}.log", "wb") if quiet else None  # noqa: SIM115 - kept for the child's life
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT if quiet else None, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def stop(self, name: str | None = None) -> None:
        for n, proc in reversed(self.procs):
            if name is not None and n != name:
                continue
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except OSError:
                    pass
        for n, proc in reversed(self.procs):
            if name is not None and n != name:
                continue
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def config_text(ports: argparse.Namespace, redis_url: str) -> str:
    text = (HERE / "gateway.toml").read_text()
    text = text.replace("http://127.0.0.1:9100", f"http://127.0.0.1:{ports.web_port}")
    text = text.replace("http://127.0.0.1:9101", f"http://127.0.0.1:{ports.regional_port}")
    return text.replace("redis://127.0.0.1:6390/0", redis_url)


def load_regions(redis_url: str) -> int:
    """Puts regions.json into redis under the KV prefix, as an operator would once."""
    import redis

    regions = json.loads((resources.files("gateway") / "examples" / "regions.json").read_text())
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        for country, value in regions.items():
            client.set(f"regions:{country}", json.dumps(value))
    finally:
        client.close()
    return len(regions)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Start the hybrid example (two gateways, one redis, two origins)")
    p.add_argument("--ports", default=",".join(map(str, DEFAULT_PORTS["gateway"])), help="the two gateway instances' ports (default 8080,8081)")
    p.add_argument("--web-port", type=int, default=DEFAULT_PORTS["web"])
    p.add_argument("--regional-port", type=int, default=DEFAULT_PORTS["regional"])
    p.add_argument("--redis-port", type=int, default=DEFAULT_PORTS["redis"], help="port of the redis-server this starts")
    p.add_argument("--redis-url", help="use this redis instead of starting one (e.g. redis://127.0.0.1:6379/0)")
    p.add_argument("--workers", type=int, default=2, help="worker processes per gateway instance (default 2)")
    args = p.parse_args(argv)
    try:
        gateway_ports = [int(x) for x in args.ports.split(",")]
    except ValueError:
        p.error(f"--ports must be two port numbers such as 8080,8081, got {args.ports!r}")
    if len(gateway_ports) != 2:
        p.error(f"--ports must be two port numbers such as 8080,8081, got {args.ports!r}")
    wanted = {"gateway": gateway_ports[0], "second gateway": gateway_ports[1], "web origin": args.web_port, "regional origin": args.regional_port}
    if not args.redis_url:
        wanted["redis"] = args.redis_port
    taken = [f"{what} port {port}" for what, port in wanted.items() if not port_free(port)]
    if len(set(wanted.values())) != len(wanted):
        p.error("every port must be different: " + ", ".join(f"{k} {v}" for k, v in wanted.items()))
    if taken:
        print(f"hybrid: in use: {', '.join(taken)}; nothing started (choose others with --ports, --web-port, --regional-port, --redis-port)", file=sys.stderr)
        return 1
    if not args.redis_url and shutil.which("redis-server") is None:
        print("hybrid: redis-server is not on PATH (apt-get install redis-server), or pass --redis-url", file=sys.stderr)
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="gateway-hybrid-"))
    stack = Stack(workdir)
    env = os.environ.copy()
    env.setdefault("JWT_SECRET", secrets.token_urlsafe(48))
    env["PYTHONUNBUFFERED"] = "1"

    def fail(what: str) -> int:
        print(f"hybrid: {what} did not start; logs in {workdir}", file=sys.stderr)
        stack.stop()
        return 1

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        redis_url = args.redis_url
        if not redis_url:
            redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
            proc = stack.start("redis", ["redis-server", "--port", str(args.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)])
            if not wait_port(args.redis_port, proc, 15):
                return fail("redis-server")
        regions = load_regions(redis_url)
        proc = stack.start("web", [sys.executable, "-m", "gateway.echo", "--listen", f"127.0.0.1:{args.web_port}", "--name", "web"], env)
        if not wait_http(f"http://127.0.0.1:{args.web_port}/", proc, 15):
            return fail("the web origin")
        proc = stack.start("regional", [sys.executable, str(HERE / "resizer.py"), "--listen", f"127.0.0.1:{args.regional_port}"], env)
        if not wait_http(f"http://127.0.0.1:{args.regional_port}/", proc, 15):
            return fail("the regional origin (is Pillow installed? pip install -e '.[examples]')")
        config = workdir / "gateway.toml"
        config.write_text(config_text(args, redis_url))
        for i, port in enumerate(gateway_ports):
            argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}", "--workers", str(args.workers)]
            proc = stack.start(f"gateway-{i + 1}", argv, env)
            if not wait_http(f"http://127.0.0.1:{port}/__gateway/health", proc, 30):
                return fail(f"gateway instance {i + 1} on {port}")
        token = subprocess.run(
            [sys.executable, "-m", "gateway", "token", "--claims", '{"sub": "hybrid-user"}', "--ttl", "1h"], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        a, b = (f"http://127.0.0.1:{port}" for port in gateway_ports)
        print(
            f"""
hybrid: up. Two gateway instances ({args.workers} workers each) share one redis ({redis_url}: {regions} regions, rate limits).

  gateway 1   {a}
  gateway 2   {b}
  web origin  http://127.0.0.1:{args.web_port}     regional (resizer)  http://127.0.0.1:{args.regional_port}
  config      {config}     logs  {workdir}

Try:
  curl -i -H 'cf-ipcountry: KR' {a}/products               # X-Currency: KRW, from redis
  curl -i {b}/api/items                                   # counted once for both instances: 600/m, burst 20
  curl -s -H 'Authorization: Bearer {token}' {a}/api/me/profile
  curl -s --data-binary @some-image.png -H 'content-type: image/png' '{b}/api/resize?width=200' -o small.png
  for i in $(seq 30); do curl -s -o /dev/null -w '%{{http_code}} ' {a}/api/x {b}/api/x; done; echo   # 429s after 21

Put a load balancer in front of both (see examples/hybrid/README.md). Ctrl-C stops everything.
""",
            flush=True,
        )
        # redis may be stopped to see the instances degrade (on_store_error, KV defaults): that is
        # not a reason to stop the rest; a gateway or an origin that dies is.
        said = False
        while all(proc.poll() is None for name, proc in stack.procs if name != "redis"):
            if not said and any(name == "redis" and proc.poll() is not None for name, proc in stack.procs):
                print("hybrid: redis stopped; the instances now apply on_store_error and the KV defaults", file=sys.stderr, flush=True)
                said = True
            time.sleep(0.5)
        dead = [name for name, proc in stack.procs if proc.poll() is not None and name != "redis"]
        print(f"hybrid: {', '.join(dead)} stopped; stopping the rest (logs in {workdir})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
