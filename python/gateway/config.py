"""Loading and validating gateway.toml.

Every problem is collected, not just the first, and each is reported as
``FILE: key.path: what is wrong (what was expected)`` so a user can fix a config in one pass.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from gateway import _core
from gateway.template import Template, TemplateError

DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
LOCALE_PREFIX_RE = re.compile(r"^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")

# Headers a client may never set towards an origin, whatever the route says.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate"}
)


class ConfigError(Exception):
    """A config that cannot be served; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_duration(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        m = DURATION_RE.match(value)
        if m:
            return float(m.group(1)) * DURATION_UNITS[m.group(2)]
    return None


def parse_size(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        m = SIZE_RE.match(value)
        if m:
            return int(float(m.group(1)) * SIZE_UNITS[(m.group(2) or "B").lower()])
    return None


@dataclass(frozen=True)
class Origin:
    name: str
    url: str
    host: str
    port: int
    base_path: str
    timeout: float


@dataclass(frozen=True)
class AuthAction:
    redirect: str | None = None
    status: int | None = None
    clear_cookie: str | None = None


@dataclass(frozen=True)
class AuthPolicy:
    name: str
    verifier: _core.Verifier
    token_from: tuple[tuple[str, str], ...]
    on_missing: AuthAction
    on_invalid: AuthAction
    forward_claims: dict[str, str]

    @cached_property
    def missing_reason(self) -> str:
        return "no token in " + ", ".join(f"{k}:{n}" if k != "bearer" else "bearer" for k, n in self.token_from)


@dataclass(frozen=True)
class Locale:
    country_header: str | None
    default_country: str
    countries: dict[str, str]
    languages: dict[str, str]


@dataclass(frozen=True)
class Experiment:
    name: str
    cookie: str
    variants: tuple[str, ...]
    weights: tuple[float, ...]
    max_age: int
    header: str | None
    @cached_property
    def cum_weights(self) -> tuple[float, ...]:
        """For random.choices(cum_weights=...), which then skips summing the weights on every draw."""
        return tuple(itertools.accumulate(self.weights))


@dataclass(frozen=True)
class KVConfig:
    name: str
    backend: str
    path: Path | None = None
    url: str | None = None
    cache_ttl: float = 5.0
    prefix: str = ""


@dataclass(frozen=True)
class Condition:
    type: str  # header | cookie | query | host
    key: str
    value: re.Pattern[str] | None
    source: str

    def describe(self) -> str:
        return self.source


@dataclass
class Route:
    index: int
    match: list[str]
    origin: str
    methods: frozenset[str] | None = None
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

    def label(self) -> str:
        return " | ".join(self.match)


@dataclass
class Server:
    listen: str = "127.0.0.1:8080"
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    access_log: bool = True
    max_body: int = 10 * 2**20
    max_header_bytes: int = 32 * 2**10


@dataclass
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
    forwarded_claim_headers: frozenset[str]
    locale_prefixes: tuple[str, ...]
    # Whether any route tests the query string: if none does, decide() never parses it.
    query_conditions: bool


class _Checker:
    """Collects problems while walking the TOML."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[str] = []

    def bad(self, key: str, what: str, expected: str | None = None) -> None:
        self.problems.append(f"{self.file}: {key}: {what}" + (f" ({expected})" if expected else ""))

    def table(self, data: Any, key: str) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.bad(key, f"is a {type(data).__name__}", "expected a table")
            return {}
        return data

    def known(self, data: dict[str, Any], key: str, allowed: set[str]) -> None:
        for k in data:
            if k not in allowed:
                hint = ", ".join(sorted(allowed))
                self.bad(f"{key}.{k}" if key else k, "unknown key", f"expected one of: {hint}")

    def string(self, data: dict[str, Any], key: str, name: str, required: bool = False, default: str | None = None) -> str | None:
        v = data.get(name)
        if v is None:
            if required:
                self.bad(f"{key}.{name}", "is missing", "expected a string")
            return default
        if not isinstance(v, str):
            self.bad(f"{key}.{name}", f"is {v!r}", "expected a string")
            return default
        return v

    def duration(self, data: dict[str, Any], key: str, name: str, default: float | None) -> float | None:
        if name not in data:
            return default
        d = parse_duration(data[name])
        if d is None:
            self.bad(f"{key}.{name}", f"is {data[name]!r}", 'expected a duration such as "500ms", "10s", "5m", "1h", "1d"')
            return default
        return d

    def size(self, data: dict[str, Any], key: str, name: str, default: int | None) -> int | None:
        if name not in data:
            return default
        s = parse_size(data[name])
        if s is None:
            self.bad(f"{key}.{name}", f"is {data[name]!r}", 'expected a size such as "20MB", "512KiB" or a number of bytes')
            return default
        return s


def _secret(c: _Checker, key: str, ref: Any, base: Path) -> bytes | None:
    if not isinstance(ref, str):
        c.bad(key, "is missing or not a string", 'expected "env:NAME" or "file:PATH"')
        return None
    if ref.startswith("env:"):
        name = ref[4:]
        value = os.environ.get(name)
        if not name:
            c.bad(key, "names no environment variable", 'expected "env:NAME"')
            return None
        if value is None:
            c.bad(key, f"environment variable {name} is not set", f"export {name}=<a random secret of at least 32 bytes>")
            return None
        return value.encode()
    if ref.startswith("file:"):
        p = Path(ref[5:])
        p = p if p.is_absolute() else base / p
        try:
            return p.read_bytes().rstrip(b"\r\n")
        except OSError as e:
            c.bad(key, f"cannot read {p}: {e.strerror}", "expected a readable file holding the secret")
            return None
    # Never echo what looks like a secret back into logs or terminals.
    c.bad(key, "holds the secret itself", 'expected "env:NAME" or "file:PATH", never the secret in the config file')
    return None


def _action(c: _Checker, key: str, data: Any, default: AuthAction) -> AuthAction:
    if data is None:
        return default
    if not isinstance(data, dict):
        c.bad(key, f"is {data!r}", 'expected a table such as { redirect = "/login" } or { status = 401 }')
        return default
    c.known(data, key, {"redirect", "status", "clear_cookie"})
    redirect = c.string(data, key, "redirect")
    status = data.get("status")
    clear = c.string(data, key, "clear_cookie")
    if redirect is not None:
        if not redirect.startswith("/") or redirect.startswith("//") or redirect.startswith("/\\") or any(ch in redirect for ch in "\r\n\\"):
            c.bad(f"{key}.redirect", f"is {redirect!r}", "expected a path on this site starting with a single /")
            redirect = None
    if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 499):
        c.bad(f"{key}.status", f"is {status!r}", "expected a 4xx status such as 401 or 403")
        status = None
    if redirect is None and status is None:
        if "redirect" not in data and "status" not in data:
            c.bad(key, "has neither redirect nor status", 'expected { redirect = "/login" } or { status = 401 }')
        return default
    if redirect is not None and status is not None:
        c.bad(key, "has both redirect and status", "expected one of them")
    if clear is not None and not re.match(HEADER_NAME_RE, clear):
        c.bad(f"{key}.clear_cookie", f"is {clear!r}", "expected a cookie name")
        clear = None
    return AuthAction(redirect=redirect, status=status, clear_cookie=clear)


def _conditions(c: _Checker, key: str, data: Any) -> list[Condition]:
    out: list[Condition] = []
    if data is None:
        return out
    if not isinstance(data, list):
        c.bad(key, f"is {data!r}", 'expected a list like [{ type = "header", key = "x-beta", value = "1" }]')
        return out
    for i, item in enumerate(data):
        k = f"{key}[{i}]"
        if not isinstance(item, dict):
            c.bad(k, f"is {item!r}", "expected a table with type, key and optional value")
            continue
        c.known(item, k, {"type", "key", "value"})
        typ = c.string(item, k, "type", required=True)
        name = c.string(item, k, "key", required=item.get("type") != "host")
        value = c.string(item, k, "value")
        if typ not in (None, "header", "cookie", "query", "host"):
            c.bad(f"{k}.type", f"is {typ!r}", 'expected "header", "cookie", "query" or "host"')
            continue
        pattern = None
        if value is not None:
            try:
                # Anchored like Next.js: the whole value must match.
                pattern = re.compile(f"(?:{value})\\Z")
            except re.error as e:
                c.bad(f"{k}.value", f"is not a valid regex: {e}", "expected a Python/JS-compatible regular expression")
                continue
        if typ is None:
            continue
        src = f"{typ} {name or ''}".strip() + (f" ~ {value}" if value is not None else "")
        out.append(Condition(type=typ, key=(name or "").lower() if typ == "header" else (name or ""), value=pattern, source=src))
    return out


def _headers_map(c: _Checker, key: str, data: Any, names: dict[str, set[str]]) -> list[tuple[str, Template]]:
    out: list[tuple[str, Template]] = []
    if data is None:
        return out
    if not isinstance(data, dict):
        c.bad(key, f"is {data!r}", 'expected a table of header = "value"')
        return out
    for name, value in data.items():
        k = f"{key}.{name}"
        if not HEADER_NAME_RE.match(name):
            c.bad(k, "is not a valid header name", "expected letters, digits and -")
            continue
        if name.lower() in HOP_BY_HOP or name.lower() in {"host", "content-length"}:
            c.bad(k, "is a header the gateway manages", "expected an end-to-end header")
            continue
        if not isinstance(value, str):
            c.bad(k, f"is {value!r}", "expected a string, optionally with {placeholders}")
            continue
        try:
            out.append((name, Template.parse(value, names)))
        except TemplateError as e:
            c.bad(k, str(e), "see the README's Placeholders section")
    return out


def load(path: str | os.PathLike[str], text: str | None = None) -> Config:
    """Reads and validates a config file; raises ConfigError listing every problem."""
    p = Path(path)
    c = _Checker(str(path))
    if text is None:
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError([f"{path}: (file): cannot read it: {e.strerror} (expected a readable TOML file)"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: (toml): {e} (expected valid TOML)"]) from None
    base = p.resolve().parent
    c.known(data, "", {"server", "origins", "auth", "locale", "experiments", "kv", "routes"})

    # [server]
    sdata = c.table(data.get("server"), "server")
    c.known(sdata, "server", {"listen", "trusted_proxies", "access_log", "max_body", "max_header_bytes"})
    server = Server()
    listen = c.string(sdata, "server", "listen", default=server.listen)
    if listen and not re.match(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$", listen):
        c.bad("server.listen", f"is {listen!r}", 'expected "HOST:PORT" such as "127.0.0.1:8080"')
    server.listen = listen or server.listen
    nets = []
    tp = sdata.get("trusted_proxies", [])
    if not isinstance(tp, list):
        c.bad("server.trusted_proxies", f"is {tp!r}", 'expected a list of CIDRs such as ["10.0.0.0/8"]')
        tp = []
    for i, cidr in enumerate(tp):
        try:
            nets.append(ipaddress.ip_network(cidr, strict=False))
        except (ValueError, TypeError):
            c.bad(f"server.trusted_proxies[{i}]", f"is {cidr!r}", 'expected an IP network such as "127.0.0.1/32"')
    server.trusted_proxies = tuple(nets)
    al = sdata.get("access_log", True)
    if not isinstance(al, bool):
        c.bad("server.access_log", f"is {al!r}", "expected true or false")
    else:
        server.access_log = al
    server.max_body = c.size(sdata, "server", "max_body", server.max_body) or server.max_body
    server.max_header_bytes = c.size(sdata, "server", "max_header_bytes", server.max_header_bytes) or server.max_header_bytes

    # [origins.*]
    origins: dict[str, Origin] = {}
    for name, od in c.table(data.get("origins"), "origins").items():
        key = f"origins.{name}"
        od = c.table(od, key)
        c.known(od, key, {"url", "timeout"})
        url = c.string(od, key, "url", required=True)
        timeout = c.duration(od, key, "timeout", 30.0)
        if url is None:
            continue
        m = re.match(r"^http://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(?::(\d{1,5}))?(/[^?#]*)?$", url)
        if url.startswith("https://"):
            c.bad(f"{key}.url", "is https", "expected http:// — TLS to origins is not supported yet; terminate TLS in front of the origin")
            continue
        if not m:
            c.bad(f"{key}.url", f"is {url!r}", 'expected "http://HOST:PORT" optionally with a base path')
            continue
        port = int(m.group(2) or 80)
        origins[name] = Origin(name, url.rstrip("/"), m.group(1), port, (m.group(3) or "").rstrip("/"), timeout or 30.0)
    if not origins and "origins" in data:
        c.bad("origins", "defines no usable origin", "expected at least one [origins.NAME] with a url")

    # [auth.*]
    auth: dict[str, AuthPolicy] = {}
    for name, ad in c.table(data.get("auth"), "auth").items():
        key = f"auth.{name}"
        ad = c.table(ad, key)
        c.known(ad, key, {"algorithms", "secret", "token_from", "leeway", "on_missing", "on_invalid", "forward_claims", "audience", "issuer", "require", "allow_weak_key"})
        algs = ad.get("algorithms", ["HS256"])
        if not isinstance(algs, list) or not all(isinstance(a, str) for a in algs):
            c.bad(f"{key}.algorithms", f"is {algs!r}", 'expected a list such as ["HS256"]')
            algs = ["HS256"]
        secret = _secret(c, f"{key}.secret", ad.get("secret"), base)
        sources: list[tuple[str, str]] = []
        tf = ad.get("token_from", ["bearer"])
        if not isinstance(tf, list) or not tf:
            c.bad(f"{key}.token_from", f"is {tf!r}", 'expected a list such as ["cookie:auth-token", "bearer"]')
            tf = []
        for i, src in enumerate(tf):
            if src == "bearer":
                sources.append(("bearer", "authorization"))
            elif isinstance(src, str) and src.startswith("cookie:") and HEADER_NAME_RE.match(src[7:] or "-x-"):
                sources.append(("cookie", src[7:]))
            elif isinstance(src, str) and src.startswith("header:") and HEADER_NAME_RE.match(src[7:] or "-x-"):
                sources.append(("header", src[7:].lower()))
            else:
                c.bad(f"{key}.token_from[{i}]", f"is {src!r}", '"bearer", "cookie:NAME" or "header:NAME"')
        leeway = c.duration(ad, key, "leeway", 0.0) or 0.0
        on_missing = _action(c, f"{key}.on_missing", ad.get("on_missing"), AuthAction(status=401))
        on_invalid = _action(c, f"{key}.on_invalid", ad.get("on_invalid"), AuthAction(status=401))
        fc = c.table(ad.get("forward_claims"), f"{key}.forward_claims")
        forward: dict[str, str] = {}
        for claim, header in fc.items():
            if not isinstance(header, str) or not HEADER_NAME_RE.match(header):
                c.bad(f"{key}.forward_claims.{claim}", f"is {header!r}", "expected a header name such as X-User-Id")
            else:
                forward[claim] = header
        audience = ad.get("audience")
        issuer = ad.get("issuer")
        require = ad.get("require", [])
        allow_weak = ad.get("allow_weak_key", False)
        if not isinstance(allow_weak, bool):
            c.bad(f"{key}.allow_weak_key", f"is {allow_weak!r}", "expected true or false")
            allow_weak = False
        if secret is None:
            continue
        try:
            verifier = _core.Verifier(secret, algs, audience=audience, issuer=issuer, leeway=leeway, require=require, allow_weak_key=allow_weak)
        except (ValueError, TypeError) as e:
            # The core says what is wrong by kind; its wording is for people, not for this switch.
            msg = str(e)
            kind = getattr(e, "kind", None)
            if kind == "public_key_as_secret":
                c.bad(f"{key}.secret", msg, "a random shared secret; asymmetric algorithms are not supported yet")
            elif kind == "weak_key":
                msg = msg.split(". Use a longer")[0]
                c.bad(f"{key}.secret", msg, "a random secret at least that long (e.g. `openssl rand -base64 48`), or allow_weak_key = true")
            else:
                c.bad(key, msg, "fix the algorithms, secret, audience, issuer or require")
            continue
        auth[name] = AuthPolicy(name, verifier, tuple(sources), on_missing, on_invalid, forward)

    # [locale]
    locale = None
    if "locale" in data:
        ld = c.table(data.get("locale"), "locale")
        c.known(ld, "locale", {"country_from", "default_country", "countries", "languages"})
        cf = c.string(ld, "locale", "country_from")
        header = None
        if cf is not None:
            if cf.startswith("header:") and HEADER_NAME_RE.match(cf[7:] or "-x-"):
                header = cf[7:].lower()
            else:
                c.bad("locale.country_from", f"is {cf!r}", 'expected "header:NAME" such as "header:cf-ipcountry"')
        dc = (c.string(ld, "locale", "default_country", default="US") or "US").upper()
        if not COUNTRY_RE.match(dc):
            c.bad("locale.default_country", f"is {dc!r}", "expected a two-letter country code")
        countries: dict[str, str] = {}
        for cc, prefix in c.table(ld.get("countries"), "locale.countries").items():
            if not COUNTRY_RE.match(cc.upper()):
                c.bad(f"locale.countries.{cc}", "is not a two-letter country code", 'expected e.g. KR = "/ko"')
            elif not isinstance(prefix, str) or not LOCALE_PREFIX_RE.match(prefix):
                c.bad(f"locale.countries.{cc}", f"is {prefix!r}", 'expected a path prefix such as "/ko"')
            else:
                countries[cc.upper()] = prefix
        languages: dict[str, str] = {}
        for lang, prefix in c.table(ld.get("languages"), "locale.languages").items():
            if not re.match(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$", lang):
                c.bad(f"locale.languages.{lang}", "is not a language tag", 'expected e.g. ko = "/ko"')
            elif not isinstance(prefix, str) or not LOCALE_PREFIX_RE.match(prefix):
                c.bad(f"locale.languages.{lang}", f"is {prefix!r}", 'expected a path prefix such as "/ko"')
            else:
                languages[lang] = prefix
        locale = Locale(header, dc, countries, languages)

    # [experiments.*]
    experiments: dict[str, Experiment] = {}
    for name, ed in c.table(data.get("experiments"), "experiments").items():
        key = f"experiments.{name}"
        ed = c.table(ed, key)
        c.known(ed, key, {"cookie", "variants", "max_age", "header"})
        cookie = c.string(ed, key, "cookie", required=True)
        if cookie is not None and not HEADER_NAME_RE.match(cookie):
            c.bad(f"{key}.cookie", f"is {cookie!r}", "expected a cookie name")
            cookie = None
        variants = c.table(ed.get("variants"), f"{key}.variants")
        names, weights = [], []
        for v, w in variants.items():
            if not re.match(r"^[A-Za-z0-9_.-]+$", v):
                c.bad(f"{key}.variants.{v}", "is not a usable variant name", "expected letters, digits, _ . -")
            elif isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
                c.bad(f"{key}.variants.{v}", f"is {w!r}", "expected a weight >= 0")
            else:
                names.append(v)
                weights.append(float(w))
        if not names or sum(weights) <= 0:
            c.bad(f"{key}.variants", "has no variant with a positive weight", "expected e.g. { control = 50, variant = 50 }")
        max_age = c.duration(ed, key, "max_age", 86400.0)
        header = c.string(ed, key, "header")
        if header is not None and not HEADER_NAME_RE.match(header):
            c.bad(f"{key}.header", f"is {header!r}", "expected a header name")
            header = None
        if cookie and names and sum(weights) > 0:
            experiments[name] = Experiment(name, cookie, tuple(names), tuple(weights), int(max_age or 0), header)

    # [kv.*]
    kv: dict[str, KVConfig] = {}
    for name, kd in c.table(data.get("kv"), "kv").items():
        key = f"kv.{name}"
        kd = c.table(kd, key)
        c.known(kd, key, {"backend", "path", "url", "cache_ttl", "prefix"})
        backend = c.string(kd, key, "backend", default="file")
        ttl = c.duration(kd, key, "cache_ttl", 5.0)
        if backend == "file":
            path_s = c.string(kd, key, "path", required=True)
            if path_s is not None:
                fp = Path(path_s)
                kv[name] = KVConfig(name, "file", path=fp if fp.is_absolute() else base / fp, cache_ttl=ttl or 0.0)
        elif backend == "redis":
            url = c.string(kd, key, "url", required=True)
            if url is not None and not re.match(r"^rediss?://", url):
                c.bad(f"{key}.url", f"is {url!r}", 'expected "redis://HOST:PORT/DB"')
            elif url is not None:
                prefix = c.string(kd, key, "prefix", default=f"{name}:") or ""
                kv[name] = KVConfig(name, "redis", url=url, cache_ttl=ttl if ttl is not None else 5.0, prefix=prefix)
        else:
            c.bad(f"{key}.backend", f"is {backend!r}", 'expected "file" or "redis"')

    # [[routes]]
    names = {
        "claims": set(),
        "params": set(),
        "experiments": set(experiments),
        "kv": set(kv),
    }
    routes: list[Route] = []
    rdata = data.get("routes", [])
    if not isinstance(rdata, list):
        c.bad("routes", f"is {type(rdata).__name__}", "expected [[routes]] tables")
        rdata = []
    if not rdata:
        c.bad("routes", "is empty", "expected at least one [[routes]] table")
    for i, rd in enumerate(rdata):
        key = f"routes[{i}]"
        rd = c.table(rd, key)
        c.known(rd, key, {"match", "methods", "host", "has", "missing", "auth", "origin", "max_body", "locale", "experiment", "response_headers", "request_headers", "timeout"})
        match = rd.get("match")
        if isinstance(match, str):
            match = [match]
        if match is None:
            c.bad(f"{key}.match", "is missing", 'expected a path pattern such as "/dashboard/:path*" or a list of them')
            match = []
        elif not isinstance(match, list) or not match or not all(isinstance(m, str) for m in match):
            c.bad(f"{key}.match", f"is {rd.get('match')!r}", 'expected a path pattern such as "/dashboard/:path*" or a list of them')
            match = []
        for j, m in enumerate(match):
            try:
                _core.compile_pattern(m)
            except ValueError as e:
                c.bad(f"{key}.match" + (f"[{j}]" if len(match) > 1 else ""), f"{m!r}: {e}", "expected Next.js matcher syntax: /path/:name, :name*, :name+, :name?, :name(regex)")
        origin = c.string(rd, key, "origin", required=True)
        if origin is not None and origin not in origins and origin in c.table(data.get("origins"), "origins"):
            pass  # the origin exists but was invalid; already reported
        elif origin is not None and origin not in origins:
            declared = sorted(c.table(data.get("origins"), "origins"))
            c.bad(f"{key}.origin", f"names unknown origin {origin!r}", f"expected one of: {', '.join(declared) or '(no origins defined)'}")
        methods = rd.get("methods")
        mset = None
        if methods is not None:
            if not isinstance(methods, list) or not all(isinstance(m, str) and m.upper() in HTTP_METHODS for m in methods):
                c.bad(f"{key}.methods", f"is {methods!r}", f"expected a list of HTTP methods from {sorted(HTTP_METHODS)}")
            else:
                mset = frozenset(m.upper() for m in methods)
        auth_name = c.string(rd, key, "auth")
        if auth_name is not None and auth_name not in auth and auth_name not in c.table(data.get("auth"), "auth"):
            declared = sorted(c.table(data.get("auth"), "auth"))
            c.bad(f"{key}.auth", f"names unknown auth policy {auth_name!r}", f"expected one of: {', '.join(declared) or '(no [auth.*] defined)'}")
        exp = c.string(rd, key, "experiment")
        if exp is not None and exp not in experiments and exp not in c.table(data.get("experiments"), "experiments"):
            declared = sorted(c.table(data.get("experiments"), "experiments"))
            c.bad(f"{key}.experiment", f"names unknown experiment {exp!r}", f"expected one of: {', '.join(declared) or '(no [experiments.*] defined)'}")
        loc = rd.get("locale", False)
        if not isinstance(loc, bool):
            c.bad(f"{key}.locale", f"is {loc!r}", "expected true or false")
            loc = False
        if loc and locale is None:
            c.bad(f"{key}.locale", "is true but there is no [locale] table", "expected a [locale] table")
        route_names = dict(names)
        route_names["claims"] = {"*"} if auth_name else set()
        route_names["params"] = _param_names(match)
        route = Route(
            index=i,
            match=match,
            origin=origin or "",
            methods=mset,
            host=(c.string(rd, key, "host") or None),
            has=_conditions(c, f"{key}.has", rd.get("has")),
            missing=_conditions(c, f"{key}.missing", rd.get("missing")),
            auth=auth_name,
            max_body=c.size(rd, key, "max_body", None),
            locale=loc,
            experiment=exp,
            response_headers=_headers_map(c, f"{key}.response_headers", rd.get("response_headers"), route_names),
            request_headers=_headers_map(c, f"{key}.request_headers", rd.get("request_headers"), route_names),
            timeout=c.duration(rd, key, "timeout", None),
        )
        routes.append(route)

    if c.problems:
        raise ConfigError(c.problems)
    route_set = _core.RouteSet([r.match for r in routes])
    forwarded = frozenset(h.lower() for p in auth.values() for h in p.forward_claims.values())
    prefixes: tuple[str, ...] = ()
    if locale:
        prefixes = tuple(sorted(set(locale.countries.values()) | set(locale.languages.values()), key=len, reverse=True))
    query_conditions = any(cond.type == "query" for r in routes for cond in (*r.has, *r.missing))
    return Config(p, server, origins, auth, locale, experiments, kv, routes, route_set, forwarded, prefixes, query_conditions)


def _param_names(patterns: list[str]) -> set[str]:
    out: set[str] = set()
    for p in patterns:
        out.update(re.findall(r":([A-Za-z0-9_]+)", p))
    return out
