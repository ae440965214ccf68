"""Running a route's hooks at a stage and applying what they return.

One `HookRequest` snapshot is made per stage (only on routes that list hooks at that stage); each
hook of the stage gets it, in the route's order. A hook's value is checked whole before anything of
it is applied, so a value the gateway refuses changes nothing. The rules of the headers stage hold
after every hook: a hook can neither set nor remove a header the gateway manages (Host, framing,
hop-by-hop, X-Forwarded-*, Forwarded, X-Real-IP, Cookie/Authorization may only be removed) nor set a
forwarded-claim header, and the snapshot never shows a client's copy of one.

Timeouts: an ``async`` hook is cancelled at ``[hooks] timeout``. A coroutine that finishes without
waiting on anything (most hooks: pure decisions) is run to its end in place, like a sync hook, with
no timer armed; only one that really waits runs under ``asyncio.timeout``. A sync hook cannot be
interrupted: one over the timeout is logged (rate-limited) and its value used.

Failures (an exception, a timeout, a value the gateway refuses) follow ``[hooks] on_error``: ``deny``
answers 500 ``hook_failed``, ``allow`` goes on as if the hook returned None. Each is logged with its
traceback, at most once per hook per `LOG_INTERVAL` seconds (then a count of those not logged).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

import orjson

from gateway import _core, respond
from gateway.config.model import FORWARDING_HEADERS, HOP_BY_HOP, MANAGED_HEADERS, NEVER_FORWARDED, Server, header_key
from gateway.hooks.api import Forward, HookRequest, HookResponse, Headers, Respond, ResponseChanges, _StageSnapshot, describe
from gateway.respond import Answer

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.hooks.loader import Hook, RouteHooks

log = logging.getLogger("gateway.hooks")

LOG_INTERVAL = 10.0
HOOK_FAILED_DETAIL = "a hook failed on this request"
# What a hook may not touch in the request sent to the origin: framing, Host, hop-by-hop and the
# forwarding headers are the gateway's own; Cookie and Authorization may be removed, not set.
REQUEST_UNSETTABLE = MANAGED_HEADERS
REQUEST_UNREMOVABLE = NEVER_FORWARDED | {"host", "content-length"}
# ... and in the response to the client: the gateway frames the body; Set-Cookie goes in set_cookies.
RESPONSE_UNSETTABLE = HOP_BY_HOP | {"content-length", "set-cookie"}
RESPONSE_UNREMOVABLE = HOP_BY_HOP | {"content-length"}
RESPOND_UNSETTABLE = HOP_BY_HOP | {"content-length"}
ACCEPTS = {
    "early": (Respond,),
    "request": (Respond, Forward),
    "response": (ResponseChanges,),
}
_VALUE_TYPES = (Respond, Forward, ResponseChanges)
_COROUTINE = types.CoroutineType
_new = object.__new__
_ACCEPTS_TEXT = {stage: " or ".join(["None", *(f"gateway.{t.__name__}" for t in types_)]) for stage, types_ in ACCEPTS.items()}


class HookFailed(Exception):
    """A hook's value the gateway refuses (the message names the hook and what it returned)."""


class HookTimeout(TimeoutError):
    """A hook was cancelled at ``[hooks] timeout`` (chained to where it was waiting)."""


