"""A demo and test origin that answers every request with what it received, as JSON.

    python -m gateway.echo --listen 127.0.0.1:9000

The body is ``{"method", "path", "query", "headers": [[name, value], ...], "body_length",
"body_sha256", "origin"}``; ``path`` is the raw request target path, exactly as the gateway sent
it. Request headers steer it, so tests can make a misbehaving origin on demand:

- ``X-Echo-Status: 503``: answer with that status;
- ``X-Echo-Sleep: 2.5``: wait that many seconds before answering;
- ``X-Echo-Bytes: N``: answer with N bytes of body instead of the JSON (streamed in 64 KiB chunks);
- ``X-Echo-Drip: SECONDS``: with X-Echo-Bytes, pause between chunks;
- ``X-Echo-Set-Cookie: a=b``: add that Set-Cookie to the answer;
- ``X-Echo-Mode: reset`` (close mid-body), ``malformed`` (an invalid status line),
  ``silent`` (read the request, never answer), ``close`` (close without answering).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK add 40 ms.
    disable_nagle_algorithm = True
    server_version = "gateway-echo"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        if self.server.verbose:  # type: ignore[attr-defined]
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            return self._read_exact(int(length))
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            digest, total = hashlib.sha256(), 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunk = self._read_exact(size)
                self.rfile.readline()
                digest.update(chunk)
                total += len(chunk)
            self._digest = (total, digest.hexdigest())
            return b""
        return b""

    def _read_exact(self, n: int) -> bytes:
        # Large uploads are hashed as they arrive rather than held in memory.
        digest, total, parts = hashlib.sha256(), 0, []
        while total < n:
            chunk = self.rfile.read(min(1 << 16, n - total))
            if not chunk:
                break
            digest.update(chunk)
            total += len(chunk)
            if total <= 1 << 20:
                parts.append(chunk)
        self._digest = (total, digest.hexdigest())
        return b"".join(parts) if total <= 1 << 20 else b""

    def _handle(self) -> None:
        self._digest = (0, hashlib.sha256(b"").hexdigest())
        self._read_body()
        mode = self.headers.get("X-Echo-Mode", "")
        if mode == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "silent":
            time.sleep(3600)
            return
        if mode == "malformed":
            self.wfile.write(b"HTTP/1.1 abc nonsense\r\nbroken header line\r\n\r\n")
            self.close_connection = True
            return
        delay = float(self.headers.get("X-Echo-Sleep", "0") or 0)
        if delay:
            time.sleep(min(delay, 3600))
        status = int(self.headers.get("X-Echo-Status", "200"))
        extra_cookie = self.headers.get("X-Echo-Set-Cookie")
        nbytes = self.headers.get("X-Echo-Bytes")
        if nbytes is not None:
            total = int(nbytes)
            drip = float(self.headers.get("X-Echo-Drip", "0") or 0)
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(total))
            if extra_cookie:
                self.send_header("Set-Cookie", extra_cookie)
            self.end_headers()
            sent, block = 0, b"x" * (1 << 16)
            while sent < total:
                piece = block[: min(len(block), total - sent)]
                if mode == "reset" and sent >= total // 2:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    self.close_connection = True
                    return
                self.wfile.write(piece)
                sent += len(piece)
                if drip:
                    self.wfile.flush()
                    time.sleep(drip)
            return
        target = urlsplit(self.path)
        total, sha = self._digest
        body = json.dumps(
            {
                "method": self.command,
                "path": target.path,
                "query": target.query,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body_length": total,
                "body_sha256": sha,
                "origin": self.server.name,  # type: ignore[attr-defined]
            }
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if extra_cookie:
            self.send_header("Set-Cookie", extra_cookie)
        self.end_headers()
        if mode == "reset":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            self.close_connection = True
            return
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def serve(host: str, port: int, name: str = "echo", verbose: bool = False) -> None:
    server = EchoServer((host, port), EchoHandler)
    server.name = name  # type: ignore[attr-defined]
    server.verbose = verbose  # type: ignore[attr-defined]
    print(f"echo origin {name!r} listening on http://{host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.echo", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:9000", help="HOST:PORT (default 127.0.0.1:9000)")
    parser.add_argument("--name", default="echo", help="reported as \"origin\" in every answer")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    serve(host or "127.0.0.1", int(port), args.name, args.verbose)


if __name__ == "__main__":
    main()
