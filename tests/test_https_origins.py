"""HTTPS origins (issue 11), end to end: `gateway serve` forwarding to a real TLS origin (nginx with
certificates the test makes, or Python's ssl for the mTLS origin) over loopback.

What a demanding user checks: a virtual-hosted HTTPS function works with only its URL and the CA;
every certificate failure is a 502 whose JSON says which check failed (and never what the certificate
says); a client certificate is presented when configured and its absence is reported as such; h2 is
spoken when offered and never when "never"; the Host the origin sees follows `host_header`; and a
config that cannot work is refused by `gateway check` naming the file and key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import GATEWAY_BIN, Gateway, echo_origin, gateway_env, gateway_serve, wait_for, write_config
from tests.tls_support import BIG_FILE, Pki, TlsServer, mtls_origin, nginx_https_origin


def _route(prefix: str, origin: str) -> str:
    return f'[[routes]]\nmatch = "/{prefix}/:path*"\norigin = "{origin}"\n\n'


def _config(origins: dict[str, dict[str, object]]) -> str:
    """A config with one route /NAME/... per origin; values are TOML literals written as given."""
    text = ""
    for name, keys in origins.items():
        text += f"[origins.{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()) + "\n"
    for name in origins:
        text += _route(name, name)
    return text


def _check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GATEWAY_BIN, "check", "--config", str(config)], capture_output=True, text=True, env=gateway_env(), timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def site(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, dict[str, int], object]]:
    """nginx with four TLS servers, and one gateway with an origin per case."""
    tmp = tmp_path_factory.mktemp("https-site")
    good = pki.leaf("localhost", ["localhost", "127.0.0.1"])
    old = pki.leaf("expired", ["localhost"], expired=True)
    servers = {"h2": TlsServer(good, http2=True), "h1": TlsServer(good, http2=False), "expired": TlsServer(old)}
    with nginx_https_origin(tmp / "nginx", list(servers.values())) as nginx:
        ports = {k: s.port for k, s in servers.items()}
        ca = f"file:{pki.ca}"
        origins: dict[str, dict[str, object]] = {
            # The virtual-hosted function: its URL and its CA, nothing else.
            "fn": {"url": f"https://localhost:{ports['h2']}", "ca_file": ca},
            "fn11": {"url": f"https://localhost:{ports['h2']}", "ca_file": ca, "http2": "never"},
            "byip": {"url": f"https://127.0.0.1:{ports['h2']}", "ca_file": ca},
            "sni": {"url": f"https://127.0.0.1:{ports['h1']}", "ca_file": ca, "sni": "localhost"},
            "client_host": {"url": f"https://localhost:{ports['h2']}", "ca_file": ca, "host_header": "client"},
            "literal_host": {"url": f"https://localhost:{ports['h2']}", "ca_file": ca, "host_header": "api.example.com"},
            "literal_h1": {"url": f"https://localhost:{ports['h1']}", "ca_file": ca, "host_header": "api.example.com"},
            "wrong_ca": {"url": f"https://localhost:{ports['h2']}", "ca_file": f"file:{pki.other_ca}"},
            "expired": {"url": f"https://localhost:{ports['expired']}", "ca_file": ca},
            "mismatch": {"url": f"https://127.0.0.1:{ports['h2']}", "ca_file": ca, "sni": "elsewhere.test"},
            "unverified": {"url": f"https://127.0.0.1:{ports['h2']}", "sni": "elsewhere.test", "tls_verify": False},
        }
        config = write_config(tmp / "gw", _config(origins))
        with gateway_serve(config) as gw:
            yield gw, ports, nginx


def _seen_for(nginx: object, uri: str) -> dict[str, str]:
    """The origin's access-log entry for ``uri`` (nginx writes it just after answering: wait a moment)."""
    found: list[dict[str, str]] = []

    def look() -> bool:
        found[:] = [e for e in nginx.seen() if e["uri"] == uri]  # type: ignore[attr-defined]
        return bool(found)

    assert wait_for(look, 5), f"the origin never saw {uri}"
    return found[-1]


