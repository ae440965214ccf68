"""gateway: an auth-and-routing HTTP gateway with a Rust core, and a fast, strict HS* JWT verifier.

As a library::

    import gateway
    claims = gateway.verify(token, key, algorithms=["HS256"], audience="api")

As a server: ``gateway serve --config gateway.toml`` (see the README).
"""

from gateway._core import (
    AlgorithmNotAllowed,
    ExpiredToken,
    InvalidAudience,
    InvalidIssuer,
    InvalidSignature,
    JWTError,
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
    verify,
)
from gateway.jwks import JWKSClient
from gateway import asgi

__all__ = [
    "AlgorithmNotAllowed",
    "ExpiredToken",
    "InvalidAudience",
    "InvalidIssuer",
    "InvalidSignature",
    "JWKSClient",
    "JWTError",
    "MalformedToken",
    "MissingClaim",
    "NotYetValid",
    "Verifier",
    "__version__",
    "asgi",
    "b64url_decode",
    "b64url_encode",
    "best_language",
    "cookie_value",
    "encode",
    "set_cookie",
    "verify",
]
