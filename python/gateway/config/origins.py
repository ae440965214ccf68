"""``[origins.NAME]``: where routes send requests, over HTTP or HTTPS.

An https:// origin's TLS settings are turned into a ``_core.OriginTls`` here, at load — the same
Rust code that serve uses parses the CA, certificate and key files, so ``gateway check`` refuses
exactly what serve could not use, naming the file, the key and what was expected. Each https://
origin gets its own connection pool, so origins that differ in anything that changes a connection
(address, SNI, roots, client certificate, verification, ALPN) never share one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gateway import _core
from gateway.config.model import Origin
from gateway.config.problems import Problems

ORIGIN_KEYS = {"url", "timeout", "host_header", "ca_file", "sni", "client_cert", "client_key", "tls_verify", "http2"}
TLS_KEYS = ("ca_file", "sni", "client_cert", "client_key", "tls_verify", "http2")
URL_RE = re.compile(r"^(https?)://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(?::(\d{1,5}))?(/[^?#]*)?$")
# A literal host_header: a host name or IP literal with an optional port, as a Host header may hold
# (RFC 9110 §7.2); nothing an origin could read as another host (no userinfo, path, comma, space).
HOST_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.?)(?::\d{1,5})?$")
HTTP2_MODES = ("auto", "never")
FILE_EXPECTED = {
    "ca_file": "expected a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)",
    "client_cert": "expected a PEM certificate chain, the gateway's own certificate first",
    "client_key": "expected the PEM private key (PKCS#8, PKCS#1 or SEC1) of client_cert",
    "sni": "expected a DNS name or an IP address",
    "url": 'expected "https://HOST:PORT" optionally with a base path',
}


def load_origins(c: Problems, doc: dict[str, Any], base: Path) -> dict[str, Origin]:
    origins: dict[str, Origin] = {}
    for name, od in c.table(doc.get("origins"), "origins").items():
        key = f"origins.{name}"
        od = c.table(od, key)
        c.known(od, key, ORIGIN_KEYS)
        url = c.string(od, key, "url", required=True)
        timeout = c.duration(od, key, "timeout", 30.0)
        if url is None:
            continue
        m = URL_RE.match(url)
        if not m:
            c.bad(f"{key}.url", f"is {url!r}", 'expected "http://HOST:PORT" or "https://HOST:PORT", optionally with a base path')
            continue
        scheme, host = m.group(1), m.group(2)
        port = int(m.group(3) or (443 if scheme == "https" else 80))
        if not 0 < port < 65536:
            c.bad(f"{key}.url", f"has port {port}", "expected a port from 1 to 65535")
            continue
        host_header = _host_header(c, od, key, default="origin" if scheme == "https" else "client")
        fields: dict[str, Any] = {}
        if scheme == "http":
            for k in TLS_KEYS:
                if k in od:
                    c.bad(f"{key}.{k}", "is set on an http:// origin", "expected an https:// url, or remove the key")
        else:
            tls_fields = _tls(c, od, key, host, port, base)
            if tls_fields is None:
                continue
            fields = tls_fields
        origins[name] = Origin(
            name,
            url.rstrip("/"),
            host,
            port,
            (m.group(4) or "").rstrip("/"),
            timeout or 30.0,
            scheme=scheme,
            host_header=host_header,
            **fields,
        )
    # An [origins.NAME] that is there but wrong has its own problem line already.
    if not origins and "origins" in doc and not (isinstance(doc["origins"], dict) and doc["origins"]):
        c.bad("origins", "defines no usable origin", "expected at least one [origins.NAME] with a url")
    return origins


def _host_header(c: Problems, od: dict[str, Any], key: str, default: str) -> str:
    value = c.string(od, key, "host_header", default=default) or default
    if value in ("origin", "client"):
        return value
    if not HOST_RE.match(value) or ".." in value:
        c.bad(f"{key}.host_header", f"is {value!r}", '"origin" (the URL\'s host), "client" (the Host the client sent) or a host name such as "api.example.com"')
        return default
    # The Host is sent as written, lower-case (host names are case-insensitive, RFC 9110 §4.2.3).
    return value.lower()


def _tls(c: Problems, od: dict[str, Any], key: str, host: str, port: int, base: Path) -> dict[str, Any] | None:
    """The Origin's TLS fields, with its OriginTls built; None when a setting is unusable."""
    ok = True
    sni = c.string(od, key, "sni", default=host.strip("[]")) or host.strip("[]")
    verify = c.boolean(od, key, "tls_verify", True)
    http2 = c.string(od, key, "http2", default="auto") or "auto"
    if http2 not in HTTP2_MODES:
        c.bad(f"{key}.http2", f"is {http2!r}", '"auto" (h2 when the origin offers it by ALPN) or "never" (HTTP/1.1 only)')
        ok = False
    pem: dict[str, bytes | None] = {}
    paths: dict[str, Path] = {}
    for k in ("ca_file", "client_cert", "client_key"):
        pem[k] = None
        ref = od.get(k)
        if ref is None:
            continue
        if not isinstance(ref, str) or not ref.startswith("file:") or len(ref) == 5:
            c.bad(f"{key}.{k}", f"is {ref!r}", f'expected "file:PATH" (relative to the config file); {FILE_EXPECTED[k]}')
            ok = False
            continue
        p = Path(ref[5:])
        p = p if p.is_absolute() else base / p
        paths[k] = p
        try:
            pem[k] = p.read_bytes()
        except OSError as e:
            c.bad(f"{key}.{k}", f"cannot read {p}: {e.strerror}", FILE_EXPECTED[k])
            ok = False
    if (pem["client_cert"] is None) != (pem["client_key"] is None) and ok:
        missing = "client_key" if pem["client_key"] is None else "client_cert"
        c.bad(f"{key}.{missing}", "is missing", "client_cert and client_key go together (mTLS to the origin)")
        ok = False
    if not ok:
        return None
    if not verify:
        c.warn(f"{key}.tls_verify", "is false: the origin's certificate and name are NOT checked, so anyone on the network path can impersonate it", "remove tls_verify, or set ca_file to the origin's CA")
        if pem["ca_file"] is not None:
            c.warn(f"{key}.ca_file", "is not used while tls_verify is false", "remove one of them")
    try:
        tls = _core.OriginTls(
            host,
            port,
            sni,
            ca_pem=pem["ca_file"],
            client_cert_pem=pem["client_cert"],
            client_key_pem=pem["client_key"],
            verify=verify,
            http2=http2 == "auto",
        )
    except ValueError as e:
        at, msg = e.args if len(e.args) == 2 else ("url", str(e))
        where = f"{paths[at]}: " if at in paths else ""
        c.bad(f"{key}.{at}", where + msg, FILE_EXPECTED.get(at))
        return None
    ws_tls = tuple(str(paths[k]) if k in paths else None for k in ("ca_file", "client_cert", "client_key"))
    return {"tls": tls, "sni": sni, "tls_verify": verify, "http2": http2, "ws_tls": (*ws_tls, verify)}
