"""`JWKSClient`: an identity provider's JWK Set (RFC 7517 §5), fetched over HTTPS and cached.

    client = gateway.JWKSClient("https://idp.example.com/.well-known/jwks.json")
    claims = gateway.verify(token, client, algorithms=["RS256"], audience="api")

The client is a *key source* for the core: ``gateway.verify`` and ``gateway.Verifier`` call its
``_gateway_key_set(unknown_kid)`` for the current `KeySet` (fetching on first use), and once more with
the token's ``kid`` when no key fits it. The gateway uses the non-blocking face instead:
``current()`` (never blocks) and ``await refresh(...)`` (bounded). Both faces share one state
machine, so a key set fetched by one is what the other sees, and there is never more than one fetch
in flight per client (single-flight: everyone who needs the fetch waits for that one).

Policy, in order of the questions a fetch answers:

- **When to fetch.** On first use; when the copy is older than its freshness lifetime — ``cache_ttl``
  seconds, or the response's ``Cache-Control: max-age`` (RFC 9111 §5.2.2.1, less its ``Age``, §5.1)
  clamped to [60 s, 24 h] — and when a token names a ``kid`` the copy does not have (a key rotated in
  at the IdP). That last refetch happens at most once per ``cooldown`` seconds, and a ``kid`` still
  absent after a fetch is remembered (up to `UNKNOWN_KIDS_MAX` of them) and never triggers another
  until the key set changes: a flood of tokens with made-up ``kid`` values costs at most one fetch per
  ``cooldown``, whatever their number.
- **When a fetch fails.** The last good copy is kept and used until ``stale_if_error`` seconds after
  it went stale (RFC 5861 §4's stale-if-error); it is never wiped by a failure. The next attempt is
  made no sooner than ``cooldown`` seconds later, so an IdP that is down is not hammered and a caller
  is not made to wait a ``timeout`` on every token. With no usable copy, `KeySetUnavailable` is
  raised, naming the URL's host and the failure (never the response body).
- **What is accepted.** HTTPS only, certificate and host name verified against the system's roots or
  ``ca_file``, TLS 1.2 or later. Plain ``http://`` only to a loopback host (a sidecar, a test IdP),
  refused at construction for any other. Redirects are not followed: the URL is the IdP's published
  ``jwks_uri``, and following a 3xx would let whoever controls a redirect choose the keys (or move
  them to plain HTTP). A response over `MAX_BODY_BYTES` is refused, read incrementally so it is never
  held whole; the whole fetch (connect, TLS, head, body) is bounded by ``timeout`` seconds. The body
  must be a JWK Set, decoded by the core (`KeySet.from_jwks`): members it cannot use are skipped.

The HTTP client is the standard library's ``http.client`` over ``ssl`` (OpenSSL): well kept,
always present, and enough for one GET — no third-party dependency sits on the key-fetch path.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncio
import collections
import concurrent.futures
import hashlib
import http.client
import ipaddress
import math
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from gateway import _core

# A JWK Set of a few dozen RSA keys with x5c chains is tens of KB; 1 MB leaves room and bounds memory.
MAX_BODY_BYTES = 1 << 20
# Cache-Control: max-age is honoured only within these bounds (seconds): an IdP answering max-age=0 is
# not fetched on every token, one answering a year still has rotations picked up daily.
MIN_MAX_AGE = 60.0
MAX_MAX_AGE = 86400.0
# How many unknown kids are remembered (oldest forgotten first): bounded memory under a flood.
UNKNOWN_KIDS_MAX = 1024
_READ_CHUNK = 64 * 1024
_MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE_RE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|=|$)", re.IGNORECASE)


class FetchError(Exception):
    """One failed fetch, worded for an operator: what went wrong, never what the body said."""


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a URL's host, brackets removed) is this machine: ``localhost`` or a
    loopback address (127.0.0.0/8, ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: scheme, host (no brackets), port, and the request target (path?query)."""

    url: str
    scheme: str
    host: str
    port: int
    target: str

    @property
    def origin(self) -> str:
        """``host[:port]`` as messages name it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def check_url(url: str, what: str = "a key set URL") -> Target:
    """Parses an ``https://`` URL (``http://`` only for a loopback host) without any I/O.

    Raises ValueError naming what is wrong: another scheme, no host, user info (a password in a URL
    ends up in logs), a fragment, or plain HTTP to a host that is not loopback."""
    if not isinstance(url, str):
        raise TypeError(f"{what} must be a str, got {type(url).__name__}")
    if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise ValueError(f"{what} has spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"{what} is not a valid URL ({e})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError(f"{what} must start with https:// (got {scheme + '://' if scheme else 'no scheme'})")
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"{what} has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} has user info (user:password@); put no credentials in a key set URL")
    if parts.fragment:
        raise ValueError(f"{what} has a #fragment")
    if scheme == "http" and not is_loopback_host(host):
        raise ValueError(f"{what} is plain http:// to {host}, which is not a loopback host (expected https://; plain HTTP lets anyone on the path swap the keys)")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, scheme, host, port or (443 if scheme == "https" else 80), target)


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificate and host-name verification on (``ssl.create_default_context``: CERT_REQUIRED,
    check_hostname), TLS 1.2 or later; the system's roots, or only ``ca_file``'s (a PEM bundle).

    Raises ValueError when ``ca_file`` cannot be read or holds no certificate."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
    except FileNotFoundError:
        raise ValueError(f"ca_file {ca_file} does not exist") from None
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"ca_file {ca_file} is not a readable PEM certificate bundle ({getattr(e, 'strerror', None) or e})") from None
    if ca_file is not None and not ctx.get_ca_certs():
        raise ValueError(f"ca_file {ca_file} holds no CA certificate")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def max_age_of(cache_control: str | None, age: str | None) -> float | None:
    """Seconds a response may be used, from its ``Cache-Control`` (RFC 9111 §5.2.2.1 max-age, less
    the ``Age`` header, §5.1), clamped to [`MIN_MAX_AGE`, `MAX_MAX_AGE`]; None when it gives none.
    ``no-store``/``no-cache`` count as max-age=0, i.e. the 60-second floor."""
    if not cache_control:
        return None
    if _NO_CACHE_RE.search(cache_control):
        return MIN_MAX_AGE
    m = _MAX_AGE_RE.search(cache_control)
    if m is None:
        return None
    seconds = float(m.group(1))
    if age and age.strip().isdigit():
        seconds -= float(age.strip())
    return min(max(seconds, MIN_MAX_AGE), MAX_MAX_AGE)


def http_get(target: Target, context: ssl.SSLContext | None, timeout: float, accept: str, limit: int = MAX_BODY_BYTES) -> tuple[bytes, http.client.HTTPResponse]:
    """One GET: (body, response) for a 200, else FetchError. Redirects are not followed.

    The whole exchange is bounded by ``timeout`` seconds: each socket operation by what is left, and
    a watchdog shuts the socket at the deadline (a server trickling one byte a second would otherwise
    keep a per-operation timeout from ever firing). The body is read in chunks and refused past
    ``limit`` bytes, whatever Content-Length says."""
    deadline = time.monotonic() + timeout
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    expired = threading.Event()

    def watchdog() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(timeout, watchdog)
    timer.daemon = True
    timer.start()
    try:
        try:
            conn.request("GET", target.target, headers={"Accept": accept, "User-Agent": f"gateway/{_core.__version__}", "Accept-Encoding": "identity"})
            resp = conn.getresponse()
            if 300 <= resp.status < 400:
                raise FetchError(f"HTTP {resp.status} redirect, not followed (expected the key set at this exact URL)")
            if resp.status != 200:
                raise FetchError(f"HTTP {resp.status}")
            length = resp.getheader("content-length")
            if length is not None and length.strip().isdigit() and int(length) > limit:
                raise FetchError(f"the response is {int(length)} bytes, over the {limit}-byte limit")
            chunks: list[bytes] = []
            size = 0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if conn.sock is not None:
                    conn.sock.settimeout(left)
                chunk = resp.read1(_READ_CHUNK) if hasattr(resp, "read1") else resp.read(_READ_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"the response is over the {limit}-byte limit")
                chunks.append(chunk)
            if expired.is_set():  # the watchdog shut the socket: what was read is a truncated body
                raise TimeoutError
            if length is not None and length.strip().isdigit() and size != int(length):
                raise FetchError(f"the response ended after {size} of {int(length)} bytes")
            return b"".join(chunks), resp
        except FetchError:
            raise
        except (TimeoutError, socket.timeout):
            raise FetchError(f"timed out after {timeout:g}s") from None
        except ssl.SSLCertVerificationError as e:
            raise FetchError(f"TLS certificate not trusted ({e.verify_message})") from None
        except ssl.SSLError as e:
            raise FetchError(f"TLS failed ({e.reason or e})") from None
        except socket.gaierror as e:
            raise FetchError(f"cannot resolve {target.host} ({e.strerror})") from None
        except (http.client.HTTPException, OSError) as e:
            if expired.is_set():
                raise FetchError(f"timed out after {timeout:g}s") from None
            text = getattr(e, "strerror", None) or type(e).__name__
            raise FetchError(f"{text[:1].lower() + text[1:]}") from None
    finally:
        timer.cancel()
        conn.close()


class _State:
    """One immutable snapshot of what a client holds; replaced whole under the lock, read without it."""

    __slots__ = ("keys", "fresh_until", "usable_until", "digest", "fetched_at")

    def __init__(self, keys: Any, fresh_until: float, usable_until: float, digest: bytes, fetched_at: float):
        self.keys = keys
        self.fresh_until = fresh_until
        self.usable_until = usable_until
        self.digest = digest
        self.fetched_at = fetched_at


_EMPTY = _State(None, 0.0, 0.0, b"", 0.0)


class JWKSClient:
    """An identity provider's JWK Set at ``url``, fetched and cached as described in the module doc.

    Arguments (seconds as int or float):
      url:            ``https://...`` (``http://`` only to a loopback host; see `check_url`).
      cache_ttl:      how long a fetched set is fresh when the response has no ``Cache-Control:
                      max-age`` (default 600).
      cooldown:       the least time between fetches made for an unknown ``kid``, and after a
                      failed fetch before the next attempt (default 30).
      timeout:        bound on one whole fetch (default 5).
      stale_if_error: how long past its freshness the last good set is still used while fetches
                      fail (default 86400; RFC 5861 §4).
      ca_file:        a PEM bundle of the CAs to trust instead of the system's roots.

    Raises ValueError (bad URL, bad number, unreadable ``ca_file``) or TypeError; never fetches in
    the constructor. Thread-safe; usable from any number of threads and event loops.
    """

    def __init__(self, url: str, cache_ttl: float = 600, cooldown: float = 30, timeout: float = 5, stale_if_error: float = 86400, ca_file: str | None = None):
        self._target = check_url(url)
        self.url = url
        self.cache_ttl = _seconds("cache_ttl", cache_ttl, positive=True)
        self.cooldown = _seconds("cooldown", cooldown)
        self.timeout = _seconds("timeout", timeout, positive=True)
        self.stale_if_error = _seconds("stale_if_error", stale_if_error)
        if ca_file is not None and not isinstance(ca_file, str):
            raise TypeError(f"ca_file must be a str path, got {type(ca_file).__name__}")
        self.ca_file = ca_file
        self._tls = tls_context(ca_file)
        self._lock = threading.Lock()
        self._state = _EMPTY
        self._flight: concurrent.futures.Future[None] | None = None
        self._last_attempt = -math.inf  # monotonic start of the last fetch
        self._retry_at = -math.inf  # no attempt before this (set after a failure)
        self._error: str | None = None
        self._unknown: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.fetches = 0  # attempts made, for operators and tests

    # ---- what the state machine is asked ---------------------------------------------------

    @property
    def host(self) -> str:
        """The key set's ``host[:port]``, as messages name it."""
        return self._target.origin

    def _plan(self, kid: str | None) -> tuple[Any, concurrent.futures.Future[None] | None]:
        """(the usable KeySet or None, a fetch to wait for or None); starts a fetch when one is due."""
        state = self._state
        now = time.monotonic()
        if kid is None and now < state.fresh_until:
            return state.keys, None  # the hot path: no lock
        with self._lock:
            state = self._state
            usable = state.keys if now < state.usable_until else None
            if kid is None:
                wanted = True
                wait = usable is None
            elif kid in self._unknown:
                return usable, None
            else:
                wanted = now - self._last_attempt >= self.cooldown
                wait = True
            if wanted and self._flight is None and now >= self._retry_at:
                self._start_flight(now)
            flight = self._flight
        return usable, (flight if wait else None)

    def _start_flight(self, now: float) -> None:
        # Under the lock. The fetch runs on its own daemon thread, so a caller that stops waiting
        # (a request's bounded wait, a sync caller's timeout) never cuts it short for everyone else.
        self._last_attempt = now
        self.fetches += 1
        flight: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._flight = flight
        threading.Thread(target=self._fly, args=(flight,), name=f"jwks-fetch {self.url}", daemon=True).start()

    # Called with each fetch's outcome ("ok" or "error"), off the lock; the gateway counts them
    # (gateway_key_set_fetches_total). A fault in it is ignored: counting never breaks a fetch.
    on_fetch: Callable[[str], None] | None = None

    def _report(self, outcome: str) -> None:
        if self.on_fetch is not None:
            try:
                self.on_fetch(outcome)
            except Exception:  # noqa: BLE001
                pass

    def _fly(self, flight: concurrent.futures.Future[None]) -> None:
        try:
            keys, lifetime, digest = self._fetch()
        except FetchError as e:
            self._failed(str(e))
            self._report("error")
        except Exception as e:  # a fault here must not leave the flight unfinished
            self._failed(f"unexpected {type(e).__name__}")
            self._report("error")
        else:
            self._report("ok")
            now = time.monotonic()
            with self._lock:
                old = self._state
                if digest == old.digest and old.keys is not None:
                    keys = old.keys  # the same set: the same object, so verifiers and their caches stay
                else:
                    self._unknown.clear()
                self._state = _State(keys, now + lifetime, now + lifetime + self.stale_if_error, digest, time.time())
                self._retry_at = -math.inf
                self._error = None
        finally:
            with self._lock:
                self._flight = None
            flight.set_result(None)

    def _failed(self, why: str) -> None:
        with self._lock:
            self._error = why
            self._retry_at = time.monotonic() + self.cooldown

    def _fetch(self) -> tuple[Any, float, bytes]:
        """(KeySet, freshness lifetime in seconds, body digest), or FetchError."""
        return self._fetch_from(self._target)

    def _fetch_from(self, target: Target) -> tuple[Any, float, bytes]:
        body, resp = http_get(target, self._tls, self.timeout, "application/jwk-set+json, application/json")
        keys = parse_jwks(body)
        lifetime = max_age_of(resp.getheader("cache-control"), resp.getheader("age"))
        return keys, (self.cache_ttl if lifetime is None else lifetime), hashlib.sha256(body).digest()

    def _settle(self, kid: str | None, usable: Any) -> Any:
        """After any wait: the usable set now, remembering ``kid`` if a fetch has not brought it."""
        state = self._state
        now = time.monotonic()
        keys = state.keys if now < state.usable_until else None
        if kid is not None and self._flight is None and self._last_attempt > -math.inf:
            with self._lock:
                if keys is not None and kid not in keys.kids and self._error is None:
                    self._unknown[kid] = None
                    while len(self._unknown) > UNKNOWN_KIDS_MAX:
                        self._unknown.popitem(last=False)
        return keys if keys is not None else usable

    def _unavailable(self) -> Exception:
        return _core.KeySetUnavailable(self.why_unavailable())

    # ---- the core's key-source protocol (sync) ------------------------------------------------

    def _gateway_key_set(self, unknown_kid: str | None) -> Any:
        """The current KeySet, fetching it first when needed (blocking up to ``timeout``).

        Called by the core's Verifier with None before each verification, and with the token's kid
        when no key fitted it. Raises KeySetUnavailable when no usable set exists."""
        usable, flight = self._plan(unknown_kid)
        if flight is not None:
            try:
                flight.result(timeout=self.timeout + 1)
            except concurrent.futures.TimeoutError:
                pass
        keys = self._settle(unknown_kid, usable) if flight is not None else usable
        if keys is None:
            raise self._unavailable()
        return keys

    def get_key_set(self) -> Any:
        """The current KeySet, fetching it when due (blocks up to ``timeout``); KeySetUnavailable
        when there is none usable."""
        return self._gateway_key_set(None)

    # ---- the gateway's face (never blocks the event loop) -------------------------------------

    def current(self) -> Any:
        """The usable KeySet now, or None; never blocks. Starts a background fetch when one is due
        (first use, stale copy, after a failure's cooldown)."""
        return self._plan(None)[0]

    async def refresh(self, unknown_kid: str | None = None, timeout: float | None = None) -> Any:
        """The usable KeySet after waiting (at most ``timeout`` seconds, default the client's) for
        the fetch that is due — or that an ``unknown_kid`` calls for, within ``cooldown`` — or None.

        The fetch runs on its own thread; giving up waiting does not cancel it."""
        usable, flight = self._plan(unknown_kid)
        if flight is not None:
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(flight)), self.timeout if timeout is None else timeout)
            except TimeoutError:
                return self._state.keys if time.monotonic() < self._state.usable_until else usable
            return self._settle(unknown_kid, usable)
        return usable

    def retry_after(self) -> int:
        """Whole seconds until the next fetch attempt may be made (at least 1): a 503's Retry-After."""
        left = self._retry_at - time.monotonic()
        return max(1, math.ceil(left)) if left < math.inf else 1

    def why_unavailable(self) -> str:
        """Why there is no usable key set, for logs and KeySetUnavailable: the host and the failure."""
        with self._lock:
            error, state, flying = self._error, self._state, self._flight is not None
        where = f"the key set at {self.host}"
        if state.keys is not None:
            return f"{where} is stale beyond stale_if_error ({self.stale_if_error:g}s) and could not be refreshed: {error or 'a fetch is under way'}"
        if error is not None:
            return f"{where} could not be fetched: {error}"
        return f"{where} has not been fetched yet" + (" (a fetch is under way)" if flying else "")

    def status(self) -> dict[str, Any]:
        """What the client holds, for explain and operators: url, kids, age (s), fresh, last error."""
        state = self._state
        now = time.monotonic()
        return {
            "url": self.url,
            "kids": list(state.keys.kids) if state.keys is not None else None,
            "age": None if state.keys is None else round(time.time() - state.fetched_at, 3),
            "fresh": now < state.fresh_until,
            "fresh_for": max(0.0, round(state.fresh_until - now, 3)),
            "usable": state.keys is not None and now < state.usable_until,
            "error": self._error,
            "fetches": self.fetches,
        }

    def __repr__(self) -> str:
        return f"JWKSClient({self.url!r}, cache_ttl={self.cache_ttl:g}, cooldown={self.cooldown:g}, timeout={self.timeout:g}, stale_if_error={self.stale_if_error:g})"