class _Limiter:
    """At most one log record per key per `LOG_INTERVAL` seconds; the rest are counted."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def allow(self, key: str) -> tuple[bool, int]:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < LOG_INTERVAL:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False, 0
        self._last[key] = now
        return True, self._dropped.pop(key, 0)


_limiter = _Limiter()


def _log(hook: Hook, level: int, msg: str, exc: BaseException | None = None) -> None:
    ok, dropped = _limiter.allow(f"{hook.name}:{level}")
    if not ok:
        return
    if dropped:
        msg += f" ({dropped} more like it in the last {LOG_INTERVAL:g}s not logged)"
    log.log(level, "%s", msg, exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None)


# --------------------------------------------------------------------------------------------
# calling one hook
# --------------------------------------------------------------------------------------------


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], first: Any) -> Generator[Any, Any, Any]:
    """Goes on with a coroutine whose first step (run in place) yielded ``first``, as ``await`` would."""
    pending = first
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as e:  # a cancellation (the timeout) or anything thrown in: pass it on
            try:
                pending = coro.throw(e)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def _timed_out(hook: Hook, timeout: float) -> HookTimeout:
    return HookTimeout(f"hook {hook.name!r} did not finish within {_ms(timeout)} (cancelled)")


async def _waited(hook: Hook, coro: Coroutine[Any, Any, Any], first: Any, started: float, timeout: float) -> Any:
    """The rest of a coroutine hook whose first step (run in place) waits on ``first``; cancelled at
    the timeout, counted from when the hook was called."""
    remaining = timeout - (time.perf_counter() - started)
    if remaining <= 0:
        coro.close()
        raise _timed_out(hook, timeout)
    try:
        async with asyncio.timeout(remaining) as deadline:
            value = await _resume(coro, first)
    except TimeoutError as e:
        if time.perf_counter() - started >= timeout:
            # Chained: the traceback shows where in the hook it was waiting when cancelled.
            raise _timed_out(hook, timeout) from e
        raise
    if deadline.expired():
        # The hook caught the cancellation and went on to return a value: late, so not used — a
        # hook cannot opt out of [hooks] timeout (and on_error applies, as to any timeout).
        raise _timed_out(hook, timeout)
    return value


async def _awaited(hook: Hook, value: Awaitable[Any], timeout: float) -> Any:
    """A hook that returned another kind of awaitable (e.g. a callable object with an async __call__)."""
    try:
        async with asyncio.timeout(timeout) as deadline:
            result = await value
    except TimeoutError as e:
        raise _timed_out(hook, timeout) from e
    if deadline.expired():  # it swallowed the cancellation (see _waited)
        raise _timed_out(hook, timeout)
    return result


def _overran(hook: Hook, elapsed: float, timeout: float) -> None:
    _log(hook, logging.WARNING, f"hook {hook.name!r} took {_ms(elapsed)}, over [hooks] timeout {_ms(timeout)}; it ran to its end (only an async hook that awaits can be cancelled)")


async def call(hook: Hook, args: tuple[Any, ...], timeout: float) -> Any:
    """The hook's value; raises what the hook raised, or TimeoutError when it was cancelled."""
    started = time.perf_counter()
    value = hook.fn(*args)
    if type(value) is types.CoroutineType:
        try:
            first = value.send(None)
        except StopIteration as stop:
            value = stop.value
        else:
            return await _waited(hook, value, first, started, timeout)
    elif value is not None and type(value) not in _VALUE_TYPES and inspect.isawaitable(value):
        return await _awaited(hook, value, timeout)
    elapsed = time.perf_counter() - started
    if elapsed > timeout:
        _overran(hook, elapsed, timeout)
    return value


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds >= 0.001 else f"{seconds * 1000:.2f}ms"


def _returned(value: Any) -> str:
    """What a hook returned, for a message: its type, never its contents (they may hold secrets)."""
    return "None" if value is None else f"a {type(value).__module__}.{type(value).__qualname__}" if type(value).__module__ != "builtins" else f"a {type(value).__name__}"


async def _run(ctx: RequestContext, hook: Hook, stage: str, args: tuple[Any, ...], rh: RouteHooks) -> tuple[bool, Any]:
    """(ok, value): the hook's checked value, or (False, None) after a failure was handled."""
    try:
        value = await call(hook, args, rh.timeout)
        if value is not None and not isinstance(value, ACCEPTS[stage]):
            raise HookFailed(f"hook {hook.name!r} ({stage}) returned {_returned(value)}; expected {_ACCEPTS_TEXT[stage]}")
        return True, value
    except asyncio.CancelledError:
        raise  # the request itself was cancelled (the client went away): not the hook's failure
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a hook's fault (even sys.exit()) must never become the gateway's
        _failed(ctx, hook, stage, e, rh)
        return False, None


