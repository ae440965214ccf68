"""The WS scenario of issue 11: echo round trips per second over 64 open WebSockets, through the
gateway (1 worker), through nginx (its WebSocket proxy set-up) and straight to the origin, in one run.

    python -m benches --ws                      # 5 s per system, 1 run; prints the table
    python -m benches --ws --runs 3 --write-results   # median of 3; replaces "## WebSockets (issue 11)" in RESULTS.md

Pinning as in the load suite: the load generator (benches/load/ws_load.py) alone on core 0, the
origin (benches/load/peers/ws_echo.py, the `websockets` server) and the system under test on core 1.
Target: gateway ≥ 0.5x nginx.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benches.load import configs
from benches.load.common import ORIGIN_CPUS, RESULTS, ROOT, SUT_CPUS, WRK_CPUS, free_port, log, start, stop, wait_port

SECTION = "## WebSockets (issue 11)"
TARGET = 0.5


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benches --ws", description=__doc__)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per timed run (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=1, help="timed runs per system, median reported (default 1)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--size", type=int, default=64, help="message bytes (default 64)")
    ap.add_argument("--write-results", action="store_true", help=f"replace the '{SECTION}' section of benches/RESULTS.md with this run")
    return ap.parse_args(argv)


def _load(port: int, a: argparse.Namespace) -> dict[str, Any]:
    cmd = ["taskset", "-c", WRK_CPUS, sys.executable, "-m", "benches.load.ws_load", "--url", f"ws://127.0.0.1:{port}/ws/bench"]
    cmd += ["--connections", str(a.connections), "--duration", str(a.duration), "--warmup", str(a.warmup), "--size", str(a.size)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=a.duration + a.warmup + 60)
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed: {out.stderr.strip()[-600:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _start_system(name: str, tmp: Path, origin: int) -> tuple[int, subprocess.Popen[bytes] | None]:
    if name == "direct":
        return origin, None
    port = free_port()
    if name == "nginx":
        conf = tmp / "ws-nginx.conf"
        conf.write_text(configs.WS_NGINX.format(tmp=tmp, port=port, origin=origin))
        p = start(["nginx", "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "ws-proxy-error.log")], cpus=SUT_CPUS, log_path=tmp / "ws-nginx.log")
    else:
        cfg = tmp / "ws-gateway.toml"
        cfg.write_text(configs.WS_GATEWAY.format(port=port, origin=origin))
        p = start([sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--workers", "1"], cpus=SUT_CPUS, log_path=tmp / "ws-gateway.log")
    wait_port(port, 60, p)
    time.sleep(0.5)
    return port, p


SYSTEMS = (("direct", "origin direct (websockets server)"), ("gateway-1w", "gateway 1 worker"), ("nginx", "nginx WebSocket proxy"))


def main(argv: list[str]) -> int:
    a = parse(argv)
    tmp = Path(tempfile.mkdtemp(prefix="gateway-ws-bench-"))
    origin_port = free_port()
    origin = start([sys.executable, "-m", "benches.load.peers.ws_echo", "--port", str(origin_port)], cpus=ORIGIN_CPUS, log_path=tmp / "ws-origin.log")
    results: dict[str, Any] = {"duration": a.duration, "runs": a.runs, "connections": a.connections, "size": a.size, "systems": {}}
    try:
        wait_port(origin_port, 30, origin)
        for name, label in SYSTEMS:
            port, proc = _start_system(name, tmp, origin_port)
            try:
                runs = [_load(port, a) for _ in range(a.runs)]
            finally:
                if proc is not None:
                    stop(proc, grace=15.0)
            best = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
            results["systems"][name] = {"label": label, "median": best, "runs": runs}
            log(f"WS {label}: {best['rps']:.0f} round trips/s, p50 {best['p50_ms']} ms, p99 {best['p99_ms']} ms, errors {best['errors']}")
    finally:
        stop(origin)
    text = report(results)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S")
    (RESULTS / f"ws-{stamp}.json").write_text(json.dumps(results, indent=2))
    if a.write_results:
        _write_section(text, argv)
    errors = sum(r["median"]["errors"] for r in results["systems"].values())
    return 1 if errors else 0


def ratio(results: dict[str, Any]) -> float | None:
    s = results["systems"]
    try:
        return s["gateway-1w"]["median"]["rps"] / s["nginx"]["median"]["rps"]
    except (KeyError, ZeroDivisionError):
        return None


def report(results: dict[str, Any]) -> str:
    lines = [
        f"{results['connections']} open WebSockets, each sending a {results['size']}-byte text message and awaiting its echo in a loop; "
        f"{results['duration']:g} s per run after a warm-up, {results['runs']} run(s) (median); load generator on core 0, origin and system on core 1.",
        "",
        "| system | round trips/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for name, s in results["systems"].items():
        m = s["median"]
        lines.append(f"| {s['label']} | {m['rps']:.0f} | {m['p50_ms']} | {m['p99_ms']} | {m['errors']} |")
    r = ratio(results)
    lines += ["", f"Target: gateway ≥ {TARGET}x nginx — measured {'–' if r is None else f'{r:.2f}x'} ({'met' if r is not None and r >= TARGET else 'NOT met'})."]
    d = results["systems"].get("direct", {}).get("median", {}).get("rps")
    if d and r is not None:
        g = results["systems"]["gateway-1w"]["median"]["rps"]
        lines.append(f"Gateway / direct: {g / d:.2f}x (the direct row is also the Python load generator's own ceiling).")
    return "\n".join(lines)


def _write_section(text: str, argv: list[str]) -> None:
    path = ROOT / "benches" / "RESULTS.md"
    md = path.read_text()
    body = f"{SECTION}\n\nCommand: `.venv/bin/python -m benches --ws {' '.join(x for x in argv if x != '--write-results')}`".rstrip() + f" (run {time.strftime('%Y-%m-%d')}).\n\n{text}\n"
    if SECTION in md:
        start_at = md.index(SECTION)
        nxt = md.find("\n## ", start_at + len(SECTION))
        md = md[:start_at] + body + (md[nxt:] if nxt != -1 else "")
    else:
        md = md.rstrip("\n") + "\n\n" + body
    path.write_text(md)
