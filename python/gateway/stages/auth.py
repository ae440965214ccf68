"""Stage 3, auth: find the route's token, verify it in the core, forward the claims it names.

Where the token comes from is the policy's ``token_from``, in order; the first source that holds a
token is used. A cookie source may hold several cookies of the same name — browsers send a cookie
set for a longer path first, so anyone who can set a cookie for the domain (a sibling subdomain, an
injected script) can plant ``auth-token`` at ``Path=/dashboard`` ahead of the real one. So every
same-name cookie is a candidate, at most `MAX_CANDIDATES` (50, what a browser keeps per domain at
least) of them, in the order sent: the first that
verifies wins, and a planted cookie can neither lock the user out nor get anything through itself.
When none verifies, the policy's ``on_invalid`` applies — but its ``clear_cookie`` is sent only when
every candidate was tried, so a failure can never delete a valid cookie that was not looked at.
Two Authorization (or token) headers are refused as ambiguous.
With keys from an identity provider (gateway/key_sources.py) and no usable key set, the answer is
503 with Retry-After, never on_invalid's 401 or redirect.
"""

from __future__ import annotations

from gateway import _core, accept, key_sources, respond, token_sources
from gateway.config import AuthAction, AuthPolicy
from gateway.context import RequestContext
from gateway.respond import Answer
from gateway.text import header_text

NAME = "auth"
# As many as the core hands over (RFC 6265 §6.1: 50, what a browser keeps per domain at least):
# fewer than that means every same-name cookie was seen.
MAX_CANDIDATES = _core.MAX_SAME_NAME_COOKIES
CLEAR_COOKIE_ATTRS = "; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax; Secure"
_MISSING = [(b"www-authenticate", b'Bearer realm="gateway"')]
_INVALID = [(b"www-authenticate", b'Bearer realm="gateway", error="invalid_token"')]


def _candidates(policy: AuthPolicy, ctx: RequestContext) -> tuple[list[str], str | None, bool]:
    """(tokens to try in order, why the request is ambiguous, whether every same-name one is there)."""
    req = ctx.request
    for kind, name in policy.token_from:
        if kind == "cookie":
            values = [v for v in req.cookies(name) if v]
            if values:
                return values, None, len(values) < MAX_CANDIDATES
        elif kind in ("query", "subprotocol"):
            # Like two Authorization headers, two tokens here are ambiguous, never tried in turn.
            values = token_sources.query_values(req.query, name) if kind == "query" else token_sources.subprotocol_tokens(req)
            if len(values) > 1:
                return [], f"more than one {'query parameter ' + name if kind == 'query' else 'bearer. subprotocol entry'}", True
            if values:
                return values, None, True
        else:
            header = "authorization" if kind == "bearer" else name
            values = req.header_values(header)
            if len(values) > 1:
                return [], f"more than one {'Authorization' if kind == 'bearer' else name} header", True
            if not values:
                continue
            value = values[0].strip()
            if kind == "bearer":
                scheme, _, value = value.partition(" ")
                if scheme.lower() != "bearer":
                    continue
                value = value.strip()
            if value:
                return [value], None, True
    return [], None, True


def _refuse(ctx: RequestContext, action: AuthAction, outcome: str, reason: str, may_clear: bool) -> Answer:
    ctx.auth_outcome = outcome
    ctx.auth_reason = reason
    if action.clear_cookie and may_clear:
        ctx.set_cookies.append(f"{action.clear_cookie}={CLEAR_COOKIE_ATTRS}")
    redirect = action.redirect
    if redirect is not None:
        # API clients (fetch, XHR) cannot use a 302 to an HTML login page: when the request
        # prefers JSON, the action's api_status answers instead (gateway.accept).
        api = accept.json_preference(ctx.request) if action.api_status is not None else None
        if api is not None:
            redirect = None
        if ctx.trace is not None:
            if api is not None:
                ctx.api_choice = f"api_status {action.api_status} instead of the redirect: {api}"
            else:
                ctx.api_choice = "redirect: " + ("api_status = false" if action.api_status is None else "the request does not prefer JSON")
    if ctx.trace is not None:
        ctx.note(NAME, f"{ctx.auth_policy}: {outcome} ({reason})" + (f"; {ctx.api_choice}" if ctx.api_choice else ""))
    if redirect is not None:
        return _redirect(ctx, redirect)
    status = (action.api_status if action.redirect is not None else action.status) or 401
    if outcome == "missing":
        answer = respond.error("unauthorized", "a token is required", headers=_MISSING)
    else:
        answer = respond.error("invalid_token", reason, headers=_INVALID)
    if status != 401:
        answer.status = status
    return answer


def _redirect(ctx: RequestContext, to: str) -> Answer:
    original = ctx.path or "/"
    # The query as forwarded: a query-string token source's parameter is never echoed into `next`.
    query = ctx.request.query if ctx.forward_query is None else ctx.forward_query
    if query:
        original += "?" + query
    sep = "&" if "?" in to else "?"
    # `next` is fully percent-encoded, so it can never read as //host or /\host.
    return respond.redirect(f"{to}{sep}next={_core.percent_encode(original)}")


async def run(ctx: RequestContext) -> Answer | None:
    route = ctx.route
    assert route is not None
    if not route.auth:
        return None
    policy = ctx.config.auth[route.auth]
    ctx.auth_policy = policy.name
    if policy.query_params and ctx.request.query:
        # Before any answer: a login redirect's `next` must not carry the token either.
        ctx.forward_query = token_sources.without_params(ctx.request.query, policy.query_params)
    tokens, ambiguity, complete = _candidates(policy, ctx)
    if ambiguity:
        return _refuse(ctx, policy.on_invalid, "invalid", ambiguity, True)
    if not tokens:
        return _refuse(ctx, policy.on_missing, "missing", policy.missing_reason, True)
    verifier = policy.verifier
    first_error: str | None = None
    for token in tokens:
        try:
            if policy.key_source is None:
                claims = verifier.verify(token) if ctx.now is None else verifier.verify(token, ctx.now)
            else:  # keys, jwks_url or discovery: may wait (bounded) for the IdP's key set
                claims = await key_sources.verify(ctx, policy, token)
        except _core.KeySetUnavailable as e:
            return key_sources.unavailable(ctx, policy, e)
        except _core.JWTError as e:
            if first_error is None:
                first_error = f"{type(e).__name__}: {e}"
            continue
        break
    else:
        reason = first_error or "the token is not valid"
        if len(tokens) > 1:
            reason += f" (and {len(tokens) - 1} more cookie(s) of that name, none valid)"
        return _refuse(ctx, policy.on_invalid, "invalid", reason, complete)
    ctx.auth_outcome = "valid"
    ctx.claims = claims
    for claim, header in policy.forward_claims.items():
        text = header_text(claims.get(claim))
        if text is not None:
            ctx.set_headers[header] = text
    if ctx.trace is not None:
        ctx.note(NAME, f"{policy.name}: valid token" + (f" (cookie {tokens.index(token) + 1} of {len(tokens)} of that name)" if len(tokens) > 1 else ""))
    return None
