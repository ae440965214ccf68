"""Every answer the gateway makes itself, and the one place a gateway error becomes a response.

A stage that ends a request returns an `Answer`; `send_answer` writes it. Errors are named by a
*kind* (``bad_request``, ``payload_too_large``, ...): `error()` looks up its status and public error
code in `ERRORS`, so the mapping lives here and nowhere else. Bodies are JSON ``{"error", "detail"}``;
details are short fixed sentences that never echo a token or a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from gateway.cors import merge_headers

# kind -> (HTTP status, the "error" code in the JSON body)
ERRORS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "bad_request"),
    "forbidden": (403, "forbidden"),
    "not_found": (404, "not_found"),
    "payload_too_large": (413, "payload_too_large"),
    "header_fields_too_large": (431, "request_header_fields_too_large"),
    "unauthorized": (401, "unauthorized"),
    "invalid_token": (401, "invalid_token"),
    "bad_gateway": (502, "bad_gateway"),
    "gateway_timeout": (504, "gateway_timeout"),
    "internal_error": (500, "internal_error"),
    # A WebSocket handshake on a route with websocket = false: the request is understood and valid,
    # the route refuses the upgrade (RFC 6455 §4.2.2 lets a server refuse one with an HTTP error).
    "websocket_not_allowed": (403, "websocket_not_allowed"),
    "service_unavailable": (503, "service_unavailable"),
    "hook_failed": (500, "hook_failed"),  # a Python hook raised, timed out or returned a bad value (on_error = "deny")
    "rate_limited": (429, "rate_limited"),
    # A rate limit whose store (redis) cannot be reached, with on_store_error = "deny".
    "rate_limit_unavailable": (503, "service_unavailable"),
    # No usable key set from the identity provider (down, or stale beyond jwks_stale_if_error).
    "key_set_unavailable": (503, "key_set_unavailable"),
}

_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")
_CLOSE = (b"connection", b"close")


class Answer:
    """A response the gateway sends without asking an origin: status, headers, a small body.

    ``kind`` is the error kind (see `ERRORS`), ``"redirect"``, ``"health"`` or ``"preflight"``; ``close`` asks the
    server to close the connection after it (the request's framing cannot be trusted).
    """

    __slots__ = ("status", "kind", "detail", "headers", "body", "close")

    def __init__(self, status: int, kind: str, detail: str = "", headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"", close: bool = False):
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = headers if headers is not None else []
        self.body = body
        self.close = close

    def header(self, name: bytes) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("latin-1")
        return None


def error(kind: str, detail: str, *, close: bool = False, headers: list[tuple[bytes, bytes]] | None = None) -> Answer:
    """The gateway's JSON error for `kind` (a key of `ERRORS`)."""
    status, code = ERRORS[kind]
    out = [_JSON, _NO_STORE]
    if close:
        out.append(_CLOSE)
    if headers:
        out.extend(headers)
    return Answer(status, kind, detail, out, orjson.dumps({"error": code, "detail": detail}), close)


def redirect(location: str) -> Answer:
    """302 to a path on this site (the caller has made it safe: see stages/auth.py)."""
    return Answer(302, "redirect", location, [(b"location", location.encode("latin-1")), _NO_STORE])


def health(body: dict[str, Any]) -> Answer:
    return Answer(200, "health", "", [_JSON, _NO_STORE], orjson.dumps(body))


async def send_answer(
    send: Any, answer: Answer, set_cookies: list[str], cors_headers: Sequence[tuple[bytes, bytes]] = (), extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Writes `answer`, with the cookies the stages set, the route's CORS decision
    (``ctx.cors_headers``, added by `gateway.cors.merge_headers` as on the origin's responses) and
    `extra` headers (the request id echoed on every response)."""
    headers = list(answer.headers)
    headers.extend(extra)
    headers.extend((b"set-cookie", c.encode("latin-1")) for c in set_cookies)
    if cors_headers:
        headers = merge_headers(headers, cors_headers)
    if answer.status != 204:  # RFC 9110 §8.6: never a Content-Length on a 204
        headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
