"""The load benchmark of issue 4: the gateway against HAProxy, nginx, Starlette, Next.js and workerd on
the same workload, with wrk on loopback, and against its own ceilings of issue 9 (granian-floor for the
answers it makes itself, proxy-floor for the requests it proxies). Entry point: `python -m benches`
(see benches/__main__.py)."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benches.load import checks, configs, install, report, wrk
from benches.load.common import (
    BENCHES,
    CLK_TCK,
    ORIGIN_CPUS,
    RESULTS,
    ROOT,
    SUT_CPUS,
    WRK_CPUS,
    busy_pct,
    cpu_times,
    descendants,
    free_port,
    install_cleanup,
    log,
    mem_kb,
    idp_tokens,
    proc_jiffies,
    stop,
    tokens,
)
from benches.load.systems import (
    observability_systems,
    Ctx,
    Running,
    System,
    catalogue,
    gateway_workers,
    hook_systems,
    matching_systems,
    origin_start,
    s5_systems,
    snapshot_gateway,
)

QUICK_SYSTEMS = ["origin", "gateway-1w", "granian-floor", "proxy-floor", "nginx"]
NODE_PEERS = {"nextjs", "workerd"}
NODE_BUDGET_S = 30 * 60
MAX_ATTEMPTS = 4  # per timed run, when other processes keep using the machine
FOREIGN_MAX_PCT = 5.0  # % of one core used by processes other than wrk, origin and system: the run is retried
QUIET_PCT = 15.0  # a core busier than this with nothing under load means someone else is using the machine


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benches", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: origin, gateway 1 worker, its two floors and nginx; 2 s, 1 run (< 90 s)")
    ap.add_argument("--only", default="", help="comma-separated systems: " + ",".join([*catalogue(), "matching", "hooks", "s5"]) + " (gateway = all gateway variants, floors = granian-floor and proxy-floor, hooks = S2 with and without a Python hook, https = S6 with the gateway's S2, s5 = issue 10's S5 with the gateway and HAProxy interleaved)")
    ap.add_argument("--duration", type=float, default=None, help="whole seconds per timed run (default 8; --quick 2)")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per scenario, median reported (default 3; --quick 1)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds of untimed load before each scenario (default 2; --quick 1; whole seconds)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--scenarios", default="", help="comma-separated subset of S0-S6 to time (default: each system's own); correctness checks always run in full")
    ap.add_argument("--quiet-wait", type=float, default=None, help="seconds to wait for a busy machine to settle before each system (default 120; --quick 5)")
    ap.add_argument("--no-install", action="store_true", help="do not apt/pip/npm install anything; skip what is missing")
    ap.add_argument("--out", default=str(RESULTS), help="results folder (default benches/results)")
    ap.add_argument("--write-results", action="store_true", help="replace the '## Load (issue 4)' section of benches/RESULTS.md with this run")
    ap.add_argument("--report", metavar="JSON", help="do not run anything: rebuild the .md/.png (and with --write-results the section) from a raw results file")
    a = ap.parse_args(argv)
    a.duration = a.duration if a.duration is not None else (2.0 if a.quick else 8.0)
    a.quiet_wait = a.quiet_wait if a.quiet_wait is not None else (5.0 if a.quick else 120.0)
    a.runs = a.runs if a.runs is not None else 1 if a.quick else 3
    a.warmup = a.warmup if a.warmup is not None else (1.0 if a.quick else 2.0)
    return a


def selected(a: argparse.Namespace) -> tuple[list[str], bool]:
    """(system names in run order, run the matching-cost check)."""
    systems = catalogue()
    cat = list(systems)
    if a.only:
        want: set[str] = set()
        for w in (x.strip() for x in a.only.split(",") if x.strip()):
            if w == "gateway":
                want |= {n for n in cat if n.startswith("gateway")}
            elif w == "floors":
                want |= {n for n, s in systems.items() if s.app}
            elif w == "https":
                # S6 and, for its ratio, the gateway's own S2 in the same run.
                want |= {"gateway-1w", *(n for n, s in systems.items() if s.https)}
            elif w in cat or w in ("matching", "hooks", "observability", "s5"):
                want.add(w)
            else:
                raise SystemExit(f"benches: unknown system {w!r}; known: {', '.join([*cat, 'gateway', 'floors', 'https', 'matching', 'hooks', 'observability', 's5'])}")
        return [n for n in cat if n in want], "matching" in want
    if a.quick:
        return QUICK_SYSTEMS, False
    return cat, True


# ------------------------------------------------------------------------------------------- facts


def _out(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=30)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), platform.processor())
    flags = next((ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines() if ln.startswith("flags")), [])
    mhz = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("cpu MHz")), "?")
    mem = next((int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")), 0)
    return {
        "cpu_model": model,
        "cpu_mhz": mhz,
        "cores": os.cpu_count(),
        "hypervisor": "hypervisor" in flags,
        "memory_gb": round(mem / 1024 / 1024, 1),
        "kernel": platform.release(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def core_hash(package_dir: Path | None = None) -> str:
    """Which build of the Rust core is used (the extension module in the gateway package)."""
    import hashlib

    if package_dir is None:
        import gateway

        package_dir = Path(gateway.__file__).resolve().parent
    try:
        so = next(package_dir.glob("_core*.so"))
        return hashlib.sha256(so.read_bytes()).hexdigest()[:16]
    except (OSError, StopIteration):
        return "?"


def versions(ctx: Ctx) -> dict[str, str]:
    def pkg(n: str) -> str:
        try:
            return importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    v = {
        "python": platform.python_version(),
        "gateway": pkg("gateway"),
        "gateway_commit": _out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "gateway_dirty": "yes" if _out(["git", "-C", str(ROOT), "status", "--porcelain", "--", "rust", "python"]) else "no",
        "granian": pkg("granian"),
        "wrk": _out(["wrk", "-v"]).splitlines()[0] if shutil.which("wrk") else "missing",
        "nginx": _out(["nginx", "-v"]).replace("nginx version: ", ""),
        "haproxy": _out(["haproxy", "-v"]).splitlines()[0] if shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists() else "missing",
        "starlette": pkg("starlette"),
        "uvicorn": pkg("uvicorn"),
        "httpx": pkg("httpx"),
        "pyjwt": pkg("pyjwt"),
        "node": _out(["node", "--version"]) if shutil.which("node") else "missing",
        "gateway_core_sha256": core_hash(ctx.gateway_path / "gateway" if ctx.gateway_path else None),
    }
    return v


# ------------------------------------------------------------------------------------------- running


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    """The median of `key` over the runs that have it (None when none does)."""
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-metric medians; CPU busy % and errors from the run with the median req/s."""
    by_rps = sorted(runs, key=lambda r: r["rps"])
    mid = by_rps[len(by_rps) // 2]
    return {
        "rps": round(statistics.median(r["rps"] for r in runs), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 3),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 3),
        "p999_ms": round(statistics.median(r["p999_ms"] for r in runs), 3),
        "cpu_busy_pct": mid["cpu_busy_pct"],
        "errors": mid["errors"],
    }


