"""`python -m benches` — the benchmark entry point (run from the repository root with the venv's python).

    python -m benches                      # full load benchmark (installs what it needs), ~15-20 min
    python -m benches --quick              # smoke: origin, gateway 1 worker, its floors, nginx; 2 s per scenario (< 90 s)
    python -m benches --only gateway-1w,floors --duration 5   # the gateway against its ceilings only
    python -m benches --only gateway,haproxy --duration 5
    python -m benches --micro              # the load benchmark, then the core micro-benchmarks
    python -m benches micro [ARGS...]      # only the micro-benchmarks (benches/verify_micro.py)
    python -m benches micro-asym [ARGS...] # RS256/ES256/EdDSA verification vs peers and raw aws-lc-rs (benches/verify_asymmetric.py)
    python -m benches --ws                 # WebSocket echo round trips: gateway, nginx, direct (benches/load/websocket.py)
    python -m benches ratelimits [ARGS...] # a route with a memory / redis rate limit vs none (benches/load/ratelimits.py)

Results: benches/results/<timestamp>.json (raw), .md (table, targets) and .png (chart).
Exit status 1 when a system fails its correctness check or the gateway misbehaves under load.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
MICRO = BENCHES / "verify_micro.py"
MICRO_ASYM = BENCHES / "verify_asymmetric.py"


def micro(args: list[str], script: Path = MICRO) -> int:
    if not script.exists():
        print(f"benches: {script.relative_to(BENCHES.parent)} is not there; no micro-benchmarks to run", file=sys.stderr)
        return 1
    print(f"benches: micro-benchmarks: {sys.executable} {script.relative_to(BENCHES.parent)} {' '.join(args)}", flush=True)
    return subprocess.call([sys.executable, str(script), *args], cwd=BENCHES.parent)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "micro":
        return micro(argv[1:])
    if argv and argv[0] == "micro-asym":
        return micro(argv[1:], MICRO_ASYM)
    if "--ws" in argv:
        if str(BENCHES.parent) not in sys.path:
            sys.path.insert(0, str(BENCHES.parent))
        from benches.load.websocket import main as ws_main

        return ws_main([a for a in argv if a != "--ws"])
    if argv and argv[0] == "ratelimits":
        if str(BENCHES.parent) not in sys.path:
            sys.path.insert(0, str(BENCHES.parent))
        from benches.load.ratelimits import main as ratelimits_main

        return ratelimits_main(argv[1:])
    with_micro = "--micro" in argv
    argv = [a for a in argv if a != "--micro"]
    if str(BENCHES.parent) not in sys.path:
        sys.path.insert(0, str(BENCHES.parent))
    from benches.load.suite import main as load_main

    rc = load_main(argv)
    if with_micro:
        rc = micro([]) or rc
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
