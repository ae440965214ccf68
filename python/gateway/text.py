"""The one rule that turns a value the gateway makes (a claim, a KV field) into header text.

The client's own header bytes pass to the origin untouched (the core keeps them as bytes); text the
gateway makes goes out as UTF-8 (`_core.Request.upstream_headers`).
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
