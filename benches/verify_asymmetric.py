"""JWT verification with public keys: gateway against its Python peers and the crypto floor, one run (issue 10).

    .venv/bin/python benches/verify_asymmetric.py                 # full: ~2 minutes (+ the first Rust build)
    .venv/bin/python benches/verify_asymmetric.py --quick         # smoke: ~20 s
    .venv/bin/python benches/verify_asymmetric.py --write-results # also replace its section of RESULTS.md

What is timed, per algorithm (RS256 RSA-2048, ES256 P-256, EdDSA Ed25519), on the same token for
every peer (peers and tokens in ``benches/asym_peers.py``; each adapter is checked for correctness
before anything is timed, and a peer that cannot be used is listed as skipped with the reason):

- **fresh**: every peer verifies the good token, gateway.Verifier with its cache off (cache_size=0),
  so every call checks the signature. Per-op time and speed relative to PyJWT (+ `cryptography`,
  key object prepared once).
- **raw**: aws-lc-rs's own ``ParsedPublicKey::verify_sig`` on the same key, signing input and
  signature (benches/crypto_choice/src/bin/raw_verify.rs), run once per round between the Python
  rounds so both see the same machine; gateway.Verifier / raw is the core's whole overhead (base64,
  JSON, claims, the Python call, building the dict).
- **cached**: the same token repeated to gateway.Verifier(cache_size=4096), for HS256 too, against
  PyJWT (which has no cache: its time is its fresh time).

Targets (issue 10, "Speed"): fresh RS256 >= 3x PyJWT, ES256 and EdDSA >= 1.3x; gateway.Verifier
within 1.15x of raw; cached >= 40x PyJWT for every algorithm. Timing as benches/verify_micro.py: N
calls per repeat lasting >= the target duration, gc off, repeats interleaved across all cells in a
shuffled order, best and median repeat reported; but by default on the thread's CPU clock, in Python
and in Rust alike (``--clock wall`` for elapsed time), because this machine is shared and a wall clock
there mostly measures the other tenants. ``--strict`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import asym_peers as ap  # noqa: E402
import jwt_peers as jp  # noqa: E402
import verify_micro as vm  # noqa: E402

SECTION = "## Asymmetric keys (issue 10)"
CRATE = HERE / "crypto_choice"
RAW_BIN = CRATE / "target" / "release" / "raw_verify"
CACHE_SIZE = 4096

TARGET_FRESH = {"RS256": 3.0, "ES256": 1.3, "EdDSA": 1.3}  # PyJWT time / gateway.Verifier time
TARGET_RAW = 1.15  # gateway.Verifier time / raw aws-lc-rs verify time, at most
TARGET_CACHED = 40.0  # PyJWT time / gateway.Verifier(cache_size=4096) time, at least
CACHED_ALGS = ("HS256", *ap.ALGORITHMS)

Cell = tuple[str, str, str]  # (table, algorithm, peer)


# --- raw floor --------------------------------------------------------------------------------


def build_raw(no_build: bool) -> tuple[Path | None, str]:
    """The raw_verify binary, built with cargo if needed; (None, reason) when it cannot be had."""
    if no_build:
        return (RAW_BIN, "") if RAW_BIN.exists() else (None, f"--no-build and {RAW_BIN} is missing")
    cargo = shutil.which("cargo")
    if cargo is None:
        return None, "cargo not found, so the Rust raw-verify floor cannot be built"
    print(f"building the raw floor: cargo build --release --bin raw_verify (in {CRATE.relative_to(HERE.parent)})",
          file=sys.stderr)
    r = subprocess.run([cargo, "build", "--release", "--quiet", "--bin", "raw_verify"], cwd=CRATE,
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return None, f"cargo build failed: {(r.stderr or r.stdout).strip()[-300:]}"
    return RAW_BIN, ""


def aws_lc_version() -> str:
    lock = CRATE / "Cargo.lock"
    try:
        lines = lock.read_text().splitlines()
    except OSError:
        return "?"
    for i, ln in enumerate(lines):
        if ln == 'name = "aws-lc-rs"' and i + 1 < len(lines):
            return lines[i + 1].split('"')[1]
    return "?"


def run_raw(binary: Path, cases: Path, target_ms: float, clock: str) -> dict[str, float]:
    """One batch per algorithm: {alg: seconds per verify}."""
    r = subprocess.run([str(binary), str(cases), "--target-ms", str(target_ms), "--batches", "1", "--clock", clock],
                       capture_output=True, text=True, check=False, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"raw_verify failed: {(r.stderr or r.stdout).strip()[-400:]}")
    out = {}
    for ln in r.stdout.splitlines():
        alg, ns = ln.split()
        out[alg] = float(ns) / 1e9
    return out


# --- run --------------------------------------------------------------------------------------


def build_cells(sets: dict[str, ap.AsymTokenSet], hs: jp.TokenSet, names: list[str]
                ) -> tuple[dict[str, list[jp.Peer]], dict[Cell, tuple[Any, str]]]:
    """Peers per algorithm (checked), and the timed cells: cell -> (verify, token)."""
    peers: dict[str, list[jp.Peer]] = {}
    cells: dict[Cell, tuple[Any, str]] = {}
    for alg, ts in sets.items():
        row = []
        for n in names:
            p = ap.build_peer(n, ts)
            if p.skipped is None:
                try:
                    ap.check_peer(p, ts)
                except AssertionError as e:
                    p.failed_check = str(e)
            state = p.skipped and f"skipped: {p.skipped}" or p.failed_check and f"FAILED CHECK: {p.failed_check}" \
                or f"ok ({p.usage})"
            print(f"{alg} {p.name}: {state}", file=sys.stderr)
            row.append(p)
            if p.verify is not None and not p.failed_check:
                cells[("fresh", alg, p.name)] = (p.verify, ts.tokens["success"])
        cached = ap._gateway_verifier(ts, CACHE_SIZE)
        ap.check_peer(cached, ts)  # fails loudly: the cached verifier must be as strict as the fresh one
        row.append(cached)
        cells[("cached", alg, cached.name)] = (cached.verify, ts.tokens["success"])
        peers[alg] = row
    # HS256: PyJWT and gateway.Verifier with and without the cache, on the issue-2 tokens.
    row = []
    for name, factory in (("PyJWT", jp._pyjwt), ("gateway.Verifier", jp._gateway_verifier)):
        p = factory(hs)
        jp.check_peer(p, hs)
        row.append(p)
        cells[("fresh", "HS256", name)] = (p.verify, hs.tokens["success"])
    import gateway

    v = gateway.Verifier(hs.secret, ["HS256"], audience=jp.AUD, issuer=jp.ISS, cache_size=CACHE_SIZE)
    cached = jp.Peer("gateway.Verifier+cache", v.verify,
                     f'gateway.Verifier(secret, ["HS256"], audience, issuer, cache_size={CACHE_SIZE}).verify',
                     ap._gateway_version(), exc_base=(gateway.JWTError,))
    jp.check_peer(cached, hs)
    row.append(cached)
    cells[("cached", "HS256", cached.name)] = (cached.verify, hs.tokens["success"])
    peers["HS256"] = row
    return peers, cells


# On a shared machine a wall clock also counts the time this process spends descheduled, which
# swamps a 20 µs verify (2 cores, load 6-12 while this was written). The thread's CPU clock counts only
# time spent running; the Rust floor uses the same clock, so their ratio compares like with like.
CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


def run(cells: dict[Cell, tuple[Any, str]], repeats: int, target: float, raw: tuple[Path, Path] | None,
        clock: str, seed: int = 10) -> tuple[dict[Cell, dict[str, Any]], dict[str, list[float]]]:
    timers = []
    for cell, (f, tok) in cells.items():
        t = timeit.Timer("f(tok)", globals={"f": f, "tok": tok}, timer=CLOCKS[clock])
        t.timeit(50)  # warm up (and, for the cached cells, fill the cache)
        timers.append((cell, t, vm.calibrate(t, target)))
    results: dict[Cell, dict[str, Any]] = {c: {"number": n, "per_call_s": []} for c, _t, n in timers}
    raw_s: dict[str, list[float]] = {}
    rng = random.Random(seed)
    order = list(timers)
    for r in range(repeats):
        rng.shuffle(order)
        gc.collect()
        for cell, t, n in order:
            results[cell]["per_call_s"].append(t.timeit(n) / n)
        if raw is not None:
            for alg, s in run_raw(raw[0], raw[1], target * 1000, clock).items():
                raw_s.setdefault(alg, []).append(s)
        print(f"  round {r + 1}/{repeats} done", file=sys.stderr)
    for v in results.values():
        v["best_ns"] = min(v["per_call_s"]) * 1e9
        v["median_ns"] = statistics.median(v["per_call_s"]) * 1e9
    return results, raw_s


# --- report -----------------------------------------------------------------------------------


def evaluate(results: dict[Cell, dict[str, Any]], raw_s: dict[str, list[float]], stat: str) -> dict[str, Any]:
    def t(table: str, alg: str, peer: str) -> float | None:
        c = results.get((table, alg, peer))
        return c[stat] if c else None

    fresh, rawv, cached = {}, {}, {}
    for alg, want in TARGET_FRESH.items():
        py, gw = t("fresh", alg, "PyJWT"), t("fresh", alg, "gateway.Verifier")
        r = py / gw if py and gw else None
        fresh[alg] = {"ratio": r, "target": want, "ok": r is not None and r >= want}
        if raw_s.get(alg):
            floor = (min(raw_s[alg]) if stat == "best_ns" else statistics.median(raw_s[alg])) * 1e9
            rr = gw / floor if gw else None
            rawv[alg] = {"ratio": rr, "raw_ns": floor, "ok": rr is not None and rr <= TARGET_RAW}
        else:
            rawv[alg] = {"ratio": None, "raw_ns": None, "ok": False}
    for alg in CACHED_ALGS:
        py, gc_ = t("fresh", alg, "PyJWT"), t("cached", alg, "gateway.Verifier+cache")
        r = py / gc_ if py and gc_ else None
        cached[alg] = {"ratio": r, "ok": r is not None and r >= TARGET_CACHED}
    return {
        "fresh": {"ok": all(v["ok"] for v in fresh.values()), "by_alg": fresh},
        "raw": {"ok": all(v["ok"] for v in rawv.values()), "by_alg": rawv},
        "cached": {"ok": all(v["ok"] for v in cached.values()), "by_alg": cached},
    }


def report(machine: dict[str, Any], peers: dict[str, list[jp.Peer]], sets: dict[str, ap.AsymTokenSet],
           results: dict[Cell, dict[str, Any]], raw_s: dict[str, list[float]], raw_note: str,
           verdicts: dict[str, dict[str, Any]], params: dict[str, Any], command: str) -> str:
    fmt, rat = vm.fmt_time, vm.fmt_ratio
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
        w("Other work was running on this shared 2-core machine during the run: absolute times are inflated; "
          "the ratios compare cells timed in the same interleaved rounds (the raw floor included), so they "
          "suffer less.")
    w("")
    w("### Machine")
    w("")
    w(f"- CPU: {machine['cpu']} ({machine['cores']} logical cores); {machine['kernel']}")
    w(f"- Python: {machine['python']}")
    pk = machine["packages"]
    w("- Packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if v != "?")
      + ("; not installed: " + ", ".join(k for k, v in pk.items() if v == "?") if "?" in pk.values() else ""))
    w(f"- gateway extension: {machine['gateway_core']}; repo at {machine['git']}")
    w(f"- Raw floor: aws-lc-rs {machine['aws_lc_rs']} `ParsedPublicKey::verify_sig` "
      f"(benches/crypto_choice/src/bin/raw_verify.rs, release build), one batch per round"
      + (f"; NOT RUN: {raw_note}" if raw_note else ""))
    clock = ("the thread's CPU time (time.thread_time / CLOCK_THREAD_CPUTIME_ID in Rust: time spent "
             "descheduled by other work on the machine is not counted)" if params["clock"] == "cpu" else "wall time")
    w(f"- Timing: {params['repeats']} interleaved repeats per cell, each of N calls lasting >= "
      f"{params['target_s'] * 1000:.0f} ms of {clock}, gc off while timing; per-call figures, best repeat (medians "
      "in the raw JSON and the target lines). Speed vs PyJWT = PyJWT's time / the peer's time (higher = "
      "faster than PyJWT).")
    w("")
    w("### Setup")
    w("")
    first = next(iter(sets.values()))
    w("Keys: RSA-2048 (e=65537), P-256, Ed25519, made with `cryptography`; tokens signed with its "
      f"primitives (no peer's encoder); header `alg`, `typ`, `kid`; claims {', '.join(first.claims)}; "
      "`iss` and `aud` checked, `exp` an hour ahead. Token bytes: "
      + ", ".join(f"{a} {len(ts.tokens['success'])}" for a, ts in sets.items()) + ". Before timing, every "
      "adapter had to accept the good token with the right claims and reject: a flipped signature bit, a "
      "token signed by another key of the same type, an expired token, two malformed tokens, a wrong "
      "issuer, a wrong audience, and an HS256 token whose secret is the public key's PEM.")
    w("")
    w("| peer | version | usage timed (RS256 shown; the others alike) |")
    w("| --- | --- | --- |")
    for p in peers[ap.ALGORITHMS[0]]:
        if p.name == "gateway.Verifier+cache":
            continue
        if p.skipped:
            w(f"| {p.name} | {p.version if p.version != '?' else 'not installed'} | skipped: {p.skipped} |")
        elif p.failed_check:
            w(f"| {p.name} | {p.version} | FAILED correctness check, not timed: {p.failed_check} |")
        else:
            w(f"| {p.name} | {p.version} | `{p.usage}` |")
    for alg in ap.ALGORITHMS[1:]:
        for p in peers[alg]:
            if (p.skipped or p.failed_check) and p.name != "ryjwt":
                w(f"| {p.name} | {p.version} | {alg}: {p.skipped or 'FAILED check: ' + str(p.failed_check)} |")
    w("")

    stat = "best_ns"
    w("### Fresh tokens (cache off): time per verify and speed vs PyJWT")
    w("")
    w("| peer | " + " | ".join(ap.ALGORITHMS) + " |")
    w("| --- |" + " ---: |" * len(ap.ALGORITHMS))
    names = [p.name for p in peers[ap.ALGORITHMS[0]] if p.name != "gateway.Verifier+cache"]
    for n in names:
        cells = []
        for alg in ap.ALGORITHMS:
            c = results.get(("fresh", alg, n))
            py = results.get(("fresh", alg, "PyJWT"))
            if c is None:
                p = next(x for x in peers[alg] if x.name == n)
                cells.append("skipped" if p.skipped else "failed check")
            elif py is not None:
                cells.append(f"{fmt(c[stat])} ({rat(py[stat] / c[stat])})")
            else:
                cells.append(fmt(c[stat]))
        bold = n == "gateway.Verifier"
        w(f"| {'**' + n + '**' if bold else n} | " + " | ".join(cells) + " |")
    if raw_s:
        cells = []
        for alg in ap.ALGORITHMS:
            floor = min(raw_s[alg]) * 1e9
            py = results.get(("fresh", alg, "PyJWT"))
            cells.append(f"{fmt(floor)} ({rat(py[stat] / floor)})" if py else fmt(floor))
        w("| raw aws-lc-rs verify (Rust) | " + " | ".join(cells) + " |")
    w("")

    w(f"### The same token repeated: gateway.Verifier(cache_size={CACHE_SIZE}) vs PyJWT (no cache)")
    w("")
    w("| | " + " | ".join(CACHED_ALGS) + " |")
    w("| --- |" + " ---: |" * len(CACHED_ALGS))
    for label, table, peer in (("PyJWT", "fresh", "PyJWT"), ("gateway.Verifier, cache off", "fresh", "gateway.Verifier"),
                               (f"gateway.Verifier, cache_size={CACHE_SIZE}", "cached", "gateway.Verifier+cache")):
        cells = []
        for alg in CACHED_ALGS:
            c = results.get((table, alg, peer))
            py = results.get(("fresh", alg, "PyJWT"))
            cells.append(f"{fmt(c[stat])} ({rat(py[stat] / c[stat])})" if c and py else "–")
        w(f"| {label} | " + " | ".join(cells) + " |")
    w("")

    w("### Targets")
    w("")
    vb, vmed = verdicts["best_ns"], verdicts["median_ns"]

    def yn(ok: bool) -> str:
        return "**HOLDS**" if ok else "**MISSED**"

    def line(key: str, fmtv: Any) -> tuple[str, str]:
        return (", ".join(fmtv(a, v) for a, v in vb[key]["by_alg"].items()),
                ", ".join(fmtv(a, v) for a, v in vmed[key]["by_alg"].items()))

    def r_or_na(a: str, v: dict[str, Any]) -> str:
        return f"{a} {rat(v['ratio'])}" if v["ratio"] is not None else f"{a} n/a"

    b, m = line("fresh", r_or_na)
    w(f"- Fresh tokens, PyJWT / gateway.Verifier >= 3x (RS256), 1.3x (ES256, EdDSA): {yn(vb['fresh']['ok'])} "
      f"({b}); medians: {m} ({'holds' if vmed['fresh']['ok'] else 'missed'}).")
    if raw_s:
        b, m = line("raw", lambda a, v: f"{a} {v['ratio']:.3f}x of {fmt(v['raw_ns'])}" if v["ratio"] else f"{a} n/a")
        w(f"- gateway.Verifier / raw aws-lc-rs verify <= {TARGET_RAW}x: {yn(vb['raw']['ok'])} ({b}); medians: {m} "
          f"({'holds' if vmed['raw']['ok'] else 'missed'}).")
    else:
        w(f"- gateway.Verifier / raw aws-lc-rs verify <= {TARGET_RAW}x: **NOT MEASURED** ({raw_note}).")
    b, m = line("cached", r_or_na)
    w(f"- Repeated token, PyJWT / gateway.Verifier(cache_size={CACHE_SIZE}) >= {TARGET_CACHED:.0f}x: "
      f"{yn(vb['cached']['ok'])} ({b}); medians: {m} ({'holds' if vmed['cached']['ok'] else 'missed'}).")
    w("")
    if raw_s:
        over = ", ".join(
            f"{alg} {fmt(results[('fresh', alg, 'gateway.Verifier')][stat] - min(raw_s[alg]) * 1e9)}"
            for alg in ap.ALGORITHMS)
        hs = results.get(("fresh", "HS256", "gateway.Verifier"))
        w("Where the time goes: gateway.Verifier's time minus the raw verify is the core's whole work "
          f"around the signature (base64url, JSON, claim checks, building the dict, the Python call): {over}; "
          + (f"for scale, the whole HS256 path, HMAC included, takes {fmt(hs[stat])}. " if hs else "")
          + "The rest is aws-lc's own verify.")
        w("")
    w("Exceptions seen in the correctness check, RS256 (bad-signature / expired / malformed / malformed-short / "
      "other-key / wrong-iss / wrong-aud / hs256-public-key-as-secret):")
    w("")
    order = [s for s in ap.SCENARIOS if s != "success"] + list(ap.EXTRA)
    for p in peers[ap.ALGORITHMS[0]]:
        if p.raised and p.name != "gateway.Verifier+cache":
            w(f"- {p.name}: " + ", ".join(p.raised.get(s, "?") for s in order))
    return "\n".join(out) + "\n"


# The load suite's S5 figures live in the same RESULTS.md section, under this heading, written from a
# `python -m benches` run; rewriting the micro-benchmark's part keeps them.
S5_HEADING = "### Load scenario S5"


def write_section(path: Path, body: str) -> None:
    """Replace (or append) only this benchmark's part of its RESULTS.md section (up to S5_HEADING)."""
    text = path.read_text(encoding="utf-8") if path.exists() else vm.RESULTS_HEADER
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip("\n") == SECTION), None)
    new = [SECTION + "\n", "\n", body if body.endswith("\n") else body + "\n"]
    if start is None:
        if lines and lines[-1].strip():
            lines.append("\n")
        lines += new
    else:
        end = next((j for j in range(start + 1, len(lines))
                    if lines[j].startswith("## ") or lines[j].startswith(S5_HEADING)), len(lines))
        tail = lines[end:]
        if tail:
            new.append("\n")
        lines = lines[:start] + new + tail
    path.write_text("".join(lines), encoding="utf-8")


