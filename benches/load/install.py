"""Set-up: install what the load benchmark needs on a fresh machine.

- Debian packages: wrk, nginx, haproxy (apt-get; as root, or through sudo when it is available).
- Python packages into the running interpreter's environment (the project venv): starlette, uvicorn,
  httpx, pyjwt for the Starlette peer; matplotlib for the chart.
- npm packages into benches/.cache/ (gitignored), only when node and npm are present: Next.js for the
  middleware peer (then `next build`) and workerd. A failure there skips that peer, with the reason.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benches.load.common import CACHE, PEERS, log

APT_TOOLS = {"wrk": "wrk", "nginx": "nginx", "haproxy": "haproxy", "taskset": "util-linux"}
PY_MODULES = {"starlette": "starlette", "uvicorn": "uvicorn", "httpx": "httpx", "jwt": "pyjwt"}
NEXT_DIR = CACHE / "nextjs"
WORKERD_DIR = CACHE / "workerd"


def _run(cmd: list[str], timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=False, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)


def _tool_path(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None)


def apt_tools(needed: list[str]) -> None:
    missing = sorted({APT_TOOLS[t] for t in needed if _tool_path(t) is None})
    if not missing:
        return
    sudo: list[str] = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else [])
    if os.geteuid() != 0 and not sudo:
        raise SystemExit(f"benches: needs {' '.join(missing)}: run `apt-get install {' '.join(missing)}` as root")
    log(f"setup: apt-get install {' '.join(missing)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    r = _run([*sudo, "apt-get", "update", "-qq"], 600, env=env)
    if r.returncode != 0:
        log(f"setup: apt-get update failed: {r.stderr.strip()[-300:]}")
    r = _run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], 900, env=env)
    if r.returncode != 0:
        raise SystemExit(f"benches: apt-get install {' '.join(missing)} failed:\n{r.stderr.strip()[-1500:]}")
    still = [t for t in needed if _tool_path(t) is None]
    if still:
        raise SystemExit(f"benches: still missing after apt-get: {', '.join(still)}")


def pip_modules(modules: dict[str, str]) -> None:
    missing = [pkg for mod, pkg in modules.items() if importlib.util.find_spec(mod) is None]
    if not missing:
        return
    log(f"setup: pip install {' '.join(missing)} (into {sys.prefix})")
    r = _run([sys.executable, "-m", "pip", "install", "-q", *missing], 900)
    if r.returncode != 0:
        raise SystemExit(f"benches: pip install {' '.join(missing)} failed:\n{r.stderr.strip()[-1500:]}")
    importlib.invalidate_caches()


def have_matplotlib() -> bool:
    if importlib.util.find_spec("matplotlib") is None:
        try:
            pip_modules({"matplotlib": "matplotlib"})
        except SystemExit as e:
            log(f"setup: no chart: {e}")
            return False
    return importlib.util.find_spec("matplotlib") is not None


def node_available() -> str | None:
    """None when node and npm are usable, else the reason they are not."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    r = _run(["node", "--version"], 30)
    if r.returncode != 0:
        return f"node --version failed: {r.stderr.strip()[:200]}"
    major = int(r.stdout.strip().lstrip("v").split(".")[0] or 0)
    if major < 18:
        return f"node {r.stdout.strip()} is too old (Next.js 15 needs >= 18.18)"
    return None


def _npm_install(where: Path, packages: list[str], timeout: float) -> str | None:
    where.mkdir(parents=True, exist_ok=True)
    if not (where / "package.json").exists():
        (where / "package.json").write_text('{"name": "gateway-bench-peer", "private": true}\n')
    r = _run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", *packages],
        timeout,
        cwd=where,
        env={"npm_config_cache": str(CACHE / "npm-cache"), "NEXT_TELEMETRY_DISABLED": "1"},
    )
    if r.returncode != 0:
        return f"npm install {' '.join(packages)} failed: {(r.stderr or r.stdout).strip()[-400:]}"
    return None


def _tree_hash(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(d)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def nextjs(timeout: float = 900) -> tuple[Path | None, str]:
    """(app directory ready for `next start`, version) or (None, reason)."""
    reason = node_available()
    if reason:
        return None, reason
    src = PEERS / "nextjs"
    NEXT_DIR.mkdir(parents=True, exist_ok=True)
    for f in ("middleware.js", "next.config.js", "package.json"):
        shutil.copy2(src / f, NEXT_DIR / f)
    (NEXT_DIR / "pages").mkdir(exist_ok=True)
    shutil.copy2(src / "pages" / "index.js", NEXT_DIR / "pages" / "index.js")
    if not (NEXT_DIR / "node_modules" / "next" / "package.json").exists():
        log("setup: npm install next react react-dom (benches/.cache/nextjs)")
        err = _npm_install(NEXT_DIR, [], timeout)
        if err:
            return None, err
    stamp = NEXT_DIR / ".build-stamp"
    want = _tree_hash(src)
    if not (stamp.exists() and stamp.read_text() == want and (NEXT_DIR / ".next" / "BUILD_ID").exists()):
        log("setup: next build (benches/.cache/nextjs)")
        r = _run(
            [str(NEXT_DIR / "node_modules" / ".bin" / "next"), "build"],
            timeout,
            cwd=NEXT_DIR,
            env={"NEXT_TELEMETRY_DISABLED": "1", "NODE_ENV": "production"},
        )
        if r.returncode != 0:
            return None, f"next build failed: {(r.stderr or r.stdout).strip()[-400:]}"
        stamp.write_text(want)
    version = _read_version(NEXT_DIR / "node_modules" / "next" / "package.json")
    return NEXT_DIR, version


def workerd(timeout: float = 600) -> tuple[Path | None, str]:
    """(path of the workerd binary, version) or (None, reason)."""
    reason = node_available()
    if reason:
        return None, reason
    binary = WORKERD_DIR / "node_modules" / ".bin" / "workerd"
    if not binary.exists():
        log("setup: npm install workerd (benches/.cache/workerd)")
        err = _npm_install(WORKERD_DIR, ["workerd"], timeout)
        if err:
            return None, err
    r = _run([str(binary), "--version"], 60)
    if r.returncode != 0:
        return None, f"workerd --version failed: {(r.stderr or r.stdout).strip()[-300:]}"
    return binary, r.stdout.strip()


def _read_version(package_json: Path) -> str:
    import json

    try:
        return str(json.loads(package_json.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "?"
