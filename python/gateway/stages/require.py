"""The require stage (right after auth): a route's claim rules (``require = { all = [...], any = [...] }``, see
`gateway.claim_rules`) on the token the auth stage verified.

A token that fails them is the gateway's 403 JSON ``forbidden`` with ``WWW-Authenticate: Bearer
error="insufficient_scope"`` (RFC 6750 §3.1) — never the policy's login redirect: the user is signed
in, and signing in again would not change their claims. The access log's ``auth`` says
``forbidden``; explain's trace names the rule and predicate that failed. The response's detail does
not: it would tell anyone which claim to forge. Routes without ``require`` pay one attribute test.
"""

from __future__ import annotations

from gateway import respond
from gateway.context import RequestContext
from gateway.respond import Answer

NAME = "require"
_INSUFFICIENT = [(b"www-authenticate", b'Bearer realm="gateway", error="insufficient_scope"')]


def run(ctx: RequestContext) -> Answer | None:
    route = ctx.route
    assert route is not None
    rules = route.require
    if rules is None:
        return None
    # The loader refuses `require` without `auth`, and auth answers every token that is not valid;
    # should either ever change, no verified token fails closed here.
    why = rules.failure(ctx.claims) if ctx.auth_outcome == "valid" else "no verified token"
    if why is None:
        ctx.require_result = "passed: " + rules.describe()
        if ctx.trace is not None:
            ctx.note(NAME, ctx.require_result)
        return None
    ctx.auth_outcome = "forbidden"
    ctx.auth_reason = why
    ctx.require_result = "failed: " + why
    if ctx.trace is not None:
        ctx.note(NAME, f"{ctx.require_result}: 403 forbidden (a valid token, so never the login redirect)")
    return respond.error("forbidden", "the token's claims do not satisfy this route's require rules", headers=_INSUFFICIENT)
