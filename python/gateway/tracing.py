"""Span export over OTLP/HTTP (``[server] otlp_endpoint``), with the OpenTelemetry SDK — an optional
extra: ``pip install 'gateway[otel]'``. The SDK and its OTLP exporter are the OpenTelemetry
project's own (protobuf encoding, batching, retries), so nothing of the wire format is hand-written.

Per request, one SERVER span (from the request's arrival to the end of its response) and, when the
request went to an origin, a CLIENT child span for that call (from sending it to the end of the
origin's response, or its failure). Their ids are the ones the correlation stage chose
(`gateway.stages.correlation`), so the trace id is the one in the access log and in the
``traceparent`` the origin got, whose parent-id is the CLIENT span's: the origin's own spans nest
under the gateway's. A caller's ``traceparent`` is the SERVER span's remote parent; its sampled flag
decides (ParentBased): an unsampled trace is propagated but not exported. Traces the gateway starts
are sampled (flags 01).

Each worker has its own TracerProvider with a BatchSpanProcessor (a background thread; spans leave in
batches, never on the request's path), started in the worker after Granian forks and flushed when the
worker shuts down. Span attributes follow the OpenTelemetry HTTP semantic conventions; ``url.path`` is
the normalized path, never the query string (it may carry tokens).
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.context import RequestContext

log = logging.getLogger("gateway")

# The modules `pip install 'gateway[otel]'` brings; `missing_sdk` names the first that is not there.
SDK_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter")
_URL = re.compile(r"^(https?)://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(:\d{1,5})?(/[^?#\s]*)?$")
TRACES_PATH = "/v1/traces"


def traces_url(endpoint: str) -> str | None:
    """The OTLP/HTTP traces URL for ``otlp_endpoint``, None if it is not an http(s) URL.

    As OTEL_EXPORTER_OTLP_ENDPOINT (OTLP exporter spec): a base URL, to which ``/v1/traces`` is
    appended ("http://collector:4318" -> "http://collector:4318/v1/traces"); a URL that already ends
    in ``/v1/traces`` is used as it is."""
    m = _URL.match(endpoint)
    if m is None:
        return None
    path = (m.group(4) or "").rstrip("/")
    if path.endswith(TRACES_PATH):
        return endpoint
    return f"{m.group(1)}://{m.group(2)}{m.group(3) or ''}{path}{TRACES_PATH}"


def missing_sdk() -> str | None:
    """The first module of the [otel] extra that cannot be imported, or None when all can."""
    import importlib

    for name in SDK_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


class _Exporter:
    def __init__(self, endpoint: str):
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import IdGenerator
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

        from gateway import _core

        class ChosenIds(IdGenerator):
            """Hands the SDK the ids the correlation stage already sent to the origin."""

            trace_id = 0
            span_id = 0

            def generate_span_id(self) -> int:
                return self.span_id

            def generate_trace_id(self) -> int:
                return self.trace_id

            def is_trace_id_random(self) -> bool:
                return True  # from os.urandom (W3C Trace Context level 2's random flag)

        url = traces_url(endpoint)
        self.ids = ChosenIds()
        # service.name "gateway" unless OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say otherwise.
        resource = Resource.create({"service.name": "gateway", "service.version": _core.__version__})
        self.provider = TracerProvider(resource=resource, id_generator=self.ids, sampler=ParentBased(ALWAYS_ON))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        self.tracer = self.provider.get_tracer("gateway", _core.__version__)
        self.trace = trace
        self.url = url

    def record(self, ctx: RequestContext, now: float) -> None:
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

        trace = self.trace
        assert ctx.trace_id is not None and ctx.span_id is not None
        wall = time.time_ns()

        def at(perf: float) -> int:
            return wall - int((now - perf) * 1e9)

        parent = None
        if ctx.parent_span_id is not None:
            state = next((v.decode() for k, v in ctx.correlation_forward if k == b"tracestate"), None)
            remote = SpanContext(
                int(ctx.trace_id, 16),
                int(ctx.parent_span_id, 16),
                is_remote=True,
                trace_flags=TraceFlags(int(ctx.trace_flags, 16)),
                trace_state=TraceState.from_header([state]) if state else None,
            )
            parent = trace.set_span_in_context(NonRecordingSpan(remote))
        req = ctx.request
        route = ctx.route
        method = req.method
        attrs: dict[str, Any] = {
            "http.request.method": method,
            "url.scheme": req.scheme,
            "http.response.status_code": ctx.status,
        }
        if ctx.path is not None:
            attrs["url.path"] = ctx.path
        if route is not None:
            attrs["http.route"] = route.label()
        if req.client:
            attrs["client.address"] = req.client
        if req.host_name:
            attrs["server.address"] = req.host_name
        if ctx.request_id is not None:
            attrs["gateway.request_id"] = ctx.request_id
        self.ids.trace_id = int(ctx.trace_id, 16)
        self.ids.span_id = int(ctx.span_id, 16)
        server = self.tracer.start_span(f"{method} {route.label()}" if route is not None else method, context=parent, kind=SpanKind.SERVER, attributes=attrs, start_time=at(ctx.started))
        if ctx.status >= 500:
            server.set_attribute("error.type", str(ctx.status))
            server.set_status(Status(StatusCode.ERROR))
        origin = ctx.origin
        if ctx.upstream_started is not None and ctx.client_span_id is not None and origin is not None:
            self.ids.span_id = int(ctx.client_span_id, 16)
            cattrs: dict[str, Any] = {"http.request.method": method, "server.address": origin.host, "server.port": origin.port, "gateway.origin": origin.name}
            if ctx.upstream_url is not None:
                cattrs["url.full"] = ctx.upstream_url.split("?", 1)[0]
            failed = ctx.upstream_error is not None
            if not failed or ctx.upstream_error == "upstream_broke_off":
                cattrs["http.response.status_code"] = ctx.status
            client = self.tracer.start_span(method, context=trace.set_span_in_context(server), kind=SpanKind.CLIENT, attributes=cattrs, start_time=at(ctx.upstream_started))
            if failed:
                client.set_attribute("error.type", ctx.upstream_error or "")
                client.set_status(Status(StatusCode.ERROR))
            elif ctx.status >= 400:
                client.set_attribute("error.type", str(ctx.status))
                client.set_status(Status(StatusCode.ERROR))
            ended = now if not failed or ctx.upstream_seconds is None else ctx.upstream_started + ctx.upstream_seconds
            client.end(end_time=at(ended))
        server.end(end_time=wall)

    def shutdown(self) -> None:
        self.provider.shutdown()  # exports what is queued, then stops the batch thread


exporter: _Exporter | None = None


def start_worker(endpoint: str | None) -> None:
    """In a worker (after the fork): start exporting spans to `endpoint`'s traces URL."""
    global exporter
    if endpoint is None or exporter is not None:
        return
    exporter = _Exporter(endpoint)
    log.info("tracing: exporting spans to %s", exporter.url)


def record(ctx: RequestContext, now: float) -> None:
    if exporter is not None and ctx.trace_id is not None and ctx.span_id is not None:
        try:
            exporter.record(ctx, now)
        except Exception:  # a span must never fail a request that has been answered
            log.exception("tracing: could not record the request's spans")


def shutdown() -> None:
    """Flushes the spans still queued (at worker shutdown)."""
    global exporter
    if exporter is not None:
        exporter.shutdown()
        exporter = None
