"""`_core.Request`: the request head built once from ASGI-shaped input (bytes as a server hands
them over), and the upstream client taking those bytes on unchanged."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from gateway import _core
from gateway.proxy.upstream import UpstreamClient


def req(headers: list[tuple[bytes, bytes]], path: bytes = b"/a", query: bytes = b"") -> _core.Request:
    return _core.Request("GET", path, query, headers, "10.0.0.1", "http")


def test_plain_fields() -> None:
    r = _core.Request("POST", b"/x%2Fy", b"a=1&b", [(b"host", b"h")], None, "https")
    assert (r.method, r.raw_path, r.query, r.client, r.scheme) == ("POST", b"/x%2Fy", "a=1&b", None, "https")
    assert r.head_size == len(b"/x%2Fy") + len("a=1&b") + len(b"host") + len(b"h") + 4
    assert "Request(POST" in repr(r)


def test_repr_never_shows_headers() -> None:
    r = req([(b"cookie", b"auth-token=secret-value"), (b"authorization", b"Bearer secret-value")])
    assert "secret" not in repr(r)


def test_query_bytes_outside_visible_ascii_are_percent_encoded() -> None:
    r = req([], query=b"q=caf\xc3\xa9 x\x7f%41")
    assert r.query == "q=caf%C3%A9%20x%7F%41"
    # The size limit sees the query as it will be forwarded.
    assert r.head_size == len(b"/a") + len(r.query)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b"admin.example.com", "admin.example.com"),
        (b"admin.example.com:8080", "admin.example.com"),
        (b"admin.example.com.", "admin.example.com"),
        (b"ADMIN.example.com:80", "admin.example.com"),
        (b"Admin.Example.COM.:443", "admin.example.com"),
        (b"[::1]:8080", "::1"),
        (b"[::1]", "::1"),
        (b"[FE80::1]:1", "fe80::1"),
        (b"127.0.0.1:9000", "127.0.0.1"),
        (b"", None),
        (b":80", None),
    ],
)
def test_host_forms(raw: bytes, name: str | None) -> None:
    r = req([(b"host", raw)])
    assert r.host == raw.decode("latin-1")
    assert r.host_name == name
    assert r.host_count == 1


def test_host_absent_and_repeated() -> None:
    r = req([])
    assert (r.host, r.host_name, r.host_count) == (None, None, 0)
    r = req([(b"host", b"a.example"), (b"x", b"y"), (b"Host", b"b.example")])
    assert r.host_count == 2
    assert r.host == "a.example"


def test_non_ascii_header_bytes_round_trip_byte_for_byte() -> None:
    raw = bytes(range(0x80, 0x100)) + b"\x01\t\x7f"
    headers = [(b"host", b"h"), (b"x-raw", raw), (b"x-utf8", "café ☕".encode())]
    r = req(headers)
    assert r.header("x-raw") == raw.decode("latin-1")
    assert r.header("X-RAW") == raw.decode("latin-1"), "names compare without case"
    assert r.header("x-utf8") == "café ☕".encode().decode("latin-1")
    fwd = r.forward_headers(frozenset())
    assert fwd == headers
    assert all(type(k) is bytes and type(v) is bytes for k, v in fwd)


def test_forward_drops_named_and_connection_listed_headers() -> None:
    headers = [
        (b"host", b"h"),
        (b"connection", b"keep-alive, X-Internal-Auth"),
        (b"Connection", b"te"),
        (b"x-internal-auth", b"admin"),
        (b"keep-alive", b"timeout=5"),
        (b"te", b"trailers"),
        (b"X-Internal-Auth", b"again"),
        (b"accept", b"*/*"),
        (b"x-keep", b"\xff"),
    ]
    r = req(headers)
    fwd = r.forward_headers(frozenset({"connection", "host"}))
    assert fwd == [(b"accept", b"*/*"), (b"x-keep", b"\xff")]


def test_forward_accepts_str_pairs_too() -> None:
    r = _core.Request("GET", "/a", "", [("host", "h"), ("x-a", "caf\xe9")], None, "http")
    assert r.forward_headers(frozenset({"host"})) == [(b"x-a", b"caf\xe9")]
    with pytest.raises(ValueError, match="latin-1"):
        _core.Request("GET", "/a", "", [("x-a", "☕")], None, "http")
    with pytest.raises(TypeError):
        _core.Request("GET", "/a", "", [(b"x-a", 1)], None, "http")  # type: ignore[list-item]


def test_header_values_in_order() -> None:
    r = req([(b"x-a", b"1"), (b"x-b", b"2"), (b"x-a", b"3")])
    assert r.header_values("x-a") == ["1", "3"]
    assert r.header_values("x-c") == []
    assert r.header("x-c") is None


def test_several_cookie_headers_are_one_jar() -> None:
    r = req(
        [
            (b"cookie", b"auth-token=planted; theme=dark"),
            (b"x", b"y"),
            (b"cookie", b'auth-token=real; quoted="v"'),
            (b"Cookie", b"empty=; noequals; auth-token=third"),
        ]
    )
    assert r.cookie("auth-token") == "planted"
    assert r.cookies("auth-token") == ["planted", "real", "third"]
    assert r.cookie("theme") == "dark"
    assert r.cookie("quoted") == "v"
    assert r.cookie("empty") == ""
    assert r.cookie("noequals") is None
    assert r.cookie("missing") is None
    assert r.cookies("missing") == []


def test_same_name_cookies_are_bounded() -> None:
    # RFC 6265 §6.1: a browser keeps at least 50 cookies per domain; the core hands over that many.
    jar = "; ".join(f"t={i}" for i in range(80)).encode()
    r = req([(b"cookie", jar)])
    assert r.cookies("t") == [str(i) for i in range(50)]


def test_cookie_values_are_latin1_text() -> None:
    r = req([(b"cookie", b"n=caf\xc3\xa9")])
    assert r.cookie("n") == "caf\xc3\xa9"


@pytest.mark.parametrize(
    ("values", "length", "valid"),
    [
        ([], None, True),
        ([b"0"], 0, True),
        ([b"42"], 42, True),
        ([b"42", b"42"], 42, True),
        ([b"42", b"43"], None, False),
        ([b"-1"], None, False),
        ([b"+5"], None, False),
        ([b"5, 5"], None, False),
        ([b"0x10"], None, False),
        ([b""], None, False),
        ([b"1e3"], None, False),
        ([b"99999999999999999999999"], None, False),
    ],
)
def test_content_length_forms(values: list[bytes], length: int | None, valid: bool) -> None:
    r = req([(b"content-length", v) for v in values])
    assert r.content_length == length
    assert r.content_length_valid is valid


def test_transfer_encoding_means_chunked() -> None:
    assert req([(b"transfer-encoding", b"chunked")]).chunked
    assert req([(b"Transfer-Encoding", b"gzip, chunked")]).chunked
    assert not req([(b"content-length", b"1")]).chunked


def test_request_is_frozen() -> None:
    r = req([])
    with pytest.raises(AttributeError):
        r.method = "POST"  # type: ignore[misc]


class _OneShotOrigin:
    """A TCP server that records the first request's head and answers 200."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.head = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            while b"\r\n\r\n" not in self.head:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                self.head += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-back: \xe9\r\nconnection: close\r\n\r\nok")
        self.sock.close()


