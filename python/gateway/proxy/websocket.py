"""The WebSocket form of the proxy: a handshake the stages allowed, relayed to the origin and back.

The pipeline's stages decide the handshake exactly as they decide an HTTP request (normalize, match,
auth, locale, headers, proxy); a refusal is sent as an ordinary HTTP response before any upgrade
(the ASGI ``websocket.http.response`` extension, which Granian implements), so a browser sees the
policy's 401, 403 or 302. An allowed handshake is made to the origin first — the client is only
answered ``101`` once the origin accepted, with the subprotocol the origin chose — then messages are
relayed both ways until either side closes. ``relay`` does that; the stages never do I/O.

The frames are terminated on each leg, not tunnelled: Granian (the server) parses the client's
frames and the ``websockets`` library (a well-kept RFC 6455 implementation: framing, masking, UTF-8
checks, close handshake, size limits) the origin's, so the gateway sees whole messages and can bound
them. What follows from that:

- Extensions are per leg (RFC 6455 §9 negotiates them per connection). Granian negotiates none
  with the client; towards the origin the gateway offers none either: permessage-deflate on a
  loopback or LAN hop costs CPU on every message and saves nothing, and an origin that insists on
  an extension refuses the handshake (502). A client that offers permessage-deflate gets a session
  without it, as RFC 6455 §9.1 allows.
- Ping and pong are answered on each leg: Granian answers the client's pings, the ``websockets``
  library the origin's (and it pings the origin every 20 s, closing with 1011 if no pong comes, so
  a dead origin is noticed). ASGI hands pings to no application, so they are not relayed and do not
  count as activity for ``ws_idle_timeout``.
- Text and binary messages keep their type; fragmented messages are relayed whole. Each message
  either way is at most the route's ``ws_max_message`` bytes (text counted as UTF-8): a larger one
  from the client closes the client with 1009, from the origin closes the client with 1014.
- Close codes pass through: the origin's code and reason reach the client; the client's code reaches
  the origin (Granian does not hand the client's reason to applications, so it is not relayed). A
  code that may not be sent in a close frame (1005 "no status", 1006 "abnormal") is replaced: an
  origin that vanished without a close frame is 1014 to the client, a client that did is 1001 to
  the origin.
- The gateway closes a session itself with 1001 on ``ws_idle_timeout`` (no message either way) and
  when it is shutting down (SIGTERM: `begin_drain`).

Sessions are proxied over HTTP/1.1 only: Granian does not implement WebSockets over HTTP/2
(RFC 8441), so an h2 client uses HTTP/1.1 for them, as browsers do when the server offers no
SETTINGS_ENABLE_CONNECT_PROTOCOL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode

from gateway import respond
from gateway.context import RequestContext
from gateway.proxy.http import origin_log
from gateway.respond import Answer

log = logging.getLogger("gateway")

# The subprotocol entry that carries a token (the "subprotocol" token source): ``bearer.<token>``,
# offered next to the application's real subprotocols. Never forwarded to the origin.
BEARER_PREFIX = "bearer."

# Handshake headers the relay negotiates itself on the origin leg (the library writes its own), or
# that belong to the client leg only. Host is set from the client's as the HTTP forward sends it.
HANDSHAKE_HEADERS = frozenset(
    {b"host", b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions", b"sec-websocket-protocol", b"sec-websocket-accept", b"content-length"}
)

# An origin's refusal is passed on with its status and body, the body cut at this many bytes.
MAX_REFUSAL_BODY = 64 * 1024
# Headers of an origin's refusal passed on to the client (hop-by-hop and framing ones never are).
REFUSAL_HEADERS = frozenset({"content-type", "www-authenticate", "location", "retry-after", "cache-control", "set-cookie"})

# Close codes a close frame may not carry (RFC 6455 §7.4.1): 1005 and 1006 mean "none was received".
NO_STATUS, ABNORMAL = 1005, 1006
GOING_AWAY, INTERNAL_ERROR, MESSAGE_TOO_BIG, BAD_GATEWAY = 1001, 1011, 1009, 1014
# A close reason is at most 123 bytes of UTF-8 (RFC 6455 §5.5: a control frame's payload is 125).
MAX_REASON = 123


class Session:
    """One WebSocket session, as the access log reports it (`log_fields`)."""

    __slots__ = ("opened", "frames_in", "frames_out", "close_code", "closed_by", "subprotocol")

    def __init__(self) -> None:
        self.opened: float | None = None
        self.frames_in = 0  # messages from the client to the origin
        self.frames_out = 0  # messages from the origin to the client
        self.close_code: int | None = None  # the code the client was sent (or sent, if it closed first)
        self.closed_by: str | None = None  # client | origin | gateway
        self.subprotocol: str | None = None

    def log_fields(self) -> dict[str, Any]:
        return {
            "websocket": True,
            "ws_seconds": None if self.opened is None else round(time.perf_counter() - self.opened, 3),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "close_code": self.close_code,
            "closed_by": self.closed_by,
        }


# The sessions this worker is relaying, so a shutdown can close each with 1001.
_live: set[_Relay] = set()
_draining = False


def draining() -> bool:
    """Whether this worker is shutting down (a new handshake then gets 503)."""
    return _draining


def begin_drain() -> None:
    """SIGTERM in this worker: every open session is closed with 1001 (going away) on both legs,
    and handshakes from now on are refused with 503. Called on the event loop (see gateway.app)."""
    global _draining
    _draining = True
    for relay in list(_live):
        relay.stop(GOING_AWAY, "the gateway is shutting down")


def offered_subprotocols(ctx: RequestContext) -> list[str]:
    """The subprotocols the client offered (Sec-WebSocket-Protocol, RFC 6455 §11.3.4: comma-separated
    tokens across every such header), less the ``bearer.`` token entries."""
    out = []
    for value in ctx.request.header_values("sec-websocket-protocol"):
        for item in value.split(","):
            item = item.strip()
            if item and not item.startswith(BEARER_PREFIX):
                out.append(item)
    return out


def origin_url(ctx: RequestContext) -> str:
    """ws:// (or wss://) for the http:// (or https://) URL the proxy stage chose."""
    assert ctx.upstream_url is not None
    return "ws" + ctx.upstream_url[4:]