def test_a_virtual_hosted_https_function_works_with_its_url_and_ca(site: tuple[Gateway, dict[str, int], object]) -> None:
    gw, ports, nginx = site
    r = gw.get("/fn/hello?x=1", headers={"host": "gw.test"})
    assert r.status_code == 200, r.text
    body = r.json()
    # host_header defaults to "origin" for https://: the URL's host and (non-default) port.
    assert body["host"] == f"localhost:{ports['h2']}"
    assert body["uri"] == "/fn/hello?x=1"
    assert _seen_for(nginx, "/fn/hello?x=1")["sni"] == "localhost"


def test_h2_when_offered_and_never_with_http2_never(site: tuple[Gateway, dict[str, int], object]) -> None:
    gw, _ports, nginx = site
    assert gw.get("/fn/proto-auto").json()["protocol"] == "HTTP/2.0"
    assert gw.get("/fn11/proto-never").json()["protocol"] == "HTTP/1.1"
    assert _seen_for(nginx, "/fn/proto-auto")["protocol"] == "HTTP/2.0"
    assert _seen_for(nginx, "/fn11/proto-never")["protocol"] == "HTTP/1.1"


def test_pooled_connections_serve_many_requests(site: tuple[Gateway, dict[str, int], object]) -> None:
    gw, _ports, _nginx = site
    with gw.client() as c:
        for i in range(30):
            r = c.get(f"/fn/pooled/{i}")
            assert r.status_code == 200 and r.json()["uri"] == f"/fn/pooled/{i}"


def test_large_bodies_stream_both_ways_over_h2(site: tuple[Gateway, dict[str, int], object]) -> None:
    gw, _ports, nginx = site
    with gw.client() as c:
        with c.stream("GET", "/fn/big") as r:
            assert r.status_code == 200
            got = b"".join(r.iter_bytes())
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(BIG_FILE).hexdigest() and len(got) == len(BIG_FILE)
        upload = os.urandom(3 * 2**20)

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked from the client, streamed on
            for i in range(0, len(upload), 2**16):
                yield upload[i : i + 2**16]

        r = c.post("/fn/upload", content=chunks())
        assert r.status_code == 200, r.text
        assert r.json() == {"uploaded": len(upload)}
    seen = _seen_for(nginx, "/fn/upload")
    assert seen["protocol"] == "HTTP/2.0" and int(seen["request_length"]) >= len(upload), seen


def test_origins_with_different_tls_settings_never_share_a_connection(site: tuple[Gateway, dict[str, int], object]) -> None:
    """fn, wrong_ca and unverified reach the same nginx port: a connection fn verified (or one made
    without verifying) must never carry wrong_ca's requests."""
    gw, _ports, _nginx = site
    with gw.client() as c:
        for _ in range(3):
            assert c.get("/fn/a").status_code == 200
            assert c.get("/unverified/a").status_code == 200
            r = c.get("/wrong_ca/a")
            assert r.status_code == 502 and "unknown issuer" in r.json()["detail"], r.text


def test_an_h2_origin_going_away_loses_no_request(pki: Pki, tmp_path: Path) -> None:
    """nginx ends an h2 connection with GOAWAY every `keepalive_requests` streams; the streams it did
    not process are sent again on a new connection (RFC 9113 §8.7), so no client sees a 502."""
    leaf = pki.leaf("goaway-origin", ["localhost"])
    with nginx_https_origin(tmp_path / "nginx", [TlsServer(leaf, extra="    keepalive_requests 20;")]) as nginx:
        port = nginx.servers[0].port
        cfg = write_config(tmp_path / "gw", _config({"fn": {"url": f"https://localhost:{port}", "ca_file": f"file:{pki.ca}"}}))
        with gateway_serve(cfg) as gw:

            async def hammer(n: int) -> dict[int, int]:
                counts: dict[int, int] = {}
                sem = asyncio.Semaphore(8)
                async with httpx.AsyncClient(base_url=gw.base, timeout=20) as c:

                    async def one(i: int) -> None:
                        async with sem:
                            r = await c.post(f"/fn/{i}", content=b"x" * 100)
                        counts[r.status_code] = counts.get(r.status_code, 0) + 1

                    await asyncio.gather(*(one(i) for i in range(n)))
                return counts

            assert asyncio.run(hammer(400)) == {200: 400}
        seen = nginx.seen()
        assert {e["protocol"] for e in seen} == {"HTTP/2.0"}
        # The origin really went away many times (400 streams, at most 20 a connection).
        assert len({e["connection"] for e in seen}) >= 20, len({e["connection"] for e in seen})


