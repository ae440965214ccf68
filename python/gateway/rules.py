"""What the gateway does with one request, decided without sending anything.

``decide()`` is shared by ``gateway serve`` and ``gateway explain``, so what explain says is what
serve does. It normalizes the path once, picks the first route whose conditions all hold, runs
auth, locale and the experiment, and returns a ``Decision``: either a response to send now
(400, 302, 401, 404) or a request to forward.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gateway import _core
from gateway.config import HOP_BY_HOP, AuthAction, Config, Route

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
CLEAR_COOKIE_ATTRS = "; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax; Secure"


_QUERY_UNSAFE = re.compile(rb"[^\x21-\x7e]")


def wire_text(value: str) -> str:
    """A header value as the gateway holds it: latin-1 text, one character per byte on the wire, the
    way ASGI hands request headers over. Text the gateway makes itself (claims, templates) goes out
    as UTF-8, so it is turned into that form here."""
    return value if value.isascii() else value.encode("utf-8").decode("latin-1")


def display_text(value: str) -> str:
    """The inverse of `wire_text`, for people: wire bytes read as UTF-8 (invalid bytes as U+FFFD)."""
    return value if value.isascii() else value.encode("latin-1").decode("utf-8", "replace")


def query_text(raw: bytes) -> str:
    """The query string as the gateway uses and forwards it: bytes a client must percent-encode
    (controls, space, DEL, anything outside ASCII) are percent-encoded; everything else is kept
    exactly, so `?q=caf\xc3\xa9` is forwarded, and put in a login redirect's `next`, as `q=caf%C3%A9`."""
    if not _QUERY_UNSAFE.search(raw):
        return raw.decode("ascii")
    return "".join(chr(b) if 0x21 <= b <= 0x7E else f"%{b:02X}" for b in raw)


@dataclass
class Decision:
    method: str
    raw_path: str
    query: str
    normalized_path: str | None = None
    route: Route | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    auth_policy: str | None = None
    auth_outcome: str = "none"  # none | missing | valid | invalid
    auth_reason: str | None = None
    action: str = "proxy"  # proxy | redirect | respond
    status: int = 200
    location: str | None = None
    body: bytes = b""
    content_type: str | None = None
    origin: str | None = None
    upstream_path: str | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    remove_headers: set[str] = field(default_factory=set)
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    set_cookies: list[str] = field(default_factory=list)
    www_authenticate: str | None = None
    ctx: dict[str, Any] = field(default_factory=dict)

    def respond(self, status: int, error: str, detail: str) -> Decision:
        self.action = "respond"
        self.status = status
        self.body = orjson.dumps({"error": error, "detail": detail})
        self.content_type = "application/json"
        return self


