"""Turn a results dict into the Markdown report and the PNG chart; compute the issue's target ratios."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCENARIOS = ("S0", "S1", "S2", "S3", "S4", "S5", "S6")
TITLES = {
    "S0": "S0 origin direct",
    "S1": "S1 no token → 302",
    "S2": "S2 valid token → proxy",
    "S3": "S3 forged → 302 + clear",
    "S4": "S4 KR → /ko + A/B",
    "S5": "S5 RS256 key set → proxy",
    "S6": "S6 valid token → HTTPS origin",
}
# S6 (issue 11): the gateway with its origin over TLS, and the peers doing the same.
GW_TLS, NGX_TLS, HAP_TLS = "gateway-https", "nginx-https", "haproxy-https"
S6_GOAL = 0.8
GW, HAP, STAR, WRK_D = "gateway-1w", "haproxy", "starlette", "workerd"
GW_NOCACHE = "gateway-1w-nocache"  # S5 with token_cache = 0 (issue 10)
S5_GOAL = 0.8
# The ceilings of issue 9, same run, pinning and worker count as GW: what the gateway is measured against
# per scenario (the answers it makes itself vs the requests it proxies).
FLOOR = {"S1": "granian-floor", "S2": "proxy-floor", "S3": "granian-floor", "S4": "proxy-floor"}
FLOOR_GOAL = 0.85


def median(res: dict[str, Any], system: str, sc: str, key: str = "rps") -> float | None:
    s = res["systems"].get(system) or {}
    m = (s.get("scenarios") or {}).get(sc, {}).get("median")
    return None if m is None else m.get(key)


def _k(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 10000:
        return f"{x / 1000:.1f}k"
    if x >= 1000:
        return f"{x / 1000:.2f}k"
    return f"{x:.0f}"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.0f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's speed targets, each with the measured value and met / not met / not measured."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: str, ok: bool | None, unit: str = "x") -> None:
        out.append({"target": name, "value": None if value is None else round(value, 3), "unit": unit, "goal": goal, "met": ok})

    for sc, goal in (("S1", 0.45), ("S2", 0.75), ("S3", 0.45), ("S4", 0.60)):
        r = _ratio(median(res, GW, sc), median(res, HAP, sc))
        add(f"{sc} req/s gateway(1w) / HAProxy", r, f"≥ {goal}", None if r is None else r >= goal)
    for sc, floor in FLOOR.items():
        r = floor_ratio(res, sc)
        add(f"{sc} req/s gateway(1w) / {floor}", r, f"≥ {FLOOR_GOAL}", None if r is None else r >= FLOOR_GOAL)
    r, where = s5_ratio(res, GW)
    add(f"S5 req/s gateway(1w) / HAProxy (issue 10; {where})", r, f"≥ {S5_GOAL}", None if r is None else r >= S5_GOAL)
    r, where = s5_ratio(res, GW_NOCACHE)
    if r is not None:
        add(f"S5 req/s gateway(1w, token_cache = 0) / HAProxy (info; {where})", r, f"≥ {S5_GOAL}", r >= S5_GOAL)
    for system, label in ((GW, "gateway(1w)"), (GW_NOCACHE, "gateway(1w, token_cache = 0)")):
        r = _ratio(s5_cpu(res, HAP), s5_cpu(res, system))
        if r is not None:
            add(f"S5 by CPU per request: HAProxy's / {label}'s (info)", r, f"≥ {S5_GOAL}", r >= S5_GOAL)
    r = _ratio(median(res, GW, "S2", "p99_ms"), median(res, HAP, "S2", "p99_ms"))
    add("S2 p99 gateway(1w) / HAProxy", r, "≤ 2", None if r is None else r <= 2.0)
    for peer, goal, label in ((STAR, 40.0, "Starlette"), (WRK_D, 5.0, "workerd")):
        for sc in ("S2", "S4"):
            r = _ratio(median(res, GW, sc), median(res, peer, sc))
            add(f"{sc} req/s gateway(1w) / {label}", r, f"≥ {goal:g}", None if r is None else r >= goal)
    r = s6_ratio(res)
    add("S6 req/s gateway(1w, HTTPS origin) / its own S2 (HTTP origin)", r, f"≥ {S6_GOAL}", None if r is None else r >= S6_GOAL)
    rss = res.get("rss_peak_mb_per_worker")
    add("peak RSS per gateway worker under load", rss, "≤ 64 MB", None if rss is None else rss <= 64.0, unit="MB")
    m = res.get("matching") or {}
    loss = m.get("s4_loss_pct")
    add("S4 loss with 1,000 routes vs 10", loss, "≤ 10 %", None if loss is None else loss <= 10.0, unit="%")
    h = res.get("hooks") or {}
    r = h.get("hooked_vs_unhooked")
    add("S2 req/s with one no-op request hook / without (same gateway)", r, "≥ 0.9", None if r is None else r >= 0.9)
    r = h.get("unhooked_vs_no_hooks")
    add("S2 req/s on a route without hooks, [hooks] configured / no [hooks]", r, "≥ 0.99", None if r is None else r >= 0.99)
    return out


def s6_ratio(res: dict[str, Any]) -> float | None:
    """What pooled TLS to the origin costs: the gateway's S6 req/s over its own S2 req/s, same run;
    from the interleaved S2/S6 runs (res["https"]) when there are some."""
    interleaved = (res.get("https") or {}).get("ratio")
    if interleaved is not None:
        return float(interleaved)
    return _ratio(median(res, GW_TLS, "S6"), median(res, GW, "S2"))


def s6_lines(res: dict[str, Any]) -> list[str]:
    """The HTTPS-origin comparison (issue 11) as Markdown lines; empty when S6 was not run."""
    g6, g2 = median(res, GW_TLS, "S6"), median(res, GW, "S2")
    if g6 is None:
        return []
    L = ["", "HTTPS origins (S6: S2's request, the origin over verified TLS with pooled connections):", ""]
    L.append("| | req/s | p50 ms | p99 ms |")
    L.append("|---|---|---|---|")
    for label, system, sc in (
        ("gateway(1w) S2, HTTP origin", GW, "S2"),
        ("gateway(1w) S6, HTTPS origin", GW_TLS, "S6"),
        ("nginx S6 (proxy_pass https://, keep-alive, proxy_ssl_verify on; no auth)", NGX_TLS, "S6"),
        ("HAProxy S6 (jwt_verify; ssl verify required)", HAP_TLS, "S6"),
    ):
        rps = median(res, system, sc)
        if rps is not None:
            L.append(f"| {label} | {_k(rps)} | {_ms(median(res, system, sc, 'p50_ms'))} | {_ms(median(res, system, sc, 'p99_ms'))} |")
    L.append("")
    tc = res.get("https") or {}
    if tc.get("ratio") is not None:
        n = len(tc["systems"]["gateway-1w"]["runs"])
        L.append(
            f"- interleaved, both gateways up, {n} runs each (median): S2 {_k(tc['s2_rps'])} req/s, "
            f"S6 {_k(tc['s6_rps'])} req/s"
        )
    r = s6_ratio(res)
    L.append(f"- gateway S6 / its own S2: **{r:.2f}x** (goal ≥ {S6_GOAL})" if r is not None else "- gateway S6 / its own S2: not measured")
    for label, peer in (("nginx", NGX_TLS), ("HAProxy", HAP_TLS)):
        pr = _ratio(g6, median(res, peer, "S6"))
        if pr is not None:
            L.append(f"- gateway S6 / {label} S6: {pr:.2f}x")
    if g2 is None:
        L.append("- (the gateway's S2 was not run: run gateway-1w too, e.g. `--only https`)")
    return L


def s5_median(res: dict[str, Any], system: str) -> float | None:
    """S5 req/s of `system` from the interleaved S5 comparison (issue 10), if it ran."""
    d = ((res.get("s5") or {}).get("systems") or {}).get(system) or {}
    return (d.get("median") or {}).get("rps")


def s5_cpu(res: dict[str, Any], system: str) -> float | None:
    """`system`'s own CPU µs per S5 request (median run) from the interleaved S5 comparison, if it ran."""
    d = ((res.get("s5") or {}).get("systems") or {}).get(system) or {}
    return (d.get("median") or {}).get("system_cpu_us_per_request")


