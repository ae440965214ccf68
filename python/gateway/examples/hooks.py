"""The hook `gateway demo` ships (docs/hooks.md): a tenant check in plain Python.

On the demo's route ``/t/:tenant/:path*`` (session auth), the token's ``tenant`` claim must be the
``:tenant`` in the path: otherwise 403, before the origin is asked. When it is, the origin is told
the tenant in ``X-Tenant`` (a client's own X-Tenant never gets through).
"""

import gateway


@gateway.hook("request")  # after auth: the verified claims are there
async def tenant(req: gateway.HookRequest) -> gateway.Respond | gateway.Forward:
    if req.claims.get("tenant") != req.params.get("tenant"):
        return gateway.Respond(403, json={"error": "wrong_tenant"})
    return gateway.Forward(set_headers={"X-Tenant": req.claims["tenant"]})
