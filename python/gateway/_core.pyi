"""Type stubs for the Rust extension ``gateway._core``."""

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, final

__version__: str

_Key = str | bytes | Mapping[str, str | bytes]
_Seconds = int | float | datetime.timedelta
_Time = int | float | datetime.datetime

class JWTError(ValueError):
    """A token failed verification."""

class MalformedToken(JWTError): ...
class InvalidSignature(JWTError): ...
class AlgorithmNotAllowed(JWTError): ...
class ExpiredToken(JWTError): ...
class NotYetValid(JWTError): ...
class InvalidIssuer(JWTError): ...
class InvalidAudience(JWTError): ...
class MissingClaim(JWTError): ...

@final
class Verifier:
    """A reusable, immutable, thread-safe HS256/HS384/HS512 verifier."""

    def __new__(
        cls,
        key: _Key,
        algorithms: Sequence[str] | None = ...,
        audience: str | Sequence[str] | None = ...,
        issuer: str | Sequence[str] | None = ...,
        leeway: _Seconds | None = ...,
        require: Sequence[str] | None = ...,
        *,
        max_length: int = ...,
        allow_weak_key: bool = ...,
    ) -> Verifier: ...
    def verify(self, token: str | bytes, now: _Time | None = ...) -> dict[str, Any]: ...
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
    max_length: int = ...,
    allow_weak_key: bool = ...,
) -> dict[str, Any]: ...
def encode(
    claims: Mapping[str, Any],
    key: _Key,
    algorithm: str = ...,
    headers: Mapping[str, Any] | None = ...,
    *,
    allow_weak_key: bool = ...,
) -> str: ...
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
