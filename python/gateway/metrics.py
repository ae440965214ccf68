"""Prometheus metrics, aggregated across Granian's worker processes (``[server] metrics_listen``).

Exposition, the multiprocess files and their aggregation are prometheus_client's (the Prometheus
project's own Python library, so the text format, escaping, OpenMetrics negotiation and the
cross-process sums are its well-tested code, not ours): each worker writes its figures to mmap'd
files in a private directory that `gateway serve` makes (``PROMETHEUS_MULTIPROC_DIR``, 0700, removed
on exit), and the serve main process answers ``GET /metrics`` on its own listener (`start_listener`)
by summing every worker's files. The gateway's public port never serves metrics.

Names follow the OpenTelemetry HTTP semantic conventions as exported to Prometheus (dots to
underscores, the unit as a suffix, seconds):

==========================================  =========  =============================================
name                                        type       labels
==========================================  =========  =============================================
http_server_request_duration_seconds        histogram  http_route, http_request_method,
                                                       http_response_status_code
gateway_overhead_duration_seconds           histogram  http_route
gateway_upstream_duration_seconds           histogram  origin
gateway_auth_total                          counter    policy, outcome
gateway_rate_limit_total                    counter    limit, decision
gateway_upstream_errors_total               counter    origin, kind
gateway_key_set_fetches_total               counter    policy, outcome
gateway_websockets_open                     gauge      http_route
==========================================  =========  =============================================

Every label value comes from a bounded set: a route's pattern from the config (``unmatched`` for a
request no route took, the health endpoint's own path), a standard method or ``_OTHER``, a 3-digit
status, names from the config, outcomes and kinds from fixed lists. Never a raw path, a user or a claim.

Cost. prometheus_client's multiprocess ``observe`` takes a lock and writes an mmap per bucket and per
sum (measured: 3.3 µs per histogram observation, ~10 µs per request for three): too much for a
request that costs the gateway ~50 µs. So each worker adds a request to a tally in the core
(`gateway._core.Tally`, rust/src/observe/tally.rs: one entry per distinct combination of labels, one
call per request), and moves the tallies into prometheus_client's values at most once a second
(`FLUSH_SECONDS`), and at shutdown. A scrape sees a worker's figures up to a second late; a worker
that is killed outright loses at most its last second. benches/RESULTS.md "Observability (issue 12)"
has the load-suite figures.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import _core

if TYPE_CHECKING:
    from gateway.context import RequestContext

log = logging.getLogger("gateway")

FLUSH_SECONDS = 1.0
# The environment variable `gateway serve` sets for its workers: the multiprocess directory.
DIR_ENV = "GATEWAY_METRICS_DIR"

# OpenTelemetry's advisory buckets for http.server.request.duration (5 ms to 10 s), with 1 ms and
# 2.5 ms below (the gateway answers many requests itself in well under 5 ms) and 30 s and 60 s above
# (the default origin timeout is 30 s: a 504 should land in a bucket of its own, not only in +Inf).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0)
# The time the gateway adds is tens of microseconds to a few milliseconds: finer at the low end.
OVERHEAD_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# The origin's time to its response head: as the request's.
UPSTREAM_BUCKETS = REQUEST_BUCKETS

UNMATCHED = "unmatched"
HEALTH_ROUTE = "/__gateway/health"


def _add_histogram(child: Any, counts: list[int], total: float) -> None:
    """Adds bucket counts and a sum to a prometheus_client Histogram child.

    prometheus_client has no public "add n observations to bucket i"; a Histogram child keeps one
    value per bucket (``_buckets``, non-cumulative) and the sum (``_sum``), which its own observe()
    increments. Checked here, so a library that changed them fails loudly, never miscounts."""
    buckets = getattr(child, "_buckets", None)
    if buckets is None or len(buckets) != len(counts) or not hasattr(child, "_sum"):
        raise RuntimeError("this prometheus_client keeps a Histogram's buckets differently; gateway needs prometheus-client>=0.17,<1")
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)
    child._sum.inc(total)


class Recorder:
    """A worker's metrics: `record` adds each request to the core's tally; `flush` moves the tallies
    into prometheus_client's multiprocess values."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        # Values live in the multiprocess files; this registry is never exposed from a worker.
        registry = CollectorRegistry(auto_describe=False)
        self.request = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests: from the request's arrival to the end of the response (OpenTelemetry http.server.request.duration).",
            ["http_route", "http_request_method", "http_response_status_code"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.overhead = Histogram(
            "gateway_overhead_duration_seconds",
            "Time the gateway itself adds to a request: until the response head is sent, less the time waiting on the origin.",
            ["http_route"],
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.upstream = Histogram(
            "gateway_upstream_duration_seconds",
            "Time the origin takes: from sending it the request to its response head (or failure).",
            ["origin"],
            buckets=UPSTREAM_BUCKETS,
            registry=registry,
        )
        self.auth = Counter("gateway_auth", "Auth decisions by policy and outcome (missing, invalid, valid).", ["policy", "outcome"], registry=registry)
        self.rate_limit = Counter("gateway_rate_limit", "Rate-limit decisions by limit.", ["limit", "decision"], registry=registry)
        self.upstream_errors = Counter(
            "gateway_upstream_errors", "Requests the origin failed, by origin and kind (upstream_connect, upstream_timeout, ...).", ["origin", "kind"], registry=registry
        )
        self.key_set_fetches = Counter("gateway_key_set_fetches", "Key-set (JWKS) fetches by policy and outcome.", ["policy", "outcome"], registry=registry)
        self.websockets = Gauge("gateway_websockets_open", "WebSocket connections open now, by route.", ["http_route"], registry=registry, multiprocess_mode="livesum")
        self.tally = _core.Tally(REQUEST_BUCKETS, OVERHEAD_BUCKETS, UPSTREAM_BUCKETS)
        self.pending_fetches: dict[tuple[str, str], int] = {}
        self._flush_at: asyncio.TimerHandle | None = None

    def record(self, ctx: RequestContext, now: float) -> None:
        route = ctx.route
        if route is not None:
            label = route.pattern
        else:
            answer = ctx.answer
            label = HEALTH_ROUTE if answer is not None and answer.kind == "health" else UNMATCHED
        origin = ctx.origin
        self.tally.record(
            label, ctx.request, ctx.status, None if origin is None else origin.name, ctx.auth_policy, ctx.auth_outcome, ctx.upstream_error, ctx.rate_limit,
            ctx.started, now, ctx.upstream_seconds, ctx.head_sent,
        )  # fmt: skip
        if self._flush_at is None:
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop (a thread): write through now
            self.flush()
            return
        self._flush_at = loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Moves the tallies into the multiprocess files (what a scrape reads)."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        entries = self.tally.drain()
        fetches, self.pending_fetches = self.pending_fetches, {}
        # Several entries feed one series (the overhead per route sums every method and status).
        request: dict[tuple[str, ...], _Sum] = {}
        overhead: dict[tuple[str, ...], _Sum] = {}
        upstream: dict[tuple[str, ...], _Sum] = {}
        counters: dict[tuple[Any, tuple[str, ...]], float] = {}
        for label, method, status, origin, policy, outcome, error, limit, req_h, over_h, up_h, count in entries:
            _merge(request, (label, method, str(status)), req_h)
            _merge(overhead, (label,), over_h)
            if origin is not None and any(up_h[0]):
                _merge(upstream, (origin,), up_h)
            if policy is not None:
                k = (self.auth, (policy, outcome))
                counters[k] = counters.get(k, 0) + count
            if limit is not None:
                k = (self.rate_limit, limit)
                counters[k] = counters.get(k, 0) + count
            if error is not None and origin is not None:
                k = (self.upstream_errors, (origin, error))
                counters[k] = counters.get(k, 0) + count
        for metric, merged in ((self.request, request), (self.overhead, overhead), (self.upstream, upstream)):
            for labels, (counts, total) in merged.items():
                _add_histogram(metric.labels(*labels), counts, total)
        for (metric, labels), n in counters.items():
            metric.labels(*labels).inc(n)
        for labels, n in fetches.items():
            self.key_set_fetches.labels(*labels).inc(n)

    def key_set_fetch(self, policy: str, outcome: str) -> None:
        k = (policy, outcome)
        self.pending_fetches[k] = self.pending_fetches.get(k, 0) + 1
        if self._flush_at is None:
            self._schedule()


# A histogram's bucket counts (+Inf last) and sum, as `_core.Tally.drain` gives them.
_Sum = tuple[list[int], float]


def _merge(into: dict[tuple[str, ...], _Sum], labels: tuple[str, ...], histogram: _Sum) -> None:
    """Adds one entry's histogram into the series ``into[labels]``."""
    had = into.get(labels)
    if had is None:
        into[labels] = (list(histogram[0]), histogram[1])
        return
    counts = had[0]
    for i, n in enumerate(histogram[0]):
        counts[i] += n
    into[labels] = (counts, had[1] + histogram[1])


recorder: Recorder | None = None


def start_worker() -> bool:
    """In a worker: start recording if `gateway serve` made a metrics directory for it. True if so.

    prometheus_client picks its value class (in-process or mmap'd files) from
    ``PROMETHEUS_MULTIPROC_DIR`` when it is imported; `gateway serve` sets it before anything imports
    the library, and this makes sure of it (a worker of a forked server inherits the parent's modules).
    """
    global recorder
    directory = os.environ.get(DIR_ENV)
    if not directory:
        return False
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()
    if recorder is None:
        recorder = Recorder()
    return True


def flush() -> None:
    if recorder is not None:
        recorder.flush()


def key_set_fetch(policy: str, outcome: str) -> None:
    """Counts one key-set fetch for auth policy `policy`; `outcome` from a fixed list ("ok", "error", ...)."""
    if recorder is not None:
        recorder.key_set_fetch(policy, outcome)


def websocket_opened(route: Any) -> None:
    """One more open WebSocket on `route` (a config Route, or its label)."""
    if recorder is not None:
        recorder.websockets.labels(_route_label(route)).inc()


def websocket_closed(route: Any) -> None:
    if recorder is not None:
        recorder.websockets.labels(_route_label(route)).dec()


def _route_label(route: Any) -> str:
    if route is None:
        return UNMATCHED
    return route if isinstance(route, str) else str(route.pattern)


# ---------------------------------------------------------------- the listener (serve's main process)

MAX_SCRAPES = 16
_DB_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not reaped yet) is dead too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class _Collector:
    """prometheus_client's MultiProcessCollector, after forgetting the live gauges of workers that
    have exited (prometheus_client's mark_process_dead), so a crashed worker's open WebSockets do
    not count for ever. Its counters and histograms stay: a counter must not go backwards."""

    def __init__(self, directory: str):
        from prometheus_client import multiprocess

        self.directory = directory
        self._multiprocess = multiprocess
        self._inner = multiprocess.MultiProcessCollector(None, path=directory)

    def collect(self) -> Any:
        dead = set()
        for name in os.listdir(self.directory):
            m = _DB_FILE.match(name)
            if m is not None and int(m.group(1)) not in dead and not _alive(int(m.group(1))):
                dead.add(int(m.group(1)))
        for pid in dead:
            self._multiprocess.mark_process_dead(pid, self.directory)
        return self._inner.collect()


def make_directory() -> str:
    """A fresh private directory (0700) for the workers' files; the caller removes it on exit."""
    import tempfile

    return tempfile.mkdtemp(prefix="gateway-metrics-")


def start_listener(address: str, port: int, directory: str) -> ThreadingHTTPServer:
    """Serves GET /metrics (Prometheus text, or OpenMetrics when asked) on ``address:port`` from a
    thread of this process; every other path is 404. Returns the server (``shutdown()`` stops it)."""
    import socket

    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(directory))  # type: ignore[arg-type]

    class Handler(BaseHTTPRequestHandler):
        server_version = "gateway-metrics"
        # A scraper that connects and says nothing cannot hold a thread for long.
        timeout = 10

        def _answer(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path != "/metrics":
                payload = b"not found: metrics are at /metrics\n"
                self.send_response(404)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            else:
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                try:
                    payload = encoder(registry)
                except Exception:
                    log.exception("metrics: could not read the workers' figures")
                    payload = b"the workers' figures could not be read\n"
                    self.send_response(500)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if body:
                self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer(True)

        def do_HEAD(self) -> None:
            self._answer(False)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes are not requests through the gateway: no access-log lines

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        allow_reuse_address = True
        # A thread per connection, at most MAX_SCRAPES at once: a flood of connections to the metrics
        # port is closed at once rather than growing threads without bound.
        slots = threading.BoundedSemaphore(MAX_SCRAPES)

        def process_request(self, request: Any, client_address: Any) -> None:
            if not self.slots.acquire(blocking=False):
                self.shutdown_request(request)
                return
            try:
                super().process_request(request, client_address)
            except BaseException:
                self.slots.release()
                raise

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                self.slots.release()

    server = Server((address, port), Handler)
    threading.Thread(target=server.serve_forever, name="gateway-metrics", daemon=True).start()
    return server
