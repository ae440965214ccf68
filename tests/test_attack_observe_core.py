"""Attacks on the observability change (ids in the core, correlation_forward, the hook rule on the
request id and trace context): the origin, the answer and the access log must carry the one id the
gateway chose. Real `gateway serve` processes, a recording origin, raw sockets; no mocks.

Each test here failed when written (branch atk14); see the commit message for what fails.
"""

from __future__ import annotations

import re
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.harness import GATEWAY_BIN, gateway_env, gateway_serve, send_head, write_config
from tests.recording_origin import RecordingOrigin, Seen

HEX32 = re.compile(r"[0-9a-f]{32}")
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01")


def same_header(seen: Seen, name: str) -> list[str]:
    """Every value the origin got under `name`, reading `_` as `-` (as the gateway itself does when it
    drops a client's copy, and as an origin behind CGI/WSGI/Rack reads the names)."""
    want = name.lower().replace("_", "-")
    return [v for k, v in seen.headers if k.lower().replace("_", "-") == want]


def refused_by_check(path: Path) -> bool:
    r = subprocess.run([GATEWAY_BIN, "check", "--config", str(path)], env=gateway_env(), capture_output=True, text=True, timeout=60)
    return r.returncode != 0 and ("request_id or trace" in r.stdout + r.stderr)


# ---------------------------------------------------------------- (1) the hook rule and `_`

HOOKS_UNDERSCORE = '''
import gateway

@gateway.hook("request")
def set_id(req):
    return gateway.Forward(set_headers={"X_Request_Id": "from-a-hook"})

@gateway.hook("request")
def set_id_dash(req):
    return gateway.Forward(set_headers={"X-Request-Id": "from-a-hook"})

@gateway.hook("request")
def remove_id(req):
    return gateway.Forward(remove_headers=["X_Request_Id"])
'''


@pytest.mark.parametrize("hook", ["set_id", "set_id_dash", "remove_id"])
def test_a_request_hook_cannot_set_or_remove_an_underscore_spelled_request_id(tmp_path: Path, hook: str) -> None:
    """`[server] request_id = "X_Request_Id"` is a valid header name. The hook rule compares the
    hook's name with `_` read as `-` ("x-request-id") against correlation_headers, which holds the
    configured spelling ("x_request_id"): so the rule never matches, the hook is accepted, and the
    origin gets the hook's value and the gateway's under the same name (the hook's first)."""
    (tmp_path / "hooks.py").write_text(HOOKS_UNDERSCORE)
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        path = write_config(
            tmp_path,
            f'[server]\nrequest_id = "X_Request_Id"\ntrace = true\n\n[hooks]\nmodule = "file:hooks.py"\non_error = "allow"\n\n'
            f'[origins.web]\nurl = "http://127.0.0.1:{web.port}"\n\n[[routes]]\nmatch = "/:path*"\norigin = "web"\nhooks = ["{hook}"]\n',
        )
        gw = stack.enter_context(gateway_serve(path))
        r = send_head(gw, b"GET /x HTTP/1.1")
        assert r.status == 200, (r.status, r.body)
        ids = r.header_list("x_request_id")
        assert len(ids) == 1 and HEX32.fullmatch(ids[0]), r.headers
        seen = web.all()[-1]
        entry = gw.wait_log(lambda e: e.get("request_id") == ids[0])
        assert entry is not None
        # One value, the gateway's, whatever the spelling.
        assert same_header(seen, "x-request-id") == [ids[0]], seen.headers
        log = gw.stderr.read_text()
        assert "a header the gateway manages" in log or "[server] request_id or trace sets" in log, log


# ---------------------------------------------------------------- (2) an experiment's header


