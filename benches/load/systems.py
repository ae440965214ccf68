"""The systems under test: how each is configured, started (pinned), probed and stopped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benches.load import configs, install
from benches.load.checks import fetch
from benches.load.tls import TLS_NAME, OriginCerts, make_origin_certs
from benches.load.common import (
    IDP_PEM,
    ORIGIN_CPUS,
    PEERS,
    ROOT,
    SECRET,
    SUT_CPUS,
    free_port,
    start,
    stop,
    wait_port,
)


@dataclass
class Ctx:
    tmp: Path
    origin_port: int
    gateway_path: Path | None = None  # a snapshot of python/gateway (with its built core) on PYTHONPATH
    # S6 (issue 11): the origin's TLS port and the certificates (benches/load/tls.py), made at start.
    origin_tls_port: int = 0
    certs: OriginCerts | None = None
    # S5 (issue 10): its key files and tokens were made (needs `cryptography`), and why this gateway build
    # cannot run it (no static key-set policy); None = it can.
    idp_ready: bool = False
    idp_skip: str | None = None

    def idp_pem(self) -> Path | None:
        """HAProxy's S5 key file, when this run made one."""
        return self.tmp / IDP_PEM if self.idp_ready else None


def snapshot_gateway(tmp: Path) -> Path:
    """Copy the gateway package as built now (Python sources and the Rust extension) into `tmp`, so that
    every gateway started in this run is the same build even if the working tree is edited or rebuilt
    meanwhile. Returns the directory to put first on PYTHONPATH."""
    import gateway

    src = Path(gateway.__file__).resolve().parent
    dst = tmp / "gateway-snapshot"
    shutil.copytree(src, dst / "gateway", ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@dataclass
class Running:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    workers: list[int] = field(default_factory=list)  # gateway worker pids (for RSS and crash detection)


@dataclass
class System:
    name: str
    label: str
    kind: str  # "workload" (does the reference workload), "proxy" (plain proxy), "redirect" (a fixed 302), "origin" (S0)
    server_extra: str = ""  # gateway only: lines added to [server] ({metrics_port}: a free port)
    cpus: str = SUT_CPUS
    note: str = ""
    workers: int = 0  # Granian workers: the gateway and the floors
    extra_routes: int = 0  # gateway only
    hooks: bool = False  # gateway only: with the no-op request hook route of issue 13 (configs.with_hooks)
    app: str = ""  # a floor: the ASGI app (module:attribute) served by peers/granian_serve.py
    ready: tuple[str, int] = ("/__gateway/health", 200)  # Granian systems: up once this path answers this status
    core: bool = True  # Granian systems: loads the gateway's Rust core (checked to be this run's snapshot)
    scenarios: tuple[str, ...] = ("S1", "S2", "S3", "S4")
    install_note: str = ""
    https: bool = False  # S6: the system proxies to the origin's TLS port
    token_cache: int | None = None  # gateway only: the S5 policy's token_cache (None = the gateway's default)

    def runs_s5(self, ctx: Ctx) -> bool:
        """S5 (issue 10) is configured for this system: it lists S5 and, for the gateway, the build can."""
        return "S5" in self.scenarios and ctx.idp_ready and not (self.name.startswith("gateway") and ctx.idp_skip)

    # -------------------------------------------------------------- start

    def prepare(self) -> str | None:
        """Install what this system needs; None when ready, else the reason it is skipped."""
        if self.name == "nextjs":
            d, info = install.nextjs()
            if d is None:
                return info
            self.install_note = f"next {info}"
        elif self.name == "workerd":
            b, info = install.workerd()
            if b is None:
                return info
            self.install_note = info
        elif self.name == "starlette":
            try:
                install.pip_modules(install.PY_MODULES)
            except SystemExit as e:
                return str(e)
        return None

    def start(self, ctx: Ctx) -> Running:
        port = free_port()
        logf = ctx.tmp / f"{self.name}.log"
        env: dict[str, str] = {"JWT_SECRET": SECRET}
        if self.granian:
            # A floor is served with the Granian options `gateway serve` uses for the same config.
            cfg = ctx.tmp / f"{self.name}.toml"
            https = (ctx.origin_tls_port, ctx.certs.ca) if self.https and ctx.certs is not None else None
            server = self.server_extra.replace("{metrics_port}", str(free_port()))
            text = configs.gateway_toml(
                port, ctx.origin_port, ctx.tmp, configs.extra_routes(self.extra_routes), https_origin=https, server=server,
                idp=self.runs_s5(ctx), token_cache=self.token_cache,
            )
            cfg.write_text(configs.with_hooks(text, ctx.tmp) if self.hooks else text)
            if self.app:
                cmd = [sys.executable, "-m", "benches.load.peers.granian_serve", self.app, "--config", str(cfg), "--port", str(port), "--workers", str(self.workers)]
                env["ORIGIN_URL"] = f"http://127.0.0.1:{ctx.origin_port}"
            else:
                cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}", "--workers", str(self.workers)]
            path = ([str(ctx.gateway_path)] if ctx.gateway_path is not None else []) + ([str(ROOT)] if self.app else [])
            if path:
                env["PYTHONPATH"] = os.pathsep.join(path)
            p = start(cmd, cpus=self.cpus, env=env, cwd=ROOT if self.app else None, log_path=logf)
            run = Running(port, p, logf)
            wait_port(port, 60, p)
            _wait_ok(port, *self.ready, 30, p)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                run.workers = gateway_workers(p.pid)
                if len(run.workers) >= self.workers:
                    break
                time.sleep(0.2)
            if len(run.workers) < self.workers:
                raise RuntimeError(f"{len(run.workers)} of {self.workers} workers came up")
            if ctx.gateway_path is not None:
                maps = Path(f"/proc/{run.workers[0]}/maps").read_text()
                if self.core and str(ctx.gateway_path) not in maps:
                    raise RuntimeError(f"the worker did not load the gateway snapshot in {ctx.gateway_path}")
                if not self.core and str(ctx.gateway_path) in maps:
                    raise RuntimeError("the worker loaded the gateway's core, which this system must not use")
            return run
        if self.name in ("haproxy", "haproxy-https"):
            cfg = ctx.tmp / f"{self.name}.cfg"
            if self.https:
                assert ctx.certs is not None
                cfg.write_text(configs.haproxy_https_cfg(port, ctx.origin_port, ctx.origin_tls_port, ctx.certs.ca, TLS_NAME, ctx.idp_pem()))
            else:
                cfg.write_text(configs.haproxy_cfg(port, ctx.origin_port, ctx.idp_pem()))
            chk = subprocess.run(["haproxy", "-c", "-q", "-f", str(cfg)], env={"JWT_SECRET": SECRET, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, capture_output=True, text=True, check=False)
            if chk.returncode != 0:
                raise RuntimeError(f"haproxy -c refused the config: {(chk.stderr or chk.stdout).strip()[-400:]}")
            p = start([_tool("haproxy"), "-db", "-f", str(cfg)], cpus=self.cpus, env=env, log_path=logf)
        elif self.name == "nginx":
            conf = ctx.tmp / "proxy-nginx.conf"
            conf.write_text(configs.PROXY_NGINX.format(tmp=ctx.tmp, port=port, origin=ctx.origin_port))
            p = start([_tool("nginx"), "-c", str(conf), "-p", str(ctx.tmp), "-e", str(ctx.tmp / "proxy-error.log")], cpus=self.cpus, log_path=logf)
        elif self.name == "nginx-https":
            assert ctx.certs is not None
            conf = ctx.tmp / "proxy-https-nginx.conf"
            conf.write_text(configs.PROXY_NGINX_HTTPS.format(tmp=ctx.tmp, port=port, origin_tls=ctx.origin_tls_port, ca=ctx.certs.ca, tls_name=TLS_NAME))
            p = start([_tool("nginx"), "-c", str(conf), "-p", str(ctx.tmp), "-e", str(ctx.tmp / "proxy-https-error.log")], cpus=self.cpus, log_path=logf)
        elif self.name == "starlette":
            cmd = [
                sys.executable, "-m", "uvicorn", "benches.load.peers.starlette_gateway:app",
                "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
            p = start(cmd, cpus=self.cpus, env={**env, "ORIGIN_URL": f"http://127.0.0.1:{ctx.origin_port}"}, cwd=ROOT, log_path=logf)
        elif self.name == "nextjs":
            d = install.NEXT_DIR
            cmd = [str(d / "node_modules" / ".bin" / "next"), "start", "-p", str(port), "-H", "127.0.0.1"]
            env.update({"BENCH_ORIGIN": f"http://127.0.0.1:{ctx.origin_port}", "NODE_ENV": "production", "NEXT_TELEMETRY_DISABLED": "1"})
            p = start(cmd, cpus=self.cpus, env=env, cwd=d, log_path=logf)
        elif self.name == "workerd":
            wd = ctx.tmp / "workerd"
            wd.mkdir(exist_ok=True)
            shutil.copy2(PEERS / "workerd" / "worker.js", wd / "worker.js")
            tmpl = (PEERS / "workerd" / "config.capnp.tmpl").read_text()
            (wd / "config.capnp").write_text(tmpl.replace("{port}", str(port)).replace("{origin}", str(ctx.origin_port)))
            binary = install.WORKERD_DIR / "node_modules" / ".bin" / "workerd"
            p = start([str(binary), "serve", "config.capnp"], cpus=self.cpus, env=env, cwd=wd, log_path=logf)
        else:
            raise ValueError(self.name)
        wait_port(port, 60, p)
        return Running(port, p, logf)

    @property
    def granian(self) -> bool:
        """Served by Granian with `gateway serve`'s options: the gateway itself or one of its floors."""
        return self.name.startswith("gateway") or bool(self.app)

    def stop(self, run: Running) -> None:
        stop(run.proc, grace=15.0)


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _wait_ok(port: int, path: str, status: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode}")
        try:
            r = fetch(port, "GET", path, timeout=2)
            if r.status == status:
                return
            last = r.status
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"GET {path} never answered {status} (last: {last})")


def gateway_workers(main_pid: int) -> list[int]:
    """Granian's worker processes: the direct children of the `gateway serve` process."""
    try:
        return sorted(int(x) for x in Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split())
    except OSError:
        return []


def origin_start(ctx: Ctx) -> subprocess.Popen[bytes]:
    conf = ctx.tmp / "origin-nginx.conf"
    if ctx.certs is None:
        ctx.certs = make_origin_certs(ctx.tmp / "tls")
    if not ctx.origin_tls_port:
        ctx.origin_tls_port = free_port()
    conf.write_text(
        configs.ORIGIN_NGINX.format(
            tmp=ctx.tmp, port=ctx.origin_port, body=configs.BODY, body_ko=configs.BODY_KO, tls_port=ctx.origin_tls_port, tls_cert=ctx.certs.cert, tls_key=ctx.certs.key
        )
    )
    p = start([_tool("nginx"), "-c", str(conf), "-p", str(ctx.tmp), "-e", str(ctx.tmp / "origin-error.log")], cpus=ORIGIN_CPUS, log_path=ctx.tmp / "origin.log")
    wait_port(ctx.origin_port, 30, p)
    return p


def catalogue() -> dict[str, System]:
    """Every system, in the order they are run: the cheap ones first."""
    systems = [
        System("origin", "nginx origin (S0)", "origin", cpus=ORIGIN_CPUS, scenarios=("S0",), note="the ceiling: wrk straight to the origin"),
        System("gateway-1w", "gateway 1 worker", "workload", workers=1, scenarios=("S1", "S2", "S3", "S4", "S5")),
        System(
            "granian-floor", "granian-floor (fixed 302, 1 worker)", "redirect", workers=1, scenarios=("S1", "S3"),
            app="benches.load.peers.granian_floor:app", ready=("/dashboard", 302), core=False,
            note="the ceiling for S1/S3: Granian ASGI with gateway serve's options answering the gateway's 302 bytes, no gateway code",
        ),
        System(
            "proxy-floor", "proxy-floor (core upstream client, 1 worker)", "proxy", workers=1, scenarios=("S2", "S4"),
            app="benches.load.peers.proxy_floor:app", ready=("/products", 200),
            note="the ceiling for S2/S4: Granian ASGI with gateway serve's options forwarding through gateway.proxy.upstream.UpstreamClient, no rules",
        ),
        System("gateway-2w", "gateway 2 workers", "workload", workers=2, note="both workers on the SUT core, same pinning as every peer"),
        System(
            "gateway-2w-spread", "gateway 2 workers, cores 0-1", "workload", cpus="0,1", workers=2,
            note="one worker per core: the workers may also run on wrk's core, so wrk competes with them; indicative only",
        ),
        System("haproxy", "HAProxy (jwt_verify, 1 thread)", "workload", scenarios=("S1", "S2", "S3", "S4", "S5")),
        System("nginx", "nginx plain proxy (no auth)", "proxy", note="the proxying ceiling: S1-S4 request shapes are all just proxied"),
        System("starlette", "Starlette+PyJWT+httpx (uvicorn, 1 worker)", "workload"),
        System("nextjs", "Next.js middleware (next start)", "workload"),
        System("workerd", "Cloudflare workerd", "workload"),
        # S6 (issue 11): valid token -> proxy to the origin over verified, pooled TLS; S6 is S2's
        # request, so the gateway's S6 / S2 (gateway-1w, same run) is what pooled TLS costs.
        System("gateway-https", "gateway 1 worker, HTTPS origin", "workload", workers=1, scenarios=("S6",), https=True),
        System("nginx-https", "nginx proxy to HTTPS origin (no auth)", "proxy", scenarios=("S6",), https=True, note="proxy_pass https:// with keep-alive upstream, proxy_ssl_verify on"),
        System("haproxy-https", "HAProxy (jwt_verify) to HTTPS origin", "workload", scenarios=("S6",), https=True, note="server ... ssl verify required ca-file"),
    ]
    return {s.name: s for s in systems}


def hook_systems() -> list[System]:
    """Issue 13: the gateway without any [hooks], and with a no-op async request hook on a copy of the S2 route."""
    return [
        System("gateway-hooks-off", "gateway 1w, no [hooks]", "workload", workers=1, scenarios=("S2",)),
        System("gateway-hooks-on", "gateway 1w, [hooks] + one hooked route", "workload", workers=1, hooks=True, scenarios=("S2", "S2h")),
    ]


def s5_systems() -> list[System]:
    """Issue 10's S5 comparison, run interleaved: the gateway as configured by default (verified-token
    cache on), the gateway verifying every request's signature, and HAProxy's jwt_verify RS256."""
    cat = catalogue()
    nocache = System(
        "gateway-1w-nocache", "gateway 1 worker, token_cache = 0", "workload", workers=1, scenarios=("S5",), token_cache=0,
        note="S5 with the verified-token cache off: every request verifies the RS256 signature, as HAProxy does",
    )
    return [cat["gateway-1w"], nocache, cat["haproxy"]]


def matching_systems() -> list[System]:
    return [
        System("gateway-routes-10", "gateway 1w, 10 routes before catch-all", "workload", workers=1, extra_routes=10, scenarios=("S4",)),
        System("gateway-routes-1000", "gateway 1w, 1000 routes before catch-all", "workload", workers=1, extra_routes=1000, scenarios=("S4",)),
    ]


def observability_systems() -> list[System]:
    """Issue 12: the same gateway (1 worker, S2) without and with metrics, request ids and tracing."""
    return [
        System("gateway-obs-off", "gateway 1w, observability off", "workload", workers=1, scenarios=("S2",)),
        # Each part alone, to see where the cost is.
        System("gateway-obs-ids", "gateway 1w, request id + trace", "workload", workers=1, scenarios=("S2",), server_extra='request_id = "X-Request-Id"\ntrace = true\n'),
        System("gateway-obs-metrics", "gateway 1w, metrics only", "workload", workers=1, scenarios=("S2",), server_extra='metrics_listen = "127.0.0.1:{metrics_port}"\n'),
        System("gateway-obs-on", "gateway 1w, metrics + request id + trace", "workload", workers=1, scenarios=("S2",), server_extra=configs.OBSERVABILITY_SERVER),
    ]
