"""The listener's protocols, as Granian options: TLS, HTTP/2, WebSockets, the drain on SIGTERM.

- TLS (``[server] tls_cert`` / ``tls_key``): Granian terminates it with rustls, TLS 1.2 and 1.3 only,
  offering ``h2`` and ``http/1.1`` by ALPN (RFC 7301) when HTTP/2 is on. The files are read once at
  start (checked by the config loader, gateway.listener_tls); a new certificate needs a restart.
- HTTP/2 (``[server] http2``, default true): Granian's "auto" mode serves HTTP/1.1 and HTTP/2 on
  the same port: by ALPN on TLS, and on plain TCP by the client's connection preface (h2c with prior
  knowledge, RFC 9113 §3.3). The ``Upgrade: h2c`` dance of RFC 7540 (removed from RFC 9113) is not
  offered. ``http2 = false`` serves HTTP/1.1 only.
- WebSockets are on: gateway.proxy.websocket proxies them on routes that allow them.
- SIGTERM: Granian's workers stop accepting and finish their in-flight requests; the parent kills a
  worker still busy after ``[server] drain_timeout`` (its kill timeout, in whole seconds).
"""

from __future__ import annotations

import math
from typing import Any

from gateway.config import Server


def listener_options(server: Server, header_buffer: int) -> dict[str, Any]:
    """Keyword arguments for ``granian.Granian`` from the ``[server]`` table. ``header_buffer`` is
    the most header bytes the server accepts before the app sees a request (the HTTP/1.1 read
    buffer): HTTP/2's header-list limit gets the same (hyper's default is 16 MiB per request), so
    ``max_header_bytes`` bounds memory on both versions."""
    from granian.constants import HTTPModes, SSLProtocols
    from granian.http import HTTP2Settings

    options: dict[str, Any] = {
        "http": HTTPModes.auto if server.http2 else HTTPModes.http1,
        "http2_settings": HTTP2Settings(max_headers_size=header_buffer),
        "websockets": True,
        "workers_kill_timeout": max(1, math.ceil(server.drain_timeout)),
    }
    if server.tls_cert is not None and server.tls_key is not None:
        options["ssl_cert"] = server.tls_cert
        options["ssl_key"] = server.tls_key
        # Granian's default minimum is TLS 1.3; 1.2 (with rustls's AEAD-only suites) still serves the
        # clients a public gateway meets, as Mozilla's "intermediate" profile advises.
        options["ssl_protocol_min"] = SSLProtocols.tls12
    return options
