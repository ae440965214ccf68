"""Where an ``[auth.NAME]`` policy's keys come from, and how the auth stage verifies with them.

One key source per policy (gateway.toml):

    secret    = "env:NAME" | "file:PATH"       HS256/384/512, a shared secret (stages/auth.py as before)
    keys      = "file:PATH"                    a JWK Set, one JWK, or a PEM public key / certificate;
                                               static, re-read with the config (SIGHUP)
    jwks_url  = "https://..."                  an IdP's JWK Set, fetched and cached (gateway.JWKSClient)
    discovery = true                           {issuer}/.well-known/openid-configuration names it

with, for ``jwks_url`` and ``discovery``: ``jwks_cache`` (10m), ``jwks_cooldown`` (30s),
``jwks_stale_if_error`` (24h), ``jwks_timeout`` (5s), ``jwks_ca_file = "file:PATH"`` (default: the
system's roots); and for every policy ``token_cache`` (4096 verified tokens; 0 turns it off).

At run time (`verify`): a policy with a key set URL holds one `JWKSClient` per worker (kept across
config reloads when its settings are unchanged, so a reload never empties the cache). Keys are
fetched in the background when a worker starts (`start`); a request waits for a fetch only when no
usable key set exists, or when its token names a ``kid`` the set does not have — and then at most
``jwks_timeout``. No usable key set means `KeySetUnavailable`, which the auth stage answers 503 with
Retry-After (`unavailable`): the IdP's outage is not the user's fault, so never a 401 or a login
redirect that would loop or sign people out. Each version of a key set gets its own core Verifier
(``Verifier.with_key_set``), so a request never blocks inside the core and a key that left the set
leaves the verified-token cache with it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import _core, respond
from gateway.jwks import MAX_BODY_BYTES, DiscoveryJWKSClient, JWKSClient, tls_context
from gateway.respond import Answer

if TYPE_CHECKING:
    from gateway.config import AuthPolicy, Config
    from gateway.config.problems import Problems
    from gateway.context import RequestContext

SOURCES = ("secret", "keys", "jwks_url", "discovery")
JWKS_OPTIONS = ("jwks_cache", "jwks_cooldown", "jwks_stale_if_error", "jwks_timeout", "jwks_ca_file")
CONFIG_KEYS = frozenset({*SOURCES, *JWKS_OPTIONS, "token_cache"})
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
DEFAULT_TOKEN_CACHE = 4096
# Clients kept per worker for reuse across reloads; settings that change on every reload cannot pile up.
CLIENTS_MAX = 64
SOURCE_EXPECTED = 'expected one key source: secret = "env:NAME", keys = "file:PATH", jwks_url = "https://..." or discovery = true'
UNAVAILABLE_DETAIL = "the identity provider's signing keys are unavailable; try again shortly"


@dataclass(eq=False, slots=True)
class KeySource:
    """A policy's keys when they are not a shared secret: a static `KeySet` or a key-set client."""

    kind: str  # keys | jwks_url | discovery
    where: str  # for explain: the file, or the URL
    static: Any = None  # KeySet, for kind == "keys"
    client: JWKSClient | None = None
    timeout: float = 5.0
    # The policy's Verifier (set once it is built) and the one made for the latest key-set version.
    base: Any = None
    _last: tuple[Any, Any] = field(default=(None, None))

    @property
    def verifier_key(self) -> Any:
        """What the core's Verifier is built with: the KeySet, or the client (a key source)."""
        return self.static if self.client is None else self.client

    def current(self) -> Any:
        return self.static if self.client is None else self.client.current()

    async def refresh(self, unknown_kid: str | None = None) -> Any:
        if self.client is None:
            return self.static
        return await self.client.refresh(unknown_kid, self.timeout)

    def verifier_for(self, keys: Any) -> Any:
        """The policy's Verifier for this version of the key set (made once per version)."""
        if self.client is None:
            return self.base
        last_keys, last = self._last
        if last_keys is keys:
            return last
        verifier = self.base.with_key_set(keys)
        self._last = (keys, verifier)  # one assignment: a racing thread sees the old pair or the new
        return verifier

    def retry_after(self) -> int:
        return self.client.retry_after() if self.client is not None else 1

    def why_unavailable(self) -> str:
        return self.client.why_unavailable() if self.client is not None else "no usable key"


# ---------------------------------------------------------------- run time


