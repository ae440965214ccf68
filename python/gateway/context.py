"""The per-request context every stage reads and writes (pingora's ``CTX``).

One `RequestContext` is made per request by `pipeline.new_context`; the stages in
`pipeline.STAGES` fill it in order. Nothing else carries request state: serve and explain hand the
same object through the same stages, explain with ``dry_run`` set and a ``trace`` to write to.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway._core import Request
    from gateway.config import Config, Origin, Route
    from gateway.kv import KVStore
    from gateway.respond import Answer


class RequestContext:
    __slots__ = (
        # what came in, and how this run behaves
        "config",
        "request",
        "kv",
        "dry_run",
        "trace",
        "rng",
        "now",
        # normalize
        "path",
        # match
        "route",
        "origin",
        "params",
        "skipped",
        # auth
        "auth_policy",
        "auth_outcome",
        "auth_reason",
        "claims",
        # locale
        "country",
        "lang",
        "upstream_path",
        # experiment
        "variant",
        "experiments",
        # headers
        "set_headers",
        "drop_headers",
        "response_headers",
        "set_cookies",
        "forward_headers",
        # proxy
        "upstream_url",
        "timeout",
        "max_body",
        # the end: an answer the gateway made, or the origin's status
        "answer",
        "status",
        "started",
        "upstream_seconds",
    )

    def __init__(self, config: Config, request: Request, kv: KVStore | None, started: float, dry_run: bool = False, rng: random.Random | None = None, now: float | None = None):
        self.config = config
        self.request = request
        self.kv = kv
        self.dry_run = dry_run
        # Explain's record of why each stage decided what it did: (stage, text) pairs.
        self.trace: list[tuple[str, str]] | None = [] if dry_run else None
        self.rng = rng or random
        self.now = now
        self.path: str | None = None
        self.route: Route | None = None
        self.origin: Origin | None = None
        self.params: dict[str, str] = {}
        self.skipped: list[dict[str, Any]] = []  # explain: the earlier routes and why each was passed over
        self.auth_policy: str | None = None
        self.auth_outcome = "none"  # none | missing | valid | invalid
        self.auth_reason: str | None = None
        self.claims: dict[str, Any] = {}
        self.country: str | None = None
        self.lang: str | None = None
        self.upstream_path: str | None = None
        self.variant: str | None = None
        self.experiments: dict[str, str] = {}
        # Request headers the gateway sets (name as configured -> latin-1 wire text), and the
        # lower-case names it removes from the client's request.
        self.set_headers: dict[str, str] = {}
        self.drop_headers: frozenset[str] = frozenset()
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.set_cookies: list[str] = []
        self.forward_headers: list[tuple[bytes | str, bytes | str]] = []
        self.upstream_url: str | None = None
        self.timeout = 30.0
        self.max_body = 0
        self.answer: Answer | None = None
        self.status = 0
        self.started = started
        self.upstream_seconds: float | None = None

    def note(self, stage: str, text: str) -> None:
        """Records a stage's reason for explain (callers test ``ctx.trace is not None`` first)."""
        assert self.trace is not None
        self.trace.append((stage, text))
