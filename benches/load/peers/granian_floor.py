"""granian-floor: Granian's ASGI interface answering with a fixed 302 and no gateway code — the
ceiling for the scenarios where the gateway answers by itself (S1 no token, S3 forged token).

The answer for each benchmark path is the gateway's own, byte for byte, built once at import: S1's
path gets the login redirect, S3's the redirect plus the Set-Cookie clearing `auth-token`; any other
path gets S1's. A dict lookup is all the per-request work, so the floor is what Granian plus one
Python coroutine cost. Served by benches/load/peers/granian_serve.py (gateway serve's Granian options).

    python -m benches.load.peers.granian_serve benches.load.peers.granian_floor:app --config gateway.toml --port 8001
"""

from __future__ import annotations

from typing import Any

from benches.load.peers.granian_serve import lifespan

_CLEAR = b"auth-token=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax; Secure"


def _redirect(location: bytes, *cookies: bytes) -> dict[str, Any]:
    headers = [(b"location", location), *((b"set-cookie", c) for c in cookies), (b"cache-control", b"no-store"), (b"content-length", b"0")]
    return {"type": "http.response.start", "status": 302, "headers": headers}


S1 = _redirect(b"/login?next=%2Fdashboard")
ANSWERS = {b"/dashboard": S1, b"/dashboard/x": _redirect(b"/login?next=%2Fdashboard%2Fx", _CLEAR)}
BODY = {"type": "http.response.body", "body": b""}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send(ANSWERS.get(scope["raw_path"], S1))
        await send(BODY)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
