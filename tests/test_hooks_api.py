"""The public hook values (gateway.hook, Respond, Forward, ResponseChanges, HookRequest, Headers):
their shape checks raise in the hook itself, with a message that says what was expected, and the
snapshot cannot be changed by a hook. (What the gateway does with the values is tests/test_hooks.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import gateway
import pytest


def test_hook_marks_and_returns_the_function() -> None:
    def tenant(req: gateway.HookRequest) -> None:
        return None

    marked = gateway.hook("request")(tenant)
    assert marked is tenant
    info = tenant.__gateway_hook__  # type: ignore[attr-defined]
    assert (info.stage, info.name) == ("request", "tenant")
    gateway.hook("early", name="renamed")(tenant)
    assert tenant.__gateway_hook__.name == "renamed"  # type: ignore[attr-defined]
    # An unknown stage is recorded, not raised: `gateway check` names the route that uses it.
    assert gateway.hook("erly")(tenant).__gateway_hook__.stage == "erly"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="stage must be a string"):
        gateway.hook(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must decorate a function"):
        gateway.hook("request")(42)  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: gateway.Respond(99), ValueError, "an int from 200 to 599"),
        (lambda: gateway.Respond(600), ValueError, "an int from 200 to 599"),
        (lambda: gateway.Respond(True), ValueError, "an int from 200 to 599"),
        (lambda: gateway.Respond("200"), ValueError, "an int from 200 to 599"),
        (lambda: gateway.Respond(200, json={}, body="x"), ValueError, "json or body, not both"),
        (lambda: gateway.Respond(200, body=3), TypeError, "str or bytes"),
        (lambda: gateway.Respond(200, headers={"X-A": "1\r\nSet-Cookie: a=b"}), ValueError, "control character"),
        (lambda: gateway.Respond(200, headers={"Bad Name": "1"}), ValueError, "is not a header name"),
        (lambda: gateway.Respond(200, headers={"X-A": 1}), TypeError, "must be a str"),
        (lambda: gateway.Respond(200, headers=[("X-A", "1")]), TypeError, "must be a mapping"),
        (lambda: gateway.Forward(set_headers={"X-A": "a\nb"}), ValueError, "control character"),
        (lambda: gateway.Forward(set_headers={"X-A": "a\x00b"}), ValueError, "control character"),
        (lambda: gateway.Forward(remove_headers=["ok", "not ok"]), ValueError, "is not a header name"),
        (lambda: gateway.Forward(remove_headers=5), TypeError, "list of header names"),
        (lambda: gateway.Forward(path="relative"), ValueError, "an absolute path"),
        (lambda: gateway.Forward(path="/a?b=1"), ValueError, "without '\\?'"),
        (lambda: gateway.Forward(path="/a#f"), ValueError, "an absolute path"),
        (lambda: gateway.Forward(path="/a\r\nb"), ValueError, "an absolute path"),
        (lambda: gateway.Forward(path=b"/a"), TypeError, "expected a str"),
        (lambda: gateway.Forward(origin=1), TypeError, "the name of an"),
        (lambda: gateway.Forward(set_cookies=["no-equals-sign"]), ValueError, "not a Set-Cookie value"),
        (lambda: gateway.Forward(set_cookies=["a=b\r\nX: y"]), ValueError, "not a Set-Cookie value"),
        (lambda: gateway.Forward(set_cookies=["a=caf\u00e9"]), ValueError, "printable ASCII"),
        (lambda: gateway.Forward(set_cookies=[b"a=b"]), TypeError, "each must be a str"),
        (lambda: gateway.ResponseChanges(set_headers={"X-A": "\x7f"}), ValueError, "control character"),
        (lambda: gateway.ResponseChanges(remove_headers=[None]), ValueError, "is not a header name"),
    ],
)
def test_values_check_their_shape(make: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make()


def test_values_are_immutable_and_compare_by_value() -> None:
    f = gateway.Forward(set_headers={"X-A": "1"}, remove_headers="Cookie", set_cookies="a=b; Path=/")
    assert f.set_headers == (("X-A", "1"),) and f.remove_headers == ("Cookie",) and f.set_cookies == ("a=b; Path=/",)
    assert f == gateway.Forward(set_headers={"X-A": "1"}, remove_headers=["Cookie"], set_cookies=["a=b; Path=/"])
    assert f != gateway.Forward(set_headers={"X-A": "2"})
    with pytest.raises(AttributeError, match="immutable"):
        f.path = "/x"  # type: ignore[misc]
    r = gateway.Respond(204)
    assert (r.status, r.json, r.body, r.headers) == (204, None, None, ())
    assert repr(gateway.Respond(403, json={"e": 1})) == "Respond(status=403, json={'e': 1})"
    assert gateway.Forward(set_cookies=[gateway.set_cookie("a", "b", max_age=60)]).set_cookies[0].startswith("a=b;")
    assert hash(f) == hash(gateway.Forward(set_headers={"X-A": "1"}, remove_headers=["Cookie"], set_cookies=["a=b; Path=/"]))


def test_headers_mapping() -> None:
    h = gateway.Headers([("Accept", "a"), ("X-Multi", "1"), ("x-multi", "2"), ("Set-Cookie", "a=b, c"), ("set-cookie", "d=e")])
    assert h["accept"] == h["ACCEPT"] == "a"
    assert "X-MULTI" in h and "nope" not in h and 3 not in h
    assert h["x-multi"] == "1, 2" and h.get_all("X-Multi") == ("1", "2")
    assert h.get_all("set-cookie") == ("a=b, c", "d=e"), "Set-Cookie values are kept apart"
    assert list(h) == ["accept", "x-multi", "set-cookie"] and len(h) == 3
    assert h.get("missing") is None and h.get_all("missing") == ()
    assert dict(h) == {"accept": "a", "x-multi": "1, 2", "set-cookie": "a=b, c, d=e"}
    with pytest.raises(TypeError):
        h["x"] = "y"  # type: ignore[index]


def test_hook_request_is_read_only() -> None:
    claims = {"sub": "alice", "roles": ["a"]}
    req = gateway.HookRequest(method="GET", path="/t/acme", claims=claims, params={"tenant": "acme"}, headers={"X-A": "1"}, client="192.0.2.1")
    assert req.claims["sub"] == "alice" and req.params["tenant"] == "acme" and req.headers["x-a"] == "1" and req.client == "192.0.2.1"
    for name in ("method", "path", "query", "headers", "client", "route", "params", "claims", "country", "lang", "variants", "dry_run"):
        with pytest.raises(AttributeError):
            setattr(req, name, "changed")
    with pytest.raises(TypeError):
        req.claims["sub"] = "mallory"  # type: ignore[index]
    with pytest.raises(TypeError):
        req.params["tenant"] = "globex"  # type: ignore[index]
    assert claims["sub"] == "alice"
    assert req.variants == {} and req.country is None and req.dry_run is False


def test_hook_request_kv() -> None:
    async def lookup(namespace: str, key: str) -> Any:
        return {"flags": {"beta": True}}[namespace].get(key)

    req = gateway.HookRequest(method="GET", path="/", kv=lookup)
    assert asyncio.run(req.kv("flags", "beta")) is True  # type: ignore[arg-type]
    assert asyncio.run(req.kv("flags", "other")) is None  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no KV store"):
        gateway.HookRequest(method="GET", path="/").kv("flags", "beta")


def test_hook_response() -> None:
    resp = gateway.HookResponse(200, [("Content-Type", "text/html"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    assert resp.status == 200 and resp.headers["content-type"] == "text/html"
    assert resp.headers.get_all("set-cookie") == ("a=1", "b=2")
    with pytest.raises(AttributeError):
        resp.status = 500  # type: ignore[misc]