def test_an_ip_url_is_checked_against_the_certificates_ip_and_sni_overrides_the_name(site: tuple[Gateway, dict[str, int], object]) -> None:
    gw, ports, nginx = site
    r = gw.get("/byip/a")
    assert r.status_code == 200, r.text
    assert r.json()["host"] == f"127.0.0.1:{ports['h2']}"
    r = gw.get("/sni/b")
    assert r.status_code == 200, r.text
    assert _seen_for(nginx, "/sni/b")["sni"] == "localhost"


@pytest.mark.parametrize(
    ("prefix", "words", "kind"),
    [
        ("wrong_ca", "unknown issuer", "tls_unknown_issuer"),
        ("expired", "expired", "tls_expired"),
        ("mismatch", "name mismatch", "tls_name_mismatch"),
    ],
)
def test_each_certificate_failure_is_a_502_naming_its_kind(site: tuple[Gateway, dict[str, int], object], prefix: str, words: str, kind: str) -> None:
    gw, _ports, _nginx = site
    with gw.client() as c:
        answers = [c.get(f"/{prefix}/x") for _ in range(10)]
    for r in answers:
        assert r.status_code == 502, r.text
        detail = r.json()["detail"]
        assert f"TLS to the origin {prefix!r} failed: {words}" in detail, detail
        # Never the certificate's contents (its names, its issuer).
        for leaked in ("localhost", "gateway test CA", "unrelated test CA", "127.0.0.1"):
            assert leaked not in detail, detail
    # One log line per origin and kind, rate-limited: ten failures do not make ten lines.
    lines = [ln for ln in gw.all_output().splitlines() if f"origin {prefix}: TLS failed ({kind})" in ln]
    assert 1 <= len(lines) < len(answers), lines


def test_tls_verify_false_connects_and_warns_at_start_and_in_check(site: tuple[Gateway, dict[str, int], object]) -> None:
    gw, _ports, _nginx = site
    assert gw.get("/unverified/x").status_code == 200
    assert "origins.unverified.tls_verify: is false" in gw.proc.stderr_text() + gw.proc.stdout_text()
    r = _check(gw.config)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning:" in r.stdout and "origins.unverified.tls_verify: is false" in r.stdout


def test_host_header_client_and_literal_reach_the_origin(site: tuple[Gateway, dict[str, int], object]) -> None:
    gw, _ports, nginx = site
    # h2: the Host sent is the :authority (a different Host beside it would be malformed).
    assert gw.get("/client_host/a", headers={"host": "shop.example"}).json()["host"] == "shop.example"
    assert gw.get("/literal_host/b", headers={"host": "shop.example"}).json()["host"] == "api.example.com"
    # HTTP/1.1: the Host header itself, exactly one.
    assert gw.get("/literal_h1/c", headers={"host": "shop.example"}).json()["host"] == "api.example.com"
    assert _seen_for(nginx, "/client_host/a")["host"] == "shop.example"
    assert _seen_for(nginx, "/literal_h1/c")["protocol"] == "HTTP/1.1"


def test_explain_shows_the_host_that_is_sent(site: tuple[Gateway, dict[str, int], object]) -> None:
    gw, ports, _nginx = site
    argv = [GATEWAY_BIN, "explain", "--config", str(gw.config)]
    text = subprocess.run([*argv, "http://shop.example/fn/x"], capture_output=True, text=True, env=gateway_env(), timeout=60)
    assert f"Host: localhost:{ports['h2']}" in text.stdout, text.stdout + text.stderr
    out = subprocess.run([*argv, "--json", "http://shop.example/literal_host/x"], capture_output=True, text=True, env=gateway_env(), timeout=60)
    result = json.loads(out.stdout)
    assert result["upstream_host"] == "api.example.com"
    assert result["upstream_url"] == f"https://localhost:{ports['h2']}/literal_host/x"
    client = json.loads(subprocess.run([*argv, "--json", "http://shop.example/client_host/x"], capture_output=True, text=True, env=gateway_env(), timeout=60).stdout)
    assert client["upstream_host"] == "shop.example"
    # An https:// origin: the client's Host header is not forwarded beside it (the Host is the URL's authority).
    assert not [v for k, v in client["forwarded_headers"] if k.lower() == "host"]


