"""Stage 0, correlation: the request id and the W3C trace context, first, so even a refused request
has them in its access-log line and on its answer.

``[server] request_id = "X-Request-Id"``: the client's value is kept only when the peer is one of
``server.trusted_proxies`` and the value is sane (one header, 1 to `MAX_REQUEST_ID` visible ASCII
characters); otherwise — no value, an untrusted peer, two headers, a hostile value — the gateway
makes one (32 lowercase hex digits, 128 random bits). It is sent to the origin (a client's copy from
an untrusted peer never is), echoed on every response, the origin's and the gateway's own, and
written in the access-log line.

``[server] trace = true``: W3C Trace Context (https://www.w3.org/TR/trace-context/). A valid
``traceparent`` (§3.2: version 00 exactly ``00-<32 hex>-<16 hex>-<2 hex>``, lowercase, neither id all
zeros; a higher version is read by its first four fields, §3.2.4; version ff is invalid) is sent to
the origin untouched, with ``tracestate`` (§3.3, several lines joined by commas). Absent or invalid:
a new trace is started (a new trace id and span id, flags ``01`` sampled) and the client's
``tracestate`` is dropped (§3.3.1: it belongs to the trace it came with). When spans are exported
(``otlp_endpoint``), the gateway is a participant: the origin gets version 00 with the same trace id
and flags and, as parent-id, the span id of the gateway's upstream (CLIENT) span (§3.2.2.3).
"""

from __future__ import annotations

import re

from gateway import _core
from gateway.context import RequestContext
from gateway.respond import Answer

NAME = "correlation"
# Long enough for any id scheme in use (UUIDs 36, AWS X-Amzn-Trace-Id ~50, Heroku's up to 200),
# short enough that it cannot bloat every log line and header.
MAX_REQUEST_ID = 200
_SANE_ID = re.compile(r"[!-~]{1,%d}" % MAX_REQUEST_ID)
# §3.2.2: version-format; the version is checked on its own (ff is invalid, 00 must end there).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# §3.3: list-members of printable ASCII and optional whitespace around the commas.
_TRACESTATE = re.compile(r"[\x20-\x7e\t]*")

# The ids: the core's CSPRNG pool (rust/src/observe/ids.rs), fork-safe, never all zeros.
random_hex = _core.random_hex


def parse_traceparent(value: str) -> tuple[str, str, str] | None:
    """(trace id, parent id, flags) of a valid ``traceparent`` value (W3C Trace Context §3.2), else None."""
    if len(value) < 55:
        return None
    m = _TRACEPARENT.match(value)
    if m is None:
        return None
    version, trace_id, parent_id, flags = m.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    if version == "00":
        if len(value) != 55:
            return None
    elif len(value) > 55 and value[55] != "-":  # §3.2.4: a later version only appends "-" fields
        return None
    return trace_id, parent_id, flags


def run(ctx: RequestContext) -> Answer | None:
    correlation = ctx.config.server.correlation
    if correlation is None:  # request_id and trace both off
        return None
    if ctx.trace is None:
        # The common case — the client sent no id and no traceparent, no spans are exported — is
        # one call into the core (rust/src/observe/correlation.rs): it runs on every request.
        begun = correlation.begin(ctx.request)
        if begun is not None:
            ctx.request_id, ctx.trace_id, ctx.correlation_forward, ctx.echo_headers = begun
            return None
    server = ctx.config.server
    name = server.request_id
    forward: list[tuple[bytes, bytes]] = []
    if name is not None:
        value = _kept_id(ctx, name) if ctx.request.header(name) is not None else _new_id(ctx)
        ctx.request_id = value
        pair = (server.request_id_wire, value.encode())
        forward.append(pair)
        ctx.echo_headers = (pair,)
    if server.trace:
        forward.extend(_trace(ctx))
    ctx.correlation_forward = tuple(forward)
    return None


def correlation_header_texts(ctx: RequestContext) -> list[tuple[str, str]]:
    """The headers this stage has the origin sent, as (name as configured, text): for explain."""
    server = ctx.config.server
    rid = server.request_id
    return [(rid if rid is not None and k == server.request_id_wire else k.decode(), v.decode("latin-1")) for k, v in ctx.correlation_forward]


def _new_id(ctx: RequestContext) -> str:
    value = random_hex(16)
    if ctx.trace is not None:
        ctx.note(NAME, f"request id {value} (generated: the client sent none)")
    return value


def _kept_id(ctx: RequestContext, name: str) -> str:
    """The client's request id if a trusted proxy sent one sane value, else a new one."""
    req = ctx.request
    values = req.header_values(name)
    if not ctx.config.server.is_trusted(req.client):
        why = f"generated: the peer {req.client} is not in server.trusted_proxies"
    elif len(values) > 1:
        why = f"generated: the proxy sent {len(values)} {name} headers"
    elif _SANE_ID.fullmatch(values[0]) is None:
        why = f"generated: the proxy's {name} is not 1 to {MAX_REQUEST_ID} visible ASCII characters"
    else:
        if ctx.trace is not None:
            ctx.note(NAME, f"request id {values[0]} (kept: from a trusted proxy)")
        return values[0]
    value = random_hex(16)
    if ctx.trace is not None:
        ctx.note(NAME, f"request id {value} ({why})")
    return value


def _trace(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    """Continues or starts the trace; the traceparent (and tracestate) pairs the origin is sent."""
    req = ctx.request
    values = req.header_values("traceparent")
    parsed = parse_traceparent(values[0]) if len(values) == 1 else None
    exporting = ctx.config.server.otlp_endpoint is not None
    if parsed is not None:
        trace_id, parent_id, flags = parsed
        ctx.trace_id, ctx.parent_span_id, ctx.trace_flags = trace_id, parent_id, flags
        state = req.header_values("tracestate")
        tracestate = ",".join(state) if state else None
        if tracestate is not None and _TRACESTATE.fullmatch(tracestate) is None:
            tracestate = None  # not ASCII: it could not be sent on unchanged
        if exporting:
            ctx.span_id, ctx.client_span_id = random_hex(8), random_hex(8)
            sent = [(b"traceparent", f"00-{trace_id}-{ctx.client_span_id}-{flags}".encode())]
        else:
            sent = [(b"traceparent", values[0].encode("latin-1"))]
        if tracestate is not None:
            sent.append((b"tracestate", tracestate.encode()))
        if ctx.trace is not None:
            ctx.note(NAME, f"trace {trace_id}: continued from the client's traceparent" + (" (with its tracestate)" if tracestate else ""))
        return sent
    trace_id, span_id = random_hex(16), random_hex(8)
    ctx.trace_id, ctx.span_id = trace_id, span_id
    if exporting:
        ctx.client_span_id = span_id = random_hex(8)
    if ctx.trace is not None:
        why = "no traceparent" if not values else "more than one traceparent" if len(values) > 1 else "the traceparent is not valid"
        ctx.note(NAME, f"trace {trace_id}: started ({why})")
    return [(b"traceparent", f"00-{trace_id}-{span_id}-01".encode())]