def _failed(ctx: RequestContext, hook: Hook, stage: str, e: BaseException, rh: RouteHooks) -> None:
    action = "answering 500 hook_failed (on_error = deny)" if rh.deny else "going on as if it returned None (on_error = allow)"
    if isinstance(e, HookFailed):
        why = str(e)
        _log(hook, logging.ERROR, f"{why}; {action}")
    elif isinstance(e, HookTimeout):
        why = str(e)
        _log(hook, logging.ERROR, f"{why} on {ctx.request.method} {ctx.path}; {action}", e)
    else:
        why = f"hook {hook.name!r} ({stage}) raised {type(e).__name__}: {e}"
        _log(hook, logging.ERROR, f"{why} on {ctx.request.method} {ctx.path}; {action}", e)
    if ctx.trace is not None:
        ctx.hook_trace.append({"stage": stage, "hook": hook.name, "error": why, "on_error": "deny" if rh.deny else "allow"})
        ctx.note(f"{stage} hooks", f"{why}; {action}")


def _record(ctx: RequestContext, hook: Hook, stage: str, value: Any) -> None:
    assert ctx.trace is not None
    described = describe(value)
    ctx.hook_trace.append({"stage": stage, "hook": hook.name, "returned": described})
    ctx.note(f"{stage} hooks", f"{hook.name} returned {orjson.dumps(described).decode() if described is not None else 'None'}")


# --------------------------------------------------------------------------------------------
# the snapshot
# --------------------------------------------------------------------------------------------


def snapshot(ctx: RequestContext, stage: str) -> HookRequest:
    """The stage's snapshot (api._StageSnapshot): two stores; every field is read when asked for."""
    r: _StageSnapshot = _new(_StageSnapshot)
    r._ctx = ctx
    r._early = stage == "early"
    return r


# --------------------------------------------------------------------------------------------
# the stages
# --------------------------------------------------------------------------------------------


def run_early(ctx: RequestContext, rh: RouteHooks) -> Answer | Awaitable[Answer | None] | None:
    req: _StageSnapshot = _new(_StageSnapshot)  # `snapshot`, inlined: this runs per request
    req._ctx = ctx
    req._early = True
    return _hooks_from(ctx, rh, "early", rh.early, 0, req)


def run_request(ctx: RequestContext, rh: RouteHooks) -> Answer | Awaitable[Answer | None] | None:
    req: _StageSnapshot = _new(_StageSnapshot)
    req._ctx = ctx
    req._early = False
    if rh.response:
        ctx.hook_request = req  # the response hooks see the same snapshot
    return _hooks_from(ctx, rh, "request", rh.request, 0, req)


def _hooks_from(ctx: RequestContext, rh: RouteHooks, stage: str, hooks: tuple[Hook, ...], start: int, req: HookRequest) -> Answer | Awaitable[Answer | None] | None:
    """Runs ``hooks[start:]`` in place: the answer that ends the request, None, or — once a hook
    really waits — an awaitable of the rest. A hook that does not wait costs no event-loop work."""
    timeout = rh.timeout
    for i in range(start, len(hooks)):
        hook = hooks[i]
        started = time.perf_counter()
        try:
            value = hook.fn(req)
            if type(value) is _COROUTINE:
                try:
                    first = value.send(None)
                except StopIteration as stop:
                    value = stop.value
                else:
                    return _rest(ctx, rh, stage, hooks, i, req, _waited(hook, value, first, started, timeout))
            elif value is not None and type(value) not in _VALUE_TYPES and inspect.isawaitable(value):
                return _rest(ctx, rh, stage, hooks, i, req, _awaited(hook, value, timeout))
        except asyncio.CancelledError:
            raise  # the request itself was cancelled (the client went away): not the hook's failure
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a hook's fault (even sys.exit()) must never become the gateway's
            _failed(ctx, hook, stage, e, rh)
            if rh.deny:
                return respond.error("hook_failed", HOOK_FAILED_DETAIL)
            continue
        elapsed = time.perf_counter() - started
        if elapsed > timeout:
            _overran(hook, elapsed, timeout)
        if value is None and ctx.trace is None:
            continue
        ended, answer = _take(ctx, rh, stage, hook, value)
        if ended:
            return answer
    return None


