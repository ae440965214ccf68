"""Soak: mixed traffic through the gateway for a bounded time, on loopback only.

    python benches/soak.py [--duration 60] [--connections 64]

Valid, expired, forged and missing tokens, geo and experiment traffic and 1% origin errors go
through one gateway worker in front of nginx (started here, loopback). Reports requests served,
every status counted, unexpected 5xx (5xx the gateway made itself, as opposed to the origin's
deliberate ones), and the worker's RSS and open FDs at start and end. Exits 1 on any unexpected 5xx
or socket error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "soak-secret-soak-secret-soak-secret-1234"

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    root {tmp}/html;
    location /err {{ add_header X-Origin-Error 1 always; return 500; }}
    location / {{ try_files /index.html =404; }}
  }}
}}
"""

GATEWAY_TOML = """
[server]
access_log = false
trusted_proxies = ["127.0.0.1/32"]
[origins.web]
url = "http://127.0.0.1:{origin}"
timeout = "5s"
[auth.session]
secret = "env:JWT_SECRET"
token_from = ["cookie:auth-token", "bearer"]
on_missing = {{ redirect = "/login" }}
on_invalid = {{ redirect = "/login", clear_cookie = "auth-token" }}
forward_claims = {{ sub = "X-User-Id" }}
[locale]
country_from = "header:cf-ipcountry"
countries = {{ KR = "/ko", JP = "/ja" }}
languages = {{ ko = "/ko", ja = "/ja" }}
[experiments.landing]
cookie = "ab-group"
variants = {{ control = 50, variant = 50 }}
header = "X-AB-Group"
[[routes]]
match = ["/dashboard/:path*", "/api/protected/:path*"]
auth = "session"
origin = "web"
[[routes]]
match = "/:path*"
locale = true
experiment = "landing"
response_headers = {{ "X-Region" = "{{country}}" }}
origin = "web"
"""

WRK_SCRIPT = r"""
local reqs = {}
local function add(n, path, headers)
  headers["Host"] = "soak.local"
  for i = 1, n do table.insert(reqs, wrk.format("GET", path, headers)) end
end
-- Built in init(), once per thread, after wrk has parsed the URL.
init = function(args)
add(25, "/dashboard/x", { ["Authorization"] = "Bearer VALID" })
add(10, "/dashboard/x", { ["Cookie"] = "auth-token=EXPIRED" })
add(10, "/dashboard/x", { ["Cookie"] = "auth-token=FORGED" })
add(10, "/dashboard/x", {})
add(20, "/products", { ["cf-ipcountry"] = "KR" })
add(14, "/about", { ["Accept-Language"] = "ja,en;q=0.5", ["Cookie"] = "ab-group=control" })
add(10, "/api/protected/users", { ["Authorization"] = "Bearer VALID", ["X-User-Id"] = "spoofed" })
add(1, "/err", {})
end
local n = 0
counts = {}
unexpected = 0
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end
request = function()
  n = n + 1
  return reqs[(n % #reqs) + 1]
end
response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status >= 500 and headers["X-Origin-Error"] == nil and headers["x-origin-error"] == nil then
    unexpected = unexpected + 1
  end
end
done = function(summary, latency, requests)
  -- Each wrk thread has its own Lua state: gather the counts from all of them.
  local total, bad = {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
    bad = bad + t:get("unexpected")
  end
  local unexpected = bad
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%d": %d', k, v)) end
  io.write(string.format('SOAK {"requests": %d, "statuses": {%s}, "unexpected_5xx": %d, "socket_errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, table.concat(parts, ", "), unexpected,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid: int) -> dict[str, int]:
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return {"rss_kb": rss, "open_fds": len(os.listdir(f"/proc/{pid}/fd"))}


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"soak: nothing listening on {port}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=60, help="seconds of load (default 60)")
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"soak: needs {tool} (apt-get install {tool})")
    sys.path.insert(0, str(ROOT / "python"))
    import gateway

    tmp = Path(tempfile.mkdtemp(prefix="gateway-soak-"))
    tmp.chmod(0o755)  # nginx workers run as nobody
    (tmp / "html").mkdir()
    (tmp / "html" / "index.html").write_text("x" * 1024)
    origin_port, gw_port = free_port(), free_port()
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=origin_port))
    (tmp / "gateway.toml").write_text(GATEWAY_TOML.format(origin=origin_port))
    now = int(time.time())
    valid = gateway.encode({"sub": "soak-user", "iat": now, "exp": now + 3600}, SECRET)
    expired = gateway.encode({"sub": "soak-user", "iat": now - 7200, "exp": now - 3600}, SECRET)
    forged = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    script = WRK_SCRIPT.replace("VALID", valid).replace("EXPIRED", expired).replace("FORGED", forged)
    (tmp / "soak.lua").write_text(script)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(["nginx", "-c", str(tmp / "nginx.conf")], stderr=subprocess.DEVNULL))
        env = {**os.environ, "JWT_SECRET": SECRET}
        gw = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(tmp / "gateway.toml"), "--listen", f"127.0.0.1:{gw_port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "gateway.stderr").open("wb"),
        )
        procs.append(gw)
        wait_port(origin_port)
        wait_port(gw_port)
        time.sleep(0.5)
        worker = int(Path(f"/proc/{gw.pid}/task/{gw.pid}/children").read_text().split()[0])
        start = proc_stats(worker)
        print(f"soak: {args.duration}s of mixed traffic, {args.connections} connections, gateway worker pid {worker}", flush=True)
        out = subprocess.run(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "-s", str(tmp / "soak.lua"), f"http://127.0.0.1:{gw_port}/"],
            capture_output=True,
            text=True,
            timeout=args.duration + 60,
        )
        end = proc_stats(worker)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("SOAK ")), None)
        if line is None:
            print(out.stdout, out.stderr)
            raise SystemExit("soak: wrk gave no summary")
        report = json.loads(line[5:])
        report.update({"duration_s": args.duration, "start": start, "end": end, "requests_per_s": round(report["requests"] / args.duration)})
        print(json.dumps(report, indent=2))
        bad = report["unexpected_5xx"] or report["socket_errors"] or gw.poll() is not None
        print("soak: " + ("FAILED" if bad else "ok: zero unexpected 5xx, no socket errors"))
        return 1 if bad else 0
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