def start(config: Config) -> None:
    """Starts a background fetch for every key-set URL in ``config`` (a worker's start, a reload);
    returns at once."""
    for policy in config.auth.values():
        source = policy.key_source
        if source is not None and source.client is not None:
            source.client.current()


async def verify(ctx: RequestContext, policy: AuthPolicy, token: str) -> dict[str, Any]:
    """The token's claims, verified with the policy's key source; the core's JWTError otherwise.

    Waits (at most ``jwks_timeout``) for a fetch only when no usable key set exists, or when no key
    fits the token and its ``kid`` may be new at the IdP (`JWKSClient.refresh` decides, by cooldown
    and its memory of unknown kids). Raises KeySetUnavailable when there is no usable set."""
    source: KeySource = policy.key_source
    keys = source.current()
    if keys is None:
        keys = await source.refresh(None)
        if keys is None:
            raise _core.KeySetUnavailable(source.why_unavailable())
    try:
        claims = _verify_with(ctx, source.verifier_for(keys), token)
    except _core.KeyNotFound:
        kid = _header(token).get("kid")
        newer = await source.refresh(kid) if isinstance(kid, str) and source.client is not None else None
        if newer is None or newer is keys:
            if ctx.trace is not None:
                ctx.note("auth", f"{policy.name}: no key fits the token ({_token_key_text(token)}); {_set_text(keys, source)}")
            raise
        keys = newer
        claims = _verify_with(ctx, source.verifier_for(keys), token)
    if ctx.trace is not None:
        ctx.note("auth", f"{policy.name}: verified with the key {_token_key_text(token)} from {source.where}")
    return claims


def _verify_with(ctx: RequestContext, verifier: Any, token: str) -> dict[str, Any]:
    claims: dict[str, Any] = verifier.verify(token) if ctx.now is None else verifier.verify(token, ctx.now)
    return claims


def unavailable(ctx: RequestContext, policy: AuthPolicy, error: Exception) -> Answer:
    """503 with Retry-After and the gateway's JSON error: no usable key set (never 401 or a redirect:
    the IdP's outage must not sign users out or send them round a login loop)."""
    source: KeySource = policy.key_source
    ctx.auth_outcome = "unavailable"
    ctx.auth_reason = str(error)
    if ctx.trace is not None:
        ctx.note("auth", f"{policy.name}: unavailable ({error})")
    retry = str(source.retry_after() if source is not None else 1).encode()
    return respond.error("key_set_unavailable", UNAVAILABLE_DETAIL, headers=[(b"retry-after", retry)])


def _header(token: str) -> dict[str, Any]:
    try:
        header: dict[str, Any] = _core.unverified_header(token)
        return header
    except (ValueError, TypeError):
        return {}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _token_key_text(token: str) -> str:
    header = _header(token)
    return f"kid={_short(header.get('kid'))}, alg={_short(header.get('alg'))}"


def _set_text(keys: Any, source: KeySource) -> str:
    kids = ", ".join("(no kid)" if k is None else _short(k) for k in keys.kids)
    return f"{source.where} has {len(keys)} key(s): {kids}; it can verify {', '.join(keys.algorithms)}"


def describe(source: KeySource) -> str:
    """One line for ``gateway check``: the static keys (kid, type, curve or bits, alg; never key
    material), or where a key set will be fetched from (nothing is fetched by check)."""
    if source.client is None:
        parts = []
        for key in source.static.describe():
            size = key.get("crv") or (f"{key['bits']} bits" if key.get("bits") else "")
            parts.append(f"{'(no kid)' if key.get('kid') is None else _short(key['kid'])} {key.get('kty')} {size}".strip() + (f" {key['alg']}" if key.get("alg") else ""))
        return f"{len(parts)} key(s) from {source.where}: " + "; ".join(parts)
    return f"keys from {source.where} (fetched when serving; not fetched by check)"


# ---------------------------------------------------------------- config


def chosen_source(c: Problems, key: str, ad: dict[str, Any]) -> str | None:
    """The one key source an ``[auth.NAME]`` table names, or None (with the problem reported)."""
    present = [name for name in SOURCES if name in ad and not (name == "discovery" and ad[name] is False)]
    if len(present) > 1:
        names = ", ".join(present[:-1]) + " and " + present[-1]
        c.bad(key, f"has both {names}" if len(present) == 2 else f"has {names}", SOURCE_EXPECTED)
        return None
    if not present:
        c.bad(key, "has no key source", SOURCE_EXPECTED)
        return None
    chosen = present[0]
    if chosen not in ("jwks_url", "discovery"):
        for option in JWKS_OPTIONS:
            if option in ad:
                c.bad(f"{key}.{option}", f"applies only to jwks_url or discovery, not {chosen}", f"remove it, or use jwks_url / discovery instead of {chosen}")
    return chosen