def s5_ratio(res: dict[str, Any], system: str) -> tuple[float | None, str]:
    """`system`'s S5 req/s over HAProxy's: from the interleaved comparison when it ran, else from the
    systems' own S5 runs; and which of the two it is."""
    r = _ratio(s5_median(res, system), s5_median(res, HAP))
    if r is not None:
        return r, "interleaved runs"
    return _ratio(median(res, system, "S5"), median(res, HAP, "S5")), "systems' own runs"


def floor_ratio(res: dict[str, Any], sc: str) -> float | None:
    """The gateway's (1 worker) req/s as a fraction of the scenario's floor, this run."""
    return _ratio(median(res, GW, sc), median(res, FLOOR[sc], sc)) if sc in FLOOR else None


def _ratio_rows(res: dict[str, Any], rows: list[tuple[str, str, str]]) -> list[str]:
    """Markdown rows of req/s ratios, S1-S4: (label, numerator system, denominator system), where a
    system named "floor" is each scenario's floor; rows with nothing measured are left out."""
    out = []
    for label, num, den in rows:
        cells = []
        for sc in ("S1", "S2", "S3", "S4"):
            r = _ratio(median(res, FLOOR[sc] if num == "floor" else num, sc), median(res, FLOOR[sc] if den == "floor" else den, sc))
            cells.append("–" if r is None else f"{r:.2f}x")
        if any(c != "–" for c in cells):
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**not met**")


