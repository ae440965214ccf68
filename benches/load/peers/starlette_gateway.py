"""The gateway a Python developer would write today: Starlette + PyJWT + httpx, served by uvicorn.

Written the way the docs of those libraries show, without tuning: one catch-all route, PyJWT's
`jwt.decode`, one shared `httpx.AsyncClient`, bodies read whole. It does the reference workload:

- /dashboard/:path* (cookie `auth-token`, then `Authorization: Bearer`): missing -> 302 /login?next=...;
  bad or expired -> 302 plus a Set-Cookie clearing `auth-token`; valid -> X-User-Id from `sub`, proxy.
- /api/protected/:path* (bearer): missing or bad -> 401 JSON with WWW-Authenticate.
- every other path: country from cf-ipcountry (trusted peers only) -> /ko or /ja prefix, else the
  Accept-Language match; X-Region response header; `ab-group` cookie for new visitors; proxy.

    ORIGIN_URL=http://127.0.0.1:9000 JWT_SECRET=... uvicorn benches.load.peers.starlette_gateway:app --port 8000
"""

from __future__ import annotations

import os
import random
from contextlib import asynccontextmanager
from urllib.parse import quote

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

ORIGIN_URL = os.environ.get("ORIGIN_URL", "http://127.0.0.1:9000")
JWT_SECRET = os.environ["JWT_SECRET"]
TRUSTED = {"127.0.0.1", "::1"}
COUNTRY_PREFIX = {"KR": "/ko", "JP": "/ja"}
LANGUAGE_PREFIX = {"ko": "/ko", "ja": "/ja"}
VARIANTS = ["control", "variant"]
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
}

client: httpx.AsyncClient


@asynccontextmanager
async def lifespan(app):  # type: ignore[no-untyped-def]
    global client
    client = httpx.AsyncClient(base_url=ORIGIN_URL, timeout=10.0)
    yield
    await client.aclose()


def under(path: str, prefix: str) -> bool:
    p = path.lower()
    return p == prefix or p.startswith(prefix + "/")


def login_redirect(request: Request, clear: bool = False) -> Response:
    original = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse("/login?next=" + quote(original, safe=""), status_code=302)
    if clear:
        response.delete_cookie("auth-token", path="/", secure=True, samesite="lax")
    return response


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


def best_language(accept_language: str) -> str | None:
    best, best_q = None, 0.0
    for part in accept_language.split(","):
        lang, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = lang.strip().lower().split("-")[0]
        if primary in LANGUAGE_PREFIX and q > best_q:
            best, best_q = primary, q
    return best


async def gateway(request: Request) -> Response:
    path = request.url.path
    headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP and k != "x-user-id"}
    response_headers: dict[str, str] = {}
    new_variant = None

    if under(path, "/dashboard"):
        token = request.cookies.get("auth-token") or bearer(request)
        if not token:
            return login_redirect(request)
        try:
            claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], leeway=30)
        except jwt.InvalidTokenError:
            return login_redirect(request, clear=True)
        headers["x-user-id"] = str(claims.get("sub", ""))
    elif under(path, "/api/protected"):
        token = bearer(request)
        try:
            if not token:
                raise jwt.InvalidTokenError("missing")
            claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            return JSONResponse(
                {"error": "invalid_token"}, status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        headers["x-user-id"] = str(claims.get("sub", ""))
    else:
        country = "US"
        if request.client and request.client.host in TRUSTED and request.headers.get("cf-ipcountry"):
            country = request.headers["cf-ipcountry"].upper()
        prefix = COUNTRY_PREFIX.get(country)
        if prefix is None:
            lang = best_language(request.headers.get("accept-language", ""))
            prefix = LANGUAGE_PREFIX.get(lang) if lang else None
        if prefix and not under(path, prefix):
            path = prefix + path
        variant = request.cookies.get("ab-group")
        if variant not in VARIANTS:
            variant = new_variant = random.choice(VARIANTS)
        headers["x-ab-group"] = variant
        response_headers["X-Region"] = country

    if request.client:
        headers["x-forwarded-for"] = request.client.host
    upstream = await client.request(
        request.method,
        path,
        params=request.url.query or None,
        headers=headers,
        content=await request.body(),
    )
    out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"}
    out_headers.update(response_headers)
    response = Response(upstream.content, status_code=upstream.status_code, headers=out_headers)
    if new_variant:
        response.set_cookie("ab-group", new_variant, max_age=86400, path="/", samesite="lax", secure=True)
    return response


METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
app = Starlette(routes=[Route("/{path:path}", gateway, methods=METHODS)], lifespan=lifespan)
