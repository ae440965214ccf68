"""Tokens out of what `gateway explain` prints.

`explain` shows the headers the origin would be sent, and the client's own Authorization (or
cookie, or token header) is passed to the origin unchanged — so without this its output would hold
the whole bearer token, and explain output gets pasted into tickets and chat. A JWT is recognised by
its shape, not by the header it came in: three base64url parts (RFC 7515 §7.1) whose first decodes
to a JSON object, so a token in any header, cookie or query parameter is caught, and host names or
other dotted text are left alone. Only the first characters of the header part stay (enough to tell
two tokens apart while debugging; the header is not secret), and the length.
"""

from __future__ import annotations

import base64
import re
from typing import Any

_JWS = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
KEEP = 12


def _is_jws_header(part: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except ValueError:
        return False
    return raw.lstrip()[:1] == b"{"


def tokens(text: str) -> str:
    """`text` with every JWT-shaped run replaced by ``<token: first chars…, N bytes, redacted>``."""

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if not _is_jws_header(token.split(".", 1)[0]):
            return token
        return f"<token {token[:KEEP]}…, {len(token)} bytes, redacted>"

    return _JWS.sub(one, text) if "." in text else text


def explain_result(result: dict[str, Any]) -> dict[str, Any]:
    """An explain result (gateway.cli.explain) with tokens redacted from every printed value."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return tokens(value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(walk(v) for v in value)
        return value

    return walk(result)  # type: ignore[no-any-return]
