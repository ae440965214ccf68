"""Type stubs for the Rust extension ``gateway._core``."""

import datetime
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, final

__version__: str
MAX_SAME_NAME_COOKIES: int  # Request.cookies(name) hands over at most this many (RFC 6265 §6.1's 50)

ERROR_STATUS: dict[str, int]
"""Every error kind the core reports -> the HTTP status the gateway answers with (rust/src/error.rs)."""

__all__ = [
    "__version__",
    "AlgorithmNotAllowed",
    "b64url_decode",
    "b64url_encode",
    "best_language",
    "BodySender",
    "compile_pattern",
    "cookie_value",
    "Correlation",
    "encode",
    "ERROR_STATUS",
    "ExpiredToken",
    "HeaderNames",
    "InvalidAudience",
    "InvalidIssuer",
    "InvalidSignature",
    "JWTError",
    "KeyNotFound",
    "KeySet",
    "KeySetUnavailable",
    "LinearRegex",
    "MalformedToken",
    "MAX_SAME_NAME_COOKIES",
    "MissingClaim",
    "monotonic_us",
    "normalize_path",
    "NotYetValid",
    "OriginTls",
    "percent_encode",
    "random_hex",
    "RateTable",
    "Request",
    "RouteSet",
    "set_cookie",
    "Tally",
    "unverified_claims",
    "unverified_header",
    "Upstream",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamTLSError",
    "Verifier",
    "verify",
]

_Key = str | bytes | Mapping[str, Any] | KeySet | Any  # Any: a key-set source with _gateway_key_set()
_Seconds = int | float | datetime.timedelta
_Time = int | float | datetime.datetime

class JWTError(ValueError):
    """A token failed verification. Each subclass has ``kind`` (e.g. ``"expired_token"``)."""

class MalformedToken(JWTError):
    kind: ClassVar[str]

class InvalidSignature(JWTError):
    kind: ClassVar[str]

class AlgorithmNotAllowed(JWTError):
    kind: ClassVar[str]

class ExpiredToken(JWTError):
    kind: ClassVar[str]

class NotYetValid(JWTError):
    kind: ClassVar[str]

class InvalidIssuer(JWTError):
    kind: ClassVar[str]

class InvalidAudience(JWTError):
    kind: ClassVar[str]

class MissingClaim(JWTError):
    kind: ClassVar[str]

class KeyNotFound(JWTError):
    """No key in the key set fits the token's ``alg`` (key type and curve) and ``kid``, or several
    fit and the token has no ``kid`` (RFC 7515 §4.1.4; selection as panva/jose does)."""

    kind: ClassVar[str]

class KeySetUnavailable(JWTError):
    """The key set could not be fetched and no usable copy is cached: the IdP's fault, answered
    with 503 by the gateway, never 401."""

    kind: ClassVar[str]

@final
class KeySet:
    """An immutable set of public keys (RFC 7517) for RS256/384/512, PS256/384/512, ES256/384/512
    and EdDSA (Ed25519). A token's ``alg`` selects the key type and curve, its ``kid`` the key.

    Construction errors are ValueError with ``.kind``: ``malformed_key``, ``unsupported_key``,
    ``weak_key`` (RSA under 2048 bits, ROCA), ``invalid_key``, ``private_key`` (private members
    are refused, never silently used), ``key_usage`` (``use`` not ``sig``, ``key_ops`` without
    ``verify``) or ``key_type_mismatch``. Messages never contain key material."""

    @staticmethod
    def from_jwks(jwks: Mapping[str, Any] | str | bytes) -> KeySet:
        """A JWK Set (RFC 7517 §5). Unusable entries are skipped and listed in ``skipped``."""
    @staticmethod
    def from_jwk(jwk: Mapping[str, Any] | str | bytes) -> KeySet:
        """One JWK (RFC 7517 §4). An ``x5c`` leaf must be the JWK's own key."""
    @staticmethod
    def from_pem(pem: str | bytes, kid: str | None = None, algorithm: str | None = None) -> KeySet:
        """One PEM public key (RFC 7468): SPKI ``PUBLIC KEY``, PKCS#1 ``RSA PUBLIC KEY`` or an
        X.509 ``CERTIFICATE``. ``algorithm`` restricts the key to that one algorithm."""
    def __len__(self) -> int: ...
    @property
    def kids(self) -> list[str | None]: ...
    @property
    def algorithms(self) -> list[str]:
        """The algorithms some key of the set can verify."""
    @property
    def skipped(self) -> list[tuple[str | None, str]]:
        """JWK Set entries that are not keys here: (kid, why)."""
    def describe(self) -> list[dict[str, Any]]:
        """Per key: ``kid``, ``kty``, ``crv`` (EC/OKP) or ``bits`` (RSA), ``alg``; no key material."""

