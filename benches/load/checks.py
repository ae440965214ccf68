"""Correctness checks run against each system before it is timed (and again after): a system that does
not do the workload right is not timed."""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Resp:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]


def fetch(port: int, method: str, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> Resp:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return Resp(r.status, r.getheaders(), r.read())
    finally:
        c.close()


Check = tuple[str, str, str, dict[str, str], Callable[[Resp], str | None]]


def _expect(cond: bool, msg: str) -> str | None:
    return None if cond else msg


def _login(r: Resp, next_path: str) -> str | None:
    if r.status != 302:
        return f"status {r.status}, expected 302"
    loc = r.header("location") or ""
    parts = urlsplit(loc)
    if parts.path != "/login":
        return f"Location {loc!r}, expected /login?next=..."
    nxt = parse_qs(parts.query).get("next", [""])[0]
    if nxt != next_path:
        return f"Location {loc!r}: next={nxt!r}, expected {next_path!r}"
    return None


def _cleared(r: Resp) -> bool:
    for c in r.cookies():
        if re.match(r"\s*auth-token=\s*(\"\")?\s*(;|$)", c) and re.search(r"max-age=0|expires=[^;]*1970", c, re.IGNORECASE):
            return True
    return False


def _proxied(r: Resp, locale: str | None = None, user: str | None = None) -> str | None:
    if r.status != 200:
        return f"status {r.status}, expected 200 from the origin"
    if len(r.body) < 900:
        return f"body of {len(r.body)} bytes, expected the origin's ~1 KB"
    if locale is not None and (r.header("x-origin-locale") or "") != locale:
        return f"the origin did not see the /{locale} prefix (X-Origin-Locale={r.header('x-origin-locale')!r})"
    if locale is None and r.header("x-origin-locale"):
        return f"unexpected locale prefix {r.header('x-origin-locale')!r}"
    if user is not None and (r.header("x-origin-user") or "") != user:
        return f"the origin saw X-User-Id={r.header('x-origin-user')!r}, expected {user!r}"
    return None


def _ab(r: Resp, want_new: bool) -> str | None:
    ab = [c for c in r.cookies() if c.strip().lower().startswith("ab-group=")]
    if not want_new:
        return _expect(not ab, f"a visitor with a valid variant got a new one: {ab}")
    if len(ab) != 1:
        return f"expected one Set-Cookie ab-group=..., got {r.cookies()}"
    c = ab[0]
    if not re.match(r"ab-group=(control|variant)(;|$)", c.strip()):
        return f"bad variant cookie {c!r}"
    if not re.search(r"path=/(;|$)", c, re.IGNORECASE) or not re.search(r"max-age=86400", c, re.IGNORECASE):
        return f"variant cookie without Path=/ and Max-Age=86400: {c!r}"
    return None


def _s1(r: Resp) -> str | None:
    return _login(r, "/dashboard") or _expect(not _cleared(r), "cleared a cookie that was never sent")


def _s3(r: Resp) -> str | None:
    return _login(r, "/dashboard/x") or _expect(_cleared(r), f"no Set-Cookie clearing auth-token: {r.cookies()}")


def workload_checks(tok: dict[str, str]) -> list[Check]:
    """(name, method, path, headers, verdict): verdict returns None when right, else what is wrong."""
    bearer = {"Authorization": f"Bearer {tok['valid']}"}
    s1, s3 = _s1, _s3

    def s4(r: Resp) -> str | None:
        return (
            _proxied(r, locale="ko")
            or _expect((r.header("x-region") or "") == "KR", f"X-Region={r.header('x-region')!r}, expected 'KR'")
            or _ab(r, want_new=True)
        )

    def jp_known(r: Resp) -> str | None:
        return (
            _proxied(r, locale="ja")
            or _expect((r.header("x-region") or "") == "JP", f"X-Region={r.header('x-region')!r}")
            or _ab(r, want_new=False)
        )

    def lang(r: Resp) -> str | None:
        return _proxied(r, locale="ja") or _expect((r.header("x-region") or "") == "US", f"X-Region={r.header('x-region')!r}, expected 'US'")

    return [
        ("S1 no token -> 302 /login", "GET", "/dashboard", {}, s1),
        ("S2 bearer token -> proxied with X-User-Id", "GET", "/dashboard/x", bearer, lambda r: _proxied(r, user="bench-user")),
        ("S2 cookie token -> proxied", "GET", "/dashboard/x", {"Cookie": f"auth-token={tok['valid']}"}, lambda r: _proxied(r, user="bench-user")),
        ("S2 client's X-User-Id is replaced", "GET", "/dashboard/x", {**bearer, "X-User-Id": "spoofed"}, lambda r: _proxied(r, user="bench-user")),
        ("S3 forged cookie token -> 302 + clear", "GET", "/dashboard/x", {"Cookie": f"auth-token={tok['forged']}"}, s3),
        ("S3 expired cookie token -> 302 + clear", "GET", "/dashboard/x", {"Cookie": f"auth-token={tok['expired']}"}, s3),
        ("S3 forged bearer token -> 302", "GET", "/dashboard/x", {"Authorization": f"Bearer {tok['forged']}"}, lambda r: _login(r, "/dashboard/x")),
        ("S4 KR -> /ko, X-Region, new ab-group", "GET", "/products", {"cf-ipcountry": "KR"}, s4),
        ("JP + known variant -> /ja, no new cookie", "GET", "/products", {"cf-ipcountry": "JP", "Cookie": "ab-group=control"}, jp_known),
        ("Accept-Language ja -> /ja", "GET", "/about", {"Accept-Language": "ja,en;q=0.5"}, lang),
        ("api without token -> 401", "GET", "/api/protected/x", {}, lambda r: _expect(r.status == 401, f"status {r.status}, expected 401")),
    ]


def idp_checks(tok: dict[str, str]) -> list[Check]:
    """S5 (issue 10), for a system that runs it: an RS256 token verified against the key set's public key
    reaches the origin with its sub; a token signed by another key, an expired one, an HS256 token keyed
    with the public key's PEM (algorithm confusion) and no token at all get 401."""
    bearer = {"Authorization": f"Bearer {tok['rs_valid']}"}

    def unauthorized(r: Resp) -> str | None:
        return _expect(r.status == 401, f"status {r.status}, expected 401")

    return [
        ("S5 RS256 bearer token -> proxied with X-User-Id", "GET", "/api/idp/x", bearer, lambda r: _proxied(r, user="idp-user")),
        ("S5 client's X-User-Id is replaced", "GET", "/api/idp/x", {**bearer, "X-User-Id": "spoofed"}, lambda r: _proxied(r, user="idp-user")),
        ("S5 RS256 token signed by another key -> 401", "GET", "/api/idp/x", {"Authorization": f"Bearer {tok['rs_forged']}"}, unauthorized),
        ("S5 expired RS256 token -> 401", "GET", "/api/idp/x", {"Authorization": f"Bearer {tok['rs_expired']}"}, unauthorized),
        ("S5 HS256 keyed with the public PEM -> 401", "GET", "/api/idp/x", {"Authorization": f"Bearer {tok['rs_confused']}"}, unauthorized),
        ("S5 no token -> 401", "GET", "/api/idp/x", {}, unauthorized),
    ]


def proxy_checks(tok: dict[str, str]) -> list[Check]:
    """A plain proxy (no auth, no rules): S2's and S4's requests reach the origin and its answer comes back."""
    return [
        ("plain proxy: /products -> origin", "GET", "/products", {}, lambda r: _proxied(r)),
        ("plain proxy: /ko/products -> origin /ko", "GET", "/ko/products", {}, lambda r: _proxied(r, locale="ko")),
        ("plain proxy: S2 request -> origin", "GET", "/dashboard/x", {"Authorization": f"Bearer {tok['valid']}"}, lambda r: _proxied(r)),
        ("plain proxy: S4 request -> origin", "GET", "/products", {"cf-ipcountry": "KR"}, lambda r: _proxied(r)),
    ]


def redirect_checks(tok: dict[str, str]) -> list[Check]:
    """granian-floor (no auth, a fixed answer per path): S1's and S3's requests get the gateway's answers."""
    return [
        ("fixed 302: S1 request -> 302 /login", "GET", "/dashboard", {}, _s1),
        ("fixed 302: S3 request -> 302 + clear", "GET", "/dashboard/x", {"Cookie": f"auth-token={tok['forged']}"}, _s3),
    ]


def origin_checks(tok: dict[str, str]) -> list[Check]:
    return proxy_checks(tok)


def run_checks(port: int, checks: list[Check]) -> list[dict[str, Any]]:
    out = []
    for name, method, path, headers, verdict in checks:
        try:
            problem = verdict(fetch(port, method, path, headers))
        except Exception as e:  # noqa: BLE001 - a check that cannot even connect is a failed check
            problem = f"{type(e).__name__}: {e}"
        out.append({"check": name, "ok": problem is None, **({"problem": problem} if problem else {})})
    return out


def hook_checks(tok: dict[str, str]) -> list[Check]:
    """Issue 13: the hooked copy of the S2 route answers like S2 (the hook is a no-op)."""
    return [
        (
            "S2h valid token, no-op request hook -> proxied, claim forwarded",
            "GET",
            "/dashboard/h/x",
            {"Authorization": f"Bearer {tok['valid']}"},
            lambda r: _expect(r.status == 200 and (r.header("x-origin-user") or "") != "", f"status {r.status}, X-Origin-User {r.header('x-origin-user')!r}"),
        ),
    ]
