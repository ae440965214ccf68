"""The regional origin of the hybrid example: resizes an uploaded image with Pillow.

    python examples/hybrid/resizer.py --listen 127.0.0.1:9101

``POST /api/resize?width=W[&height=H]`` with the image as the body (PNG, JPEG, GIF, WebP, ... what
Pillow reads) answers the image scaled to fit W x H (aspect ratio kept; H defaults to W), as PNG, or as
JPEG when a JPEG was sent. ``GET /`` answers a small JSON status. Errors are JSON with a 4xx status:
a body that is not an image, a size outside 1..4096, an image over 40 megapixels (a decompression
bomb: Pillow refuses it before decoding). The gateway in front enforces the route's ``max_body`` and
its 30 s ``timeout``; this server trusts neither and reads at most ``--max-body`` bytes itself.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image, UnidentifiedImageError

MAX_SIDE = 4096
# Pillow refuses images over twice this many pixels with DecompressionBombError, and warns over it:
# the warning is made an error below, so anything over 40 megapixels is refused before decoding.
Image.MAX_IMAGE_PIXELS = 40_000_000


class ResizeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "hybrid-resizer"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", "regional-resizer")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, detail: str) -> None:
        self._send(status, json.dumps({"error": code, "detail": detail}).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._send(200, json.dumps({"service": "resizer", "post": "/api/resize?width=W"}).encode(), "application/json")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        if not url.path.rstrip("/").endswith("/resize"):
            return self._error(404, "not_found", "POST /api/resize?width=W")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._error(411, "length_required", "send the image with a Content-Length")
        if length > self.server.max_body:  # type: ignore[attr-defined]
            self.close_connection = True
            return self._error(413, "payload_too_large", f"at most {self.server.max_body} bytes")  # type: ignore[attr-defined]
        data = self.rfile.read(length)
        query = parse_qs(url.query)
        try:
            width = int(query.get("width", ["256"])[0])
            height = int(query.get("height", [str(width)])[0])
        except ValueError:
            return self._error(400, "bad_size", "width and height are whole numbers")
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            return self._error(400, "bad_size", f"width and height are from 1 to {MAX_SIDE}")
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
                fmt = image.format
                image.thumbnail((width, height))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return self._error(400, "not_an_image", "the body is not an image Pillow can read")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            return self._error(413, "image_too_large", f"at most {Image.MAX_IMAGE_PIXELS} pixels")
        out = io.BytesIO()
        if fmt == "JPEG":
            image.convert("RGB").save(out, "JPEG", quality=85)
            return self._send(200, out.getvalue(), "image/jpeg")
        image.save(out, "PNG")
        return self._send(200, out.getvalue(), "image/png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The hybrid example's image-resizing origin")
    parser.add_argument("--listen", default="127.0.0.1:9101", help="HOST:PORT (default 127.0.0.1:9101)")
    parser.add_argument("--max-body", type=int, default=20 * 10**6, help="largest upload in bytes (default 20 MB)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), ResizeHandler)
    server.daemon_threads = True
    server.max_body = args.max_body  # type: ignore[attr-defined]
    print(f"resizer: listening on http://{args.listen}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
