"""What a token from an identity provider costs the gateway, in-process (issue 10).

    .venv/bin/python benches/idp_auth_cost.py [-n 2000] [--rounds 9]

One config with a policy per key source, each on its own route: HS256 with a secret (the reference),
and RS256 / ES256 / EdDSA from a JWK Set served over HTTPS by a local key-set server with its own CA
(tests/jwks_server.py; needs the test extra). Each policy twice: with the gateway's default verified
token cache (token_cache = 4096) and with it off (token_cache = 0). Timed: `pipeline.decide` for one
request (every stage up to the forward: auth verifies the token), best of 5, on uvloop, after the key
set was fetched, in interleaved rounds (best kept). Printed: µs per request and the ratio to HS256 in the same run — the machine's
speed drifts, same-run ratios do not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402

from gateway import _core, pipeline  # noqa: E402
from gateway.config import load  # noqa: E402
from gateway.context import RequestContext  # noqa: E402
from gateway.kv import KVStore  # noqa: E402
from gateway.request import from_scope  # noqa: E402
from tests.jwks_server import KeySetServer, SigningKey, TestCA  # noqa: E402

SECRET = "idp-bench-secret-0123456789abcdefghijklmnopqrstuvwxyz"
ALGS = ("RS256", "ES256", "EdDSA")


def config_text(origin_port: int, jwks_url: str) -> str:
    out = [f'[origins.web]\nurl = "http://127.0.0.1:{origin_port}"\n']
    routes = []
    for cache in (4096, 0):
        out.append(f'[auth.hs_{cache}]\nalgorithms = ["HS256"]\nsecret = "env:BENCH_SECRET"\ntoken_cache = {cache}\n')
        routes.append((f"/hs_{cache}", f"hs_{cache}"))
        out.append(
            f'[auth.idp_{cache}]\nalgorithms = {list(ALGS)!r}\njwks_url = "{jwks_url}"\njwks_ca_file = "file:ca/ca.pem"\ntoken_cache = {cache}\n'.replace("'", '"')
        )
        routes.append((f"/idp_{cache}", f"idp_{cache}"))
    for path, policy in routes:
        out.append(f'[[routes]]\nmatch = "{path}"\nauth = "{policy}"\norigin = "web"\n')
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="requests per timing")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds; the best of them is kept")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    ca = TestCA(tmp / "ca")
    keys = {alg: SigningKey(alg, f"k-{alg}") for alg in ALGS}
    server = KeySetServer(ca, list(keys.values()))
    os.environ["BENCH_SECRET"] = SECRET
    try:
        path = tmp / "gateway.toml"
        path.write_text(config_text(9, server.url))
        config = load(str(path))
        kv = KVStore(config.kv)
        now = int(time.time())
        hs = _core.encode({"sub": "u", "iat": now, "exp": now + 3600}, SECRET, "HS256")
        tokens = {"HS256": hs} | {alg: k.sign({"sub": "u"}, ttl=3600) for alg, k in keys.items()}

        def scope(route: str, token: str) -> dict[str, object]:
            headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]
            return {"type": "http", "method": "GET", "path": route, "raw_path": route.encode(), "query_string": b"", "headers": headers, "client": ("127.0.0.1", 5555), "scheme": "http"}

        cases = {(alg, cache): (f"/hs_{cache}" if alg == "HS256" else f"/idp_{cache}", token) for cache in (0, 4096) for alg, token in tokens.items()}

        async def run() -> dict[tuple[str, int], float]:
            requests = {}
            for case, (route, token) in cases.items():
                request = from_scope(scope(route, token))
                ctx = RequestContext(config, request, kv, 0.0)
                assert await pipeline.decide(ctx) is None and ctx.auth_outcome == "valid", (case, ctx.auth_outcome, ctx.auth_reason)
                requests[case] = request
            best = dict.fromkeys(cases, float("inf"))
            # Interleaved rounds: a drift in the machine's speed hits every case alike.
            for _ in range(a.rounds):
                for case, request in requests.items():
                    t = time.perf_counter()
                    for _ in range(a.n):
                        await pipeline.decide(RequestContext(config, request, kv, 0.0))
                    best[case] = min(best[case], (time.perf_counter() - t) / a.n * 1e6)
            return best

        results = uvloop.run(run())
        print(f"stages µs per request (pipeline.decide, best of {a.rounds} interleaved rounds x {a.n}); key-set fetches: {server.fetches}")
        print("alg    | cache off µs | x HS256 off | cache on µs | x HS256 on | on/off")
        for alg in tokens:
            off, on = results[(alg, 0)], results[(alg, 4096)]
            print(f"{alg:<6} | {off:12.2f} | {off / results[('HS256', 0)]:11.2f} | {on:11.2f} | {on / results[('HS256', 4096)]:10.2f} | {on / off:6.2f}")
        asyncio.run(kv.close())
    finally:
        server.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