@pytest.mark.parametrize("header", ["X-Request-Id", "traceparent"])
def test_an_experiment_header_cannot_be_a_correlation_header(tmp_path: Path, header: str) -> None:
    """`[experiments.NAME] header` is not checked against [server] request_id / trace (route
    `request_headers` and `forward_claims` are): the experiment stage puts the variant in set_headers,
    and the correlation pairs now ride in `extra` beside it, so the origin gets two request ids (or two
    traceparents), the variant first. `gateway explain --json` request_headers shows only one."""
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        path = write_config(
            tmp_path,
            f'[server]\nrequest_id = "X-Request-Id"\ntrace = true\n\n'
            f'[experiments.e]\ncookie = "e"\nvariants = {{ a = 1 }}\nheader = "{header}"\n\n'
            f'[origins.web]\nurl = "http://127.0.0.1:{web.port}"\n\n[[routes]]\nmatch = "/:path*"\norigin = "web"\nexperiment = "e"\n',
        )
        if refused_by_check(path):
            return  # refusing the config is a fix too
        gw = stack.enter_context(gateway_serve(path))
        r = send_head(gw, b"GET /x HTTP/1.1")
        assert r.status == 200, (r.status, r.body)
        rid = r.header("x-request-id")
        entry = gw.wait_log(lambda e: e.get("request_id") == rid)
        assert entry is not None
        seen = web.all()[-1]
        assert seen.header("x-request-id") == [rid], seen.headers
        sent = seen.header("traceparent")
        assert len(sent) == 1 and (m := TRACEPARENT.fullmatch(sent[0])) and m.group(1) == entry["trace_id"], seen.headers


# ---------------------------------------------------------------- (3) the answer's one id

HOOKS_ANSWER = '''
import gateway

@gateway.hook("response")
def response_sets_id(req, resp):
    return gateway.ResponseChanges(set_headers={"X-Request-Id": "from-a-response-hook"})

@gateway.hook("request")
def respond_with_id(req):
    return gateway.Respond(200, body="hi", headers={"X-Request-Id": "from-a-respond"})
'''


@pytest.mark.parametrize(
    "route",
    [
        'hooks = ["response_sets_id"]',
        'hooks = ["respond_with_id"]',
        'response_headers = { "X-Request-Id" = "from-a-template" }',
    ],
)
def test_the_answer_carries_one_request_id_the_logged_one(tmp_path: Path, route: str) -> None:
    """README: the id "comes back on every response — the origin's (its own copy of the header is
    replaced) and the gateway's own"; the change's promise: "the origin, the answer and the log always
    carry the one id the gateway chose". A response hook's ResponseChanges, a request hook's Respond
    or a route's response_headers template may still write X-Request-Id: the client gets two, the
    foreign one first, which is not the id in the access log."""
    (tmp_path / "hooks.py").write_text(HOOKS_ANSWER)
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        path = write_config(
            tmp_path,
            f'[server]\nrequest_id = "X-Request-Id"\ntrace = true\n\n[hooks]\nmodule = "file:hooks.py"\non_error = "allow"\n\n'
            f'[origins.web]\nurl = "http://127.0.0.1:{web.port}"\n\n[[routes]]\nmatch = "/:path*"\norigin = "web"\n{route}\n',
        )
        if refused_by_check(path):
            return  # refusing the config is a fix too
        gw = stack.enter_context(gateway_serve(path))
        r = send_head(gw, b"GET /x HTTP/1.1")
        assert r.status == 200, (r.status, r.body)
        ids = r.header_list("x-request-id")
        entries = [e for e in gw.log_entries() if e.get("path") == "/x"] or [gw.wait_log(lambda e: e.get("path") == "/x")]
        assert entries and entries[0] is not None
        assert ids == [entries[0]["request_id"]], (ids, entries[0]["request_id"])


# ---------------------------------------------------------------- (4) a template's `_` spelling


def test_a_route_template_cannot_send_the_request_id_under_an_underscore_spelling(tmp_path: Path) -> None:
    """The hook rule reads `_` as `-` (a hook's X_Request_Id is refused, because an origin behind
    CGI/WSGI/Rack reads it as X-Request-Id), and so does the drop of a client's copy; but the config
    check of route `request_headers` (check_correlation_names) compares only lower-case names, so
    `request_headers = { "X_Request_Id" = "tpl" }` is accepted and the origin gets a second request id."""
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        path = write_config(
            tmp_path,
            f'[server]\nrequest_id = "X-Request-Id"\ntrace = true\n\n'
            f'[origins.web]\nurl = "http://127.0.0.1:{web.port}"\n\n[[routes]]\nmatch = "/:path*"\norigin = "web"\n'
            'request_headers = { "X_Request_Id" = "from-a-template" }\n',
        )
        if refused_by_check(path):
            return  # refusing the config is a fix too
        gw = stack.enter_context(gateway_serve(path))
        r = send_head(gw, b"GET /x HTTP/1.1")
        assert r.status == 200, (r.status, r.body)
        rid = r.header("x-request-id")
        assert rid is not None and HEX32.fullmatch(rid)
        assert same_header(web.all()[-1], "x-request-id") == [rid], web.all()[-1].headers
