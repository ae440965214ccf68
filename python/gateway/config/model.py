"""What a loaded gateway.toml is: immutable objects, built once by ``gateway.config.loader``.

Everything is frozen so a config can be shared by every request (and swapped whole on reload)
without anyone changing it underneath. Values derived from a config are computed once, when the
object is built, and live on the object they derive from — never in a module-level cache keyed by
``id()``, which is reused after a reload.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import _core
from gateway.template import Template

if TYPE_CHECKING:
    from gateway.claim_rules import ClaimRules
    from gateway.cors import CorsPolicy
    from gateway.hooks.loader import HooksConfig, RouteHooks

# Headers a client may never set towards an origin, whatever the route says.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate"}
)

# Never forwarded from the client: hop-by-hop headers, and the forwarding headers the gateway writes
# itself. Expect was answered by the server already; the origin gets the body straight away.
FORWARDING_HEADERS = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip"})
NEVER_FORWARDED = frozenset(HOP_BY_HOP | FORWARDING_HEADERS | {"expect"})

# Headers the gateway manages itself: a route's request_headers and an auth policy's forward_claims
# may not name them (forwarded-claim headers are removed from every request, so `sub = "Cookie"`
# would strip every visitor's cookies everywhere).
MANAGED_HEADERS = frozenset(NEVER_FORWARDED | {"host", "content-length", "cookie", "authorization"})

# W3C Trace Context's request headers (https://www.w3.org/TR/trace-context/#trace-context-http-headers-format).
TRACE_HEADERS = frozenset({"traceparent", "tracestate"})

# Peers remembered per Server: the same few proxies and load balancers repeat, while a flood of
# distinct client addresses must not grow the cache without bound.
TRUST_CACHE_MAX = 4096


@dataclass(frozen=True, slots=True)
class Origin:
    name: str
    url: str
    host: str  # as in the URL: an IPv6 address keeps its brackets
    port: int
    base_path: str
    timeout: float
    scheme: str = "http"
    # "client" (the Host the client sent), "origin" (the URL's host[:port]) or a literal host; the
    # default is "client" for http:// origins (what the gateway always did) and "origin" for
    # https:// ones, whose certificate and virtual host are the URL's name.
    host_header: str = "client"
    # https:// only: the TLS settings and the origin's own connection pool (gateway.config.origins).
    tls: _core.OriginTls | None = None
    sni: str | None = None
    tls_verify: bool = True
    http2: str = "auto"
    # The same TLS settings for the WebSocket leg, which runs on asyncio: (ca_file, client_cert,
    # client_key paths, tls_verify); its SSLContext is made on first use (gateway.proxy.websocket).
    ws_tls: tuple[str | None, str | None, str | None, bool] | None = field(default=None, repr=False, compare=False)
    # Derived: the URL's host[:port] (the port only when it is not the scheme's default), and the
    # Host the origin is sent when it does not depend on the request (None for "client").
    authority: str = field(init=False, repr=False, compare=False)
    fixed_host: str | None = field(init=False, repr=False, compare=False)
    # the scheme and address every request URL to this origin starts with (before the base path)
    address: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        default_port = 443 if self.scheme == "https" else 80
        authority = self.host if self.port == default_port else f"{self.host}:{self.port}"
        object.__setattr__(self, "authority", authority)
        fixed = None if self.host_header == "client" else authority if self.host_header == "origin" else self.host_header
        object.__setattr__(self, "fixed_host", fixed)
        object.__setattr__(self, "address", f"{self.scheme}://{self.host}:{self.port}")

    def host_for(self, client_host: str | None) -> str:
        """The Host the origin is sent for a request whose Host header is ``client_host``."""
        if self.fixed_host is not None:
            return self.fixed_host
        return client_host if client_host else self.authority


@dataclass(frozen=True, slots=True)
class AuthAction:
    redirect: str | None = None
    status: int | None = None
    clear_cookie: str | None = None
    # On a redirect action: the status a request that prefers JSON gets instead of the 302 (see
    # gateway.accept); None (`api_status = false`) redirects everyone.
    api_status: int | None = 401


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    name: str
    verifier: _core.Verifier
    token_from: tuple[tuple[str, str], ...]
    on_missing: AuthAction
    on_invalid: AuthAction
    forward_claims: dict[str, str]
    # keys / jwks_url / discovery (gateway.key_sources.KeySource); None for a shared secret.
    key_source: Any = None
    # Derived: what explain and the access log say when no source held a token.
    missing_reason: str = field(init=False, repr=False, compare=False)
    # the "query:NAME" sources' names: removed from the query the origin is sent.
    query_params: frozenset[str] = field(init=False, repr=False, compare=False)
    # whether "subprotocol" is a source: its bearer. entries are then removed from what is forwarded.
    reads_subprotocol: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "query_params", frozenset(n for k, n in self.token_from if k == "query"))
        object.__setattr__(self, "reads_subprotocol", any(k == "subprotocol" for k, _ in self.token_from))
        reason = "no token in " + ", ".join(f"{k}:{n}" if k not in ("bearer", "subprotocol") else k for k, n in self.token_from)
        object.__setattr__(self, "missing_reason", reason)


@dataclass(frozen=True, slots=True)
class Locale:
    country_header: str | None
    default_country: str
    countries: dict[str, str]
    languages: dict[str, str]


@dataclass(frozen=True, slots=True)
class Experiment:
    name: str
    cookie: str
    variants: tuple[str, ...]
    weights: tuple[float, ...]
    max_age: int
    header: str | None
    # Derived: for random.choices(cum_weights=...), which then skips summing the weights on every draw.
    cum_weights: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cum_weights", tuple(itertools.accumulate(self.weights)))


@dataclass(frozen=True, slots=True)
class KVConfig:
    name: str
    backend: str
    path: Path | None = None
    url: str | None = None
    cache_ttl: float = 5.0
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A ``[limits.NAME]`` table: GCRA over ``count`` requests per ``period`` seconds with ``burst``.

    ``key_kind`` is "ip" (the trusted-proxy-aware client address), "header" or "claim"; ``key_name``
    is the header (lower-case) or the claim's dotted path. Claim keys are checked after auth, the
    others before it (`gateway.stages.limits`, `gateway.stages.claim_limits`).
    """

    name: str
    key_kind: str
    key_name: str | None
    count: int
    period: int  # seconds: 1, 60 or 3600
    burst: int
    store: str  # "memory" | "redis"
    redis: str | None = None
    on_store_error: str = "allow"  # "allow" | "deny"
    # Derived, for the stores: the emission interval T = period / count and the tolerance burst * T,
    # in microseconds (GCRA); the fixed text of the RateLimit-Policy header (draft-ietf-httpapi-
    # ratelimit-headers-10: the policy's name, q = count, w = period in seconds).
    interval_us: int = field(init=False, repr=False, compare=False)
    tolerance_us: int = field(init=False, repr=False, compare=False)
    policy_header: bytes = field(init=False, repr=False, compare=False)
    # What a store hashes, before the key's value: the limit's name, its rate and burst (as interval
    # and tolerance), and a marker, one for a request with a value ("NAME\0I/T\0v" + value) and one
    # for the shared bucket of those without ("NAME\0I/T\0m"). With the rate in the key, a reload
    # that changes it starts fresh counts: GCRA state is a time computed under the old rate, so a
    # client refused under 1/h would otherwise stay refused for the rest of that hour after the
    # limit was raised to 100/m.
    key_prefix: bytes = field(init=False, repr=False, compare=False)
    missing_key: bytes = field(init=False, repr=False, compare=False)
    in_memory: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        interval = max(1, round(self.period * 1_000_000 / self.count))
        identity = f"{self.name}\x00{interval}/{interval * self.burst}\x00".encode()
        object.__setattr__(self, "key_prefix", identity + b"v")
        object.__setattr__(self, "missing_key", identity + b"m")
        object.__setattr__(self, "in_memory", self.store == "memory")
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "tolerance_us", interval * self.burst)
        object.__setattr__(self, "policy_header", f'"{self.name}";q={self.count};w={self.period}'.encode())

    @property
    def after_auth(self) -> bool:
        return self.key_kind == "claim"

    def describe(self) -> str:
        key = self.key_kind if self.key_name is None else f"{self.key_kind}:{self.key_name}"
        unit = {1: "s", 60: "m", 3600: "h"}[self.period]
        return f"{self.name} ({self.count}/{unit}, burst {self.burst}, key {key}, store {self.store})"


