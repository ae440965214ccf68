"""Cross-site WebSocket hijacking: browsers apply no CORS to WebSockets, so any page may open one with
the user's cookies. On a route with a `cors` policy the handshake's Origin must be one the policy
allows; real `gateway serve`, real `websockets` origin and client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from gateway.cli import mint_token
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.harness import SECRET, Gateway, gateway_serve, write_config
from tests.ws_origin import WSOrigin

CONFIG = """
[server]
trusted_proxies = []

[origins.ws]
url = "http://127.0.0.1:{ws}"

[auth.session]
secret = "env:JWT_SECRET"
token_from = ["cookie:auth-token"]

[cors.app]
origins = ["https://app.example.com"]
credentials = true

[[routes]]
match = "/live/:p*"
origin = "ws"
auth = "session"
cors = "app"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, WSOrigin]]:
    with ExitStack() as stack:
        origin = WSOrigin()
        stack.callback(origin.close)
        path = write_config(tmp_path_factory.mktemp("wso"), CONFIG.format(ws=origin.port))
        yield stack.enter_context(gateway_serve(path)), origin


def open_session(gw: Gateway, path: str, origin: str | None) -> Any:
    cookie = "auth-token=" + mint_token(SECRET, {"sub": "user-7"}, 600)

    async def go() -> Any:
        try:
            async with connect(f"ws://127.0.0.1:{gw.port}{path}", origin=origin, additional_headers={"Cookie": cookie}) as ws:  # type: ignore[arg-type]
                await ws.send("hello?")
                return await ws.recv()
        except InvalidStatus as e:
            return e.response

    return asyncio.run(asyncio.wait_for(go(), 30))


def test_cookie_session_from_another_sites_page_is_refused(site: tuple[Gateway, WSOrigin]) -> None:
    gw, origin = site
    before = len(origin.handshakes)
    response = open_session(gw, "/live/evil", "https://evil.example.net")
    assert not isinstance(response, str) and response.status_code == 403
    assert b"forbidden" in response.body
    assert "access-control-allow-origin" not in {k.lower() for k, _ in response.headers.raw_items()}
    assert [h for h in origin.handshakes[before:] if h.path == "/live/evil"] == []


def test_cookie_session_from_an_allowed_page_opens(site: tuple[Gateway, WSOrigin]) -> None:
    gw, _ = site
    assert open_session(gw, "/live/ok", "https://app.example.com") == "hello from /live/ok"


def test_a_handshake_without_origin_is_no_browsers_and_is_left_to_auth(site: tuple[Gateway, WSOrigin]) -> None:
    gw, _ = site
    assert open_session(gw, "/live/cli", None) == "hello from /live/cli"
