"""`[server] request_id` and `trace`: what the origin receives (recorded byte for byte), what the
client gets back, and what the access log says — over real sockets, from a trusted peer (127.0.0.2)
and an untrusted one (127.0.0.1) of the same gateway (issue 12)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cli import mint_token
from tests.harness import GATEWAY_BIN, SECRET, Gateway, RawResponse, free_port, gateway_env, gateway_serve, send_head, write_config
from tests.recording_origin import RecordingOrigin, Seen

HEX32 = re.compile(r"[0-9a-f]{32}")
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01")
TRUSTED = "127.0.0.2"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class OriginWithItsOwnId(BaseHTTPRequestHandler):
    """An origin that answers with an X-Request-Id of its own making."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("X-Request-Id", "made-by-the-origin")
        self.send_header("X_Request_Id", "spelled-with-underscores")  # one name to a CGI-style client
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def config_text(web: int, own: int) -> str:
    return f"""
[server]
trusted_proxies = ["{TRUSTED}/32"]
request_id = "X-Request-Id"
trace = true
max_body = "1KiB"

[origins.web]
url = "http://127.0.0.1:{web}"

[origins.own]
url = "http://127.0.0.1:{own}"

[origins.down]
url = "http://127.0.0.1:{free_port()}"

[auth.api]
secret = "env:JWT_SECRET"
token_from = ["bearer"]

[[routes]]
match = "/api/:path*"
auth = "api"
origin = "web"

[[routes]]
match = "/own/:path*"
origin = "own"

[[routes]]
match = "/down/:path*"
origin = "down"

[[routes]]
match = "/pub/:path*"
origin = "web"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, RecordingOrigin]]:
    tmp = tmp_path_factory.mktemp("correlation")
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        own = ThreadingHTTPServer(("127.0.0.1", 0), OriginWithItsOwnId)
        own.daemon_threads = True
        threading.Thread(target=own.serve_forever, daemon=True).start()
        stack.callback(own.shutdown)
        path = write_config(tmp, config_text(web.port, own.server_address[1]))
        gw = stack.enter_context(gateway_serve(path, workers=2))
        yield gw, web


def exchange(gw: Gateway, web: RecordingOrigin, head: bytes, peer: str = "127.0.0.1") -> tuple[RawResponse, Seen, dict[str, Any]]:
    """The response, what the origin received, and the request's access-log line."""
    mark = web.mark()
    r = send_head(gw, head, peer)
    assert r.status == 200, (r.status, r.body)
    complete, _ = web.since(mark)
    assert len(complete) == 1
    rid = r.header("x-request-id")
    entry = gw.wait_log(lambda e: e.get("request_id") == rid)
    assert entry is not None, rid
    return r, complete[0], entry


# ---------------------------------------------------------------- request id