def markdown(res: dict[str, Any]) -> str:
    st = res["settings"]
    L: list[str] = []
    m = res["machine"]
    L.append(f"Run {res['started']} — {m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB, Linux {m['kernel']}.")
    L.append(
        f"wrk -t1 -c{st['connections']}, keep-alive, {st['duration_s']:g} s per run, {st['runs']} run(s) per scenario "
        f"(median), {st['warmup_s']:g} s warm-up; wrk pinned to core {st['pinning']['wrk']}, origin (nginx, 1 worker) and "
        f"system under test to core {st['pinning']['sut']} (taskset). Cells: requests/s · p50/p99 ms."
    )
    for w in res.get("warnings", []):
        L.append(f"**Warning:** {w}.")
    L.append("")
    L.append("| system | " + " | ".join(TITLES[s] for s in SCENARIOS) + " |")
    L.append("|---|" + "---|" * len(SCENARIOS))
    for name, s in res["systems"].items():
        if s.get("status") != "ok":
            continue
        cells = []
        for sc in SCENARIOS:
            md = (s.get("scenarios") or {}).get(sc, {}).get("median")
            cells.append(f"{_k(md['rps'])} · {_ms(md['p50_ms'])}/{_ms(md['p99_ms'])}" if md else "")
        L.append(f"| {s['label']} | " + " | ".join(cells) + " |")
    not_run = [(s["label"], s["status"], s.get("reason", "")) for s in res["systems"].values() if s.get("status") != "ok"]
    if not_run:
        L.append("")
        for label, status, reason in not_run:
            L.append(f"- {label}: **{status}**: {reason}")
    part = [(s["label"], sc, why) for s in res["systems"].values() if s.get("status") == "ok" for sc, why in (s.get("skipped_scenarios") or {}).items()]
    if part:
        L.append("")
        L.extend(f"- {label}: {sc} **not run**: {why}" for label, sc, why in part)
    L.append("")
    L.append("Each core's busy % during the timed runs (median run; core 0 = wrk, core 1 = origin + system):")
    L.append("")
    L.append("| system | " + " | ".join(s for s in SCENARIOS) + " |")
    L.append("|---|" + "---|" * len(SCENARIOS))
    for s in res["systems"].values():
        if s.get("status") != "ok":
            continue
        cells = []
        for sc in SCENARIOS:
            md = (s.get("scenarios") or {}).get(sc, {}).get("median")
            cells.append(f"{md['cpu_busy_pct'].get('cpu0', 0):.0f} / {md['cpu_busy_pct'].get('cpu1', 0):.0f}" if md else "")
        L.append(f"| {s['label']} | " + " | ".join(cells) + " |")

    busy = [(s["label"], s["background_busy_pct"]) for s in res["systems"].values() if max((s.get("background_busy_pct") or {"x": 0}).values()) > 15]
    if busy:
        L.append("")
        L.append("Warning: the machine was busy with other work just before these systems were timed (busy % per core, nothing under load):")
        L.append("")
        L.extend(f"- {label}: " + ", ".join(f"{k} {v:.0f} %" for k, v in bg.items()) for label, bg in busy)

    runs = [r for s in res["systems"].values() for d in (s.get("scenarios") or {}).values() for r in d.get("runs", [])]
    runs += [r for d in ((res.get("matching") or {}).get("systems") or {}).values() for r in d.get("runs", [])]
    runs += [r for d in ((res.get("s5") or {}).get("systems") or {}).values() for r in d.get("runs", [])]
    retried = sum(len(r.get("discarded_rps", [])) for r in runs)
    kept = sum(1 for r in runs if r.get("contaminated"))
    L.append("")
    L.append(
        f"Other processes on the machine: every timed run measures the CPU used by processes other than wrk, the origin and the "
        f"system under test; a run where they used more than 5 % of a core is discarded and retried (up to 4 times). "
        f"This run: {retried} run(s) discarded and retried, {kept} kept although still disturbed."
    )

    errs = []
    for s in res["systems"].values():
        for sc, d in (s.get("scenarios") or {}).items():
            for i, r in enumerate(d.get("runs", [])):
                e = r["errors"]
                if any(e.values()):
                    errs.append(f"- {s['label']} {sc} run {i + 1}: " + ", ".join(f"{k} {v}" for k, v in e.items() if v) + f" (of {r['requests']} requests)")
        for p in s.get("problems", []):
            errs.append(f"- {s['label']}: {p}" + (f" (log: `{s['log_file']}`)" if s.get("log_file") else ""))
    L.append("")
    L.append("Errors under load (wrk socket errors, responses other than 2xx/3xx, crashes, failed re-checks after load):")
    L.append("")
    L.extend(errs or ["- none"])

    L.append("")
    vs = _ratio_rows(
        res,
        [
            (f"its floor (S1, S3: granian-floor; S2, S4: proxy-floor; goal ≥ {FLOOR_GOAL})", GW, "floor"),
            ("HAProxy", GW, HAP),
            ("nginx plain proxy", GW, "nginx"),
            ("Starlette", GW, STAR),
            ("workerd (goal S2, S4 ≥ 5)", GW, WRK_D),
        ],
    )
    if vs:
        L.append("")
        L.append("Gateway (1 worker) req/s relative to each system, per scenario, this run:")
        L.append("")
        L.append("| gateway(1w) / | S1 | S2 | S3 | S4 |")
        L.append("|---|---|---|---|---|")
        L.extend(vs)

    L.append("")
    L.append("Targets (issues 4 and 9), gateway with 1 worker, ratios within this run:")
    L.append("")
    L.append("| target | measured | goal | verdict |")
    L.append("|---|---|---|---|")
    for t in res["targets"]:
        v = "–" if t["value"] is None else (f"{t['value']:.2f}" + ("" if t["unit"] == "x" else f" {t['unit']}"))
        L.append(f"| {t['target']} | {v} | {t['goal']} | {_verdict(t['met'])} |")

    sc_rows = _ratio_rows(res, [("2 workers, both on core 1", "gateway-2w", GW), ("2 workers on cores 0-1 (shared with wrk)", "gateway-2w-spread", GW)])
    if sc_rows:
        L.append("")
        L.append("Scaling from 1 worker (req/s relative to gateway 1 worker):")
        L.append("")
        L.append("| | S1 | S2 | S3 | S4 |")
        L.append("|---|---|---|---|---|")
        L.extend(sc_rows)

    rss = res.get("rss") or {}
    if rss:
        L.append("")
        L.append("Gateway memory under load (VmHWM = peak RSS, per worker; VmRSS after the last run):")
        L.append("")
        for name, r in rss.items():
            per = ", ".join(f"{w['VmHWM'] / 1024:.1f} MB peak / {w['VmRSS'] / 1024:.1f} MB now" for w in r["workers"])
            L.append(f"- {name}: {per}; sum of peaks {r['sum_hwm_mb']:.1f} MB")
    L.extend(s6_lines(res))
    mt = res.get("matching") or {}
    if mt.get("s4_rps"):
        L.append("")
        L.append(
            "Matching cost, S4 with 10 vs 1,000 routes before the catch-all (runs interleaved): "
            + ", ".join(f"{k} routes {_k(v)} req/s" for k, v in mt["s4_rps"].items())
            + (f"; loss {mt['s4_loss_pct']:.1f} %" if mt.get("s4_loss_pct") is not None else "")
        )
    ob = res.get("observability") or {}
    if ob.get("s2_rps"):
        L.append("")
        L.append(
            "Observability, S2 with metrics + request id + trace (no OTLP) vs without (runs interleaved): "
            f"on {_k(ob['s2_rps']['on'])} req/s, off {_k(ob['s2_rps']['off'])} req/s, ratio {ob['s2_ratio']:.3f}"
            + (
                f"; the gateway's CPU per request on {ob['s2_cpu_us']['on']:.1f} µs, off {ob['s2_cpu_us']['off']:.1f} µs, off/on {ob['s2_cpu_ratio']:.3f}"
                if ob.get("s2_cpu_ratio")
                else ""
            )
            + (f"; /metrics counted {ob['metrics_counted']:.0f} S2 requests" if ob.get("metrics_counted") is not None else "")
            + "".join(f"; {p['label']}: ratio {p['ratio']}, CPU off/on {p['cpu_ratio']}" for p in (ob.get("parts") or {}).values())
        )
    L.append("")
    L.extend(s5_markdown(res))
    L.append("")
    L.append(f"Command: `{res['command']}`")
    return "\n".join(L) + "\n"


