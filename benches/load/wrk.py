"""Scenarios and the load generator: wrk (keep-alive, fixed connections, bounded time), pinned to its core."""

from __future__ import annotations

import json
import re
import resource
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benches.load.common import (
    CLK_TCK,
    WRK_CPUS,
    busy_pct,
    cpu_times,
    proc_jiffies,
    user_sys_jiffies,
)

# A done() hook only: without a request()/response() function wrk keeps its static, fast request path.
DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "non_2xx_3xx": %d}, ' ..
    '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = field(default=())


def scenarios(tok: dict[str, str]) -> dict[str, Scenario]:
    return {
        "S0": Scenario("S0", "origin direct", "GET", "/products"),
        "S1": Scenario("S1", "no token -> 302", "GET", "/dashboard"),
        "S2": Scenario("S2", "valid token -> proxy", "GET", "/dashboard/x", (("Authorization", f"Bearer {tok['valid']}"),)),
        "S3": Scenario("S3", "forged token -> 302 + clear", "GET", "/dashboard/x", (("Cookie", f"auth-token={tok['forged']}"),)),
        "S4": Scenario("S4", "KR -> /ko + A/B + proxy", "GET", "/products", (("cf-ipcountry", "KR"),)),
        # Issue 10: an IdP's RS256 token, verified against a key set (the gateway: a JWK Set file;
        # HAProxy: the same public key as PEM), then proxied with the sub forwarded.
        "S5": Scenario("S5", "RS256 token (key set) -> proxy", "GET", "/api/idp/x", (("Authorization", f"Bearer {tok.get('rs_valid', '')}"),)),
        # S2 on a route with one no-op async request hook (issue 13; --only hooks)
        "S2h": Scenario("S2h", "valid token -> no-op request hook -> proxy", "GET", "/dashboard/h/x", (("Authorization", f"Bearer {tok['valid']}"),)),
        # S2's request, to a system whose origin is HTTPS (issue 11).
        "S6": Scenario("S6", "valid token -> proxy to HTTPS origin", "GET", "/dashboard/x", (("Authorization", f"Bearer {tok['valid']}"),)),
    }


def run(
    port: int,
    sc: Scenario,
    *,
    duration: float,
    connections: int,
    script: Path,
    timeout_s: int = 10,
    pids: Callable[[], list[int]] = list,
) -> dict[str, Any]:
    """One timed wrk run; returns req/s, latency percentiles (ms), error counts, each core's busy % and the
    CPU used by processes other than wrk and `pids()` (the system under test and the origin) meanwhile."""
    cmd = ["taskset", "-c", WRK_CPUS, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", f"--timeout={timeout_s}s", "--latency", "-s", str(script)]
    for k, v in sc.headers:
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(f"http://127.0.0.1:{port}{sc.path}")
    watched = pids()
    ours0, all0, kids0 = proc_jiffies(watched), user_sys_jiffies(), resource.getrusage(resource.RUSAGE_CHILDREN)
    before = cpu_times()
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=duration + timeout_s + 30)
    after = cpu_times()
    ours1, all1, kids1 = proc_jiffies(watched), user_sys_jiffies(), resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_j = (kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime) * CLK_TCK
    span_j = max(1, after["cpu0"][1] - before["cpu0"][1])  # jiffies elapsed on one core
    foreign_pct = round(100.0 * max(0.0, (all1 - all0) - (ours1 - ours0) - wrk_j) / span_j, 1)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if r.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()[-400:]}")
    raw = json.loads(line[8:])
    secs = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    return {
        "rps": round(raw["requests"] / secs, 1) if secs else 0.0,
        "requests": raw["requests"],
        "seconds": round(secs, 3),
        "p50_ms": round(lat["p50"] / 1000, 3),
        "p90_ms": round(lat["p90"] / 1000, 3),
        "p99_ms": round(lat["p99"] / 1000, 3),
        "p999_ms": round(lat["p999"] / 1000, 3),
        "mean_ms": round(lat["mean"] / 1000, 3),
        "max_ms": round(lat["max"] / 1000, 3),
        "errors": raw["errors"],
        "transfer_bytes": raw["bytes"],
        "cpu_busy_pct": busy_pct(before, after),
        "foreign_cpu_pct": foreign_pct,  # % of one core used by other processes during the run
        "wrk_text": _latency_text(r.stdout),
    }


def _latency_text(out: str) -> str:
    """wrk's own --latency summary lines, kept in the raw JSON for reference."""
    keep = [ln.strip() for ln in out.splitlines() if re.match(r"\s+(50|75|90|99)%|Requests/sec|Non-2xx|Socket errors", ln)]
    return " | ".join(keep)
