"""The HTTP forward: the request (streamed in bounded chunks) to the origin, its answer to the client.

The route's response hooks (gateway.hooks) run on the origin's status and headers before they are
sent. Runs after the stages, in serve only, with what they decided: ``ctx.upstream_url``,
``ctx.forward_headers``, ``ctx.timeout``, ``ctx.max_body``. Bodies up to `INLINE_BODY` go in one
piece; larger or chunked ones stream, counted against the route's ``max_body``. Every failure has
its answer: an origin that cannot be reached or answers badly is a 502, one that is too slow a 504, a
request body the client breaks off or frames badly a 400 with the connection closed. Once the
response head has gone out, the only honest signal left for a broken origin is to cut the connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from gateway import _core, respond
from gateway.config import HOP_BY_HOP
from gateway.context import RequestContext
from gateway.cors import merge_headers
from gateway.hooks import runner as hook_runner
from gateway.respond import Answer, send_answer

log = logging.getLogger("gateway")

INLINE_BODY = 65536
CLIENT_CLOSED = 499  # nginx's convention in access logs: the client went away before the answer


class _RateLimitedLog:
    """At most one line per key per second, so a failing origin cannot flood the logs."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(key, 0.0) < 1.0:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        dropped = self._suppressed.pop(key, 0)
        log.warning(msg + (f" (and {dropped} more like it in the last second)" if dropped else ""), *args)


origin_log = _RateLimitedLog()


class OriginBrokeOff(Exception):
    """The origin broke off a response whose head the client has already received. Raised to make
    the HTTP server cut the client's connection (ASGI has no other way to abort a response); the
    gateway has logged it already, rate-limited, so `QuietOriginBrokeOff` keeps the server from
    printing a traceback for it on every such request."""


class QuietOriginBrokeOff(logging.Filter):
    """A logging filter for the HTTP server's own logger (see cli._log_config)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Granian formats the traceback into the message; its last line names the exception.
        if not record.name.startswith("_granian"):
            return True
        message = record.getMessage()
        return not (message.startswith("Application callable raised") and message.rstrip().rsplit("\n", 1)[-1].startswith("OriginBrokeOff"))


class BodyBroken(Exception):
    """The client's request body ended badly: malformed chunked framing, or the client went away."""


async def _receive_chunk(receive: Any) -> tuple[bytes, bool]:
    try:
        msg = await receive()
    except Exception as e:  # the server could not parse the body (e.g. a bad chunk-size line)
        raise BodyBroken() from e
    if msg["type"] == "http.disconnect":
        raise BodyBroken()
    return msg.get("body", b""), msg.get("more_body", False)


async def _end(ctx: RequestContext, send: Any, answer: Answer) -> None:
    ctx.answer = answer
    ctx.status = answer.status
    await send_answer(send, answer, [], ctx.cors_headers, ctx.echo_headers)


def request_url(ctx: RequestContext) -> str:
    """The URL handed to the upstream client: ``ctx.upstream_url`` for an http:// origin; for an
    https:// one the same path and query under https://HOST where HOST is the Host the origin is
    sent (HTTP/1.1 Host, h2 :authority) — the origin's pool connects to its own address anyway."""
    origin = ctx.origin
    assert origin is not None and ctx.upstream_url is not None
    if origin.tls is None:
        return ctx.upstream_url
    return f"https://{ctx.upstream_host}{ctx.upstream_url[len(origin.address):]}"


async def forward(ctx: RequestContext, upstream: Any, receive: Any, send: Any) -> None:
    req = ctx.request
    origin = ctx.origin
    assert origin is not None and ctx.upstream_url is not None
    url = request_url(ctx)
    pending: asyncio.Future[Any] | None = None
    try:
        length = req.content_length
        if not req.chunked and not length:
            ctx.upstream_started = time.perf_counter()
            pending = upstream.request(req.method, url, ctx.forward_headers, None, None, ctx.timeout, INLINE_BODY, origin.tls)
        elif not req.chunked and length is not None and length <= INLINE_BODY:
            body = bytearray()
            more = True
            while more:
                chunk, more = await _receive_chunk(receive)
                body += chunk
            # The origin's time starts when the request goes to it, not while the client uploads.
            ctx.upstream_started = time.perf_counter()
            pending = upstream.request(req.method, url, ctx.forward_headers, bytes(body), None, ctx.timeout, INLINE_BODY, origin.tls)
        else:
            pending = await _stream_body(ctx, upstream, receive, url)
            if pending is None:  # over the limit: answered already inside
                await _end(ctx, send, respond.error("payload_too_large", f"the body is over this route's limit of {ctx.max_body} bytes", close=True))
                return
        response = await pending
    except BodyBroken:
        _abandon(pending)
        # Granian reports a body it cannot parse (a bad chunk-size line, a short body) the same way
        # as a client that went away: as a disconnect. Answer 400 and close; to a client that really
        # left, the answer goes nowhere, and nothing was completed at the origin either way.
        try:
            await _end(ctx, send, respond.error("bad_request", "the request body ended early or its chunked framing is invalid", close=True))
        except Exception:  # the connection is gone
            ctx.status = CLIENT_CLOSED
        return
    except ValueError as e:
        # The request could not be written as HTTP/1.1 (e.g. a header value hyper refuses).
        ctx.upstream_error = "upstream_request_refused"
        origin_log.warning(origin.name, "origin %s: could not forward the request: %s", origin.name, e)
        await _end(ctx, send, respond.error("bad_gateway", "the request could not be forwarded to the origin"))
        return
    except _core.UpstreamTimeout as e:
        ctx.upstream_seconds = time.perf_counter() - _started(ctx)
        ctx.upstream_error = e.kind
        await _end(ctx, send, respond.error("gateway_timeout", f"the origin {origin.name!r} did not answer within {ctx.timeout:g}s"))
        return
    except _core.UpstreamTLSError as e:
        ctx.upstream_seconds = time.perf_counter() - _started(ctx)
        ctx.upstream_error = getattr(e, "kind", "upstream_tls")
        await _end(ctx, send, tls_failure(origin.name, e))
        return
    except _core.UpstreamError as e:
        ctx.upstream_seconds = time.perf_counter() - _started(ctx)
        ctx.upstream_error = e.kind
        origin_log.warning(origin.name, "origin %s: %s", origin.name, e)
        await _end(ctx, send, respond.error("bad_gateway", f"the origin {origin.name!r} could not be reached or answered badly"))
        return
    ctx.upstream_seconds = time.perf_counter() - _started(ctx)
    if response.status < 200:
        ctx.upstream_error = "upstream_informational"
        # The gateway never asks to switch protocols (or sends Expect): a 101 here would hand the
        # client's connection to whatever the origin speaks next.
        origin_log.warning(origin.name, "origin %s answered %d to a request that asked for no upgrade", origin.name, response.status)
        await _end(ctx, send, respond.error("bad_gateway", f"the origin {origin.name!r} answered badly"))
        return
    ctx.status = response.status
    await _send_response(ctx, upstream, response, send)


