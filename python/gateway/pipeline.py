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
from gateway.proxy import http
from gateway.respond import Answer, send_answer
from gateway.stages import auth, correlation, experiment, headers, locale, match, normalize, proxy

log = logging.getLogger("gateway")

STAGES: tuple[ModuleType, ...] = (correlation, normalize, match, auth, locale, experiment, headers, proxy)

# (name, run, whether run is a coroutine function): resolved once, not per request.
_PLAN: tuple[tuple[str, Callable[[RequestContext], Any], bool], ...] = tuple((s.NAME, s.run, inspect.iscoroutinefunction(s.run)) for s in STAGES)


async def decide(ctx: RequestContext) -> Answer | None:
    """Runs the stages; the `Answer` that ended the request, or None to forward it."""
    for _name, run, awaits in _PLAN:
        answer = (await run(ctx)) if awaits else run(ctx)
        if answer is not None:
            ctx.answer = answer
            ctx.status = answer.status
            return answer
    return None


async def serve(config: Config, kv: KVStore, upstream: Any, request: Request, receive: Any, send: Any) -> None:
    """One HTTP request in serve: the stages, then the answer or the forward, then the access log."""
    ctx = RequestContext(config, request, kv, time.perf_counter())
    try:
        try:
            answer = await decide(ctx)
        except Exception:
            # A fault in the gateway's own code: nothing has been sent yet, so the client gets the
            # gateway's JSON 500 (never a traceback) and the log gets the traceback, path only.
            log.exception("a stage failed on %s %s", request.method, ctx.path or "(path not normalized)")
            answer = ctx.answer = respond.error("internal_error", "the gateway failed on this request")
            ctx.status = answer.status
        if answer is not None:
            await send_answer(send, answer, ctx.set_cookies, ctx.echo_headers)
        else:
            await http.forward(ctx, upstream, receive, send)
    finally:
        observe.request_done(ctx)


async def explain(config: Config, request: Request, kv: KVStore | None, rng: random.Random | None = None, now: float | None = None) -> RequestContext:
    """The same stages as serve, in dry-run: nothing is sent to an origin; ``ctx.trace`` says why."""
    ctx = RequestContext.for_explain(config, request, kv, time.perf_counter(), rng, now)
    await decide(ctx)
    return ctx