def check_algorithms(c: Problems, key: str, chosen: str | None, ad: dict[str, Any], algs: list[str]) -> bool:
    """Whether the policy's algorithms fit its key source: HS* only with a secret, the asymmetric
    ones only with keys, jwks_url or discovery (a public key is never an HMAC secret)."""
    if chosen is None:
        return False
    if chosen == "secret":
        wrong = [a for a in algs if a in ASYMMETRIC_ALGORITHMS]
        if wrong:
            c.bad(f"{key}.algorithms", f"has {', '.join(wrong)} but the key source is a shared secret", "asymmetric algorithms need keys, jwks_url or discovery")
            return False
        return True
    if "algorithms" not in ad:
        c.bad(f"{key}.algorithms", f"is missing (required with {chosen})", 'expected the algorithms your identity provider signs with, such as ["RS256"]')
        return False
    wrong = [a for a in algs if a in HMAC_ALGORITHMS]
    if wrong:
        c.bad(f"{key}.algorithms", f"has {', '.join(wrong)}, which needs a shared secret, with {chosen}", "asymmetric algorithms (RS*, PS*, ES*, EdDSA) only, or a secret for HS*")
        return False
    return True


def token_cache(c: Problems, key: str, ad: dict[str, Any]) -> int:
    value = ad.get("token_cache", DEFAULT_TOKEN_CACHE)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        c.bad(f"{key}.token_cache", f"is {value!r}", "expected a number of verified tokens to keep, 0 (off) to 1000000")
        return DEFAULT_TOKEN_CACHE
    return value


def load_source(c: Problems, key: str, ad: dict[str, Any], base: Path, chosen: str, algs: list[str]) -> KeySource | None:
    """The KeySource for ``keys``, ``jwks_url`` or ``discovery``; None (problems reported) if unusable.
    Nothing is fetched: ``gateway check`` validates the URLs' shape only."""
    if chosen == "keys":
        return _static_keys(c, key, ad.get("keys"), base, algs)
    cache_ttl = c.duration(ad, key, "jwks_cache", 600.0)
    cooldown = c.duration(ad, key, "jwks_cooldown", 30.0)
    stale = c.duration(ad, key, "jwks_stale_if_error", 86400.0)
    timeout = c.duration(ad, key, "jwks_timeout", 5.0)
    for option, value in (("jwks_cache", cache_ttl), ("jwks_timeout", timeout)):
        if value == 0:
            c.bad(f"{key}.{option}", "is 0", 'expected a duration above zero, such as "10m" or "5s"')
    cache_ttl = cache_ttl or 600.0
    timeout = timeout or 5.0
    ca_file = _ca_file(c, f"{key}.jwks_ca_file", ad.get("jwks_ca_file"), base)
    if ca_file is False:
        return None
    settings = (cache_ttl, 30.0 if cooldown is None else cooldown, 86400.0 if stale is None else stale, timeout, ca_file)
    if chosen == "jwks_url":
        url = ad.get("jwks_url")
        if not isinstance(url, str):
            c.bad(f"{key}.jwks_url", f"is {url!r}", 'expected "https://idp.example.com/.well-known/jwks.json"')
            return None
        try:
            client = _client("jwks_url", url, settings)
            _count_fetches(client, key)
        except (ValueError, TypeError) as e:
            c.bad(f"{key}.jwks_url", str(e), 'expected "https://HOST/PATH" (http:// only to a loopback host)')
            return None
        return KeySource("jwks_url", f"the key set at {url}", client=client, timeout=timeout)
    discovery = ad.get("discovery")
    if discovery is not True:
        c.bad(f"{key}.discovery", f"is {discovery!r}", "expected true (or leave it out)")
        return None
    issuer = ad.get("issuer")
    if not isinstance(issuer, str):
        c.bad(f"{key}.issuer", "is missing or not one string, and discovery = true needs it", 'expected the issuer URL, such as "https://idp.example.com/"')
        return None
    try:
        client = _client("discovery", issuer, settings)
        _count_fetches(client, key)
    except (ValueError, TypeError) as e:
        c.bad(f"{key}.issuer", f"{e}, and discovery = true fetches from it", 'expected "https://HOST/..." (http:// only to a loopback host)')
        return None
    return KeySource("discovery", f"the key set named by {issuer.rstrip('/')}/.well-known/openid-configuration", client=client, timeout=timeout)


