"""Proxying and its errors: 502, 504, 413 (Content-Length and chunked), headers, bodies, health, logs."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid

import pytest

from tests.e2e.conftest import (
    Gateway,
    RawResponse,
    _recv_response,
    assert_still_serving,
    echoed,
    raw_http,
)

PINNED = {"cookie": "ab-group=control"}


def test_health(main_gateway: Gateway) -> None:
    r = main_gateway.get("/__gateway/health")
    assert r.status_code == 200
    assert r.headers.get("content-type", "").startswith("application/json")
    assert r.json().get("status") == "ok"


# ---------------------------------------------------------------- 502 / 504


def test_origin_down_is_502(main_gateway: Gateway) -> None:
    marker = uuid.uuid4().hex[:8]
    t0 = time.monotonic()
    r = main_gateway.get(f"/down/{marker}")
    assert r.status_code == 502, r.text[:300]
    assert time.monotonic() - t0 < 5
    assert len(r.content) < 2048, "error bodies are short"
    entry = main_gateway.wait_log(lambda e: e.get("path") == f"/down/{marker}")
    assert entry is not None and entry["status"] == 502, f"no 502 access-log line: {entry}"
    assert_still_serving(main_gateway)


@pytest.mark.parametrize("mode", ["malformed", "close"])
def test_origin_answering_badly_is_502(main_gateway: Gateway, mode: str) -> None:
    r = main_gateway.get("/broken", headers={"X-Echo-Mode": mode, **PINNED})
    assert r.status_code == 502, r.text[:300]
    assert_still_serving(main_gateway)


@pytest.mark.parametrize("path", ["/slow/x", "/slow-route/x"])
def test_origin_slower_than_timeout_is_504(main_gateway: Gateway, path: str) -> None:
    marker = uuid.uuid4().hex[:8]
    t0 = time.monotonic()
    r = main_gateway.get(f"{path}-{marker}", headers={"X-Echo-Sleep": "3"})
    elapsed = time.monotonic() - t0
    assert r.status_code == 504, r.text[:300]
    assert 0.8 <= elapsed <= 2.5, f"timeout is 1s, the 504 came after {elapsed:.2f}s"
    assert len(r.content) < 2048
    entry = main_gateway.wait_log(lambda e: e.get("path") == f"{path}-{marker}")
    assert entry is not None and entry["status"] == 504, f"no 504 access-log line: {entry}"
    assert_still_serving(main_gateway)


def test_origin_within_timeout_is_fine(main_gateway: Gateway) -> None:
    r = main_gateway.get("/slow/ok", headers={"X-Echo-Sleep": "0.3"})
    assert r.status_code == 200
    assert echoed(r).path == "/slow/ok"


@pytest.mark.parametrize("status", [404, 503])
def test_origin_status_passes_through(main_gateway: Gateway, status: int) -> None:
    r = main_gateway.get("/anything", headers={"X-Echo-Status": str(status), **PINNED})
    assert r.status_code == status
    assert echoed(r).path == "/anything"


# ---------------------------------------------------------------- 413


def _post_raw(gw: Gateway, path: str, head_extra: str, body: bytes, timeout: float = 10.0) -> RawResponse:
    req = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{head_extra}\r\n".encode() + body
    with socket.create_connection(("127.0.0.1", gw.port), timeout=timeout) as s:
        try:
            s.sendall(req)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway may answer and close before reading everything
        return _recv_response(s, "POST")


def _chunked(body: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def test_body_over_max_body_with_content_length_is_413(main_gateway: Gateway) -> None:
    body = b"a" * 2000  # max_body = "1KB"
    r = _post_raw(main_gateway, "/upload/x", f"Content-Length: {len(body)}\r\n", body)
    assert r.status == 413, r.body[:300]
    assert len(r.body) < 2048
    assert_still_serving(main_gateway)


def test_body_over_max_body_chunked_is_413(main_gateway: Gateway) -> None:
    body = b"b" * 3000
    r = _post_raw(main_gateway, "/upload/x", "Transfer-Encoding: chunked\r\n", _chunked(body, 700))
    assert r.status == 413, r.body[:300]
    assert_still_serving(main_gateway)


def test_body_under_max_body_passes(main_gateway: Gateway) -> None:
    body = b"c" * 900
    r = _post_raw(main_gateway, "/upload/x", f"Content-Length: {len(body)}\r\n", body)
    assert r.status == 200, r.body[:300]
    e = echoed(r)
    assert e.data["body_length"] == 900 and e.data["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_body_under_max_body_passes(main_gateway: Gateway) -> None:
    body = bytes(range(256)) * 3
    r = _post_raw(main_gateway, "/upload/x", "Transfer-Encoding: chunked\r\n", _chunked(body, 100))
    assert r.status == 200, r.body[:300]
    e = echoed(r)
    assert e.data["body_length"] == len(body) and e.data["body_sha256"] == hashlib.sha256(body).hexdigest()


def _declare_big_body(gw: Gateway, path: str, length: int) -> RawResponse:
    """Declares a large Content-Length; if the gateway waits for the body, streams it (it must still refuse)."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=15) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {length}\r\n\r\n".encode())
        s.settimeout(3)
        try:
            return _recv_response(s, "POST")
        except TimeoutError:
            s.settimeout(15)
            block = b"z" * 65536
            sent = 0
            try:
                while sent < length:
                    n = min(len(block), length - sent)
                    s.sendall(block[:n])
                    sent += n
            except (BrokenPipeError, ConnectionResetError):
                pass
            return _recv_response(s, "POST")


