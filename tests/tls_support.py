"""Certificates the tests make (the `cryptography` package) and an HTTPS origin (nginx with TLS).

- ``Pki(tmp)``: a CA, and ``leaf(...)`` certificates it signs (server or client, any names, any
  validity), each written as PEM files; ``other_ca`` signs nothing the origins present.
- ``nginx_https_origin(tmp, servers)``: nginx with one TLS server per ``TlsServer`` (own port,
  certificate, optional client-certificate requirement, h2 on or off), answering every request with
  JSON naming the Host it received and the protocol it spoke, and logging both per request.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.harness import free_port, port_is_listening, spawn, wait_for

NOW = datetime.datetime.now(datetime.timezone.utc)
# 3 MB that is not one repeated byte, so a reordered or dropped chunk shows.
BIG_FILE = b"".join(i.to_bytes(4, "big") for i in range(3 * 2**18))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass
class Leaf:
    cert: Path
    key: Path


class Pki:
    """A test CA (and a second, unrelated one) writing PEM files under ``directory``."""

    def __init__(self, directory: Path):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._ca_key, self._ca_cert = self._make_ca("gateway test CA")
        self.ca = self._write("ca.pem", self._ca_cert.public_bytes(serialization.Encoding.PEM))
        other_key, other_cert = self._make_ca("unrelated test CA")
        self.other_ca = self._write("other-ca.pem", other_cert.public_bytes(serialization.Encoding.PEM))

    def _write(self, name: str, data: bytes) -> Path:
        p = self.dir / name
        p.write_bytes(data)
        return p

    @staticmethod
    def _make_ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def leaf(self, stem: str, names: list[str], *, client: bool = False, expired: bool = False) -> Leaf:
        """A certificate for ``names`` (DNS names or IP addresses) signed by the CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        start, end = (NOW - datetime.timedelta(days=60), NOW - datetime.timedelta(days=30)) if expired else (NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=10))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        return Leaf(self._write(f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM)), self._write(f"{stem}-key.pem", _key_pem(key)))


@dataclass
class TlsServer:
    leaf: Leaf
    http2: bool = True
    client_ca: Path | None = None  # set: a client certificate signed by it is required
    extra: str = ""  # more nginx directives for this server block
    port: int = 0