@final
class Verifier:
    """A reusable, immutable, thread-safe JWT verifier: HS256/384/512 with a shared secret,
    RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA with public keys.

    ``key`` is a secret (str/bytes) for HS*; for the others public-key text (PEM, a JWK or JWK
    Set as JSON), a JWK or JWK Set dict, a `KeySet`, or a key-set source such as
    ``gateway.JWKSClient`` (any object with ``_gateway_key_set(unknown_kid) -> KeySet``: asked for
    the current set before each verification, and once more with the token's kid when no key
    fits). A key's type decides which algorithms it can ever verify: a public key is never an
    HMAC secret (``public_key_as_secret``), a secret never verifies RS* (``key_type_mismatch``)."""

    def __new__(
        cls,
        key: _Key,
        algorithms: Sequence[str] | None = ...,
        audience: str | Sequence[str] | None = ...,
        issuer: str | Sequence[str] | None = ...,
        leeway: _Seconds | None = ...,
        require: Sequence[str] | None = ...,
        *,
        max_length: int | None = ...,
        allow_weak_key: bool = ...,
        options: Mapping[str, Any] | None = ...,
        cache_size: int | None = ...,
    ) -> Verifier:
        """Construction errors (ValueError/TypeError) carry ``.kind``: ``weak_key``,
        ``public_key_as_secret``, ``key_type_mismatch``, ``empty_key``, ``unknown_algorithm``,
        ``unsupported_algorithm``, ``bad_option`` or a key kind (see `KeySet`)."""
    def verify(self, token: str | bytes, now: _Time | None = ...) -> dict[str, Any]:
        """The claims as a new dict (the caller's to change), or a `JWTError` subclass.

        With ``cache_size`` > 0, a token that fully verified before is served from a bounded cache
        (at most ``cache_size`` entries; only the identical token hits): ``exp``/``nbf``/``iat``
        are checked again against ``now`` on every hit, and an entry whose key has left a changing
        key set is dropped."""
    @property
    def cache_len(self) -> int:
        """Entries in the verified-token cache (0 when off)."""
    def with_key_set(self, keys: KeySet) -> Verifier:
        """This verifier's policy with ``keys``: one verifier per key-set version, made without I/O."""
    @property
    def algorithms(self) -> list[str]: ...
    @property
    def audience(self) -> list[str] | None: ...
    @property
    def issuer(self) -> list[str] | None: ...
    @property
    def leeway(self) -> float: ...
    @property
    def require(self) -> list[str]: ...
    @property
    def max_length(self) -> int: ...

def verify(
    token: str | bytes,
    key: _Key,
    algorithms: Sequence[str] | None = ...,
    audience: str | Sequence[str] | None = ...,
    issuer: str | Sequence[str] | None = ...,
    leeway: _Seconds | None = ...,
    require: Sequence[str] | None = ...,
    now: _Time | None = ...,
    *,
    max_length: int | None = ...,
    allow_weak_key: bool = ...,
    options: Mapping[str, Any] | None = ...,
) -> dict[str, Any]:
    """One-shot `Verifier(key, ...).verify(token, now)`. ``options`` is PyJWT's subset:
    ``verify_exp``, ``verify_nbf``, ``verify_iat``, ``verify_aud``, ``verify_iss`` (bool) and
    ``require`` (claim names); ``verify_signature=False`` raises ValueError. Differences from PyJWT:
    a header ``alg`` that is missing, null or not a string is `MalformedToken`; an ``iat`` later
    than now + leeway is `NotYetValid`; non-string ``sub``/``jti`` and numbers beyond f64 (``1e400``)
    are `MalformedToken`; a ``require``d claim that is JSON null is missing."""
def unverified_header(token: str | bytes) -> dict[str, Any]:
    """The JOSE header (RFC 7515 §4), decoded and NOT verified: to pick a key by ``kid``/``alg``."""
def unverified_claims(token: str | bytes) -> dict[str, Any]:
    """The claims, decoded and NOT verified: anyone can write any claims. Debugging only."""
