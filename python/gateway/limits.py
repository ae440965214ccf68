"""Rate limits at run time: the key a request is counted by, the two stores, the 429.

Every limit is GCRA (the Generic Cell Rate Algorithm): per key one *theoretical arrival time*;
``burst + 1`` requests pass at once, then ``count`` per period, and a refused request is told
exactly when the next one would pass (`Retry-After`, whole seconds rounded up).

Keys (``[limits.NAME] key``):

- ``"ip"``: the client's address as the gateway believes it. From a peer in
  ``server.trusted_proxies``, the ``X-Forwarded-For`` chain is read from the right and the first
  hop that is not a trusted proxy is the client (the rightmost address a trusted proxy wrote; the
  hops to its left are whatever the client sent). From anyone else, the peer address itself: a
  client cannot choose its key by sending X-Forwarded-For. IPv6 clients are counted by their /64
  (one subscriber's usual allocation: per address, one host could rotate through 2^64 keys);
  IPv4-mapped IPv6 as IPv4.
- ``"header:NAME"``: the header's value (several lines joined with ``,``). A forwarding or geo header
  is believed only from a trusted peer, a forwarded-claim header never (as route conditions do).
- ``"claim:NAME"``: a claim of the verified token (a dotted path reaches into objects); checked after
  auth, so only valid tokens are counted. `gateway check` refuses a claim key on a route without auth.

A request that has no value for its key (no such header, no such claim, an unbelieved header) is
counted in one shared bucket per limit, the *missing* bucket: leaving the header out must not be a
way around a limit, and the requests that do so are limited together.

Values are hashed before they reach a store (SipHash-2-4 under the instance's random key for
``memory``; BLAKE2b-128 for ``redis``, whose instances must agree): a store never holds a token, an
API key or a header as sent.

Stores: ``memory`` is `gateway._core.RateTable`, a fixed-size table in a file the `gateway serve`
process creates before its workers start (``$GATEWAY_RATE_TABLE``), mapped by every worker: one count
per instance. Its size is fixed (`DEFAULT_SLOTS` slots, 8 bytes each: 1 MiB); see rust/src/limits for
what happens when a flood of distinct keys fills it (limits get stricter, never looser; memory never
grows). ``redis`` runs one Lua script per check (EVALSHA, loaded again when a restarted server lost it)
over one pipelined connection per worker (`gateway.redis_pipe`), and the script reads the server's
clock (TIME), so instances with skewed clocks share one exact limit. When
redis cannot be reached within `REDIS_TIMEOUT`, the limit's ``on_store_error`` applies: ``allow``
lets the request through, ``deny`` answers 503 with ``Retry-After``; for `REDIS_DOWN_FOR` seconds
after a failure redis is not asked again (so a dead redis costs one timeout a second per worker,
not one per request), and the outage is logged once when it starts and once when it ends.

Several limits on a route are checked in order; the first that refuses ends the request (those
before it have counted it, as in Envoy and Kong).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import ipaddress
import logging
import math
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from gateway import _core, respond
from gateway.config import RateLimit
from gateway.context import RequestContext
from gateway.redis_pipe import RedisPipe, RedisUnavailable, ReplyError
from gateway.respond import Answer

log = logging.getLogger("gateway.limits")

TABLE_ENV = "GATEWAY_RATE_TABLE"
# 2^17 slots of 8 bytes (plus a 64-byte header): 1 MiB for up to ~131,000 keys counting at once.
DEFAULT_SLOTS = 1 << 17
# A redis check that takes longer than this is a store error (connect and read alike).
REDIS_TIMEOUT = 0.25
# After a redis failure, the next this-many seconds apply on_store_error without asking redis.
REDIS_DOWN_FOR = 1.0
IP_CACHE_MAX = 4096

# (allowed, remaining, retry_after_us, reset_us); None when the store could not answer.
Decision = tuple[bool, int, int, int]


# ---------------------------------------------------------------- the key


_ip_keys: dict[str, str] = {}


def _ip_key(text: str) -> str:
    """The bucket text for an address: IPv4 as is, IPv6 as its /64, IPv4-mapped IPv6 as IPv4."""
    if ":" not in text:
        return text
    hit = _ip_keys.get(text)
    if hit is not None:
        return hit
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
        if isinstance(ip, ipaddress.IPv6Address):
            key = str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ipaddress.IPv6Network((ip, 64), strict=False))
        else:
            key = str(ip)
    except ValueError:
        key = text
    if len(_ip_keys) >= IP_CACHE_MAX:
        _ip_keys.clear()
    _ip_keys[text] = key
    return key


def client_ip(ctx: RequestContext) -> str:
    """The client's address, trusted-proxy aware (see the module docstring): the text a limit keyed
    by ``ip`` counts (an IPv6 address as its /64)."""
    req = ctx.request
    peer = req.client or ""
    server = ctx.config.server
    if server.trusted_proxies and server.is_trusted(peer):
        lines = req.header_values("x-forwarded-for")
        if lines:
            hops = [h for h in (h.strip() for line in lines for h in line.split(",")) if h]
            for hop in reversed(hops):
                if not server.is_trusted(hop):
                    return _ip_key(hop)
            if hops:  # every hop is a trusted proxy: the first one is as close to the client as it gets
                return _ip_key(hops[0])
    return _ip_key(peer)


def _claim(claims: Any, path: str) -> Any:
    if path in claims:
        return claims[path]
    value = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def key_value(limit: RateLimit, ctx: RequestContext) -> str | None:
    """The text `limit` counts this request by, or None when the request has none (the missing bucket)."""
    kind = limit.key_kind
    if kind == "ip":
        return client_ip(ctx)
    name = limit.key_name
    assert name is not None
    if kind == "header":
        config = ctx.config
        if name in config.spoofable_headers and (name in config.forwarded_claim_headers or not config.server.is_trusted(ctx.request.client)):
            return None
        values = ctx.request.header_values(name)
        return ",".join(values) if values else None
    value = _claim(ctx.claims, name)
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def key_bytes(limit: RateLimit, value: str | None) -> bytes:
    """The whole key a store hashes: the limit's name, then the value or the missing bucket's marker
    (the memory store hashes `RateLimit.key_prefix` and the value without joining them)."""
    if value is None:
        return limit.missing_key
    return limit.key_prefix + value.encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------- store = "memory"


def create_instance_table(slots: int = DEFAULT_SLOTS) -> Path:
    """Creates this instance's table (in /dev/shm when there is one: memory, not disk) in a private
    directory removed at exit, and returns its path. Called by `gateway serve` before the workers
    start, which find it through ``$GATEWAY_RATE_TABLE``."""
    bases = ["/dev/shm", None] if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else [None]
    for base in bases:
        try:
            directory = tempfile.mkdtemp(prefix="gateway-limits-", dir=base)
        except OSError:
            continue
        atexit.register(shutil.rmtree, directory, True)
        path = Path(directory) / "table"
        try:
            _core.RateTable.create(str(path), slots, secrets.token_bytes(16))
        except OSError:
            continue  # /dev/shm full or too small: the temporary directory (the page cache holds it)
        return path
    raise OSError(f"cannot create the rate-limit table ({64 + 8 * slots} bytes) in /dev/shm or {tempfile.gettempdir()}")


class MemoryStore:
    """The instance's table, opened on first use in each worker."""

    def __init__(self) -> None:
        self._table: _core.RateTable | None = None

    @property
    def table(self) -> _core.RateTable:
        if self._table is None:
            path = os.environ.get(TABLE_ENV)
            if path:
                self._table = _core.RateTable.open(path)
            else:
                # Not under `gateway serve` (the app built in-process): a table of this process alone.
                log.info("no %s: rate limits with store = \"memory\" count in this process only", TABLE_ENV)
                self._table = _core.RateTable.open(create_instance_table())
        return self._table

    def check(self, limit: RateLimit, value: str | None) -> Decision:
        table = self._table or self.table
        if value is None:
            return table.check(limit.missing_key, None, limit.interval_us, limit.tolerance_us)
        return table.check(limit.key_prefix, value, limit.interval_us, limit.tolerance_us)


