"""Shared helpers: paths, ports, processes we start (and always stop), /proc readings, tokens."""

from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCHES = Path(__file__).resolve().parent.parent
ROOT = BENCHES.parent
LOAD = BENCHES / "load"
PEERS = LOAD / "peers"
CACHE = BENCHES / ".cache"
RESULTS = BENCHES / "results"

# One secret for every system under test: 40 bytes, above HS256's 32-byte minimum.
SECRET = "bench-secret-bench-secret-bench-secret-42"

# Pinning: the load generator alone on core 0; the origin and the system under test together on core 1.
WRK_CPUS = "0"
SUT_CPUS = "1"
ORIGIN_CPUS = "1"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


# ---------------------------------------------------------------- processes we start

_started: list[subprocess.Popen[bytes]] = []


def start(
    cmd: list[str],
    *,
    cpus: str | None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    log_path: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a process in its own session (so its children can be stopped with it), pinned with taskset."""
    full = (["taskset", "-c", cpus] if cpus else []) + cmd
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    p = subprocess.Popen(
        full,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
        start_new_session=True,
    )
    _started.append(p)
    return p


def stop(p: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a process we started: SIGTERM to it (it stops its own workers), then, after `grace` seconds
    or once it is gone, SIGTERM and SIGKILL to whatever is left of the process group we created (pgid == p.pid)."""
    if p in _started:
        _started.remove(p)
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(grace)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _group_alive(p.pid):
            break
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 5.0
        while _group_alive(p.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop_all() -> None:
    for p in list(reversed(_started)):
        stop(p, grace=3.0)


def _on_signal(signum: int, _frame: Any) -> None:
    stop_all()
    sys.exit(128 + signum)


def install_cleanup() -> None:
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


# ---------------------------------------------------------------- /proc readings


def cpu_times() -> dict[str, tuple[int, int]]:
    """{'cpu0': (busy_jiffies, total_jiffies), ...} from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            v = [int(x) for x in vals[:8]]  # user nice system idle iowait irq softirq steal
            total = sum(v)
            idle = v[3] + v[4]
            out[name] = (total - idle, total)
    return out


def busy_pct(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    out = {}
    for k in sorted(after):
        db = after[k][0] - before[k][0]
        dt = after[k][1] - before[k][1]
        out[k] = round(100.0 * db / dt, 1) if dt > 0 else 0.0
    return out


CLK_TCK = os.sysconf("SC_CLK_TCK")


def user_sys_jiffies() -> int:
    """All cores' user + nice + system time (interrupts and steal left out: no process is charged for them)."""
    v = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return int(v[0]) + int(v[1]) + int(v[2])


def proc_jiffies(pids: list[int]) -> int:
    """utime + stime of these processes (all their threads)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*") if Path(f"/proc/{p}/task").exists() else []:
            try:
                kids = [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
            for k in kids:
                if k not in out:
                    out.append(k)
                    todo.append(k)
    return out


def mem_kb(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


# ---------------------------------------------------------------- tokens (independent of every system under test)


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(claims: dict[str, Any], secret: str) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def tokens() -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "bench-user", "iat": now, "exp": now + 6 * 3600}
    return {
        "valid": hs256(claims, SECRET),
        # Well-formed, right algorithm, signed with another key: a bad signature.
        "forged": hs256(claims, "not-the-secret-not-the-secret-not-the-secret"),
        "expired": hs256({"sub": "bench-user", "iat": now - 7200, "exp": now - 3600}, SECRET),
    }


# ---------------------------------------------------------------- S5: RS256 tokens from a key set (issue 10)

IDP_KID = "bench-rs256"
IDP_JWKS = "idp-jwks.json"  # the gateway's `keys = "file:..."`: a JWK Set holding the public key
IDP_PEM = "idp-public.pem"  # HAProxy's jwt_verify("RS256", <pem>): the same public key as SPKI PEM


def _rs256(claims: dict[str, Any], key: Any, kid: str = IDP_KID) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    head = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(sig)}"


def idp_tokens(tmp: Path) -> dict[str, str]:
    """An RSA-2048 key pair made for this run: the public key written to `tmp` as a JWK Set (the
    gateway's) and as a PEM (HAProxy's); S5's tokens signed with `cryptography`'s primitives, which
    neither system under test uses (the gateway verifies with aws-lc, HAProxy with OpenSSL)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key()
    nums = pub.public_numbers()
    jwk = {"kty": "RSA", "kid": IDP_KID, "alg": "RS256", "use": "sig",
           "n": _b64(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")), "e": _b64(nums.e.to_bytes(3, "big"))}
    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp / IDP_JWKS).write_text(json.dumps({"keys": [jwk]}))
    (tmp / IDP_PEM).write_bytes(pem)
    now = int(time.time())
    claims = {"sub": "idp-user", "iat": now, "exp": now + 6 * 3600}
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": IDP_KID}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    confused = f"{head}.{body}.{_b64(hmac.new(pem, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"
    return {
        "rs_valid": _rs256(claims, key),
        # Right kid and algorithm, signed with another key: a bad signature.
        "rs_forged": _rs256(claims, other),
        "rs_expired": _rs256({"sub": "idp-user", "iat": now - 7200, "exp": now - 3600}, key),
        # Algorithm confusion: HS256 with the public key's PEM as the "secret".
        "rs_confused": confused,
    }

