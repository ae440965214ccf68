"""Stage 5, experiment: the visitor's A/B variant, pinned by a cookie.

A cookie naming a known variant keeps it; otherwise a variant is drawn by weight and set in a cookie
(``max_age``). The variant can be sent to the origin in the experiment's ``header``.
"""

from __future__ import annotations

from bisect import bisect

from gateway import _core
from gateway.context import RequestContext
from gateway.respond import Answer

NAME = "experiment"


def run(ctx: RequestContext) -> Answer | None:
    route = ctx.route
    assert route is not None
    if not route.experiment:
        return None
    exp = ctx.config.experiments[route.experiment]
    current = ctx.request.cookie(exp.cookie)
    if current in exp.variants:
        variant = current
        drawn = False
    else:
        # random.choices with cum_weights, without its per-call set-up: a bisection of one draw.
        weights = exp.cum_weights
        variant = exp.variants[bisect(weights, ctx.rng.random() * weights[-1], 0, len(weights) - 1)]
        ctx.set_cookies.append(_core.set_cookie(exp.cookie, variant, max_age=exp.max_age))
        drawn = True
    ctx.variant = variant
    ctx.experiments = {exp.name: variant}
    if exp.header:
        ctx.set_headers[exp.header] = variant
    if ctx.trace is not None:
        ctx.note(NAME, f"{exp.name}: {variant} " + ("(drawn by weight; cookie set)" if drawn else f"(kept from cookie {exp.cookie})"))
    return None
