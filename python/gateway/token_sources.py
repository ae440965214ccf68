"""The token sources for clients that cannot set headers (a browser's WebSocket, EventSource):
``query:NAME`` and ``subprotocol`` (see the README's "Token sources").

A token in the query string is removed from the query the origin is sent (and from the ``next`` of
a login redirect), so it reaches no origin log; the gateway's access log never writes query strings.
A token in ``Sec-WebSocket-Protocol`` is an entry ``bearer.<token>`` offered next to the
application's real subprotocols; the relay (gateway.proxy.websocket) never forwards it.
"""

from __future__ import annotations

from urllib.parse import unquote

from gateway._core import Request

BEARER_PREFIX = "bearer."


def _name(part: str) -> str:
    # application/x-www-form-urlencoded names (WHATWG URL §5.1): "+" is a space.
    return unquote(part.partition("=")[0].replace("+", " "))


def query_values(query: str, name: str) -> list[str]:
    """Every value of the query parameter `name`, percent-decoded, in order (empty ones left out)."""
    out = []
    for part in query.split("&"):
        if part and _name(part) == name:
            value = unquote(part.partition("=")[2].replace("+", " "))
            if value:
                out.append(value)
    return out


def without_params(query: str, names: frozenset[str]) -> str:
    """`query` less every parameter called one of `names`; the others byte for byte, in order."""
    return "&".join(part for part in query.split("&") if part and _name(part) not in names)


def subprotocol_tokens(req: Request) -> list[str]:
    """The tokens of the ``bearer.<token>`` entries of Sec-WebSocket-Protocol (RFC 6455 §11.3.4: a
    comma-separated list, possibly across several header lines), in order."""
    out = []
    for value in req.header_values("sec-websocket-protocol"):
        for item in value.split(","):
            item = item.strip()
            if item.startswith(BEARER_PREFIX) and len(item) > len(BEARER_PREFIX):
                out.append(item[len(BEARER_PREFIX) :])
    return out
