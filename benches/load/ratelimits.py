"""What a rate limit costs (issue 12): one gateway, three routes of the same shape, one run.

    python -m benches ratelimits [--duration 4] [--runs 3] [--workers 1]

The reference config (benches/load/configs.gateway_toml) plus three plain proxy routes to the nginx
origin: ``/rl/none/...`` without a limit, ``/rl/memory/...`` with a ``store = "memory"`` limit and
``/rl/redis/...`` with a ``store = "redis"`` limit (a local redis-server pinned beside the gateway).
Both limits are keyed by ``ip`` and far above what wrk can send (a million a second), so every
request is checked and none refused: the figure is the cost of the check, not of a cheap 429.

The three scenarios run interleaved (none, memory, redis; none, memory, redis; ...) against the same
gateway process with the suite's pinning and quiet-machine checks, and the medians are compared in
the same run: memory / none (target >= 0.95) and redis / none (target >= 0.75). Before timing, a
check makes sure each route proxies (200 from the origin) and that the limits really count (a route
with a 1/h limit refuses its second request).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benches.load import configs, wrk
from benches.load.common import CLK_TCK, ORIGIN_CPUS, RESULTS, ROOT, SECRET, SUT_CPUS, descendants, free_port, install_cleanup, log, proc_jiffies, start, stop, tokens, wait_port
from benches.load.systems import Ctx, Running, gateway_workers, origin_start, snapshot_gateway
from benches.load.suite import Suite, _median_run, core_hash, machine

LIMITS = """
[limits.bench_memory]
key = "ip"
rate = "1000000/s"
burst = 100000

[limits.bench_redis]
key = "ip"
rate = "1000000/s"
burst = 100000
store = "redis"
redis = "redis://127.0.0.1:{redis}/0"
on_store_error = "deny"

[limits.bench_check]
key = "ip"
rate = "1/h"

[limits.bench_check_redis]
key = "ip"
rate = "1/h"
store = "redis"
redis = "redis://127.0.0.1:{redis}/0"
on_store_error = "deny"
"""

ROUTES = """
[[routes]]
match = "/rl/none/:p*"
origin = "web"

[[routes]]
match = "/rl/memory/:p*"
origin = "web"
rate_limit = ["bench_memory"]

[[routes]]
match = "/rl/redis/:p*"
origin = "web"
rate_limit = ["bench_redis"]

[[routes]]
match = "/rl/check-memory"
origin = "web"
rate_limit = ["bench_check"]