def test_upstream_takes_request_bytes_unchanged() -> None:
    origin = _OneShotOrigin()
    r = req([(b"host", b"h"), (b"x-raw", b"\xff\xe9 a")])

    async def go() -> _core.UpstreamResponse:
        client = UpstreamClient()
        headers = [*r.forward_headers(frozenset({"host"})), ("x-str", "caf\xe9"), (b"x-bytes", "str value")]
        return await client.request("GET", f"http://127.0.0.1:{origin.port}/p", headers, timeout=5)

    resp = asyncio.run(go())
    origin.thread.join(5)
    assert resp.status == 200
    assert resp.body == b"ok"
    assert ("x-back", "\xe9") in resp.headers
    assert b"\r\nx-raw: \xff\xe9 a\r\n" in origin.head
    assert b"\r\nx-str: caf\xe9\r\n" in origin.head
    assert b"\r\nx-bytes: str value\r\n" in origin.head


def test_header_pairs_may_be_lists_as_asgi_allows() -> None:
    r = _core.Request("GET", b"/", b"", [[b"host", b"h"], [b"x-a", b"\xe9"]], None, "http")
    assert r.host_name == "h"
    fwd = r.forward_headers(frozenset({"host"}))
    assert fwd == [(b"x-a", b"\xe9")]
    assert type(fwd[0]) is tuple
    for bad in ([(b"x",)], [(b"x", b"y", b"z")], [[b"x"]], [b"xy"], [1]):
        with pytest.raises(TypeError):
            _core.Request("GET", b"/", b"", bad, None, "http")  # type: ignore[arg-type]
