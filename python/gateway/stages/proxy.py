"""Stage 7, proxy: where the request goes — the origin's URL, the Host it is sent, the timeout, the
route's body limit.

The Host follows the origin's ``host_header``: "client" (the client's Host, forwarded as received;
the default for http:// origins), "origin" (the URL's host[:port]; the default for https://) or a
literal. For an http:// origin a fixed Host is added here as a header (the client's was dropped with
the route's other never-forwarded headers); for an https:// origin it travels as the request URL's
authority, which hyper writes as Host on HTTP/1.1 and as :authority on h2.

This stage only decides; `gateway.proxy.http.forward` does the I/O after the pipeline, in serve
only, so explain shows the exact URL and headers serve would send without sending them.
"""

from __future__ import annotations

from gateway import respond
from gateway.proxy import forwarding
from gateway.context import RequestContext
from gateway.respond import Answer

NAME = "proxy"


def run(ctx: RequestContext) -> Answer | None:
    route, origin, req = ctx.route, ctx.origin, ctx.request
    assert route is not None and origin is not None and ctx.upstream_path is not None
    if ctx.ws is not None:
        if not route.websocket:
            if ctx.trace is not None:
                ctx.note(NAME, "a WebSocket handshake on a route with websocket = false")
            return respond.error("websocket_not_allowed", "this route does not accept WebSocket upgrades")
        ctx.ws_idle_timeout = route.ws_idle_timeout
        ctx.ws_max_message = route.ws_max_message
    forwarding.finish_headers(ctx)
    ctx.max_body = route.max_body if route.max_body is not None else ctx.config.server.max_body
    if req.content_length is not None and req.content_length > ctx.max_body:
        if ctx.trace is not None:
            ctx.note(NAME, f"Content-Length {req.content_length} is over this route's max_body ({ctx.max_body} bytes)")
        return respond.error("payload_too_large", f"the body is over this route's limit of {ctx.max_body} bytes", close=True)
    ctx.timeout = route.timeout or origin.timeout
    query = req.query if ctx.forward_query is None else ctx.forward_query
    ctx.upstream_host = host = origin.host_for(req.host)
    # The origin's own address; for https:// the request is sent as https://HOST/... where HOST is
    # the Host above (see gateway.proxy.http.request_url), through the origin's pool.
    ctx.upstream_url = f"{origin.scheme}://{origin.host}:{origin.port}{origin.base_path}{ctx.upstream_path}" + (f"?{query}" if query else "")
    if origin.scheme == "http" and origin.fixed_host is not None:
        # host_header "origin" or a literal: the client's Host was dropped (Config.forward_drop).
        ctx.forward_headers.append((b"host", host.encode()))
    if ctx.trace is not None:
        tls = f", TLS name {origin.sni!r}, h2 {'by ALPN' if origin.http2 == 'auto' else 'never'}" if origin.scheme == "https" else ""
        if ctx.ws is not None:
            ws_url = ("wss" if origin.scheme == "https" else "ws") + ctx.upstream_url[len(origin.scheme):]
            ctx.note(NAME, f"WebSocket to {ws_url} (Host: {host}{tls}; handshake timeout {ctx.timeout:g}s, idle timeout {ctx.ws_idle_timeout:g}s, messages up to {ctx.ws_max_message} bytes)")
        else:
            ctx.note(NAME, f"{req.method} {ctx.upstream_url} (Host: {host}{tls}; timeout {ctx.timeout:g}s, body limit {ctx.max_body} bytes)")
    return None
