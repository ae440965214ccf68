"""What the gateway tells its operators about each request: one access-log line (metrics later).

`request_done` is called exactly once per request, at the pipeline's single exit, whatever ended
it. Lines are JSON on stdout; paths only, never query strings (they may carry tokens).
"""

from __future__ import annotations

import sys
import time

import orjson

from gateway.context import RequestContext


def _unrouted_path(ctx: RequestContext) -> str:
    """What the log says for a request that never got a normalized path: the health endpoint's own
    path, or why the request was refused (a raw path may hold anything, tokens included)."""
    answer = ctx.answer
    if answer is not None and answer.kind == "health":
        return ctx.request.raw_path.decode("latin-1")
    return f"(refused: {answer.detail})" if answer is not None else "(refused)"


def request_done(ctx: RequestContext) -> None:
    if not ctx.config.server.access_log:
        return
    route = ctx.route
    answer = ctx.answer
    line = {
        "ts": round(time.time(), 3),
        "method": ctx.request.method,
        "path": ctx.path if ctx.path is not None else _unrouted_path(ctx),
        "route": route.index if route is not None else None,
        "match": route.label() if route is not None else None,
        "status": ctx.status,
        "auth": ctx.auth_outcome,
        "rate_limit": None if ctx.rate_limit is None else f"{ctx.rate_limit[0]}:{ctx.rate_limit[1]}",
        "origin": ctx.origin.name if ctx.origin is not None else None,
        "upstream_ms": None if ctx.upstream_seconds is None else round(ctx.upstream_seconds * 1000, 3),
        "total_ms": round((time.perf_counter() - ctx.started) * 1000, 3),
    }
    if ctx.ws is not None:  # a WebSocket session: its duration, messages each way, close code
        line.update(ctx.ws.log_fields())
    if ctx.auth_outcome == "unavailable":
        # Why the IdP's keys are unavailable (host and failure; never a token or a response body).
        line["auth_reason"] = ctx.auth_reason
    sys.stdout.write(orjson.dumps(line).decode() + "\n")
    sys.stdout.flush()
