"""Where the Python handler's time goes, per scenario, with no HTTP server in the way (issue 4).

    .venv/bin/python benches/handler_cost.py            # decide(), forward_headers(), handle() per scenario
    .venv/bin/python benches/handler_cost.py --proxy    # + S2/S4 through the real upstream client and an nginx origin

Runs in-process on uvloop with the suite's reference config (benches/load/configs.py): `decide()` and
`forward_headers()` are timed with timeit (best of 5), `GatewayApp.handle()` is driven with ASGI
scope/receive/send stand-ins. With `--proxy`, 64 concurrent tasks send S2/S4 through the real
`UpstreamClient` to nginx (started like the suite's origin), which gives the handler + upstream +
origin cost per request without Granian. Pin it the way the suite pins the gateway:
`taskset -c 1 .venv/bin/python benches/handler_cost.py --proxy`.
"""

from __future__ import annotations

import argparse
import asyncio
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
from gateway.app import GatewayApp  # noqa: E402
from gateway.config import load  # noqa: E402
from gateway.rules import decide, forward_headers  # noqa: E402

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", action="store_true", help="also run S2/S4 through the upstream client to an nginx origin")
    ap.add_argument("-n", type=int, default=20000, help="requests per timing")
    a = ap.parse_args()
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
        print("scenario | decide() µs | forward_headers() µs | handle() µs (no proxy) / req/s through the upstream client")
        for name, (path, raw_headers) in scenarios().items():
            headers = [(k.decode(), v.decode()) for k, v in raw_headers]
            t_decide = min(timeit.repeat(lambda: decide(config, "GET", path.encode(), "", headers, PEER), number=n, repeat=5)) / n * 1e6
            d = decide(config, "GET", path.encode(), "", headers, PEER)
            t_fwd = min(timeit.repeat(lambda: forward_headers(config, d, headers, PEER, "http"), number=n, repeat=5)) / n * 1e6
            scope = scope_for(path, raw_headers)
            extra = "-"
            if d.action != "proxy" or a.proxy:
                tasks = 1 if d.action != "proxy" else 64

                async def worker(count: int) -> None:
                    for _ in range(count):
                        await app.handle(scope, _receive, send)

                async def run() -> float:
                    t = time.perf_counter()
                    await asyncio.gather(*(worker(n // tasks) for _ in range(tasks)))
                    return time.perf_counter() - t

                statuses.clear()
                best = min(uvloop.run(run()) for _ in range(3 if d.action != "proxy" else 2))
                done = (n // tasks) * tasks
                per = best / done * 1e6
                extra = f"{per:.2f} µs" if d.action != "proxy" else f"{done / best:,.0f} req/s ({per:.1f} µs incl. upstream + origin)"
                assert set(statuses) <= {200, 302}, statuses
            print(f"{name} | {t_decide:.2f} | {t_fwd:.2f} | {extra}")
    finally:
        if origin is not None:
            origin.terminate()
            origin.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