def s5_markdown(res: dict[str, Any]) -> list[str]:
    """The interleaved S5 comparison (issue 10): per system req/s, latency, CPU, and each over HAProxy."""
    s5 = res.get("s5")
    if not s5:
        return []
    L = ["", "S5 (issue 10): valid RS256 token checked against a key set, then proxied; the systems up together "
         "and their runs interleaved (median of the runs):", ""]
    L.append("| system | req/s | p50 / p99 ms | cores busy (wrk / system) | req/s / HAProxy | system CPU µs per request | HAProxy's / this (by CPU) | runs (req/s) |")
    L.append("|---|---|---|---|---|---|---|---|")
    hap = s5_median(res, HAP)
    hap_cpu = (((s5.get("systems") or {}).get(HAP) or {}).get("median") or {}).get("system_cpu_us_per_request")
    for d in (s5.get("systems") or {}).values():
        m = d["median"]
        r = _ratio(m["rps"], hap)
        cpu = m.get("system_cpu_us_per_request")
        rc = _ratio(hap_cpu, cpu)
        runs = ", ".join(_k(x["rps"]) for x in d["runs"])
        L.append(f"| {d['label']} | {_k(m['rps'])} | {_ms(m['p50_ms'])} / {_ms(m['p99_ms'])} | "
                 f"{m['cpu_busy_pct'].get('cpu0', 0):.0f} / {m['cpu_busy_pct'].get('cpu1', 0):.0f} % | "
                 f"{'–' if r is None else f'{r:.2f}x'} | {'–' if cpu is None else f'{cpu:.1f}'} | "
                 f"{'–' if rc is None else f'{rc:.2f}x'} | {runs} |")
    for name, why in (s5.get("skipped") or {}).items():
        L.append(f"| {name} | skipped: {why} | | | | | | |")
    L.append("")
    L.append("System CPU per request = the CPU time (user + system) of the system's own processes during a run over "
             "its requests (the origin's excluded); HAProxy's over the gateway's is the req/s ratio each would reach "
             "on a core of its own, which moves much less than req/s when other work shares the machine.")
    if s5.get("error"):
        L.append("")
        L.append(f"S5 failed: {s5['error']}")
    for d in (s5.get("systems") or {}).values():
        for p in d.get("problems", []):
            L.append(f"- {d['label']}: {p}")
    return L


