"""The request-hooks stage: the route's ``@gateway.hook("request")`` functions, after auth, locale
and the experiment, before the headers stage builds what the origin is sent.

They see everything the early hooks do plus the verified claims, country, language and variants,
and may answer (`gateway.Respond`) or change the forward (`gateway.Forward`: request headers, the
upstream path, another configured origin, Set-Cookies). Because the headers stage runs after them,
its rules hold whatever a hook returned: the client's copies of headers a hook sets or removes are
dropped, and X-Forwarded-* are the gateway's own. Routes without request hooks pay one attribute
check. See `gateway.hooks.runner` and docs/hooks.md.
"""

from __future__ import annotations

from collections.abc import Awaitable

from gateway.context import RequestContext
from gateway.hooks import runner
from gateway.respond import Answer

NAME = "request hooks"


def run(ctx: RequestContext) -> Answer | Awaitable[Answer | None] | None:
    route = ctx.route
    assert route is not None
    hooks = route.hooks
    if hooks is None or not hooks.request:
        return None
    return runner.run_request(ctx, hooks)
