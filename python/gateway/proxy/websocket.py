"""The WebSocket form of the proxy: a handshake the stages allowed, relayed to the origin and back.

The pipeline's stages decide the handshake exactly as they decide an HTTP request (normalize, match,
auth, locale, headers, proxy); a refusal is sent as an ordinary HTTP response before any upgrade
(the ASGI ``websocket.http.response`` extension, which Granian implements), so a browser sees the
policy's 401, 403 or 302. (Granian adds its prepared ``Connection: upgrade``, ``Upgrade`` and
``Sec-WebSocket-Accept`` headers to such an answer; they mean nothing on a non-101 status and clients
ignore them, but the gateway cannot remove them.) An allowed handshake is made to the origin first —
the client is answered ``101`` only once the origin accepted, with the subprotocol the origin chose —
then messages are relayed both ways until either side closes. `relay` does that; the stages never
do I/O.

The frames are terminated on each leg, not tunnelled: Granian (the server) parses the client's
frames and the ``websockets`` library's sans-I/O protocol (a well-kept RFC 6455 implementation:
handshake, framing, masking, control frames, closing handshake, size limits) the origin's, so the
gateway sees whole messages and can bound them. What follows from that:

- Extensions are per leg (RFC 6455 §9 negotiates them per connection). Granian negotiates none with
  the client; towards the origin the gateway offers none either: permessage-deflate on a loopback or
  LAN hop costs CPU on every message and saves nothing (an origin that insists on an extension
  refuses the handshake, and its answer is passed on). A client that offers permessage-deflate gets
  a session without it, as RFC 6455 §9.1 allows.
- Ping and pong are answered on each leg: Granian answers the client's pings, the ``websockets``
  protocol the origin's. ASGI hands pings to no application, so they are not relayed and do not
  count as activity for ``ws_idle_timeout``; the gateway sends no pings of its own (an idle or dead
  session ends at ``ws_idle_timeout``).
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
import functools
import logging
import ssl
import time
from collections import deque
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidState, InvalidStatus, InvalidURI
from websockets.frames import BINARY, CLOSE, CONT, TEXT, Frame
from websockets.http11 import Response
from websockets.protocol import CLOSED, OPEN
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from gateway import observe, respond
from gateway.context import RequestContext
from gateway.proxy.http import origin_log
from gateway.respond import Answer
from gateway.token_sources import BEARER_PREFIX  # a subprotocol entry carrying a token: never forwarded

log = logging.getLogger("gateway")

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
NO_STATUS = 1005
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


def live_sessions() -> int:
    """How many sessions this worker is relaying now."""
    return len(_live)


def draining() -> bool:
    """Whether this worker is shutting down (a new handshake then gets 503)."""
    return _draining


def mark_draining() -> None:
    """Called from the signal handler itself, before the server hears of the signal: from now on a
    disconnect the server reports for a session is its shutdown, not the client leaving."""
    global _draining
    _draining = True


def begin_drain() -> None:
    """SIGTERM in this worker: every open session is closed with 1001 (going away) on both legs,
    and handshakes from now on are refused with 503. Called on the event loop (see gateway.app)."""
    mark_draining()
    for relay in list(_live):
        relay.stop(GOING_AWAY, "the gateway is shutting down")


async def drained(timeout: float) -> None:
    """Waits (at most `timeout` seconds) until every session this worker relayed has ended: called
    at shutdown, so close frames are out before the process exits."""
    deadline = time.monotonic() + timeout
    while _live and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


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


async def refuse(send: Any, answer: Answer, set_cookies: list[str], extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """An HTTP answer to a handshake, sent instead of the upgrade (ASGI ``websocket.http.response``),
    with `extra` headers (the request id echoed on every answer)."""
    headers = list(answer.headers)
    headers.extend(extra)
    headers.extend((b"set-cookie", c.encode("latin-1")) for c in set_cookies)
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "websocket.http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": answer.body})


# How many whole messages from the origin may wait for the client before the gateway stops reading
# the origin's socket (TCP flow control then slows the origin down): memory stays bounded at about
# this many times ws_max_message per session.
MAX_QUEUED = 16
# After the gateway sent its close frame, how long the origin has to complete the closing handshake
# and close TCP before the gateway drops the connection itself.
CLOSE_TIMEOUT = 5.0


class OriginLeg(asyncio.Protocol):
    """The origin leg of a session: the ``websockets`` library's sans-I/O `ClientProtocol` (handshake,
    framing, masking, control frames, size limits, closing handshake: RFC 6455) on an asyncio
    transport. The library's own asyncio connection class adds locks, queues and a task per
    connection on every message; a relay needs none of that, and it measured about a third of the
    gateway's time per message.

    Whole messages from the origin are queued (``messages``: bytes, with ``texts`` saying which were
    text) for the relay to send on; the origin's pings are answered by the protocol itself.
    """

    def __init__(self, ws: ClientProtocol):
        self.ws = ws
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[Response] = loop.create_future()
        self.messages: deque[tuple[bool, bytes]] = deque()
        self.wakeup: asyncio.Future[None] | None = None
        self.writable: asyncio.Future[None] | None = None  # set while the transport's buffer is full
        self.lost = False
        self.reading_paused = False
        self._fragments: list[bytes] = []
        self._fragment_text = False
        self._close_timer: asyncio.TimerHandle | None = None

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._process()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._close_timer is not None:
            self._close_timer.cancel()
        self.ws.receive_eof()  # idempotent; makes the state CLOSED
        self.ws.events_received()
        self.ws.data_to_send()
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("the origin closed the connection during the handshake"))
        for waiter in (self.wakeup, self.writable):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        waiter, self.writable = self.writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- the relay's side

    def flush(self) -> None:
        """Writes what the protocol has to send; after a close, drops TCP if the origin does not."""
        transport = self.transport
        if transport is None or self.lost:
            return
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
        if self._close_timer is None and self.ws.close_expected():
            self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, transport.close)

    def send(self, text: bool, data: bytes) -> bool:
        """Sends one message to the origin; False when the origin leg is closing or closed."""
        if self.ws.state is not OPEN:
            return False
        if text:
            self.ws.send_text(data)
        else:
            self.ws.send_binary(data)
        self.flush()
        return True

    def close(self, code: int, reason: str) -> None:
        """Starts the closing handshake with the origin (nothing to do if it is closing already)."""
        if self.ws.state is OPEN:
            try:
                self.ws.send_close(code, reason)
            except InvalidState:
                return
            self.flush()
        elif self.transport is not None and not self.lost and self.ws.state is not CLOSED and self._close_timer is None:
            self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.close)

    def abort(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.abort()

    def resume_if_drained(self) -> None:
        if self.reading_paused and len(self.messages) <= MAX_QUEUED // 2 and self.transport is not None and not self.lost:
            self.reading_paused = False
            self.transport.resume_reading()

    def _process(self) -> None:
        self.flush()  # pongs, the close echo, EOF
        woke = False
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if not self.opened.done():
                    if self.ws.handshake_exc is not None:  # not a 101, or a bad one
                        self.opened.set_exception(self.ws.handshake_exc)
                    else:
                        self.opened.set_result(event)
                continue
            assert isinstance(event, Frame)
            opcode = event.opcode
            if opcode is TEXT or opcode is BINARY:
                if event.fin:
                    self.messages.append((opcode is TEXT, bytes(event.data)))
                    woke = True
                else:
                    self._fragment_text = opcode is TEXT
                    self._fragments = [bytes(event.data)]
            elif opcode is CONT:
                self._fragments.append(bytes(event.data))
                if event.fin:
                    self.messages.append((self._fragment_text, b"".join(self._fragments)))
                    self._fragments = []
                    woke = True
            elif opcode is CLOSE:
                woke = True
        if not self.opened.done() and self.ws.handshake_exc is not None:
            self.opened.set_exception(self.ws.handshake_exc)
        if self.ws.state is not OPEN:
            woke = True
        if len(self.messages) > MAX_QUEUED and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        if woke and self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)


def _origin_request(ctx: RequestContext, ws: ClientProtocol) -> Any:
    """The handshake request the library builds, with the client's Host (as the HTTP forward sends
    it) and the forwarded headers, less those the library writes for its own leg."""
    request = ws.connect()
    host = None
    extra = []
    for k, v in ctx.forward_headers:
        if k == b"host":
            host = host or v.decode("latin-1")
        elif k not in HANDSHAKE_HEADERS:
            extra.append((k.decode("latin-1"), v.decode("latin-1")))
    # The Host the proxy stage chose (the origin's host_header rule), as the HTTP forward sends it.
    host = host or ctx.upstream_host
    if host is not None:
        del request.headers["Host"]
        request.headers["Host"] = host
    request.headers.update(extra)
    return request


@functools.lru_cache(maxsize=64)
def websocket_tls(settings: tuple[str | None, str | None, str | None, bool]) -> ssl.SSLContext:
    """An https:// origin's TLS settings for the WebSocket leg (asyncio with the standard library's
    ssl, which is OpenSSL), made on the first WebSocket to it rather than at every config load: the
    roots (ca_file or the system's), the client certificate, and the certificate checked against
    exactly the SNI name (passed as server_hostname). The files were already read and checked at load
    by the core (OriginTls). HTTP/1.1 only: a WebSocket is an HTTP/1.1 upgrade (RFC 6455)."""
    ca_file, client_cert, client_key, verify = settings
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None and client_key is not None:
        ctx.load_cert_chain(client_cert, client_key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def _open(ctx: RequestContext) -> OriginLeg:
    """The TCP connection and the opening handshake with the origin, within ``ctx.timeout``.
    Raises InvalidStatus (the origin answered, but not 101: its answer is in ``.response``),
    TimeoutError, OSError or InvalidHandshake. The origin's redirects are never followed: the gateway
    reaches the origin the route names and nothing else."""
    uri = parse_uri(origin_url(ctx))
    ws = ClientProtocol(uri, subprotocols=[Subprotocol(p) for p in offered_subprotocols(ctx)] or None, max_size=ctx.ws_max_message)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(ctx.timeout):
        origin = ctx.origin
        tls: Any = None
        if uri.secure:
            # The origin's own TLS settings (ca_file, client certificate, tls_verify), checked
            # against exactly its SNI name, as on the HTTP leg.
            assert origin is not None
            tls = websocket_tls(origin.ws_tls) if origin.ws_tls is not None else True
        _, leg = await loop.create_connection(
            lambda: OriginLeg(ws), uri.host, uri.port, ssl=tls, server_hostname=(origin.sni if uri.secure and origin is not None else None)
        )
        try:
            ws.send_request(_origin_request(ctx, ws))
            leg.flush()
            await leg.opened
        except BaseException:
            leg.abort()
            raise
    return leg


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
    started = time.perf_counter()
    try:
        leg = await _open(ctx)
    except InvalidStatus as e:
        ctx.upstream_seconds = time.perf_counter() - started
        await _pass_refusal(ctx, send, e)
        return
    except TimeoutError:
        ctx.upstream_seconds = time.perf_counter() - started
        await _answer(ctx, send, respond.error("gateway_timeout", f"the origin {origin.name!r} did not accept the WebSocket within {ctx.timeout:g}s"))
        return
    except (OSError, InvalidHandshake, InvalidURI, ValueError) as e:
        ctx.upstream_seconds = time.perf_counter() - started
        origin_log.warning(origin.name, "origin %s: WebSocket handshake failed: %s", origin.name, e)
        await _answer(ctx, send, respond.error("bad_gateway", f"the origin {origin.name!r} could not be reached or refused the WebSocket handshake"))
        return
    ctx.upstream_seconds = time.perf_counter() - started
    try:
        await send({"type": "websocket.accept", "subprotocol": leg.ws.subprotocol, "headers": list(ctx.echo_headers)})
        ctx.status = 101
        session.opened = time.perf_counter()
        session.subprotocol = leg.ws.subprotocol
        observe.websocket_opened(ctx.route)  # gateway_websockets_open
        await _Relay(ctx, leg, receive, send).run()
    finally:
        if ctx.status == 101:
            observe.websocket_closed(ctx.route)
        if not leg.lost and leg.ws.state is OPEN:
            leg.close(GOING_AWAY, "")


async def _answer(ctx: RequestContext, send: Any, answer: Answer) -> None:
    ctx.answer = answer
    ctx.status = answer.status
    await refuse(send, answer, [], ctx.echo_headers)


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
    headers.extend(ctx.echo_headers)
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

    def __init__(self, ctx: RequestContext, leg: OriginLeg, receive: Any, send: Any):
        self.ctx = ctx
        assert ctx.ws is not None
        self.session: Session = ctx.ws
        self.leg = leg
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
        if _draining:  # the handshake was under way when the drain began
            self.stop(GOING_AWAY, "the gateway is shutting down")
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
                    await self._close_both(code, reason, code)
                    break
                if time.monotonic() - self.last_activity >= idle:
                    await self._close_both(GOING_AWAY, f"idle for {idle:g}s", GOING_AWAY)
                    break
        finally:
            _live.discard(self)
            for task in (inbound, outbound):
                if not task.done():
                    task.cancel()
            await asyncio.gather(inbound, outbound, return_exceptions=True)
            for task in (inbound, outbound):
                if not task.cancelled() and task.exception() is not None:
                    log.warning("WebSocket relay on %s failed: %r", self.ctx.path, task.exception())

    async def _close_both(self, client_code: int, reason: str, origin_code: int) -> None:
        session = self.session
        if session.closed_by is None:
            session.closed_by = "gateway"
            session.close_code = client_code
        # The origin first: its close frame is written at once, while the client's send may be the
        # last thing this worker does before it exits (shutdown).
        self.leg.close(origin_code, _reason(reason))
        await self._close_client(client_code, reason)

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
        leg = self.leg
        receive = self.receive
        limit = self.limit
        while True:
            msg = await receive()
            kind = msg["type"]
            if kind == "websocket.receive":
                text = msg.get("text")
                data: bytes = text.encode("utf-8") if text is not None else (msg.get("bytes") or b"")
                if len(data) > limit:
                    await self._close_both(MESSAGE_TOO_BIG, f"message over {limit} bytes", GOING_AWAY)
                    return
                self.last_activity = time.monotonic()
                if leg.writable is not None:
                    await leg.writable  # the origin reads slower than the client sends
                if not leg.send(text is not None, data):
                    return  # the origin is closing: _from_origin reports it
                session.frames_in += 1
            elif kind == "websocket.disconnect":
                if self.client_closed:
                    return  # the gateway closed the client (and closes the origin itself)
                code = msg.get("code")
                if _draining and code == NO_STATUS:
                    # Granian ends every session's receive() when it begins to shut down (no close
                    # frame came from the client): the client is still there, tell it why.
                    await self._close_both(GOING_AWAY, "the gateway is shutting down", GOING_AWAY)
                    return
                self.client_closed = True
                if session.closed_by is None:
                    session.closed_by = "client"
                    session.close_code = code
                leg.close(_sendable(code, GOING_AWAY), "")
                return

    async def _from_origin(self) -> None:
        session = self.session
        leg = self.leg
        send = self.send
        messages = leg.messages
        loop = asyncio.get_running_loop()
        while True:
            while messages:
                is_text, data = messages.popleft()
                leg.resume_if_drained()
                self.last_activity = time.monotonic()
                if is_text:
                    try:
                        message: dict[str, Any] = {"type": "websocket.send", "text": data.decode("utf-8")}
                    except UnicodeDecodeError:
                        # RFC 6455 §8.1: invalid UTF-8 in a text message fails the connection (1007).
                        leg.ws.fail(1007, "invalid UTF-8 in a text message")
                        leg.flush()
                        await self._close_from_origin(BAD_GATEWAY, "the origin sent invalid UTF-8 text")
                        return
                else:
                    message = {"type": "websocket.send", "bytes": data}
                try:
                    await send(message)
                except Exception:  # the client is gone: _from_client sees its disconnect
                    self.client_closed = True
                    if session.closed_by is None:
                        session.closed_by = "client"
                    leg.close(GOING_AWAY, "")
                    return
                session.frames_out += 1
            ws = leg.ws
            if ws.state is not OPEN or leg.lost:
                if self.client_closed:
                    return
                sent, rcvd = ws.close_sent, ws.close_rcvd
                if rcvd is not None and (sent is None or ws.close_rcvd_then_sent is not False):
                    code, reason = _sendable(rcvd.code, 1000), rcvd.reason
                elif sent is not None and sent.code == MESSAGE_TOO_BIG:
                    code, reason = BAD_GATEWAY, f"the origin sent a message over {self.limit} bytes"
                elif sent is not None and rcvd is None and not leg.lost:
                    code, reason = BAD_GATEWAY, "the origin broke the WebSocket protocol"
                else:
                    code, reason = BAD_GATEWAY, "the origin closed the connection without a close frame"
                await self._close_from_origin(code, reason)
                return
            leg.wakeup = loop.create_future()
            await leg.wakeup
            leg.wakeup = None

    async def _close_from_origin(self, code: int, reason: str) -> None:
        session = self.session
        if session.closed_by is None:
            session.closed_by = "origin"
            session.close_code = code
        await self._close_client(code, reason)
