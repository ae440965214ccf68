"""Where the Python handler's time goes, per scenario, with no HTTP server in the way (issue 4).

    .venv/bin/python benches/handler_cost.py            # Request, the stages, the whole ASGI call per scenario
    .venv/bin/python benches/handler_cost.py --proxy    # + S2/S4 through the real upstream client and an nginx origin
    .venv/bin/python benches/handler_cost.py --hooks    # only: S2's stages with one no-op request hook vs without (issue 13)

Runs in-process on uvloop with the suite's reference config (benches/load/configs.py): building the
`Request` from the ASGI scope and running `pipeline.decide` (every stage up to the forward) are timed
in a loop (best of 5); the whole ASGI call `GatewayApp(scope, receive, send)` is driven with
receive/send stand-ins. With `--proxy`, 64 concurrent tasks send S2/S4 through the real
`UpstreamClient` to nginx (started like the suite's origin), which gives the handler + upstream +
origin cost per request without Granian. Pin it the way the suite pins the gateway:
`taskset -c 1 .venv/bin/python benches/handler_cost.py --proxy`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benches.load import configs, systems  # noqa: E402
from benches.load.common import SECRET, free_port  # noqa: E402

os.environ.setdefault("JWT_SECRET", SECRET)

import uvloop  # noqa: E402

import gateway  # noqa: E402
from gateway import pipeline  # noqa: E402
from gateway.app import GatewayApp  # noqa: E402
from gateway.config import load  # noqa: E402
from gateway.context import RequestContext  # noqa: E402
from gateway.request import from_scope  # noqa: E402

PEER = "127.0.0.1"


def scenarios() -> dict[str, tuple[str, list[tuple[bytes, bytes]]]]:
    now = int(time.time())
    valid = gateway.encode({"sub": "user-1", "iat": now, "exp": now + 3600}, os.environ["JWT_SECRET"])
    forged = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    host = [(b"host", b"127.0.0.1:8080")]
    return {
        "S1": ("/dashboard", host),
        "S2": ("/dashboard/x", host + [(b"authorization", f"Bearer {valid}".encode())]),
        "S3": ("/dashboard/x", host + [(b"cookie", f"auth-token={forged}".encode())]),
        "S4": ("/products", host + [(b"cf-ipcountry", b"KR")]),
    }


def scope_for(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"", "headers": headers, "client": (PEER, 5555), "scheme": "http"}


async def _receive() -> dict[str, object]:
    return {"type": "http.request", "body": b"", "more_body": False}


def stage_costs(config: object, request: object, kv: object, upto: int, n: int) -> float:
    """µs per request for a fresh context through the first `upto` stages (0 = the context alone), or
    -1 when a stage before the last of them answers (the last is not reached). Coroutine stages are
    driven by hand: none of them waits here."""
    stages = [s.run for s in pipeline.STAGES[:upto]]

    def one() -> int:
        ctx = RequestContext(config, request, kv, 0.0)  # type: ignore[arg-type]
        for i, run in enumerate(stages):
            out = run(ctx)
            if asyncio.iscoroutine(out):
                try:
                    out.send(None)
                except StopIteration as done:
                    out = done.value
            if out is not None:
                return i
        return len(stages) - 1

    if upto and one() < upto - 1:
        return -1.0
    return min(timeit.repeat(one, number=n, repeat=5)) / n * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", action="store_true", help="also run S2/S4 through the upstream client to an nginx origin")
    ap.add_argument("-n", type=int, default=20000, help="requests per timing")
    ap.add_argument("--stages", action="store_true", help="also the cost each stage adds, per scenario (stages run by hand, in order)")
    ap.add_argument("--hooks", action="store_true", help="only the Python hooks comparison (issue 13): S2's stages with and without a no-op async request hook")
    a = ap.parse_args()
    if a.hooks:
        return hook_costs(a.n)
    tmp = Path(tempfile.mkdtemp(prefix="handler-cost-"))
    (tmp / "regions.json").write_text(configs.REGIONS_JSON)
    ctx = systems.Ctx(tmp, free_port())
    origin = systems.origin_start(ctx) if a.proxy else None
    try:
        cfg_path = tmp / "gateway.toml"
        cfg_path.write_text(configs.gateway_toml(1, ctx.origin_port, tmp))
        config = load(str(cfg_path))
        app = GatewayApp(config, str(cfg_path))
        statuses: list[int] = []

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))  # type: ignore[call-overload]

        n = a.n

        async def time_stages(scope: dict[str, object]) -> tuple[float, float]:
            best_request = best_stages = float("inf")
            for _ in range(5):
                t = time.perf_counter()
                for _ in range(n):
                    from_scope(scope)
                best_request = min(best_request, time.perf_counter() - t)
                request = from_scope(scope)
                t = time.perf_counter()
                for _ in range(n):
                    await pipeline.decide(RequestContext(config, request, app.kv, 0.0))
                best_stages = min(best_stages, time.perf_counter() - t)
            return best_request / n * 1e6, best_stages / n * 1e6

        print("scenario | Request µs | stages µs | whole ASGI call µs (no proxy) / req/s through the upstream client")
        for name, (path, raw_headers) in scenarios().items():
            scope = scope_for(path, raw_headers)
            t_request, t_stages = uvloop.run(time_stages(scope))
            answered = uvloop.run(pipeline.decide(RequestContext(config, from_scope(scope), app.kv, 0.0))) is not None
            extra = "-"
            if answered or a.proxy:
                tasks = 1 if answered else 64

                async def worker(count: int) -> None:
                    for _ in range(count):
                        await app(scope, _receive, send)

                async def run() -> float:
                    t = time.perf_counter()
                    await asyncio.gather(*(worker(n // tasks) for _ in range(tasks)))
                    return time.perf_counter() - t

                statuses.clear()
                best = min(uvloop.run(run()) for _ in range(3 if answered else 2))
                done = (n // tasks) * tasks
                per = best / done * 1e6
                extra = f"{per:.2f} µs" if answered else f"{done / best:,.0f} req/s ({per:.1f} µs incl. upstream + origin)"
                assert set(statuses) <= {200, 302}, statuses
            print(f"{name} | {t_request:.2f} | {t_stages:.2f} | {extra}")
        if a.stages:
            print()
            print("scenario | " + " | ".join(f"+{s.NAME} µs" for s in pipeline.STAGES))
            for name, (path, raw_headers) in scenarios().items():
                request = from_scope(scope_for(path, raw_headers))
                costs = [stage_costs(config, request, app.kv, k, n) for k in range(len(pipeline.STAGES) + 1)]
                print(f"{name} | " + " | ".join(f"{b - a_:.2f}" if b > 0 else "-" for a_, b in zip(costs, costs[1:])))
    finally:
        if origin is not None:
            origin.terminate()
            origin.wait(10)
    return 0


def hook_costs(n: int) -> int:
    """Issue 13, in-process: `pipeline.decide` for S2 in a config without [hooks], for S2 on a route
    without hooks in a config with them, and for S2h (the same route with one no-op async request
    hook: configs.with_hooks); interleaved, best of 7, µs per request and ratios."""
    tmp = Path(tempfile.mkdtemp(prefix="handler-cost-hooks-"))
    (tmp / "regions.json").write_text(configs.REGIONS_JSON)
    plain_path, hooked_path = tmp / "plain.toml", tmp / "hooks.toml"
    text = configs.gateway_toml(1, 9, tmp)
    plain_path.write_text(text)
    hooked_path.write_text(configs.with_hooks(text, tmp))
    plain, hooked = load(str(plain_path)), load(str(hooked_path))
    kv = GatewayApp(plain, str(plain_path)).kv
    s2_path, s2_headers = scenarios()["S2"]
    cases = {
        "S2, no [hooks]": (plain, from_scope(scope_for(s2_path, s2_headers))),
        "S2, [hooks] configured, route without": (hooked, from_scope(scope_for(s2_path, s2_headers))),
        "S2h, one no-op async request hook": (hooked, from_scope(scope_for("/dashboard/h/x", s2_headers))),
    }

    async def once(config: object, request: object) -> float:
        # CPU time of this process, not wall time: on a shared machine other processes' time slices
        # would land in whichever case happens to be running.
        t = time.process_time()
        for _ in range(n):
            ctx = RequestContext(config, request, kv, 0.0)  # type: ignore[arg-type]
            if await pipeline.decide(ctx) is not None:
                raise AssertionError(f"answered {ctx.status}: expected a forward")
        return (time.process_time() - t) / n * 1e6

    async def run() -> dict[str, float]:
        best = {k: float("inf") for k in cases}
        for _ in range(7):
            for k, (config, request) in cases.items():
                best[k] = min(best[k], await once(config, request))
        return best

    # The collector as a serving worker has it (gateway.app.create_app).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    best = uvloop.run(run())
    base = best["S2, no [hooks]"]
    print(f"pipeline.decide per request (best of 7 x {n}, CPU time; the stages up to the forward, no I/O):")
    for k, us in best.items():
        print(f"  {k:<40} {us:6.2f} µs  ({us - base:+.2f} µs vs no [hooks])")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
