"""The hand-written stub must describe the compiled extension exactly (names, signatures)."""

import subprocess
import sys


def test_core_stub_matches_the_extension() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "gateway._core"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
