"""How text crosses the HTTP boundary: wire bytes as latin-1 text, and the one rule that turns a
value the gateway makes (a claim, a KV field) into header text.

Request header values cross between ASGI, the core and the upstream client as latin-1 text: one
character per wire byte, so bytes outside ASCII pass through unchanged in both directions. Text the
gateway makes itself goes out as UTF-8.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

# RFC 9110 §5.5 allows HTAB inside a field value, but a tab or any other control character in a
# claim is never what an origin expects in an identity header (and CR/LF would be injection): a
# value holding one is not turned into header text at all.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_HEADER_VALUE = 4096


def wire_text(value: str) -> str:
    """Text the gateway made, as the latin-1 wire text the upstream client sends as UTF-8 bytes."""
    return value if value.isascii() else value.encode("utf-8").decode("latin-1")


def display_text(value: str) -> str:
    """The inverse of `wire_text`, for people: wire bytes read as UTF-8 (invalid bytes as U+FFFD)."""
    return value if value.isascii() else value.encode("latin-1").decode("utf-8", "replace")


def header_text(value: Any) -> str | None:
    """The one rule for a value the gateway puts into a header (a forwarded claim, a placeholder).

    Strings as they are, booleans as ``true``/``false``, numbers in their JSON spelling, arrays and
    objects as compact JSON. ``None`` (and JSON null) gives ``None``; so does a text holding a control
    character (tab, CR, LF, DEL, ...) or longer than 4096 characters, a number JSON cannot spell
    (infinity) and an array or object JSON cannot write (an integer past 64 bits inside it): such a
    value is treated as absent, never trimmed or rewritten into something the token did not say.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):  # 1e400 in a token parses as inf, which JSON cannot spell
            return None
        text = repr(value)
    else:
        try:
            text = orjson.dumps(value).decode()
        except (TypeError, orjson.JSONEncodeError):  # e.g. an integer past 64 bits inside an array
            return None
    if len(text) > MAX_HEADER_VALUE or _CONTROL.search(text):
        return None
    return text