def test_mtls_presents_the_client_certificate_and_its_absence_is_named(pki: Pki, tmp_path: Path) -> None:
    server = pki.leaf("mtls-origin", ["localhost"])
    client = pki.leaf("gateway-client", ["gateway.test"], client=True)
    with mtls_origin(server, pki.ca) as origin:
        url = f"https://localhost:{origin.port}"
        ca = f"file:{pki.ca}"
        config = write_config(
            tmp_path,
            _config(
                {
                    "with_cert": {"url": url, "ca_file": ca, "client_cert": f"file:{client.cert}", "client_key": f"file:{client.key}"},
                    "no_cert": {"url": url, "ca_file": ca},
                }
            ),
        )
        with gateway_serve(config) as gw:
            r = gw.get("/with_cert/x")
            assert r.status_code == 200, r.text
            assert "gateway.test" in origin.clients
            # HTTP/1.1 over TLS: a chunked upload and a large answer stream through whole.
            upload = os.urandom(2**20 + 7)
            with gw.client() as c:
                r = c.post("/with_cert/up", content=iter([upload[: 2**19], upload[2**19 :]]))
                assert r.status_code == 200, r.text
                assert (r.json()["body_length"], r.json()["body_sha256"]) == (len(upload), hashlib.sha256(upload).hexdigest())
                r = c.get("/with_cert/down", headers={"X-Echo-Bytes": str(2**21)})
                assert r.status_code == 200 and len(r.content) == 2**21
            r = gw.get("/no_cert/x")
            assert r.status_code == 502, r.text
            detail = r.json()["detail"]
            assert "failed: handshake" in detail and "client certificate" in detail, detail


def test_origin_down_is_502_and_a_silent_origin_is_504(pki: Pki, tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    down = closed.getsockname()[1]
    closed.close()
    # Accepts TCP and never says a word: the handshake waits, bounded by the origin's timeout.
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(silent.accept()[0]), daemon=True).start()
    ca = f"file:{pki.ca}"
    config = write_config(
        tmp_path,
        _config(
            {
                "down": {"url": f"https://localhost:{down}", "ca_file": ca},
                "silent": {"url": f"https://127.0.0.1:{silent.getsockname()[1]}", "ca_file": ca, "timeout": "1s"},
            }
        ),
    )
    try:
        with gateway_serve(config) as gw:
            r = gw.get("/down/x")
            assert r.status_code == 502, r.text
            assert "TLS" not in r.json()["detail"]
            r = gw.get("/silent/x")
            assert r.status_code == 504, r.text
    finally:
        silent.close()


def test_plain_http_origins_keep_the_clients_host_unless_told(tmp_path: Path) -> None:
    with echo_origin(tmp_path / "echo") as port:
        config = write_config(
            tmp_path,
            _config(
                {
                    "plain": {"url": f"http://127.0.0.1:{port}"},
                    "plain_origin": {"url": f"http://127.0.0.1:{port}", "host_header": "origin"},
                    "plain_literal": {"url": f"http://127.0.0.1:{port}", "host_header": "Internal.Example:8443"},
                }
            ),
        )
        with gateway_serve(config) as gw:

            def hosts(path: str) -> list[str]:
                return [v for k, v in gw.get(path, headers={"host": "shop.example"}).json()["headers"] if k.lower() == "host"]

            assert hosts("/plain/x") == ["shop.example"]
            assert hosts("/plain_origin/x") == [f"127.0.0.1:{port}"]
            assert hosts("/plain_literal/x") == ["internal.example:8443"]


