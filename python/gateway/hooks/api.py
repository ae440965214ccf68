"""The public values of Python hooks: ``gateway.hook``, what a hook receives, and what it returns.

A hook is a plain function (sync or ``async``) marked with ``@gateway.hook(stage)``. It receives one
immutable `HookRequest` snapshot (and, at the ``response`` stage, a `HookResponse`) and returns its
changes as one value: ``None`` (go on), `Respond` (answer now), `Forward` (change what the origin is
sent) or `ResponseChanges` (change what the client gets back). See docs/hooks.md.

The values check their own shape when they are made (types, header-name syntax, no CR/LF in a value,
a status in 200..599), so a mistake raises in the hook, with the hook's own line in the traceback.
What depends on the config (an origin that exists, a header the gateway manages) is checked when the
gateway applies the value.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

if TYPE_CHECKING:
    from gateway._core import Request

__all__ = [
    "HOOK_STAGES",
    "Forward",
    "HookInfo",
    "HookRequest",
    "HookResponse",
    "Headers",
    "Respond",
    "ResponseChanges",
    "hook",
]

# Where a hook can run, in the order a request meets them.
HOOK_STAGES = ("early", "request", "response")
HOOK_ATTRIBUTE = "__gateway_hook__"

# RFC 9110 §5.1: a field name is a token.
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# RFC 9110 §5.5: a field value never holds CR, LF or NUL; other controls but HTAB are refused too.
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# A Set-Cookie value (RFC 6265 §4.1): printable ASCII and spaces, no controls.
_COOKIE_RE = re.compile(r"^[\x20-\x7e]+$")

Stage = Literal["early", "request", "response"]
F = TypeVar("F", bound=Callable[..., Any])


class HookInfo:
    """What ``@gateway.hook`` records on a function: its stage and the name routes list it by."""

    __slots__ = ("stage", "name")

    def __init__(self, stage: str, name: str):
        self.stage = stage
        self.name = name

    def __repr__(self) -> str:
        return f"HookInfo(stage={self.stage!r}, name={self.name!r})"


def hook(stage: Stage | str, *, name: str | None = None) -> Callable[[F], F]:
    """Marks a function as a hook of ``stage`` ("early", "request" or "response").

    Routes list it by ``name`` (default: the function's ``__name__``) in their ``hooks = [...]``.
    The function is returned unchanged, so a test can call it directly. A stage that is not one of
    `HOOK_STAGES` is recorded as written: ``gateway check`` refuses a route that names such a hook
    (a typo should be an error at load, naming the route, not an import failure).
    """
    if not isinstance(stage, str):
        raise TypeError(f"gateway.hook(stage): stage must be a string such as 'request', got {type(stage).__name__}")
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError("gateway.hook(name=...): name must be a non-empty string")

    def mark(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@gateway.hook({stage!r}) must decorate a function, got {type(fn).__name__}")
        setattr(fn, HOOK_ATTRIBUTE, HookInfo(stage, name or str(getattr(fn, "__name__", "hook"))))
        return fn

    return mark


# --------------------------------------------------------------------------------------------
# what a hook receives
# --------------------------------------------------------------------------------------------


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive view of header fields: name -> value (``str``).

    Names are compared without case and iterate lower-case. A field sent more than once reads as its
    values joined with ", " (RFC 9110 §5.3); `get_all` gives them one by one (use it for Set-Cookie,
    which cannot be joined). Values are the wire bytes as latin-1 text, one character per byte.
    """

    __slots__ = ("_pairs", "_map")

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self._pairs = tuple((k.lower(), v) for k, v in pairs)
        merged: dict[str, list[str]] = {}
        for k, v in self._pairs:
            merged.setdefault(k, []).append(v)
        self._map = {k: ", ".join(vs) for k, vs in merged.items()}

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of ``name`` in the order sent (empty when absent)."""
        name = name.lower()
        return tuple(v for k, v in self._pairs if k == name)

    def items_all(self) -> tuple[tuple[str, str], ...]:
        """Every (lower-case name, value) pair in the order sent."""
        return self._pairs

    def __repr__(self) -> str:
        return f"Headers({dict(self._map)!r})"


_UNSET: Any = object()
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class HookRequest:
    """The request as a hook sees it: one immutable snapshot, made once per hook stage. Its fields
    are read-only properties; mappings are read-only views.

    Fields (see docs/hooks.md for when each is set):

    - ``method`` (str): the request method, e.g. "GET".
    - ``path`` (str): the normalized path (percent-encoded where needed, dot segments removed).
    - ``query`` (str): the query string without "?", as forwarded ("" when none).
    - ``headers`` (`Headers`): the client's request headers the gateway believes: never a
      forwarded-claim header, and X-Forwarded-*, Forwarded, X-Real-IP and the geo header only from a
      trusted proxy. Includes Cookie and Authorization.
    - ``client`` (str | None): the client's address; behind ``server.trusted_proxies``, the
      right-most X-Forwarded-For address that is not a trusted proxy.
    - ``route`` (str): the matching route's ``match`` pattern (several joined with " | ").
    - ``params`` (Mapping[str, str]): the route's path parameters.
    - ``claims`` (Mapping[str, Any]): the verified token's claims; empty at ``early`` and on routes
      without auth.
    - ``country``, ``lang`` (str | None): from the locale stage (routes with ``locale = true``).
    - ``variants`` (Mapping[str, str]): experiment name -> the visitor's variant.
    - ``dry_run`` (bool): true under ``gateway explain``: answer as serve would, but cause no effects.
    - ``kv(namespace, key)``: an awaitable of the value in a ``[kv.NAME]`` namespace (None if absent).

    The gateway's snapshots read what the stages before decided, which no later stage changes, and
    make what is derived (the header view, the client address, the parameters, the read-only views)
    on first read: a hook pays only for the fields it reads.
    """

    __slots__ = ("_method", "_path", "_query", "_route", "_params", "_claims", "_country", "_lang", "_variants", "_dry_run", "_headers", "_client", "_kv")
    _method: str
    _path: str
    _query: str
    _route: str
    _params: Mapping[str, str]
    _claims: Mapping[str, Any]
    _country: str | None
    _lang: str | None
    _variants: Mapping[str, str]
    _dry_run: bool
    _headers: Headers
    _client: str | None
    _kv: Callable[[str, str], Awaitable[Any]] | None

    def __init__(
        self,
        *,
        method: str,
        path: str,
        query: str = "",
        route: str = "",
        params: Mapping[str, str] | None = None,
        claims: Mapping[str, Any] | None = None,
        country: str | None = None,
        lang: str | None = None,
        variants: Mapping[str, str] | None = None,
        dry_run: bool = False,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        client: str | None = None,
        kv: Callable[[str, str], Awaitable[Any]] | None = None,
    ):
        """For tests of hooks: a snapshot with these fields (``headers`` a mapping or pairs, ``kv``
        an async function of (namespace, key)). The gateway makes its own without this constructor."""
        self._method = method
        self._path = path
        self._query = query
        self._route = route
        self._params = _view(params)
        self._claims = _view(claims)
        self._country = country
        self._lang = lang
        self._variants = _view(variants)
        self._dry_run = dry_run
        self._headers = Headers(headers.items() if isinstance(headers, Mapping) else headers) if headers is not None else Headers(())
        self._client = client
        self._kv = kv

    @property
    def method(self) -> str:
        """The request method."""
        return self._method

    @property
    def path(self) -> str:
        """The normalized path."""
        return self._path

    @property
    def query(self) -> str:
        """The query string without '?'."""
        return self._query

    @property
    def route(self) -> str:
        """The matching route's match pattern (several joined with " | ")."""
        return self._route

    @property
    def params(self) -> Mapping[str, str]:
        """The route's path parameters."""
        return self._params

    @property
    def claims(self) -> Mapping[str, Any]:
        """The verified claims (empty at early, or without auth)."""
        return self._claims

    @property
    def country(self) -> str | None:
        return self._country

    @property
    def lang(self) -> str | None:
        return self._lang

    @property
    def variants(self) -> Mapping[str, str]:
        """Experiment name -> variant."""
        return self._variants

    @property
    def dry_run(self) -> bool:
        """True under gateway explain."""
        return self._dry_run

    @property
    def headers(self) -> Headers:
        """The client's headers the gateway believes (see the class docstring)."""
        return self._headers

    @property
    def client(self) -> str | None:
        """The client's address, trusted-proxy aware."""
        return self._client

    def kv(self, namespace: str, key: str) -> Awaitable[Any]:
        """An awaitable of ``key``'s value in the ``[kv.NAMESPACE]`` store: ``await req.kv("flags", "beta")``.

        Read-only. None when the key is absent or the store is unavailable (the store keeps serving
        its last values, see the README's KV section). KeyError for a namespace the config lacks.
        Use it from an ``async`` hook; its time counts against ``[hooks] timeout``."""
        if self._kv is None:
            raise KeyError(f"no KV store is available here (asked for {namespace!r})")
        return self._kv(namespace, key)

    def __repr__(self) -> str:
        return f"HookRequest(method={self.method!r}, path={self.path!r}, route={self.route!r})"


def _view(m: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return _EMPTY if m is None else MappingProxyType(m) if type(m) is dict else m


class _StageSnapshot(HookRequest):
    """The gateway's snapshot for one stage: the request's context and whether the stage is
    ``early`` (before auth: no claims, locale or variants yet). Two stores per request; every field
    is read from the context when a hook asks for it (what the stages before decided, which nothing
    later changes), derived fields once."""

    __slots__ = ("_ctx", "_early")
    _ctx: Any  # gateway.context.RequestContext
    _early: bool

    @property
    def method(self) -> str:
        return self._ctx.request.method  # type: ignore[no-any-return]

    @property
    def path(self) -> str:
        return self._ctx.path  # type: ignore[no-any-return]

    @property
    def query(self) -> str:
        return self._ctx.request.query  # type: ignore[no-any-return]

    @property
    def route(self) -> str:
        return self._ctx.route.label()  # type: ignore[no-any-return]

    @property
    def params(self) -> Mapping[str, str]:
        p = getattr(self, "_params", None)
        if p is None:
            ctx = self._ctx
            # Routes whose templates use no {params.*} skip the capture in the match stage.
            p = self._params = _view(ctx.params or ctx.config.route_set.params(ctx.route.index, ctx.path) or {})
        return p

    @property
    def claims(self) -> Mapping[str, Any]:
        return _EMPTY if self._early else _view(self._ctx.claims)

    @property
    def country(self) -> str | None:
        return None if self._early else self._ctx.country  # type: ignore[no-any-return]

    @property
    def lang(self) -> str | None:
        return None if self._early else self._ctx.lang  # type: ignore[no-any-return]

    @property
    def variants(self) -> Mapping[str, str]:
        return _EMPTY if self._early else _view(self._ctx.experiments)

    @property
    def dry_run(self) -> bool:
        return self._ctx.dry_run  # type: ignore[no-any-return]

    @property
    def headers(self) -> Headers:
        h: Headers | None = getattr(self, "_headers", None)
        if h is None:
            ctx = self._ctx
            request, config = ctx.request, ctx.config
            hidden = config.hook_hidden_headers[config.server.is_trusted(request.client)]
            h = self._headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.forward_headers(hidden))
        return h

    @property
    def client(self) -> str | None:
        c = getattr(self, "_client", _UNSET)
        if c is _UNSET:
            request = self._ctx.request
            trust = self._ctx.config.server.is_trusted
            c = self._client = _client_address(request, trust(request.client), trust)
        return c  # type: ignore[no-any-return]

    def kv(self, namespace: str, key: str) -> Awaitable[Any]:
        ctx = self._ctx
        if ctx.kv is None:
            raise KeyError(f"no KV store is available here (asked for {namespace!r})")
        if namespace not in ctx.config.kv:
            raise KeyError(f"no [kv.{namespace}] in the config (have: {', '.join(sorted(ctx.config.kv)) or 'none'})")
        return ctx.kv.get(namespace, key)  # type: ignore[no-any-return]


def _client_address(request: Request, trusted: bool, trust: Callable[[str], bool] | None) -> str | None:
    """The peer; from a trusted proxy, the right-most X-Forwarded-For entry that is not a trusted
    proxy itself (each proxy appends the address it saw; only the trusted ones can be believed)."""
    peer = request.client
    if not trusted or trust is None:
        return peer
    chain = [p.strip() for v in request.header_values("x-forwarded-for") for p in v.split(",")]
    chain = [p for p in chain if p]
    for hop in reversed(chain):
        address = hop
        if address.startswith("[") and "]" in address:  # [v6]:port
            address = address[1 : address.index("]")]
        elif address.count(":") == 1:  # v4:port
            address = address.split(":", 1)[0]
        if not trust(address):
            return address
    return chain[0] if chain else peer


class HookResponse:
    """The origin's answer as a ``response`` hook sees it: ``status`` (int) and ``headers``
    (`Headers`: what the client is about to get, before the gateway's own Set-Cookies). Never the body."""

    __slots__ = ("_status", "_headers")
    _status: int
    _headers: Headers

    def __init__(self, status: int, headers: Mapping[str, str] | Iterable[tuple[str, str]]):
        self._status = status
        self._headers = headers if isinstance(headers, Headers) else Headers(headers.items() if isinstance(headers, Mapping) else headers)

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Headers:
        return self._headers

    def __repr__(self) -> str:
        return f"HookResponse(status={self._status!r})"


# --------------------------------------------------------------------------------------------
# what a hook returns
# --------------------------------------------------------------------------------------------


def _header_pairs(what: str, value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping of header name -> str, got {type(value).__name__}")
    out = []
    for k, v in value.items():
        if not isinstance(k, str) or not _TOKEN_RE.match(k):
            raise ValueError(f"{what}: {k!r} is not a header name (RFC 9110 §5.1: letters, digits and !#$%&'*+-.^_`|~)")
        if not isinstance(v, str):
            raise TypeError(f"{what}[{k!r}] must be a str, got {type(v).__name__}")
        if _BAD_VALUE_RE.search(v):
            raise ValueError(f"{what}[{k!r}] holds a control character (CR, LF, NUL, ...), which a header value cannot")
        out.append((k, v))
    return tuple(out)


def _names(what: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise TypeError(f"{what} must be a list of header names, got {type(value).__name__}") from None
    for n in names:
        if not isinstance(n, str) or not _TOKEN_RE.match(n):
            raise ValueError(f"{what}: {n!r} is not a header name")
    return names


def _cookies(what: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        cookies = tuple(value)
    except TypeError:
        raise TypeError(f"{what} must be a list of Set-Cookie values, got {type(value).__name__}") from None
    for c in cookies:
        if not isinstance(c, str):
            raise TypeError(f"{what}: each must be a str (a whole Set-Cookie value; see gateway.set_cookie), got {type(c).__name__}")
        name = c.split(";", 1)[0].split("=", 1)
        if not _COOKIE_RE.match(c) or len(name) != 2 or not _TOKEN_RE.match(name[0].strip() or "-x-"):
            raise ValueError(f"{what}: not a Set-Cookie value NAME=VALUE[; attributes] in printable ASCII (see gateway.set_cookie)")
    return cookies


class _Value:
    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        names: tuple[str, ...] = self.__slots__
        return type(other) is type(self) and all(getattr(self, s) == getattr(other, s) for s in names)

    def __hash__(self) -> int:
        names: tuple[str, ...] = self.__slots__
        return hash((type(self).__name__, *(repr(getattr(self, s)) for s in names)))

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{s}={getattr(self, s)!r}" for s in names if getattr(self, s) not in (None, ()))
        return f"{type(self).__name__}({fields})"


class Respond(_Value):
    """Answer the request now, without asking the origin.

    ``status``: 200..599. ``json``: any value orjson can encode (sent as application/json);
    ``body``: ``str`` (sent as UTF-8, text/plain) or ``bytes`` (application/octet-stream); at most
    one of them. ``headers``: name -> value; a Content-Type given here wins. Set-Cookie may be set
    here; Content-Length, Transfer-Encoding and hop-by-hop headers may not (the gateway frames the body).
    """

    __slots__ = ("status", "json", "body", "headers")
    status: int
    json: Any
    body: str | bytes | None
    headers: tuple[tuple[str, str], ...]

    def __init__(self, status: int, json: Any = None, body: str | bytes | None = None, headers: Mapping[str, str] | None = None):
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(f"Respond(status): expected an int from 200 to 599, got {status!r}")
        if json is not None and body is not None:
            raise ValueError("Respond: give json or body, not both")
        if body is not None and not isinstance(body, (str, bytes)):
            raise TypeError(f"Respond(body): expected str or bytes, got {type(body).__name__}")
        self._set("status", status)
        self._set("json", json)
        self._set("body", body)
        self._set("headers", _header_pairs("Respond(headers)", headers))


class Forward(_Value):
    """Go on to the origin, with changes (``request`` hooks only).

    ``set_headers``: name -> value sent to the origin (the client's copy of that name is not);
    ``remove_headers``: names not sent (the client's copy and any value a stage set);
    ``path``: the upstream path instead of the (possibly locale-prefixed) one, "/..." without a query
    (normalized like a request path); ``origin``: the name of another ``[origins.NAME]``;
    ``set_cookies``: Set-Cookie values added to the client's response (see `gateway.set_cookie`).
    """

    __slots__ = ("set_headers", "remove_headers", "path", "origin", "set_cookies")
    set_headers: tuple[tuple[str, str], ...]
    remove_headers: tuple[str, ...]
    path: str | None
    origin: str | None
    set_cookies: tuple[str, ...]

    def __init__(
        self,
        set_headers: Mapping[str, str] | None = None,
        remove_headers: Iterable[str] = (),
        path: str | None = None,
        origin: str | None = None,
        set_cookies: Iterable[str] = (),
    ):
        if path is not None:
            if not isinstance(path, str):
                raise TypeError(f"Forward(path): expected a str, got {type(path).__name__}")
            if not path.startswith("/") or "?" in path or "#" in path or _BAD_VALUE_RE.search(path):
                raise ValueError("Forward(path): expected an absolute path such as '/v2/items' without '?', '#' or control characters (the query is forwarded as sent)")
        if origin is not None and not isinstance(origin, str):
            raise TypeError(f"Forward(origin): expected the name of an [origins.NAME], got {type(origin).__name__}")
        self._set("set_headers", _header_pairs("Forward(set_headers)", set_headers))
        self._set("remove_headers", _names("Forward(remove_headers)", remove_headers))
        self._set("path", path)
        self._set("origin", origin)
        self._set("set_cookies", _cookies("Forward(set_cookies)", set_cookies))


class ResponseChanges(_Value):
    """Changes to the origin's response headers (``response`` hooks only): ``set_headers`` replaces
    every field of that name, ``remove_headers`` drops the origin's fields of those names,
    ``set_cookies`` adds Set-Cookie values. The body is never seen nor changed."""

    __slots__ = ("set_headers", "remove_headers", "set_cookies")
    set_headers: tuple[tuple[str, str], ...]
    remove_headers: tuple[str, ...]
    set_cookies: tuple[str, ...]

    def __init__(self, set_headers: Mapping[str, str] | None = None, remove_headers: Iterable[str] = (), set_cookies: Iterable[str] = ()):
        self._set("set_headers", _header_pairs("ResponseChanges(set_headers)", set_headers))
        self._set("remove_headers", _names("ResponseChanges(remove_headers)", remove_headers))
        self._set("set_cookies", _cookies("ResponseChanges(set_cookies)", set_cookies))


@overload
def describe(value: None) -> None: ...
@overload
def describe(value: Respond | Forward | ResponseChanges) -> dict[str, Any]: ...
def describe(value: Respond | Forward | ResponseChanges | None) -> dict[str, Any] | None:
    """A hook's return value as JSON-able data, for explain."""
    if value is None:
        return None
    out: dict[str, Any] = {"type": type(value).__name__}
    names: tuple[str, ...] = value.__slots__
    for s in names:
        v = getattr(value, s)
        if v in (None, ()):
            continue
        if s in ("set_headers", "headers"):
            v = dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        out[s] = v
    return out
