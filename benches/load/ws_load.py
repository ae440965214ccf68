"""The WebSocket benchmark's load generator: N open WebSockets, each sending a message and waiting for
its echo in a loop; counts round trips over a fixed time after a warm-up.

    python -m benches.load.ws_load --url ws://127.0.0.1:PORT/ws/bench --connections 64 --duration 5

Prints one JSON object: round_trips, seconds, rps, p50_ms, p99_ms, errors. asyncio with uvloop and the
`websockets` client (no compression): wrk speaks no WebSocket. It is a Python client, so it has a
ceiling of its own; the "direct" row (client straight to the origin) shows it in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from websockets.asyncio.client import connect


async def run(url: str, connections: int, duration: float, warmup: float, size: int) -> dict[str, object]:
    payload = "m" * size
    sessions = [await connect(url, compression=None, ping_interval=None, max_size=2**20) for _ in range(connections)]
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + duration
    latencies: list[float] = []
    counted = [0]
    errors = [0]

    async def loop(ws: object) -> None:
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            try:
                await ws.send(payload)  # type: ignore[attr-defined]
                echoed = await ws.recv()  # type: ignore[attr-defined]
            except Exception:
                errors[0] += 1
                return
            t1 = time.perf_counter()
            if echoed != payload:
                errors[0] += 1
            if t0 >= measure_from:
                counted[0] += 1
                latencies.append(t1 - t0)

    await asyncio.gather(*(loop(ws) for ws in sessions))
    for ws in sessions:
        await ws.close()
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3) if latencies else None

    return {"round_trips": counted[0], "seconds": duration, "rps": round(counted[0] / duration, 1), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "errors": errors[0], "connections": connections}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--size", type=int, default=64, help="message bytes (text)")
    a = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(a.url, a.connections, a.duration, a.warmup, a.size))))
