"""The early-hooks stage (after match, before auth): the route's ``@gateway.hook("early")`` functions, before auth.

They see the method, path, query, headers, client address, route and its parameters (no claims
yet) and may answer (`gateway.Respond`). Routes that list no early hook pay one attribute check: the
stage is synchronous and hands the pipeline a coroutine only when there are hooks to run.
See `gateway.hooks.runner` and docs/hooks.md.
"""

from __future__ import annotations

from collections.abc import Awaitable

from gateway.context import RequestContext
from gateway.hooks import runner
from gateway.respond import Answer

NAME = "early hooks"


def run(ctx: RequestContext) -> Answer | Awaitable[Answer | None] | None:
    route = ctx.route
    assert route is not None
    hooks = route.hooks
    if hooks is None or not hooks.early:
        return None
    return runner.run_early(ctx, hooks)