async def refuse(send: Any, answer: Answer, set_cookies: list[str]) -> None:
    """An HTTP answer to a handshake, sent instead of the upgrade (ASGI ``websocket.http.response``)."""
    headers = list(answer.headers)
    headers.extend((b"set-cookie", c.encode("latin-1")) for c in set_cookies)
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "websocket.http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": answer.body})


class _OriginConnection(ClientConnection):
    """The library's client connection, sending the client's Host (as the HTTP forward does)
    instead of the origin's address, and the forwarded headers in the client's order."""

    forward_host: str | None = None

    async def handshake(self, additional_headers: Any = None, user_agent_header: str | None = None) -> None:
        build = self.protocol.connect
        host = self.forward_host

        def with_client_host() -> Any:
            request = build()
            if host is not None:
                del request.headers["Host"]
                request.headers["Host"] = host
            return request

        self.protocol.connect = with_client_host  # type: ignore[method-assign]
        await super().handshake(additional_headers, None)


class _connect(connect):
    """The library's connect, never following an origin's redirect: the gateway reaches the origin
    the route names and nothing else (a followed Location could point anywhere, internal hosts
    included); the 3xx goes to the client like any other refusal."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def _origin_headers(ctx: RequestContext) -> tuple[str | None, list[tuple[str, str]]]:
    """(the Host to send, the other forwarded headers as latin-1 text, as the library writes them)."""
    host = None
    out = []
    for k, v in ctx.forward_headers:
        if k == b"host":
            host = host or v.decode("latin-1")
        elif k not in HANDSHAKE_HEADERS:
            out.append((k.decode("latin-1"), v.decode("latin-1")))
    return host, out


async def relay(ctx: RequestContext, receive: Any, send: Any) -> None:
    """The handshake to the origin, then the session; ``ctx.status`` is 101 once the client is
    upgraded, or the HTTP status it was answered with (502 origin down, 504 too slow, the origin's
    own refusal passed on)."""
    origin = ctx.origin
    session = ctx.ws
    assert origin is not None and session is not None
    if _draining:
        await _answer(ctx, send, respond.error("service_unavailable", "the gateway is shutting down", headers=[(b"retry-after", b"1")]))
        return
    host, headers = _origin_headers(ctx)
    started = time.perf_counter()
    try:
        upstream = await _connect(
            origin_url(ctx),
            additional_headers=headers,
            subprotocols=offered_subprotocols(ctx) or None,  # type: ignore[arg-type]
            compression=None,
            open_timeout=ctx.timeout,
            max_size=ctx.ws_max_message,
            proxy=None,  # the origin is reached directly, never through $HTTP_PROXY
            user_agent_header=None,
            create_connection=_connection_factory(host),
        )
    except InvalidStatus as e:
        ctx.upstream_seconds = time.perf_counter() - started
        await _pass_refusal(ctx, send, e)
        return
    except (TimeoutError, asyncio.TimeoutError):
        ctx.upstream_seconds = time.perf_counter() - started
        await _answer(ctx, send, respond.error("gateway_timeout", f"the origin {origin.name!r} did not accept the WebSocket within {ctx.timeout:g}s"))
        return
    except (OSError, InvalidHandshake, InvalidURI, ValueError) as e:
        ctx.upstream_seconds = time.perf_counter() - started
        origin_log.warning(origin.name, "origin %s: WebSocket handshake failed: %s", origin.name, e)
        await _answer(ctx, send, respond.error("bad_gateway", f"the origin {origin.name!r} could not be reached or refused the WebSocket handshake"))
        return
    ctx.upstream_seconds = time.perf_counter() - started
    async with upstream:
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
        ctx.status = 101
        session.opened = time.perf_counter()
        session.subprotocol = upstream.subprotocol
        await _Relay(ctx, upstream, receive, send).run()


def _connection_factory(host: str | None) -> Any:
    def make(protocol: Any, **kwargs: Any) -> _OriginConnection:
        conn = _OriginConnection(protocol, **kwargs)
        conn.forward_host = host
        return conn

    return make


async def _answer(ctx: RequestContext, send: Any, answer: Answer) -> None:
    ctx.answer = answer
    ctx.status = answer.status
    await refuse(send, answer, [])


async def _pass_refusal(ctx: RequestContext, send: Any, e: InvalidStatus) -> None:
    """The origin answered the handshake with a status other than 101: the client gets it (its
    status, a few safe headers, the body up to MAX_REFUSAL_BODY), as an HTTP forward would."""
    response = e.response
    status = response.status_code
    if not 200 <= status <= 599 or status == 101:
        await _answer(ctx, send, respond.error("bad_gateway", "the origin answered the WebSocket handshake badly"))
        return
    body = bytes(response.body or b"")[:MAX_REFUSAL_BODY]
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.raw_items() if k.lower() in REFUSAL_HEADERS]
    headers.extend(ctx.response_headers)
    headers.extend((b"set-cookie", c.encode("latin-1")) for c in ctx.set_cookies)
    headers.append((b"content-length", str(len(body)).encode()))
    ctx.status = status
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def _sendable(code: int | None, instead: int) -> int:
    """`code` if a close frame may carry it (RFC 6455 §7.4), else `instead`."""
    if code is None:
        return instead
    if 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999:
        return code
    return instead


def _reason(text: str | None) -> str:
    raw = (text or "").encode("utf-8")
    if len(raw) <= MAX_REASON:
        return text or ""
    return raw[:MAX_REASON].decode("utf-8", "ignore")


class _Relay:
    """Both directions of one session, its idle timer and its stop switch (drain)."""

    def __init__(self, ctx: RequestContext, upstream: ClientConnection, receive: Any, send: Any):
        self.ctx = ctx
        assert ctx.ws is not None
        self.session: Session = ctx.ws
        self.upstream = upstream
        self.receive = receive
        self.send = send
        self.limit = ctx.ws_max_message
        self.last_activity = time.monotonic()
        self.stopped: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.client_closed = False

    def stop(self, code: int, reason: str) -> None:
        if not self.stopped.done():
            self.stopped.set_result((code, reason))

    async def run(self) -> None:
        _live.add(self)
        inbound = asyncio.ensure_future(self._from_client())
        outbound = asyncio.ensure_future(self._from_origin())
        idle = self.ctx.ws_idle_timeout
        try:
            while True:
                wait = max(0.0, self.last_activity + idle - time.monotonic())
                done, _ = await asyncio.wait((inbound, outbound, self.stopped), timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                if inbound in done or outbound in done:
                    break
                if self.stopped.done():
                    code, reason = self.stopped.result()
                    await self._close_both(code, reason, code, "gateway")
                    break
                if time.monotonic() - self.last_activity >= idle:
                    await self._close_both(GOING_AWAY, f"idle for {idle:g}s", GOING_AWAY, "gateway")
                    break
        finally:
            _live.discard(self)
            for task in (inbound, outbound):
                if not task.done():
                    task.cancel()
            await asyncio.gather(inbound, outbound, return_exceptions=True)

    async def _close_both(self, client_code: int, reason: str, origin_code: int, by: str) -> None:
        session = self.session
        if session.closed_by is None:
            session.closed_by = by
            session.close_code = client_code
        await self._close_client(client_code, reason)
        try:
            await self.upstream.close(origin_code, _reason(reason))
        except Exception:  # the origin is gone already: nothing left to tell it
            pass

    async def _close_client(self, code: int, reason: str) -> None:
        if self.client_closed:
            return
        self.client_closed = True
        try:
            await self.send({"type": "websocket.close", "code": code, "reason": _reason(reason)})
        except Exception:  # the client is gone already
            pass

    async def _from_client(self) -> None:
        session = self.session
        upstream = self.upstream
        receive = self.receive
        limit = self.limit
        while True:
            msg = await receive()
            kind = msg["type"]
            if kind == "websocket.receive":
                text = msg.get("text")
                data: str | bytes = text if text is not None else (msg.get("bytes") or b"")
                size = len(text.encode("utf-8")) if text is not None else len(data)
                if size > limit:
                    session.closed_by = "gateway"
                    session.close_code = MESSAGE_TOO_BIG
                    await self._close_both(MESSAGE_TOO_BIG, f"message over {limit} bytes", GOING_AWAY, "gateway")
                    return
                self.last_activity = time.monotonic()
                try:
                    await upstream.send(data)
                except ConnectionClosed:
                    return  # the origin closed: _from_origin reports it
                session.frames_in += 1
            elif kind == "websocket.disconnect":
                if self.client_closed:
                    return  # the gateway closed the client (and closes the origin itself)
                code = msg.get("code")
                self.client_closed = True
                if session.closed_by is None:
                    session.closed_by = "client"
                    session.close_code = code
                try:
                    await upstream.close(_sendable(code, GOING_AWAY), "")
                except Exception:
                    pass
                return

    async def _from_origin(self) -> None:
        session = self.session
        upstream = self.upstream
        send = self.send
        try:
            while True:
                message = await upstream.recv()
                self.last_activity = time.monotonic()
                try:
                    await send({"type": "websocket.send", "text": message} if isinstance(message, str) else {"type": "websocket.send", "bytes": message})
                except ConnectionClosed:
                    raise
                except Exception:  # the client is gone: _from_client sees its disconnect
                    self.client_closed = True
                    if session.closed_by is None:
                        session.closed_by = "client"
                    await upstream.close(GOING_AWAY, "")
                    return
                session.frames_out += 1
        except ConnectionClosed as e:
            if self.client_closed:
                return
            sent, rcvd = e.sent, e.rcvd
            if sent is not None and (rcvd is None or e.rcvd_then_sent is False):
                # The library closed the origin leg itself: say why to the client.
                if sent.code == MESSAGE_TOO_BIG:
                    code, reason = BAD_GATEWAY, f"the origin sent a message over {self.limit} bytes"
                elif sent.code == INTERNAL_ERROR:
                    code, reason = BAD_GATEWAY, "the origin stopped answering pings"
                else:
                    code, reason = BAD_GATEWAY, "the origin broke the WebSocket protocol"
            elif rcvd is not None:
                code, reason = _sendable(rcvd.code, 1000), rcvd.reason
            else:
                code, reason = BAD_GATEWAY, "the origin closed the connection without a close frame"
            if session.closed_by is None:
                session.closed_by = "origin"
                session.close_code = code
            await self._close_client(code, reason)