async def _rest(ctx: RequestContext, rh: RouteHooks, stage: str, hooks: tuple[Hook, ...], i: int, req: HookRequest, waiting: Awaitable[Any]) -> Answer | None:
    """Finishes hook ``i``, which waits (under the timeout), then runs the hooks after it."""
    hook = hooks[i]
    try:
        value = await waiting
    except asyncio.CancelledError:
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001
        _failed(ctx, hook, stage, e, rh)
        if rh.deny:
            return respond.error("hook_failed", HOOK_FAILED_DETAIL)
    else:
        ended, answer = _take(ctx, rh, stage, hook, value)
        if ended:
            return answer
    rest = _hooks_from(ctx, rh, stage, hooks, i + 1, req)
    if rest is not None and type(rest) is not Answer:
        return await rest  # type: ignore[misc]
    return rest  # type: ignore[return-value]


def _take(ctx: RequestContext, rh: RouteHooks, stage: str, hook: Hook, value: Any) -> tuple[bool, Answer | None]:
    """Checks and applies a request-side hook's value: (whether the stage ends here, its answer)."""
    try:
        if value is not None and not isinstance(value, ACCEPTS[stage]):
            raise HookFailed(f"hook {hook.name!r} ({stage}) returned {_returned(value)}; expected {_ACCEPTS_TEXT[stage]}")
        answer = None
        if isinstance(value, Respond):
            answer = _answer(hook, stage, value, ctx.config.server)
        elif isinstance(value, Forward):
            _forward(ctx, hook, value)
    except HookFailed as e:
        _failed(ctx, hook, stage, e, rh)
        return (True, respond.error("hook_failed", HOOK_FAILED_DETAIL)) if rh.deny else (False, None)
    if ctx.trace is not None:
        _record(ctx, hook, stage, value)
    return answer is not None, answer


def _answer(hook: Hook, stage: str, value: Respond, server: Server) -> Answer:
    headers: list[tuple[bytes, bytes]] = []
    typed = False
    for name, text in value.headers:
        low = name.lower()
        if low in RESPOND_UNSETTABLE or server.is_request_id(name):
            raise HookFailed(f"hook {hook.name!r} ({stage}) returned a Respond with header {name}, which the gateway sets itself")
        typed = typed or low == "content-type"
        headers.append((low.encode("ascii"), text.encode("utf-8")))
    if value.json is not None:
        try:
            body = orjson.dumps(value.json)
        except TypeError as e:
            raise HookFailed(f"hook {hook.name!r} ({stage}) returned a Respond whose json cannot be encoded as JSON ({e})") from None
        kind = b"application/json"
    elif isinstance(value.body, str):
        body, kind = value.body.encode("utf-8"), b"text/plain; charset=utf-8"
    elif value.body is not None:
        body, kind = value.body, b"application/octet-stream"
    else:
        body, kind = b"", b""
    if not typed and kind:
        headers.insert(0, (b"content-type", kind))
    return Answer(value.status, "hook", f"answered by {stage} hook {hook.name}", headers, body)


