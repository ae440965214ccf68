"""A request's way through the gateway, in one place.

``STAGES`` run in order on one `RequestContext`; the first that returns an `Answer` ends the
request. Then, in serve, the answer is sent — or the request is forwarded to the origin — and the
access log is written once, at the single exit (`serve`). Explain runs the very same stages with
``dry_run`` set: no I/O to origins, and every stage records why it decided what it did.

Adding a capability (rate limits, CORS, claim rules, hooks) is one module in ``gateway/stages/``
and one entry here.
"""

from __future__ import annotations

import inspect
import logging
import random
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from gateway import observe, respond
from gateway.request import Request
from gateway.config import Config
from gateway.context import RequestContext
from gateway.kv import KVStore
from gateway.proxy import http, websocket
from gateway.respond import Answer, send_answer
from gateway.stages import auth, claim_limits, correlation, cors, early_hooks, experiment, headers, limits, locale, match, normalize, proxy, request_hooks, require

log = logging.getLogger("gateway")

STAGES: tuple[ModuleType, ...] = (
    correlation, normalize, match, cors, limits, early_hooks, auth, claim_limits, require, locale, experiment, request_hooks, headers, proxy,
)  # fmt: skip

# (name, run, whether run is a coroutine function): resolved once, not per request.
_PLAN: tuple[tuple[str, Callable[[RequestContext], Any], bool], ...] = tuple((s.NAME, s.run, inspect.iscoroutinefunction(s.run)) for s in STAGES)


async def decide(ctx: RequestContext) -> Answer | None:
    """Runs the stages; the `Answer` that ended the request, or None to forward it."""
    for _name, run, awaits in _PLAN:
        answer = (await run(ctx)) if awaits else run(ctx)
        if answer is not None:
            if type(answer) is not Answer:
                # A synchronous stage that has to wait this time (the hook stages, on routes that
                # list hooks) hands back an awaitable: routes without hooks never pay for one.
                answer = await answer
                if answer is None:
                    continue
            ctx.answer = answer
            ctx.status = answer.status
            return answer
    return None


async def _decide_or_500(ctx: RequestContext) -> Answer | None:
    try:
        return await decide(ctx)
    except Exception:
        # A fault in the gateway's own code: nothing has been sent yet, so the client gets the
        # gateway's JSON 500 (never a traceback) and the log gets the traceback, path only.
        log.exception("a stage failed on %s %s", ctx.request.method, ctx.path or "(path not normalized)")
        answer = ctx.answer = respond.error("internal_error", "the gateway failed on this request")
        ctx.status = answer.status
        return answer


async def serve(config: Config, kv: KVStore, upstream: Any, request: Request, receive: Any, send: Any) -> None:
    """One HTTP request in serve: the stages, then the answer or the forward, then the access log."""
    ctx = RequestContext(config, request, kv, time.perf_counter())
    try:
        answer = await _decide_or_500(ctx)
        if answer is not None:
            await send_answer(send, answer, ctx.set_cookies, ctx.cors_headers, ctx.echo_headers)
        else:
            await http.forward(ctx, upstream, receive, send)
    finally:
        observe.request_done(ctx)


async def serve_websocket(config: Config, kv: KVStore, request: Request, receive: Any, send: Any) -> None:
    """One WebSocket handshake in serve: the same stages decide it; a refusal is an HTTP answer sent
    before any upgrade, else `websocket.relay` runs the session; one access-log line at the end."""
    ctx = RequestContext(config, request, kv, time.perf_counter())
    ctx.ws = websocket.Session()
    try:
        answer = await _decide_or_500(ctx)
        if answer is not None:
            await websocket.refuse(send, answer, ctx.set_cookies, ctx.echo_headers)
        else:
            await websocket.relay(ctx, receive, send)
    finally:
        observe.request_done(ctx)


def _asks_websocket(request: Request) -> bool:
    """``Connection: upgrade`` and ``Upgrade: websocket``, as the HTTP server reads a handshake."""
    upgrade = request.header("upgrade")
    connection = request.header("connection")
    return upgrade is not None and upgrade.strip().lower() == "websocket" and connection is not None and "upgrade" in connection.lower()


async def explain(config: Config, request: Request, kv: KVStore | None, rng: random.Random | None = None, now: float | None = None) -> RequestContext:
    """The same stages as serve, in dry-run: nothing is sent to an origin; ``ctx.trace`` says why."""
    ctx = RequestContext.for_explain(config, request, kv, time.perf_counter(), rng, now)
    if _asks_websocket(request):
        ctx.ws = websocket.Session()  # decided as serve decides a handshake (websocket = false: 403)
    await decide(ctx)
    return ctx
