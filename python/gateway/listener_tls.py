"""The listener's certificate and key: checked when the config is loaded (`gateway check`, serve).

The files are handed to Granian, which serves TLS with rustls; a broken pair would otherwise stop
every worker at start with a Rust error that names neither the config key nor the file. The check
uses the standard library's OpenSSL binding (``ssl.SSLContext.load_cert_chain``), a well-kept
parser that reads PEM chains, refuses a key that does not belong to the certificate and never
prints key material in its errors.
"""

from __future__ import annotations

import ssl
from pathlib import Path

PEM_CERT = b"-----BEGIN CERTIFICATE-----"
PEM_KEY_MARKERS = (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----", b"-----BEGIN EC PRIVATE KEY-----")
PEM_ENCRYPTED_KEY = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


def pair_problem(cert: Path, key: Path) -> tuple[str, str] | None:
    """Why ``cert`` and ``key`` cannot serve TLS, as (``"tls_cert"`` or ``"tls_key"``, what is
    wrong), or None when they can: both readable, PEM, the key unencrypted (there is nobody to type
    a passphrase at start) and the private key of the chain's first certificate."""
    texts: dict[str, bytes] = {}
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        try:
            texts[name] = path.read_bytes()
        except OSError as e:
            return name, f"cannot read {path}: {e.strerror}"
    if PEM_CERT not in texts["tls_cert"]:
        return "tls_cert", f"{cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    if any(m in texts["tls_key"] for m in PEM_ENCRYPTED_KEY):
        return "tls_key", f"{key} is encrypted with a passphrase; the gateway cannot ask for one"
    if not any(m in texts["tls_key"] for m in PEM_KEY_MARKERS):
        return "tls_key", f"{key} holds no PEM private key (-----BEGIN PRIVATE KEY-----)"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # A password callback that refuses: an encrypted key the markers missed fails here, not by
        # OpenSSL prompting on the terminal.
        ctx.load_cert_chain(str(cert), str(key), password=lambda: b"")
    except ssl.SSLError as e:
        reason = (e.reason or str(e)).upper()
        if "MISMATCH" in reason:
            return "tls_key", f"{key} is not the private key of the certificate in {cert}"
        if ("PEM" in reason and "CERT" in reason) or any(w in reason for w in ("X509", "CA_MD", "EE_KEY_TOO_SMALL")):
            return "tls_cert", f"{cert} is not a usable certificate ({e.reason or 'unreadable'})"
        return "tls_key", f"{key} is not a usable private key for {cert} ({e.reason or 'unreadable'})"
    return None
