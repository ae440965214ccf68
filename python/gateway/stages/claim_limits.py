"""The claim_limits stage (right after auth): the route's rate limits keyed by ``claim:NAME``, after auth.

Only a request whose token verified gets here (auth answers every other), so the count is per
verified identity; a claim missing from a valid token counts in the limit's shared missing bucket.
How keys, stores and the 429 work: `gateway.limits`.
"""

from __future__ import annotations

from gateway import limits
from gateway.context import RequestContext
from gateway.respond import Answer

NAME = "claim_limits"


async def run(ctx: RequestContext) -> Answer | None:
    route = ctx.route
    assert route is not None
    after_auth = ctx.config.route_limits[route.index][1]
    if not after_auth:
        return None
    return await limits.check(ctx, after_auth, NAME)