def encode(
    claims: Mapping[str, Any],
    key: _Key,
    algorithm: str = ...,
    headers: Mapping[str, Any] | None = ...,
    *,
    allow_weak_key: bool = ...,
) -> str:
    """A compact JWS (RFC 7515 §7.1). HS*: ``key`` is the shared secret. RS*/PS*/ES*/EdDSA: a
    private key as PEM (PKCS#8, PKCS#1 RSA, SEC1 EC), DER, or a private JWK (dict or JSON).
    ``headers`` may not hold a non-string ``kid``/``typ``/``cty``, ``crit`` or ``b64`` (ValueError):
    what `verify` would refuse is never written."""
def b64url_encode(data: bytes) -> str: ...
def b64url_decode(data: str | bytes) -> bytes: ...
def cookie_value(cookie_header: str, name: str) -> str | None: ...
def set_cookie(
    name: str,
    value: str,
    *,
    max_age: int | None = ...,
    path: str | None = ...,
    domain: str | None = ...,
    secure: bool = ...,
    http_only: bool = ...,
    same_site: str | None = ...,
) -> str: ...
def best_language(accept_language: str, supported: Sequence[str]) -> str | None: ...

def monotonic_us() -> int:
    """Microseconds of CLOCK_MONOTONIC (one clock for every process of the machine)."""

@final
class RateTable:
    """A fixed-size GCRA table (rate limits, ``store = "memory"``) in a file every worker process of
    one gateway instance maps: ``64 + 8 * slots`` bytes, whatever arrives. Keys are hashed with
    SipHash-2-4 under the instance's 16-byte ``key`` and never stored raw. See rust/src/limits."""

    @staticmethod
    def create(path: str | os.PathLike[str], slots: int, key: bytes) -> RateTable:
        """Creates the file (which must not exist; mode 0600). ``slots``: a power of two from 8 to
        2**26. OSError when the file cannot be made, ValueError for a bad ``slots`` or ``key``."""
    @staticmethod
    def open(path: str | os.PathLike[str]) -> RateTable:
        """Maps a table another process created; ValueError when the file is not one."""
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def slots(self) -> int: ...
    @property
    def size_bytes(self) -> int: ...
    def live(self, now_us: int | None = ...) -> int:
        """Slots holding a key that is still counting (its TAT is after now)."""
    def check(
        self, key: bytes, value: str | None, interval_us: int, tolerance_us: int, consume: bool = ..., now_us: int | None = ...
    ) -> tuple[bool, int, int, int]:
        """One GCRA check of the key ``key`` + ``value`` (UTF-8), hashed as if joined: emission
        interval and tolerance (``burst * interval``) in microseconds; returns (allowed, remaining,
        retry_after_us, reset_us). ``consume=False`` counts nothing. ``now_us`` defaults to
        `monotonic_us()`."""

def random_hex(nbytes: int) -> str:
    """``nbytes`` (1 to 32) random bytes from the OS CSPRNG (getrandom(2), pooled per thread, discarded in a
    forked child) as ``2 * nbytes`` lower-case hex digits; never all zeros (W3C Trace Context
    §3.2.2.3-4). ValueError for another ``nbytes``."""

@final
class Correlation:
    """The correlation stage's common case for one config (``[server] request_id``, ``trace``, and
    whether ``otlp_endpoint`` exports spans). See rust/src/observe/correlation.rs."""

    def __new__(cls, request_id: str | None, trace: bool, exporting: bool) -> Correlation: ...
    def begin(
        self, request: Request
    ) -> tuple[str | None, str | None, tuple[tuple[bytes, bytes], ...], tuple[tuple[bytes, bytes], ...]] | None:
        """For a request that carries neither the request-id header nor ``traceparent`` (and no
        span export): a new request id (32 hex digits, 128 bits) and a new sampled trace
        (``traceparent`` ``00-<32 hex>-<16 hex>-01``, Trace Context §3.2), as ``(request_id,
        trace_id, forward, echo)``: the ids (None for a key that is off), the headers the origin is
        sent and those every response carries, as lower-case ``(name, value)`` bytes pairs. None
        when the request needs the general path (gateway.stages.correlation)."""

