"""The stages of a request, one module each, in the order `gateway.pipeline.STAGES` runs them.

Each module has ``NAME`` and ``run(ctx)``: it reads and writes the `RequestContext` and returns
``None`` to go on, or an `Answer` that ends the request. ``run`` is a coroutine function only where
the stage may wait on I/O (the headers stage's KV lookups). A synchronous ``run`` may instead hand
back an awaitable of its result when, for this request only, it has to wait (the hook stages, on
routes that list hooks), so the requests that need no waiting pay for no coroutine.
"""
