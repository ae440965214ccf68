"""gateway: an auth-and-routing HTTP gateway with a Rust core, and a fast, strict JWT verifier (HS*, RS*, PS*, ES*, EdDSA).

As a library::

    import gateway
    claims = gateway.verify(token, key, algorithms=["HS256"], audience="api")
    keys = gateway.KeySet.from_jwks(jwks)            # or from_jwk / from_pem
    claims = gateway.verify(token, keys, algorithms=["RS256"], issuer="https://idp.example.com/")

As a server: ``gateway serve --config gateway.toml`` (see the README). Python hooks for it
(``gateway.hook``, ``HookRequest``, ``Respond``, ``Forward``, ...): see docs/hooks.md.
"""

from gateway._core import (
    AlgorithmNotAllowed,
    ExpiredToken,
    InvalidAudience,
    InvalidIssuer,
    InvalidSignature,
    JWTError,
    KeyNotFound,
    KeySet,
    KeySetUnavailable,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    Verifier,
    __version__,
    b64url_decode,
    b64url_encode,
    best_language,
    cookie_value,
    encode,
    set_cookie,
    unverified_claims,
    unverified_header,
    verify,
)
from gateway.hooks.api import Forward, Headers, HookRequest, HookResponse, Respond, ResponseChanges, hook
from gateway.jwks import JWKSClient
from gateway import asgi

__all__ = [
    "AlgorithmNotAllowed",
    "ExpiredToken",
    "Forward",
    "Headers",
    "HookRequest",
    "HookResponse",
    "InvalidAudience",
    "InvalidIssuer",
    "InvalidSignature",
    "JWKSClient",
    "JWTError",
    "KeyNotFound",
    "KeySet",
    "KeySetUnavailable",
    "MalformedToken",
    "MissingClaim",
    "NotYetValid",
    "Respond",
    "ResponseChanges",
    "Verifier",
    "__version__",
    "asgi",
    "b64url_decode",
    "b64url_encode",
    "best_language",
    "cookie_value",
    "encode",
    "hook",
    "set_cookie",
    "unverified_claims",
    "unverified_header",
    "verify",
]
