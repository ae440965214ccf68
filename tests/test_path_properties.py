"""Properties of path handling, checked on generated input through the same stages serve runs.

- normalization is idempotent and its output is canonical;
- no spelling of a protected path (escapes, dot segments, doubled slashes, case) reaches the
  protected origin without auth: it is either matched by the protected route or refused with 400.
"""

from __future__ import annotations

import asyncio
import os
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import _core
from gateway import pipeline
from gateway.config import load
from gateway.request import Request

SECRET = "p" * 40

CONFIG = """
[server]
trusted_proxies = ["127.0.0.1/32"]
[origins.web]
url = "http://127.0.0.1:9"
[auth.session]
secret = "env:GATEWAY_TEST_SECRET"
token_from = ["cookie:auth-token", "bearer"]
on_missing = { redirect = "/login" }
on_invalid = { redirect = "/login", clear_cookie = "auth-token" }
[[routes]]
match = "/dashboard/:path*"
auth = "session"
origin = "web"
[[routes]]
match = "/api/protected/:path*"
auth = "session"
origin = "web"
[[routes]]
match = "/:path*"
origin = "web"
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory):
    os.environ["GATEWAY_TEST_SECRET"] = SECRET
    path: Path = tmp_path_factory.mktemp("cfg") / "gateway.toml"
    path.write_text(CONFIG)
    return load(path)


segment_chars = string.ascii_letters + string.digits + "-._~!$&'()*+,=:@%/\\;?#\x00 é"
raw_paths = st.text(alphabet=segment_chars, max_size=40).map(lambda s: "/" + s)


@settings(max_examples=500, deadline=None)
@given(raw_paths)
def test_normalization_is_idempotent_and_canonical(raw: str) -> None:
    try:
        once = _core.normalize_path(raw.encode("utf-8"))
    except ValueError:
        return
    assert _core.normalize_path(once) == once
    assert once.startswith("/")
    assert "//" not in once
    assert all(seg not in (".", "..") for seg in once.split("/"))
    upper = once.upper()
    assert "%2F" not in upper and "%5C" not in upper and "%00" not in upper


def _spellings(draw: st.DrawFn, protected: str) -> str:
    """One of the many ways to write `protected` (e.g. /dashboard/x) in a request line."""
    out = []
    for seg in protected.strip("/").split("/"):
        chars = []
        for ch in seg:
            choice = draw(st.integers(0, 3))
            if choice == 0:
                chars.append(ch)
            elif choice == 1:
                chars.append(f"%{ord(ch):02x}")
            elif choice == 2:
                chars.append(f"%{ord(ch):02X}")
            else:
                chars.append(ch.upper())
        if draw(st.booleans()):
            out.append(draw(st.sampled_from([".", "", "x/..", "./.", "a/b/../.."])))
        out.append("".join(chars))
    lead = draw(st.sampled_from(["/", "//", "/./", "/x/../"]))
    tail = draw(st.sampled_from(["", "/", "/.", "/x/.."]))
    return lead + "/".join(out) + tail


@settings(max_examples=400, deadline=None)
@given(st.data(), st.sampled_from(["/dashboard", "/dashboard/settings", "/api/protected/users/1"]))
def test_no_spelling_of_a_protected_path_skips_auth(config, data: st.DataObject, protected: str) -> None:
    raw = data.draw(st.composite(lambda draw: _spellings(draw, protected))())
    request = Request("GET", raw.encode(), b"", [(b"host", b"example.com")], "203.0.113.9", "http")
    ctx = asyncio.run(pipeline.explain(config, request, None))
    if ctx.status == 400:
        return
    assert ctx.route is not None
    # Whatever the spelling, the protected prefix must land on the auth route...
    assert ctx.route.auth == "session", (raw, ctx.path, ctx.route.index)
    # ...and without a token nothing is forwarded.
    assert ctx.answer is not None and ctx.answer.kind == "redirect" and ctx.status == 302
    location = ctx.answer.header(b"location")
    assert location is not None and location.startswith("/login?next=")