memory = MemoryStore()


# ---------------------------------------------------------------- store = "redis"

# KEYS[1]: the key; ARGV: interval and tolerance in microseconds. Returns {allowed, remaining,
# retry_after_us, reset_us}. The clock is the server's (TIME), so every instance reads the same one.
# Microseconds since 1970 (~1.8e15) are exact in Lua's doubles (up to 2^53).
GCRA_LUA = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local ahead = tat - now
if ahead > tolerance then
  return {0, 0, ahead - tolerance, ahead}
end
local nxt = tat + interval
local reset = nxt - now
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.floor(reset / 1000) + 1)
return {1, math.floor((tolerance + interval - reset) / interval), 0, reset}
"""
GCRA_SHA1 = hashlib.sha1(GCRA_LUA.encode()).hexdigest()  # EVALSHA's name for the script, as redis computes it


class RedisStore:
    """One redis server's limits: the pipelined connection (`gateway.redis_pipe`), and whether it is down."""

    def __init__(self, url: str):
        self.url = url
        self._pipe = RedisPipe(url, REDIS_TIMEOUT)
        self._down_until = 0.0
        self._down_since: float | None = None
        self._failures = 0

    async def _gcra(self, key: str, limit: RateLimit) -> Decision:
        reply = await self._pipe.call("EVALSHA", GCRA_SHA1, 1, key, limit.interval_us, limit.tolerance_us)
        if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
            # A restarted (or flushed) server has lost the script: load it once, then run it.
            loaded = await self._pipe.call("SCRIPT", "LOAD", GCRA_LUA)
            if isinstance(loaded, ReplyError):
                raise RedisUnavailable(f"SCRIPT LOAD refused: {loaded}")
            reply = await self._pipe.call("EVALSHA", GCRA_SHA1, 1, key, limit.interval_us, limit.tolerance_us)
        if isinstance(reply, ReplyError):
            # OOM, READONLY (a replica), BUSY, ...: the server cannot count now.
            raise RedisUnavailable(f"the script failed: {str(reply)[:200]}")
        return (bool(reply[0]), int(reply[1]), int(reply[2]), int(reply[3]))

    async def check(self, limit: RateLimit, value: str | None) -> Decision | None:
        now = time.monotonic()
        if now < self._down_until:
            self._failures += 1
            return None
        redis_key = f"gateway:rl:{limit.name}:{hashlib.blake2b(key_bytes(limit, value), digest_size=16).hexdigest()}"
        try:
            decision = await self._gcra(redis_key, limit)
        except RedisUnavailable as e:
            self._down_until = time.monotonic() + REDIS_DOWN_FOR
            self._failures += 1
            if self._down_since is None:
                self._down_since = now
                log.warning("rate limits: redis at %s cannot be reached (%s); on_store_error applies", _safe_url(self.url), e)
            return None
        if self._down_since is not None:
            log.warning("rate limits: redis at %s is back after %.1f s (%d checks answered by on_store_error)", _safe_url(self.url), now - self._down_since, self._failures)
            self._down_since = None
            self._failures = 0
        return decision


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    head, at, tail = url.rpartition("@")
    return (head.split("//", 1)[0] + "//***@" + tail) if at else url


