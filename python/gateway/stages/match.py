"""Stage 2, match: the first route whose path pattern, methods, host and has/missing conditions
all hold; its origin, and its path parameters.

The core's RegexSet narrows the routes to those whose pattern matches the normalized path, so the
cost does not grow with the number of routes; only those are checked further. Host names compare
as the core normalizes them (lower-case, no port, no trailing dot) against the route's host, which
the config loader normalizes the same way: ``Host: ADMIN.example.com.:8080`` is ``admin.example.com``.
Header conditions believe what the rest of the gateway believes: ``X-Forwarded-*``, ``Forwarded``,
``X-Real-IP`` and the geo header only from a trusted peer, forwarded-claim headers never.
Explain also lists why each earlier route was passed over.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from gateway import respond
from gateway.config import Condition, Route
from gateway.context import RequestContext
from gateway.respond import Answer

NAME = "match"
MAX_SKIPPED_IN_TRACE = 50


def _value(cond: Condition, ctx: RequestContext, query: dict[str, str]) -> str | None:
    req = ctx.request
    if cond.type == "header":
        config = ctx.config
        # A condition believes what the rest of the gateway believes: a forwarding or geo header only
        # from a trusted peer, a forwarded-claim header never (only the gateway may set it).
        if cond.key in config.spoofable_headers and (cond.key in config.forwarded_claim_headers or not config.server.is_trusted(req.client)):
            return None
        return req.header(cond.key)
    if cond.type == "cookie":
        return req.cookie(cond.key)
    if cond.type == "query":
        return query.get(cond.key)
    return req.host_name


def _holds(cond: Condition, ctx: RequestContext, query: dict[str, str]) -> bool:
    value = _value(cond, ctx, query)
    if value is None:
        return False
    return cond.value is None or cond.value.fullmatch(value)


def why_not(route: Route, ctx: RequestContext, query: dict[str, str]) -> str | None:
    """None when `route` applies to the request (its path already matched), else the reason."""
    req = ctx.request
    if route.methods is not None and req.method not in route.methods:
        # A CORS preflight asks about the method the page will use: on a route with cors it matches
        # as that method, so `methods = ["DELETE"]` does not send the DELETE's preflight elsewhere.
        asked = req.header("access-control-request-method") if req.method == "OPTIONS" and route.cors is not None and req.header("origin") is not None else None
        if asked is None or asked.strip() not in route.methods:
            return f"method {req.method} is not in {sorted(route.methods)}"
    if route.host is not None and req.host_name != route.host:
        return f"host {req.host_name!r} is not {route.host!r}"
    for cond in route.has:
        if not _holds(cond, ctx, query):
            return f"has: {cond.describe()} does not hold"
    for cond in route.missing:
        if _holds(cond, ctx, query):
            return f"missing: {cond.describe()} is present"
    return None


def run(ctx: RequestContext) -> Answer | None:
    config = ctx.config
    path = ctx.path
    assert path is not None
    query = dict(parse_qsl(ctx.request.query, keep_blank_values=True)) if config.query_conditions and ctx.request.query else {}
    candidates = config.route_set.matching_routes(path)
    explain = ctx.trace is not None
    skipped: list[tuple[int, str]] = []
    route = None
    for index in candidates:
        r = config.routes[index]
        why = why_not(r, ctx, query)
        if why is None:
            route = r
            break
        if explain:
            skipped.append((index, why))
    if explain:
        _note_skipped(ctx, route, candidates, skipped)
    if route is None:
        return respond.error("not_found", "no route matches this request")
    ctx.route = route
    ctx.origin = config.origins[route.origin]
    ctx.upstream_path = path
    # Path parameters feed templates only: routes whose templates use none skip the capture pass.
    if explain or route.index in config.param_routes:
        ctx.params = config.route_set.params(route.index, path) or {}
    if explain:
        ctx.note(NAME, f"route {route.index} ({route.label()}) -> origin {route.origin}" + (f", params {ctx.params}" if ctx.params else ""))
    return None


def _note_skipped(ctx: RequestContext, route: Route | None, candidates: Any, skipped: list[tuple[int, str]]) -> None:
    config = ctx.config
    last = route.index if route is not None else len(config.routes)
    candidate_set = set(candidates)
    reasons = dict(skipped)
    for r in config.routes[:last]:
        reasons.setdefault(r.index, f"path {ctx.path} does not match" if r.index not in candidate_set else "not tried")
    shown = sorted(reasons)[-MAX_SKIPPED_IN_TRACE:]
    ctx.skipped = tuple({"index": i, "match": config.routes[i].label(), "reason": reasons[i]} for i in shown)
    for i in shown:
        ctx.note(NAME, f"skipped route {i} ({config.routes[i].label()}): {reasons[i]}")
    if route is None:
        ctx.note(NAME, "no route matches: 404")
