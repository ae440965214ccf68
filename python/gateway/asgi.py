"""`JWTAuth`: the verifier as pure ASGI middleware, for Starlette, FastAPI or any ASGI 3 app.

    from gateway import JWKSClient, Verifier
    from gateway.asgi import JWTAuth

    idp = JWKSClient("https://idp.example.com/.well-known/jwks.json")
    app = JWTAuth(app, Verifier(idp, algorithms=["RS256"], audience="api"), key_source=idp)

    # in a Starlette/FastAPI endpoint:  request.state.claims  (== scope["state"]["claims"])

Nothing from Starlette or FastAPI is imported: this speaks the ASGI 3 protocol itself
(https://asgi.readthedocs.io/en/latest/specs/www.html).

- ``http`` and ``websocket`` scopes need a valid token from one of ``token_from`` (tried in order;
  the first source holding a token is used): ``"bearer"`` (``Authorization: Bearer``, RFC 6750 §2.1),
  ``"cookie:NAME"`` (every same-name cookie is tried, at most 50: RFC 6265 §5.4 sends them all),
  ``"header:NAME"``. The verified claims go to ``scope["state"]["claims"]`` (``state`` is created when
  the server gave none) and the app is called.
- No token: **401** with ``WWW-Authenticate: Bearer realm="..."`` (RFC 6750 §3: no error code when
  the request had no credentials). An invalid token, or two Authorization headers: **401** with
  ``error="invalid_token"`` and a short ``error_description`` (§3.1). The body is JSON
  ``{"error", "detail"}``; the token is never echoed.
- No usable key set (`KeySetUnavailable`: the identity provider is down and nothing usable is
  cached): **503** with ``Retry-After`` — the IdP's outage is not a reason to sign anyone out.
- A refused WebSocket handshake is closed before it is accepted (the server answers it 403);
  1013 "try again later" (RFC 6455 §7.4.1) when the key set is unavailable.
- ``lifespan`` (and any other scope type) passes through untouched.

With ``key_source`` (the `JWKSClient` the verifier was built on), a fetch never blocks the event
loop: the key set is awaited the way the gateway awaits it (at most the client's ``timeout``) and
each key-set version is verified by ``verifier.with_key_set(...)``. Without it, ``verifier.verify``
runs inline — right for a secret or static keys, and for a `JWKSClient` it blocks the loop while a
fetch is due (first use, or a new ``kid``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

from gateway import _core

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Same-name cookies tried, as the gateway does (RFC 6265 §6.1: 50 cookies per domain at least).
MAX_COOKIE_CANDIDATES = 50
# error_description per failure kind: fixed text, never the token or a claim's value.
_DESCRIPTIONS = {
    "expired_token": "the token has expired",
    "not_yet_valid": "the token is not valid yet",
    "invalid_audience": "the token is not for this audience",
    "invalid_issuer": "the token is from another issuer",
    "missing_claim": "the token lacks a required claim",
    "algorithm_not_allowed": "the token's algorithm is not allowed",
    "key_not_found": "no key fits the token",
}


class JWTAuth:
    """ASGI middleware requiring a verified JWT; see the module doc.

    Arguments:
      app:         the ASGI 3 application to protect.
      verifier:    a `gateway.Verifier` (or any object with ``verify(token) -> dict``, raising
                   `gateway.JWTError`).
      token_from:  where the token is looked for, in order: "bearer", "cookie:NAME", "header:NAME".
      realm:       the ``realm`` of ``WWW-Authenticate`` (RFC 6750 §3); default "api".
      key_source:  the `JWKSClient` ``verifier`` was built on, so fetches are awaited, not blocking.

    Raises ValueError for an unknown ``token_from`` entry or a realm with quotes or control
    characters.
    """

    def __init__(self, app: ASGIApp, verifier: Any, token_from: Iterable[str] = ("bearer",), *, realm: str = "api", key_source: Any = None):
        self.app = app
        self.verifier = verifier
        self.sources = _token_sources(token_from)
        if any(ch in realm for ch in '"\\') or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in realm):
            raise ValueError("realm may not hold quotes, backslashes or control characters")
        self.realm = realm
        self.key_source = key_source
        self._version: tuple[Any, Any] = (None, None)
        self._missing = f'Bearer realm="{realm}"'.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        tokens, ambiguous = self._tokens(headers)
        if ambiguous:
            await self._refuse(scope, send, 401, "invalid_token", f"more than one {ambiguous} header", invalid=True)
            return
        if not tokens:
            await self._refuse(scope, send, 401, "unauthorized", "a token is required", invalid=False)
            return
        first: Exception | None = None
        for token in tokens:
            try:
                claims = await self._verify(token)
            except _core.JWTError as e:
                if getattr(e, "kind", None) == "key_set_unavailable":
                    await self._unavailable(scope, send)
                    return
                first = first or e
                continue
            state = scope.get("state")
            if state is None:
                state = scope["state"] = {}
            state["claims"] = claims
            await self.app(scope, receive, send)
            return
        kind_name = getattr(first, "kind", "") or ""
        await self._refuse(scope, send, 401, "invalid_token", _DESCRIPTIONS.get(kind_name, "the token is not valid"), invalid=True)

    # ---- verification --------------------------------------------------------------------------

    async def _verify(self, token: str) -> dict[str, Any]:
        source = self.key_source
        if source is None:
            claims: dict[str, Any] = self.verifier.verify(token)
            return claims
        keys = source.current()
        if keys is None:
            keys = await source.refresh()
            if keys is None:
                raise _core.KeySetUnavailable(source.why_unavailable())
        try:
            claims = self._for(keys).verify(token)
        except _core.KeyNotFound:
            kid = _core.unverified_header(token).get("kid")
            newer = await source.refresh(kid) if isinstance(kid, str) else None
            if newer is None or newer is keys:
                raise
            claims = self._for(newer).verify(token)
        return claims

    def _for(self, keys: Any) -> Any:
        last_keys, verifier = self._version
        if last_keys is not keys:
            verifier = self.verifier.with_key_set(keys)
            self._version = (keys, verifier)
        return verifier

    # ---- where the token is --------------------------------------------------------------------

    def _tokens(self, headers: list[tuple[bytes, bytes]]) -> tuple[list[str], str]:
        """(candidate tokens, the header named twice when the request is ambiguous, else "")."""
        for kind, header, cookie in self.sources:
            values = [v for k, v in headers if k.lower() == header]
            if kind == "cookie":
                found = _cookies(values, cookie) if values else []
                if found:
                    return found, ""
                continue
            if len(values) > 1:
                return [], "Authorization" if kind == "bearer" else header.decode("ascii")
            if not values:
                continue
            text = values[0].decode("latin-1").strip()
            if kind == "bearer":
                scheme, _, text = text.partition(" ")
                if scheme.lower() != "bearer":
                    continue
                text = text.strip()
            if text:
                return [text], ""
        return [], ""

    # ---- answers -------------------------------------------------------------------------------

    async def _refuse(self, scope: Scope, send: Send, status: int, code: str, detail: str, invalid: bool) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        challenge = self._missing
        if invalid:
            challenge += f', error="invalid_token", error_description="{detail}"'.encode()
        await _send_json(send, status, code, detail, [(b"www-authenticate", challenge)])

    async def _unavailable(self, scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013, "reason": ""})
            return
        retry = self.key_source.retry_after() if self.key_source is not None else 1
        await _send_json(send, 503, "key_set_unavailable", "the identity provider's signing keys are unavailable; try again shortly", [(b"retry-after", str(retry).encode())])


async def _send_json(send: Send, status: int, code: str, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps({"error": code, "detail": detail})
    out = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


def _token_sources(token_from: Iterable[str]) -> list[tuple[str, bytes, str]]:
    """(kind, the lower-case header it is read from, the cookie name) per entry of ``token_from``."""
    if isinstance(token_from, str):
        raise ValueError('token_from must be a list such as ["bearer", "cookie:session"], not a string')
    out: list[tuple[str, bytes, str]] = []
    for source in token_from:
        if source == "bearer":
            out.append(("bearer", b"authorization", ""))
        elif isinstance(source, str) and source.startswith("cookie:") and _token68(source[7:]):
            out.append(("cookie", b"cookie", source[7:]))
        elif isinstance(source, str) and source.startswith("header:") and _token68(source[7:]):
            out.append(("header", source[7:].lower().encode("ascii"), ""))
        else:
            raise ValueError(f'token_from entry {source!r}: expected "bearer", "cookie:NAME" or "header:NAME"')
    if not out:
        raise ValueError("token_from is empty")
    return out


def _token68(name: str) -> bool:
    return bool(name) and all(ch.isascii() and (ch.isalnum() or ch in "!#$%&'*+-.^_`|~") for ch in name)


def _cookies(values: list[bytes], name: str) -> list[str]:
    """Every value of cookie ``name`` in the Cookie header(s), in order, at most
    `MAX_COOKIE_CANDIDATES` (RFC 6265 §5.4: a browser sends each same-name cookie it holds)."""
    out: list[str] = []
    for header in values:
        for pair in header.decode("latin-1").split(";"):
            key, eq, value = pair.strip().partition("=")
            if eq and key.strip() == name:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                if value:
                    out.append(value)
                    if len(out) >= MAX_COOKIE_CANDIDATES:
                        return out
    return out
