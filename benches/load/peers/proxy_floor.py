"""proxy-floor: Granian's ASGI interface forwarding every request to one origin through the gateway's
upstream client (gateway.proxy.upstream.UpstreamClient over the Rust core's `_core.Upstream`), with no rules
— the ceiling for the scenarios where the gateway proxies (S2 valid token, S4 locale + A/B).

Only the client's public API is used (request / read), the way the gateway's app does it for small
bodies: the request is sent inline (the scenarios have no body; one that comes is read whole first,
where the gateway would stream a large one), a response of at most 64 KiB comes back inline and a
larger one is read chunk by chunk. What a proxy must do per request and nothing more: hop-by-hop
headers dropped both ways, X-Forwarded-For set, Content-Length of an inline body set.

    ORIGIN_URL=http://127.0.0.1:9000 python -m benches.load.peers.granian_serve benches.load.peers.proxy_floor:app \
        --config gateway.toml --port 8002
"""

from __future__ import annotations

import os
from typing import Any

from benches.load.peers.granian_serve import lifespan
from gateway import _core
from gateway.proxy.upstream import UpstreamClient

ORIGIN_URL = os.environ.get("ORIGIN_URL", "http://127.0.0.1:9000").rstrip("/")
INLINE_BODY = 65536
TIMEOUT = 30.0
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
RESPONSE_DROPPED = HOP_BY_HOP | {"content-length"}
FRAMING = frozenset({"content-length", "transfer-encoding"})

_client: UpstreamClient | None = None


def client() -> UpstreamClient:
    global _client
    if _client is None:  # in the worker, after Granian has started it
        _client = UpstreamClient()
    return _client


async def _error(send: Any, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _body(receive: Any) -> bytes | None:
    body = bytearray()
    more = True
    while more:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return None
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
    return bytes(body)


async def proxy(scope: dict[str, Any], receive: Any, send: Any) -> None:
    method = scope["method"]
    query = scope["query_string"]
    url = ORIGIN_URL + scope["raw_path"].decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    headers = []
    has_body = False
    for k, v in scope["headers"]:
        name = k.decode("latin-1")
        if name in FRAMING:
            has_body = v != b"0"
        if name not in HOP_BY_HOP:
            headers.append((name, v.decode("latin-1")))
    peer = scope.get("client")
    if peer:
        headers.append(("x-forwarded-for", peer[0]))
    body = None
    if has_body:
        body = await _body(receive)
        if body is None:
            return
    up = client()
    try:
        response = await up.request(method, url, headers, body, None, TIMEOUT, INLINE_BODY)
    except (ValueError, _core.UpstreamError):
        await _error(send, 502)
        return
    inline = response.body
    out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers if k not in (RESPONSE_DROPPED if inline is not None else HOP_BY_HOP)]
    if inline is not None:
        out.append((b"content-length", str(len(inline)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        await send({"type": "http.response.body", "body": inline})
        return
    await send({"type": "http.response.start", "status": response.status, "headers": out})
    while chunk := await up.read(response):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await proxy(scope, receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