_redis_stores: dict[str, RedisStore] = {}


def redis_store(url: str) -> RedisStore:
    store = _redis_stores.get(url)
    if store is None:
        store = _redis_stores[url] = RedisStore(url)
    return store


# ---------------------------------------------------------------- checking a route's limits


def _ceil_seconds(us: int) -> int:
    return max(1, math.ceil(us / 1_000_000))


def limited_answer(limit: RateLimit, decision: Decision) -> Answer:
    """429 with Retry-After (RFC 9110 §10.2.3) and the RateLimit-Policy / RateLimit fields of
    draft-ietf-httpapi-ratelimit-headers-10 (§3, §4: structured-field lists of one item named after
    the limit; ``q`` the count per window ``w`` seconds, ``r`` remaining, ``t`` seconds until a request
    passes again)."""
    wait = _ceil_seconds(decision[2])
    return respond.error(
        "rate_limited",
        f"over the rate limit {limit.name}; retry in {wait} s",
        headers=[
            (b"retry-after", str(wait).encode()),
            (b"ratelimit-policy", limit.policy_header),
            (b"ratelimit", f'"{limit.name}";r=0;t={wait}'.encode()),
        ],
    )


def store_error_answer(limit: RateLimit) -> Answer:
    wait = _ceil_seconds(int(REDIS_DOWN_FOR * 1_000_000))
    return respond.error("rate_limit_unavailable", f"the rate limit {limit.name} cannot be checked now", headers=[(b"retry-after", str(wait).encode())])


def _describe_key(limit: RateLimit, ctx: RequestContext, value: str | None) -> str:
    if limit.key_kind == "ip":
        return f"ip {value}"
    # Never the value itself: a header or claim may be an API key or a token.
    what = f"{limit.key_kind} {limit.key_name}"
    return f"{what} (present)" if value is not None else f"{what} (absent: the shared missing bucket)"


async def check(ctx: RequestContext, limits: tuple[RateLimit, ...], stage: str) -> Answer | None:
    """Checks `limits` in order for this request; the 429 (or 503) of the first that refuses."""
    if ctx.dry_run:
        if ctx.trace is not None:
            for limit in limits:
                ctx.note(stage, f"{limit.describe()}: applies to {_describe_key(limit, ctx, key_value(limit, ctx))}; not counted (dry run)")
        return None
    for limit in limits:
        value = key_value(limit, ctx)
        if limit.in_memory:
            table = memory._table or memory.table
            decision: Decision | None = (
                table.check(limit.key_prefix, value, limit.interval_us, limit.tolerance_us)
                if value is not None
                else table.check(limit.missing_key, None, limit.interval_us, limit.tolerance_us)
            )
        else:
            decision = await redis_store(limit.redis or "").check(limit, value)
        if decision is None:
            if limit.on_store_error == "deny":
                ctx.rate_limit = (limit.name, "store_error_denied")
                return store_error_answer(limit)
            ctx.rate_limit = (limit.name, "store_error_allowed")
            continue
        if not decision[0]:
            ctx.rate_limit = (limit.name, "limited")
            return limited_answer(limit, decision)
        # A request let through by on_store_error keeps saying so, whatever later limits decide.
        if ctx.rate_limit is None or ctx.rate_limit[1] != "store_error_allowed":
            ctx.rate_limit = (limit.name, "allowed")
    return None