def test_an_id_is_generated_sent_to_the_origin_echoed_and_logged(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, web = site
    r, seen, entry = exchange(gw, web, b"GET /pub/a HTTP/1.1")
    rid = r.header("x-request-id")
    assert rid is not None and HEX32.fullmatch(rid)
    assert r.header_list("x-request-id") == [rid]
    assert seen.header("x-request-id") == [rid]
    assert entry["request_id"] == rid and entry["path"] == "/pub/a" and entry["status"] == 200


def test_an_untrusted_peers_id_is_replaced_in_every_spelling(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, web = site
    r, seen, entry = exchange(gw, web, b"GET /pub/b HTTP/1.1\r\nX-Request-Id: spoofed-by-client\r\nx_request_id: spoofed-too")
    rid = r.header("x-request-id")
    assert rid is not None and HEX32.fullmatch(rid)
    assert seen.header("x-request-id") == [rid]
    assert not any("spoofed" in v for _, v in seen.headers), seen.headers
    assert entry["request_id"] == rid


def test_a_trusted_proxys_sane_id_is_kept_end_to_end(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, web = site
    given = "lb-7f3a:0001/edge~A.b_c"
    r, seen, entry = exchange(gw, web, f"GET /pub/c HTTP/1.1\r\nX-Request-Id: {given}".encode(), peer=TRUSTED)
    assert r.header_list("x-request-id") == [given]
    assert seen.header("x-request-id") == [given]
    assert entry["request_id"] == given


@pytest.mark.parametrize(
    "hostile",
    [
        b"X-Request-Id: " + b"a" * 201,  # longer than MAX_REQUEST_ID
        b"X-Request-Id: two words",
        b"X-Request-Id: caf\xc3\xa9",  # not ASCII
        b"X-Request-Id: a\tb",  # a tab: not visible
        b"X-Request-Id: id-1\r\nX-Request-Id: id-2",  # which one?
        b"X-Request-Id: ",  # empty
    ],
)
def test_a_trusted_proxys_hostile_id_is_replaced(site: tuple[Gateway, RecordingOrigin], hostile: bytes) -> None:
    gw, web = site
    r, seen, entry = exchange(gw, web, b"GET /pub/d HTTP/1.1\r\n" + hostile, peer=TRUSTED)
    rid = r.header("x-request-id")
    assert rid is not None and HEX32.fullmatch(rid), rid
    assert seen.header("x-request-id") == [rid]
    assert entry["request_id"] == rid


def test_the_gateways_own_answers_carry_the_id_too(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, _ = site
    cases = {
        b"GET /nowhere HTTP/1.1": 404,
        b"GET /api/me HTTP/1.1": 401,
        b"GET /api/me HTTP/1.1\r\nAuthorization: Bearer x.y.z": 401,
        b"GET /down/x HTTP/1.1": 502,
        b"GET /pub/a%2fb HTTP/1.1": 400,
        b"POST /pub/big HTTP/1.1\r\nContent-Length: 5000": 413,
        b"GET /__gateway/health HTTP/1.1": 200,
        b"GET /pub/x HTTP/1.1\r\nX-Big: " + b"a" * 40000: 431,
    }
    for head, status in cases.items():
        r = send_head(gw, head)
        assert r.status == status, (head[:40], r.status, r.body)
        rid = r.header("x-request-id")
        assert rid is not None and HEX32.fullmatch(rid), (head[:40], r.headers)
        entry = gw.wait_log(lambda e: e.get("request_id") == rid)
        assert entry is not None and entry["status"] == status and entry["trace_id"], (head[:40], entry)


def test_an_origins_own_id_header_is_replaced_by_the_gateways(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, _ = site
    r = send_head(gw, b"GET /own/x HTTP/1.1")
    assert r.status == 200 and r.body == b"ok"
    ids = r.header_list("x-request-id")
    assert len(ids) == 1 and HEX32.fullmatch(ids[0]), ids
    assert r.header_list("x_request_id") == [], r.headers


def test_ids_are_unique_across_workers(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, _ = site
    ids = set()
    for _ in range(300):
        with httpx.Client(base_url=gw.base, timeout=15) as c:  # a new connection: either worker
            ids.add(c.get("/__gateway/health").headers["x-request-id"])
    assert len(ids) == 300


def test_a_valid_token_request_keeps_its_id_through_auth(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, web = site
    token = mint_token(SECRET, {"sub": "u1"}, 600)
    r, seen, entry = exchange(gw, web, f"GET /api/me HTTP/1.1\r\nAuthorization: Bearer {token}".encode())
    assert seen.header("x-request-id") == [r.header("x-request-id")] and entry["auth"] == "valid"
    # A token is never an id, a log value or a label.
    assert token not in str(entry)


# ---------------------------------------------------------------- trace context


def test_a_valid_traceparent_and_tracestate_are_forwarded_untouched(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, web = site
    tp = f"00-{TRACE}-{PARENT}-01"
    r, seen, entry = exchange(gw, web, f"GET /pub/t HTTP/1.1\r\ntraceparent: {tp}\r\ntracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".encode())
    assert seen.header("traceparent") == [tp]
    assert seen.header("tracestate") == ["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]
    assert entry["trace_id"] == TRACE
    assert r.header("traceparent") is None  # a request header, not echoed to the client


def test_an_unsampled_trace_and_a_later_version_pass_unchanged(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, web = site
    for tp in (f"00-{TRACE}-{PARENT}-00", f"cc-{TRACE}-{PARENT}-01-future"):
        _, seen, entry = exchange(gw, web, f"GET /pub/t HTTP/1.1\r\ntraceparent: {tp}".encode())
        assert seen.header("traceparent") == [tp] and entry["trace_id"] == TRACE


def test_several_tracestate_lines_are_joined(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, web = site
    tp = f"00-{TRACE}-{PARENT}-01"
    _, seen, _ = exchange(gw, web, f"GET /pub/t HTTP/1.1\r\ntraceparent: {tp}\r\ntracestate: a=1\r\ntracestate: b=2".encode())
    assert seen.header("tracestate") == ["a=1,b=2"]


@pytest.mark.parametrize(
    "bad",
    [
        f"traceparent: 00-{TRACE.upper()}-{PARENT}-01",
        f"traceparent: ff-{TRACE}-{PARENT}-01",
        f"traceparent: 00-{'0' * 32}-{PARENT}-01",
        f"traceparent: 00-{TRACE}-{'0' * 16}-01",
        f"traceparent: 00-{TRACE}-{PARENT}-01-extra",
        f"traceparent: 00-{TRACE}-{PARENT}",
        f"traceparent: 00-{TRACE}-{PARENT}-01\r\ntraceparent: 00-{TRACE}-{PARENT}-01",
        "traceparent: <script>",
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace_and_drops_tracestate(site: tuple[Gateway, RecordingOrigin], bad: str) -> None:
    gw, web = site
    _, seen, entry = exchange(gw, web, f"GET /pub/t HTTP/1.1\r\n{bad}\r\ntracestate: vendor=spoofed".encode())
    sent = seen.header("traceparent")
    assert len(sent) == 1 and (m := TRACEPARENT.fullmatch(sent[0])), sent
    assert m.group(1) != TRACE.lower() and entry["trace_id"] == m.group(1)
    assert seen.header("tracestate") == []


def test_without_a_traceparent_one_is_started(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, web = site
    _, seen, entry = exchange(gw, web, b"GET /pub/t HTTP/1.1\r\ntracestate: orphan=1")
    sent = seen.header("traceparent")
    assert len(sent) == 1 and (m := TRACEPARENT.fullmatch(sent[0])), sent
    assert entry["trace_id"] == m.group(1)
    assert seen.header("tracestate") == []


def test_explain_shows_the_correlation_stage(site: tuple[Gateway, RecordingOrigin]) -> None:
    import subprocess

    gw, _ = site
    r = subprocess.run(
        [GATEWAY_BIN, "explain", "--config", str(gw.config), "-H", "X-Request-Id: from-client", "-H", f"traceparent: 00-{TRACE}-{PARENT}-01", "/pub/x"],
        env=gateway_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert re.search(r"correlation: request id [0-9a-f]{32} \(generated: the peer 127\.0\.0\.1 is not in server\.trusted_proxies\)", r.stdout), r.stdout
    assert f"correlation: trace {TRACE}: continued from the client's traceparent" in r.stdout
    assert f"sends      : traceparent: 00-{TRACE}-{PARENT}-01" in r.stdout


def test_when_off_nothing_is_added(tmp_path: Path) -> None:
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        path = write_config(tmp_path, f'[origins.web]\nurl = "http://127.0.0.1:{web.port}"\n\n[[routes]]\nmatch = "/:path*"\norigin = "web"\n')
        gw = stack.enter_context(gateway_serve(path))
        r = send_head(gw, b"GET /x HTTP/1.1\r\nX-Request-Id: client-value")
        assert r.status == 200 and r.header("x-request-id") is None
        seen = web.all()[-1]
        # Not the gateway's header when request_id is off: the client's passes as any other.
        assert seen.header("x-request-id") == ["client-value"] and seen.header("traceparent") == []
        entry = gw.wait_log(lambda e: e.get("path") == "/x")
        assert entry is not None and entry["request_id"] is None and entry["trace_id"] is None


HOOKS = '''
import gateway

@gateway.hook("request")
def set_id(req):
    return gateway.Forward(set_headers={"X-Request-Id": "from-a-hook"})

@gateway.hook("request")
def set_trace(req):
    return gateway.Forward(set_headers={"traceparent": "00-11111111111111111111111111111111-2222222222222222-01"})

@gateway.hook("request")
def drop_trace(req):
    return gateway.Forward(remove_headers=["Traceparent"])
'''


@pytest.mark.parametrize("hook", ["set_id", "set_trace", "drop_trace"])
def test_a_request_hook_cannot_replace_or_drop_the_gateways_ids(tmp_path: Path, hook: str) -> None:
    """The origin, the answer and the log carry the one id the gateway chose: a hook that sets or
    removes the request-id header or the trace context is refused (on_error = "allow": logged, and
    the request goes on as if it returned nothing)."""
    (tmp_path / "hooks.py").write_text(HOOKS)
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        path = write_config(
            tmp_path,
            f'[server]\nrequest_id = "X-Request-Id"\ntrace = true\n\n[hooks]\nmodule = "file:hooks.py"\non_error = "allow"\n\n'
            f'[origins.web]\nurl = "http://127.0.0.1:{web.port}"\n\n[[routes]]\nmatch = "/:path*"\norigin = "web"\nhooks = ["{hook}"]\n',
        )
        gw = stack.enter_context(gateway_serve(path))
        r, seen, entry = exchange(gw, web, b"GET /x HTTP/1.1")
        rid = r.header("x-request-id")
        assert rid is not None and HEX32.fullmatch(rid)
        assert seen.header("x-request-id") == [rid] and entry["request_id"] == rid
        (sent,) = seen.header("traceparent")
        m = TRACEPARENT.fullmatch(sent)
        assert m is not None and m.group(1) == entry["trace_id"], sent
        log = gw.stderr.read_text()
        assert "a header the gateway manages" in log or "[server] request_id or trace sets" in log, log
