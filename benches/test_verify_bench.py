"""pytest-benchmark: JWT HS256 verification, gateway against its peers (issue 2).

    .venv/bin/pytest benches/test_verify_bench.py --benchmark-only
    .venv/bin/pytest benches/test_verify_bench.py --benchmark-only --benchmark-max-time=0.2   # quicker

One test per (peer, scenario), grouped by scenario, so each group compares the peers on one kind of
token. The adapters and tokens are those of benches/jwt_peers.py (the same ones verify_micro.py times
in a single run with a ratio table); each adapter is checked for correctness once before its first
benchmark. A peer that cannot be imported here (ryjwt needs Python >= 3.12) is reported as a skip
with the reason. Failure scenarios time ``try: f(tok) except Exception: pass``.
"""

from __future__ import annotations

import jwt_peers as jp
import pytest

# gc off while timing, like timeit; warm-up on. --benchmark-max-time etc. still apply from the CLI.
pytestmark = pytest.mark.benchmark(disable_gc=True, warmup=True)

TOKENS = jp.make_tokens()
_peers: dict[str, jp.Peer] = {}


def checked(name: str) -> jp.Peer:
    """Build and correctness-check a peer once per session; skip or fail the test as appropriate."""
    if name not in _peers:
        p = jp.build_peer(name, TOKENS)
        if p.skipped is None:
            try:
                jp.check_peer(p, TOKENS)
            except AssertionError as e:
                p.failed_check = str(e)
        _peers[name] = p
    p = _peers[name]
    if p.skipped:
        pytest.skip(f"{name} skipped: {p.skipped}")
    if p.failed_check:
        pytest.fail(f"{name} failed its correctness check: {p.failed_check}")
    return p


@pytest.mark.parametrize("peer", jp.PEER_NAMES)
def test_peer_is_correct(peer: str) -> None:
    """Not a benchmark (deselected by --benchmark-only): good token accepted, every bad one rejected."""
    p = checked(peer)
    assert set(p.raised) == {s for s in jp.SCENARIOS if s != "success"} | set(TOKENS.extra)


@pytest.mark.parametrize("scenario", jp.SCENARIOS)
@pytest.mark.parametrize("peer", jp.PEER_NAMES)
def test_verify(benchmark, peer: str, scenario: str) -> None:
    p = checked(peer)
    tok = TOKENS.tokens[scenario]
    f = p.verify
    assert f is not None
    benchmark.group = scenario
    benchmark.extra_info.update(peer=peer, usage=p.usage, version=p.version, token_bytes=len(tok))
    if scenario == "success":
        claims = benchmark(f, tok)
        assert dict(claims) == TOKENS.claims
    else:

        def reject() -> None:
            try:
                f(tok)
            except Exception:  # noqa: BLE001, S110 - the timed statement of the brief
                pass

        benchmark(reject)
        with pytest.raises(Exception):  # noqa: B017 - any exception of the library counts
            f(tok)