def _forward(ctx: RequestContext, hook: Hook, value: Forward) -> None:
    config = ctx.config
    where = f"hook {hook.name!r} (request) returned a Forward"
    for name, _ in value.set_headers:
        # "_" read as "-", as the headers stage drops client headers: an origin behind CGI/WSGI
        # reads X_User_Id as X-User-Id.
        low = header_key(name)
        if low in REQUEST_UNSETTABLE:
            raise HookFailed(f"{where} setting {name}, a header the gateway manages (only it writes {name}; X-Forwarded-* are written from the connection)")
        if low in config.forwarded_claim_headers:
            raise HookFailed(f"{where} setting {name}, which carries a verified claim: only the auth stage sets it")
        if low in config.server.correlation_headers:
            raise HookFailed(f"{where} setting {name}, which [server] request_id or trace sets: the origin, the answer and the log carry one value")
    for name in value.remove_headers:
        low = header_key(name)
        if low in REQUEST_UNREMOVABLE or low in config.server.correlation_headers:
            raise HookFailed(f"{where} removing {name}, a header the gateway manages")
    if value.origin is not None and value.origin not in config.origins:
        raise HookFailed(f"{where} with origin {value.origin!r}, which is not an [origins.NAME] (have: {', '.join(sorted(config.origins))})")
    path = None
    if value.path is not None:
        try:
            path = _core.normalize_path(value.path.encode("utf-8"))
        except ValueError as e:
            raise HookFailed(f"{where} with a path the gateway refuses: {e}") from None
    # Checked whole: now apply it.
    drop = set(ctx.hook_drop)
    set_headers = ctx.set_headers
    for name in value.remove_headers:
        low = name.lower()
        drop.add(low)
        for k in [k for k in set_headers if k.lower() == low]:
            del set_headers[k]
    for name, text in value.set_headers:
        low = name.lower()
        drop.add(low)
        for k in [k for k in set_headers if k.lower() == low]:
            del set_headers[k]
        set_headers[name] = text
    ctx.hook_drop = frozenset(drop)
    if path is not None:
        ctx.upstream_path = path
    if value.origin is not None:
        ctx.origin = config.origins[value.origin]
    if value.set_cookies:
        ctx.set_cookies.extend(value.set_cookies)


async def run_response(ctx: RequestContext, rh: RouteHooks, status: int, out: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | Answer:
    """The response hooks over the head about to be sent: the new header list, or the error to send
    instead (a failure under on_error = deny)."""
    req = ctx.hook_request
    if req is None:
        req = snapshot(ctx, "response")
    resp = HookResponse(status, Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in out))
    for hook in rh.response:
        ok, value = await _run(ctx, hook, "response", (req, resp), rh)
        if ok and value is not None:
            try:
                out = _response_changes(ctx, hook, value, out)
            except HookFailed as e:
                _failed(ctx, hook, "response", e, rh)
                ok = False
            else:
                resp = HookResponse(status, Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in out))
        if not ok and rh.deny:
            return respond.error("hook_failed", HOOK_FAILED_DETAIL)
    return out


def _response_changes(ctx: RequestContext, hook: Hook, value: ResponseChanges, out: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    where = f"hook {hook.name!r} (response) returned a ResponseChanges"
    # The request id the gateway echoes is its own, in any spelling (the access log has that one).
    server = ctx.config.server
    for name, _ in value.set_headers:
        if name.lower() in RESPONSE_UNSETTABLE or server.is_request_id(name):
            raise HookFailed(f"{where} setting {name}, which the gateway manages" + (" (use set_cookies)" if name.lower() == "set-cookie" else ""))
    for name in value.remove_headers:
        if name.lower() in RESPONSE_UNREMOVABLE or server.is_request_id(name):
            raise HookFailed(f"{where} removing {name}, which the gateway manages")
    gone = {n.lower().encode("ascii") for n in value.remove_headers} | {n.lower().encode("ascii") for n, _ in value.set_headers}
    if gone:
        out = [(k, v) for k, v in out if k not in gone]
    out.extend((n.lower().encode("ascii"), v.encode("utf-8")) for n, v in value.set_headers)
    out.extend((b"set-cookie", c.encode("ascii")) for c in value.set_cookies)
    return out


def hidden_headers(forwarded_claims: frozenset[str], geo: frozenset[str]) -> tuple[_core.HeaderNames, _core.HeaderNames]:
    """The client headers a hook's snapshot leaves out, as (for an untrusted peer, for a trusted one):
    forwarded-claim headers always; the forwarding and geo headers unless the peer is trusted."""
    return _core.HeaderNames(forwarded_claims | FORWARDING_HEADERS | geo), _core.HeaderNames(forwarded_claims)
