"""A real WebSocket origin for tests: the ``websockets`` library's server on a loopback port, in a
thread of the test process with its own event loop, keeping a record of every handshake it saw.

What it does, by message (on any path):
- text or binary: echoed back with the same type;
- ``"close CODE REASON"``: closes the session with that code and reason;
- ``"send-big N"``: answers with N bytes of binary;
- ``"headers"``: answers with the handshake's request headers as JSON [[name, value], ...];
- ``"hello?"``: answers ``"hello from <path>"``;
- ``"fragments"``: answers ``"fragmented"`` sent as three frames;
- ``"drop"``: drops the TCP connection without a close frame.
A handshake on ``/refuse/...`` is answered 403 with a small text body, on ``/moved/...`` 302 to
``/room/elsewhere``; it pings every 0.2 s (so a
relay that did not answer pings would be closed with 1011 within a second).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response


@dataclass
class Handshake:
    path: str
    headers: list[tuple[str, str]]
    subprotocol: str | None = None
    close_code: int | None = None  # the code the origin received when the session ended
    close_reason: str | None = None

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class WSOrigin:
    subprotocols: tuple[str, ...] = ("chat.v2", "chat.v1")
    handshakes: list[Handshake] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Future[None] | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the WebSocket origin did not start")

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = self._loop.create_future()
        async with serve(
            self._handler,
            "127.0.0.1",
            0,
            select_subprotocol=self._select_subprotocol,
            process_request=self._process_request,
            ping_interval=0.2,
            ping_timeout=1.0,
            max_size=16 * 2**20,
        ) as server:
            self.port = server.sockets[0].getsockname()[1] if hasattr(server, "sockets") else list(server.server.sockets)[0].getsockname()[1]
            self._ready.set()
            await self._stop

    def _select_subprotocol(self, conn: ServerConnection, offered: Sequence[str]) -> str | None:
        """The first of ours the client offered, else none (the library's default refuses then)."""
        return next((p for p in self.subprotocols if p in offered), None)  # type: ignore[return-value]

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        self.handshakes.append(Handshake(request.path, list(request.headers.raw_items())))
        if request.path.startswith("/refuse"):
            return Response(HTTPStatus.FORBIDDEN, "Forbidden", Headers([("Content-Type", "text/plain")]), b"origin says no")
        if request.path.startswith("/moved"):
            return Response(HTTPStatus.FOUND, "Found", Headers([("Location", "/room/elsewhere"), ("Content-Length", "0")]), b"")
        return None

    async def _handler(self, conn: ServerConnection) -> None:
        seen = next((h for h in reversed(self.handshakes) if h.path == conn.request.path), None) if conn.request else None
        if seen is not None:
            seen.subprotocol = conn.subprotocol
        try:
            async for message in conn:
                if isinstance(message, str) and message.startswith("close "):
                    _, code, reason = message.split(" ", 2)
                    await conn.close(int(code), reason)
                    return
                if message == "fragments":
                    await conn.send(["frag", "ment", "ed"])  # one text message in three frames
                elif message == "drop":
                    conn.transport.abort()  # gone without a close frame
                    return
                elif isinstance(message, str) and message.startswith("send-big "):
                    await conn.send(b"x" * int(message.split()[1]))
                elif message == "headers":
                    await conn.send(json.dumps(list(conn.request.headers.raw_items()) if conn.request else []))
                elif message == "hello?":
                    await conn.send(f"hello from {conn.request.path if conn.request else '?'}")
                else:
                    await conn.send(message)
        finally:
            if seen is not None:
                seen.close_code = conn.close_code
                seen.close_reason = conn.close_reason

    def last(self) -> Handshake:
        assert self.handshakes, "the origin saw no handshake"
        return self.handshakes[-1]