_clients: dict[tuple[Any, ...], JWKSClient] = {}
_clients_lock = threading.Lock()


def _count_fetches(client: JWKSClient, key: str) -> None:
    """Counts the client's fetches under the (first) policy that uses it: gateway_key_set_fetches_total."""
    if client.on_fetch is None:
        from gateway import observe

        policy = key.removeprefix("auth.")
        client.on_fetch = lambda outcome: observe.key_set_fetch(policy, outcome)


def _client(kind: str, url: str, settings: tuple[Any, ...]) -> JWKSClient:
    """The worker's client for these settings: the same one across reloads, so its cache survives."""
    cache_ttl, cooldown, stale, timeout, ca_file = settings
    ca_digest = hashlib.sha256(Path(ca_file).read_bytes()).hexdigest() if ca_file else None
    ident = (kind, url, cache_ttl, cooldown, stale, timeout, ca_file, ca_digest)
    with _clients_lock:
        client = _clients.get(ident)
        if client is None:
            cls = DiscoveryJWKSClient if kind == "discovery" else JWKSClient
            client = cls(url, cache_ttl=cache_ttl, cooldown=cooldown, timeout=timeout, stale_if_error=stale, ca_file=ca_file)
            while len(_clients) >= CLIENTS_MAX:
                del _clients[next(iter(_clients))]
            _clients[ident] = client
        return client


def _ca_file(c: Problems, key: str, ref: Any, base: Path) -> str | None | bool:
    """The CA bundle's path, None for the system roots, False when unusable (reported)."""
    if ref is None:
        return None
    if not isinstance(ref, str) or not ref.startswith("file:") or len(ref) == 5:
        c.bad(key, f"is {ref!r}", 'expected "file:PATH" of a PEM CA bundle')
        return False
    p = Path(ref[5:])
    p = p if p.is_absolute() else base / p
    try:
        tls_context(str(p))
    except ValueError as e:
        c.bad(key, str(e), "expected a readable PEM file of CA certificates")
        return False
    return str(p)


_KEY_EXPECTED = {
    "private_key": "a public key: never put a private key where the gateway reads keys",
    "weak_key": "an RSA key of at least 2048 bits",
    "unsupported_key": "an RSA, EC (P-256/384/521) or Ed25519 public key",
}


def _static_keys(c: Problems, key: str, ref: Any, base: Path, algs: list[str]) -> KeySource | None:
    k = f"{key}.keys"
    if not isinstance(ref, str) or not ref.startswith("file:") or len(ref) == 5:
        c.bad(k, f"is {ref!r}", 'expected "file:PATH" of a JWK Set, a JWK or a PEM public key')
        return None
    p = Path(ref[5:])
    p = p if p.is_absolute() else base / p
    try:
        with p.open("rb") as f:
            data = f.read(MAX_BODY_BYTES + 1)
    except OSError as e:
        c.bad(k, f"cannot read {p}: {e.strerror}", "expected a readable file of public keys")
        return None
    if len(data) > MAX_BODY_BYTES:
        c.bad(k, f"{p} is over {MAX_BODY_BYTES} bytes", "expected a JWK Set, a JWK or a PEM public key")
        return None
    try:
        if data.lstrip()[:1] == b"{":
            keys = _core.KeySet.from_jwks(data) if b'"keys"' in data else _core.KeySet.from_jwk(data)
        else:
            keys = _core.KeySet.from_pem(data)
    except (ValueError, TypeError) as e:
        kind = getattr(e, "kind", "")
        c.bad(k, f"{p}: {e}", _KEY_EXPECTED.get(kind, "expected a JWK Set, a JWK, or a PEM public key / certificate"))
        return None
    for kid, why in keys.skipped:
        c.warn(k, f"{p}: key {_short(kid)} is skipped: {why}", "expected every key to be usable")
    can = set(keys.algorithms)
    if not can & set(algs):
        c.bad(f"{key}.algorithms", f"is {algs!r} but the keys in {p} verify only {', '.join(sorted(can)) or 'nothing'}", "expected algorithms the keys can verify")
        return None
    return KeySource("keys", str(p), static=keys)
