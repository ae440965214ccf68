"""What HTTP/2 and the header-less token sources change in the headers an origin is sent.

Runs in the proxy stage, after the headers stage built ``ctx.forward_headers`` in the core, so
explain shows exactly what serve sends.
"""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.token_sources import BEARER_PREFIX


def finish_headers(ctx: RequestContext) -> None:
    """Joins several Cookie fields into one and drops ``bearer.`` token entries from
    Sec-WebSocket-Protocol (for routes whose policy reads them), in ``ctx.forward_headers``.

    RFC 9113 §8.2.3: an HTTP/2 client may send each cookie in a field of its own (better header
    compression); before the request goes on over HTTP/1.1 they MUST be joined with "; ", or an
    origin that reads one Cookie field (most do) sees one cookie. The gateway's own cookie reads
    already take every Cookie field (the core parses them as one).
    """
    req = ctx.request
    if len(req.header_values("cookie")) > 1:
        headers = ctx.forward_headers
        joined = b"; ".join(v for k, v in headers if k == b"cookie")
        out = []
        for k, v in headers:
            if k != b"cookie":
                out.append((k, v))
            elif joined:
                out.append((k, joined))
                joined = b""
        ctx.forward_headers = out
    route = ctx.route
    if route is not None and route.auth and ctx.config.auth[route.auth].reads_subprotocol:
        kept = [
            item.strip()
            for value in req.header_values("sec-websocket-protocol")
            for item in value.split(",")
            if item.strip() and not item.strip().startswith(BEARER_PREFIX)
        ]
        out = [(k, v) for k, v in ctx.forward_headers if k != b"sec-websocket-protocol"]
        if kept:
            out.append((b"sec-websocket-protocol", ", ".join(kept).encode("latin-1")))
        ctx.forward_headers = out
