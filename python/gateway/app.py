"""The ASGI application Granian serves: the entry only. A request's way is `gateway.pipeline`.

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

from gateway import key_sources, metrics, pipeline, tracing
from gateway.config import Config, ConfigError, load
from gateway.kv import KVStore
from gateway.proxy import websocket
from gateway.proxy.upstream import UpstreamClient
from gateway.request import from_scope

log = logging.getLogger("gateway")


class GatewayApp:
    """One per worker process: the ASGI entry. Each HTTP request goes through `pipeline.serve`."""

    def __init__(self, config: Config, config_path: str | None = None, snapshot: str | None = None):
        self.config = config
        self.kv = KVStore(config.kv)
        self._upstream: UpstreamClient | None = None
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
        old_server = self.config.server
        # One assignment each: a request in flight keeps the objects it started with.
        self.kv = KVStore(config.kv)
        self.config = config
        key_sources.start(config)
        log.info("config reloaded from %s (%d routes)", self.config_path, len(config.routes))
        for line in config.warnings:
            log.warning("%s", line)
        for key in ("metrics_listen", "otlp_endpoint"):
            if getattr(config.server, key) != getattr(old_server, key):
                log.warning("server.%s changed: it is read at start, so it takes effect when the gateway is restarted", key)
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
            if self._reload_pending:
                self._reload()
            await pipeline.serve(self.config, self.kv, self.upstream, from_scope(scope), receive, send)
        elif kind == "websocket":
            if self._reload_pending:
                self._reload()
            await pipeline.serve_websocket(self.config, self.kv, from_scope(scope), receive, send)
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    _close_websockets_on_sigterm(asyncio.get_running_loop())
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await websocket.drained(websocket.CLOSE_TIMEOUT)
                    await self.kv.close()
                    # The last second of figures, and the spans still queued.
                    metrics.flush()
                    tracing.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return


def _close_websockets_on_sigterm(loop: asyncio.AbstractEventLoop) -> None:
    """On SIGTERM (or SIGINT: Ctrl-C), close this worker's WebSocket sessions with 1001
    (gateway.proxy.websocket.begin_drain).

    Granian drains a stopping worker itself: it stops accepting, lets in-flight requests finish
    (hyper's graceful shutdown) and waits for every connection before the worker exits; but an
    upgraded WebSocket would hold it open until the kill timeout, then die without a close frame.
    Granian's own handler is installed on the event loop before the app starts (signal.signal with
    a wake-up fd), so it is chained here rather than replaced: the previous Python-level handler
    still runs, and the loop's wake-up fd still tells Granian.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def on_signal(num: int, frame: Any, previous: Any = previous) -> None:
            websocket.mark_draining()  # before Granian hears of it (it runs from the loop, later)
            loop.call_soon_threadsafe(websocket.begin_drain)
            if callable(previous):
                previous(num, frame)

        signal.signal(signum, on_signal)


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
            text = f.read()
        # The hook module that loaded with it, if it was a file (the file itself may be broken now).
        hooks = _hooks_snapshot(snapshot)
        return load(path, text=text, hooks_source=hooks if os.path.exists(hooks) else None)
    _write_snapshot(config, snapshot)
    return config


def _hooks_snapshot(snapshot: str) -> str:
    return f"{snapshot}.hooks.py"


def _write_snapshot(config: Config, snapshot: str | None) -> None:
    if not snapshot:
        return
    try:
        text = config.path.read_text(encoding="utf-8")
        tmp = f"{snapshot}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        # A `file:` hook module is part of the config: a worker that starts while the file is broken
        # (a refused reload, then a respawn) runs the copy that loaded with this text.
        hooks_code = config.hooks.file_source if config.hooks is not None else None
        if hooks_code is not None:
            hooks_tmp = f"{_hooks_snapshot(snapshot)}.{os.getpid()}"
            with open(hooks_tmp, "wb") as fb:
                fb.write(hooks_code)
            os.replace(hooks_tmp, _hooks_snapshot(snapshot))
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
        # Identity providers' key sets are fetched in the background: start-up does not wait.
        key_sources.start(_app.config)
        # Both after the fork, in the worker: mmap'd metric files are per process, and the span
        # exporter's batch thread would not survive a fork.
        metrics.start_worker()
        tracing.start_worker(_app.config.server.otlp_endpoint)
        # `gateway serve` turns SIGHUP into SIGUSR1 for each worker: reload in place.
        signal.signal(signal.SIGUSR1, lambda *_: _app.request_reload() if _app is not None else None)
        # Requests allocate many short-lived objects but make no cycles worth chasing often:
        # keep start-up objects out of collections and collect the young generation less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
    return _app
