"""JWT HS256 verification micro-benchmark: gateway against its Python peers, in one run (issue 2).

    .venv/bin/python benches/verify_micro.py            # full: ~1 minute
    .venv/bin/python benches/verify_micro.py --quick    # smoke: a few seconds
    .venv/bin/python -m benches.verify_micro --json /tmp/jwt.json --write-results

Every (peer, scenario) is timed timeit-style: ``N`` calls per repeat with the garbage collector off,
several repeats interleaved across all cells (so a slow spell of the machine hits every peer alike),
and the best and median repeat reported per call. Failure scenarios time
``try: f(tok) except Exception: pass``. The peers and tokens are in ``benches/jwt_peers.py``; each
adapter is checked for correctness once before anything is timed, and a peer that cannot be imported
is listed as skipped with the reason.

Prints a Markdown report: machine, per-call times, each peer's time over gateway.Verifier's, and
whether the targets hold:

  T1  gateway.Verifier >= 40x faster than PyJWT on success, bad-signature and expired;
  T2  gateway.Verifier faster than every third-party peer on every scenario (malformed included).

``--write-results [PATH]`` replaces (or adds) only the section "## JWT verification (issue 2
micro-benchmarks)" of benches/RESULTS.md. ``--strict`` exits 1 when a target misses.
CPU only, no network.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import jwt_peers as jp

SECTION = "## JWT verification (issue 2 micro-benchmarks)"
RESULTS_HEADER = (
    "# Benchmark results\n\n"
    "Figures measured with the scripts in `benches/`. Each section belongs to the benchmark that writes\n"
    "it; re-running that benchmark replaces only its own section.\n"
)
TARGET_PYJWT_RATIO = 40.0

SUCCESS_STMT = "f(tok)"
FAILURE_STMT = "try:\n    f(tok)\nexcept Exception:\n    pass"


# --- machine ----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def git_head() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              check=False, capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               check=False, capture_output=True, text=True, timeout=5).stdout.strip()
        return head + (" (+ uncommitted changes)" if dirty else "") if head else "n/a"
    except (OSError, subprocess.SubprocessError):
        return "n/a"


def gateway_build() -> str:
    try:
        import gateway._core as core

        p = Path(core.__file__)
        mtime = _dt.datetime.fromtimestamp(p.stat().st_mtime, _dt.timezone.utc)
        return f"{p.name}, {p.stat().st_size / 1e6:.1f} MB, built {mtime:%Y-%m-%d %H:%M} UTC"
    except Exception as e:  # noqa: BLE001
        return f"n/a ({type(e).__name__})"


def machine_info() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": jp.package_versions(),
        "gateway_core": gateway_build(),
        "git": git_head(),
        "loadavg_start": loadavg(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- timing -----------------------------------------------------------------------------------


def make_timer(f: Any, tok: str, scenario: str) -> timeit.Timer:
    stmt = SUCCESS_STMT if scenario == "success" else FAILURE_STMT
    # The statement runs inline in timeit's loop: no extra wrapper call per iteration.
    return timeit.Timer(stmt, globals={"f": f, "tok": tok})


def calibrate(timer: timeit.Timer, target: float) -> int:
    """Smallest 1-2-5 number of calls whose repeat takes >= target seconds (like Timer.autorange)."""
    number = 1
    while True:
        for m in (1, 2, 5):
            n = number * m
            if timer.timeit(n) >= target:
                return n
        number *= 10


def run(peers: list[jp.Peer], ts: jp.TokenSet, scenarios: list[str], repeats: int, target: float,
        seed: int = 2) -> dict[tuple[str, str], dict[str, Any]]:
    cells = []
    for p in peers:
        if p.verify is None or p.failed_check:
            continue
        for s in scenarios:
            t = make_timer(p.verify, ts.tokens[s], s)
            t.timeit(50)  # warm up
            cells.append((p.name, s, t, calibrate(t, target)))
    results: dict[tuple[str, str], dict[str, Any]] = {
        (name, s): {"number": n, "per_call_s": []} for name, s, _t, n in cells
    }
    rng = random.Random(seed)
    order = list(cells)
    for r in range(repeats):
        rng.shuffle(order)
        gc.collect()
        for name, s, t, n in order:
            results[(name, s)]["per_call_s"].append(t.timeit(n) / n)  # timeit disables gc while timing
        print(f"  round {r + 1}/{repeats} done", file=sys.stderr)
    for v in results.values():
        v["best_ns"] = min(v["per_call_s"]) * 1e9
        v["median_ns"] = statistics.median(v["per_call_s"]) * 1e9
    return results


# --- report -----------------------------------------------------------------------------------


def fmt_time(ns: float) -> str:
    if ns < 1000:
        return f"{ns:.0f} ns"
    if ns < 10_000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns / 1000:.1f} µs"


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x" if x < 100 else f"{x:.0f}x"


def evaluate(results: dict[tuple[str, str], dict[str, Any]], peers: list[jp.Peer], scenarios: list[str],
             stat: str) -> dict[str, Any]:
    base = jp.BASELINE

    def ratio(p: str, s: str) -> float | None:
        if (p, s) not in results or (base, s) not in results:
            return None
        return results[(p, s)][stat] / results[(base, s)][stat]

    t1 = {}
    for s in jp.PYJWT_40X_SCENARIOS:
        if s in scenarios:
            r = ratio("PyJWT", s)
            t1[s] = {"ratio": r, "ok": (r is not None and r >= TARGET_PYJWT_RATIO)}
    t1_ok = bool(t1) and all(v["ok"] for v in t1.values())

    misses = []
    for p in peers:
        if p.name in (base, "gateway.verify") or (p.name, scenarios[0]) not in results:
            continue
        for s in scenarios:
            r = ratio(p.name, s)
            if r is not None and r <= 1.0:
                misses.append({"peer": p.name, "scenario": s, "ratio": r})
    third_party_timed = any(p.name not in (base, "gateway.verify") and (p.name, scenarios[0]) in results
                            for p in peers)
    t2_ok = third_party_timed and not misses
    return {"T1": {"ok": t1_ok, "by_scenario": t1}, "T2": {"ok": t2_ok, "misses": misses}}


def report(machine: dict[str, Any], peers: list[jp.Peer], ts: jp.TokenSet, scenarios: list[str],
           results: dict[tuple[str, str], dict[str, Any]], verdicts: dict[str, dict[str, Any]],
           params: dict[str, Any], command: str) -> str:
    base = jp.BASELINE
    out: list[str] = []
    w = out.append
    w(f"Command: `{command}`  ")
    w(f"Date: {machine['date']}; load average {machine['loadavg_start']} at start, "
      f"{machine.get('loadavg_end', 'n/a')} at end.")
    try:
        busy = float(machine["loadavg_start"].split()[0]) > 1.0
    except ValueError:
        busy = False
    if busy:
        w("")
        w("Other work was running on this shared machine during the run: absolute times may be inflated; "
          "the ratios compare cells timed in the same interleaved rounds, so they suffer less.")
    w("")
    w("### Machine")
    w("")
    w(f"- CPU: {machine['cpu']} ({machine['cores']} logical cores); {machine['kernel']}")
    w(f"- Python: {machine['python']}")
    pk = machine["packages"]
    w("- Packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if v != "?")
      + ("; not installed: " + ", ".join(k for k, v in pk.items() if v == "?") if "?" in pk.values() else ""))
    w(f"- gateway extension: {machine['gateway_core']}; repo at {machine['git']}")
    w(f"- Timing: {params['repeats']} interleaved repeats per cell, each of N calls lasting >= "
      f"{params['target_s'] * 1000:.0f} ms, gc off while timing; figures are per call, best repeat "
      f"(medians below). Ratio = peer time / gateway.Verifier time (higher = gateway faster).")
    w("")
    w("### Setup")
    w("")
    w(f"HS256, 32-byte random secret, `iss` and `aud` checked, `exp` one hour ahead; good token "
      f"{len(ts.tokens['success'])} bytes (claims: {', '.join(ts.claims)}). Scenarios: "
      "`bad-signature` = last signature character swapped for another canonical base64url one (a different "
      "valid MAC); `expired` = correctly signed, `exp` an hour ago; `malformed` = three parts, header is "
      "base64url of non-JSON text; `malformed-short` = `abc.def`.")
    w("")
    w("| peer | version | usage timed |")
    w("| --- | --- | --- |")
    for p in peers:
        if p.skipped:
            w(f"| {p.name} | {p.version if p.version != '?' else 'not installed'} | skipped: {p.skipped} |")
        elif p.failed_check:
            w(f"| {p.name} | {p.version} | FAILED correctness check, not timed: {p.failed_check} |")
        else:
            w(f"| {p.name} | {p.version} | `{p.usage}` |")
    w("")

    timed = [p for p in peers if (p.name, scenarios[0]) in results]
    for stat, title in (("best_ns", "Time per call (best repeat)"), ("median_ns", "Time per call (median repeat)")):
        w(f"### {title}, with ratio to gateway.Verifier")
        w("")
        w("| peer | " + " | ".join(scenarios) + " |")
        w("| --- |" + " ---: |" * len(scenarios))
        for p in timed:
            cells = []
            for s in scenarios:
                v = results[(p.name, s)][stat]
                if p.name == base:
                    cells.append(f"**{fmt_time(v)}**")
                else:
                    r = v / results[(base, s)][stat]
                    cells.append(f"{fmt_time(v)} ({fmt_ratio(r)})")
            w(f"| {p.name} | " + " | ".join(cells) + " |")
        for p in peers:
            if p not in timed:
                why = f"skipped: {p.skipped}" if p.skipped else f"failed check: {p.failed_check}"
                w(f"| {p.name} | {why.split(':')[0]} |" + " – |" * (len(scenarios) - 1))
        w("")

    w("### Peer / gateway.Verifier (best repeat)")
    w("")
    for p in timed:
        if p.name == base:
            continue
        parts = [f"{s} {fmt_ratio(results[(p.name, s)]['best_ns'] / results[(base, s)]['best_ns'])}"
                 for s in scenarios]
        w(f"- {p.name} / gateway = " + ", ".join(parts))
    w("")

    w("### Targets")
    w("")
    vb, vm = verdicts["best_ns"], verdicts["median_ns"]

    def yn(ok: bool) -> str:
        return "**HOLDS**" if ok else "**MISSED**"

    t1 = ", ".join(f"{s} {fmt_ratio(v['ratio'])}" if v["ratio"] is not None else f"{s} n/a"
                   for s, v in vb["T1"]["by_scenario"].items())
    w(f"- T1 gateway.Verifier >= {TARGET_PYJWT_RATIO:.0f}x faster than PyJWT on "
      f"{', '.join(jp.PYJWT_40X_SCENARIOS)}: {yn(vb['T1']['ok'])} ({t1}); on medians: "
      f"{'holds' if vm['T1']['ok'] else 'missed'}.")
    if vb["T2"]["misses"]:
        miss = "; ".join(f"{m['peer']} on {m['scenario']}: gateway takes {fmt_ratio(1 / m['ratio'])} "
                         f"the peer's time" for m in vb["T2"]["misses"])
        w(f"- T2 gateway.Verifier faster than every third-party peer on every scenario: {yn(False)} ({miss}); "
          f"on medians: {'holds' if vm['T2']['ok'] else 'missed'}.")
    else:
        closest = None
        for p in timed:
            if p.name in (base, "gateway.verify"):
                continue
            for s in scenarios:
                r = results[(p.name, s)]["best_ns"] / results[(base, s)]["best_ns"]
                if closest is None or r < closest[0]:
                    closest = (r, p.name, s)
        extra = f"closest: {closest[1]} on {closest[2]} at {fmt_ratio(closest[0])}" if closest else "no peer timed"
        w(f"- T2 gateway.Verifier faster than every third-party peer on every scenario: "
          f"{yn(vb['T2']['ok'])} ({extra}); on medians: {'holds' if vm['T2']['ok'] else 'missed'}.")
    if ("gateway.verify", scenarios[0]) in results:
        gv = ", ".join(f"{s} {fmt_ratio(results[('gateway.verify', s)]['best_ns'] / results[(base, s)]['best_ns'])}"
                       for s in scenarios)
        w(f"- (info) one-shot gateway.verify / gateway.Verifier: {gv}.")
    w("")
    w("Exceptions seen in the correctness check (bad-signature / expired / malformed / malformed-short / "
      "wrong-iss / wrong-aud):")
    w("")
    for p in timed:
        w(f"- {p.name}: " + ", ".join(p.raised.get(s, "?") for s in
                                      ("bad-signature", "expired", "malformed", "malformed-short",
                                       "wrong-iss", "wrong-aud")))
    return "\n".join(out) + "\n"


def write_section(path: Path, body: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else RESULTS_HEADER
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip("\n") == SECTION), None)
    new = [SECTION + "\n", "\n", body if body.endswith("\n") else body + "\n"]
    if start is None:
        if lines and lines[-1].strip():
            lines.append("\n")
        lines += new
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        tail = lines[end:]
        if tail:
            new.append("\n")
        lines = lines[:start] + new + tail
    path.write_text("".join(lines), encoding="utf-8")


def command_line() -> str:
    exe = sys.executable
    try:
        exe = os.path.relpath(exe) if not os.path.relpath(exe).startswith("..") else exe
    except ValueError:
        pass
    spec = globals().get("__spec__")
    target = ["-m", spec.name] if spec is not None and spec.name else [os.path.relpath(sys.argv[0])]
    return " ".join(shlex.quote(a) for a in [exe, *target, *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats of ~10 ms per cell (< 20 s)")
    ap.add_argument("--repeats", type=int, help="repeats per cell (default 9, quick 3)")
    ap.add_argument("--target-ms", type=float, help="minimum duration of one repeat (default 150, quick 10)")
    ap.add_argument("--peers", help="comma-separated subset of: " + ", ".join(jp.PEER_NAMES))
    ap.add_argument("--scenarios", help="comma-separated subset of: " + ", ".join(jp.SCENARIOS))
    ap.add_argument("--json", metavar="PATH", help="write the raw figures as JSON")
    ap.add_argument("--write-results", nargs="?", const=str(HERE / "RESULTS.md"), metavar="PATH",
                    help=f"replace the section '{SECTION[3:]}' of PATH (default benches/RESULTS.md)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)

    repeats = args.repeats or (3 if args.quick else 9)
    target = (args.target_ms or (10.0 if args.quick else 150.0)) / 1000
    scenarios = args.scenarios.split(",") if args.scenarios else list(jp.SCENARIOS)
    for s in scenarios:
        if s not in jp.SCENARIOS:
            ap.error(f"unknown scenario {s!r}")
    names = args.peers.split(",") if args.peers else list(jp.PEER_NAMES)
    for n in names:
        if n not in jp.PEER_NAMES:
            ap.error(f"unknown peer {n!r}")
    if jp.BASELINE not in names:
        names.insert(0, jp.BASELINE)

    t0 = time.perf_counter()
    machine = machine_info()
    if float(machine["loadavg_start"].split()[0] if machine["loadavg_start"] != "n/a" else 0) > 0.7:
        print(f"warning: load average {machine['loadavg_start']}: other work is running, figures may be noisy",
              file=sys.stderr)
    ts = jp.make_tokens()
    peers = [jp.build_peer(n, ts) for n in names]
    for p in peers:
        if p.skipped is None:
            try:
                jp.check_peer(p, ts)
            except AssertionError as e:
                p.failed_check = str(e)
        state = p.skipped and f"skipped: {p.skipped}" or p.failed_check and f"FAILED CHECK: {p.failed_check}" \
            or f"ok ({p.usage})"
        print(f"{p.name}: {state}", file=sys.stderr)
    base = next(p for p in peers if p.name == jp.BASELINE)
    if base.verify is None or base.failed_check:
        print(f"gateway.Verifier unusable: {base.skipped or base.failed_check}", file=sys.stderr)
        return 2

    results = run(peers, ts, scenarios, repeats, target)
    machine["loadavg_end"] = loadavg()
    verdicts = {stat: evaluate(results, peers, scenarios, stat) for stat in ("best_ns", "median_ns")}
    params = {"repeats": repeats, "target_s": target, "quick": args.quick}
    command = command_line()
    body = report(machine, peers, ts, scenarios, results, verdicts, params, command)
    print(SECTION + "\n")
    print(body)
    print(f"(measured in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)

    if args.json:
        raw = {
            "command": command,
            "machine": machine,
            "params": params,
            "token_bytes": {s: len(t) for s, t in ts.tokens.items()},
            "peers": [{"name": p.name, "version": p.version, "usage": p.usage, "skipped": p.skipped,
                       "failed_check": p.failed_check, "raised": p.raised} for p in peers],
            "results": [{"peer": k[0], "scenario": k[1], **v} for k, v in results.items()],
            "targets": verdicts,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    if args.write_results:
        write_section(Path(args.write_results), body)
        print(f"wrote section to {args.write_results}", file=sys.stderr)

    ok = verdicts["best_ns"]["T1"]["ok"] and verdicts["best_ns"]["T2"]["ok"]
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