class DiscoveryJWKSClient(JWKSClient):
    """The JWK Set an OpenID Provider names in its discovery document (OpenID Connect Discovery 1.0):
    ``GET {issuer}/.well-known/openid-configuration`` (§4, a trailing ``/`` of the issuer removed),
    whose ``issuer`` must be identical to ``issuer`` (§4.3) and whose ``jwks_uri`` must be ``https://``
    (``http://`` only to a loopback host), then that key set, cached as a `JWKSClient` caches it.

    The document is fetched once per client (on the first fetch, and again after a key set fetch
    fails, in case the provider moved its keys); the document's own size is bounded like a key set's.
    """

    def __init__(self, issuer: str, cache_ttl: float = 600, cooldown: float = 30, timeout: float = 5, stale_if_error: float = 86400, ca_file: str | None = None):
        check_url(issuer, "the issuer")
        self.issuer = issuer
        super().__init__(issuer.rstrip("/") + "/.well-known/openid-configuration", cache_ttl, cooldown, timeout, stale_if_error, ca_file)
        self._jwks_target: Target | None = None

    @property
    def host(self) -> str:
        target = self._jwks_target
        return target.origin if target is not None else self._target.origin

    def _fetch(self) -> tuple[Any, float, bytes]:
        target = self._jwks_target
        if target is None:
            target = self._jwks_target = self._discover()
        try:
            return self._fetch_from(target)
        except FetchError:
            self._jwks_target = None
            raise

    def _discover(self) -> Target:
        body, _ = http_get(self._target, self._tls, self.timeout, "application/json")
        where = f"the discovery document at {self._target.origin}"
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FetchError(f"{where} is not JSON") from None
        if not isinstance(doc, dict):
            raise FetchError(f"{where} is not a JSON object")
        if doc.get("issuer") != self.issuer:
            # Never echo a long value; an issuer is a short URL, shown as a repr so spaces show.
            got = doc.get("issuer")
            shown = repr(got)[:200] if isinstance(got, str) else type(got).__name__
            raise FetchError(f"{where} names issuer {shown}, not {self.issuer!r} (OpenID Connect Discovery 1.0 §4.3: they must be identical)")
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str):
            raise FetchError(f"{where} has no jwks_uri string")
        try:
            target = check_url(uri, "its jwks_uri")
        except ValueError as e:
            raise FetchError(f"{where}: {e}") from None
        if target.scheme == "http" and self._target.scheme == "https":
            # Loopback HTTP is for a local IdP; an HTTPS issuer's document must not steer the
            # gateway to plain-HTTP services on its own host.
            raise FetchError(f"{where} names a plain http:// jwks_uri for an https:// issuer (expected https://)")
        return target


def parse_jwks(body: bytes) -> Any:
    """The core's KeySet for a JWK Set body; FetchError when the body is not one (worded by the
    error's kind only: the core's message could quote the body, and a body is never logged)."""
    try:
        return _core.KeySet.from_jwks(body)
    except (ValueError, TypeError) as e:
        kind = getattr(e, "kind", None) or "malformed"
        raise FetchError(f"the response is not a usable JWK Set ({kind})") from None


def _seconds(name: str, value: Any, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    v = float(value)
    if math.isnan(v) or math.isinf(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{name} must be a finite number of seconds {'above' if positive else 'at least'} 0, got {value!r}")
    return v
