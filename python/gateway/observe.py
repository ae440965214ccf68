"""What the gateway tells its operators about each request: one access-log line, its metrics
(`gateway.metrics`, when ``metrics_listen`` is set) and its spans (`gateway.tracing`, when
``otlp_endpoint`` is set).

`request_done` is called exactly once per request, at the pipeline's single exit, whatever ended
it. Lines are JSON on stdout; paths only, never query strings (they may carry tokens). Every line has
``request_id`` and ``trace_id`` (null when ``[server] request_id`` / ``trace`` are off).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from gateway import metrics, tracing
from gateway.context import RequestContext

log = logging.getLogger("gateway")


def _unrouted_path(ctx: RequestContext) -> str:
    """What the log says for a request that never got a normalized path: the health endpoint's own
    path, or why the request was refused (a raw path may hold anything, tokens included)."""
    answer = ctx.answer
    if answer is not None and answer.kind == "health":
        return ctx.request.raw_path.decode("latin-1")
    return f"(refused: {answer.detail})" if answer is not None else "(refused)"


def request_done(ctx: RequestContext) -> None:
    now = time.perf_counter()
    if metrics.recorder is not None:
        try:
            metrics.recorder.record(ctx, now)
        except Exception:  # figures must never cost a request its log line
            log.exception("metrics: could not record a request")
    if tracing.exporter is not None:
        tracing.record(ctx, now)
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
        "total_ms": round((now - ctx.started) * 1000, 3),
        "request_id": ctx.request_id,
        "trace_id": ctx.trace_id,
    }
    if ctx.ws is not None:  # a WebSocket session: its duration, messages each way, close code
        line.update(ctx.ws.log_fields())
    if ctx.auth_outcome == "unavailable":
        # Why the IdP's keys are unavailable (host and failure; never a token or a response body).
        line["auth_reason"] = ctx.auth_reason
    sys.stdout.write(orjson.dumps(line).decode() + "\n")
    sys.stdout.flush()


# For the stages and features that count events outside the request's line (see gateway.metrics).


def key_set_fetch(policy: str, outcome: str) -> None:
    """One key-set (JWKS) fetch for auth policy `policy`: ``gateway_key_set_fetches_total``.
    `outcome` is one of a fixed few ("ok", "error", "not_modified", ...), never a URL or a message."""
    metrics.key_set_fetch(policy, outcome)


def websocket_opened(route: Any) -> None:
    """A WebSocket on `route` (a config Route or its pattern) opened: ``gateway_websockets_open`` + 1."""
    metrics.websocket_opened(route)


def websocket_closed(route: Any) -> None:
    """The matching close of `websocket_opened`: ``gateway_websockets_open`` - 1."""
    metrics.websocket_closed(route)
