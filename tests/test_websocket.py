"""WebSockets through a real `gateway serve` to a real WebSocket origin (the `websockets` library's
server, tests/ws_origin.py), with the `websockets` client as the browser: the handshake decided by
the same stages as HTTP, messages and close codes relayed both ways, the limits, the token sources
a browser can use, and the access log's one line per session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from gateway.cli import mint_token
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as follows_redirects
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.harness import SECRET, Gateway, free_port, gateway_serve, raw_http, wait_for, write_config
from tests.ws_origin import WSOrigin

CONFIG = """
[server]
trusted_proxies = []

[origins.ws]
url = "http://127.0.0.1:{ws}"

[origins.down]
url = "http://127.0.0.1:{down}"
timeout = "3s"

[auth.session]
secret = "env:JWT_SECRET"
token_from = ["query:access_token", "subprotocol", "cookie:auth-token"]
on_missing = {{ redirect = "/login" }}
forward_claims = {{ sub = "X-User-Id" }}

[auth.api]
secret = "env:JWT_SECRET"
token_from = ["bearer"]

[[routes]]
match = "/app/:p*"
origin = "ws"
auth = "session"

[[routes]]
match = "/api/:p*"
origin = "ws"
auth = "api"

[[routes]]
match = "/plain/:p*"
origin = "ws"
websocket = false

[[routes]]
match = "/tight/:p*"
origin = "ws"
ws_idle_timeout = "1s"
ws_max_message = "1KB"

[[routes]]
match = "/beta/:p*"
origin = "ws"
has = [{{ type = "header", key = "x-beta", value = "1" }}]

[[routes]]
match = "/down/:p*"
origin = "down"

[[routes]]
match = "/:p*"
origin = "ws"
"""


class Site:
    def __init__(self, gw: Gateway, origin: WSOrigin):
        self.gw = gw
        self.origin = origin

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.gw.port}{path}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("ws")
    with ExitStack() as stack:
        origin = WSOrigin()
        stack.callback(origin.close)
        path = write_config(tmp, CONFIG.format(ws=origin.port, down=free_port()))
        gw = stack.enter_context(gateway_serve(path))
        yield Site(gw, origin)


class connect(follows_redirects):
    """A client that shows a redirect instead of following it (the library follows by default)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def token(**claims: Any) -> str:
    return mint_token(SECRET, {"sub": "user-7", **claims}, 600)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def closed(ws: ClientConnection) -> ConnectionClosed:
    """Reads until the session ends; the close as the client saw it."""
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as e:
        return e


def refusal(site: Site, path: str, **kw: Any) -> Any:
    async def go() -> Any:
        with pytest.raises(InvalidStatus) as info:
            async with connect(site.url(path), **kw):
                pass
        return info.value.response

    return run(go())


# ------------------------------------------------------------------ messages and close codes


def test_text_and_binary_are_echoed_with_their_type(site: Site) -> None:
    async def go() -> None:
        async with connect(site.url("/room/1")) as ws:
            await ws.send("héllo, wörld")
            assert await ws.recv() == "héllo, wörld"
            await ws.send(bytes(range(256)))
            assert await ws.recv() == bytes(range(256))
            await ws.send("hello?")
            assert await ws.recv() == "hello from /room/1"

    run(go())