@dataclass(frozen=True, slots=True)
class Condition:
    type: str  # header | cookie | query | host
    key: str
    value: _core.LinearRegex | None  # the whole value must match (linear time: the value is the client's)
    source: str

    def describe(self) -> str:
        return self.source


def header_key(name: str) -> str:
    """A header name as origins read it: case-insensitive (RFC 9110 §5.1), and with ``_`` read as ``-``
    (CGI, WSGI and Rack turn both into HTTP_X_USER_ID), so two spellings of one name compare equal."""
    return name.lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class Route:
    index: int
    match: list[str]
    origin: str
    methods: frozenset[str] | None = None
    # Normalized at load like the request's host name (lower-case, no trailing dot, never a port),
    # so the two compare with ==.
    host: str | None = None
    has: list[Condition] = field(default_factory=list)
    missing: list[Condition] = field(default_factory=list)
    auth: str | None = None
    max_body: int | None = None
    locale: bool = False
    experiment: str | None = None
    response_headers: list[tuple[str, Template]] = field(default_factory=list)
    request_headers: list[tuple[str, Template]] = field(default_factory=list)
    timeout: float | None = None
    cors: str | None = None  # a key of Config.cors
    require: ClaimRules | None = None
    # WebSockets (gateway.proxy.websocket): whether an upgrade is proxied on this route, how long a
    # session may pass no message either way, and the largest message either side may send (bytes).
    websocket: bool = True
    ws_idle_timeout: float = 3600.0
    ws_max_message: int = 1_000_000  # "1MB"
    # The Python hooks it lists, resolved by stage (gateway.hooks.loader); None when it lists none.
    hooks: RouteHooks | None = None
    # Names of [limits.*] tables, checked in this order.
    rate_limit: tuple[str, ...] = ()

    # Derived: what logs, metrics and spans call the route (its patterns, joined).
    pattern: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", " | ".join(self.match))

    def label(self) -> str:
        return self.pattern


