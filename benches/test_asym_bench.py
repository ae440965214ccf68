"""Correctness of issue 10's benchmark inputs (not timings): `.venv/bin/pytest -q benches/test_asym_bench.py`.

- every asymmetric peer adapter accepts the good token with its claims and rejects each bad one
  (the check verify_asymmetric.py runs before timing, here per algorithm and peer);
- the raw-floor cases carry the very key, signing input and signature of the good token;
- S5's configs: HAProxy accepts its config with jwt_verify("RS256", <pem>), and the gateway loads its
  static key-set policy (or the build says why not, which is what the suite then reports).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import asym_peers as ap
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SETS = {alg: ap.make_tokens(alg) for alg in ap.ALGORITHMS}


@pytest.mark.parametrize("alg", ap.ALGORITHMS)
@pytest.mark.parametrize("peer", ap.PEER_NAMES)
def test_peer_is_correct(peer: str, alg: str) -> None:
    ts = SETS[alg]
    p = ap.build_peer(peer, ts)
    if p.skipped:
        pytest.skip(f"{peer} skipped: {p.skipped}")
    ap.check_peer(p, ts)
    assert set(p.raised) == {s for s in ap.SCENARIOS if s != "success"} | set(ap.EXTRA)


@pytest.mark.parametrize("alg", ap.ALGORITHMS)
def test_cached_verifier_is_as_strict(alg: str) -> None:
    ts = SETS[alg]
    p = ap._gateway_verifier(ts, cache_size=4096)
    for _ in range(2):  # the second pass is served from the cache for the good token
        p.raised.clear()
        ap.check_peer(p, ts)
        assert set(p.raised) == {s for s in ap.SCENARIOS if s != "success"} | set(ap.EXTRA)


def test_raw_cases_are_the_good_tokens() -> None:
    from cryptography.exceptions import InvalidSignature

    lines = ap.raw_cases(list(SETS.values())).splitlines()
    assert [ln.split()[0] for ln in lines] == list(ap.ALGORITHMS)
    for ln, ts in zip(lines, SETS.values(), strict=True):
        alg, key, msg, sig = ln.split()
        h, p, s = ts.tokens["success"].split(".")
        assert bytes.fromhex(msg) == f"{h}.{p}".encode()
        assert bytes.fromhex(sig) == base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        assert bytes.fromhex(key) == ts.key.raw
        # The good token's signature verifies with the public key (made independently of the peers).
        tampered = bytearray(bytes.fromhex(sig))
        tampered[0] ^= 1
        with pytest.raises(InvalidSignature):
            _verify(ts, bytes(tampered), bytes.fromhex(msg))
        _verify(ts, bytes.fromhex(sig), bytes.fromhex(msg))


def _verify(ts: ap.AsymTokenSet, sig: bytes, msg: bytes) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    pub = ts.key.public
    if ts.alg == "RS256":
        pub.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
    elif ts.alg == "ES256":
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        pub.verify(encode_dss_signature(r, s), msg, ec.ECDSA(hashes.SHA256()))
    else:
        pub.verify(sig, msg)


@pytest.fixture
def idp_dir(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    from benches.load.common import idp_tokens

    return tmp_path, idp_tokens(tmp_path)


def test_s5_haproxy_config_is_accepted(idp_dir: tuple[Path, dict[str, str]]) -> None:
    from benches.load import configs
    from benches.load.common import IDP_PEM, SECRET

    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if haproxy is None:
        pytest.skip("haproxy not installed")
    tmp, _tok = idp_dir
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(configs.HAPROXY_CFG.format(port=1, origin=2, idp_pem=tmp / IDP_PEM))
    r = subprocess.run([haproxy, "-c", "-f", str(cfg)], env={"JWT_SECRET": SECRET, "PATH": "/usr/sbin:/usr/bin:/bin"},
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr or r.stdout


def test_s5_gateway_config_loads_or_says_why(idp_dir: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    from benches.load import configs
    from benches.load.common import SECRET

    monkeypatch.setenv("JWT_SECRET", SECRET)  # the example config's HS256 policies read it

    tmp, _tok = idp_dir
    (tmp / "regions.json").write_text(configs.REGIONS_JSON)
    why = configs.idp_unsupported(tmp)
    if why is not None:
        assert "keys" in why  # the build lacks the static key-set policy: the suite skips S5 with this reason
        pytest.skip(why)
    from gateway.config import load

    cfg = tmp / "gateway.toml"
    cfg.write_text(configs.gateway_toml(1, 2, tmp, idp=True, token_cache=0))
    conf = load(cfg)
    assert "idp" in conf.auth
