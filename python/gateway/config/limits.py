"""Reading ``[limits.NAME]`` tables (rate limits) out of gateway.toml.

```toml
[limits.per_ip]
key = "ip"                 # "ip" | "header:NAME" | "claim:NAME" (a dotted path into the claims)
rate = "100/m"             # N per s, m or h
burst = 20                 # requests allowed at once above the steady rate (0 or more)
store = "memory"           # "memory" (one count per instance) | "redis" (one count for every instance)
redis = "redis://127.0.0.1:6379/0"   # store = "redis" only
on_store_error = "allow"   # store = "redis" only: "allow" | "deny" when redis cannot be reached
```
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from gateway.config.model import RateLimit
from gateway.config.problems import Problems

LIMIT_KEYS = {"key", "rate", "burst", "store", "redis", "on_store_error"}
LIMIT_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
RATE_RE = re.compile(r"^\s*(\d{1,9})\s*/\s*(s|m|h)\s*$")
PERIODS = {"s": 1, "m": 60, "h": 3600}
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
CLAIM_PATH_RE = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
# At most a million a second: the GCRA interval is counted in whole microseconds.
MAX_PER_SECOND = 1_000_000
# A burst so large that the table's 48-bit times (or redis's doubles) could not hold the horizon
# is a typo, not a policy: refill at most 30 days ahead.
MAX_HORIZON_US = 30 * 86400 * 1_000_000
RATE_EXPECTED = 'expected "N/s", "N/m" or "N/h" such as "100/m", N at least 1'
KEY_EXPECTED = 'expected "ip", "header:NAME" or "claim:NAME" (a claim may be a dotted path such as "org.id")'


def load_limits(c: Problems, doc: dict[str, Any]) -> dict[str, RateLimit]:
    limits: dict[str, RateLimit] = {}
    for name, ld in c.table(doc.get("limits"), "limits").items():
        key = f"limits.{name}"
        if not LIMIT_NAME_RE.match(name):
            # The name is sent in the RateLimit-Policy header as a quoted string.
            c.bad(key, f"{name!r} is not a usable limit name", "expected 1 to 64 letters, digits, _ . -")
            continue
        ld = c.table(ld, key)
        c.known(ld, key, LIMIT_KEYS)
        kind, key_name = _key(c, f"{key}.key", ld.get("key"))
        count, period = _rate(c, f"{key}.rate", ld.get("rate"))
        burst = ld.get("burst", 0)
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
            c.bad(f"{key}.burst", f"is {burst!r}", "expected a whole number of requests, 0 or more")
            burst = None
        store = ld.get("store", "memory")
        if store not in ("memory", "redis"):
            c.bad(f"{key}.store", f"is {store!r}", 'expected "memory" (one count per instance) or "redis" (one count shared by every instance)')
            store = None
        redis_url = ld.get("redis")
        on_error = ld.get("on_store_error", "allow")
        if on_error not in ("allow", "deny"):
            c.bad(f"{key}.on_store_error", f"is {on_error!r}", 'expected "allow" or "deny" (what to do when redis cannot be reached)')
            on_error = None
        if store == "redis":
            redis_url = _redis_url(c, f"{key}.redis", redis_url)
        elif store == "memory":
            # Allowed (the issue's own example sets them beside store = "memory", ready to switch),
            # but said: they do nothing until store = "redis".
            for extra in ("redis", "on_store_error"):
                if extra in ld:
                    c.warn(f"{key}.{extra}", 'is set but store is "memory", so it is not used', 'store = "redis" to count in redis')
            if "redis" in ld:
                _redis_url(c, f"{key}.redis", redis_url)
        if kind is None or count is None or period is None or burst is None or store is None or on_error is None or (store == "redis" and redis_url is None):
            continue
        limit = RateLimit(name, kind, key_name, count, period, burst, store, redis_url if store == "redis" else None, on_error)
        if limit.tolerance_us + limit.interval_us > MAX_HORIZON_US:
            c.bad(f"{key}.burst", f"{burst} at {count}/{ {1: 's', 60: 'm', 3600: 'h'}[period]} takes longer than 30 days to refill", "expected a smaller burst")
            continue
        limits[name] = limit
    return limits


def _key(c: Problems, key: str, value: Any) -> tuple[str | None, str | None]:
    if value is None:
        c.bad(key, "is missing", KEY_EXPECTED)
        return None, None
    if value == "ip":
        return "ip", None
    if isinstance(value, str) and value.startswith("header:"):
        name = value[7:]
        if HEADER_NAME_RE.match(name):
            return "header", name.lower()
    elif isinstance(value, str) and value.startswith("claim:"):
        path = value[6:]
        if CLAIM_PATH_RE.match(path):
            return "claim", path
    c.bad(key, f"is {value!r}", KEY_EXPECTED)
    return None, None


def _rate(c: Problems, key: str, value: Any) -> tuple[int | None, int | None]:
    m = RATE_RE.match(value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) < 1:
        c.bad(key, "is missing" if value is None else f"is {value!r}", RATE_EXPECTED)
        return None, None
    count, period = int(m.group(1)), PERIODS[m.group(2)]
    if count > MAX_PER_SECOND * period:
        c.bad(key, f"is {value!r}, over {MAX_PER_SECOND} a second", "expected a lower rate")
        return None, None
    return count, period


def _redis_url(c: Problems, key: str, value: Any) -> str | None:
    expected = 'expected "redis://HOST:PORT/DB" (or rediss:// for TLS, unix:///PATH for a socket)'
    if value is None:
        c.bad(key, 'is missing but store is "redis"', expected)
        return None
    if not isinstance(value, str):
        c.bad(key, f"is {value!r}", expected)
        return None
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        parts, port = None, None
    ok = parts is not None and (
        (parts.scheme in ("redis", "rediss") and bool(parts.hostname) and (port is None or 0 < port < 65536) and re.fullmatch(r"/?\d*", parts.path or "") is not None)
        or (parts.scheme == "unix" and bool(parts.path))
    )
    if not ok:
        # The URL may hold a password: say what is wrong without echoing it.
        shown = re.sub(r"//[^@/]*@", "//***@", value)
        c.bad(key, f"is {shown!r}", expected)
        return None
    return value
