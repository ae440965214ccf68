"""The listener: TLS with a certificate the test makes (trustme), HTTP/1.1 and HTTP/2 by ALPN,
h2c with prior knowledge, ``http2 = false``, and ``gateway check`` on the certificate files.

Clients are real: curl (nghttp2 for HTTP/2), httpx with h2, the h2 library over a plain socket (so
the test decides the exact HTTP/2 header fields: several ``cookie`` fields, no ``host``), and the
``websockets`` client for wss://. Origins are `python -m gateway.echo`, which answers with the
request it received as JSON.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
import trustme
from gateway.cli import mint_token
from websockets.asyncio.client import connect

from tests.harness import GATEWAY_BIN, SECRET, STARTUP_TIMEOUT, Gateway, echo_origin, free_port, gateway_env, gateway_serve, spawn, write_config
from tests.ws_origin import WSOrigin

CONFIG = """
[server]
{server}

[origins.a]
url = "http://127.0.0.1:{a}"

[origins.b]
url = "http://127.0.0.1:{b}"

[origins.ws]
url = "http://127.0.0.1:{ws}"

[auth.session]
secret = "env:JWT_SECRET"
token_from = ["cookie:auth-token"]
forward_claims = {{ sub = "X-User-Id" }}

[[routes]]
match = "/ws/:p*"
origin = "ws"

[[routes]]
match = "/private/:p*"
origin = "b"
auth = "session"

[[routes]]
match = "/:p*"
host = "a.example"
origin = "a"