def command_line() -> str:
    """How this run was started, as a command to paste (the interpreter relative when inside the repo)."""
    import shlex

    exe = sys.executable
    rel = os.path.relpath(exe, HERE.parent)
    exe = rel if not rel.startswith("..") else exe
    script = os.path.relpath(Path(sys.argv[0]).resolve(), HERE.parent)
    return " ".join(shlex.quote(a) for a in [exe, script, *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    aparser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    aparser.add_argument("--quick", action="store_true", help="3 repeats of ~10 ms per cell")
    aparser.add_argument("--repeats", type=int, help="repeats per cell (default 7, quick 3)")
    aparser.add_argument("--target-ms", type=float, help="minimum duration of one repeat (default 100, quick 10)")
    aparser.add_argument("--peers", help="comma-separated subset of: " + ", ".join(ap.PEER_NAMES))
    aparser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                         help="cpu: this thread's CPU time (default; robust on a shared machine); wall: elapsed time")
    aparser.add_argument("--no-raw", action="store_true", help="skip the Rust raw-verify floor")
    aparser.add_argument("--no-build", action="store_true", help="use an existing raw_verify binary; never run cargo")
    aparser.add_argument("--json", metavar="PATH", help="write the raw figures as JSON")
    aparser.add_argument("--write-results", nargs="?", const=str(HERE / "RESULTS.md"), metavar="PATH",
                         help=f"replace the section '{SECTION[3:]}' of PATH (default benches/RESULTS.md)")
    aparser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = aparser.parse_args(argv)

    repeats = args.repeats or (3 if args.quick else 7)
    target = (args.target_ms or (10.0 if args.quick else 100.0)) / 1000
    names = args.peers.split(",") if args.peers else list(ap.PEER_NAMES)
    for n in names:
        if n not in ap.PEER_NAMES:
            aparser.error(f"unknown peer {n!r}")
    for must in ("gateway.Verifier", "PyJWT"):  # the targets are about these two
        if must not in names:
            names.insert(0, must)

    t0 = time.perf_counter()
    machine = vm.machine_info()
    machine["packages"] = ap.package_versions()
    machine["aws_lc_rs"] = aws_lc_version()
    if machine["loadavg_start"] != "n/a" and float(machine["loadavg_start"].split()[0]) > 0.7:
        print(f"warning: load average {machine['loadavg_start']}: other work is running, figures may be noisy",
              file=sys.stderr)

    sets = {alg: ap.make_tokens(alg) for alg in ap.ALGORITHMS}
    hs = jp.make_tokens()
    raw_note = "--no-raw given" if args.no_raw else ""
    raw: tuple[Path, Path] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="verify-asym-"))
    try:
        if not args.no_raw:
            binary, raw_note = build_raw(args.no_build)
            if binary is not None:
                cases = tmp / "cases.txt"
                cases.write_text(ap.raw_cases(list(sets.values())))
                raw = (binary, cases)
        peers, cells = build_cells(sets, hs, names)
        base_ok = all(("fresh", a, "gateway.Verifier") in cells for a in ap.ALGORITHMS)
        if not base_ok:
            print("gateway.Verifier unusable for some algorithm (see above)", file=sys.stderr)
            return 2
        results, raw_s = run(cells, repeats, target, raw, args.clock)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # The repeated-token cells must really have been served from the cache: the good token is in it.
    for (table, alg, _peer), (f, _tok) in cells.items():
        if table == "cached" and f.__self__.cache_len < 1:
            print(f"{alg}: gateway.Verifier(cache_size={CACHE_SIZE}) cached nothing", file=sys.stderr)
            return 2
    machine["loadavg_end"] = vm.loadavg()
    verdicts = {stat: evaluate(results, raw_s, stat) for stat in ("best_ns", "median_ns")}
    params = {"repeats": repeats, "target_s": target, "quick": args.quick, "clock": args.clock}
    command = command_line()
    body = report(machine, peers, sets, results, raw_s, raw_note, verdicts, params, command)
    print(SECTION + "\n")
    print(body)
    print(f"(measured in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)

    if args.json:
        raw_json = {
            "command": command,
            "machine": machine,
            "params": params,
            "peers": {alg: [{"name": p.name, "version": p.version, "usage": p.usage, "skipped": p.skipped,
                             "failed_check": p.failed_check, "raised": p.raised} for p in row]
                      for alg, row in peers.items()},
            "results": [{"table": k[0], "alg": k[1], "peer": k[2], **v} for k, v in results.items()],
            "raw_s": raw_s,
            "targets": verdicts,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(raw_json, indent=2) + "\n", encoding="utf-8")
    if args.write_results:
        write_section(Path(args.write_results), body)
        print(f"wrote section to {args.write_results}", file=sys.stderr)
    vb = verdicts["best_ns"]
    ok = vb["fresh"]["ok"] and vb["cached"]["ok"] and (vb["raw"]["ok"] or args.no_raw)
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
