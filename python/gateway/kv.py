"""KV namespaces behind one interface: a JSON file (reloaded when it changes) or redis.

Lookups never raise: a value that cannot be had (file unreadable, redis down) is the last one
seen, or None so the placeholder's default applies; the failure is logged once per outage.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import orjson

from gateway.config import KVConfig

log = logging.getLogger("gateway.kv")


class FileKV:
    def __init__(self, cfg: KVConfig, check_every: float = 1.0):
        assert cfg.path is not None
        self.cfg = cfg
        self.path = cfg.path
        self.check_every = check_every
        self._data: dict[str, Any] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._reload()

    def _reload(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as e:
            if self._stamp is not None or not self._data:
                log.warning("kv.%s: cannot read %s: %s; keeping the last values", self.cfg.name, self.path, e.strerror)
            self._stamp = None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as e:
            log.warning("kv.%s: %s is not valid JSON (%s); keeping the last values", self.cfg.name, self.path, e)
            self._stamp = stamp
            return
        if not isinstance(data, dict):
            log.warning("kv.%s: %s must hold a JSON object; keeping the last values", self.cfg.name, self.path)
            self._stamp = stamp
            return
        self._data = data
        self._stamp = stamp

    async def get(self, key: str) -> Any:
        now = time.monotonic()
        if now - self._checked >= self.check_every:
            self._checked = now
            self._reload()
        return self._data.get(key)

    async def close(self) -> None:
        pass


class RedisKV:
    def __init__(self, cfg: KVConfig):
        try:
            import redis.asyncio as redis_asyncio
        except ImportError as e:  # pragma: no cover - redis is a dependency
            raise RuntimeError("the redis KV backend needs the 'redis' package: pip install redis") from e
        self.cfg = cfg
        self._client = redis_asyncio.Redis.from_url(cfg.url or "", socket_timeout=0.5, socket_connect_timeout=0.5)
        self._cache: dict[str, tuple[float, Any]] = {}
        self._down_since: float | None = None

    async def get(self, key: str) -> Any:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.cfg.cache_ttl:
            return hit[1]
        try:
            raw = await asyncio.wait_for(self._client.get(self.cfg.prefix + key), timeout=1.0)
        except Exception as e:  # noqa: BLE001 - any redis failure degrades to the cache
            if self._down_since is None:
                self._down_since = now
                log.warning("kv.%s: redis unavailable (%s); serving cached values or defaults", self.cfg.name, type(e).__name__)
            return hit[1] if hit is not None else None
        if self._down_since is not None:
            log.warning("kv.%s: redis is back", self.cfg.name)
            self._down_since = None
        value: Any = None
        if raw is not None:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                value = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[key] = (now, value)
        return value

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except Exception:  # noqa: BLE001
            pass


class KVStore:
    """All namespaces of a config."""

    def __init__(self, namespaces: dict[str, KVConfig]):
        self.namespaces: dict[str, FileKV | RedisKV] = {}
        for name, cfg in namespaces.items():
            self.namespaces[name] = FileKV(cfg) if cfg.backend == "file" else RedisKV(cfg)

    async def get(self, namespace: str, key: str) -> Any:
        ns = self.namespaces.get(namespace)
        return None if ns is None else await ns.get(key)

    async def close(self) -> None:
        for ns in self.namespaces.values():
            await ns.close()
