"""Stage 6, headers: what the origin is sent and what the client gets back besides the origin's answer.

Request headers from the client pass byte for byte, except: hop-by-hop headers and those a
``Connection`` header names; ``Expect`` (the server answered 100-continue already); the forwarding
headers, which the gateway writes itself (``X-Forwarded-For/Proto/Host``: appended to a trusted
peer's, replaced for anyone else; ``Forwarded`` and ``X-Real-IP`` dropped); every header a policy
forwards a claim in, whatever the route (only the gateway may set them); and the locale's country
header when the peer is not trusted. Then the route's ``request_headers`` templates and the headers the
earlier stages set (claims, the experiment's variant, request hooks) are added, as UTF-8, and the
correlation stage's request id and trace context; the client's
copies of headers a request hook set or removed are dropped. The route's
``response_headers`` templates are rendered here too. Templates with KV lookups wait on the KV store.
"""

from __future__ import annotations

from gateway import _core
from gateway.context import RequestContext
from gateway.stages.correlation import correlation_header_texts
from gateway.respond import Answer

NAME = "headers"


async def run(ctx: RequestContext) -> Answer | None:
    route = ctx.route
    assert route is not None
    config = ctx.config
    req = ctx.request
    for name, tpl in route.request_headers:
        ctx.set_headers[name] = (await tpl.render_async(ctx, ctx.kv.get)) if tpl.needs_kv and ctx.kv is not None else tpl.render(ctx)
    if route.response_headers:
        added = []
        for name, tpl in route.response_headers:
            value = (await tpl.render_async(ctx, ctx.kv.get)) if tpl.needs_kv and ctx.kv is not None else tpl.render(ctx)
            added.append((name.lower().encode(), value.encode("utf-8")))
        ctx.response_headers = tuple(added)

    trusted = config.server.is_trusted(req.client)
    # Every name this route's stages can set is in the set, so a client's copy never rides along.
    drop = config.forward_drop[route.index][trusted]
    if ctx.hook_drop:
        # Headers a request hook set or removed: the client's copies of them are not forwarded either.
        drop = _core.HeaderNames({*drop.names(), *ctx.hook_drop})
    ctx.drop_headers = drop
    # One call into the core: the client's headers less `drop`, X-Forwarded-*, the gateway's own.
    ctx.forward_headers = req.upstream_headers(drop, trusted, ctx.set_headers, ctx.correlation_forward)
    if ctx.trace is not None:
        for k, v in ctx.set_headers.items():
            ctx.note(NAME, f"set {k}: {v}")
        for name, value in correlation_header_texts(ctx):
            ctx.note(NAME, f"set {name}: {value}")
        ctx.note(NAME, f"peer {req.client} is {'trusted: X-Forwarded-* appended to' if trusted else 'not trusted: X-Forwarded-* replace'} the client's")
    return None