@final
class Tally:
    """A worker's metrics tally: one entry per distinct combination of labels, each with three
    histograms (request, gateway overhead, upstream; Prometheus ``le`` buckets). Methods outside
    OpenTelemetry's known ``http.request.method`` list are counted as ``_OTHER``. See
    rust/src/observe/tally.rs."""

    def __new__(cls, request_buckets: Sequence[float], overhead_buckets: Sequence[float], upstream_buckets: Sequence[float]) -> Tally:
        """Upper bounds in seconds, finite and strictly ascending, without +Inf; ValueError otherwise."""
    def record(
        self,
        route: str,
        request: Request,
        status: int,
        origin: str | None,
        auth_policy: str | None,
        auth_outcome: str,
        upstream_error: str | None,
        rate_limit: tuple[str, str] | None,
        started: float,
        ended: float,
        upstream_seconds: float | None,
        head_sent: float | None,
    ) -> None:
        """Adds one request (its method is read from ``request``). Times in seconds on one clock
        (``time.perf_counter``): the request took ``ended - started``; the gateway's own time is
        until ``head_sent`` (else ``ended``) less ``upstream_seconds`` when an origin answered."""
    def drain(
        self,
    ) -> list[
        tuple[str, str, int, str | None, str | None, str, str | None, tuple[str, str] | None, tuple[list[int], float], tuple[list[int], float], tuple[list[int], float], int]
    ]:
        """Every entry since the last drain, emptying the tally: ``(route, method, status, origin,
        auth_policy, auth_outcome, upstream_error, rate_limit, request, overhead, upstream,
        requests)``, each histogram ``(counts per bucket, +Inf last; sum in seconds)``."""
    def __len__(self) -> int: ...

def normalize_path(raw: str | bytes) -> str:
    """Normalizes a raw request path; the ValueError's ``.kind`` (e.g. ``encoded_slash``,
    ``control_character``) and message say why a path is refused."""

def percent_encode(text: str) -> str:
    """``text`` with all but ``A-Z a-z 0-9 - . _ ~`` percent-encoded (UTF-8), like ``quote(text, safe="")``."""

def compile_pattern(pattern: str) -> str:
    """The anchored regex a Next.js-style path pattern compiles to; ValueError if invalid."""

@final
class LinearRegex:
    """A regex matched in linear time (Rust's ``regex`` crate, RE2 syntax: no look-around or
    back-references), for text a client chooses. ValueError for a pattern it refuses or over 1 MiB compiled."""

    def __new__(cls, pattern: str) -> LinearRegex: ...
    def fullmatch(self, text: str) -> bool:
        """True when the whole of ``text`` matches."""
    @property
    def pattern(self) -> str: ...

@final
class RouteSet:
    """Every route's patterns in one RegexSet."""

    def __new__(cls, routes: list[list[str]]) -> RouteSet: ...
    def matching_routes(self, path: str) -> list[int]: ...
    def params(self, route: int, path: str) -> dict[str, str] | None: ...
    def param_names(self, route: int) -> list[str]:
        """Exactly the names ``params(route, ...)`` can produce: named and unnamed ("0", ...) groups."""

@final
class HeaderNames:
    """Header names, lower-cased once (per route, when the config loads), for
    `Request.forward_headers`: no conversion per request."""

    def __new__(cls, names: Iterable[str]) -> HeaderNames: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: str, /) -> bool: ...
    def names(self) -> list[str]:
        """The names, lower-case and sorted."""