def test_resize_declared_over_20mb_is_413(main_gateway: Gateway) -> None:
    """The example's /api/resize has max_body = "20MB": a declared 20 MB + 1 body is refused."""
    marker = uuid.uuid4().hex[:8]
    r = _declare_big_body(main_gateway, f"/api/resize?m={marker}", 20_000_001)
    assert r.status == 413, r.body[:300]
    assert len(r.body) < 2048
    entry = main_gateway.wait_log(lambda e: e.get("path") == "/api/resize" and e.get("status") == 413)
    assert entry is not None, "no 413 access-log line"
    assert_still_serving(main_gateway)


def test_default_max_body_applies_to_routes_without_one(main_gateway: Gateway) -> None:
    """SECURITY.md: the default request body limit is 10 MB."""
    r = _declare_big_body(main_gateway, "/no-limit-set", 10 * 2**20 + 1)
    assert r.status == 413, r.body[:300]
    assert_still_serving(main_gateway)


def test_resize_accepts_a_body_under_its_limit(main_gateway: Gateway) -> None:
    body = b"\x89PNG" + b"\x00\x01" * 600_000  # ~1.2 MB, above the default inline sizes
    r = main_gateway.request("POST", "/api/resize", content=body)
    assert r.status_code == 200, r.text[:300]
    e = echoed(r)
    assert e.origin == "regional"
    assert e.data["body_length"] == len(body)
    assert e.data["body_sha256"] == hashlib.sha256(body).hexdigest()


# ---------------------------------------------------------------- proxying


def test_large_response_body_streams_through(main_gateway: Gateway) -> None:
    r = main_gateway.get("/big", headers={"X-Echo-Bytes": str(3 * 1024 * 1024), **PINNED})
    assert r.status_code == 200
    assert len(r.content) == 3 * 1024 * 1024
    assert r.content == b"x" * len(r.content)


def test_hop_by_hop_and_forwarded_headers(main_gateway: Gateway) -> None:
    req = (
        b"GET /hops HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Secret-Hop\r\n"
        b"X-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n"
        b"Te: trailers\r\nX-End-To-End: kept\r\nCookie: ab-group=control\r\n\r\n"
    )
    r = raw_http(main_gateway.port, req)
    assert r.status == 200
    e = echoed(r)
    assert e.headers("X-Secret-Hop") == [], "headers named in Connection are hop-by-hop"
    assert e.headers("Keep-Alive") == [] and e.headers("Proxy-Authorization") == [] and e.headers("TE") == []
    assert e.headers("X-End-To-End") == ["kept"]
    xff = e.header("X-Forwarded-For")
    assert xff is not None and xff.replace(" ", "").split(",")[-1] == "127.0.0.1"
    assert e.header("X-Forwarded-Proto") == "http"
    assert e.header("X-Forwarded-Host") == "shop.example"


def test_keep_alive_many_requests_one_connection(main_gateway: Gateway) -> None:
    with main_gateway.client() as c:
        for i in range(30):
            r = c.get(f"/ka/{i}", headers=PINNED)
            assert r.status_code == 200
            assert echoed(r).path == f"/ka/{i}"


