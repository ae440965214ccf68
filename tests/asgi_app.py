"""A Starlette app behind gateway.asgi.JWTAuth, for tests/test_asgi.py (served by uvicorn).

Configured by the environment: JWKS_URL, JWKS_CA_FILE, JWKS_COOLDOWN (seconds). Its lifespan puts
{"started": "yes"} in the state, so a test can see that JWTAuth passes lifespan through and adds the
claims beside what the lifespan set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from gateway import JWKSClient, _core
from gateway.asgi import JWTAuth


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"started": "yes"}


async def me(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.claims["sub"], "started": request.state.started})


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.state.claims["sub"])
    await websocket.close()


def build(jwks_url: str, ca_file: str | None, cooldown: float = 30.0) -> Any:
    inner = Starlette(routes=[Route("/me", me), WebSocketRoute("/ws", ws)], lifespan=lifespan)
    idp = JWKSClient(jwks_url, ca_file=ca_file, cooldown=cooldown, timeout=2)
    verifier = _core.Verifier(idp, ["RS256", "ES256", "EdDSA"], audience="api")
    return JWTAuth(inner, verifier, token_from=["bearer", "cookie:session"], key_source=idp)


app = build(os.environ["JWKS_URL"], os.environ.get("JWKS_CA_FILE"), float(os.environ.get("JWKS_COOLDOWN", "30"))) if "JWKS_URL" in os.environ else None
