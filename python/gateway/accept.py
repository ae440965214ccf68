"""Whether a request is an API client's rather than a browser's: proactive negotiation on ``Accept``
(RFC 9110 §12.5.1), and ``X-Requested-With: XMLHttpRequest``.

Used by the auth stage on redirect policies (``api_status``): a ``fetch()`` or an XHR cannot use a
302 to an HTML login page, a browser navigating can.

``prefers_json`` ranks ``application/json`` against ``text/html``. Each gets the quality of the most
specific range that matches it (``type/subtype`` over ``type/*`` over ``*/*``, RFC 9110 §12.5.1); a
range with an invalid ``q`` is ignored, as is one that is not ``type/subtype``. JSON also counts
ranges with the ``+json`` structured-syntax suffix (RFC 6839 §3.1: ``application/problem+json``,
``application/vnd.api+json``). JSON is preferred when its quality is higher; on equal quality, when
JSON was named explicitly and HTML was reached only through a wildcard — which is how axios
(``application/json, text/plain, */*``) and jQuery's ``dataType: "json"`` ask for JSON, while a
browser's navigation names ``text/html`` itself. ``*/*`` alone (``fetch()``'s default) prefers
nothing, and so neither does an absent ``Accept``.
"""

from __future__ import annotations

import re

from gateway._core import Request

# More ranges than this are not read: a real Accept has a handful.
MAX_RANGES = 64
_Q_RE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")

# (q, explicitly named): the order the preference is decided in.
Rank = tuple[float, bool]


def parse_accept(text: str) -> list[tuple[str, str, float]]:
    """The media ranges of an ``Accept`` value as (type, subtype, q), lower-case, in order."""
    out = []
    for element in text.split(",")[:MAX_RANGES]:
        media, *params = element.split(";")
        media = media.strip().lower()
        typ, slash, sub = media.partition("/")
        if not slash or not _TOKEN_RE.fullmatch(typ) or not _TOKEN_RE.fullmatch(sub) or (typ == "*" and sub != "*"):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                # The weight ends the media-type parameters (RFC 9110 §12.5.1): read the first one.
                q = float(value) if _Q_RE.fullmatch(value) else -1.0
                break
        if q >= 0:
            out.append((typ, sub, q))
    return out


def rank(ranges: list[tuple[str, str, float]], typ: str, sub: str) -> Rank:
    """The quality ``typ/sub`` gets from the most specific matching range, and whether that range
    names it exactly; (0, False) when none matches (not acceptable)."""
    best, specificity = 0.0, -1
    for rt, rs, q in ranges:
        if rt == typ and rs == sub:
            s = 2
        elif rt == typ and rs == "*":
            s = 1
        elif rt == "*":
            s = 0
        else:
            continue
        if s > specificity:
            best, specificity = q, s
    return best, specificity == 2


def json_preference(request: Request) -> str | None:
    """Why the request prefers a JSON answer to an HTML page, or None when it does not."""
    xrw = request.header("x-requested-with")
    if xrw is not None and xrw.strip().lower() == "xmlhttprequest":
        return "X-Requested-With: XMLHttpRequest"
    values = request.header_values("accept")
    if not values:
        return None
    ranges = parse_accept(",".join(values))
    json = rank(ranges, "application", "json")
    for rt, rs, q in ranges:
        if rs.endswith("+json") and (q, True) > json:
            json = (q, True)
    html = rank(ranges, "text", "html")
    if json[0] > 0 and json > html:
        return f"Accept ranks JSON ({_say(json)}) above HTML ({_say(html)})"
    return None


def _say(r: Rank) -> str:
    q, explicit = r
    return "not acceptable" if q == 0 else f"q={q:g}" + ("" if explicit else " by a wildcard")