def test_the_subprotocol_the_origin_chooses_is_the_clients(site: Site) -> None:
    async def go() -> None:
        async with connect(site.url("/room/sp"), subprotocols=["chat.v1", "chat.v2"]) as ws:  # type: ignore[list-item]
            # The origin prefers chat.v2 among what was offered; the gateway passes its choice on.
            assert ws.subprotocol == "chat.v2"
        async with connect(site.url("/room/sp2"), subprotocols=["chat.v1"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "chat.v1"

    run(go())
    assert site.origin.last().header("Sec-WebSocket-Protocol") == ["chat.v1"]


def test_the_origins_close_code_and_reason_reach_the_client(site: Site) -> None:
    async def go() -> ConnectionClosed:
        async with connect(site.url("/room/close")) as ws:
            await ws.send("close 4321 done here")
            return await closed(ws)

    e = run(go())
    assert e.rcvd is not None and (e.rcvd.code, e.rcvd.reason) == (4321, "done here")


def test_the_clients_close_code_reaches_the_origin(site: Site) -> None:
    async def go() -> None:
        async with connect(site.url("/room/client-closes")) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(4004, "leaving")

    run(go())
    assert wait_for(lambda: site.origin.last().close_code is not None, 5)
    assert site.origin.last().close_code == 4004


def test_a_fragmented_message_is_relayed_whole(site: Site) -> None:
    async def go() -> Any:
        async with connect(site.url("/room/frag")) as ws:
            await ws.send("fragments")
            return await ws.recv()

    assert run(go()) == "fragmented"


def test_origin_vanishing_without_close_frame_is_1014(site: Site) -> None:
    async def go() -> ConnectionClosed:
        async with connect(site.url("/room/drop")) as ws:
            await ws.send("drop")
            return await closed(ws)

    e = run(go())
    assert e.rcvd is not None and e.rcvd.code == 1014


def test_client_vanishing_is_1001_to_the_origin(site: Site) -> None:
    async def go() -> None:
        ws = await connect(site.url("/room/client-drop"))
        await ws.send("x")
        await ws.recv()
        ws.transport.abort()

    run(go())
    assert wait_for(lambda: site.origin.last().path == "/room/client-drop" and site.origin.last().close_code is not None, 10)
    assert site.origin.last().close_code == 1001
    entry = site.gw.wait_log(lambda e: e.get("path") == "/room/client-drop")
    assert entry is not None and entry["closed_by"] == "client"


def test_pings_are_answered_on_both_legs(site: Site) -> None:
    """The origin pings every 0.2 s and closes (1011) when no pong comes within 1 s: a session that
    lives 2.5 s proves the gateway answers the origin's pings; the client's own ping gets its pong."""

    async def go() -> None:
        async with connect(site.url("/room/ping"), ping_interval=None) as ws:
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5)
            await asyncio.sleep(2.5)
            await ws.send("still here")
            assert await ws.recv() == "still here"

    run(go())


# ------------------------------------------------------------------ the handshake, decided by the stages


def test_unauthenticated_handshake_gets_the_policys_redirect_as_http(site: Site) -> None:
    r = refusal(site, "/app/chat?room=1")
    assert r.status_code == 302
    assert r.headers["Location"] == "/login?next=%2Fapp%2Fchat%3Froom%3D1"
    assert not any(h.path.startswith("/app/chat") for h in site.origin.handshakes)


def test_unauthenticated_handshake_gets_401_as_http(site: Site) -> None:
    r = refusal(site, "/api/stream")
    assert r.status_code == 401
    assert json.loads(bytes(r.body))["error"] == "unauthorized"
    r = refusal(site, "/api/stream", additional_headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401
    assert json.loads(bytes(r.body))["error"] == "invalid_token"


def test_bearer_header_opens_a_session_and_client_claim_headers_are_dropped(site: Site) -> None:
    async def go() -> list[list[str]]:
        async with connect(site.url("/api/stream"), additional_headers={"Authorization": f"Bearer {token()}", "X-User-Id": "admin"}) as ws:
            await ws.send("headers")
            return json.loads(await ws.recv())

    headers = run(go())
    got = {k.lower(): v for k, v in headers}
    # X-User-Id carries a verified claim on another route: only the gateway may set it, anywhere.
    assert "x-user-id" not in got
    assert got["x-forwarded-for"] == "127.0.0.1"
    assert got["x-forwarded-proto"] == "http"


def test_spoofed_forwarding_headers_are_replaced(site: Site) -> None:
    async def go() -> dict[str, str]:
        extra = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6"}
        async with connect(site.url("/room/spoof"), additional_headers=extra) as ws:
            await ws.send("headers")
            return {k.lower(): v for k, v in json.loads(await ws.recv())}

    got = run(go())
    assert got["x-forwarded-for"] == "127.0.0.1"
    assert got["x-forwarded-proto"] == "http"
    assert "forwarded" not in got and "x-real-ip" not in got


def test_query_token_opens_the_session_and_never_reaches_origin_or_log(site: Site) -> None:
    tok = token()

    async def go() -> str:
        async with connect(site.url(f"/app/chat?room=5&access_token={tok}&x=%20y")) as ws:
            await ws.send("hello?")
            return str(await ws.recv())

    assert run(go()) == "hello from /app/chat?room=5&x=%20y"
    seen = site.origin.last()
    assert tok not in seen.path and all(tok not in v for _, v in seen.headers)
    assert seen.header("X-User-Id") == ["user-7"]
    assert site.gw.wait_log(lambda e: e.get("path") == "/app/chat" and e.get("status") == 101) is not None
    assert tok not in site.gw.all_output()


def test_an_invalid_query_token_is_401_and_a_redirect_never_carries_it(site: Site) -> None:
    expired = mint_token(SECRET, {"sub": "x"}, -3600)
    r = refusal(site, f"/app/chat?access_token={expired}&room=2")
    # on_invalid is the default 401 here; on_missing's redirect would carry `next` without the token
    assert r.status_code == 401
    r = refusal(site, "/app/chat?access_token=&room=2")
    assert r.status_code == 302 and r.headers["Location"] == "/login?next=%2Fapp%2Fchat%3Froom%3D2"
    r = refusal(site, f"/app/chat?access_token={token()}&access_token={token(n=2)}")
    assert r.status_code == 401  # two tokens are ambiguous, as two Authorization headers are
    assert expired not in site.gw.all_output()


def test_subprotocol_token_opens_the_session_and_is_never_forwarded(site: Site) -> None:
    tok = token()

    async def go() -> str | None:
        async with connect(site.url("/app/live"), subprotocols=["chat.v1", f"bearer.{tok}"]) as ws:  # type: ignore[list-item]
            await ws.send("x")
            await ws.recv()
            return ws.subprotocol

    assert run(go()) == "chat.v1"
    seen = site.origin.last()
    assert seen.path == "/app/live"
    assert seen.header("Sec-WebSocket-Protocol") == ["chat.v1"]
    assert all(tok not in v for _, v in seen.headers)
    assert seen.header("X-User-Id") == ["user-7"]


def test_route_with_websocket_false_refuses_the_upgrade_with_403(site: Site) -> None:
    before = len(site.origin.handshakes)
    r = refusal(site, "/plain/x")
    assert r.status_code == 403
    assert json.loads(bytes(r.body))["error"] == "websocket_not_allowed"
    assert len(site.origin.handshakes) == before


def test_has_conditions_pick_the_route_for_a_handshake(site: Site) -> None:
    async def go(headers: dict[str, str]) -> str:
        async with connect(site.url("/beta/x"), additional_headers=headers) as ws:
            await ws.send("hello?")
            return str(await ws.recv())

    run(go({"X-Beta": "1"}))
    entry = site.gw.wait_log(lambda e: e.get("path") == "/beta/x" and e.get("match") == "/beta/:p*")
    assert entry is not None and entry["status"] == 101
    run(go({}))
    assert site.gw.wait_log(lambda e: e.get("path") == "/beta/x" and e.get("match") == "/:p*") is not None


def test_origin_down_is_a_502_handshake(site: Site) -> None:
    r = refusal(site, "/down/x")
    assert r.status_code == 502
    assert json.loads(bytes(r.body))["error"] == "bad_gateway"


def test_origin_refusal_is_passed_on(site: Site) -> None:
    r = refusal(site, "/refuse/x")
    assert r.status_code == 403
    assert bytes(r.body) == b"origin says no"


def test_origin_redirect_is_passed_on_never_followed(site: Site) -> None:
    r = refusal(site, "/moved/x")
    assert r.status_code == 302 and r.headers["Location"] == "/room/elsewhere"
    assert not any(h.path == "/room/elsewhere" for h in site.origin.handshakes)


def test_bad_handshakes_never_reach_the_origin(site: Site) -> None:
    before = len(site.origin.handshakes)
    # An encoded slash is refused by normalize, as for HTTP; a missing Sec-WebSocket-Key by the server.
    for target, extra in ((b"/room%2Fx", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), (b"/room/x", b"")):
        r = raw_http(
            site.gw.port,
            b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" + extra + b"\r\n",
        )
        assert r.status == 400
    assert len(site.origin.handshakes) == before


# ------------------------------------------------------------------ limits


def test_idle_session_is_closed_with_1001(site: Site) -> None:
    async def go() -> ConnectionClosed:
        async with connect(site.url("/tight/idle")) as ws:
            await ws.send("x")
            await ws.recv()
            return await closed(ws)  # nothing more either way: the route's 1 s idle timeout

    e = run(go())
    assert e.rcvd is not None and e.rcvd.code == 1001 and "idle" in e.rcvd.reason
    assert wait_for(lambda: site.origin.last().close_code == 1001, 5)


def test_oversized_client_message_closes_with_1009(site: Site) -> None:
    async def go() -> ConnectionClosed:
        async with connect(site.url("/tight/big")) as ws:
            await ws.send("y" * 1000)  # exactly the limit ("1KB": 1000 bytes) passes
            assert await ws.recv() == "y" * 1000
            await ws.send(b"z" * 1001)
            return await closed(ws)

    e = run(go())
    assert e.rcvd is not None and e.rcvd.code == 1009


def test_oversized_text_is_counted_in_utf8_bytes(site: Site) -> None:
    async def go() -> ConnectionClosed:
        async with connect(site.url("/tight/utf8")) as ws:
            await ws.send("é" * 501)  # 501 characters, 1002 bytes
            return await closed(ws)

    e = run(go())
    assert e.rcvd is not None and e.rcvd.code == 1009


def test_oversized_origin_message_closes_the_client_with_1014(site: Site) -> None:
    async def go() -> ConnectionClosed:
        async with connect(site.url("/tight/origin-big")) as ws:
            await ws.send("send-big 5000")
            return await closed(ws)

    e = run(go())
    assert e.rcvd is not None and e.rcvd.code == 1014


# ------------------------------------------------------------------ the access log


def test_one_access_log_line_per_session(site: Site) -> None:
    async def go() -> None:
        async with connect(site.url("/logged/session")) as ws:
            for i in range(3):
                await ws.send(f"m{i}")
                await ws.recv()
            await ws.send("close 4000 bye")
            await closed(ws)

    run(go())
    entry = site.gw.wait_log(lambda e: e.get("path") == "/logged/session")
    assert entry is not None
    assert entry["status"] == 101 and entry["websocket"] is True and entry["match"] == "/:p*"
    assert (entry["frames_in"], entry["frames_out"]) == (4, 3)
    assert entry["close_code"] == 4000 and entry["closed_by"] == "origin"
    assert entry["ws_seconds"] >= 0
    assert len([e for e in site.gw.log_entries() if e.get("path") == "/logged/session"]) == 1


# ------------------------------------------------------------------ shutdown


def test_sigterm_closes_sessions_with_1001_and_exits_0(tmp_path: Path) -> None:
    origin = WSOrigin()
    try:
        path = write_config(tmp_path, CONFIG.format(ws=origin.port, down=free_port()).replace("[server]\n", '[server]\ndrain_timeout = "10s"\n'))
        with gateway_serve(path) as gw:

            async def go() -> list[ConnectionClosed]:
                sessions = [await connect(f"ws://127.0.0.1:{gw.port}/room/{i}") for i in range(8)]
                for ws in sessions:
                    await ws.send("x")
                    await ws.recv()
                gw.proc.send_signal(15)
                return [await closed(ws) for ws in sessions]

            for e in run(go()):
                assert e.rcvd is not None and e.rcvd.code == 1001
            gw.proc.popen.wait(20)
            assert gw.proc.returncode == 0
        assert wait_for(lambda: all(h.close_code == 1001 for h in origin.handshakes[-8:]), 5)
    finally:
        origin.close()

