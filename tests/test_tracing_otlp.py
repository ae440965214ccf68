"""`[server] otlp_endpoint`: spans exported by a real `gateway serve` to a local OTLP/HTTP receiver —
a real HTTP server in this test that accepts POST /v1/traces and decodes the protobuf with
opentelemetry-proto (issue 12).

The batch processor's delay is set to a minute, so every span in these tests reaches the receiver
through the flush at worker shutdown: stopping the gateway must deliver them.
"""

from __future__ import annotations

import gzip
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.harness import free_port, gateway_serve, recv_response, wait_for, write_config
from tests.recording_origin import RecordingOrigin

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])")


class Receiver:
    """An OTLP/HTTP traces receiver: every span it was sent, with its resource's attributes."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], Span]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with receiver.lock:
                    receiver.paths.append(self.path)
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver.lock:
                    for rs in request.resource_spans:
                        resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                        for ss in rs.scope_spans:
                            receiver.spans.extend((resource, span) for span in ss.spans)
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def in_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for _, s in self.spans if s.trace_id.hex() == trace_id]

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class Sent:
    trace_id: str
    request_id: str
    origin_traceparent: str | None


def attrs(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        v = a.value
        out[a.key] = v.string_value if v.HasField("string_value") else v.int_value if v.HasField("int_value") else v.bool_value
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Receiver, dict[str, Sent]]]:
    """One gateway (2 workers) that served every request of this module and was then stopped."""
    tmp = tmp_path_factory.mktemp("otlp")
    receiver = Receiver()
    web = RecordingOrigin("web")
    text = f"""
[server]
request_id = "X-Request-Id"
trace = true
otlp_endpoint = "http://127.0.0.1:{receiver.port}"

[origins.web]
url = "http://127.0.0.1:{web.port}"

[origins.down]
url = "http://127.0.0.1:{free_port()}"

[[routes]]
match = "/pub/:path*"
origin = "web"

[[routes]]
match = "/down/:path*"
origin = "down"
"""
    path = write_config(tmp, text)
    sent: dict[str, Sent] = {}
    with ExitStack() as stack:
        stack.callback(receiver.close)
        stack.callback(web.close)
        with gateway_serve(path, env={"OTEL_BSP_SCHEDULE_DELAY": "60000"}, workers=2) as gw:
            cases = {
                "continued": f"GET /pub/a?token=secret HTTP/1.1\r\ntraceparent: 00-{TRACE}-{PARENT}-01\r\ntracestate: k=v",
                "started": "GET /pub/b HTTP/1.1",
                "unsampled": f"GET /pub/c HTTP/1.1\r\ntraceparent: 00-{'1' * 32}-{PARENT}-00",
                "not_found": "GET /nowhere HTTP/1.1",
                "down": "GET /down/x HTTP/1.1",
            }
            for name, head in cases.items():
                mark = web.mark()
                with socket.create_connection(("127.0.0.1", gw.port), timeout=15) as s:
                    s.sendall(head.encode() + b"\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
                    r = recv_response(s)
                rid = r.header("x-request-id")
                entry = gw.wait_log(lambda e: e.get("request_id") == rid)
                assert entry is not None
                seen = web.since(mark)[0]
                sent[name] = Sent(entry["trace_id"], rid or "", seen[0].header("traceparent")[0] if seen else None)
            # Nothing yet: the batch delay is a minute.
            assert receiver.spans == []
            gw.stop()  # lifespan shutdown in each worker: the batch processor flushes
        yield receiver, sent


def one(spans: list[Span], kind: int) -> Span:
    found = [s for s in spans if s.kind == kind]
    assert len(found) == 1, spans
    return found[0]


def test_spans_arrive_at_shutdown_over_otlp_http(run: tuple[Receiver, dict[str, Sent]]) -> None:
    receiver, _ = run
    assert wait_for(lambda: len(receiver.spans) >= 6, 10), receiver.spans
    assert set(receiver.paths) == {"/v1/traces"}
    assert all(resource["service.name"] == "gateway" for resource, _ in receiver.spans)


def test_a_callers_trace_continues_through_a_server_and_a_client_span(run: tuple[Receiver, dict[str, Sent]]) -> None:
    receiver, sent = run
    case = sent["continued"]
    assert case.trace_id == TRACE
    spans = receiver.in_trace(TRACE)
    server, client = one(spans, Span.SPAN_KIND_SERVER), one(spans, Span.SPAN_KIND_CLIENT)
    assert server.parent_span_id.hex() == PARENT
    assert client.parent_span_id == server.span_id
    # The origin's parent is the gateway's upstream span, in the same trace, with the caller's flags.
    assert case.origin_traceparent == f"00-{TRACE}-{client.span_id.hex()}-01"
    assert server.name == "GET /pub/:path*"
    a = attrs(server)
    assert a["http.route"] == "/pub/:path*" and a["http.response.status_code"] == 200 and a["http.request.method"] == "GET"
    assert a["url.path"] == "/pub/a" and a["gateway.request_id"] == case.request_id
    assert "secret" not in str(a) and "secret" not in str(attrs(client))  # never the query string
    assert attrs(client)["http.response.status_code"] == 200 and attrs(client)["gateway.origin"] == "web"
    assert server.start_time_unix_nano <= client.start_time_unix_nano <= client.end_time_unix_nano <= server.end_time_unix_nano
    assert server.trace_state == "k=v"


def test_a_started_trace_has_a_root_server_span_and_the_origin_nests_under_the_client_span(run: tuple[Receiver, dict[str, Sent]]) -> None:
    receiver, sent = run
    case = sent["started"]
    assert case.origin_traceparent is not None
    m = TRACEPARENT.fullmatch(case.origin_traceparent)
    assert m is not None and m.group(1) == case.trace_id and m.group(3) == "01"
    spans = receiver.in_trace(case.trace_id)
    server, client = one(spans, Span.SPAN_KIND_SERVER), one(spans, Span.SPAN_KIND_CLIENT)
    assert server.parent_span_id == b""
    assert client.parent_span_id == server.span_id and client.span_id.hex() == m.group(2)


def test_an_unsampled_trace_is_propagated_but_not_exported(run: tuple[Receiver, dict[str, Sent]]) -> None:
    receiver, sent = run
    case = sent["unsampled"]
    assert case.trace_id == "1" * 32
    assert case.origin_traceparent is not None and case.origin_traceparent.startswith(f"00-{'1' * 32}-") and case.origin_traceparent.endswith("-00")
    assert wait_for(lambda: len(receiver.spans) >= 6, 10)
    assert receiver.in_trace(case.trace_id) == []


def test_a_gateway_answer_has_a_server_span_only_and_a_failed_upstream_call_is_an_error(run: tuple[Receiver, dict[str, Sent]]) -> None:
    receiver, sent = run
    spans = receiver.in_trace(sent["not_found"].trace_id)
    assert [s.kind for s in spans] == [Span.SPAN_KIND_SERVER] and attrs(spans[0])["http.response.status_code"] == 404
    assert spans[0].name == "GET"
    spans = receiver.in_trace(sent["down"].trace_id)
    server, client = one(spans, Span.SPAN_KIND_SERVER), one(spans, Span.SPAN_KIND_CLIENT)
    assert server.status.code == Status.STATUS_CODE_ERROR and attrs(server)["error.type"] == "502"
    assert client.status.code == Status.STATUS_CODE_ERROR and attrs(client)["error.type"] == "upstream_connect"
    assert client.parent_span_id == server.span_id

