"""Reading and validating gateway.toml: one function per TOML table, composed by ``load()``.

Each ``load_<table>`` takes the shared ``Problems`` collector and the parsed document, reports what
is wrong with its table, and returns its part of the ``Config`` (leaving out what is unusable, so
the tables after it can still be checked). ``load()`` raises ``ConfigError`` with every problem
once all tables have been read.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import orjson

from gateway import _core, key_sources
from gateway.claim_rules import load_require
from gateway.cors import CorsPolicy, load_cors
from gateway.config.model import (
    MANAGED_HEADERS,
    AuthAction,
    AuthPolicy,
    Condition,
    Config,
    Experiment,
    KVConfig,
    Locale,
    Origin,
    RateLimit,
    Route,
    Server,
    header_key,
)
from gateway.config.limits import load_limits
from gateway.config.origins import load_origins
from gateway.config.problems import ConfigError, Problems
from gateway.listener_tls import pair_problem
from gateway.hooks.loader import HooksConfig, load_hooks, route_hooks, warn_unused
from gateway.template import Placeholder, Template, TemplateError

HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
# A query parameter name as browsers send it unencoded: the token source "query:NAME".
QUERY_NAME_RE = re.compile(r"^[A-Za-z0-9._~-]+$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
LOCALE_PREFIX_RE = re.compile(r"^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")
# Granian's RuntimeModes values.
RUNTIME_MODES = ("auto", "st", "mt")
TABLES = {"server", "origins", "auth", "locale", "experiments", "kv", "routes", "cors", "hooks", "limits"}

Doc = dict[str, Any]


def load(path: str | os.PathLike[str], text: str | None = None, hooks_source: str | os.PathLike[str] | None = None) -> Config:
    """Reads and validates a config file; raises ConfigError listing every problem.

    ``hooks_source``: run a ``[hooks] module = "file:..."`` from this copy (the last good one)."""
    p = Path(path)
    if text is None:
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError([f"{path}: (file): cannot read it: {e.strerror} (expected a readable TOML file)"]) from None
        except UnicodeDecodeError as e:
            raise ConfigError([f"{path}: (file): is not UTF-8 text ({e.reason} at byte {e.start}) (expected a UTF-8 TOML file)"]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: (toml): {e} (expected valid TOML)"]) from None
    # Relative file paths (secrets, KV files) are relative to the config file, not the cwd.
    base = p.resolve().parent
    c = Problems(str(path))
    c.known(doc, "", TABLES)

    server = load_server(c, doc, base)
    origins = load_origins(c, doc, base)
    auth = load_auth(c, doc, base)
    locale = load_locale(c, doc, server)
    experiments = load_experiments(c, doc)
    kv = load_kv(c, doc, base)
    cors = load_cors(c, doc, HTTP_METHODS)
    hooks = load_hooks(c, doc, base, Path(hooks_source) if hooks_source is not None else None)
    limits = load_limits(c, doc)
    routes, route_set = load_routes(c, doc, origins=origins, auth=auth, locale=locale, experiments=experiments, kv=kv, cors=cors, hooks=hooks, limits=limits)
    warn_unused(c, hooks, {n for r in routes if r.hooks is not None for n in r.hooks.names})

    check_correlation_names(c, server, auth, experiments, routes)

    if c.problems or route_set is None:
        raise ConfigError(c.problems)
    return Config(p, server, origins, auth, locale, experiments, kv, routes, route_set, warnings=tuple(c.warnings), cors=cors, hooks=hooks, limits=limits)


# ---------------------------------------------------------------- [server]


SERVER_KEYS = {
    "listen", "trusted_proxies", "access_log", "max_body", "max_header_bytes", "runtime_mode", "io_threads",
    "tls_cert", "tls_key", "http2", "drain_timeout",
    "metrics_listen", "request_id", "trace", "otlp_endpoint",
}  # fmt: skip


def load_server(c: Problems, doc: Doc, base: Path | None = None) -> Server:
    sd = c.table(doc.get("server"), "server")
    c.known(sd, "server", SERVER_KEYS)
    default = Server()
    listen = c.string(sd, "server", "listen", default=default.listen) or default.listen
    if not re.match(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$", listen):
        c.bad("server.listen", f"is {listen!r}", 'expected "HOST:PORT" such as "127.0.0.1:8080"')
        listen = default.listen
    nets = []
    tp = sd.get("trusted_proxies", [])
    if not isinstance(tp, list):
        c.bad("server.trusted_proxies", f"is {tp!r}", 'expected a list of CIDRs such as ["10.0.0.0/8"]')
        tp = []
    for i, cidr in enumerate(tp):
        try:
            nets.append(ipaddress.ip_network(cidr, strict=False))
        except (ValueError, TypeError):
            c.bad(f"server.trusted_proxies[{i}]", f"is {cidr!r}", 'expected an IP network such as "127.0.0.1/32"')
    runtime_mode = c.string(sd, "server", "runtime_mode", default=default.runtime_mode) or default.runtime_mode
    if runtime_mode not in RUNTIME_MODES:
        c.bad("server.runtime_mode", f"is {runtime_mode!r}", 'expected "auto", "st" or "mt"')
        runtime_mode = default.runtime_mode
    io_threads = sd.get("io_threads", default.io_threads)
    if isinstance(io_threads, bool) or not isinstance(io_threads, int) or io_threads < 1:
        c.bad("server.io_threads", f"is {io_threads!r}", "expected a whole number of threads, at least 1")
        io_threads = default.io_threads
    tls_cert, tls_key = _listener_tls(c, sd, base or Path.cwd())
    drain = c.duration(sd, "server", "drain_timeout", default.drain_timeout)
    if drain is not None and drain < 1:
        # Granian's kill timeout is whole seconds, and 0 would mean "wait for ever".
        c.bad("server.drain_timeout", f"is {sd.get('drain_timeout')!r}", 'expected a duration of at least 1s such as "30s"')
        drain = None
    return Server(
        tls_cert=tls_cert,
        tls_key=tls_key,
        http2=c.boolean(sd, "server", "http2", default.http2),
        drain_timeout=drain if drain is not None else default.drain_timeout,
        listen=listen,
        trusted_proxies=tuple(nets),
        access_log=c.boolean(sd, "server", "access_log", default.access_log),
        max_body=c.size(sd, "server", "max_body", default.max_body) or default.max_body,
        max_header_bytes=c.size(sd, "server", "max_header_bytes", default.max_header_bytes) or default.max_header_bytes,
        runtime_mode=runtime_mode,
        io_threads=io_threads,
        **load_observability(c, sd, listen),
    )


def _listener_tls(c: Problems, sd: Doc, base: Path) -> tuple[Path | None, Path | None]:
    """[server] tls_cert and tls_key: "file:PATH" each (relative to the config file), both or
    neither, and a pair that can serve TLS (gateway.listener_tls)."""
    paths: dict[str, Path] = {}
    for name in ("tls_cert", "tls_key"):
        ref = c.string(sd, "server", name)
        if ref is None:
            continue
        if not ref.startswith("file:") or not ref[5:]:
            c.bad(f"server.{name}", f"is {ref!r}", 'expected "file:PATH" to a PEM file')
            continue
        p = Path(ref[5:])
        paths[name] = p if p.is_absolute() else base / p
    given = [n for n in ("tls_cert", "tls_key") if n in sd]
    if len(given) == 1:
        other = "tls_key" if given[0] == "tls_cert" else "tls_cert"
        c.bad(f"server.{other}", f"is missing while server.{given[0]} is set", "expected both tls_cert and tls_key, or neither")
        return None, None
    if len(paths) != 2:
        return None, None
    problem = pair_problem(paths["tls_cert"], paths["tls_key"])
    if problem is not None:
        c.bad(f"server.{problem[0]}", problem[1], "expected a readable PEM certificate chain and its unencrypted PEM private key")
        return None, None
    return paths["tls_cert"], paths["tls_key"]


LISTEN_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$")
# Header names the request id may not take (compared as `header_key`s): the gateway's own and the
# trace context's, and the fields HTTP gives a meaning to on requests or answers — the id is sent to the
# origin and echoed on every answer, so as "Location", "Set-Cookie", "Vary" or "Retry-After" it would
# redirect, set a cookie or change caching (RFC 9110, 9111, 6265, 6454, Fetch's CORS, the IETF
# RateLimit fields, RFC 6455).
NOT_REQUEST_ID = MANAGED_HEADERS | {"traceparent", "tracestate"} | {
    "accept", "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "alt-svc", "cache-control", "clear-site-data",
    "content-disposition", "content-encoding", "content-language", "content-location", "content-range", "content-security-policy",
    "content-type", "date", "etag", "expires", "from", "last-modified", "link", "location", "origin", "pragma", "proxy-authenticate",
    "range", "ratelimit", "ratelimit-policy", "referer", "refresh", "retry-after", "server", "set-cookie", "set-cookie2",
    "strict-transport-security", "timing-allow-origin", "user-agent", "vary", "via", "warning", "www-authenticate",
    "x-content-type-options", "x-frame-options",
}  # fmt: skip
NOT_REQUEST_ID_PREFIXES = ("access-control-", "if-", "sec-", "cross-origin-", "content-")
# It is on every request to the origin and every answer: longer than any id header in use (the longest
# common ones are under 20 characters), short enough not to count against a server's header limits.
MAX_REQUEST_ID_NAME = 64


def load_observability(c: Problems, sd: Doc, listen: str) -> dict[str, Any]:
    """[server] metrics_listen, request_id, trace, otlp_endpoint (README "Observability")."""
    metrics_listen = c.string(sd, "server", "metrics_listen")
    if metrics_listen is not None:
        if not LISTEN_RE.match(metrics_listen):
            c.bad("server.metrics_listen", f"is {metrics_listen!r}", 'expected "HOST:PORT" such as "127.0.0.1:9464"')
            metrics_listen = None
        elif metrics_listen == listen:
            c.bad("server.metrics_listen", f"is {metrics_listen!r}, the address the gateway itself serves on", "expected a listener of its own, such as 127.0.0.1:9464")
            metrics_listen = None
    request_id = c.string(sd, "server", "request_id")
    if request_id is not None:
        key = header_key(request_id)
        if not HEADER_NAME_RE.match(request_id) or len(request_id) > MAX_REQUEST_ID_NAME:
            shown = f"{request_id[:MAX_REQUEST_ID_NAME]!r}" + (f" ... ({len(request_id)} characters)" if len(request_id) > MAX_REQUEST_ID_NAME else "")
            c.bad("server.request_id", f"is {shown}", f'expected a header name of up to {MAX_REQUEST_ID_NAME} characters such as "X-Request-Id"')
            request_id = None
        elif key in NOT_REQUEST_ID or key.startswith(NOT_REQUEST_ID_PREFIXES):
            c.bad("server.request_id", f"is {request_id!r}, a header the gateway manages or HTTP gives a meaning to", 'expected a header of its own such as "X-Request-Id"')
            request_id = None
    trace = c.boolean(sd, "server", "trace", False)
    otlp = c.string(sd, "server", "otlp_endpoint")
    if otlp is not None:
        from gateway import tracing

        url = tracing.traces_url(otlp)
        missing = tracing.missing_sdk()
        if url is None:
            c.bad("server.otlp_endpoint", f"is {otlp!r}", 'expected an OTLP/HTTP URL such as "http://127.0.0.1:4318"')
            otlp = None
        elif not trace:
            c.bad("server.otlp_endpoint", "is set but server.trace is not true", "expected trace = true: spans belong to the trace context the gateway propagates")
            otlp = None
        elif missing is not None:
            c.bad("server.otlp_endpoint", f"needs the OpenTelemetry SDK, which is not installed ({missing} cannot be imported)", "expected `pip install 'gateway[otel]'` or no otlp_endpoint")
            otlp = None
    return {"metrics_listen": metrics_listen, "request_id": request_id, "trace": trace, "otlp_endpoint": otlp}


def check_correlation_names(c: Problems, server: Server, auth: dict[str, AuthPolicy], experiments: dict[str, Experiment], routes: list[Route]) -> None:
    """The request id and trace headers are the gateway's alone, in any spelling (`header_key`): no
    forwarded claim, experiment or route template may send them to the origin too (it would get two
    values and could not tell which is the gateway's), and no route template may add the request id
    to the answer (the client would get two, only one of them the id in the log)."""
    names = server.correlation_headers
    if not names:
        return
    sets = "[server] request_id or trace sets"
    for policy in auth.values():
        for claim, header in policy.forward_claims.items():
            if header_key(header) in names:
                c.bad(f"auth.{policy.name}.forward_claims.{claim}", f"is {header!r}, which {sets}", "expected a header of your own")
    for exp in experiments.values():
        if exp.header is not None and header_key(exp.header) in names:
            c.bad(f"experiments.{exp.name}.header", f"is {exp.header!r}, which {sets}", "expected a header of your own")
    for route in routes:
        for name, _ in route.request_headers:
            if header_key(name) in names:
                c.bad(f"routes[{route.index}].request_headers.{name}", f"is a header {sets}", "expected a header of your own")
        for name, _ in route.response_headers:
            if server.is_request_id(name):
                c.bad(f"routes[{route.index}].response_headers.{name}", f"is a header {sets} (the request id is echoed on every answer)", "expected a header of your own")


# ---------------------------------------------------------------- [origins.*]


# load_origins lives in gateway.config.origins (HTTP and HTTPS origins, issue 11).


# ---------------------------------------------------------------- [auth.*]

AUTH_KEYS = {"algorithms", "secret", "token_from", "leeway", "on_missing", "on_invalid", "forward_claims", "audience", "issuer", "require", "allow_weak_key"} | key_sources.CONFIG_KEYS


def load_auth(c: Problems, doc: Doc, base: Path) -> dict[str, AuthPolicy]:
    auth: dict[str, AuthPolicy] = {}
    for name, ad in c.table(doc.get("auth"), "auth").items():
        key = f"auth.{name}"
        ad = c.table(ad, key)
        c.known(ad, key, AUTH_KEYS)
        algs = ad.get("algorithms", ["HS256"])
        algs_ok = isinstance(algs, list) and all(isinstance(a, str) for a in algs)
        if not algs_ok:
            example = f'["{algs}"]' if isinstance(algs, str) and algs.isalnum() else '["HS256"]'
            c.bad(f"{key}.algorithms", f"is {algs!r}", f"expected a list such as {example}")
            algs = ["HS256"]
        # One key source: a secret (HS*), or keys / jwks_url / discovery (gateway/key_sources.py).
        chosen = key_sources.chosen_source(c, key, ad)
        # A malformed list is reported once above: its HS256 stand-in is not the user's to be told about.
        algs_fit = key_sources.check_algorithms(c, key, chosen, ad, algs) if algs_ok else False
        secret = _secret(c, f"{key}.secret", ad.get("secret"), base) if chosen == "secret" else None
        source = key_sources.load_source(c, key, ad, base, chosen, algs) if chosen not in (None, "secret") and algs_fit else None
        cache_size = key_sources.token_cache(c, key, ad)
        sources = _token_sources(c, key, ad.get("token_from", ["bearer"]))
        leeway = c.duration(ad, key, "leeway", 0.0) or 0.0
        on_missing = _action(c, f"{key}.on_missing", ad.get("on_missing"), AuthAction(status=401))
        on_invalid = _action(c, f"{key}.on_invalid", ad.get("on_invalid"), AuthAction(status=401))
        forward: dict[str, str] = {}
        for claim, header in c.table(ad.get("forward_claims"), f"{key}.forward_claims").items():
            if not isinstance(header, str) or not HEADER_NAME_RE.match(header):
                c.bad(f"{key}.forward_claims.{claim}", f"is {header!r}", "expected a header name such as X-User-Id")
            elif header.lower() in MANAGED_HEADERS:
                # A forwarded-claim header is removed from every request on every route.
                c.bad(f"{key}.forward_claims.{claim}", f"is {header!r}, a header the gateway manages", "expected a header of your own such as X-User-Id")
            else:
                forward[claim] = header
        allow_weak = c.boolean(ad, key, "allow_weak_key", False)
        key_material = source.verifier_key if source is not None else secret if algs_fit else None
        if key_material is None:
            continue
        try:
            verifier = _core.Verifier(
                key_material,
                algs,
                audience=ad.get("audience"),
                issuer=ad.get("issuer"),
                leeway=leeway,
                require=ad.get("require", []),
                allow_weak_key=allow_weak,
                cache_size=cache_size,
            )
        except (ValueError, TypeError) as e:
            _verifier_problem(c, key, e)
            continue
        if source is not None:
            source.base = verifier
        auth[name] = AuthPolicy(name, verifier, tuple(sources), on_missing, on_invalid, forward, key_source=source)
    return auth


def _verifier_problem(c: Problems, key: str, e: Exception) -> None:
    # The core says what is wrong by kind; its wording is for people, not for this switch.
    kind = getattr(e, "kind", "bad_option")
    # The core's advice names a Python argument; the config key is allow_weak_key = true.
    msg = str(e).split(". Use a longer")[0]
    if kind == "public_key_as_secret":
        c.bad(f"{key}.secret", msg, "a random shared secret; for a public key use keys, jwks_url or discovery with an RS/PS/ES/EdDSA algorithm")
    elif kind == "weak_key":
        c.bad(f"{key}.secret", msg, "a random secret at least that long (e.g. `openssl rand -base64 48`), or allow_weak_key = true")
    else:
        c.bad(key, msg, "fix the algorithms, secret, audience, issuer or require")


def _secret(c: Problems, key: str, ref: Any, base: Path) -> bytes | None:
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
            raw = p.read_bytes()
            # A text file's final newline is not part of the secret; binary content (DER that may
            # end in 0x0a) is kept whole, so the core sees and refuses public-key material intact.
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw
            return raw.rstrip(b"\r\n")
        except OSError as e:
            c.bad(key, f"cannot read {p}: {e.strerror}", "expected a readable file holding the secret")
            return None
    # Never echo what looks like a secret back into logs or terminals.
    c.bad(key, "holds the secret itself", 'expected "env:NAME" or "file:PATH", never the secret in the config file')
    return None


def _token_sources(c: Problems, key: str, tf: Any) -> list[tuple[str, str]]:
    sources: list[tuple[str, str]] = []
    if not isinstance(tf, list) or not tf:
        c.bad(f"{key}.token_from", f"is {tf!r}", 'expected a list such as ["cookie:auth-token", "bearer"]')
        return sources
    for i, src in enumerate(tf):
        if src == "bearer":
            sources.append(("bearer", "authorization"))
        elif isinstance(src, str) and src.startswith("cookie:") and HEADER_NAME_RE.match(src[7:] or "-x-"):
            sources.append(("cookie", src[7:]))
        elif isinstance(src, str) and src.startswith("header:") and HEADER_NAME_RE.match(src[7:] or "-x-"):
            sources.append(("header", src[7:].lower()))
        elif isinstance(src, str) and src.startswith("query:") and QUERY_NAME_RE.match(src[6:]):
            sources.append(("query", src[6:]))
        elif src == "subprotocol":
            sources.append(("subprotocol", "sec-websocket-protocol"))
        else:
            c.bad(f"{key}.token_from[{i}]", f"is {src!r}", '"bearer", "cookie:NAME", "header:NAME", "query:NAME" or "subprotocol"')
    return sources


def _action(c: Problems, key: str, data: Any, default: AuthAction) -> AuthAction:
    if data is None:
        return default
    if not isinstance(data, dict):
        c.bad(key, f"is {data!r}", 'expected a table such as { redirect = "/login" } or { status = 401 }')
        return default
    c.known(data, key, {"redirect", "status", "clear_cookie", "api_status"})
    redirect = c.string(data, key, "redirect")
    api_status = _api_status(c, key, data)
    status = data.get("status")
    clear = c.string(data, key, "clear_cookie")
    if redirect is not None:
        # Only a path on this site: never //host or /\host, which browsers follow off-site.
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
    if "api_status" in data and redirect is None:
        c.bad(f"{key}.api_status", "is set on an action that does not redirect", 'expected it beside redirect = "/login": a status action answers every client with its status already')
    return AuthAction(redirect=redirect, status=status, clear_cookie=clear, api_status=api_status)


def _api_status(c: Problems, key: str, data: dict[str, Any]) -> int | None:
    """A redirect action's ``api_status``: the 4xx a request preferring JSON gets instead of the
    302 (default 401), or None for ``false`` (redirect everyone)."""
    value = data.get("api_status", 401)
    if value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 499:
        c.bad(f"{key}.api_status", f"is {value!r}", "expected a 4xx status such as 401, or false to redirect API clients too")
        return 401
    return value


# ---------------------------------------------------------------- [locale]


def load_locale(c: Problems, doc: Doc, server: Server) -> Locale | None:
    if "locale" not in doc:
        return None
    ld = c.table(doc.get("locale"), "locale")
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
    if header is not None and not server.trusted_proxies:
        # The country header is only believed from trusted proxies (anyone else could set it).
        c.warn(
            "locale.country_from",
            f"header {header} is only read from [server] trusted_proxies, which is empty, so every visitor gets default_country {dc}",
            "expected trusted_proxies listing the proxy or CDN that sets it",
        )
    return Locale(header, dc, countries, languages)


# ---------------------------------------------------------------- [experiments.*]


def load_experiments(c: Problems, doc: Doc) -> dict[str, Experiment]:
    experiments: dict[str, Experiment] = {}
    for name, ed in c.table(doc.get("experiments"), "experiments").items():
        key = f"experiments.{name}"
        ed = c.table(ed, key)
        c.known(ed, key, {"cookie", "variants", "max_age", "header"})
        cookie = c.string(ed, key, "cookie", required=True)
        if cookie is not None and not HEADER_NAME_RE.match(cookie):
            c.bad(f"{key}.cookie", f"is {cookie!r}", "expected a cookie name")
            cookie = None
        names, weights = [], []
        for v, w in c.table(ed.get("variants"), f"{key}.variants").items():
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
    return experiments


# ---------------------------------------------------------------- [kv.*]


def load_kv(c: Problems, doc: Doc, base: Path) -> dict[str, KVConfig]:
    kv: dict[str, KVConfig] = {}
    for name, kd in c.table(doc.get("kv"), "kv").items():
        key = f"kv.{name}"
        kd = c.table(kd, key)
        c.known(kd, key, {"backend", "path", "url", "cache_ttl", "prefix"})
        backend = c.string(kd, key, "backend", default="file")
        ttl = c.duration(kd, key, "cache_ttl", 5.0)
        if backend == "file":
            path_s = c.string(kd, key, "path", required=True)
            if path_s is not None:
                fp = Path(path_s)
                fp = fp if fp.is_absolute() else base / fp
                if _kv_file_usable(c, f"{key}.path", fp):
                    kv[name] = KVConfig(name, "file", path=fp, cache_ttl=ttl or 0.0)
        elif backend == "redis":
            url = c.string(kd, key, "url", required=True)
            if url is not None and not re.match(r"^rediss?://", url):
                c.bad(f"{key}.url", f"is {url!r}", 'expected "redis://HOST:PORT/DB"')
            elif url is not None:
                prefix = c.string(kd, key, "prefix", default=f"{name}:") or ""
                kv[name] = KVConfig(name, "redis", url=url, cache_ttl=ttl if ttl is not None else 5.0, prefix=prefix)
        else:
            c.bad(f"{key}.backend", f"is {backend!r}", 'expected "file" or "redis"')
    return kv


def _kv_file_usable(c: Problems, key: str, path: Path) -> bool:
    """Whether a file KV can be served from. At run time a file that goes bad keeps its last values
    (gateway.kv.FileKV), but at load there are none to keep: every lookup would quietly fall back
    to its default, so `gateway check` and a reload say which file is wrong instead."""
    expected = 'expected a JSON object file such as {"KR": {"currency": "KRW"}}'
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as e:
        c.bad(key, f"cannot read {path}: {e.strerror}", expected)
        return False
    except orjson.JSONDecodeError as e:
        c.bad(key, f"{path} is not valid JSON: {e}", expected)
        return False
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(data), "a number")
        c.bad(key, f"{path} holds {kind}, not a JSON object", expected)
        return False
    return True


# ---------------------------------------------------------------- [[routes]]

ROUTE_KEYS = {
    "match", "methods", "host", "has", "missing", "auth", "origin", "max_body", "locale", "experiment", "response_headers", "request_headers", "timeout",
    "cors", "require", "websocket", "ws_idle_timeout", "ws_max_message", "hooks", "rate_limit",
}  # fmt: skip
MATCH_EXPECTED = 'expected a path pattern such as "/dashboard/:path*" or a list of them'


def load_routes(
    c: Problems,
    doc: Doc,
    *,
    origins: dict[str, Origin],
    auth: dict[str, AuthPolicy],
    locale: Locale | None,
    experiments: dict[str, Experiment],
    kv: dict[str, KVConfig],
    cors: dict[str, CorsPolicy] | None = None,
    hooks: HooksConfig | None = None,
    limits: dict[str, RateLimit] | None = None,
) -> tuple[list[Route], _core.RouteSet | None]:
    """The routes, and the RouteSet matching them (None when a pattern is unusable)."""
    rdata = doc.get("routes", [])
    if not isinstance(rdata, list):
        c.bad("routes", f"is {type(rdata).__name__}", "expected [[routes]] tables")
        rdata = []
    if not rdata:
        c.bad("routes", "is empty", "expected at least one [[routes]] table")
    # Names declared in the file, usable or not: a reference to a declared-but-broken table was
    # reported with that table and is not reported again as unknown.
    declared_origins = sorted(c.table(doc.get("origins"), "origins"))
    declared_auth = sorted(c.table(doc.get("auth"), "auth"))
    declared_experiments = sorted(c.table(doc.get("experiments"), "experiments"))
    declared_cors = sorted(c.table(doc.get("cors"), "cors"))
    declared_limits = sorted(c.table(doc.get("limits"), "limits"))

    tables = [c.table(rd, f"routes[{i}]") for i, rd in enumerate(rdata)]
    # The patterns first: templates are checked against the parameter names the router captures.
    before = len(c.problems)
    matches = []
    for i, rd in enumerate(tables):
        c.known(rd, f"routes[{i}]", ROUTE_KEYS)
        matches.append(_match(c, f"routes[{i}]", rd.get("match")))
    route_set = _route_set(c, matches) if len(c.problems) == before else None

    routes: list[Route] = []
    for i, (rd, match) in enumerate(zip(tables, matches, strict=True)):
        key = f"routes[{i}]"
        origin = c.string(rd, key, "origin", required=True)
        if origin is not None and origin not in origins and origin not in declared_origins:
            c.bad(f"{key}.origin", f"names unknown origin {origin!r}", f"expected one of: {', '.join(declared_origins) or '(no origins defined)'}")
        methods = rd.get("methods")
        mset = None
        if methods is not None:
            if not isinstance(methods, list) or not all(isinstance(m, str) and m.upper() in HTTP_METHODS for m in methods):
                c.bad(f"{key}.methods", f"is {methods!r}", f"expected a list of HTTP methods from {sorted(HTTP_METHODS)}")
            else:
                mset = frozenset(m.upper() for m in methods)
        auth_name = c.string(rd, key, "auth")
        if auth_name is not None and auth_name not in auth and auth_name not in declared_auth:
            c.bad(f"{key}.auth", f"names unknown auth policy {auth_name!r}", f"expected one of: {', '.join(declared_auth) or '(no [auth.*] defined)'}")
        exp = c.string(rd, key, "experiment")
        if exp is not None and exp not in experiments and exp not in declared_experiments:
            c.bad(f"{key}.experiment", f"names unknown experiment {exp!r}", f"expected one of: {', '.join(declared_experiments) or '(no [experiments.*] defined)'}")
        cors_name = c.string(rd, key, "cors")
        if cors_name is not None and cors_name not in (cors or {}) and cors_name not in declared_cors:
            c.bad(f"{key}.cors", f"names unknown CORS policy {cors_name!r}", f"expected one of: {', '.join(declared_cors) or '(no [cors.*] defined)'}")
        require = load_require(c, f"{key}.require", rd["require"]) if "require" in rd else None
        if "require" in rd and auth_name is None:
            c.bad(f"{key}.require", "is set on a route without auth", 'expected auth = "POLICY" on the route: claim rules decide on a verified token')
        loc = c.boolean(rd, key, "locale", False)
        if loc and locale is None:
            c.bad(f"{key}.locale", "is true but there is no [locale] table", "expected a [locale] table")
        names = {
            "claims": {"*"} if auth_name else set(),
            "params": _param_names(route_set, i),
            "experiments": set(experiments),
            "kv": set(kv),
        }
        response_headers = _headers_map(c, f"{key}.response_headers", rd.get("response_headers"), names)
        request_headers = _headers_map(c, f"{key}.request_headers", rd.get("request_headers"), names)
        if cors_name is not None and mset is not None and cors and cors_name in cors:
            # A preflight matches this route as the method it asks about, then the policy decides.
            refused = sorted(mset - set(cors[cors_name].methods) - {"OPTIONS"})
            if refused:
                c.warn(f"{key}.methods", f"lists {', '.join(refused)}, not in cors.{cors_name}.methods: browsers' preflights for them are refused", f"expected them in cors.{cors_name}.methods too")
        if cors_name is not None:
            for name, _ in response_headers:
                if name.lower().startswith("access-control-"):
                    c.warn(f"{key}.response_headers.{name}", f"is dropped: the route's cors policy {cors_name!r} is the only source of CORS headers", "expected it in [cors.NAME] instead")
        if not loc:
            _warn_locale_placeholders(c, f"{key}.response_headers", response_headers)
            _warn_locale_placeholders(c, f"{key}.request_headers", request_headers)
        routes.append(
            Route(
                index=i,
                match=match,
                origin=origin or "",
                methods=mset,
                host=_route_host(c, f"{key}.host", c.string(rd, key, "host")),
                has=_conditions(c, f"{key}.has", rd.get("has")),
                missing=_conditions(c, f"{key}.missing", rd.get("missing")),
                auth=auth_name,
                max_body=c.size(rd, key, "max_body", None),
                locale=loc,
                experiment=exp,
                response_headers=response_headers,
                request_headers=request_headers,
                timeout=c.duration(rd, key, "timeout", None),
                cors=cors_name,
                require=require,
                **_websocket_keys(c, key, rd),
                hooks=route_hooks(c, f"{key}.hooks", rd.get("hooks"), hooks, "hooks" in doc),
                rate_limit=_rate_limit_names(c, f"{key}.rate_limit", rd.get("rate_limit"), limits or {}, declared_limits, auth_name),
            )
        )
    return routes, (None if c.problems else route_set)


def _websocket_keys(c: Problems, key: str, rd: Doc) -> dict[str, Any]:
    """A route's websocket, ws_idle_timeout and ws_max_message (gateway.proxy.websocket)."""
    default = Route(index=0, match=[], origin="")
    idle = c.duration(rd, key, "ws_idle_timeout", default.ws_idle_timeout)
    if idle is not None and idle <= 0:
        c.bad(f"{key}.ws_idle_timeout", f"is {rd.get('ws_idle_timeout')!r}", 'expected a duration above 0 such as "1h"')
        idle = None
    biggest = c.size(rd, key, "ws_max_message", default.ws_max_message)
    if biggest is not None and biggest < 1:
        c.bad(f"{key}.ws_max_message", f"is {rd.get('ws_max_message')!r}", 'expected a size of at least 1 byte such as "1MB"')
        biggest = None
    return {
        "websocket": c.boolean(rd, key, "websocket", default.websocket),
        "ws_idle_timeout": idle if idle is not None else default.ws_idle_timeout,
        "ws_max_message": biggest if biggest is not None else default.ws_max_message,
    }


def _route_set(c: Problems, matches: list[list[str]]) -> _core.RouteSet | None:
    try:
        return _core.RouteSet(matches)
    except ValueError as e:
        # Each pattern compiled alone; together they can still be over the RegexSet's size limit.
        c.bad("routes", str(e), "expected fewer or simpler route patterns")
        return None


def _match(c: Problems, key: str, match: Any) -> list[str]:
    if isinstance(match, str):
        match = [match]
    if match is None:
        c.bad(f"{key}.match", "is missing", MATCH_EXPECTED)
        return []
    if not isinstance(match, list) or not match or not all(isinstance(m, str) for m in match):
        c.bad(f"{key}.match", f"is {match!r}", MATCH_EXPECTED)
        return []
    for j, m in enumerate(match):
        try:
            _core.compile_pattern(m)
        except ValueError as e:
            c.bad(f"{key}.match" + (f"[{j}]" if len(match) > 1 else ""), f"{m!r}: {e}", "expected Next.js matcher syntax: /path/:name, :name*, :name+, :name?, :name(regex)")
    return match


HOST_NAME_RE = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
NO_PORT = "expected a host name without a port: the port a client sends is never compared"


def _route_host(c: Problems, key: str, value: str | None) -> str | None:
    """A route's host as the request's host name is compared with it: lower-case, without one
    trailing dot; "[::1]" as "::1". A port is refused rather than dropped, so nobody believes a route
    is scoped to one port when it answers on every one."""
    if value is None:
        return None
    name = value.lower()
    if name.startswith("["):
        m = re.fullmatch(r"\[([0-9a-f:.]+)\](:\d*)?", name)
        if m is None:
            c.bad(key, f"is {value!r}", 'expected a host name such as "admin.example.com" or an address such as "[::1]"')
            return None
        name, port = m.group(1), m.group(2)
    else:
        # One colon is HOST:PORT; more are an IPv6 address written without brackets.
        name, colon, rest = name.partition(":") if name.count(":") == 1 else (name, "", "")
        port = colon + rest
    if port:
        c.bad(key, f"is {value!r}, which has a port", NO_PORT)
        return None
    if name.endswith("."):
        name = name[:-1]
    if HOST_NAME_RE.match(name) or (":" in name and _is_ip(name)):
        return name
    c.bad(key, f"is {value!r}", 'expected a host name such as "admin.example.com" or an address such as "[::1]"')
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _param_names(route_set: _core.RouteSet | None, index: int) -> set[str]:
    """The parameter names the router captures for a route, named and unnamed ("/(api|rpc)/:x"
    captures "0" and "x"): one source of truth, so `{params.0}` is accepted where it is set."""
    return set(route_set.param_names(index)) if route_set is not None else set()


def _conditions(c: Problems, key: str, data: Any) -> list[Condition]:
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
        flags = 0
        if typ == "host" and value is not None:
            # The value is matched against the request's host name (lower-case, no port, no trailing
            # dot): so case is ignored, a trailing escaped dot is dropped, and a port can never match.
            flags = re.IGNORECASE
            value = value.removesuffix("\\.")
            if re.search(r":\d+$", value):
                c.bad(f"{k}.value", f"is {value!r}, which has a port", NO_PORT)
                continue
        if value is not None:
            try:
                # Anchored like Next.js: the whole value must match. Matched by the core's linear-time
                # engine (RE2 syntax): the value is the client's, and a backtracking engine would let a
                # pattern with nested quantifiers hang the worker on a crafted header.
                pattern = _core.LinearRegex(f"(?i:{value})" if flags else value)
            except ValueError as e:
                first = str(e).strip().splitlines()[-1] if str(e).strip() else "invalid"
                c.bad(f"{k}.value", f"is not a valid regex: {first}", "expected a regular expression in RE2 syntax (no look-around or back-references)")
                continue
        if typ is None:
            continue
        src = f"{typ} {name or ''}".strip() + (f" ~ {value}" if value is not None else "")
        out.append(Condition(type=typ, key=(name or "").lower() if typ == "header" else (name or ""), value=pattern, source=src))
    return out


def _warn_locale_placeholders(c: Problems, key: str, headers: list[tuple[str, Template]]) -> None:
    """{country} and {lang} are only set on routes with locale = true; elsewhere they are empty, and
    a KV lookup keyed by them quietly falls back to its default."""
    for name, tpl in headers:
        used = tpl.kinds
        for kind in ("country", "lang"):
            if kind in used:
                c.warn(f"{key}.{name}", f"uses {{{kind}}} but this route has no locale = true, so it is always empty", "expected locale = true on the route")


def _headers_map(c: Problems, key: str, data: Any, names: dict[str, set[str]]) -> list[tuple[str, Template]]:
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
        if name.lower() in MANAGED_HEADERS:
            c.bad(k, "is a header the gateway manages", "expected a header of your own")
            continue
        if not isinstance(value, str):
            c.bad(k, f"is {value!r}", "expected a string, optionally with {placeholders}")
            continue
        try:
            out.append((name, Template.parse(value, names)))
        except TemplateError as e:
            c.bad(k, str(e), "see the README's Placeholders section")
    return out


def _rate_limit_names(c: Problems, key: str, data: Any, limits: dict[str, RateLimit], declared: list[str], auth_name: str | None) -> tuple[str, ...]:
    """A route's ``rate_limit``: names of ``[limits.*]`` tables, each once; a claim-keyed limit only
    on a route with ``auth`` (without a verified token there is no claim to count by)."""
    if data is None:
        return ()
    if isinstance(data, str):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
        c.bad(key, f"is {data!r}", 'expected a list of [limits.NAME] names such as ["per_ip", "per_user"]')
        return ()
    names: list[str] = []
    for j, name in enumerate(data):
        k = f"{key}[{j}]"
        if name in names:
            c.bad(k, f"names {name!r} twice", "expected each limit once")
        elif name not in limits:
            if name not in declared:
                c.bad(k, f"names unknown limit {name!r}", f"expected one of: {', '.join(declared) or '(no [limits.*] defined)'}")
        elif limits[name].after_auth and not auth_name:
            c.bad(k, f"{name!r} is keyed by a claim but this route has no auth", "expected auth = POLICY on the route, or a limit keyed by ip or header")
        else:
            names.append(name)
    return tuple(names)
