"""CORS (the Fetch standard's CORS protocol, https://fetch.spec.whatwg.org/#http-cors-protocol):
``[cors.NAME]`` policies, origin matching, and the one place CORS headers join a response.

A route names a policy with ``cors = "NAME"``; `gateway.stages.cors` decides per request with what
is here, and `merge_headers` adds the decision to whatever answers — the origin's response
(`gateway.proxy.http`) or the gateway's own (`gateway.respond.send_answer`).

Origins are compared as browsers serialize them (RFC 6454 §6.2, the Fetch standard's "serialization
of an origin"): ``scheme://host`` or ``scheme://host:port``, lower-case, no path, no trailing slash,
the port only when it is not the scheme's default. An ``Origin`` header in any other form (upper
case, a default port written out, a path, ``null``, several values, non-ASCII) is matched by
nothing: no browser sends it, so it can only come from a client that CORS does not constrain anyway,
and refusing it leaves no room for a lenient parser to be talked into a match. Configured origins
are normalized to that form when the config is loaded.

Entries of ``origins``:

- ``"https://app.example.com"`` (and ``"http://localhost:3000"``): that origin exactly.
- ``"https://*.example.com"``: any origin of that scheme (and port: none unless written) whose host
  is one or more labels followed by ``.example.com`` — ``a.example.com``, ``a.b.example.com``; never
  ``example.com`` itself, ``evil-example.com``, ``example.com.evil.com`` or ``a.example.com.`` (a
  trailing dot is another origin to a browser).
- ``"*"``: any origin (``Access-Control-Allow-Origin: *``); refused with ``credentials = true``, as
  browsers refuse it too.

``"null"`` is refused: sandboxed iframes, ``data:`` documents and some redirects all send ``Origin:
null``, so allowing it would allow any page that can make one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.config.problems import Problems

HeaderList = list[tuple[bytes, bytes]]

# Longer Origin values are matched by nothing (a host name is at most 253 characters).
MAX_ORIGIN_LENGTH = 512
# A preflight naming more headers than this, or a longer Access-Control-Request-Headers, is refused.
MAX_REQUEST_HEADERS = 64
MAX_REQUEST_HEADERS_LENGTH = 4096
DEFAULT_METHODS = ("GET", "HEAD", "POST")
DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}

# RFC 9110 §5.6.2 token: header names and methods.
TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A browser's serialization of a tuple origin: lower-case scheme and host (a DNS name, an IPv4
# address or a bracketed IPv6 address), an optional port without leading zeros.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
SERIALIZED_ORIGIN_RE = re.compile(rf"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::(?P<port>[1-9][0-9]{{0,4}}))?")
# What a config entry may look like before normalization: any case, optionally "*." before the host.
CONFIG_ORIGIN_RE = re.compile(
    rf"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<wild>\*\.)?(?P<host>{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?", re.IGNORECASE
)
ORIGIN_EXPECTED = 'expected an origin such as "https://app.example.com", "http://localhost:3000", "https://*.example.com" or "*"'

VARY_ORIGIN: HeaderList = [(b"vary", b"Origin")]
# A preflight's answer depends on these request headers too (Fetch §3.2.5's CORS-preflight cache).
VARY_PREFLIGHT: HeaderList = [(b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers")]


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """One ``[cors.NAME]`` table. ``origins`` is the normalized exact set, ``wildcards`` the
    ``(scheme, ".suffix", port or "")`` of each ``*.`` entry, ``any_origin`` whether ``"*"`` is
    listed; ``headers`` lower-case names (``any_header`` when ``"*"`` is listed); ``max_age`` whole
    seconds or None (no ``Access-Control-Max-Age``, the browser's default of 5 s)."""

    name: str
    origins: frozenset[str]
    wildcards: tuple[tuple[str, str, str], ...]
    any_origin: bool
    methods: tuple[str, ...]
    headers: frozenset[str]
    any_header: bool
    expose: tuple[str, ...]
    credentials: bool
    max_age: int | None
    # Derived, computed once: the response headers that do not depend on the request.
    _common: HeaderList = field(init=False, repr=False, compare=False)  # ACAC on both kinds
    _actual: HeaderList = field(init=False, repr=False, compare=False)  # + Expose-Headers, Vary
    _preflight: HeaderList = field(init=False, repr=False, compare=False)  # + Allow-Methods, Max-Age, Vary
    _allow_headers: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        common: HeaderList = [(b"access-control-allow-credentials", b"true")] if self.credentials else []
        actual = list(common)
        if self.expose:
            actual.append((b"access-control-expose-headers", ", ".join(self.expose).encode()))
        actual += VARY_ORIGIN
        preflight = [*common, (b"access-control-allow-methods", ", ".join(self.methods).encode())]
        if self.max_age is not None:
            preflight.append((b"access-control-max-age", str(self.max_age).encode()))
        preflight += VARY_PREFLIGHT
        object.__setattr__(self, "_common", common)
        object.__setattr__(self, "_actual", actual)
        object.__setattr__(self, "_preflight", preflight)
        object.__setattr__(self, "_allow_headers", ", ".join(sorted(self.headers)).encode())

    def allows_origin(self, origin: str) -> bool:
        """Whether ``origin`` (an ``Origin`` header's text) is allowed: see the module docstring."""
        if self.any_origin:
            return True
        if origin in self.origins:
            # The exact set holds serialized origins only, so a hit is one already.
            return True
        if not self.wildcards or len(origin) > MAX_ORIGIN_LENGTH:
            return False
        m = SERIALIZED_ORIGIN_RE.fullmatch(origin)
        if m is None:
            return False
        scheme, host, port = m.group("scheme"), m.group("host"), m.group("port") or ""
        for w_scheme, suffix, w_port in self.wildcards:
            # The suffix starts with ".", and the regex made the host whole labels: so a match is
            # one or more labels, a dot, then the configured domain — and nothing else.
            if scheme == w_scheme and port == w_port and len(host) > len(suffix) and host.endswith(suffix):
                return True
        return False

    def _allow_origin(self, origin: str) -> HeaderList:
        # "*" only without credentials (refused at load otherwise): a shared, cacheable answer.
        return [(b"access-control-allow-origin", b"*" if self.any_origin else origin.encode("latin-1"))]

    def actual_headers(self, origin: str) -> HeaderList:
        """What a response to an allowed origin's actual (non-preflight) request carries."""
        return self._allow_origin(origin) + self._actual

    def preflight_headers(self, origin: str, requested: list[str]) -> HeaderList:
        """What an allowed preflight's 204 carries; ``requested`` are the names it asked for."""
        out = self._allow_origin(origin) + self._preflight
        if self.any_header:
            if requested:
                out.insert(1, (b"access-control-allow-headers", ", ".join(requested).encode()))
        elif self.headers:
            out.insert(1, (b"access-control-allow-headers", self._allow_headers))
        return out

    def refuse_preflight(self, method: str, requested: list[str]) -> str | None:
        """Why a preflight for an allowed origin is refused (method or headers), or None."""
        if method not in self.methods:
            return f"the method {method} is not in this policy's methods"
        if not self.any_header:
            for name in requested:
                if name not in self.headers:
                    return f"the header {name} is not in this policy's headers"
        return None

    def describe(self) -> str:
        entries = sorted(self.origins) + [f"{s}://*{sfx}" + (f":{p}" if p else "") for s, sfx, p in self.wildcards] + (["*"] if self.any_origin else [])
        return f"{self.name} (origins {', '.join(entries)})"


def requested_headers(values: list[str]) -> list[str] | None:
    """The names in Access-Control-Request-Headers (lower-case, in order), or None when they are
    not a list of header names or over the bounds (`MAX_REQUEST_HEADERS`, `MAX_REQUEST_HEADERS_LENGTH`)."""
    text = ",".join(values)
    if len(text) > MAX_REQUEST_HEADERS_LENGTH:
        return None
    names = [n.strip().lower() for n in text.split(",")]
    names = [n for n in names if n]
    if len(names) > MAX_REQUEST_HEADERS or not all(TOKEN_RE.fullmatch(n) for n in names):
        return None
    return names


def merge_headers(headers: HeaderList, cors: Sequence[tuple[bytes, bytes]]) -> HeaderList:
    """``headers`` (a response's, lower-case names) with the CORS decision ``cors`` added: any
    ``Access-Control-*`` header already there is dropped — on a route with ``cors`` the gateway is
    the only source of them, so an origin's own CORS middleware cannot add a second, conflicting
    ``Access-Control-Allow-Origin`` (browsers refuse two) — and ``Vary`` becomes one field holding the
    existing values plus the new ones (RFC 9110 §12.5.5; ``*`` already varies on everything)."""
    out: HeaderList = []
    vary: list[bytes] = []
    for k, v in headers:
        if k.startswith(b"access-control-"):
            continue
        if k == b"vary":
            vary.extend(t.strip() for t in v.split(b",") if t.strip())
            continue
        out.append((k, v))
    for k, v in cors:
        if k == b"vary":
            have = {t.lower() for t in vary}
            if b"*" not in have:
                vary.extend(t for t in (x.strip() for x in v.split(b",")) if t.lower() not in have)
        else:
            out.append((k, v))
    if vary:
        out.append((b"vary", b", ".join(vary)))
    return out


# The gateway's own answers carry these, and none is CORS-safelisted (Fetch §3.2.4 lists only
# Cache-Control, Content-Language, Content-Length, Content-Type, Expires, Last-Modified, Pragma): a
# page's fetch() could see a 429 or a 401 but not read Retry-After, RateLimit or WWW-Authenticate.
GATEWAY_ANSWER_HEADERS = (b"retry-after", b"ratelimit-policy", b"ratelimit", b"www-authenticate")


def expose_answer_headers(cors: Sequence[tuple[bytes, bytes]], answer_headers: Sequence[tuple[bytes, bytes]]) -> Sequence[tuple[bytes, bytes]]:
    """``cors`` (a CORS decision) with ``Access-Control-Expose-Headers`` also naming those of
    `GATEWAY_ANSWER_HEADERS` that ``answer_headers`` (the gateway's own answer) holds — only when the
    origin is allowed (``Access-Control-Allow-Origin`` is in ``cors``); otherwise ``cors`` as it is."""
    names = [n for n in GATEWAY_ANSWER_HEADERS if any(k == n for k, _ in answer_headers)]
    if not names or not any(k == b"access-control-allow-origin" for k, _ in cors):
        return cors
    out: HeaderList = []
    done = False
    for k, v in cors:
        if k == b"access-control-expose-headers":
            have = {t.strip().lower() for t in v.split(b",")}
            extra = [n for n in names if n not in have]
            if extra and b"*" not in have:  # "*" (without credentials) exposes them all already
                v = b", ".join([v, *extra])
            done = True
        out.append((k, v))
    if not done:
        out.append((b"access-control-expose-headers", b", ".join(names)))
    return out


# ---------------------------------------------------------------- [cors.*] in gateway.toml

CORS_KEYS = {"origins", "methods", "headers", "expose", "credentials", "max_age"}


def load_cors(c: Problems, doc: dict[str, Any], http_methods: set[str]) -> dict[str, CorsPolicy]:
    """Every ``[cors.NAME]`` table; problems name the file, the key and the expected form."""
    policies: dict[str, CorsPolicy] = {}
    for name, cd in c.table(doc.get("cors"), "cors").items():
        key = f"cors.{name}"
        cd = c.table(cd, key)
        c.known(cd, key, CORS_KEYS)
        before = len(c.problems)
        credentials = c.boolean(cd, key, "credentials", False)
        exact: set[str] = set()
        wild: list[tuple[str, str, str]] = []
        any_origin = False
        origins = cd.get("origins")
        if not isinstance(origins, list) or not origins:
            c.bad(f"{key}.origins", "is missing" if origins is None else f"is {origins!r}", "expected a non-empty list: " + ORIGIN_EXPECTED.removeprefix("expected "))
            origins = []
        for i, entry in enumerate(origins):
            k = f"{key}.origins[{i}]"
            parsed = _config_origin(c, k, entry)
            if parsed is None:
                continue
            if parsed == "*":
                any_origin = True
                if credentials:
                    c.bad(k, 'is "*" with credentials = true', 'expected the origins listed one by one: browsers refuse "*" on a credentialed request')
            elif isinstance(parsed, tuple):
                wild.append(parsed)
            else:
                exact.add(parsed)
        methods = _names(c, f"{key}.methods", cd.get("methods", list(DEFAULT_METHODS)), "a list of HTTP methods such as [\"GET\", \"POST\"]", upper=True)
        for m in methods:
            if m not in http_methods:
                c.bad(f"{key}.methods", f"names {m!r}", f"expected methods from {sorted(http_methods)}")
        headers = _names(c, f"{key}.headers", cd.get("headers", []), 'a list of request header names such as ["authorization", "content-type"], or ["*"]', star=True)
        expose = _names(c, f"{key}.expose", cd.get("expose", []), 'a list of response header names such as ["x-request-id"]', star=not credentials)
        max_age = None
        if "max_age" in cd:
            seconds = c.duration(cd, key, "max_age", None)
            max_age = int(seconds) if seconds is not None else None
        if len(c.problems) == before:
            policies[name] = CorsPolicy(
                name=name,
                origins=frozenset(exact),
                wildcards=tuple(wild),
                any_origin=any_origin,
                methods=tuple(dict.fromkeys(methods)),
                headers=frozenset(h for h in headers if h != "*"),
                any_header="*" in headers,
                expose=tuple(dict.fromkeys(expose)),
                credentials=credentials,
                max_age=max_age,
            )
    return policies


def _names(c: Problems, key: str, value: Any, expected: str, *, upper: bool = False, star: bool = False) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        c.bad(key, f"is {value!r}", f"expected {expected}")
        return []
    out = []
    for v in value:
        if v == "*":
            # "*" is a token too, but means "any" to a browser — and only without credentials.
            if star:
                out.append(v)
            else:
                c.bad(key, 'names "*"', f"expected {expected}" + ("; a browser reads \"*\" literally with credentials = true" if "response" in expected else ""))
        elif TOKEN_RE.fullmatch(v):
            out.append(v.upper() if upper else v.lower())
        else:
            c.bad(key, f"names {v!r}", f"expected {expected}")
    return out


def _config_origin(c: Problems, key: str, entry: Any) -> str | tuple[str, str, str] | None:
    """A configured origin normalized: "*", a serialized origin, or a wildcard's (scheme, ".suffix",
    port); None (with a problem reported) when it is not one."""
    if not isinstance(entry, str):
        c.bad(key, f"is {entry!r}", ORIGIN_EXPECTED)
        return None
    if entry == "*":
        return "*"
    if entry.lower() == "null":
        c.bad(key, 'is "null"', "expected a real origin: sandboxed iframes and data: documents all send Origin: null, so allowing it allows any page")
        return None
    m = CONFIG_ORIGIN_RE.fullmatch(entry)
    if m is None:
        rest = entry.split("://", 1)[-1]
        why = "has a path (an origin never does, not even a trailing /)" if "/" in rest else "is not an origin"
        if "*" in rest and "/" not in rest:
            why = 'has a "*" that is not a whole leading label'
        elif rest.endswith(".") or ".:" in rest:
            why = "has a trailing dot in the host (browsers treat that as another origin)"
        c.bad(key, f"{entry!r} {why}", ORIGIN_EXPECTED)
        return None
    scheme, host, port = m.group("scheme").lower(), m.group("host").lower(), m.group("port") or ""
    if port and not 0 < int(port) <= 65535:
        c.bad(key, f"{entry!r} has port {port}", "expected a port from 1 to 65535")
        return None
    if port:
        port = str(int(port))
    if port == DEFAULT_PORTS.get(scheme):
        port = ""  # a browser never writes the scheme's default port
    if m.group("wild"):
        if host.startswith("[") or "." not in host:
            c.bad(key, f"{entry!r} would allow every host under {host!r}", 'expected a wildcard over a domain of at least two labels, such as "https://*.example.com"')
            return None
        return (scheme, "." + host, port)
    return f"{scheme}://{host}" + (f":{port}" if port else "")
