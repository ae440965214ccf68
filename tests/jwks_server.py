"""A real identity provider's key endpoints for tests: an HTTPS server (its own CA, made here with
``cryptography``) serving a JWK Set and an OpenID discovery document, that a test can make rotate
keys, go down, answer slowly, answer garbage, an oversized body, an error or a redirect, and that
counts every fetch.

- ``TestCA(tmp)``: a CA and a server certificate for 127.0.0.1 / localhost; ``ca.pem`` in ``tmp``.
- ``SigningKey("RS256" | "PS256" | "ES256" | "ES384" | "EdDSA", kid)``: a private key that signs
  tokens (PyJWT + cryptography, independent of the gateway's own encoder) and gives its public JWK.
- ``KeySetServer(ca)``: ``.url`` (the JWK Set), ``.issuer`` (whose discovery document names ``.url``),
  ``.keys = [...]`` to rotate, ``.mode`` ("ok", "garbage", "not_a_set", "huge" (chunked), "huge_declared", "trickle" (a byte
  per 0.2 s), "error", "redirect"),
  ``.delay`` seconds before answering, ``.cache_control``, ``.down()`` / ``.up()`` (the port refuses
  connections in between), ``.fetches`` (JWK Set GETs answered or attempted) and ``.discoveries``.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class TestCA:
    """A throwaway CA and a server certificate signed by it, valid for 127.0.0.1, ::1 and localhost."""

    __test__ = False

    def __init__(self, tmp: Path, cn: str = "gateway test CA"):
        now = datetime.datetime.now(datetime.timezone.utc)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(self.cert.subject)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        tmp.mkdir(parents=True, exist_ok=True)
        self.ca_file = tmp / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.cert_file = tmp / "server.pem"
        self.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        self.key_file = tmp / "server.key"
        self.key_file.write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


class SigningKey:
    """A private signing key and its public JWK, for tokens made without the gateway's encoder."""

    __test__ = False

    def __init__(self, alg: str = "RS256", kid: str | None = "k1", jwk_alg: bool = True):
        self.alg = alg
        self.kid = kid
        if alg.startswith(("RS", "PS")):
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            algo: Any = jwt.algorithms.RSAAlgorithm
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            algo = jwt.algorithms.OKPAlgorithm
        else:
            curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
            self.private = ec.generate_private_key(curve)
            algo = jwt.algorithms.ECAlgorithm
        jwk = json.loads(algo.to_jwk(self.private.public_key()))
        jwk["use"] = "sig"
        if kid is not None:
            jwk["kid"] = kid
        if jwk_alg:
            jwk["alg"] = alg
        self.jwk = jwk

    def add_x5c(self) -> None:
        """An ``x5c`` of one self-signed certificate for this key (as Entra ID publishes, RFC 7517 §4.7)."""
        import base64

        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("idp signing"))
            .issuer_name(_name("idp signing"))
            .public_key(self.private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.private, None if self.alg == "EdDSA" else hashes.SHA256())
        )
        self.jwk["x5c"] = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]

    def sign(self, claims: dict[str, Any] | None = None, ttl: int = 600, **headers: Any) -> str:
        now = int(time.time())
        body = {"sub": "user-1", "iat": now, "exp": now + ttl, **(claims or {})}
        hdr = {"kid": self.kid, **headers} if self.kid is not None else dict(headers)
        return jwt.encode(body, self.private, algorithm=self.alg, headers=hdr)

    def private_pem(self) -> bytes:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class KeySetServer:
    """See the module doc. Thread-safe to reconfigure while clients fetch."""

    __test__ = False

    def __init__(self, ca: TestCA | None, keys: list[SigningKey] | None = None, tenant: str = "/tenant/"):
        self.ca = ca
        self.keys: list[SigningKey] = list(keys or [])
        self.extra_members: list[Any] = []
        self.mode = "ok"
        self.delay = 0.0
        self.cache_control: str | None = None
        self.fetches = 0
        self.discoveries = 0
        self.tenant = tenant
        self.issuer_override: str | None = None
        self.jwks_uri_override: str | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    # ---- addresses ---------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.ca is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/jwks.json"

    @property
    def issuer(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.tenant}"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk for k in self.keys] + list(self.extra_members)}

    # ---- up and down -------------------------------------------------------------------------

    def up(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                owner._answer(self)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        server.allow_reuse_address = True
        server.daemon_threads = True
        # Back up on the same port while connections of the last run linger (ESTABLISHED/TIME_WAIT).
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        server.server_bind()
        server.server_activate()
        if self.ca is not None:
            server.socket = self.ca.server_context().wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        """The port refuses connections until up()."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    close = down

    # ---- answers -----------------------------------------------------------------------------

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path
        if path == f"{self.tenant}.well-known/openid-configuration":
            with self._lock:
                self.discoveries += 1
            doc = {"issuer": self.issuer_override or self.issuer, "jwks_uri": self.jwks_uri_override or self.url, "id_token_signing_alg_values_supported": ["RS256"]}
            self._send(h, 200, json.dumps(doc).encode())
            return
        if path != "/jwks.json":
            self._send(h, 404, b'{"error":"not found"}')
            return
        with self._lock:
            self.fetches += 1
            mode, delay = self.mode, self.delay
        if delay:
            time.sleep(delay)
        if mode == "ok":
            self._send(h, 200, json.dumps(self.jwks()).encode())
        elif mode == "garbage":
            self._send(h, 200, b"<html>upstream maintenance</html>")
        elif mode == "not_a_set":
            self._send(h, 200, b'{"keys": "none"}')
        elif mode == "huge":
            # 2 MB of a valid-looking JSON array, without Content-Length (chunked), so only the
            # incremental read can refuse it.
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            chunk = b'{"kty":"oct","k":"' + b"A" * 65000 + b'"},'
            try:
                h.wfile.write(b'9\r\n{"keys":[\r\n')
                for _ in range(32):
                    h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                h.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
        elif mode == "huge_declared":
            body = b" " * (2 << 20)
            try:
                self._send(h, 200, body)
            except OSError:
                pass
        elif mode == "trickle":
            # A valid head, then the body one byte at a time, each well within any per-read timeout.
            body = json.dumps(self.jwks()).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            try:
                for i in range(len(body)):
                    h.wfile.write(body[i : i + 1])
                    h.wfile.flush()
                    time.sleep(0.2)
                    if self._server is None:
                        return
            except OSError:
                pass
        elif mode == "error":
            self._send(h, 500, b'{"error":"internal"}')
        elif mode == "redirect":
            h.send_response(302)
            h.send_header("Location", "https://127.0.0.1:1/evil.json")
            h.send_header("Content-Length", "0")
            h.end_headers()

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        if self.cache_control:
            h.send_header("Cache-Control", self.cache_control)
        h.end_headers()
        h.wfile.write(body)