def tls_failure(name: str, e: _core.UpstreamTLSError) -> Answer:
    """The 502 for a failed TLS handshake with an https:// origin: the detail names the kind and
    the check that failed, never the certificate's contents; one log line per origin and kind a
    second (a broken origin under load would otherwise write one per request)."""
    kind = getattr(e, "kind", "tls_handshake")
    origin_log.warning(f"{name}\0{kind}", "origin %s: TLS failed (%s): %s", name, kind, e)
    # The core's message starts with the kind in words ("unknown issuer: ...", "expired: ...",
    # "name mismatch: ...", "handshake: ...") and is made of fixed sentences.
    return respond.error("bad_gateway", f"TLS to the origin {name!r} failed: {e}")


def _started(ctx: RequestContext) -> float:
    # Set just before the request is handed to the core, which is where every upstream error comes from.
    assert ctx.upstream_started is not None
    return ctx.upstream_started


def _abandon(pending: asyncio.Future[Any] | None) -> None:
    """Nobody will await this request's answer: retrieve its outcome so asyncio stays quiet."""
    if pending is not None:
        pending.add_done_callback(lambda f: f.cancelled() or f.exception())


async def _stream_body(ctx: RequestContext, upstream: Any, receive: Any, url: str) -> asyncio.Future[Any] | None:
    """Streams the body to the origin as it arrives; None when it went over ``ctx.max_body``."""
    sender = _core.BodySender(4)
    ctx.upstream_started = time.perf_counter()
    assert ctx.origin is not None
    pending = upstream.request(ctx.request.method, url, ctx.forward_headers, None, sender, ctx.timeout, INLINE_BODY, ctx.origin.tls)
    total = 0
    more = True
    try:
        while more:
            chunk, more = await _receive_chunk(receive)
            total += len(chunk)
            if total > ctx.max_body:
                sender.abort()
                _abandon(pending)
                return None
            if chunk and not await upstream.send(sender, chunk):
                break  # the origin stopped reading (it answered early); its answer follows
    except BodyBroken:
        sender.abort()  # the origin sees an aborted request, never a complete one
        _abandon(pending)
        raise
    sender.finish()
    return pending


async def _send_response(ctx: RequestContext, upstream: Any, response: Any, send: Any) -> None:
    connection_named: set[str] = set()
    for k, v in response.headers:
        if k == "connection":
            connection_named.update(t.strip().lower() for t in v.split(","))
    inline = response.body
    # The gateway's request id replaces an origin's echo of it, in any spelling: one value, the one in
    # the log. (The length first: most names are not as long, and that test costs nothing.)
    rid_key = ctx.config.server.request_id_key
    rid_len = len(rid_key) if rid_key else -1
    out = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers
        if k not in HOP_BY_HOP and k not in connection_named and (k != "content-length" or inline is None) and (len(k) != rid_len or k.replace("_", "-") != rid_key)
    ]
    out.extend(ctx.response_headers)
    route = ctx.route
    if route is not None and route.hooks is not None and route.hooks.response:
        # The route's response hooks see the head the client is about to get (never the body).
        changed = await hook_runner.run_response(ctx, route.hooks, response.status, out)
        if isinstance(changed, Answer):  # a hook failed under on_error = "deny"
            await _end(ctx, send, changed)
            return
        out = changed
    out.extend(ctx.echo_headers)
    out.extend((b"set-cookie", c.encode("latin-1")) for c in ctx.set_cookies)
    if ctx.cors_headers:
        out = merge_headers(out, ctx.cors_headers)
    if inline is not None:
        if ctx.request.method != "HEAD":
            out.append((b"content-length", str(len(inline)).encode()))
        else:
            out.extend((k.encode(), v.encode()) for k, v in response.headers if k == "content-length")
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        ctx.head_sent = time.perf_counter()
        await send({"type": "http.response.body", "body": inline})
        return
    await send({"type": "http.response.start", "status": response.status, "headers": out})
    ctx.head_sent = time.perf_counter()
    try:
        while True:
            chunk = await upstream.read(response)
            if not chunk:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except _core.UpstreamError as e:
        name = ctx.origin.name if ctx.origin else "?"
        ctx.upstream_error = "upstream_broke_off"
        origin_log.warning(name, "origin %s broke off a response: %s", name, e)
        raise OriginBrokeOff(name) from None
    await send({"type": "http.response.body", "body": b"", "more_body": False})
