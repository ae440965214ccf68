"""Stage 1, normalize: the request target, the head's size, Host and framing — before any rule.

Bounded work on hostile input: a head over ``server.max_header_bytes`` is refused before anything
in it is parsed; two Host headers are refused because the router could not know which one a
downstream server would use; a body whose length cannot be trusted is refused with the connection
closed. The path is normalized once, by the core (percent-decoding of unreserved characters, dot
segments, ``//``), and refused with its reason when it cannot be made safe (encoded ``/`` or ``\\``,
control characters, escapes above the root). The Host must be a host name (or an IP literal) with an
optional port; routing compares it lower-case, without port and trailing dot.
"""

from __future__ import annotations

import os

from gateway import _core, respond
from gateway.context import RequestContext
from gateway.respond import Answer

NAME = "normalize"
HEALTH_PATH = b"/__gateway/health"


def run(ctx: RequestContext) -> Answer | None:
    req = ctx.request
    limit = ctx.config.server.max_header_bytes
    if req.head_size > limit:
        if ctx.trace is not None:
            ctx.note(NAME, f"the request head is {req.head_size} bytes, over server.max_header_bytes = {limit}")
        return respond.error("header_fields_too_large", f"request headers are over {limit} bytes", close=True)
    if req.host_count > 1:
        if ctx.trace is not None:
            ctx.note(NAME, f"{req.host_count} Host headers: refused rather than guess which one routes")
        return respond.error("bad_request", "ambiguous request: more than one Host header", close=True)
    if not req.content_length_valid:
        if ctx.trace is not None:
            ctx.note(NAME, "Content-Length is not a number, or repeated with different values")
        return respond.error("bad_request", "invalid or repeated Content-Length", close=True)
    if req.raw_path == HEALTH_PATH:
        if ctx.trace is not None:
            ctx.note(NAME, "the gateway's own health endpoint")
        return respond.health({"status": "ok", "routes": len(ctx.config.routes), "version": _core.__version__, "pid": os.getpid()})
    if req.host_name is None:
        # RFC 9112 §3.2: a request without a Host, or whose Host is not a host name (x@h, h/, a..b,
        # h:1:2), gets 400: an origin could read it as another host than the one routing saw.
        why = "a Host header is required" if req.host is None else "the Host header is not a valid host name"
        if ctx.trace is not None:
            ctx.note(NAME, why)
        return respond.error("bad_request", why)
    try:
        ctx.path = _core.normalize_path(req.raw_path)
    except ValueError as e:
        if ctx.trace is not None:
            ctx.note(NAME, f"path refused ({getattr(e, 'kind', 'bad_path')}): {e}")
        return respond.error("bad_request", str(e))
    if ctx.trace is not None:
        ctx.note(NAME, f"path {req.raw_path.decode('latin-1')!r} -> {ctx.path!r}" + (f", host {req.host_name!r}" if req.host_name else ", no Host"))
    return None
