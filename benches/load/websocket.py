"""The WS scenario of issue 11: echo round trips per second over 64 open WebSockets, through the
gateway (1 worker), through nginx (its WebSocket proxy set-up) and straight to the origin, in one run.

    python -m benches --ws                      # 3 runs of 5 s per system, taking turns; prints the table
    python -m benches --ws --write-results      # the same; replaces "## WebSockets (issue 11)" in RESULTS.md

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
    ap.add_argument("--runs", type=int, default=3, help="timed runs per system, taking turns; median reported (default 3)")
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
    from benches.load.suite import machine

    results: dict[str, Any] = {"duration": a.duration, "runs": a.runs, "connections": a.connections, "size": a.size, "systems": {}}
    results["machine"] = machine()
    results["versions"] = _versions()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        wait_port(origin_port, 30, origin)
        ports = {}
        for name, _ in SYSTEMS:
            ports[name], proc = _start_system(name, tmp, origin_port)
            if proc is not None:
                procs.append(proc)
        # Every system is up for the whole run and the runs take turns (direct, gateway, nginx,
        # direct, ...): the machine's drift over the run hits all three alike, so the ratios hold.
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in SYSTEMS}
        for i in range(a.runs):
            for name, label in SYSTEMS:
                r = _load(ports[name], a)
                runs[name].append(r)
                log(f"WS {label} run {i + 1}/{a.runs}: {r['rps']:.0f} round trips/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, errors {r['errors']}")
        for name, label in SYSTEMS:
            best = sorted(runs[name], key=lambda r: r["rps"])[len(runs[name]) // 2]
            results["systems"][name] = {"label": label, "median": best, "runs": runs[name]}
    finally:
        for proc in procs:
            stop(proc, grace=15.0)
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


def _versions() -> dict[str, str]:
    import importlib.metadata

    import gateway

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = {"python": sys.version.split()[0], "gateway": f"{gateway.__version__} (commit {commit or '?'})"}
    for pkg in ("granian", "websockets"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "?"
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    out["nginx"] = (nginx.stderr or nginx.stdout).strip().split("/")[-1]
    return out


def ratio(results: dict[str, Any]) -> float | None:
    s = results["systems"]
    try:
        return s["gateway-1w"]["median"]["rps"] / s["nginx"]["median"]["rps"]
    except (KeyError, ZeroDivisionError):
        return None


def report(results: dict[str, Any]) -> str:
    m, v = results.get("machine") or {}, results.get("versions") or {}
    lines = [
        f"Machine: {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores{' (VM)' if m.get('hypervisor') else ''}, {m.get('memory_gb', '?')} GB, "
        f"Linux {m.get('kernel', '?')}; load average at start {' '.join(m.get('loadavg_at_start', []))} (a shared machine: only same-run ratios mean much). "
        f"Versions: Python {v.get('python', '?')}, gateway {v.get('gateway', '?')}, Granian {v.get('granian', '?')}, websockets {v.get('websockets', '?')}, nginx {v.get('nginx', '?')}.",
        "",
        f"{results['connections']} open WebSockets, each sending a {results['size']}-byte text message and awaiting its echo in a loop; "
        f"{results['duration']:g} s per run after a 1 s warm-up, {results['runs']} run(s) per system taking turns (median); load generator on core 0, origin and system on core 1.",
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
    flags = " ".join(x for x in argv if x != "--write-results")
    body = (
        f"{SECTION}\n\nCommand: `.venv/bin/python -m benches --ws{' ' + flags if flags else ''} --write-results` from the repository root "
        f"(about a minute; run {time.strftime('%Y-%m-%d %H:%M')}; raw figures in benches/results/ws-*.json). The gateway proxies "
        "with one worker and no auth on the route, as nginx does; each message crosses Granian's ASGI WebSocket on the client leg "
        "and the websockets library's sans-I/O protocol on the origin leg (benches/load/websocket.py).\n\n"
        f"{text}\n"
    )
    if SECTION in md:
        start_at = md.index(SECTION)
        nxt = md.find("\n## ", start_at + len(SECTION))
        md = md[:start_at] + body + (md[nxt:] if nxt != -1 else "")
    else:
        md = md.rstrip("\n") + "\n\n" + body
    path.write_text(md)