[[routes]]
match = "/rl/check-redis"
origin = "web"
rate_limit = ["bench_check_redis"]
"""

SCENARIOS = {
    "R0": wrk.Scenario("R0", "proxy, no limit", "GET", "/rl/none/x"),
    "R1": wrk.Scenario("R1", "proxy, memory limit", "GET", "/rl/memory/x"),
    "R2": wrk.Scenario("R2", "proxy, redis limit", "GET", "/rl/redis/x"),
}
TARGETS = {"R1": 0.95, "R2": 0.75}


def config_text(port: int, ctx: Ctx, redis_port: int) -> str:
    limits = LIMITS.format(redis=redis_port)
    text = configs.gateway_toml(port, ctx.origin_port, ctx.tmp, ROUTES)
    return text.replace("\n[[routes]]", limits + "\n[[routes]]", 1)


def _get(port: int, path: str) -> int:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def check(port: int) -> list[str]:
    problems = []
    for sc in SCENARIOS.values():
        status = _get(port, sc.path)
        if status != 200:
            problems.append(f"{sc.path} answered {status}, expected the origin's 200")
    for path in ("/rl/check-memory", "/rl/check-redis"):
        got = [_get(port, path), _get(port, path)]
        if got != [200, 429]:
            problems.append(f"{path} answered {got}, expected [200, 429]: the limit is not counting")
    return problems


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benches ratelimits", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per timed run (default 4)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per scenario, interleaved; median reported (default 3)")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--quiet-wait", type=float, default=60.0)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--no-retry", action="store_true", help="keep every timed run even when other processes used the machine meanwhile (they are marked)")
    a = ap.parse_args(argv)
    a.quick = a.no_retry  # the suite's one_run retries a contaminated run unless quick
    for tool in ("wrk", "nginx", "taskset", "redis-server"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            raise SystemExit(f"benches ratelimits: needs {tool}")
    install_cleanup()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-rl-"))
    tmp.chmod(0o755)
    (tmp / "regions.json").write_text(configs.REGIONS_JSON)
    ctx = Ctx(tmp=tmp, origin_port=free_port(), gateway_path=snapshot_gateway(tmp))
    started = time.strftime("%Y-%m-%dT%H-%M-%S")
    res: dict[str, Any] = {
        "started": started,
        "command": " ".join(["python -m benches ratelimits", *argv]),
        "machine": machine(),
        "gateway_core_sha256": core_hash(ctx.gateway_path / "gateway"),
        "settings": {"duration_s": a.duration, "runs": a.runs, "connections": a.connections, "workers": a.workers, "pinning": {"gateway+origin+redis": SUT_CPUS, "wrk": "0"}},
    }
    origin = redis = gw = None
    rc = 0
    try:
        origin = origin_start(ctx)
        redis_port = free_port()
        redis = start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)], cpus=ORIGIN_CPUS, log_path=tmp / "redis.log")
        wait_port(redis_port, 30, redis)
        port = free_port()
        cfg = tmp / "gateway-rl.toml"
        cfg.write_text(config_text(port, ctx, redis_port))
        env = {"JWT_SECRET": SECRET, "PYTHONPATH": str(ctx.gateway_path)}
        cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}", "--workers", str(a.workers)]
        gw = start(cmd, cpus=SUT_CPUS, env=env, log_path=tmp / "gateway.log")
        wait_port(port, 60, gw)
        problems = check(port)
        if problems:
            for p in problems:
                log(f"ratelimits: CHECK FAILED: {p}")
            res["problems"] = problems
            return 1
        log("ratelimits: checks passed (each route proxies; both stores count); timing")
        suite = Suite(a, ctx, tokens(), origin)
        suite.scen.update(SCENARIOS)
        run = Running(port, gw, tmp / "gateway.log", gateway_workers(gw.pid))
        res["background_busy_pct"] = suite.settle("ratelimits")
        for key in SCENARIOS:
            wrk.run(port, SCENARIOS[key], duration=a.warmup, connections=a.connections, script=suite.script)
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in SCENARIOS}

        def ours() -> list[int]:
            # Everything serving the request on the SUT core: the gateway and its workers, the origin, redis.
            assert gw is not None and redis is not None and origin is not None
            return [p for root in (gw.pid, redis.pid, origin.pid) for p in (root, *descendants(root))]

        for i in range(a.runs):
            for key in SCENARIOS:
                assert redis is not None
                cpu0, redis0 = proc_jiffies(ours()), proc_jiffies([redis.pid])
                r = suite.one_run(SCENARIOS[key].title, port, key, i, run)
                # CPU per request: what the work costs, whatever else the machine was doing meanwhile
                # (req/s on a shared machine measures the neighbours as much as the gateway).
                r["cpu_us_per_request"] = round((proc_jiffies(ours()) - cpu0) / CLK_TCK * 1e6 / max(1, r["requests"]), 1)
                r["redis_cpu_us_per_request"] = round((proc_jiffies([redis.pid]) - redis0) / CLK_TCK * 1e6 / max(1, r["requests"]), 1)
                runs[key].append(r)
        medians = {k: _median_run(v) for k, v in runs.items()}
        for k, v in runs.items():
            medians[k]["cpu_us_per_request"] = sorted(x["cpu_us_per_request"] for x in v)[len(v) // 2]
            medians[k]["redis_cpu_us_per_request"] = sorted(x["redis_cpu_us_per_request"] for x in v)[len(v) // 2]
        base = medians["R0"]["rps"]
        base_cpu = medians["R0"]["cpu_us_per_request"]
        res["scenarios"] = {k: {"title": SCENARIOS[k].title, "path": SCENARIOS[k].path, "runs": runs[k], "median": medians[k]} for k in SCENARIOS}
        res["ratios"] = {k: round(medians[k]["rps"] / base, 3) if base else None for k in ("R1", "R2")}
        # Throughput when the SUT core is the bottleneck is the inverse of CPU per request.
        res["cpu_ratios"] = {k: round(base_cpu / medians[k]["cpu_us_per_request"], 3) if medians[k]["cpu_us_per_request"] else None for k in ("R1", "R2")}
        res["decide_cpu_us"] = decide_cpu(cfg, 5000)
        errors = {k: {e: n for e, n in m["errors"].items() if n} for k, m in medians.items()}
        if any(errors.values()):
            log(f"ratelimits: ERRORS during the runs: {errors}")
            rc = 1
        print()
        print(markdown(res))
    finally:
        for p in (gw, redis, origin):
            if p is not None:
                stop(p)
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{started}-ratelimits.json").write_text(json.dumps(res, indent=2))
        log(f"ratelimits: wrote {(out / f'{started}-ratelimits.json').relative_to(ROOT)}")
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


def decide_cpu(cfg: Path, n: int) -> dict[str, float]:
    """CPU µs of `pipeline.decide` (every stage up to the forward) per request on each route, in this
    process, best of 5: the gateway's own cost of a limit, apart from the server, the origin and
    redis-server (a redis check's round trip is waited for, but only this process's CPU counts)."""
    import asyncio
    import os

    os.environ.setdefault("JWT_SECRET", SECRET)
    from gateway import pipeline
    from gateway.config import load
    from gateway.context import RequestContext
    from gateway.kv import KVStore
    from gateway.request import from_url

    config = load(cfg)

    async def measure() -> dict[str, float]:
        kv = KVStore(config.kv)
        out = {}
        for key, sc in SCENARIOS.items():
            req = from_url("GET", f"http://localhost{sc.path}", [], "127.0.0.1")
            for _ in range(500):
                await pipeline.decide(RequestContext(config, req, kv, 0.0))
            best = float("inf")
            for _ in range(5):
                t = time.process_time()
                for _ in range(n):
                    ctx = RequestContext(config, req, kv, 0.0)
                    await pipeline.decide(ctx)
                    assert ctx.answer is None, f"{sc.path}: {ctx.answer.status if ctx.answer else ''}"
                best = min(best, (time.process_time() - t) / n)
            out[key] = round(best * 1e6, 2)
        await kv.close()
        return out

    import uvloop

    return uvloop.run(measure())


def markdown(res: dict[str, Any]) -> str:
    s = res["settings"]
    lines = [
        f"`{res['command']}` — {res['started']}, gateway {s['workers']} worker(s) + nginx origin + redis-server on core {s['pinning']['gateway+origin+redis']}, "
        f"`wrk -t1 -c{s['connections']} -d{s['duration_s']:g}s` on core 0, {s['runs']} interleaved runs per scenario, medians.",
        "",
        "| scenario | req/s | p50 | p99 | req/s vs no limit | CPU µs / request: gateway + origin + redis (of which redis) | by CPU vs no limit | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, sc in res["scenarios"].items():
        m = sc["median"]
        ratio, cpu_ratio = res["ratios"].get(key), res["cpu_ratios"].get(key)
        target = TARGETS.get(key)
        verdict = "" if target is None else f"≥ {target:.2f}x: " + ", ".join(f"{what} {'met' if r is not None and r >= target else 'NOT met'}" for what, r in (("req/s", ratio), ("CPU", cpu_ratio)))
        lines.append(
            f"| {sc['title']} (`{sc['path']}`) | {m['rps']:,.0f} | {m['p50_ms']:.2f} ms | {m['p99_ms']:.2f} ms | {'' if ratio is None else f'{ratio:.3f}x'} "
            f"| {m['cpu_us_per_request']:.1f} ({m['redis_cpu_us_per_request']:.1f}) | {'' if cpu_ratio is None else f'{cpu_ratio:.3f}x'} | {verdict} |"
        )
    d = res.get("decide_cpu_us")
    if d:
        lines += [
            "",
            "The gateway's own cost, in process (`pipeline.decide`, every stage up to the forward, CPU µs per request, best of 5): "
            + ", ".join(f"{res['scenarios'][k]['title']} {v:.2f}" for k, v in d.items())
            + f" — the memory limit adds {d['R1'] - d['R0']:.2f} µs, the redis limit {d['R2'] - d['R0']:.2f} µs of this process's CPU.",
        ]
    foreign = [r["foreign_cpu_pct"] for sc in res["scenarios"].values() for r in sc["runs"]]
    lines += ["", f"Other processes used {min(foreign):.0f}-{max(foreign):.0f} % of a core during the timed runs (0 on a quiet machine)."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
