"""The limits stage (after match, before auth): the route's rate limits keyed by ``ip`` or ``header:NAME``, before auth.

Before auth, so a flood is refused before any token is verified; the limits keyed by a claim run
after auth (`gateway.stages.claim_limits`). How keys, stores and the 429 work: `gateway.limits`.
Explain lists the limits that apply and the key each counts by, and counts nothing.
"""

from __future__ import annotations

from gateway import limits
from gateway.context import RequestContext
from gateway.respond import Answer

NAME = "limits"


async def run(ctx: RequestContext) -> Answer | None:
    route = ctx.route
    assert route is not None
    before_auth = ctx.config.route_limits[route.index][0]
    if not before_auth:
        return None
    return await limits.check(ctx, before_auth, NAME)