[[routes]]
match = "/:p*"
origin = "b"
"""


class TLSGateway(Gateway):
    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def start_tls_gateway(config: Path, ca: str) -> TLSGateway:
    """`gateway serve` on a TLS listener, ready when its health endpoint answers over HTTPS."""
    port = free_port()
    proc = spawn("gateway", [GATEWAY_BIN, "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"], config.parent / "logs", env=gateway_env(), cwd="/")
    gw = TLSGateway(proc, port, config)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and proc.alive():
        try:
            if httpx.get(gw.base + "/__gateway/health", verify=ssl.create_default_context(cafile=ca), timeout=1.0).status_code == 200:
                return gw
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.stop()
    pytest.fail(f"the TLS gateway did not start:\n{proc.stderr_text()[-4000:]}\n{proc.stdout_text()[-2000:]}", pytrace=False)


class Site:
    def __init__(self, tmp: Path, stack: ExitStack, server: str = "", tls: bool = False):
        tmp.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA()
        self.ca_file = str(tmp / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.ssl = ssl.create_default_context(cafile=self.ca_file)
        leaf = self.ca.issue_cert("localhost", "127.0.0.1", "a.example")
        leaf.private_key_pem.write_to_path(str(tmp / "key.pem"))
        leaf.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
        self.ws_origin = WSOrigin()
        stack.callback(self.ws_origin.close)
        a = stack.enter_context(echo_origin(tmp, "a"))
        b = stack.enter_context(echo_origin(tmp, "b"))
        if tls:
            server += '\ntls_cert = "file:cert.pem"\ntls_key = "file:key.pem"'
        path = write_config(tmp, CONFIG.format(server=server, a=a, b=b, ws=self.ws_origin.port))
        if tls:
            self.gw: Gateway = start_tls_gateway(path, self.ca_file)
            stack.callback(self.gw.stop)
        else:
            self.gw = stack.enter_context(gateway_serve(path))

    def curl(self, *args: str) -> tuple[str, dict[str, Any] | None]:
        """(the status line curl received, the echo's JSON or None)."""
        out = subprocess.run(["curl", "-sS", "-i", "--max-time", "10", *args], capture_output=True, timeout=20)
        text = out.stdout.decode("latin-1")
        status = text.split("\r\n", 1)[0]
        body = text.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in text else ""
        try:
            return status, json.loads(body)
        except ValueError:
            return status + out.stderr.decode("latin-1"), None


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with ExitStack() as stack:
        yield Site(tmp_path_factory.mktemp("tls"), stack, tls=True)


@pytest.fixture(scope="module")
def plain_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with ExitStack() as stack:
        yield Site(tmp_path_factory.mktemp("h2c"), stack)


def header(echo: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echo["headers"] if k.lower() == name]


# ------------------------------------------------------------------ TLS


def test_tls_serves_http1_and_h2_by_alpn_to_httpx(tls_site: Site) -> None:
    for http2, version in ((False, "HTTP/1.1"), (True, "HTTP/2")):
        with httpx.Client(verify=tls_site.ssl, http2=http2, timeout=10) as c:
            r = c.get(tls_site.gw.base + "/x?q=1")
        assert r.status_code == 200 and r.http_version == version
        echo = r.json()
        assert echo["origin"] == "b" and echo["query"] == "q=1"
        assert header(echo, "x-forwarded-proto") == ["https"]


def test_tls_serves_http1_and_h2_to_curl(tls_site: Site) -> None:
    status, echo = tls_site.curl("--http2", "--cacert", tls_site.ca_file, f"{tls_site.gw.base}/curl")
    assert status.startswith("HTTP/2 200"), status
    assert echo is not None and header(echo, "x-forwarded-proto") == ["https"]
    status, echo = tls_site.curl("--http1.1", "--cacert", tls_site.ca_file, f"{tls_site.gw.base}/curl")
    assert status.startswith("HTTP/1.1 200"), status


def test_tls_host_routing_uses_authority_over_h2(tls_site: Site) -> None:
    status, echo = tls_site.curl("--http2", "--cacert", tls_site.ca_file, "--resolve", f"a.example:{tls_site.gw.port}:127.0.0.1", f"https://a.example:{tls_site.gw.port}/r")
    assert status.startswith("HTTP/2 200"), status
    assert echo is not None and echo["origin"] == "a"
    assert header(echo, "host") == [f"a.example:{tls_site.gw.port}"]


def test_tls_certificate_is_the_configured_one(tls_site: Site) -> None:
    # The system's roots do not know the test's CA: a real handshake with the configured chain.
    with pytest.raises(httpx.ConnectError):
        httpx.get(tls_site.gw.base + "/x", timeout=5)
    ctx = ssl.create_default_context(cafile=tls_site.ca_file)
    with socket.create_connection(("127.0.0.1", tls_site.gw.port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        assert s.getpeercert()["subjectAltName"][0] == ("DNS", "localhost")


def test_plain_http_to_the_tls_port_gets_no_answer(tls_site: Site) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_site.gw.port}/x", timeout=5)


def test_wss_on_the_tls_listener(tls_site: Site) -> None:
    ctx = ssl.create_default_context(cafile=tls_site.ca_file)

    async def go() -> dict[str, str]:
        async with connect(f"wss://127.0.0.1:{tls_site.gw.port}/ws/secure", ssl=ctx) as ws:
            await ws.send("headers")
            return {k.lower(): v for k, v in json.loads(await ws.recv())}

    got = asyncio.run(asyncio.wait_for(go(), 20))
    assert got["x-forwarded-proto"] == "https"
    entry = tls_site.gw.wait_log(lambda e: e.get("path") == "/ws/secure")
    assert entry is not None and entry["status"] == 101


# ------------------------------------------------------------------ h2c with prior knowledge


def h2_request(port: int, path: str, headers: list[tuple[str, str]], authority: str | None = "a.example") -> tuple[int, dict[str, Any]]:
    """One GET over HTTP/2 with prior knowledge, with exactly these header fields (the h2 library
    keeps repeated fields as they are given)."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="latin-1"))
    # Literal (not Huffman-coded) fields: the library's pure-Python Huffman coder takes seconds on
    # the large headers below.
    encode = conn.encoder.encode
    conn.encoder.encode = lambda fields, huffman=True: encode(fields, huffman=False)  # type: ignore[method-assign]
    fields = [(":method", "GET"), (":scheme", "http"), (":path", path)]
    if authority is not None:
        fields.append((":authority", authority))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        # As a browser does: the server's SETTINGS first (acknowledged), so its limits apply.
        while not any(isinstance(e, h2.events.RemoteSettingsChanged) for e in conn.receive_data(s.recv(65536))):
            pass
        conn.send_headers(1, fields + headers, end_stream=True)
        s.sendall(conn.data_to_send())
        status, body = 0, b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    return status, json.loads(body) if body.startswith(b"{") else {"body": body.decode("latin-1")}
                elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    return -1, {"event": type(event).__name__}
            s.sendall(conn.data_to_send())
    raise AssertionError("the stream did not end")


def test_h2c_prior_knowledge_with_curl(plain_site: Site) -> None:
    status, echo = plain_site.curl("--http2-prior-knowledge", f"{plain_site.gw.base}/h2c")
    assert status.startswith("HTTP/2 200"), status
    assert echo is not None and header(echo, "x-forwarded-proto") == ["http"]
    status, _ = plain_site.curl("--http1.1", f"{plain_site.gw.base}/h1")
    assert status.startswith("HTTP/1.1 200"), status


def test_h2c_routes_by_authority_without_a_host_field(plain_site: Site) -> None:
    status, echo = h2_request(plain_site.gw.port, "/by-authority", [], authority="A.Example")
    assert status == 200 and echo["origin"] == "a"
    # The origin (HTTP/1.1) gets the authority as its Host.
    assert header(echo, "host") == ["A.Example"]
    status, echo = h2_request(plain_site.gw.port, "/other", [], authority="b.example")
    assert status == 200 and echo["origin"] == "b"


def test_h2_cookie_fields_are_one_cookie_header(plain_site: Site) -> None:
    """RFC 9113 §8.2.3: the token in the second cookie field is found, and the HTTP/1.1 origin gets
    one Cookie header with every crumb joined by "; "."""
    tok = mint_token(SECRET, {"sub": "h2-user"}, 600)
    status, echo = h2_request(plain_site.gw.port, "/private/x", [("cookie", "theme=dark"), ("cookie", f"auth-token={tok}"), ("cookie", "lang=ko")])
    assert status == 200
    assert header(echo, "x-user-id") == ["h2-user"]
    assert header(echo, "cookie") == [f"theme=dark; auth-token={tok}; lang=ko"]
    status, _ = h2_request(plain_site.gw.port, "/private/x", [("cookie", "theme=dark")])
    assert status == 401


def test_h2_header_size_is_bounded_like_http1(plain_site: Site) -> None:
    # Over max_header_bytes (32 KiB by default): the gateway's own 431, as over HTTP/1.1.
    status, echo = h2_request(plain_site.gw.port, "/big", [("x-big", "a" * 50_000)])
    assert status == 431, echo
    # Over the server's header buffer (max_header_bytes + 64 KiB, and at least Granian's 408 KiB, as
    # for HTTP/1.1; hyper's default would be 16 MiB per request): refused before the gateway holds it.
    status, echo = h2_request(plain_site.gw.port, "/bigger", [("x-big", "a" * 600_000)])
    assert status != 200 and "error" not in echo, (status, echo)
    status, _ = h2_request(plain_site.gw.port, "/after", [])
    assert status == 200


def test_h2c_with_httpx(plain_site: Site) -> None:
    with httpx.Client(http1=False, http2=True, timeout=10) as c:
        r = c.get(plain_site.gw.base + "/httpx", headers={"Host": "a.example"})
    assert r.http_version == "HTTP/2" and r.status_code == 200
    assert r.json()["origin"] == "a"


# ------------------------------------------------------------------ http2 = false


def test_http2_false_serves_http1_only(tmp_path: Path) -> None:
    with ExitStack() as stack:
        site = Site(tmp_path, stack, server="http2 = false", tls=True)
        with httpx.Client(verify=site.ssl, http2=True, timeout=10) as c:
            r = c.get(site.gw.base + "/x")
        assert r.status_code == 200 and r.http_version == "HTTP/1.1"  # ALPN offered http/1.1 only
        status, _ = site.curl("--http2", "--cacert", site.ca_file, f"{site.gw.base}/x")
        assert status.startswith("HTTP/1.1 200"), status
    with ExitStack() as stack:
        site = Site(tmp_path / "plain", stack, server="http2 = false")
        status, echo = site.curl("--http2-prior-knowledge", f"{site.gw.base}/x")
        assert echo is None and not status.startswith("HTTP/2 200")
        status, _ = site.curl("--http1.1", f"{site.gw.base}/x")
        assert status.startswith("HTTP/1.1 200"), status


# ------------------------------------------------------------------ gateway check


def check(tmp: Path, server: str) -> tuple[int, str]:
    path = write_config(tmp, f'[server]\n{server}\n[origins.a]\nurl = "http://127.0.0.1:9"\n[[routes]]\nmatch = "/:p*"\norigin = "a"\n')
    out = subprocess.run([GATEWAY_BIN, "check", "--config", str(path)], capture_output=True, text=True, timeout=60, env=gateway_env())
    return out.returncode, out.stdout + out.stderr


def test_check_names_each_tls_problem(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    other = ca.issue_cert("elsewhere")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    other.private_key_pem.write_to_path(str(tmp_path / "other-key.pem"))
    (tmp_path / "notpem.pem").write_text("hello\n")
    key = ssl_key_encrypted(tmp_path)

    code, out = check(tmp_path, 'tls_cert = "file:cert.pem"\ntls_key = "file:key.pem"')
    assert code == 0, out
    cases = {
        'tls_cert = "file:missing.pem"\ntls_key = "file:key.pem"': ("server.tls_cert", "missing.pem"),
        'tls_cert = "file:notpem.pem"\ntls_key = "file:key.pem"': ("server.tls_cert", "no PEM certificate"),
        'tls_cert = "file:cert.pem"\ntls_key = "file:notpem.pem"': ("server.tls_key", "no PEM private key"),
        'tls_cert = "file:cert.pem"\ntls_key = "file:other-key.pem"': ("server.tls_key", "not the private key"),
        f'tls_cert = "file:cert.pem"\ntls_key = "file:{key}"': ("server.tls_key", "passphrase"),
        'tls_cert = "file:cert.pem"': ("server.tls_key", "is missing"),
        'tls_cert = "cert.pem"\ntls_key = "file:key.pem"': ("server.tls_cert", "file:PATH"),
        'http2 = "yes"': ("server.http2", ""),
        'drain_timeout = "0s"': ("server.drain_timeout", "at least 1s"),
    }
    for server, (key_name, words) in cases.items():
        code, out = check(tmp_path, server)
        assert code == 1, (server, out)
        assert key_name in out and words in out, (server, out)
        assert "BEGIN" not in out.replace("-----BEGIN CERTIFICATE-----", "").replace("-----BEGIN PRIVATE KEY-----", "")


def ssl_key_encrypted(tmp: Path) -> str:
    """A passphrase-protected copy of a fresh key, written by the `cryptography` package."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"secret"))
    (tmp / "enc-key.pem").write_bytes(pem)
    return "enc-key.pem"


def test_serve_refuses_a_broken_pair_at_start(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.issue_cert("localhost").cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.issue_cert("x").private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    path = write_config(tmp_path, '[server]\ntls_cert = "file:cert.pem"\ntls_key = "file:key.pem"\n[origins.a]\nurl = "http://127.0.0.1:9"\n[[routes]]\nmatch = "/:p*"\norigin = "a"\n')
    out = subprocess.run([GATEWAY_BIN, "serve", "--config", str(path), "--listen", f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60, env=gateway_env())
    assert out.returncode == 1
    assert "server.tls_key" in out.stderr and "not the private key" in out.stderr

