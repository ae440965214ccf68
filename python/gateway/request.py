"""The request as the stages see it: built once, from the ASGI scope (serve) or a URL (explain).

`Request` is the core's: it keeps the raw header bytes in Rust, measures and checks the head in one
pass when it is made, parses the Cookie header(s) once on first use, and hands out ``str`` values
(latin-1 wire text) only for the names a stage asks for.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from gateway._core import Request

__all__ = ["Request", "from_scope", "from_url"]


# A WebSocket scope's scheme is ws or wss; the request (X-Forwarded-Proto) is http or https.
_WS_SCHEMES = {"ws": "http", "wss": "https"}


def from_scope(scope: dict[str, Any]) -> Request:
    """The request Granian handed over; ASGI header names are already lower-case bytes. Over HTTP/2
    Granian puts ``:authority`` in a ``host`` header when the client sent no Host, so routing reads
    one Host whatever the HTTP version. A WebSocket scope has no method: its handshake is a GET."""
    client = scope.get("client")
    scheme = scope.get("scheme", "http")
    return Request(
        scope.get("method", "GET"),
        scope.get("raw_path") or scope["path"].encode(),
        scope.get("query_string") or b"",
        scope["headers"],
        client[0] if client else None,
        _WS_SCHEMES.get(scheme, scheme),
    )


def from_url(method: str, url: str, headers: list[tuple[str, str]], peer: str | None) -> Request:
    """The request `serve` would hold for ``method url`` with these headers on the wire (UTF-8),
    from `peer`: what explain runs through the stages. ``url`` is ``http://host/path?query``,
    ``host/path`` or ``/path``; its host becomes the Host header unless one is given, and a bare
    ``/path`` is sent with ``Host: localhost`` (every HTTP/1.1 client sends one)."""
    if "://" not in url and not url.startswith("/"):
        url = "http://" + url
    parts = urlsplit(url)
    raw = [(k.strip().lower().encode("latin-1"), v.encode("utf-8")) for k, v in headers]
    if not any(k == b"host" for k, _ in raw):
        raw.insert(0, (b"host", (parts.netloc or "localhost").encode("utf-8")))
    return Request(method.upper(), (parts.path or "/").encode("utf-8"), parts.query.encode("utf-8"), raw, peer, parts.scheme or "http")