def _fmt_run(r: dict[str, Any]) -> str:
    bad = {k: v for k, v in r["errors"].items() if v}
    cpu = "/".join(f"{v:.0f}" for v in r["cpu_busy_pct"].values())
    return (
        f"{r['rps']:>10,.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  cores busy {cpu} %  others {r['foreign_cpu_pct']:.0f} %"
        + (f"  ERRORS {bad}" if bad else "")
    )


def _checks_for(kind: str, tok: dict[str, str], s5: bool = False) -> list[checks.Check]:
    kinds = {"workload": checks.workload_checks, "proxy": checks.proxy_checks, "redirect": checks.redirect_checks, "origin": checks.origin_checks}
    return kinds[kind](tok) + (checks.idp_checks(tok) if s5 else [])


def _log_problems(path: Path, workers: int) -> list[str]:
    """Lines of a system's own log that suggest trouble (errors, tracebacks, panics, respawned workers)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out = []
    spawned = sum(1 for ln in lines if re.search(r"Spawning worker", ln))
    if workers and spawned > workers:
        out.append(f"{spawned - workers} worker respawn(s) (a worker died)")
    pat = re.compile(r"traceback|error|exception|panic|killed|warn|fatal|segfault|died|exited", re.IGNORECASE)
    noise = re.compile(r"Cannot raise FD limit|experimental|telemetry", re.IGNORECASE)
    hits = [ln.strip() for ln in lines if pat.search(ln) and not noise.search(ln)]
    out.extend(f"log: {h[:300]}" for h in hits[:20])
    if len(hits) > 20:
        out.append(f"log: ... and {len(hits) - 20} more such lines")
    return out


class Suite:
    def __init__(self, a: argparse.Namespace, ctx: Ctx, tok: dict[str, str], origin: subprocess.Popen[bytes]):
        self.origin = origin
        self.keep_logs: Path | None = None  # where to copy the log of a system that misbehaved
        self.a = a
        self.ctx = ctx
        self.tok = tok
        self.scen = wrk.scenarios(tok)
        self.script = ctx.tmp / "done.lua"
        self.script.write_text(wrk.DONE_LUA)
        self.failed = False

    def settle(self, label: str) -> dict[str, float]:
        """Wait (bounded) until the machine is quiet before timing, and return the background busy %.

        Other work on this machine (a test run, a build) lands on the same cores and would be counted
        against whichever system is being timed, so it is measured and reported, never silently mixed in."""
        deadline = time.monotonic() + self.a.quiet_wait
        warned = False
        while True:
            before = cpu_times()
            time.sleep(1.0)
            bg = busy_pct(before, cpu_times())
            if max(bg.values()) <= QUIET_PCT or time.monotonic() > deadline:
                break
            if not warned:
                log(f"{label}: machine busy before timing ({bg} %); waiting up to {self.a.quiet_wait:.0f} s for it to settle")
                warned = True
        if max(bg.values()) > QUIET_PCT:
            log(f"{label}: WARNING: timing on a busy machine: background {bg} %")
        return bg

    def pids(self, run: Running | None) -> Callable[[], list[int]]:
        """The processes whose CPU is ours during a run: the origin and the system under test (wrk is counted apart)."""

        def get() -> list[int]:
            out = [self.origin.pid, *descendants(self.origin.pid)]
            if run is not None:
                out += [run.proc.pid, *descendants(run.proc.pid)]
            return out

        return get

    def one_run(self, label: str, port: int, sc: str, i: int, run: Running | None) -> dict[str, Any]:
        """One timed run; a run during which other processes used the machine is discarded and retried."""
        discarded: list[float] = []
        attempts = 1 if self.a.quick else MAX_ATTEMPTS  # the smoke run checks correctness; it does not wait for a quiet machine
        for attempt in range(1, attempts + 1):
            r = wrk.run(port, self.scen[sc], duration=self.a.duration, connections=self.a.connections, script=self.script, pids=self.pids(run))
            clean = r["foreign_cpu_pct"] <= FOREIGN_MAX_PCT
            log(f"  {label:<34} {sc} run {i + 1}/{self.a.runs}: {_fmt_run(r)}" + ("" if clean else "  (machine busy: retrying)" if attempt < attempts else "  (machine busy: kept)"))
            if clean or attempt == attempts:
                r["attempts"] = attempt
                r["contaminated"] = not clean
                r["discarded_rps"] = discarded
                return r
            discarded.append(r["rps"])
            self.settle(label)
        raise AssertionError("unreachable")

    def time_scenario(self, label: str, port: int, sc: str, run: Running | None = None) -> dict[str, Any]:
        s = self.scen[sc]
        if self.a.warmup > 0:
            wrk.run(port, s, duration=self.a.warmup, connections=self.a.connections, script=self.script)
        runs = [self.one_run(label, port, sc, i, run) for i in range(self.a.runs)]
        return {"title": s.title, "request": {"method": s.method, "path": s.path, "headers": [k for k, _ in s.headers]}, "runs": runs, "median": _median_run(runs)}

    def start_checked(self, s: System, started: list[tuple[System, Running]], out: dict[str, Any], extra: list[checks.Check] | None = None, s5: bool = False) -> Running | None:
        """Starts `s` (added to `started`, so the caller's ``finally`` stops it) and runs the workload's
        correctness checks on it (S5's too with `s5`), then `extra` checks; None, with
        ``out["error"]`` set and the run failed, when any check fails."""
        log(f"{s.label}: starting")
        r = s.start(self.ctx)
        started.append((s, r))
        c = checks.run_checks(r.port, _checks_for("workload", self.tok, s5))
        if extra:
            c += checks.run_checks(r.port, extra)
        if not all(x["ok"] for x in c):
            out["error"] = f"{s.label} failed its checks: " + "; ".join(x["check"] + ": " + x["problem"] for x in c if not x["ok"])
            log(out["error"])
            self.failed = True
            return None
        log(f"{s.label}: {len(c)} correctness checks passed")
        return r

    def interleaved(self, plan: list[tuple[str, str, Running, str]], cpu_key: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Times each ``(key, label, running system, scenario)`` of `plan` once per round, --runs
        rounds, after one warm-up each; the runs of each key, in order.

        Every system is up at once and the rounds interleave them, so a busy spell of the shared
        machine hits each alike. The order rotates each round: in a fixed order the first system of
        a round always ran right after the settle and the last after the others' load (measured on
        this machine: the same gateway used 3-4 % less CPU per request when first), an advantage
        that went to the same system every round. With `cpu_key`, each run also records under that
        key the system's own CPU per request (its processes, the origin's excluded; None when it
        answered nothing): req/s follows whatever CPU share it got, its CPU per request much less."""
        if self.a.warmup > 0:
            for _, _, r, sc in plan:
                wrk.run(r.port, self.scen[sc], duration=self.a.warmup, connections=self.a.connections, script=self.script)
        runs: dict[str, list[dict[str, Any]]] = {key: [] for key, *_ in plan}
        for i in range(self.a.runs):
            k = i % len(plan)
            for key, label, r, sc in plan[k:] + plan[:k]:
                pids = [r.proc.pid, *descendants(r.proc.pid)]
                j0 = proc_jiffies(pids)
                run = self.one_run(label, r.port, sc, i, r)
                if cpu_key is not None:
                    used = (proc_jiffies(pids) - j0) / CLK_TCK
                    run[cpu_key] = round(1e6 * used / run["requests"], 2) if run["requests"] else None
                runs[key].append(run)
        return runs

    def bench(self, system: System) -> dict[str, Any]:
        res: dict[str, Any] = {"label": system.label, "kind": system.kind, "cpus": system.cpus, "note": system.note, "problems": []}
        res["background_busy_pct"] = self.settle(system.label)
        is_gw = system.name.startswith("gateway")
        ours = system.granian  # the gateway or a floor: failing to start or dying under load fails the run
        if system.name == "origin":
            res.update(status="ok", scenarios={}, check=checks.run_checks(self.ctx.origin_port, _checks_for("origin", self.tok)))
            if not all(c["ok"] for c in res["check"]):
                res.update(status="failed-check", reason="; ".join(c.get("problem", "") for c in res["check"] if not c["ok"]))
                self.failed = True
                return res
            res["scenarios"]["S0"] = self.time_scenario(system.label, self.ctx.origin_port, "S0")
            return res
        if not self.a.no_install:
            reason = system.prepare()
            if reason:
                log(f"{system.label}: skipped: {reason}")
                res.update(status="skipped", reason=reason)
                return res
        if system.install_note:
            res["version"] = system.install_note
        timed, res["skipped_scenarios"] = self.scenarios_for(system)
        if not timed:
            reason = "; ".join(f"{sc}: {why}" for sc, why in res["skipped_scenarios"].items()) or "no scenario selected"
            log(f"{system.label}: skipped: {reason}")
            res.update(status="skipped", reason=reason)
            return res
        s5 = system.runs_s5(self.ctx)
        log(f"{system.label}: starting (cpus {system.cpus})")
        try:
            run = system.start(self.ctx)
        except Exception as e:  # noqa: BLE001 - any failure to start is reported, never hidden
            tail = ""
            try:
                tail = " | ".join(Path(self.ctx.tmp / f"{system.name}.log").read_text(errors="replace").strip().splitlines()[-5:])
            except OSError:
                pass
            reason = f"did not start: {e}" + (f" (log: {tail[-400:]})" if tail else "")
            log(f"{system.label}: {'FAILED' if ours else 'skipped'}: {reason}")
            res.update(status="failed" if ours else "skipped", reason=reason)
            self.failed |= ours
            return res
        try:
            res["check"] = checks.run_checks(run.port, _checks_for(system.kind, self.tok, s5))
            bad = [c for c in res["check"] if not c["ok"]]
            if bad:
                for c in bad:
                    log(f"{system.label}: CHECK FAILED: {c['check']}: {c['problem']}")
                res.update(status="failed-check", reason="; ".join(f"{c['check']}: {c['problem']}" for c in bad))
                self.failed = True
                return res
            log(f"{system.label}: {len(res['check'])} correctness checks passed; timing")
            res["scenarios"] = {}
            workers0 = list(run.workers)
            for sc in timed:
                res["scenarios"][sc] = self.time_scenario(system.label, run.port, sc, run)
                if run.proc.poll() is not None:
                    res["problems"].append(f"exited with status {run.proc.returncode} during {sc}")
                    break
                if ours:
                    now = gateway_workers(run.proc.pid)
                    if now != workers0:
                        res["problems"].append(f"worker pids changed during {sc}: {workers0} -> {now} (a worker died and was respawned)")
                        workers0 = now
            if is_gw:
                mem = [{"pid": w, **mem_kb(w)} for w in gateway_workers(run.proc.pid)]
                res["memory"] = {"workers": mem, "sum_hwm_mb": round(sum(m.get("VmHWM", 0) for m in mem) / 1024, 1)}
            post = checks.run_checks(run.port, _checks_for(system.kind, self.tok, s5))
            res["post_check"] = post
            for c in post:
                if not c["ok"]:
                    res["problems"].append(f"after load: {c['check']}: {c['problem']}")
            res["status"] = "ok"
        finally:
            system.stop(run)
            res["problems"].extend(_log_problems(run.log, system.workers))
            if res["problems"] and self.keep_logs is not None:
                kept = self.keep_logs.with_name(f"{self.keep_logs.name}-{system.name}.log")
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run.log, kept)
                res["log_file"] = str(kept.relative_to(ROOT)) if kept.is_relative_to(ROOT) else str(kept)
            if res["problems"]:
                for p in res["problems"]:
                    log(f"{system.label}: PROBLEM: {p}")
                if ours and any(not p.startswith("log:") for p in res["problems"]):
                    self.failed = True
        return res

    def scenarios_for(self, system: System) -> tuple[list[str], dict[str, str]]:
        """(the scenarios to time for `system`, {scenario: why not timed}) under --scenarios and S5's needs."""
        wanted = {x.strip().upper() for x in self.a.scenarios.split(",") if x.strip()}
        timed, skipped = [], {}
        for sc in system.scenarios:
            if wanted and sc not in wanted:
                continue
            if sc == "S5" and not system.runs_s5(self.ctx):
                skipped[sc] = self.ctx.idp_skip or "S5's key set could not be made"
                log(f"{system.label}: S5 skipped: {skipped[sc]}")
                continue
            timed.append(sc)
        return timed, skipped

    def hooks(self) -> dict[str, Any]:
        """Issue 13: S2 on a route with one no-op async request hook vs S2 on a route without, in the
        same gateway, and that gateway's S2 vs a gateway without [hooks]; both up, runs interleaved."""
        out: dict[str, Any] = {"systems": {}}
        started: list[tuple[System, Running]] = []
        try:
            for s in hook_systems():
                if self.start_checked(s, started, out, checks.hook_checks(self.tok) if s.hooks else None) is None:
                    return out
            out["background_busy_pct"] = self.settle("hooks")
            runs = self.interleaved([(f"{s.name} {sc}", s.label, r, sc) for s, r in started for sc in s.scenarios], "worker_cpu_us_per_request")
            for key, rs in runs.items():
                name, sc = key.split(" ")
                out["systems"].setdefault(name, {"label": next(s.label for s, _ in started if s.name == name), "scenarios": {}})
                out["systems"][name]["scenarios"][sc] = {"runs": rs, "median": _median_run(rs)}
            on, off = out["systems"]["gateway-hooks-on"]["scenarios"], out["systems"]["gateway-hooks-off"]["scenarios"]
            out["rps"] = {"off S2": off["S2"]["median"]["rps"], "on S2": on["S2"]["median"]["rps"], "on S2h": on["S2h"]["median"]["rps"]}
            out["hooked_vs_unhooked"] = round(on["S2h"]["median"]["rps"] / on["S2"]["median"]["rps"], 3)
            out["unhooked_vs_no_hooks"] = round(on["S2"]["median"]["rps"] / off["S2"]["median"]["rps"], 3)
            # Run by run (they are interleaved, so each pair shares the machine's state of the moment).
            out["hooked_vs_unhooked_per_run"] = [round(h["rps"] / u["rps"], 3) for h, u in zip(on["S2h"]["runs"], on["S2"]["runs"], strict=True)]
            out["unhooked_vs_no_hooks_per_run"] = [round(u["rps"] / n["rps"], 3) for u, n in zip(on["S2"]["runs"], off["S2"]["runs"], strict=True)]
            cpu = {k: _median_of(v["runs"], "worker_cpu_us_per_request") for k, v in (("off S2", off["S2"]), ("on S2", on["S2"]), ("on S2h", on["S2h"]))}
            out["worker_cpu_us_per_request"] = cpu
            # What the CPU per request implies for req/s on a core of its own.
            out["hooked_vs_unhooked_by_cpu"] = _ratio(cpu["on S2"], cpu["on S2h"])
            out["unhooked_vs_no_hooks_by_cpu"] = _ratio(cpu["off S2"], cpu["on S2"])
            log(f"hooks: S2 with a no-op request hook / without: {out['hooked_vs_unhooked']} (runs {out['hooked_vs_unhooked_per_run']}); "
                f"S2 without hooks, [hooks] configured / not: {out['unhooked_vs_no_hooks']} (runs {out['unhooked_vs_no_hooks_per_run']})")  # fmt: skip
            log(f"hooks: worker CPU µs per request (median) {cpu}: by CPU, hooked / unhooked {out['hooked_vs_unhooked_by_cpu']}, "
                f"unhooked with [hooks] / no [hooks] {out['unhooked_vs_no_hooks_by_cpu']}")  # fmt: skip
            for s, r in started:
                problems = [f"after load: {c['check']}: {c['problem']}" for c in checks.run_checks(r.port, _checks_for("workload", self.tok)) if not c["ok"]]
                problems += _log_problems(r.log, s.workers)
                if problems:
                    out.setdefault("problems", {})[s.name] = problems
                    for p in problems:
                        log(f"{s.label}: PROBLEM: {p}")
        except Exception as e:  # noqa: BLE001
            out["error"] = f"{type(e).__name__}: {e}"
            log(f"hooks: FAILED: {out['error']}")
            self.failed = True
        finally:
            for s, r in started:
                s.stop(r)
        return out

    def matching(self) -> dict[str, Any]:
        """S4 with 10 vs 1,000 routes before the catch-all; both gateways up, runs interleaved."""
        out: dict[str, Any] = {"systems": {}, "s4_rps": {}}
        started: list[tuple[System, Running]] = []
        try:
            for s in matching_systems():
                if self.start_checked(s, started, out) is None:
                    return out
            out["background_busy_pct"] = self.settle("matching")
            runs = self.interleaved([(s.name, s.label, r, "S4") for s, r in started])
            for s, _ in started:
                out["systems"][s.name] = {"label": s.label, "runs": runs[s.name], "median": _median_run(runs[s.name])}
            r10 = out["systems"]["gateway-routes-10"]["median"]["rps"]
            r1000 = out["systems"]["gateway-routes-1000"]["median"]["rps"]
            out["s4_rps"] = {"10": r10, "1000": r1000}
            out["s4_loss_pct"] = round(100.0 * (r10 - r1000) / r10, 2) if r10 else None
        except Exception as e:  # noqa: BLE001
            out["error"] = f"{type(e).__name__}: {e}"
            log(f"matching: FAILED: {out['error']}")
            self.failed = True
        finally:
            for s, r in started:
                s.stop(r)
        return out


    def observability(self) -> dict[str, Any]:
        """Issue 12: S2 with metrics, request ids and tracing on (no OTLP) vs off; both up, runs
        interleaved, so the machine's drift hits both alike. The "on" gateway is checked to really
        record: its answer carries X-Request-Id and its /metrics counted the timed requests."""
        out: dict[str, Any] = {"systems": {}}
        started: list[tuple[System, Running]] = []
        try:
            for s in observability_systems():
                r = self.start_checked(s, started, out)
                if r is None:
                    return out
                s2 = self.scen["S2"]
                rid = checks.fetch(r.port, s2.method, s2.path, dict(s2.headers)).header("x-request-id")
                if (rid is not None) != ("request_id" in s.server_extra):
                    out["error"] = f"{s.label}: X-Request-Id is {'missing' if rid is None else 'present'}"
                    log(out["error"])
                    self.failed = True
                    return out
            out["background_busy_pct"] = self.settle("observability")
            runs = self.interleaved([(s.name, s.label, r, "S2") for s, r in started], "gateway_cpu_us_per_request")
            for s, _ in started:
                out["systems"][s.name] = {"label": s.label, "runs": runs[s.name], "median": _median_run(runs[s.name]), "cpu_us_per_request": _median_of(runs[s.name], "gateway_cpu_us_per_request")}
            on = next(s for s, _ in started if s.name == "gateway-obs-on")
            m = re.search(r'metrics_listen = "127\.0\.0\.1:(\d+)"', (self.ctx.tmp / f"{on.name}.toml").read_text())
            assert m is not None
            time.sleep(1.5)  # the worker's last second of figures
            text = checks.fetch(int(m.group(1)), "GET", "/metrics").body.decode()
            counted = sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith("http_server_request_duration_seconds_count{") and 'http_route="/dashboard/:path*"' in ln)
            timed = sum(x["requests"] for x in runs[on.name]) if all("requests" in x for x in runs[on.name]) else None
            out["metrics_counted"] = counted
            if counted <= 0 or (timed is not None and counted < timed):
                out["error"] = f"{on.label}: /metrics counted {counted} S2 requests, fewer than the {timed} timed"
                log(out["error"])
                self.failed = True
            off_rps = out["systems"]["gateway-obs-off"]["median"]["rps"]
            on_rps = out["systems"]["gateway-obs-on"]["median"]["rps"]
            out["s2_rps"] = {"off": off_rps, "on": on_rps}
            out["s2_ratio"] = round(on_rps / off_rps, 3) if off_rps else None
            off_cpu = out["systems"]["gateway-obs-off"]["cpu_us_per_request"]
            on_cpu = out["systems"]["gateway-obs-on"]["cpu_us_per_request"]
            out["s2_cpu_us"] = {"off": off_cpu, "on": on_cpu}
            # req/s the gateway would do on the same CPU, on vs off: the inverse ratio of its CPU per request.
            out["s2_cpu_ratio"] = round(off_cpu / on_cpu, 3) if off_cpu and on_cpu else None
            log(f"observability: S2 on/off = {out['s2_ratio']} ({on_rps:.0f} / {off_rps:.0f} req/s); CPU per request {on_cpu} / {off_cpu} µs: off/on = {out['s2_cpu_ratio']}")
            out["parts"] = {}
            for s, _ in started:
                if s.name in ("gateway-obs-off", "gateway-obs-on"):
                    continue
                part = out["systems"][s.name]
                out["parts"][s.name] = {
                    "label": s.label,
                    "ratio": round(part["median"]["rps"] / off_rps, 3) if off_rps else None,
                    "cpu_ratio": round(off_cpu / part["cpu_us_per_request"], 3) if off_cpu and part["cpu_us_per_request"] else None,
                }
                log(f"observability: {s.label}: S2 ratio {out['parts'][s.name]['ratio']}, CPU off/on {out['parts'][s.name]['cpu_ratio']}")
        except Exception as e:  # noqa: BLE001
            out["error"] = f"{type(e).__name__}: {e}"
            log(f"observability: FAILED: {out['error']}")
            self.failed = True
        finally:
            for s, r in started:
                s.stop(r)
        return out

    def tls_cost(self) -> dict[str, Any]:
        """S2 on the gateway with its HTTP origin and S6 (the same request) on the gateway with the
        same origin over TLS, both 1 worker, both up, runs interleaved: what pooled, verified TLS to
        the origin costs, with the machine's drift shared by both figures (issue 11)."""
        cat = catalogue()
        pair = [(cat["gateway-1w"], "S2"), (cat["gateway-https"], "S6")]
        out: dict[str, Any] = {"systems": {}}
        started: list[tuple[System, str, Running]] = []
        try:
            for s, sc in pair:
                log(f"{s.label}: starting (S2/S6 interleaved)")
                r = s.start(self.ctx)
                started.append((s, sc, r))
                c = checks.run_checks(r.port, _checks_for("workload", self.tok))
                if not all(x["ok"] for x in c):
                    out["error"] = f"{s.label} failed its checks: " + "; ".join(x["problem"] for x in c if not x["ok"])
                    log(out["error"])
                    self.failed = True
                    return out
            out["background_busy_pct"] = self.settle("tls-cost")
            runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s, _, _ in started}
            for s, sc, r in started:
                if self.a.warmup > 0:
                    wrk.run(r.port, self.scen[sc], duration=self.a.warmup, connections=self.a.connections, script=self.script)
            for i in range(max(self.a.runs, 3)):
                for s, sc, r in started:
                    runs[s.name].append(self.one_run(s.label, r.port, sc, i, r))
            for s, sc, _ in started:
                out["systems"][s.name] = {"label": s.label, "scenario": sc, "runs": runs[s.name], "median": _median_run(runs[s.name])}
            s2 = out["systems"]["gateway-1w"]["median"]["rps"]
            s6 = out["systems"]["gateway-https"]["median"]["rps"]
            out.update(s2_rps=s2, s6_rps=s6, ratio=round(s6 / s2, 3) if s2 else None)
            log(f"tls-cost: S2 {s2:,.0f} req/s, S6 {s6:,.0f} req/s, S6/S2 {out['ratio']}")
        except Exception as e:  # noqa: BLE001
            out["error"] = f"{type(e).__name__}: {e}"
            log(f"tls-cost: FAILED: {out['error']}")
            self.failed = True
        finally:
            for s, _, r in started:
                s.stop(r)
        return out


    def s5(self) -> dict[str, Any]:
        """S5 (issue 10) on its own: the gateway (token cache on, its default), the gateway with
        token_cache = 0 and HAProxy all up at once, runs interleaved, so a busy spell of the shared
        machine hits each alike and the ratios compare like with like."""
        out: dict[str, Any] = {"systems": {}, "skipped": {}}
        started: list[tuple[System, Running]] = []
        try:
            for s in s5_systems():
                if not s.runs_s5(self.ctx):
                    out["skipped"][s.name] = self.ctx.idp_skip or "S5's key set could not be made"
                    log(f"s5: {s.label}: skipped: {out['skipped'][s.name]}")
                    continue
                if self.start_checked(s, started, out, s5=True) is None:
                    return out
            out["background_busy_pct"] = self.settle("s5")
            runs = self.interleaved([(s.name, s.label, r, "S5") for s, r in started], "system_cpu_us_per_request")
            for s, r in started:
                post = checks.run_checks(r.port, _checks_for("workload", self.tok, True))
                problems = [f"after load: {c['check']}: {c['problem']}" for c in post if not c["ok"]]
                med = _median_run(runs[s.name])
                med["system_cpu_us_per_request"] = _median_of(runs[s.name], "system_cpu_us_per_request")
                out["systems"][s.name] = {"label": s.label, "runs": runs[s.name], "median": med, "problems": problems}
                if problems:
                    log(f"s5: {s.label}: PROBLEM: {problems}")
                    self.failed |= s.granian
        except Exception as e:  # noqa: BLE001
            out["error"] = f"{type(e).__name__}: {e}"
            log(f"s5: FAILED: {out['error']}")
            self.failed = True
        finally:
            for s, r in started:
                s.stop(r)
        return out


