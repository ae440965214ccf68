"""The cors stage (after match, before auth): a route's ``cors`` policy (`gateway.cors`), decided before auth.

A preflight — ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method`` — on a route with
``cors`` is answered here, without a token and without asking the origin (the Fetch standard's
CORS-preflight request, which a browser sends without credentials, so auth could only refuse it):
204 with the CORS headers when the origin, the method and every requested header are allowed;
otherwise the gateway's 403 JSON ``forbidden`` saying which, with no CORS headers (the browser then
fails the request it was about to make). For any other request the decision is kept on the context
as the headers to add (``ctx.cors_headers``): an allowed origin's ``Access-Control-Allow-Origin``
(and ``-Credentials``, ``-Expose-Headers``), and ``Vary: Origin`` whatever the origin; they go on
whatever answers — the origin's response, or the gateway's own 401, 403, redirect, 413 or 5xx —
through `gateway.cors.merge_headers`, the one place that writes them.

Routes without ``cors`` pay one attribute test.
"""

from __future__ import annotations

from gateway import cors, respond
from gateway.context import RequestContext
from gateway.respond import Answer

NAME = "cors"


def run(ctx: RequestContext) -> Answer | None:
    route = ctx.route
    assert route is not None
    if route.cors is None:
        return None
    policy = ctx.config.cors[route.cors]
    req = ctx.request
    origins = req.header_values("origin")
    # Two Origin headers: no browser sends that, and there is no telling which one a cache keys on.
    origin = origins[0] if len(origins) == 1 else None
    if req.method == "OPTIONS" and origins:
        methods = req.header_values("access-control-request-method")
        if methods:
            return _preflight(ctx, policy, origin, methods)
    if ctx.ws is not None and origins and (origin is None or not policy.allows_origin(origin)):
        # Browsers apply no CORS to WebSockets: any page may open one, with the user's cookies
        # (cross-site WebSocket hijacking). The route's allowed origins are the only ones whose
        # pages may open a session; a handshake with no Origin is no browser's and is decided by auth.
        ctx.cors_headers = cors.VARY_ORIGIN
        ctx.cors_decision = "WebSocket handshake from an origin the policy does not allow: refused"
        if ctx.trace is not None:
            ctx.note(NAME, ctx.cors_decision)
        return respond.error("forbidden", "this page's origin may not open a WebSocket on this route")
    if origin is not None and policy.allows_origin(origin):
        ctx.cors_headers = policy.actual_headers(origin)
        ctx.cors_decision = f"origin allowed by {policy.describe()}"
    else:
        ctx.cors_headers = cors.VARY_ORIGIN
        ctx.cors_decision = "no Origin header: only Vary: Origin" if not origins else (
            "more than one Origin header: no CORS headers" if origin is None else f"origin not allowed by {policy.describe()}: no CORS headers"
        )
    if ctx.trace is not None:
        ctx.note(NAME, ctx.cors_decision)
    return None


def _preflight(ctx: RequestContext, policy: cors.CorsPolicy, origin: str | None, methods: list[str]) -> Answer:
    requested = cors.requested_headers(ctx.request.header_values("access-control-request-headers"))
    why = None
    if origin is None:
        why = "more than one Origin header"
    elif not policy.allows_origin(origin):
        why = "the origin is not allowed"
    elif len(methods) != 1 or not cors.TOKEN_RE.fullmatch(methods[0].strip()):
        why = "Access-Control-Request-Method is not one method"
    elif requested is None:
        why = f"Access-Control-Request-Headers is not a list of at most {cors.MAX_REQUEST_HEADERS} header names"
    else:
        why = policy.refuse_preflight(methods[0].strip(), requested)
    if why is None:
        assert origin is not None and requested is not None
        ctx.cors_headers = policy.preflight_headers(origin, requested)
        ctx.cors_decision = f"preflight allowed by {policy.describe()}: answered 204 without asking the origin"
        answer = Answer(204, "preflight")
    else:
        ctx.cors_headers = cors.VARY_PREFLIGHT
        ctx.cors_decision = f"preflight refused by {policy.describe()}: {why}; 403 without CORS headers"
        answer = respond.error("forbidden", f"CORS preflight refused: {why}")
    if ctx.trace is not None:
        ctx.note(NAME, ctx.cors_decision)
    return answer
