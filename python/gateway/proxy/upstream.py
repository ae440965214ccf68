"""Awaiting the Rust upstream client from asyncio without handing the GIL to its thread.

Each `_core.Upstream` operation returns a token immediately; the I/O thread signals completions
on an eventfd, which this module watches with ``loop.add_reader`` and resolves the futures
waiting on those tokens — on the loop thread, where the GIL already is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway import _core


class UpstreamClient:
    def __init__(self) -> None:
        self._core = _core.Upstream()
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _attach(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self._loop.remove_reader(self._core.fileno())
            loop.add_reader(self._core.fileno(), self._drain)
            self._loop = loop
        return loop

    def _drain(self) -> None:
        for token, ok, value in self._core.drain():
            fut = self._waiting.pop(token, None)
            if fut is None or fut.done():
                continue  # the request was abandoned (client went away)
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _wait(self, token: int) -> asyncio.Future[Any]:
        fut = self._attach().create_future()
        self._waiting[token] = fut
        return fut

    def request(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes | str, bytes | str]],
        body: bytes | None = None,
        stream: _core.BodySender | None = None,
        timeout: float = 30.0,
        max_inline: int = 65536,
        tls: _core.OriginTls | None = None,
    ) -> asyncio.Future[_core.UpstreamResponse]:
        """Starts the request now; await the result for the response head. ``tls``: an https://
        origin's OriginTls (its pool; ``url`` is then https://HOST/... with HOST the Host sent)."""
        self._attach()
        return self._wait(self._core.request(method, url, headers, body, stream, timeout, max_inline, tls))

    async def read(self, response: _core.UpstreamResponse) -> bytes:
        return await self._wait(self._core.read(response))

    async def send(self, sender: _core.BodySender, chunk: bytes) -> bool:
        token = self._core.send(sender, chunk)
        if token == 0:
            return True
        return await self._wait(token)