def rebuild(a: argparse.Namespace) -> int:
    src = Path(a.report)
    res = json.loads(src.read_text())
    res["targets"] = report.targets(res)
    src.with_suffix(".md").write_text(report.markdown(res))
    if _has("matplotlib"):
        report.chart(res, src.with_suffix(".png"))
    if a.write_results:
        report.write_section(res, BENCHES / "RESULTS.md")
        log(f"benches: wrote the '{report.SECTION}' section of benches/RESULTS.md")
    print(report.markdown(res))
    return 0


def main(argv: list[str]) -> int:
    a = parse(argv)
    if a.report:
        return rebuild(a)
    names, do_matching = selected(a)
    only = {w.strip() for w in a.only.split(",") if w.strip()}
    do_hooks = "hooks" in only or not (a.only or a.quick)
    do_s5 = "s5" in only or not (a.only or a.quick)
    install_cleanup()
    t0 = time.monotonic()
    started = time.strftime("%Y-%m-%dT%H-%M-%S")
    log(f"benches: load benchmark {'(quick) ' if a.quick else ''}— systems: {', '.join(names)}{' + matching cost' if do_matching else ''}")
    if not a.no_install:
        install.apt_tools(["wrk", "nginx", "taskset"] + (["haproxy"] if {"haproxy", "haproxy-https"} & set(names) or do_s5 else []))
        if "starlette" in names:
            install.pip_modules(install.PY_MODULES)
    for tool in ("wrk", "nginx", "taskset"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            raise SystemExit(f"benches: needs {tool}")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("benches: needs at least 2 cores (wrk on core 0, origin and system under test on core 1)")
    can_chart = (not a.no_install and not a.quick and install.have_matplotlib()) or _has("matplotlib")

    tok = tokens()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    tmp.chmod(0o755)  # nginx workers may run as nobody
    (tmp / "regions.json").write_text('{"KR": {"currency": "KRW"}, "JP": {"currency": "JPY"}, "US": {"currency": "USD"}}')
    ctx = Ctx(tmp=tmp, origin_port=free_port(), gateway_path=snapshot_gateway(tmp))
    # S5 (issue 10): an RS256 key set for this run, and whether this gateway build can load it as a policy.
    if not a.no_install:
        install.pip_modules({"cryptography": "cryptography"})
    try:
        tok.update(idp_tokens(tmp))
        ctx.idp_ready = True
        ctx.idp_skip = configs.idp_unsupported(tmp)
    except ImportError as e:
        ctx.idp_skip = f"no RS256 tokens: {e} (pip install cryptography)"
        log(f"benches: S5 not run by any system: {ctx.idp_skip}")
    if ctx.idp_skip:
        log(f"benches: S5 runs without the gateway: {ctx.idp_skip}")
    res: dict[str, Any] = {
        "started": started,
        "command": " ".join(shlex.quote(x) for x in [os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable, "-m", "benches", *argv]),
        "quick": a.quick,
        "machine": machine(),
        "versions": versions(ctx),
        "settings": {
            "duration_s": a.duration,
            "runs": a.runs,
            "warmup_s": a.warmup,
            "connections": a.connections,
            "wrk_threads": 1,
            "pinning": {"wrk": WRK_CPUS, "origin": ORIGIN_CPUS, "sut": SUT_CPUS},
        },
        "systems": {},
        "s5_gateway_skipped": ctx.idp_skip,
    }
    cat = catalogue()
    suite: Suite | None = None
    origin = None
    node_deadline: float | None = None
    try:
        log(f"origin: nginx on 127.0.0.1:{ctx.origin_port} (cpu {ORIGIN_CPUS})")
        origin = origin_start(ctx)
        suite = Suite(a, ctx, tok, origin)
        suite.keep_logs = Path(a.out) / (started + ("-quick" if a.quick else ""))
        for name in names:
            system = cat[name]
            if name in NODE_PEERS:
                node_deadline = node_deadline or time.monotonic() + NODE_BUDGET_S
                if time.monotonic() > node_deadline:
                    res["systems"][name] = {"label": system.label, "kind": system.kind, "status": "skipped", "reason": "the 30-minute budget for the Node peers ran out"}
                    continue
            log(f"== {system.label}")
            res["systems"][name] = suite.bench(system)
            if do_matching and name == "starlette":
                log("== matching cost (S4, 10 vs 1,000 routes)")
                res["matching"] = suite.matching()
                do_matching = False
        if do_matching:
            log("== matching cost (S4, 10 vs 1,000 routes)")
            res["matching"] = suite.matching()
        if do_hooks:
            log("== Python hooks (S2 with and without a no-op request hook)")
            res["hooks"] = suite.hooks()
        if do_s5:
            log("== S5 interleaved: gateway (token cache on), gateway (token_cache = 0), HAProxy")
            res["s5"] = suite.s5()
        if "gateway-https" in names and "gateway-1w" in names:
            log("== what pooled TLS to the origin costs (S2 vs S6, interleaved)")
            res["https"] = suite.tls_cost()
        if "observability" in {w.strip() for w in a.only.split(",")} or not (a.only or a.quick):
            log("== observability (issue 12): S2 with metrics + request id + trace vs without")
            res["observability"] = suite.observability()
    finally:
        if origin is not None:
            stop(origin)
        shutil.rmtree(tmp, ignore_errors=True)

    if "nextjs" in res["systems"] and res["systems"]["nextjs"].get("version"):
        res["versions"]["next"] = res["systems"]["nextjs"]["version"]
    if "workerd" in res["systems"] and res["systems"]["workerd"].get("version"):
        res["versions"]["workerd"] = res["systems"]["workerd"]["version"]
    res["rss"] = {n: s["memory"] for n, s in res["systems"].items() if s.get("memory")}
    peaks = [w.get("VmHWM", 0) for m in res["rss"].values() for w in m["workers"]]
    res["rss_peak_mb_per_worker"] = round(max(peaks) / 1024, 1) if peaks else None
    if core_hash() != res["versions"]["gateway_core_sha256"]:
        log("benches: note: the working tree's Rust core was rebuilt during this run; every gateway here ran the snapshot taken at the start")
    res["targets"] = report.targets(res)
    res["elapsed_s"] = round(time.monotonic() - t0, 1)

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = started + ("-quick" if a.quick else "")
    (out / f"{stem}.json").write_text(json.dumps(res, indent=2))
    md = report.markdown(res)
    (out / f"{stem}.md").write_text(md)
    written = [out / f"{stem}.json", out / f"{stem}.md"]
    if can_chart:
        try:
            report.chart(res, out / f"{stem}.png")
            written.append(out / f"{stem}.png")
        except Exception as e:  # noqa: BLE001 - a chart failure must not lose the results
            log(f"chart: failed: {e}")
    print()
    print(md)
    if a.write_results and not a.quick:
        report.write_section(res, BENCHES / "RESULTS.md")
        written.append(BENCHES / "RESULTS.md")
    log(f"benches: wrote {', '.join(os.path.relpath(p, ROOT) for p in written)} in {res['elapsed_s']:.0f} s")
    if suite is None or suite.failed:
        log("benches: FAILED: a system failed its correctness check, failed to start, or misbehaved under load (see above)")
        return 1
    return 0


def _has(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None
