"""The request as the stages see it: built once, from the ASGI scope (serve) or a URL (explain).

`Request` is the core's: it keeps the raw header bytes in Rust, measures and checks the head in one
pass when it is made, parses the Cookie header(s) once on first use, and hands out ``str`` values
(latin-1 wire text) only for the names a stage asks for.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

try:
    from gateway._core import Request
except ImportError:  # pragma: no cover - TEMPORARY stand-in until the core's Request lands
    import re as _re

    _UNSAFE = _re.compile(rb"[^\x21-\x7e]")

    class Request:  # type: ignore[no-redef]
        __slots__ = ("method", "raw_path", "query", "client", "scheme", "_h", "head_size", "host_count", "host", "host_name", "content_length", "content_length_valid", "chunked", "_cookies")

        def __init__(self, method: str, raw_path: bytes, query_string: bytes, headers: list[tuple[bytes, bytes]], client: str | None, scheme: str):
            self.method = method
            self.raw_path = raw_path
            q = query_string
            self.query = q.decode("ascii") if not _UNSAFE.search(q) else "".join(chr(b) if 0x21 <= b <= 0x7E else f"%{b:02X}" for b in q)
            self.client = client
            self.scheme = scheme
            self._h = headers
            size = len(raw_path) + len(self.query)
            hosts = 0
            cl = None
            valid = True
            chunked = False
            host = None
            for k, v in headers:
                size += len(k) + len(v) + 4
                if k == b"host":
                    hosts += 1
                    if host is None:
                        host = v.decode("latin-1")
                elif k == b"content-length":
                    s = v.strip()
                    if not s.isdigit() or (cl is not None and cl != int(s)):
                        valid = False
                    else:
                        cl = int(s)
                elif k == b"transfer-encoding":
                    chunked = True
            self.head_size = size
            self.host_count = hosts
            self.host = host
            hn = None
            if host:
                h = host.strip().lower()
                if h.startswith("["):
                    h = h[1:].split("]", 1)[0]
                else:
                    h = h.rsplit(":", 1)[0] if h.count(":") == 1 else h
                if h.endswith("."):
                    h = h[:-1]
                hn = h or None
            self.host_name = hn
            self.content_length = cl
            self.content_length_valid = valid
            self.chunked = chunked
            self._cookies = None

        def header(self, name: str) -> str | None:
            n = name.encode()
            for k, v in self._h:
                if k == n:
                    return v.decode("latin-1")
            return None

        def header_values(self, name: str) -> list[str]:
            n = name.encode()
            return [v.decode("latin-1") for k, v in self._h if k == n]

        def _jar(self) -> dict[str, list[str]]:
            if self._cookies is None:
                jar: dict[str, list[str]] = {}
                for part in "; ".join(self.header_values("cookie")).split(";")[:4096]:
                    k, sep, v = part.strip().partition("=")
                    if sep and k:
                        v = v.strip()
                        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                            v = v[1:-1]
                        jar.setdefault(k, []).append(v)
                self._cookies = jar
            return self._cookies

        def cookie(self, name: str) -> str | None:
            vals = self._jar().get(name)
            return vals[0] if vals else None

        def cookies(self, name: str) -> list[str]:
            return self._jar().get(name, [])[:8]

        def forward_headers(self, drop: frozenset[str]) -> list[tuple[bytes, bytes]]:
            named = set()
            for k, v in self._h:
                if k == b"connection":
                    named.update(t.strip().lower() for t in v.decode("latin-1").split(","))
            return [(k, v) for k, v in self._h if k.decode("latin-1") not in drop and k.decode("latin-1") not in named]


def from_scope(scope: dict[str, Any]) -> Request:
    """The request Granian handed over; ASGI header names are already lower-case bytes."""
    client = scope.get("client")
    return Request(scope["method"], scope.get("raw_path") or scope["path"].encode(), scope.get("query_string") or b"", scope["headers"], client[0] if client else None, scope.get("scheme", "http"))


def from_url(method: str, url: str, headers: list[tuple[str, str]], peer: str | None) -> Request:
    """The request `serve` would hold for ``method url`` with these headers on the wire (UTF-8),
    from `peer`: what explain runs through the stages. A URL's host becomes the Host header unless
    one is given."""
    parts = urlsplit(url)
    raw = [(k.strip().lower().encode("latin-1"), v.encode("utf-8")) for k, v in headers]
    if parts.netloc and not any(k == b"host" for k, _ in raw):
        raw.insert(0, (b"host", parts.netloc.encode("utf-8")))
    return Request(method.upper(), (parts.path or "/").encode("utf-8"), parts.query.encode("utf-8"), raw, peer, parts.scheme or "http")