@final
class Request:
    """The request head, built once from the ASGI scope; raw header bytes stay in Rust.

    Header text is latin-1 (one character per wire byte); header names are compared without case.
    """

    def __new__(
        cls,
        method: str,
        raw_path: bytes | str,
        query_string: bytes | str,
        headers: Iterable[tuple[bytes | str, bytes | str]],
        client: str | None,
        scheme: str,
    ) -> Request: ...
    @property
    def method(self) -> str: ...
    @property
    def raw_path(self) -> bytes: ...
    @property
    def query(self) -> str:
        """The query with bytes outside 0x21..0x7E percent-encoded (%XX, upper-case)."""
    @property
    def client(self) -> str | None: ...
    @property
    def scheme(self) -> str: ...
    @property
    def head_size(self) -> int:
        """len(raw_path) + len(query) + sum(len(name) + len(value) + 4)."""
    @property
    def host_count(self) -> int: ...
    @property
    def host(self) -> str | None:
        """The first Host value as sent."""
    @property
    def host_name(self) -> str | None:
        """Host for routing: lower-case, no port, one trailing dot removed, IPv6 unbracketed."""
    @property
    def content_length(self) -> int | None: ...
    @property
    def content_length_valid(self) -> bool: ...
    @property
    def chunked(self) -> bool:
        """A Transfer-Encoding header is present."""
    def header(self, name: str) -> str | None: ...
    def header_values(self, name: str) -> list[str]: ...
    def cookie(self, name: str) -> str | None: ...
    def cookies(self, name: str) -> list[str]:
        """Every cookie called ``name`` in order, at most 50 (RFC 6265 §6.1)."""
    def upstream_headers(
        self, drop: HeaderNames, trusted: bool, set: dict[str, str], extra: tuple[tuple[bytes, bytes], ...] | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Everything the origin is sent: `forward_headers(drop)`, then X-Forwarded-For (appended to
        the client's chain when the peer is ``trusted``, else the peer alone), X-Forwarded-Proto and
        X-Forwarded-Host (the client's from a trusted peer, else the scheme and Host), then ``set``
        (the headers the gateway sets, as UTF-8), then ``extra``: pairs made already (the
        correlation stage's): a tuple of ``(bytes, bytes)`` tuples, else TypeError."""
    def forward_headers(self, drop: HeaderNames | Iterable[str]) -> list[tuple[bytes, bytes]]:
        """The raw pairs minus the names in ``drop`` (compared without case, ``_`` read as ``-``:
        origins behind CGI/WSGI/Rack see ``X_User_Id`` as ``X-User-Id``) and names listed in any
        Connection header (except Host, which a client cannot make hop-by-hop)."""

class UpstreamError(Exception):
    """The origin could not be reached or answered badly (502)."""

    kind: ClassVar[str]

class UpstreamTimeout(UpstreamError):
    """The origin did not answer within the route's timeout (504)."""

class UpstreamConnectError(UpstreamError):
    """The origin refused or failed the connection (502)."""

class UpstreamTLSError(UpstreamConnectError):
    """The TLS handshake with an HTTPS origin failed (502). ``kind`` (on the instance) says which
    check: "tls_unknown_issuer", "tls_expired" (expired or not yet valid), "tls_name_mismatch" (not
    valid for the SNI name) or "tls_handshake" (anything else, e.g. a client certificate the origin
    requires). The message is a fixed sentence starting with the kind in words, never the
    certificate's contents."""

@final
class OriginTls:
    """One HTTPS origin's TLS settings and its own keep-alive pool (rustls, aws-lc-rs provider).

    ``host``/``port``: where to connect (``host`` as in a URL, an IPv6 address in brackets);
    ``sni``: the name sent as SNI and the only name the certificate is checked against (an IP
    address is checked against the certificate's IP addresses); ``ca_pem``: PEM CA certificates
    to trust instead of the system's roots; ``client_cert_pem``/``client_key_pem``: PEM chain and
    key for mTLS (the key must match the first certificate); ``verify=False`` accepts any
    certificate; ``http2``: offer h2 and http/1.1 by ALPN (else http/1.1 only). Nothing connects
    until the first request. Raises ``ValueError(key, message)`` with the config key at fault
    ("sni", "ca_file", "client_cert", "client_key", "url") when a setting cannot be used.
    """

    def __new__(
        cls,
        host: str,
        port: int,
        sni: str,
        *,
        ca_pem: bytes | None = ...,
        client_cert_pem: bytes | None = ...,
        client_key_pem: bytes | None = ...,
        verify: bool = ...,
        http2: bool = ...,
        max_idle_per_origin: int = ...,
        idle_timeout: float = ...,
    ) -> OriginTls: ...
    @property
    def http2(self) -> bool: ...

@final
class BodySender:
    """The writing end of a streamed request body."""

    def __new__(cls, capacity: int = ...) -> BodySender: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...

@final
class UpstreamResponse:
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> list[tuple[str, str]]:
        """(lower-case name, value); values are latin-1 text, one character per byte received."""
    @property
    def body(self) -> bytes | None: ...

@final
class Upstream:
    """Keep-alive pools to origins, driven by an I/O thread; completions signalled on an eventfd."""

    def __new__(cls, max_idle_per_origin: int = ..., idle_timeout: float = ...) -> Upstream: ...
    def fileno(self) -> int: ...
    def drain(self) -> list[tuple[int, bool, Any]]: ...
    def request(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str | bytes, str | bytes]],
        body: bytes | None = ...,
        stream: BodySender | None = ...,
        timeout: float = ...,
        max_inline: int = ...,
        tls: OriginTls | None = ...,
    ) -> int: ...
    def read(self, response: UpstreamResponse) -> int: ...
    def send(self, sender: BodySender, chunk: bytes) -> int: ...