@dataclass(frozen=True, slots=True)
class Server:
    listen: str = "127.0.0.1:8080"
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    access_log: bool = True
    max_body: int = 10 * 2**20
    max_header_bytes: int = 32 * 2**10
    # Read once at start (a reload does not change them): Granian's runtime mode ("auto", "st"
    # single-threaded or "mt" multi-threaded per worker), and the threads of the core's upstream I/O
    # runtime in each worker.
    runtime_mode: str = "auto"
    io_threads: int = 1
    # The listener (read once at start): TLS certificate chain and key (PEM files; both or neither),
    # HTTP/2 by ALPN on TLS and with prior knowledge (h2c) on plain TCP, and how long a SIGTERM waits
    # for in-flight requests before the workers are killed (seconds).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    http2: bool = True
    drain_timeout: float = 30.0
    # Observability (README "Observability"): the Prometheus listener's HOST:PORT (read at start;
    # None = no metrics), the request-id header name as configured (None = off), W3C trace context on
    # or off, and the OTLP/HTTP traces URL spans are exported to (read at start; None = no export).
    metrics_listen: str | None = None
    request_id: str | None = None
    trace: bool = False
    otlp_endpoint: str | None = None
    # peer address -> verdict. It lives on this (frozen) object, so a reload, which builds a new
    # Server, starts with an empty cache: a cache keyed by id(config) handed a reloaded config the
    # verdicts of an old one whose id it reused.
    _trust_cache: dict[str, bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    # Derived: the request-id header's wire name (lower-case bytes), for the responses it is echoed on,
    # and its `header_key` (what any other copy of it is known by).
    request_id_wire: bytes = field(init=False, repr=False, compare=False)  # b"" when off
    request_id_key: str = field(init=False, repr=False, compare=False)  # "" when off

    # Derived: the `header_key`s of the request headers the correlation stage sets.
    correlation_headers: frozenset[str] = field(init=False, repr=False, compare=False)
    # Derived: the core's half of the correlation stage (its common case in one call); None when
    # request_id and trace are both off.
    correlation: _core.Correlation | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = {header_key(self.request_id)} if self.request_id else set()
        if self.trace:
            names |= TRACE_HEADERS
        object.__setattr__(self, "correlation_headers", frozenset(names))
        object.__setattr__(self, "request_id_key", header_key(self.request_id) if self.request_id else "")
        object.__setattr__(self, "request_id_wire", self.request_id.lower().encode("ascii") if self.request_id else b"")
        on = self.request_id is not None or self.trace
        object.__setattr__(self, "correlation", _core.Correlation(self.request_id, self.trace, self.otlp_endpoint is not None) if on else None)

    def is_request_id(self, name: str) -> bool:
        """Whether header `name`, in any spelling (`header_key`), is the request id the gateway echoes."""
        return bool(self.request_id_key) and header_key(name) == self.request_id_key

    def is_trusted(self, peer: str | None) -> bool:
        """Whether ``peer`` (the client address of the connection) is one of ``trusted_proxies``,
        whose forwarded and geo headers the gateway believes."""
        if not peer or not self.trusted_proxies:
            return False
        hit = self._trust_cache.get(peer)
        if hit is not None:
            return hit
        # Parsing an address costs microseconds; hence the cache.
        try:
            ip = ipaddress.ip_address(peer)
            # On a dual-stack listener ([::]) an IPv4 proxy arrives as ::ffff:a.b.c.d.
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            trusted = any(ip in net for net in self.trusted_proxies)
        except ValueError:
            trusted = False
        if len(self._trust_cache) >= TRUST_CACHE_MAX:
            self._trust_cache.clear()
        self._trust_cache[peer] = trusted
        return trusted


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    server: Server
    origins: dict[str, Origin]
    auth: dict[str, AuthPolicy]
    locale: Locale | None
    experiments: dict[str, Experiment]
    kv: dict[str, KVConfig]
    routes: list[Route]
    route_set: _core.RouteSet
    # What probably does not do what its author meant, in the problems' FILE: key: what (expected)
    # form; printed by `gateway check` and at serve start, never a reason not to serve.
    warnings: tuple[str, ...] = ()
    cors: dict[str, CorsPolicy] = field(default_factory=dict)
    # [hooks]: the imported module's hooks, the timeout and on_error (None without the table).
    hooks: HooksConfig | None = None
    limits: dict[str, RateLimit] = field(default_factory=dict)
    # Derived, computed once here:
    # headers that carry verified claims, so a client's own copies are removed on every route;
    forwarded_claim_headers: frozenset[str] = field(init=False, repr=False, compare=False)
    # whether any route tests the query string: if none does, the query is never parsed;
    query_conditions: bool = field(init=False, repr=False, compare=False)
    # the locale prefixes (lower-case, as the locale stage compares the path lower-cased), as a set and
    # each with its "/", so a path already under one is not prefixed again: one `in`, one `startswith`;
    locale_prefix_set: frozenset[str] = field(init=False, repr=False, compare=False)
    locale_prefix_dirs: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # per route index, the lower-case names of the client's request headers never forwarded on it,
    # as (for an untrusted peer, for a trusted one): NEVER_FORWARDED, every forwarded-claim header,
    # the headers the route sets itself, and the geo header unless the peer is trusted.
    forward_drop: tuple[tuple[_core.HeaderNames, _core.HeaderNames], ...] = field(init=False, repr=False, compare=False)
    # request headers whose client value a route condition may only believe from a trusted peer
    # (the forwarding headers, the geo header) or never (the forwarded-claim headers).
    spoofable_headers: frozenset[str] = field(init=False, repr=False, compare=False)
    # the routes whose templates use {params.*}: only those pay for capturing path parameters.
    param_routes: frozenset[int] = field(init=False, repr=False, compare=False)
    # the client headers a hook's snapshot leaves out, (for an untrusted peer, for a trusted one).
    hook_hidden_headers: tuple[_core.HeaderNames, _core.HeaderNames] = field(init=False, repr=False, compare=False)
    # per route index, its rate limits as (checked before auth, checked after auth: the claim keys).
    route_limits: tuple[tuple[tuple[RateLimit, ...], tuple[RateLimit, ...]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        forwarded = frozenset(h.lower() for p in self.auth.values() for h in p.forward_claims.values())
        prefixes: frozenset[str] = frozenset()
        if self.locale:
            prefixes = frozenset(p.lower() for p in (*self.locale.countries.values(), *self.locale.languages.values()))
        query = any(cond.type == "query" for r in self.routes for cond in (*r.has, *r.missing))
        object.__setattr__(self, "forwarded_claim_headers", forwarded)
        object.__setattr__(self, "locale_prefix_set", prefixes)
        object.__setattr__(self, "locale_prefix_dirs", tuple(sorted(p + "/" for p in prefixes)))
        object.__setattr__(self, "query_conditions", query)
        geo = frozenset({self.locale.country_header}) if self.locale and self.locale.country_header else frozenset()
        drops = []
        for r in self.routes:
            sets = {name.lower() for name, _ in r.request_headers}
            exp = self.experiments.get(r.experiment) if r.experiment else None
            if exp is not None and exp.header:
                sets.add(exp.header.lower())
            # The request id and the trace context headers the correlation stage sets: a client's
            # copies are never forwarded as they came (the stage decides what is kept).
            trusted = NEVER_FORWARDED | forwarded | sets | self.server.correlation_headers
            origin = self.origins.get(r.origin)
            if origin is not None and (origin.scheme == "https" or origin.fixed_host is not None):
                # The gateway writes Host itself (gateway.stages.proxy): the client's is not sent.
                trusted = trusted | {"host"}
            drops.append((_core.HeaderNames(trusted | geo), _core.HeaderNames(trusted)))
        object.__setattr__(self, "forward_drop", tuple(drops))
        object.__setattr__(self, "spoofable_headers", FORWARDING_HEADERS | geo | forwarded)
        uses_params = frozenset(r.index for r in self.routes if any("params" in t.kinds for _, t in (*r.request_headers, *r.response_headers)))
        object.__setattr__(self, "param_routes", uses_params)
        from gateway.hooks.runner import hidden_headers

        object.__setattr__(self, "hook_hidden_headers", hidden_headers(forwarded, geo))
        by_route = []
        for r in self.routes:
            named = [self.limits[n] for n in r.rate_limit if n in self.limits]
            by_route.append((tuple(x for x in named if not x.after_auth), tuple(x for x in named if x.after_auth)))
        object.__setattr__(self, "route_limits", tuple(by_route))
