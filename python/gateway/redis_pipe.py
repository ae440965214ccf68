"""A pipelined asyncio connection to one redis server, for the rate limits' per-request script call.

Why not redis-py's asyncio client (which `gateway.kv` uses, where a lookup is cached): measured on
this project's machine it spends 120-200 µs of CPU per EVALSHA (connection-pool checkout, command
machinery, one write and one wake-up per call; `benches/redis_client_cost.py`), more than the gateway
spends on the whole proxied request, so a redis-backed limit would cut throughput by half or more. Here every command made in
one event-loop tick goes out in one write on one connection, replies come back in order and resolve
their futures in one read: a few µs of Python per call. The RESP protocol itself is not written
here: hiredis (the Redis project's C library, also redis-py's optional parser) packs the commands
(`hiredis.pack_command`) and parses the replies (`hiredis.Reader`); redis-py parses the URL.

Bounded failure: a connect that takes longer than ``timeout`` fails; a command whose reply has not
come back ``timeout`` seconds after it was queued aborts the connection, failing every command
waiting on it (a dead redis never holds a request longer than that); the next command connects
anew. Errors are `RedisUnavailable`; a reply that is a redis error is returned as a
``hiredis.ReplyError`` value for the caller to judge.

One redis server (or a primary behind a proxy): not Redis Cluster. ``redis://``, ``rediss://`` (TLS
with the system's CA certificates) and ``unix://`` URLs, with a user, a password and a database.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any

import hiredis
from redis.connection import parse_url

ReplyError = hiredis.ReplyError


class RedisUnavailable(Exception):
    """The server could not be reached, went away, or did not answer in time."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None  # asyncio's or uvloop's transport (uvloop's is no asyncio.Transport subclass)
        self.reader = hiredis.Reader()
        # Futures waiting for a reply, in the order their commands were written, and when each was queued.
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.queued_at: deque[float] = deque()
        self.out: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as e:
                self.abort(RedisUnavailable(f"protocol error: {e}"))
                return
            if reply is False:
                return
            if not self.waiting:
                self.abort(RedisUnavailable("a reply nobody asked for"))
                return
            fut = self.waiting.popleft()
            self.queued_at.popleft()
            if not fut.done():  # a caller that gave up (cancelled) still owns its place in the order
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisUnavailable(f"connection lost: {exc}" if exc else "connection closed by the server"))

    def fail(self, error: Exception) -> None:
        self.closed = True
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(error)
        self.queued_at.clear()
        self.out.clear()

    def abort(self, error: Exception) -> None:
        transport = self.transport
        self.fail(error)
        if transport is not None:
            transport.abort()


class RedisPipe:
    """Commands to one redis server over one pipelined connection (per event loop)."""

    def __init__(self, url: str, timeout: float):
        self.url = url
        self.timeout = timeout
        self._options = parse_url(url)
        self._conn: _Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self._flush_pending = False
        self._watching = False

    async def call(self, *args: Any) -> Any:
        """One command's reply (a ``ReplyError`` value for a redis error); `RedisUnavailable` when
        the server cannot answer within the timeout."""
        conn = self._conn
        loop = asyncio.get_running_loop()
        if conn is None or conn.closed or self._loop is not loop:
            conn = await self._connect(loop)
        fut = loop.create_future()
        self._queue(conn, loop, fut, hiredis.pack_command(args))
        return await fut

    def _queue(self, conn: _Connection, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], command: bytes) -> None:
        conn.waiting.append(fut)
        conn.queued_at.append(time.monotonic())
        conn.out.append(command)
        if not self._flush_pending:
            self._flush_pending = True
            loop.call_soon(self._flush, conn)
        if not self._watching:
            self._watching = True
            loop.call_later(self.timeout, self._watch, conn, loop)

    def _flush(self, conn: _Connection) -> None:
        self._flush_pending = False
        if conn.out and not conn.closed and conn.transport is not None:
            conn.transport.write(b"".join(conn.out))
        conn.out.clear()

    def _watch(self, conn: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        """Every `timeout` while commands wait: abort the connection if the oldest waited too long."""
        if conn is not self._conn and self._conn is not None:
            return  # a connection already replaced; the current one has its own watch
        if conn.closed or not conn.waiting:
            self._watching = False
            return
        late = time.monotonic() - conn.queued_at[0]
        if late >= self.timeout:
            self._watching = False
            conn.abort(RedisUnavailable(f"no reply within {self.timeout:g} s"))
            return
        loop.call_later(self.timeout - late, self._watch, conn, loop)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        if self._connecting is not None and self._loop is loop and not self._connecting.done():
            return await asyncio.shield(self._connecting)
        self._loop = loop
        self._conn = None
        self._watching = False
        self._flush_pending = False
        self._connecting = loop.create_future()
        try:
            conn = await asyncio.wait_for(self._open(loop), self.timeout)
        except Exception as e:  # noqa: BLE001 - whatever stops the connect is "unavailable"
            error = e if isinstance(e, RedisUnavailable) else RedisUnavailable(f"cannot connect: {type(e).__name__}: {e}")
            self._connecting.set_exception(error)
            self._connecting.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise error from None
        self._conn = conn
        self._connecting.set_result(conn)
        return conn

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        o = self._options
        if "path" in o:
            _, conn = await loop.create_unix_connection(_Connection, o["path"])
        else:
            tls = ssl.create_default_context() if self.url.startswith("rediss://") else None
            _, conn = await loop.create_connection(_Connection, o.get("host", "localhost"), o.get("port", 6379), ssl=tls)
        try:
            handshake: list[tuple[Any, ...]] = []
            if o.get("password") is not None:
                handshake.append(("AUTH", o["username"], o["password"]) if o.get("username") else ("AUTH", o["password"]))
            if o.get("db"):
                handshake.append(("SELECT", o["db"]))
            replies = []
            for args in handshake:
                fut = loop.create_future()
                self._queue(conn, loop, fut, hiredis.pack_command(args))
                replies.append((args[0], fut))
            for name, fut in replies:
                reply = await fut
                if isinstance(reply, ReplyError):
                    # The server's words (e.g. WRONGPASS), never the password.
                    raise RedisUnavailable(f"{name} refused: {str(reply).split(' ', 1)[0]}")
        except BaseException:
            if conn.transport is not None:
                conn.transport.abort()
            raise
        return conn

    def close(self) -> None:
        conn = self._conn
        if conn is not None and not conn.closed:
            conn.abort(RedisUnavailable("closed"))
        self._conn = None