# Never forwarded from the client: hop-by-hop headers, and the forwarding headers the gateway writes
# itself. Expect was answered by the server already; the origin gets the body straight away.
_ALWAYS_DROPPED = frozenset(HOP_BY_HOP | {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip", "expect"})


def peer_is_trusted(config: Config, peer: str | None) -> bool:
    # The verdict cache lives on the Server object (see Server.is_trusted), not under id(config).
    return config.server.is_trusted(peer)


def host_name(host: str | None) -> str | None:
    """The Host header as routes compare it (as _core.Request.host_name will): lower-case, port
    removed, one trailing dot removed, "[::1]:8080" as "::1"; None when absent or empty. Route hosts
    are normalized the same way at load, so a port or a trailing dot cannot skip a host-scoped route."""
    if not host:
        return None
    h = host.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        h = h[1:end] if end > 0 else h
    elif h.count(":") == 1:
        h = h.partition(":")[0]
    return h.removesuffix(".") or None


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k == name:
            return v
    return None


def _all(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k == name]


def _cookie_header(headers: list[tuple[str, str]]) -> str:
    # Several Cookie headers are joined as HTTP/2 does; the first cookie of a name wins.
    return "; ".join(_all(headers, "cookie"))


def _condition_holds(cond: Any, headers: list[tuple[str, str]], query: dict[str, str], host: str | None) -> bool:
    if cond.type == "header":
        value = _header(headers, cond.key)
    elif cond.type == "cookie":
        value = _core.cookie_value(_cookie_header(headers), cond.key)
    elif cond.type == "query":
        value = query.get(cond.key)
    else:
        value = host
    if value is None:
        return False
    return cond.value is None or cond.value.match(value) is not None


def _why_not(route: Route, method: str, headers: list[tuple[str, str]], query: dict[str, str], host: str | None) -> str | None:
    if route.methods is not None and method not in route.methods:
        return f"method {method} is not in {sorted(route.methods)}"
    if route.host is not None and host != route.host:
        return f"host {host!r} is not {route.host!r}"
    for cond in route.has:
        if not _condition_holds(cond, headers, query, host):
            return f"has: {cond.describe()} does not hold"
    for cond in route.missing:
        if _condition_holds(cond, headers, query, host):
            return f"missing: {cond.describe()} is present"
    return None


def _token(policy: Any, headers: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """The first token found in the policy's sources, or (None, reason-if-ambiguous)."""
    for kind, name in policy.token_from:
        if kind == "cookie":
            value = _core.cookie_value(_cookie_header(headers), name)
            if value:
                return value, None
        elif kind == "bearer":
            values = _all(headers, "authorization")
            if len(values) > 1:
                return None, "more than one Authorization header"
            if values:
                scheme, _, cred = values[0].strip().partition(" ")
                if scheme.lower() == "bearer" and cred.strip():
                    return cred.strip(), None
        else:
            values = _all(headers, name)
            if len(values) > 1:
                return None, f"more than one {name} header"
            if values and values[0].strip():
                return values[0].strip(), None
    return None, None


def _claim_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return orjson.dumps(v).decode()


def _apply_action(d: Decision, action: AuthAction, outcome: str, reason: str | None) -> Decision:
    d.auth_outcome = outcome
    d.auth_reason = reason
    if action.clear_cookie:
        d.set_cookies.append(f"{action.clear_cookie}={CLEAR_COOKIE_ATTRS}")
    if action.redirect is not None:
        original = d.normalized_path or "/"
        if d.query:
            original += "?" + d.query
        sep = "&" if "?" in action.redirect else "?"
        d.action = "redirect"
        d.status = 302
        # `next` is fully percent-encoded, so it can never read as //host or /\host.
        d.location = f"{action.redirect}{sep}next={_core.percent_encode(original)}"
        return d
    status = action.status or 401
    d.action = "respond"
    d.status = status
    d.content_type = "application/json"
    if outcome == "missing":
        d.www_authenticate = 'Bearer realm="gateway"'
        d.body = orjson.dumps({"error": "unauthorized", "detail": "a token is required"})
    else:
        d.www_authenticate = 'Bearer realm="gateway", error="invalid_token"'
        d.body = orjson.dumps({"error": "invalid_token", "detail": reason or "the token is not valid"})
    return d


def decide(
    config: Config,
    method: str,
    raw_path: bytes | str,
    query: str,
    headers: list[tuple[str, str]],
    peer: str | None,
    rng: random.Random | None = None,
    now: float | None = None,
    explain: bool = False,
) -> Decision:
    """Decides what to do with a request. ``headers`` are (lower-case name, value) pairs."""
    raw = raw_path if isinstance(raw_path, str) else raw_path.decode("latin-1")
    d = Decision(method=method.upper(), raw_path=raw, query=query)
    try:
        path = _core.normalize_path(raw_path)
    except ValueError as e:
        return d.respond(400, "bad_request", str(e))
    d.normalized_path = path
    host = host_name(_header(headers, "host"))
    qdict = dict(parse_qsl(query, keep_blank_values=True)) if query and config.query_conditions else {}

    # The RegexSet already narrowed the routes to those whose path matches; serve only looks at
    # those, so the cost does not grow with the number of routes. Explain also lists why each
    # earlier route was passed over.
    candidates = config.route_set.matching_routes(path)
    route = None
    for index in candidates:
        r = config.routes[index]
        why = _why_not(r, d.method, headers, qdict, host)
        if why is None:
            route = r
            break
        if explain:
            d.skipped.append({"index": r.index, "match": r.label(), "reason": why})
    if explain:
        last = route.index if route is not None else len(config.routes)
        candidate_set = set(candidates)
        d.skipped.extend(
            {"index": r.index, "match": r.label(), "reason": f"path {path} does not match"}
            for r in config.routes[:last]
            if r.index not in candidate_set
        )
        d.skipped.sort(key=lambda s: s["index"])
        d.skipped = [s for s in d.skipped if s["index"] < last][-50:]
    if route is None:
        return d.respond(404, "not_found", "no route matches this request")
    d.route = route
    origin = config.origins[route.origin]
    d.origin = origin.name
    # Path parameters feed templates only; routes without templates skip the capture pass.
    params = (config.route_set.params(route.index, path) or {}) if explain or route.request_headers or route.response_headers else {}
    ctx: dict[str, Any] = {"params": params, "claims": {}, "experiments": {}, "country": None, "lang": None, "variant": None}
    d.ctx = ctx

    # Headers the gateway owns are never taken from the client.
    d.remove_headers |= config.forwarded_claim_headers

    if route.auth:
        policy = config.auth[route.auth]
        d.auth_policy = policy.name
        token, ambiguity = _token(policy, headers)
        if token is None and ambiguity:
            return _apply_action(d, policy.on_invalid, "invalid", ambiguity)
        if token is None:
            return _apply_action(d, policy.on_missing, "missing", policy.missing_reason)
        try:
            claims = policy.verifier.verify(token) if now is None else policy.verifier.verify(token, now)
        except _core.JWTError as e:
            return _apply_action(d, policy.on_invalid, "invalid", f"{type(e).__name__}: {e}")
        d.auth_outcome = "valid"
        ctx["claims"] = claims
        for claim, header in policy.forward_claims.items():
            if claims.get(claim) is not None:
                text = _claim_text(claims[claim])
                # A claim that cannot be a header value (control characters) is not forwarded;
                # the header is still removed from the client's request.
                if not _CONTROL.search(text) and len(text) <= 4096:
                    d.request_headers[header] = text

    upstream_path = path
    if route.locale and config.locale is not None:
        loc = config.locale
        country = None
        if loc.country_header and peer_is_trusted(config, peer):
            raw_country = (_header(headers, loc.country_header) or "").strip().upper()
            if len(raw_country) == 2 and raw_country.isalpha() and raw_country.isascii():
                country = raw_country
        country = country or loc.default_country
        ctx["country"] = country
        # "*" says any language will do: that is no reason to move the visitor to a locale.
        accept = ",".join(e for e in (_header(headers, "accept-language") or "").split(",") if e.split(";")[0].strip() != "*")
        lang = _core.best_language(accept, list(loc.languages)) if accept and loc.languages else None
        ctx["lang"] = lang
        prefix = loc.countries.get(country) or (loc.languages.get(lang) if lang else None)
        already = any(upstream_path == p or upstream_path.startswith(p + "/") for p in config.locale_prefixes)
        if prefix and not already:
            upstream_path = prefix if upstream_path == "/" else prefix + upstream_path

    if route.experiment:
        exp = config.experiments[route.experiment]
        current = _core.cookie_value(_cookie_header(headers), exp.cookie)
        if current in exp.variants:
            variant = current
        else:
            variant = (rng or random).choices(exp.variants, cum_weights=exp.cum_weights)[0]
            d.set_cookies.append(_core.set_cookie(exp.cookie, variant, max_age=exp.max_age))
        ctx["variant"] = variant
        ctx["experiments"][exp.name] = variant
        if exp.header:
            d.request_headers[exp.header] = variant

    d.upstream_path = origin.base_path + upstream_path
    return d


def forward_headers(config: Config, d: Decision, headers: list[tuple[str, str]], peer: str | None, scheme: str) -> list[tuple[str, str]]:
    """The request headers to send to the origin: hop-by-hop and gateway-owned ones removed,
    X-Forwarded-* appended (trusted peers) or replaced (everyone else), route headers set."""
    trusted = peer_is_trusted(config, peer)
    drop = _ALWAYS_DROPPED | d.remove_headers
    if d.request_headers:
        drop = drop | {h.lower() for h in d.request_headers}
    for v in _all(headers, "connection"):
        drop = drop | {t.strip().lower() for t in v.split(",")}
    if config.locale and config.locale.country_header and not trusted:
        drop = drop | {config.locale.country_header}
    out = [(k, v) for k, v in headers if k not in drop]
    xff = _all(headers, "x-forwarded-for") if trusted else []
    chain = ", ".join([*xff, peer] if peer else xff)
    if chain:
        out.append(("x-forwarded-for", chain))
    proto = (_header(headers, "x-forwarded-proto") if trusted else None) or scheme
    out.append(("x-forwarded-proto", proto))
    host = _header(headers, "host")
    if host:
        out.append(("x-forwarded-host", (_header(headers, "x-forwarded-host") if trusted else None) or host))
    out.extend((k, wire_text(v)) for k, v in d.request_headers.items())
    return out