def chart(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = [(n, s) for n, s in res["systems"].items() if s.get("status") == "ok"]
    if not systems:
        return
    fig, ax = plt.subplots(figsize=(13, 6.5))
    ax2 = ax.twinx()
    width = 0.8 / max(1, len(systems))
    cmap = plt.get_cmap("tab10")
    for i, (name, s) in enumerate(systems):
        xs, ys, p99, scs = [], [], [], []
        for j, sc in enumerate(SCENARIOS):
            md = (s.get("scenarios") or {}).get(sc, {}).get("median")
            if md:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(md["rps"])
                p99.append(md["p99_ms"])
                scs.append(sc)
        if not xs:
            continue
        ax.bar(xs, ys, width * 0.95, label=s["label"], color=cmap(i % 10))
        ax2.scatter(xs, p99, marker="_", s=220, linewidths=2.5, color="black", zorder=5)
        for x, y, sc in zip(xs, ys, scs):
            r = floor_ratio(res, sc) if name == GW else None
            ax.text(x, y * 1.05, _k(y) + ("" if r is None else f" ({r:.2f}x floor)"), ha="center", va="bottom", fontsize=6.5, rotation=90)
    ax.set_yscale("log")
    ax2.set_yscale("log")
    ax.set_xticks(range(len(SCENARIOS)))
    ax.set_xticklabels([TITLES[s] for s in SCENARIOS])
    ax.set_ylabel("requests/s (median of runs, log scale)")
    ax2.set_ylabel("p99 latency, ms (black dashes, log scale)")
    ax.set_title(f"Load benchmark {res['started']} — wrk on core 0, origin + system on core 1, {res['settings']['connections']} connections")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


SECTION = "## Load (issue 4)"


def section(res: dict[str, Any]) -> str:
    """The "## Load (issue 4)" section of benches/RESULTS.md for one full run."""
    v = res["versions"]
    m = res["machine"]
    vers = (
        f"Python {v['python']}, gateway {v['gateway']} (commit {v['gateway_commit']}"
        + (", uncommitted changes in rust/ or python/" if v.get("gateway_dirty") == "yes" else "")
        + f", core {v.get('gateway_core_sha256', '?')}), Granian {v['granian']}, {v['wrk'].split(' [')[0]}, {v['nginx']}, "
        + f"{v['haproxy'].split(' - ')[0]}, Starlette {v['starlette']}, uvicorn {v['uvicorn']}, httpx {v['httpx']}, "
        + f"PyJWT {v['pyjwt']}, Node {v['node']}"
        + (f", Next.js {v['next'].removeprefix('next ')}" if v.get("next") else "")
        + (f", {v['workerd']}" if v.get("workerd") else "")
        + "."
    )
    head = [
        SECTION,
        "",
        (
            f"Latest full run of `{res['command']}` (from the repository root; {res['elapsed_s'] / 60:.0f} min). Machine: "
            f"{m['cpu_model']}, {m['cores']} cores{' (VM)' if m.get('hypervisor') else ''}, {m['memory_gb']} GB, Linux {m['kernel']}. "
        f"Versions: {vers} Raw figures: `benches/results/{res['started']}.json` (and `.md`, `.png`; not committed). "
            "`python -m benches --write-results` replaces this section."
        ),
        "",
        "",
    ]
    return "\n".join(head) + markdown(res)


NOTES = "### Notes (kept when the section is rewritten)"


def write_section(res: dict[str, Any], path: Path) -> None:
    """Replace (or append) the "## Load (issue 4)" section; a "### Notes (kept ...)" part of it is kept."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == SECTION), None)
    notes = ""
    if start is None:
        before, after = text.rstrip("\n") + "\n\n", ""
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        old = lines[start:end]
        k = next((i for i, ln in enumerate(old) if ln.rstrip() == NOTES), None)
        if k is not None:
            notes = "".join(old[k:]).rstrip("\n") + "\n"
        before, after = "".join(lines[:start]), "".join(lines[end:])
    body = section(res) + ("\n" + notes if notes else "")
    path.write_text(before + body + ("\n" + after if after else ""))
