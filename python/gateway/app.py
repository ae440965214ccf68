"""The ASGI application Granian serves: applies the decision, proxies through the Rust client.

Granian's ASGI interface is used rather than RSGI because RSGI hands the app a path that is
already percent-decoded, which would make ``/dashboard%2Fx`` indistinguishable from
``/dashboard/x``; ASGI's ``raw_path`` lets the gateway refuse encoded slashes as promised.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import os
import sys
import time
from typing import Any

import orjson

from gateway import _core
from gateway.config import HOP_BY_HOP, Config, ConfigError, load
from gateway.kv import KVStore
from gateway.rules import Decision, decide, forward_headers, query_text
from gateway.upstream import UpstreamClient

log = logging.getLogger("gateway")

HEALTH_PATH = b"/__gateway/health"
INLINE_BODY = 65536
RESPONSE_HOP_BY_HOP = HOP_BY_HOP | {"content-length"}


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


_origin_log = _RateLimitedLog()


class GatewayApp:
    """One per worker process; built from a validated Config."""

    def __init__(self, config: Config, config_path: str | None = None, snapshot: str | None = None):
        self.config = config
        self.kv = KVStore(config.kv)
        self._upstream: Any = None
        self.access_log = config.server.access_log
        self.started = time.time()
        self.config_path = config_path
        self.snapshot = snapshot
        self._reload_pending = False

    def request_reload(self) -> None:
        """Called from the SIGUSR1 handler: the next request swaps in the re-read config."""
        self._reload_pending = True

    def _reload(self) -> None:
        self._reload_pending = False
        if not self.config_path:
            return
        try:
            config = load(self.config_path)
        except ConfigError as e:
            for line in e.problems:
                log.error("%s", line)
            log.error("config reload refused: %d problem(s) in %s; still serving the previous config", len(e.problems), self.config_path)
            return
        _write_snapshot(config, self.snapshot)
        old_kv = self.kv
        # One assignment each: a request in flight keeps the objects it started with.
        self.kv = KVStore(config.kv)
        self.config = config
        self.access_log = config.server.access_log
        log.info("config reloaded from %s (%d routes)", self.config_path, len(config.routes))
        buffer = int(os.environ.get("GATEWAY_HTTP1_BUFFER", "0"))
        if buffer and config.server.max_header_bytes > buffer:
            log.warning(
                "server.max_header_bytes = %d is over the HTTP server's read buffer (%d bytes) sized at start: larger heads get a bare 431 until the gateway is restarted",
                config.server.max_header_bytes,
                buffer,
            )
        asyncio.ensure_future(old_kv.close())

    @property
    def upstream(self) -> UpstreamClient:
        # Created in the worker (after Granian forks), never in the parent.
        if self._upstream is None:
            self._upstream = UpstreamClient()
        return self._upstream

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.handle(scope, receive, send)
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await self.kv.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        else:  # websocket: not proxied yet
            await send({"type": "websocket.close", "code": 1003})

    async def _send_simple(self, send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _error(self, send: Any, status: int, error: str, detail: str, close: bool = False) -> None:
        headers = [(b"content-type", b"application/json")]
        if close:
            headers.append((b"connection", b"close"))
        await self._send_simple(send, status, headers, orjson.dumps({"error": error, "detail": detail}))

    def _log(self, d: Decision | None, method: str, status: int, started: float, upstream_ms: float | None, path: str) -> None:
        if not self.access_log:
            return
        line = {
            "ts": round(time.time(), 3),
            "method": method,
            "path": path,
            "route": d.route.index if d is not None and d.route is not None else None,
            "match": d.route.label() if d is not None and d.route is not None else None,
            "status": status,
            "auth": d.auth_outcome if d is not None else "none",
            "origin": d.origin if d is not None else None,
            "upstream_ms": None if upstream_ms is None else round(upstream_ms, 3),
            "total_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        # Paths only: query strings may carry tokens.
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
        sys.stdout.flush()

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        if self._reload_pending:
            self._reload()
        method = scope["method"]
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if raw_path == HEALTH_PATH:
            body = orjson.dumps({"status": "ok", "routes": len(self.config.routes), "version": _core.__version__, "pid": os.getpid()})
            await self._send_simple(send, 200, [(b"content-type", b"application/json")], body)
            return
        query = query_text(scope.get("query_string") or b"")
        raw_headers = scope["headers"]
        # One pass: decode (ASGI names are already lower-case), size, and the framing headers.
        headers = []
        size = len(raw_path) + len(query)
        hosts = 0
        for k, v in raw_headers:
            size += len(k) + len(v) + 4
            name = k.decode("latin-1")
            if name == "host":
                hosts += 1
            headers.append((name, v.decode("latin-1")))
        if size > self.config.server.max_header_bytes:
            # Bounded work on hostile requests: nothing is parsed past this point.
            await self._error(send, 431, "request_header_fields_too_large", f"request headers are over {self.config.server.max_header_bytes} bytes", close=True)
            self._log(None, method, 431, started, None, "(refused)")
            return
        if hosts > 1:
            # Two Hosts: which one did the router see? Refuse rather than guess.
            await self._error(send, 400, "bad_request", "ambiguous request: more than one Host header", close=True)
            self._log(None, method, 400, started, None, "(refused)")
            return
        client = scope.get("client")
        peer = client[0] if client else None
        d = decide(self.config, method, raw_path, query, headers, peer)
        path_for_log = d.normalized_path or "(refused)"

        if d.action != "proxy":
            out: list[tuple[bytes, bytes]] = []
            if d.location:
                out.append((b"location", d.location.encode("latin-1")))
            if d.www_authenticate:
                out.append((b"www-authenticate", d.www_authenticate.encode()))
            if d.content_type:
                out.append((b"content-type", d.content_type.encode()))
            out.extend((b"set-cookie", c.encode("latin-1")) for c in d.set_cookies)
            out.append((b"cache-control", b"no-store"))
            await self._send_simple(send, d.status, out, d.body)
            self._log(d, method, d.status, started, None, path_for_log)
            return

        route = d.route
        assert route is not None and d.origin is not None and d.upstream_path is not None
        origin = self.config.origins[d.origin]
        ctx = d.ctx
        for name, tpl in route.request_headers:
            d.request_headers[name] = await tpl.render_async(ctx, self.kv.get) if tpl.needs_kv else tpl.render(ctx)
        extra_response = []
        for name, tpl in route.response_headers:
            value = await tpl.render_async(ctx, self.kv.get) if tpl.needs_kv else tpl.render(ctx)
            extra_response.append((name.lower().encode(), value.encode("utf-8")))

        max_body = route.max_body if route.max_body is not None else self.config.server.max_body
        content_length = None
        chunked = False
        for k, v in headers:
            if k == "content-length":
                if content_length is not None or not v.strip().isdigit():
                    await self._error(send, 400, "bad_request", "invalid or repeated Content-Length", close=True)
                    self._log(d, method, 400, started, None, path_for_log)
                    return
                content_length = int(v.strip())
            elif k == "transfer-encoding":
                chunked = True
        if content_length is not None and content_length > max_body:
            await self._error(send, 413, "payload_too_large", f"the body is over this route's limit of {max_body} bytes", close=True)
            self._log(d, method, 413, started, None, path_for_log)
            return

        fwd = forward_headers(self.config, d, headers, peer, scope.get("scheme", "http"))
        url = f"http://{origin.host}:{origin.port}{d.upstream_path}" + (f"?{query}" if query else "")
        timeout = route.timeout or origin.timeout
        upstream_started = time.perf_counter()
        try:
            if not chunked and not content_length:
                response = await self.upstream.request(method, url, fwd, None, None, timeout, INLINE_BODY)
            elif not chunked and content_length is not None and content_length <= INLINE_BODY:
                body = bytearray()
                more = True
                while more:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        return
                    body += msg.get("body", b"")
                    more = msg.get("more_body", False)
                response = await self.upstream.request(method, url, fwd, bytes(body), None, timeout, INLINE_BODY)
            else:
                response = await self._stream_request(d, method, url, fwd, receive, send, timeout, max_body, started, path_for_log)
                if response is None:
                    return
        except ValueError as e:
            # The request could not be written as HTTP/1.1 (e.g. a header value hyper refuses):
            # a clear 502 rather than a 500.
            _origin_log.warning(origin.name, "origin %s: could not forward the request: %s", origin.name, e)
            await self._error(send, 502, "bad_gateway", "the request could not be forwarded to the origin")
            self._log(d, method, 502, started, None, path_for_log)
            return
        except _core.UpstreamTimeout:
            await self._error(send, 504, "gateway_timeout", f"the origin {origin.name!r} did not answer within {timeout:g}s")
            self._log(d, method, 504, started, (time.perf_counter() - upstream_started) * 1000, path_for_log)
            return
        except _core.UpstreamError as e:
            _origin_log.warning(origin.name, "origin %s: %s", origin.name, e)
            await self._error(send, 502, "bad_gateway", f"the origin {origin.name!r} could not be reached or answered badly")
            self._log(d, method, 502, started, (time.perf_counter() - upstream_started) * 1000, path_for_log)
            return
        upstream_ms = (time.perf_counter() - upstream_started) * 1000

        connection_named = set()
        for k, v in response.headers:
            if k == "connection":
                connection_named.update(t.strip().lower() for t in v.split(","))
        inline = response.body
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers
            if k not in HOP_BY_HOP and k not in connection_named and (k != "content-length" or inline is None)
        ]
        out.extend(extra_response)
        out.extend((b"set-cookie", c.encode("latin-1")) for c in d.set_cookies)
        if inline is not None:
            if method != "HEAD":
                out.append((b"content-length", str(len(inline)).encode()))
            else:
                out.extend((k.encode(), v.encode()) for k, v in response.headers if k == "content-length")
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            await send({"type": "http.response.body", "body": inline})
            self._log(d, method, response.status, started, upstream_ms, path_for_log)
            return
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        try:
            while True:
                chunk = await self.upstream.read(response)
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except _core.UpstreamError as e:
            # Headers are gone already: the only honest signal left is to cut the connection.
            _origin_log.warning(origin.name, "origin %s broke off a response: %s", origin.name, e)
            self._log(d, method, response.status, started, upstream_ms, path_for_log)
            raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self._log(d, method, response.status, started, upstream_ms, path_for_log)

    async def _stream_request(
        self, d: Decision, method: str, url: str, fwd: list[tuple[str, str]], receive: Any, send: Any, timeout: float, max_body: int, started: float, path_for_log: str
    ) -> Any:
        sender = _core.BodySender(4)
        pending = self.upstream.request(method, url, fwd, None, sender, timeout, INLINE_BODY)
        total = 0
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                sender.abort()
                return None
            chunk = msg.get("body", b"")
            more = msg.get("more_body", False)
            total += len(chunk)
            if total > max_body:
                sender.abort()
                await self._error(send, 413, "payload_too_large", f"the body is over this route's limit of {max_body} bytes", close=True)
                self._log(d, method, 413, started, None, path_for_log)
                try:
                    await pending
                except _core.UpstreamError:
                    pass
                return None
            if chunk and not await self.upstream.send(sender, chunk):
                break  # the origin stopped reading (it answered early); its answer follows
        sender.finish()
        return await pending


_app: GatewayApp | None = None


def load_with_fallback(path: str, snapshot: str | None) -> Config:
    """Loads `path`; if it is invalid and a snapshot of the last good text exists, serves that.

    SIGHUP makes Granian start fresh workers; each reads the config file again. A valid file
    takes effect (and becomes the new snapshot); an invalid one is logged and refused, and the
    workers keep serving the last good config instead of failing to start.
    """
    try:
        config = load(path)
    except ConfigError as e:
        if not snapshot or not os.path.exists(snapshot):
            raise
        for line in e.problems:
            log.error("%s", line)
        log.error("config reload refused: %d problem(s) in %s; still serving the previous config", len(e.problems), path)
        with open(snapshot, encoding="utf-8") as f:
            return load(path, text=f.read())
    _write_snapshot(config, snapshot)
    return config


def _write_snapshot(config: Config, snapshot: str | None) -> None:
    if not snapshot:
        return
    try:
        text = config.path.read_text(encoding="utf-8")
        tmp = f"{snapshot}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, snapshot)
    except OSError as err:
        log.warning("cannot update the config snapshot %s: %s", snapshot, err)


def create_app() -> GatewayApp:
    """Granian factory: builds the app in each worker from $GATEWAY_CONFIG."""
    global _app
    if _app is None:
        path = os.environ.get("GATEWAY_CONFIG")
        if not path:
            raise RuntimeError("GATEWAY_CONFIG is not set; start the gateway with `gateway serve --config FILE`")
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        snapshot = os.environ.get("GATEWAY_CONFIG_SNAPSHOT")
        _app = GatewayApp(load_with_fallback(path, snapshot), path, snapshot)
        # `gateway serve` turns SIGHUP into SIGUSR1 for each worker: reload in place.
        signal.signal(signal.SIGUSR1, lambda *_: _app.request_reload() if _app is not None else None)
        # Requests allocate many short-lived objects but make no cycles worth chasing often:
        # keep start-up objects out of collections and collect the young generation less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
    return _app
