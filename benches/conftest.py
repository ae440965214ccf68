"""pytest configuration for the benchmarks in benches/ (not collected by the default `pytest` run,
whose testpaths is tests/): `.venv/bin/pytest benches/test_verify_bench.py --benchmark-only`."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # `import jwt_peers` works under any --import-mode
    sys.path.insert(0, str(HERE))


def pytest_report_header(config):
    import jwt_peers
    from verify_micro import cpu_model

    versions = ", ".join(f"{k} {v}" for k, v in jwt_peers.package_versions().items())
    return [f"jwt peers: {versions}", f"cpu: {cpu_model()}"]
