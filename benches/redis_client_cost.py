"""CPU per rate-limit check on redis: redis-py's asyncio client against gateway.redis_pipe (issue 12).

    .venv/bin/python benches/redis_client_cost.py [--checks 4000] [--tasks 64]

Starts a throwaway redis-server on loopback, loads the rate limits' GCRA script, and makes `--checks`
EVALSHA calls from `--tasks` concurrent asyncio tasks on uvloop, once through redis-py's asyncio
client (one pooled connection per concurrent call) and once through `gateway.redis_pipe.RedisPipe`
(one pipelined connection), printing this process's CPU time per call for each (the server's is not
counted). Why the gateway uses the second for its per-request checks: see python/gateway/redis_pipe.py.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

import uvloop  # noqa: E402

from gateway.limits import GCRA_LUA, GCRA_SHA1  # noqa: E402
from gateway.redis_pipe import RedisPipe  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(call: object, checks: int, tasks: int) -> float:
    async def worker(n: int) -> None:
        for i in range(n):
            await call(f"bench:{i % 100}")  # type: ignore[operator]

    await worker(50)  # connect, warm up
    t = time.process_time()
    await asyncio.gather(*(worker(checks // tasks) for _ in range(tasks)))
    return (time.process_time() - t) / (checks // tasks * tasks)


async def main_async(port: int, checks: int, tasks: int) -> None:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis(host="127.0.0.1", port=port)
    await client.script_load(GCRA_LUA)

    async def with_redis_py(key: str) -> object:
        return await client.evalsha(GCRA_SHA1, 1, key, 1, 1_000_000_000)

    pipe = RedisPipe(f"redis://127.0.0.1:{port}/0", 5.0)

    async def with_pipe(key: str) -> object:
        return await pipe.call("EVALSHA", GCRA_SHA1, 1, key, 1, 1_000_000_000)

    for name, call in (("redis-py asyncio", with_redis_py), ("gateway.redis_pipe", with_pipe)):
        cpu = await measure(call, checks, tasks)
        print(f"{name:<20} {cpu * 1e6:7.1f} µs of CPU per EVALSHA ({tasks} concurrent tasks, {checks} calls)")
    await client.aclose()
    pipe.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=int, default=4000)
    ap.add_argument("--tasks", type=int, default=64)
    a = ap.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("needs redis-server on PATH")
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", d], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            uvloop.run(main_async(port, a.checks, a.tasks))
        finally:
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
