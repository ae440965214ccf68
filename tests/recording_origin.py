"""An origin that keeps a log of exactly what reached it, for tests that must prove what did NOT.

``RecordingOrigin`` listens on a loopback port in a thread of the test process and parses HTTP/1.1
itself (strictly: Content-Length or chunked bodies, keep-alive), so a test can tell apart
- ``complete``: requests that arrived whole (head and the entire body) and were answered, and
- ``aborted``: requests whose head arrived but whose connection ended before the body did (or whose
  chunked body was malformed) — what a gateway that gives up mid-forward leaves behind.
Every complete request is answered 200 with a JSON echo ``{"method", "target", "headers"}``, where
``headers`` is a list of [name, value] as received (latin-1 text, one char per wire byte), so a test
can read both the answer and the origin's own log.

``site(tmp, stack, **example_config_keywords)`` serves the README example config (tests/harness.py
``example_config``) with a RecordingOrigin as its "web" origin and an echo origin as "regional".
"""

from __future__ import annotations

import json
import socket
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import Gateway, echo_origin, example_config, example_files, gateway_serve, write_config


@dataclass
class Seen:
    method: str
    target: bytes
    headers: list[tuple[str, str]]
    body: bytes = b""
    complete: bool = False
    why: str = ""

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class RecordingOrigin:
    name: str = "web"
    complete: list[Seen] = field(default_factory=list)
    aborted: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    # ---- what reached it ---------------------------------------------------------------------

    def all(self) -> list[Seen]:
        with self._lock:
            return self.complete + self.aborted

    def targets(self) -> list[bytes]:
        return [s.target for s in self.all()]

    def mark(self) -> tuple[int, int]:
        with self._lock:
            return len(self.complete), len(self.aborted)

    def since(self, mark: tuple[int, int]) -> tuple[list[Seen], list[Seen]]:
        with self._lock:
            return self.complete[mark[0] :], self.aborted[mark[1] :]

    def close(self) -> None:
        self._stopped = True
        self._sock.close()

    # ---- the server ----------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        stream = _Stream(conn)
        with conn:
            while True:
                head = stream.until(b"\r\n\r\n")
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[0], lines[0].split(" ")[1].encode("latin-1")
                headers = [(k.strip(), v.strip(" ")) for k, _, v in (ln.partition(":") for ln in lines[1:])]
                seen = Seen(method, target, headers)
                if not _read_body(seen, stream):
                    with self._lock:
                        self.aborted.append(seen)
                    return
                seen.complete = True
                with self._lock:
                    self.complete.append(seen)
                body = json.dumps(
                    {"method": seen.method, "target": target.decode("latin-1"), "headers": [list(h) for h in headers], "origin": self.name}
                ).encode()
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                except OSError:
                    return


class _Stream:
    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.buf = conn, b""

    def _more(self) -> bool:
        try:
            data = self.conn.recv(65536)
        except OSError:
            return False
        self.buf += data
        return bool(data)

    def until(self, sep: bytes) -> bytes | None:
        """Bytes up to `sep` (consumed, not returned), or None when the connection ends first."""
        while sep not in self.buf:
            if not self._more():
                return None
        out, _, self.buf = self.buf.partition(sep)
        return out

    def take(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._more():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _read_body(seen: Seen, stream: _Stream) -> bool:
    """Reads the request body strictly; False (with `seen.why`) when it did not arrive whole."""
    if "chunked" in ",".join(seen.header("transfer-encoding")).lower():
        while True:
            size_line = stream.until(b"\r\n")
            if size_line is None:
                seen.why = "connection ended inside the chunked body"
                return False
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                seen.why = f"malformed chunk size {size_line!r}"
                return False
            if size == 0:
                while True:  # trailer fields, up to the empty line
                    line = stream.until(b"\r\n")
                    if line is None:
                        seen.why = "connection ended inside the trailer"
                        return False
                    if line == b"":
                        return True
            chunk = stream.take(size + 2)
            if chunk is None:
                seen.why = "connection ended inside a chunk"
                return False
            seen.body += chunk[:size]
    lengths = seen.header("content-length")
    n = int(lengths[0]) if lengths else 0
    body = stream.take(n)
    if body is None:
        seen.why = f"connection ended before {n} body bytes arrived"
        seen.body = stream.buf
        return False
    seen.body = body
    return True


def site(tmp: Path, stack: ExitStack, **config: str) -> tuple[Gateway, RecordingOrigin]:
    """`gateway serve` on the README example config whose "web" origin is a RecordingOrigin."""
    web = RecordingOrigin("web")
    stack.callback(web.close)
    regional = stack.enter_context(echo_origin(tmp, "regional"))
    path = write_config(tmp, example_config(web.port, regional, **config), example_files())
    gw = stack.enter_context(gateway_serve(path))
    gw.origins = {"web": web.port, "regional": regional}
    return gw, web