# Every answer names the Host the origin received and the protocol spoken; the access log keeps the
# same per request (JSON lines), plus the verified client certificate's subject when there is one.
_NGINX = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
  log_format seen escape=json '{{"host":"$http_host","protocol":"$server_protocol","port":"$server_port","uri":"$request_uri","client":"$ssl_client_s_dn","sni":"$ssl_server_name","request_length":"$request_length","status":"$status","connection":"$connection"}}';
  access_log {tmp}/access.log seen;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  default_type application/json;
{servers}
}}
"""

_SERVER = """
  server {{
{listen}
    ssl_certificate {cert};
    ssl_certificate_key {key};
{client}
{extra}
    client_max_body_size 16m;
    location / {{ return 200 '{{"host":"$http_host","protocol":"$server_protocol","uri":"$request_uri","client":"$ssl_client_s_dn"}}'; }}
    # A large answer, streamed to the gateway (the file is BIG_FILE in the origin's folder).
    location /fn/big {{ alias {public}/big.bin; default_type application/octet-stream; }}
    # An upload: nginx reads it whole (in memory) and passes it on with its Content-Length to a plain
    # server block that answers with that length.
    location /fn/upload {{ client_body_buffer_size 16m; proxy_pass http://127.0.0.1:{plain}/uploaded; }}
  }}
"""


@dataclass
class NginxOrigin:
    tmp: Path
    servers: list[TlsServer]

    def seen(self) -> list[dict[str, str]]:
        """The requests nginx answered, oldest first."""
        path = self.tmp / "access.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _listen(binary: str, port: int, http2: bool) -> str:
    """nginx 1.25.1 moved h2 from a `listen` parameter to the `http2` directive; both are supported."""
    import re
    import subprocess

    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stderr
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    new = m is not None and tuple(int(x) for x in m.groups()) >= (1, 25, 1)
    if new:
        return f"    listen 127.0.0.1:{port} ssl;\n    http2 {'on' if http2 else 'off'};"
    return f"    listen 127.0.0.1:{port} ssl{' http2' if http2 else ''};"


@contextmanager
def nginx_https_origin(tmp: Path, servers: list[TlsServer]) -> Iterator[NginxOrigin]:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        pytest.fail("nginx is not on PATH: the HTTPS-origin tests need a real nginx with TLS (apt-get install nginx; .ci/run installs it). Not skipping.", pytrace=False)
    tmp.mkdir(parents=True, exist_ok=True)
    # nginx's workers may run as nobody, who cannot enter pytest's private tmp folders.
    public = Path(tempfile.mkdtemp(prefix="gateway-tls-origin-"))
    public.chmod(0o755)
    (public / "big.bin").write_bytes(BIG_FILE)
    (public / "big.bin").chmod(0o644)
    plain = free_port()
    blocks = [f"  server {{ listen 127.0.0.1:{plain}; client_max_body_size 16m; client_body_buffer_size 16m; location / {{ return 200 '{{\"uploaded\":$content_length}}'; }} }}\n"]
    for s in servers:
        s.port = free_port()
        client = f"    ssl_client_certificate {s.client_ca};\n    ssl_verify_client on;" if s.client_ca else ""
        blocks.append(_SERVER.format(listen=_listen(binary, s.port, s.http2), cert=s.leaf.cert, key=s.leaf.key, client=client, public=public, plain=plain, extra=s.extra))
    conf = tmp / "nginx.conf"
    conf.write_text(_NGINX.format(tmp=tmp, servers="".join(blocks)))
    proc = spawn("nginx", [binary, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")], tmp)
    try:
        ok = wait_for(lambda: not proc.alive() or all(port_is_listening(s.port) for s in servers), 15)
        if not ok or not proc.alive():
            pytest.fail(f"nginx did not start:\n{proc.stderr_text()}\n{(tmp / 'error.log').read_text() if (tmp / 'error.log').exists() else ''}", pytrace=False)
        yield NginxOrigin(tmp, servers)
    finally:
        proc.stop()
        shutil.rmtree(public, ignore_errors=True)


class _TlsEcho:
    """gateway.echo's handler over TLS in a thread of the test process, for the mTLS origin: Python's
    ssl aborts the handshake when a required client certificate is missing (nginx would complete it
    and answer an HTTP 400 instead, which is the origin's answer, not a TLS failure)."""

    def __init__(self, leaf: Leaf, client_ca: Path):
        import ssl
        import threading
        from http.server import ThreadingHTTPServer

        from gateway.echo import EchoHandler

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(leaf.cert, leaf.key)
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.clients: list[str] = []
        outer = self

        class Handler(EchoHandler):
            def setup(self) -> None:
                super().setup()
                cert = self.connection.getpeercert()  # type: ignore[attr-defined]
                subject = dict(x[0] for x in cert.get("subject", ())) if cert else {}
                outer.clients.append(subject.get("commonName", ""))

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):  # type: ignore[no-untyped-def]
                sock, addr = self.socket.accept()
                # The handshake in the connection's own thread (finish_request), not the accept loop.
                return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

            def finish_request(self, request, client_address):  # type: ignore[no-untyped-def]
                try:
                    request.do_handshake()
                except (ssl.SSLError, OSError):
                    return
                super().finish_request(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.verbose = False  # type: ignore[attr-defined]
        self.server.name = "mtls"  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def mtls_origin(leaf: Leaf, client_ca: Path) -> Iterator[_TlsEcho]:
    origin = _TlsEcho(leaf, client_ca)
    try:
        yield origin
    finally:
        origin.close()
