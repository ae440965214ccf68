"""The WebSocket route keys, the new token sources and the listener keys, as the loader reads them:
defaults, accepted forms, and refusals naming the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest
from gateway.config import ConfigError, load

BASE = '[origins.a]\nurl = "http://127.0.0.1:9"\n'


def loaded(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    p = tmp_path / "gateway.toml"
    p.write_text(text)
    return load(p)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        loaded(tmp_path, text)
    return e.value.problems


def test_websocket_route_defaults_and_values(tmp_path: Path) -> None:
    cfg = loaded(tmp_path, BASE + '[[routes]]\nmatch = "/a"\norigin = "a"\n[[routes]]\nmatch = "/b"\norigin = "a"\nwebsocket = false\nws_idle_timeout = "90s"\nws_max_message = "64KiB"\n')
    a, b = cfg.routes
    assert (a.websocket, a.ws_idle_timeout, a.ws_max_message) == (True, 3600.0, 1_000_000)
    assert (b.websocket, b.ws_idle_timeout, b.ws_max_message) == (False, 90.0, 65536)


@pytest.mark.parametrize(
    "line, key",
    [
        ('websocket = "yes"', "routes[0].websocket"),
        ('ws_idle_timeout = "0s"', "routes[0].ws_idle_timeout"),
        ("ws_idle_timeout = 60", "routes[0].ws_idle_timeout"),
        ('ws_max_message = "0"', "routes[0].ws_max_message"),
        ('ws_max_message = "lots"', "routes[0].ws_max_message"),
    ],
)
def test_bad_websocket_route_keys_are_refused(tmp_path: Path, line: str, key: str) -> None:
    found = problems(tmp_path, BASE + f'[[routes]]\nmatch = "/a"\norigin = "a"\n{line}\n')
    assert any(f": {key}: " in p for p in found), found


def test_token_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S", "x" * 40)
    cfg = loaded(tmp_path, BASE + '[auth.p]\nsecret = "env:S"\ntoken_from = ["query:access_token", "subprotocol", "bearer"]\n[[routes]]\nmatch = "/a"\norigin = "a"\nauth = "p"\n')
    policy = cfg.auth["p"]
    assert policy.token_from == (("query", "access_token"), ("subprotocol", "sec-websocket-protocol"), ("bearer", "authorization"))
    assert policy.query_params == frozenset({"access_token"})
    assert policy.missing_reason == "no token in query:access_token, subprotocol, bearer"
    for bad in ("query:", "query:a b", "subprotocol:x"):
        found = problems(tmp_path, BASE + f'[auth.p]\nsecret = "env:S"\ntoken_from = ["{bad}"]\n[[routes]]\nmatch = "/a"\norigin = "a"\n')
        assert any("auth.p.token_from[0]" in p and '"query:NAME"' in p for p in found), found


def test_listener_defaults(tmp_path: Path) -> None:
    server = loaded(tmp_path, BASE + '[[routes]]\nmatch = "/a"\norigin = "a"\n').server
    assert (server.tls_cert, server.tls_key, server.http2, server.drain_timeout) == (None, None, True, 30.0)
    server = loaded(tmp_path, '[server]\nhttp2 = false\ndrain_timeout = "5s"\n' + BASE + '[[routes]]\nmatch = "/a"\norigin = "a"\n').server
    assert (server.http2, server.drain_timeout) == (False, 5.0)


def test_explain_decides_a_handshake_as_serve_does(tmp_path: Path) -> None:
    from gateway.cli import explain

    cfg = loaded(tmp_path, BASE + '[[routes]]\nmatch = "/no/:p*"\norigin = "a"\nwebsocket = false\n[[routes]]\nmatch = "/:p*"\norigin = "a"\nws_idle_timeout = "2m"\n')
    upgrade = [("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-version", "13"), ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")]
    r = explain(cfg, "GET", "http://h/no/x", upgrade, "127.0.0.1")
    assert r["status"] == 403 and r["error"]["kind"] == "websocket_not_allowed"
    assert explain(cfg, "GET", "http://h/no/x", [], "127.0.0.1")["action"] == "proxy"  # plain HTTP is fine there
    r = explain(cfg, "GET", "http://h/chat?x=1", upgrade, "127.0.0.1")
    assert r["action"] == "proxy"
    assert any("WebSocket to ws://127.0.0.1:9/chat?x=1" in s["why"] and "idle timeout 120s" in s["why"] for s in r["stages"])
