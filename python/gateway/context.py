"""The per-request context every stage reads and writes (pingora's ``CTX``).

One `RequestContext` is made per request by `gateway.pipeline`; the stages in `pipeline.STAGES` fill
it in order. Nothing else carries request state: serve and explain hand the same object through the
same stages, explain with ``dry_run`` set and a ``trace`` to write to.

Fields hold class-level defaults, so a request pays only for what its stages set (measured: making a
context with every field assigned cost about twice as much). Defaults are immutable: a stage
assigns a new value rather than changing a shared default in place.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from gateway._core import HeaderNames, Request
    from gateway.config import Config, Origin, Route
    from gateway.hooks.api import HookRequest
    from gateway.kv import KVStore
    from gateway.respond import Answer

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class RequestContext:
    # What came in, and how this run behaves.
    config: Config
    request: Request
    kv: KVStore | None
    dry_run: bool = False
    # Explain's record of why each stage decided what it did: (stage, text) pairs; None in serve.
    trace: list[tuple[str, str]] | None = None
    rng: Any = random
    now: float | None = None  # verify tokens at this time instead of the clock (tests, explain)
    # normalize
    path: str | None = None
    # match
    route: Route | None = None
    origin: Origin | None = None
    params: Mapping[str, str] = _EMPTY
    skipped: tuple[dict[str, Any], ...] = ()  # explain: earlier routes and why each was passed over
    # limits, claim_limits: (the limit that decided: the one that refused, else the last that counted
    # the request; how: "allowed" | "limited" | "store_error_allowed" | "store_error_denied"), read as
    # rate_limit_name and rate_limit_outcome. One field, as each field a request sets costs it time.
    rate_limit: tuple[str, str] | None = None
    # auth
    auth_policy: str | None = None
    auth_outcome: str = "none"  # none | missing | valid | invalid | unavailable (no usable key set)
    auth_reason: str | None = None
    claims: Mapping[str, Any] = _EMPTY
    api_choice: str | None = None  # explain: why a redirect policy answered JSON or redirected
    # cors: the headers every response to this request gets (gateway.cors.merge_headers), and why
    cors_headers: Sequence[tuple[bytes, bytes]] = ()
    cors_decision: str | None = None
    # require: the claim rules' outcome, for explain
    require_result: str | None = None
    # locale
    country: str | None = None
    lang: str | None = None
    upstream_path: str | None = None
    # experiment
    variant: str | None = None
    experiments: Mapping[str, str] = _EMPTY
    # headers: the request headers the gateway sets (name as configured -> text; sent as UTF-8), the
    # lower-case names never forwarded from the client, the response headers it adds, the cookies it
    # sets, and the whole list the origin is sent.
    set_headers: dict[str, str]
    drop_headers: HeaderNames | None = None
    response_headers: tuple[tuple[bytes, bytes], ...] = ()
    set_cookies: list[str]
    forward_headers: list[tuple[bytes, bytes]]
    # the query sent to the origin when it differs from the client's: the auth stage removes
    # "query:NAME" token parameters (None: the client's query as received)
    forward_query: str | None = None
    # a WebSocket handshake: its session (gateway.proxy.websocket.Session); None for HTTP requests
    ws: Any = None
    # hooks: lower-case names of client headers a request hook set or removed (dropped from the
    # forward), the request stage's snapshot (the response hooks see it too), and explain's record
    # of what each hook returned
    hook_drop: frozenset[str] = frozenset()
    hook_request: HookRequest | None = None
    hook_trace: list[dict[str, Any]]
    # proxy
    upstream_url: str | None = None
    # the Host the origin is sent (origin.host_header's rule applied to this request)
    upstream_host: str | None = None
    timeout: float = 30.0
    max_body: int = 0
    ws_idle_timeout: float = 3600.0
    ws_max_message: int = 1_000_000  # "1MB"
    # correlation (README "Observability"): the request id; the W3C trace context — trace id, and
    # with OTLP export the gateway's SERVER span id, the caller's parent span id (None when the
    # gateway started the trace), the trace flags, and the span id of the upstream call (the
    # parent-id the origin is sent); the headers echoed on every response...
    request_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    trace_flags: str = "01"
    client_span_id: str | None = None
    echo_headers: tuple[tuple[bytes, bytes], ...] = ()
    # ... and the headers the origin is sent for them (request id, traceparent, tracestate), as
    # lower-case wire pairs: never in set_headers, which hooks and templates write.
    correlation_forward: tuple[tuple[bytes, bytes], ...] = ()
    # the end: the answer the gateway made (None when the origin answered), the status sent
    answer: Answer | None = None
    status: int = 0
    started: float
    upstream_seconds: float | None = None
    # perf_counter when the request went to the origin, and when the response head went to the
    # client; the upstream failure's kind (upstream_connect, upstream_timeout, ...; see proxy/http.py)
    upstream_started: float | None = None
    head_sent: float | None = None
    upstream_error: str | None = None

    def __init__(self, config: Config, request: Request, kv: KVStore | None, started: float):
        self.config = config
        self.request = request
        self.kv = kv
        self.started = started
        self.set_headers = {}
        self.set_cookies = []

    @classmethod
    def for_explain(cls, config: Config, request: Request, kv: KVStore | None, started: float, rng: random.Random | None = None, now: float | None = None) -> RequestContext:
        ctx = cls(config, request, kv, started)
        ctx.dry_run = True
        ctx.trace = []
        ctx.hook_trace = []
        if rng is not None:
            ctx.rng = rng
        ctx.now = now
        return ctx

    @property
    def rate_limit_name(self) -> str | None:
        """The rate limit that decided this request (see ``rate_limit``), or None."""
        return None if self.rate_limit is None else self.rate_limit[0]

    @property
    def rate_limit_outcome(self) -> str | None:
        """"allowed" | "limited" | "store_error_allowed" | "store_error_denied", or None."""
        return None if self.rate_limit is None else self.rate_limit[1]

    def note(self, stage: str, text: str) -> None:
        """Records a stage's reason for explain (callers test ``ctx.trace is not None`` first)."""
        assert self.trace is not None
        self.trace.append((stage, text))