def test_check_names_every_unusable_tls_file(pki: Pki, tmp_path: Path) -> None:
    a = pki.leaf("check-a", ["gateway.test"], client=True)
    b = pki.leaf("check-b", ["gateway.test"], client=True)
    (tmp_path / "garbage.pem").write_text("this is not PEM\n")
    config = write_config(
        tmp_path,
        _config(
            {
                "bad_ca": {"url": "https://fn.example", "ca_file": "file:garbage.pem"},
                "missing_ca": {"url": "https://fn.example", "ca_file": "file:nowhere/ca.pem"},
                "key_mismatch": {"url": "https://fn.example", "ca_file": f"file:{pki.ca}", "client_cert": f"file:{a.cert}", "client_key": f"file:{b.key}"},
                "cert_is_key": {"url": "https://fn.example", "ca_file": f"file:{pki.ca}", "client_cert": f"file:{a.key}", "client_key": f"file:{a.key}"},
                "key_is_cert": {"url": "https://fn.example", "ca_file": f"file:{pki.ca}", "client_cert": f"file:{a.cert}", "client_key": f"file:{a.cert}"},
                "lonely_cert": {"url": "https://fn.example", "ca_file": f"file:{pki.ca}", "client_cert": f"file:{a.cert}"},
                "not_file": {"url": "https://fn.example", "ca_file": str(pki.ca)},
                "bad_http2": {"url": "https://fn.example", "ca_file": f"file:{pki.ca}", "http2": "always"},
                "bad_host": {"url": "https://fn.example", "ca_file": f"file:{pki.ca}", "host_header": "a@b"},
                "tls_on_http": {"url": "http://127.0.0.1:9", "ca_file": f"file:{pki.ca}"},
            }
        ),
    )
    r = _check(config)
    assert r.returncode == 1, r.stdout
    out = r.stdout
    expect = {
        "origins.bad_ca.ca_file": str(tmp_path / "garbage.pem"),
        "origins.missing_ca.ca_file": "cannot read",
        "origins.key_mismatch.client_key": "does not match the certificate in client_cert",
        "origins.cert_is_key.client_cert": "holds no PEM certificate",
        "origins.key_is_cert.client_key": "holds no PEM private key",
        "origins.lonely_cert.client_key": "is missing",
        "origins.not_file.ca_file": '"file:PATH"',
        "origins.bad_http2.http2": "always",
        "origins.bad_host.host_header": "a@b",
        "origins.tls_on_http.ca_file": "http:// origin",
    }
    for key, words in expect.items():
        lines = [ln for ln in out.splitlines() if f": {key}:" in ln]
        assert lines, f"{key} not reported:\n{out}"
        assert words in lines[0], lines[0]
    # File contents are never echoed.
    key_body = a.key.read_text().splitlines()[1]
    assert key_body not in out and "this is not PEM" not in out


def test_a_reload_rebuilds_the_pools_with_the_new_tls_settings(pki: Pki, tmp_path: Path) -> None:
    """SIGHUP with a corrected ca_file: the next requests are verified against the new CA, and a
    reload to an unreadable CA is refused while the working settings keep serving."""
    leaf = pki.leaf("reload-origin", ["localhost"])
    with nginx_https_origin(tmp_path / "nginx", [TlsServer(leaf)]) as nginx:
        port = nginx.servers[0].port
        cfg = write_config(tmp_path / "gw", _config({"fn": {"url": f"https://localhost:{port}", "ca_file": f"file:{pki.other_ca}"}}))
        with gateway_serve(cfg) as gw:
            r = gw.get("/fn/x")
            assert r.status_code == 502 and "unknown issuer" in r.json()["detail"], r.text
            cfg.write_text(_config({"fn": {"url": f"https://localhost:{port}", "ca_file": f"file:{pki.ca}"}}))
            gw.proc.send_signal(signal.SIGHUP)
            assert wait_for(lambda: gw.get("/fn/y").status_code == 200, 15), "the corrected CA never took effect"
            cfg.write_text(_config({"fn": {"url": f"https://localhost:{port}", "ca_file": "file:missing-ca.pem"}}))
            gw.proc.send_signal(signal.SIGHUP)
            # A worker reloads before the next request it handles, so keep asking.
            statuses: list[int] = []

            def refused() -> bool:
                statuses.append(gw.get("/fn/z").status_code)
                return "origins.fn.ca_file: cannot read" in gw.stderr.read_text()

            assert wait_for(refused, 15, interval=0.2), gw.stderr.read_text()[-2000:]
            assert set(statuses) == {200} and gw.get("/fn/z").status_code == 200, statuses
