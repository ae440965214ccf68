"""The token sources for clients that cannot set headers, on plain HTTP requests: ``query:NAME``
(removed from what the origin is sent) and ``subprotocol`` (a ``bearer.<token>`` entry of
Sec-WebSocket-Protocol, never forwarded), through a real `gateway serve` and a real echo origin, and
in `gateway explain` (the same stages, so the same URL and headers). WebSocket sessions with them:
tests/test_websocket.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from gateway.cli import explain, mint_token
from gateway.config import load

from tests.harness import SECRET, Gateway, echo_origin, gateway_serve, write_config

CONFIG = """
[origins.web]
url = "http://127.0.0.1:{port}"

[auth.browser]
secret = "env:JWT_SECRET"
token_from = ["query:access_token", "subprotocol"]
on_missing = {{ redirect = "/login" }}
forward_claims = {{ sub = "X-User-Id" }}

[[routes]]
match = "/feed/:p*"
origin = "web"
auth = "browser"

[[routes]]
match = "/:p*"
origin = "web"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Path]]:
    tmp = tmp_path_factory.mktemp("sources")
    with ExitStack() as stack:
        port = stack.enter_context(echo_origin(tmp, "web"))
        path = write_config(tmp, CONFIG.format(port=port))
        yield stack.enter_context(gateway_serve(path)), path


def header(echo: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echo["headers"] if k.lower() == name]


def test_query_token_is_removed_from_the_forwarded_query(site: tuple[Gateway, Path]) -> None:
    gw, _ = site
    tok = mint_token(SECRET, {"sub": "reader"}, 600)
    r = gw.get(f"/feed/events?since=5&access_token={tok}&format=json")
    assert r.status_code == 200
    echo = r.json()
    assert echo["query"] == "since=5&format=json"
    assert header(echo, "x-user-id") == ["reader"]
    assert tok not in r.text
    assert tok not in gw.all_output()


def test_query_token_percent_encoded_is_read(site: tuple[Gateway, Path]) -> None:
    gw, _ = site
    tok = mint_token(SECRET, {"sub": "enc"}, 600)
    encoded = tok.replace(".", "%2E")
    r = gw.get(f"/feed/x?access%5Ftoken={encoded}")
    assert r.status_code == 200 and r.json()["query"] == ""
    assert header(r.json(), "x-user-id") == ["enc"]


def test_missing_query_token_redirects_without_it(site: tuple[Gateway, Path]) -> None:
    gw, _ = site
    r = gw.get("/feed/x?access_token=&page=2")
    assert r.status_code == 302
    assert r.headers["location"] == "/login?next=%2Ffeed%2Fx%3Fpage%3D2"


def test_the_query_parameter_is_kept_on_routes_that_do_not_read_it(site: tuple[Gateway, Path]) -> None:
    gw, _ = site
    r = gw.get("/public?access_token=not-ours")
    assert r.json()["query"] == "access_token=not-ours"


def test_subprotocol_token_on_http_is_read_and_its_entry_not_forwarded(site: tuple[Gateway, Path]) -> None:
    gw, _ = site
    tok = mint_token(SECRET, {"sub": "sp"}, 600)
    r = gw.get("/feed/x", headers={"Sec-WebSocket-Protocol": f"chat.v1, bearer.{tok}"})
    assert r.status_code == 200
    echo = r.json()
    assert header(echo, "x-user-id") == ["sp"]
    assert header(echo, "sec-websocket-protocol") == ["chat.v1"]
    assert tok not in r.text


def test_explain_shows_what_serve_sends(site: tuple[Gateway, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, path = site
    tok = mint_token(SECRET, {"sub": "ex"}, 600)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    config = load(path)
    r = explain(config, "GET", f"http://h/feed/x?a=1&access_token={tok}", [("sec-websocket-protocol", f"bearer.{tok}, chat.v1")], "127.0.0.1")
    assert r["auth"]["outcome"] == "valid"
    assert r["upstream_url"].endswith("/feed/x?a=1")
    assert all(tok not in v for _, v in r["forwarded_headers"])
    assert ("sec-websocket-protocol", "chat.v1") in [(k, v) for k, v in r["forwarded_headers"]]