def test_access_log_line_per_proxied_request(main_gateway: Gateway) -> None:
    marker = uuid.uuid4().hex[:8]
    r = main_gateway.request("POST", f"/logged-{marker}", content=b"hi", headers=PINNED)
    assert r.status_code == 200
    entry = main_gateway.wait_log(lambda e: e.get("path") == f"/logged-{marker}")
    assert entry is not None, "no access-log line for the request"
    assert entry["method"] == "POST" and entry["status"] == 200 and entry["auth"] == "none"
    assert entry["route"] is not None
    assert isinstance(entry["upstream_ms"], (int, float)) and isinstance(entry["total_ms"], (int, float))
    assert entry["total_ms"] >= entry["upstream_ms"] >= 0


def test_x_forwarded_for_appended_for_trusted_peer(main_gateway: Gateway) -> None:
    r = main_gateway.get("/xff", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", **PINNED})
    e = echoed(r)
    assert e.header("X-Forwarded-For").replace(" ", "") == "203.0.113.7,127.0.0.1"  # type: ignore[union-attr]


def test_x_forwarded_for_not_trusted_from_untrusted_peer(untrusted_gateway: Gateway) -> None:
    r = untrusted_gateway.get("/xff", headers={"X-Forwarded-For": "203.0.113.7", **PINNED})
    e = echoed(r)
    chain = [p.strip() for p in (e.header("X-Forwarded-For") or "").split(",")]
    assert chain[-1] == "127.0.0.1", chain
    assert "203.0.113.7" not in chain, "a forged X-Forwarded-For from an untrusted peer must not be passed on as if true"


# ---------------------------------------------------------------- hostile framing (SECURITY.md promises)


def test_content_length_with_transfer_encoding_cannot_smuggle(main_gateway: Gateway) -> None:
    """SECURITY.md: Content-Length with Transfer-Encoding is framed by Transfer-Encoding alone and re-framed
    towards the origin (RFC 9112 6.3), or refused with 400. Either way the bytes after the chunked body are
    never delivered to the origin as part of the POST."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ab-group=control\r\nConnection: close\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    head = f"POST /framing HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\nCookie: ab-group=control\r\n\r\n"
    with socket.create_connection(("127.0.0.1", main_gateway.port), timeout=10) as s:
        s.sendall(head.encode() + body)
        first = _recv_response(s, "POST")
        if first.status == 400:
            assert_still_serving(main_gateway)
            return
        assert first.status == 200, f"answered {first.status}: {first.body[:200]!r}"
        e = echoed(first)
        assert e.path == "/framing" and e.method == "POST"
        assert e.data["body_length"] == 0, "the bytes after the terminating chunk reached the origin inside the POST"
        cl = e.headers("Content-Length")
        assert cl in ([], ["0"]), f"the origin got a Content-Length that disagrees with the framing: {cl}"
        try:
            second = _recv_response(s, "GET")
        except (ConnectionError, OSError):
            second = None
        if second is not None:  # a pipelined request of its own, answered on its own
            assert second.status == 200
            assert echoed(second).path == "/smuggled" and echoed(second).method == "GET"
    assert_still_serving(main_gateway)


def test_duplicate_host_is_400(main_gateway: Gateway) -> None:
    r = raw_http(main_gateway.port, b"GET /p HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n")
    assert r.status == 400


def test_oversized_request_headers_are_431(main_gateway: Gateway) -> None:
    """SECURITY.md: request headers over server.max_header_bytes (32 KiB by default) -> 431."""
    big = "v" * 8000
    head = "".join(f"X-Big-{i}: {big}\r\n" for i in range(6))  # ~48 KB
    r = raw_http(main_gateway.port, f"GET /p HTTP/1.1\r\nHost: x\r\n{head}Connection: close\r\n\r\n".encode())
    assert r.status == 431, f"answered {r.status}"
    assert_still_serving(main_gateway)


def test_untrusted_peer_geo_and_forwarded_headers_dropped(untrusted_gateway: Gateway) -> None:
    """SECURITY.md: cf-ipcountry and X-Forwarded-*/Forwarded are only believed from trusted_proxies;
    from anyone else they are dropped and replaced."""
    r = untrusted_gateway.get(
        "/geo",
        headers={"cf-ipcountry": "KR", "Forwarded": "for=203.0.113.9;proto=https", "X-Forwarded-Host": "evil.example", **PINNED},
    )
    e = echoed(r)
    assert e.headers("cf-ipcountry") == []
    assert e.headers("Forwarded") == []
    assert e.headers("X-Forwarded-Host") != ["evil.example"]
