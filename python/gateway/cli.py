"""The `gateway` command: serve, demo, check, explain, token."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import copy
import errno
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from gateway import _core
from gateway.config import ConfigError, load, parse_duration


class UsageError(Exception):
    """A wrong command line: main() prints it as one line and exits 2, as argparse does."""


class StartupError(Exception):
    """Something outside the command line stops the gateway from starting: main() prints it as one
    line and exits 1."""


class CannotListen(StartupError):
    """The address cannot be listened on."""


def _split_listen(listen: str, flag: str = "--listen") -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{flag} must be HOST:PORT with a port from 1 to 65535, got {listen!r}")
    return host, int(port)


def _address_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# What to do about the errors a user can meet when starting the gateway, by errno.
_LISTEN_HINTS = {
    errno.EADDRINUSE: "is another gateway running? use {flag}",
    errno.EACCES: "ports below 1024 need privileges; use {flag}",
    errno.EADDRNOTAVAIL: "not an address of this machine; use {flag}",
}


def _cannot_listen(host: str, port: int, code: int | None, text: str, flag: str) -> CannotListen:
    text = text[:1].lower() + text[1:]
    hint = _LISTEN_HINTS.get(code or 0, "use {flag}").format(flag=flag)
    return CannotListen(f"cannot listen on {_address_text(host, port)}: {text} ({hint})")


def _check_listen(host: str, port: int, flag: str = "--listen") -> str:
    """The IP address to hand to Granian for `host`, after making sure it can be listened on now.

    Binds (and closes) a socket the way a listener would: without SO_REUSEPORT, so a port held by
    another gateway (Granian binds with SO_REUSEPORT, and a second one would silently share the port
    with the first) counts as busy; with SO_REUSEADDR, so a port with connections still in TIME_WAIT
    from a gateway that just stopped does not. Raises CannotListen with the reason in words.
    """
    try:
        ipaddress.ip_address(host)
        candidates = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICHOST)
    except ValueError:
        try:
            candidates = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as e:
            raise _cannot_listen(host, port, None, f"cannot resolve the host name ({e.strerror})", flag) from None
    except socket.gaierror as e:
        raise _cannot_listen(host, port, None, str(e.strerror), flag) from None
    # Granian takes one IP address: a name that resolves to several gets its IPv4 one if it has one.
    family, kind, proto, _, address = min(candidates, key=lambda c: c[0] != socket.AF_INET)
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
            s.listen(1)
        except OSError as e:
            raise _cannot_listen(host, port, e.errno, e.strerror or str(e), flag) from None
    return str(address[0])


def _granian_bind_error(e: BaseException, host: str, port: int) -> CannotListen | None:
    """Granian's own bind failure (the port was taken after _check_listen looked), as one line.

    Granian raises RuntimeError("Address already in use (os error 98)") with a Rust backtrace after it.
    """
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    m = re.search(r"\(os error (\d+)\)", first)
    if m is None:
        return None
    code = int(m.group(1))
    return _cannot_listen(host, port, code, os.strerror(code), "--listen")


def _load_or_exit(path: str, refusing: str = "not serving") -> Any:
    try:
        return load(path)
    except ConfigError as e:
        problems = e.problems
    for line in problems:
        print(line, file=sys.stderr)
    print(f"gateway: {len(problems)} problem(s) in {path}; {refusing}", file=sys.stderr)
    raise SystemExit(1)


def cmd_serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UsageError(f"--workers must be 1 or more, got {args.workers}")
    from granian.constants import Interfaces, Loops, RuntimeModes
    from granian.http import HTTP1Settings

    from gateway.listener import listener_options

    config = _load_or_exit(args.config)
    # Things that load but probably do not do what was meant.
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    host, port = _split_listen(args.listen, "--listen") if args.listen else _split_listen(config.server.listen, "server.listen")
    bind = _check_listen(host, port)
    os.environ["GATEWAY_CONFIG"] = str(Path(args.config).resolve())
    # The last config that validated, so a bad edit + SIGHUP keeps the old rules serving.
    snapshot_dir = Path(tempfile.mkdtemp(prefix="gateway-config-"))
    atexit.register(shutil.rmtree, snapshot_dir, True)
    snapshot = snapshot_dir / "last-good.toml"
    snapshot.write_text(Path(args.config).read_text(encoding="utf-8"), encoding="utf-8")
    os.environ["GATEWAY_CONFIG_SNAPSHOT"] = str(snapshot)

    # Granian reads request heads into a buffer of its own (408 KiB by default) and answers a bare 431
    # past it, before the app sees anything: size it so `max_header_bytes` is the limit that applies.
    http1_buffer = max(HTTP1Settings().max_buffer_size, config.server.max_header_bytes + 64 * 1024)
    os.environ["GATEWAY_HTTP1_BUFFER"] = str(http1_buffer)
    # [server] io_threads reaches the core's upstream I/O runtime, built in each worker after the
    # fork, through the environment the workers inherit (an internal channel, like the two above).
    os.environ["GATEWAY_IO_THREADS"] = str(config.server.io_threads)
    # Rate limits with store = "memory" count in one fixed-size table per instance, made here before
    # the workers start and mapped by each of them (always made: a reload may add such a limit).
    from gateway import limits

    try:
        os.environ[limits.TABLE_ENV] = str(limits.create_instance_table())
    except OSError as e:
        raise StartupError(f"rate limits: {e}") from None
    metrics_at = _start_metrics(config.server.metrics_listen, (host, port))


    server = _server_class()(
        "gateway.app:create_app",
        address=bind,
        port=port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        factory=True,
        http1_settings=HTTP1Settings(max_buffer_size=http1_buffer),
        loop=Loops.auto,
        runtime_mode=RuntimeModes(config.server.runtime_mode),
        backlog=2048,
        respawn_interval=1.0,
        respawn_failed_workers=True,
        log_access=False,
        log_enabled=True,
        log_dictconfig=_log_config(),
        # TLS, HTTP/2, WebSockets and the SIGTERM drain bound: gateway.listener.
        **listener_options(config.server, http1_buffer),
    )

    def serving() -> None:
        print(
            f"gateway: serving {args.config} on {'https' if config.server.tls_cert else 'http'}://{_address_text(host, port)} with {args.workers} worker(s); kill -HUP {os.getpid()} reloads the config",
            file=sys.stderr,
            flush=True,
        )
        if metrics_at:
            print(f"gateway: metrics at http://{metrics_at}/metrics", file=sys.stderr, flush=True)

    # Granian runs its start-up hooks once it holds the port: say "serving" only then.
    server.on_startup(serving)
    try:
        server.serve()
    except (RuntimeError, OSError) as e:
        problem = _granian_bind_error(e, host, port)
        if problem is None:
            raise
        raise problem from None
    return 0


def _start_metrics(listen: str | None, serving: tuple[str, int]) -> str | None:
    """`[server] metrics_listen`: a fresh private directory for the workers' metric files (removed
    at exit) and the /metrics listener, a thread of this process (see gateway.metrics). Returns the
    address it listens on, or None when metrics are off."""
    from gateway import metrics

    if listen is None:
        os.environ.pop(metrics.DIR_ENV, None)
        return None
    host, port = _split_listen(listen, "server.metrics_listen")
    if port == serving[1] and host == serving[0]:
        raise UsageError(f"server.metrics_listen {listen} is the address the gateway serves on; give metrics a listener of their own")
    bind = _check_listen(host, port, "server.metrics_listen")
    directory = metrics.make_directory()
    atexit.register(shutil.rmtree, directory, True)
    # Before anything imports prometheus_client: it picks per-process files from this at import.
    os.environ[metrics.DIR_ENV] = directory
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        metrics.start_listener(bind, port, directory)
    except OSError as e:
        raise _cannot_listen(host, port, e.errno, e.strerror or str(e), "server.metrics_listen") from None
    return _address_text(host, port)


def _log_config() -> dict[str, Any]:
    """Granian's logging set-up (its lines on stdout, as before) plus the gateway's: the `gateway`
    loggers at INFO and everything else at WARNING, as `TIME LEVEL NAME: message` on stderr.

    Granian applies it in the main process and in every worker, before the app is built.
    """
    from granian.log import LOGGING_CONFIG

    cfg: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    cfg["formatters"]["gateway"] = {"()": "logging.Formatter", "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    cfg["handlers"]["gateway"] = {"formatter": "gateway", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    cfg["root"] = {"level": "WARNING", "handlers": ["gateway"]}
    cfg["loggers"]["gateway"] = {"level": "INFO"}
    # A response the origin broke off is cut by raising; the gateway logs it, rate-limited.
    cfg.setdefault("filters", {})["quiet_origin_broke_off"] = {"()": "gateway.proxy.http.QuietOriginBrokeOff"}
    cfg["handlers"]["console"]["filters"] = ["quiet_origin_broke_off"]
    return cfg


def _server_class() -> Any:
    """Granian, with SIGHUP turned into an in-process config reload in every worker.

    Granian's own SIGHUP restarts the workers, and a stopping worker closes its idle keep-alive
    connections: a request already on the wire to one of them fails (measured by
    tests/test_reload.py). Reloading inside the running workers closes nothing.
    """
    from granian import Granian

    class Server(Granian):  # type: ignore[misc, valid-type]
        def _reload(self, spawn_target: Any, target_loader: Any) -> None:
            self.reload_signal = False
            self.main_loop_interrupt.clear()
            for worker in list(self.wrks):
                pid = worker._id()
                if pid:
                    try:
                        os.kill(pid, signal.SIGUSR1)
                    except ProcessLookupError:
                        pass

    return Server


def cmd_check(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
    except ConfigError as e:
        for line in e.problems:
            print(line)
        return 1
    # Warnings are worth reading but never a reason to refuse: check still exits 0.
    for warning in config.warnings:
        print(f"warning: {warning}")
    hooks = f", {len(config.hooks.hooks)} hooks from {config.hooks.module}" if config.hooks is not None else ""
    print(f"{args.config}: ok ({len(config.routes)} routes, {len(config.origins)} origins, {len(config.auth)} auth policies{hooks})")
    from gateway.key_sources import describe

    for name, policy in config.auth.items():
        if policy.key_source is not None:
            print(f"  auth.{name}: {describe(policy.key_source)}")
    return 0


def _parse_headers(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for h in values:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise SystemExit(f"gateway: -H must be 'Name: value', got {h!r}")
        out.append((name.strip().lower(), value.strip()))
    return out


def explain(config: Any, method: str, url: str, headers: list[tuple[str, str]], peer: str) -> dict[str, Any]:
    """What serve would do with this request: the pipeline's own stages run in dry-run mode
    (gateway.pipeline.explain), so the two cannot disagree. Header values are given as text and
    sent as UTF-8, as a client would."""
    from gateway import pipeline
    from gateway.kv import KVStore
    from gateway.request import from_url
    from gateway.stages.correlation import correlation_header_texts

    request = from_url(method, url, headers, peer)

    async def run() -> Any:
        kv = KVStore(config.kv)
        try:
            return await pipeline.explain(config, request, kv)
        finally:
            await kv.close()

    ctx = asyncio.run(run())
    answer = ctx.answer
    action = "proxy" if answer is None else "redirect" if answer.kind == "redirect" else "respond"
    result: dict[str, Any] = {
        "method": request.method,
        "raw_path": request.raw_path.decode("latin-1"),
        "normalized_path": ctx.path,
        "route": {"index": ctx.route.index, "match": ctx.route.label()} if ctx.route else None,
        "skipped": list(ctx.skipped),
        "auth": {"policy": ctx.auth_policy, "outcome": ctx.auth_outcome, "reason": ctx.auth_reason, "api_status": ctx.api_choice},
        "cors": {"policy": ctx.route.cors, "decision": ctx.cors_decision} if ctx.route and ctx.route.cors else None,
        "require": {"rules": ctx.route.require.describe(), "outcome": ctx.require_result} if ctx.route and ctx.route.require else None,
        "action": action,
        "status": answer.status if answer is not None else 200,
        "location": answer.header(b"location") if answer is not None else None,
        "origin": ctx.origin.name if ctx.origin else None,
        "upstream_url": ctx.upstream_url if answer is None else None,
        "upstream_host": ctx.upstream_host if answer is None else None,
        "request_headers": {**dict(ctx.set_headers), **dict(correlation_header_texts(ctx))} if answer is None else {},
        "removed_headers": ctx.drop_headers.names() if ctx.drop_headers else [],
        "response_headers": {},
        "set_cookies": ctx.set_cookies,
        "context": {"country": ctx.country, "lang": ctx.lang, "variant": ctx.variant, "params": dict(ctx.params)},
        "stages": [{"stage": stage, "why": why} for stage, why in ctx.trace or ()],
        # What each early and request hook returned (or how it failed), in the order they ran; the
        # response hooks need the origin's answer, so explain only names them.
        "hooks": list(ctx.hook_trace),
        "response_hooks": [h.name for h in ctx.route.hooks.response] if ctx.route and ctx.route.hooks else [],
    }
    # The CORS decision's headers, as serve adds them to whatever answers (gateway.cors.merge_headers).
    from gateway.cors import expose_answer_headers, merge_headers

    cors_decision = expose_answer_headers(ctx.cors_headers, answer.headers) if answer is not None else ctx.cors_headers
    cors_headers = {_CORS_NAMES.get(k, k.decode("latin-1")): v.decode("latin-1") for k, v in cors_decision}
    if answer is not None and answer.kind == "hook":
        # A hook's own answer: its headers and body as serve sends them — merged with the CORS
        # decision as send_answer merges them (a hook's own Access-Control-* dropped, one Vary).
        merged = merge_headers(list(answer.headers), cors_decision) if cors_decision else answer.headers
        result["response_headers"] = {_CORS_NAMES.get(k, k.decode("latin-1")): v.decode("utf-8", "replace") for k, v in merged}
        result["body"] = answer.body.decode("utf-8", "replace")
        return result
    if answer is not None:
        result["response_headers"] = {k: v for k, v in (("Location", answer.header(b"location")), ("WWW-Authenticate", answer.header(b"www-authenticate")), ("Retry-After", answer.header(b"retry-after"))) if v}
        result["response_headers"].update(cors_headers)
        if answer.kind not in ("redirect", "health", "preflight"):
            result["error"] = {"kind": answer.kind, "detail": answer.detail}
        return result
    # The names as the config spells them (serve sends them lower-case, as ASGI asks).
    names = [name for name, _ in ctx.route.response_headers] if ctx.route else []
    result["response_headers"] = {name: v.decode("utf-8", "replace") for name, (_, v) in zip(names, ctx.response_headers)}
    result["response_headers"].update(cors_headers)
    # Wire bytes, for people: names are ASCII, values read as UTF-8 (invalid bytes as U+FFFD).
    result["forwarded_headers"] = [(k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in ctx.forward_headers]
    return result


_CORS_NAMES = {
    n.lower().encode(): n
    for n in (
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
        "Access-Control-Expose-Headers",
        "Access-Control-Max-Age",
        "Vary",
    )
}


def _print_explain(r: dict[str, Any]) -> None:
    print(f"{r['method']} {r['raw_path']}")
    for s in r["stages"]:
        print(f"  {s['stage']:<11}: {s['why']}")
    if r["action"] == "proxy":
        print(f"  {'result':<11}: forwarded; the origin's answer is sent on")
    else:
        print(f"  {'result':<11}: {r['action']} {r['status']}" + (f" -> {r['location']}" if r["location"] else "") + (f" ({r['error']['detail']})" if r.get("error") else ""))
    if r["upstream_url"]:
        print(f"  {'origin':<11}: {r['origin']} -> {r['upstream_url']}")
        if not any(k.lower() == "host" for k, _ in r["forwarded_headers"]):
            print(f"  {'sends':<11}: Host: {r['upstream_host']}")
        for k, v in r["forwarded_headers"]:
            print(f"  {'sends':<11}: {k}: {v}")
    for k, v in r["response_headers"].items():
        print(f"  {'responds':<11}: {k}: {v}")
    for c in r["set_cookies"]:
        print(f"  {'set-cookie':<11}: {c}")
    if r.get("body") is not None:
        print(f"  {'body':<11}: {r['body'][:200]}")
    if r.get("response_hooks") and r["action"] == "proxy":
        print(f"  {'then':<11}: response hook(s) {', '.join(r['response_hooks'])} run on the origin's answer (not run by explain)")


def cmd_explain(args: argparse.Namespace) -> int:
    config = _load_or_exit(args.config, "nothing to explain")
    result = explain(config, args.method.upper(), args.url, _parse_headers(args.header), args.peer)
    # The client's token is forwarded to the origin as sent: never print it (gateway/redact.py).
    from gateway import redact

    result = redact.explain_result(result)
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_explain(result)
    return 0


# RFC 7518 §3.2: an HMAC key at least as long as the hash. The core enforces it; this only words the
# refusal for the command line.
HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


# Signed with a private key (`gateway token --key FILE`): RFC 7518 §3.3-3.5 and RFC 8037 §3.1.
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


def mint_token(
    secret: str | dict[str, Any], claims: dict[str, Any], ttl: float, *, algorithm: str = "HS256", allow_weak_key: bool = False, headers: dict[str, Any] | None = None
) -> str:
    """A token for testing: ``secret`` is the HMAC secret (HS*) or the private key (PEM text or a
    JWK dict) for RS/PS/ES/EdDSA; ``sub`` defaults to demo-user, ``iat`` now, ``exp`` now + ttl s."""
    now = int(time.time())
    body = {"sub": "demo-user", "iat": now, "exp": now + int(ttl), **claims}
    if headers:
        return _core.encode(body, secret, algorithm, headers=headers, allow_weak_key=allow_weak_key)
    return _core.encode(body, secret, algorithm, allow_weak_key=allow_weak_key)


def _private_key(path: str) -> tuple[str | dict[str, Any], str | None]:
    """(the private key as PEM text or a JWK dict, the JWK's own kid) from ``--key FILE``; StartupError
    when unreadable. The key's contents are never printed."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError as e:
        raise StartupError(f"--key {path}: cannot read it: {e.strerror}") from None
    if data.lstrip()[:1] == b"{":
        try:
            jwk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise StartupError(f"--key {path}: starts with {{ but is not JSON (expected a private JWK or a PEM private key)") from None
        if not isinstance(jwk, dict):
            raise StartupError(f"--key {path}: expected a private JWK object or a PEM private key")
        kid = jwk.get("kid")
        return jwk, kid if isinstance(kid, str) else None
    try:
        return data.decode("ascii"), None
    except UnicodeDecodeError:
        raise StartupError(f"--key {path}: is not PEM text (expected a PEM private key or a private JWK)") from None


def _signed_duration(text: str) -> float | None:
    """A duration such as 15m, or -1h for one in the past (an expired token)."""
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    seconds = parse_duration(text[1:] if sign < 0 else text)
    return None if seconds is None else sign * seconds


def cmd_token(args: argparse.Namespace) -> int:
    headers: dict[str, Any] = {}
    key: str | dict[str, Any]
    if args.alg in ASYMMETRIC_ALGORITHMS:
        if not args.key:
            raise UsageError(f"--alg {args.alg} signs with a private key: pass --key FILE (a PEM private key or a private JWK)")
        key, jwk_kid = _private_key(args.key)
        if args.kid or jwk_kid:
            headers["kid"] = args.kid or jwk_kid
    else:
        if args.key:
            raise UsageError(f"--key is for RS/PS/ES/EdDSA; {args.alg} signs with the secret in --secret-env")
        if args.kid:
            headers["kid"] = args.kid
        secret = os.environ.get(args.secret_env)
        if not secret:
            print(f"gateway: environment variable {args.secret_env} is not set", file=sys.stderr)
            return 1
        key = secret
    try:
        claims = orjson.loads(args.claims) if args.claims else {}
    except orjson.JSONDecodeError as e:
        print(f"gateway: --claims is not valid JSON: {e}", file=sys.stderr)
        return 1
    if not isinstance(claims, dict):
        print("gateway: --claims must be a JSON object", file=sys.stderr)
        return 1
    ttl = _signed_duration(args.ttl)
    if ttl is None:
        print(f"gateway: --ttl must be a duration such as 15m or 1h (-1h for an expired token), got {args.ttl!r}", file=sys.stderr)
        return 1
    if args.nbf is not None:
        nbf = _signed_duration(args.nbf)
        if nbf is None:
            print(f"gateway: --nbf must be a duration from now such as 10m (-1m for the past), got {args.nbf!r}", file=sys.stderr)
            return 1
        claims["nbf"] = int(time.time() + nbf)
    if args.aud:
        claims["aud"] = args.aud[0] if len(args.aud) == 1 else args.aud
    if args.iss is not None:
        claims["iss"] = args.iss
    try:
        print(mint_token(key, claims, ttl, algorithm=args.alg, allow_weak_key=args.allow_weak_key, headers=headers))
    except (ValueError, TypeError) as e:
        if args.alg in ASYMMETRIC_ALGORITHMS:
            # The core's messages name what is wrong with a key, never its contents.
            print(f"gateway: cannot sign {args.alg} with --key {args.key}: {e}", file=sys.stderr)
        elif getattr(e, "kind", None) == "weak_key" or "allow_weak_key" in str(e):
            need = HMAC_KEY_BYTES.get(args.alg, 32)
            print(
                f"gateway: the secret in {args.secret_env} is {len(str(key).encode())} bytes; {args.alg} needs at least {need} (RFC 7518 §3.2). "
                "Use a longer random secret (e.g. `openssl rand -base64 64`), or pass --allow-weak-key for a throwaway test token",
                file=sys.stderr,
            )
        else:
            print(f"gateway: {e}", file=sys.stderr)
        return 1
    return 0


# Options of `gateway token` whose value may start with "-" (-1h: an expired token), which argparse
# would otherwise take for an option.
_SIGNED_OPTIONS = ("--ttl", "--nbf")


def _join_signed_values(argv: list[str]) -> list[str]:
    """`token --ttl -1h` -> `token --ttl=-1h`, for the options in _SIGNED_OPTIONS only."""
    if "token" not in argv:
        return argv
    out = argv[: argv.index("token") + 1]
    rest = iter(argv[len(out) :])
    for arg in rest:
        if arg in _SIGNED_OPTIONS:
            value = next(rest, None)
            if value is not None and value.startswith("-") and not value.startswith("--"):
                out.append(f"{arg}={value}")
                continue
            out.append(arg)
            if value is not None:
                out.append(value)
            continue
        out.append(arg)
    return out


def _wait_http(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - loopback only
                r.read()
            return True
        except OSError:
            time.sleep(0.1)
    return False


# Where routes added to the example must go: before its catch-all, which would shadow them.
EXAMPLE_CATCH_ALL = '[[routes]]\nmatch = "/:path*"'


def example_config_text(web_port: int, regional_port: int) -> str:
    """The README's example config (python/gateway/examples/gateway.toml) with its two origins moved to
    these loopback ports: what `gateway demo` serves, and what the tests build on."""
    text = (resources.files("gateway") / "examples" / "gateway.toml").read_text()
    text = text.replace("http://127.0.0.1:9000", f"http://127.0.0.1:{web_port}").replace("http://127.0.0.1:9001", f"http://127.0.0.1:{regional_port}")
    assert EXAMPLE_CATCH_ALL in text
    return text


# What `gateway demo` adds to the example config: its example hook (examples/hooks.py) on a route.
DEMO_HOOKS = """
[hooks]
module = "file:hooks.py"
timeout = "50ms"

[[routes]]
match = "/t/:tenant/:path*"
auth = "session"
hooks = ["tenant"]
origin = "web"

"""


def demo_config_text(web_port: int, regional_port: int) -> str:
    """The example config plus the demo's hook route (before the catch-all, which would shadow it)."""
    text = example_config_text(web_port, regional_port)
    at = text.index(EXAMPLE_CATCH_ALL)
    return text[:at] + DEMO_HOOKS.lstrip("\n") + text[at:]


def cmd_demo(args: argparse.Namespace) -> int:
    host, port = _split_listen(args.listen)
    web, regional = args.origin_port, args.origin_port + 1
    if not 0 < web < 65535:
        raise UsageError(f"--origin-port must be from 1 to 65534 (the regional origin takes the next port), got {web}")
    if port in (web, regional):
        raise UsageError(f"--listen port {port} is also a demo origin port ({web} and {regional}); use another --listen or --origin-port")
    # Everything that can be in the way is checked before anything starts or is printed.
    _check_listen(host, port)
    for p in (web, regional):
        _check_listen("127.0.0.1", p, "--origin-port")
    if not os.environ.get("JWT_SECRET"):
        os.environ["JWT_SECRET"] = secrets.token_urlsafe(48)
    try:
        token = mint_token(os.environ["JWT_SECRET"], {"sub": "demo-user", "tenant": "acme"}, 3600)
    except ValueError:
        raise StartupError(
            f"JWT_SECRET is {len(os.environ['JWT_SECRET'].encode())} bytes; the demo's HS256 policies need at least {HMAC_KEY_BYTES['HS256']}"
            " (unset it and the demo makes a random one)"
        ) from None
    workdir = Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    atexit.register(shutil.rmtree, workdir, True)
    (workdir / "gateway.toml").write_text(demo_config_text(web, regional))
    (workdir / "regions.json").write_text((resources.files("gateway") / "examples" / "regions.json").read_text())
    (workdir / "hooks.py").write_text((resources.files("gateway") / "examples" / "hooks.py").read_text())
    origins = [
        subprocess.Popen([sys.executable, "-m", "gateway.echo", "--listen", f"127.0.0.1:{p}", "--name", name])
        for p, name in ((web, "web"), (regional, "regional"))
    ]

    def stop_origins(*_: Any) -> None:
        for o in origins:
            if o.poll() is None:
                o.terminate()

    atexit.register(stop_origins)
    for p in (web, regional):
        if not _wait_http(f"http://127.0.0.1:{p}/", 10):
            print(f"gateway demo: the demo origin did not start on port {p} (is it in use? try --origin-port)", file=sys.stderr)
            stop_origins()
            return 1
    base = f"http://{_address_text(host, port)}"
    print(
        f"""
gateway demo: the example config ({workdir / 'gateway.toml'}) in front of a demo origin that echoes
every request as JSON. A valid token for the session and api policies (1 hour, tenant "acme"):

  {token}

Try:
  curl -i {base}/dashboard                                   # no token: 302 to /login?next=...
  curl -i -H 'Authorization: Bearer {token}' {base}/dashboard/settings   # verified, X-User-Id forwarded
  curl -i -H 'cf-ipcountry: KR' {base}/products              # rewritten to /ko/products, A/B cookie set
  curl -i -H 'Authorization: Bearer {token}' {base}/t/acme/orders   # a Python hook ({workdir / 'hooks.py'}): tenant checked, X-Tenant forwarded

Ctrl-C stops everything.
""",
        flush=True,
    )
    serve_args = argparse.Namespace(config=str(workdir / "gateway.toml"), listen=_address_text(host, port), workers=1)
    def stop(*_: Any) -> None:
        stop_origins()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        return cmd_serve(serve_args)
    finally:
        stop_origins()


def _algorithm_name(text: str) -> str:
    """--alg case-insensitively: hs256 -> HS256, eddsa -> EdDSA (RFC 8037's spelling)."""
    return "EdDSA" if text.lower() == "eddsa" else text.upper()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="An auth-and-routing HTTP gateway configured by one TOML file.")
    parser.add_argument("--version", action="version", version=f"gateway {_core.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="serve a config")
    p.add_argument("--config", required=True, help="path to gateway.toml")
    p.add_argument("--listen", help="HOST:PORT (default: [server].listen)")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the port (default 1)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="the example config in front of a bundled demo origin")
    p.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (default 127.0.0.1:8080)")
    p.add_argument("--origin-port", type=int, default=9000, help="port of the demo origin (the regional one uses the next port)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check", help="validate a config without serving")
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("explain", help="what the gateway would do with a request, without sending it")
    p.add_argument("--config", required=True)
    p.add_argument("--method", "-X", default="GET")
    p.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (repeatable)")
    p.add_argument("--peer", default="127.0.0.1", help="the client address the request comes from (default 127.0.0.1)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("url", help="http://host/path?query, host/path?query, or /path?query (Host: localhost)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("token", help="mint a token for testing: HS* from a secret, RS/PS/ES/EdDSA from a private key file")
    p.add_argument("--secret-env", default="JWT_SECRET", help="environment variable holding the secret (default JWT_SECRET)")
    p.add_argument("--claims", help="extra claims as a JSON object (sub defaults to demo-user)")
    p.add_argument("--ttl", default="1h", help="lifetime, e.g. 15m, 1h (default 1h); negative for an expired token, e.g. -1h")
    p.add_argument("--aud", action="append", help="audience (repeatable: several make a list)")
    p.add_argument("--iss", help="issuer")
    p.add_argument("--nbf", help="not valid before now plus this duration, e.g. 10m (or -1m)")
    p.add_argument("--alg", default="HS256", type=_algorithm_name, choices=[*sorted(HMAC_KEY_BYTES), *ASYMMETRIC_ALGORITHMS], help="signing algorithm (default HS256)")
    p.add_argument("--key", help="private key file for RS/PS/ES/EdDSA: PEM (PKCS#8, PKCS#1 RSA, SEC1 EC) or a private JWK")
    p.add_argument("--kid", help="the kid header (default: the JWK's own kid, if --key is a JWK)")
    p.add_argument("--allow-weak-key", action="store_true", help="accept a secret shorter than the algorithm needs (throwaway tokens only)")
    p.set_defaults(func=cmd_token)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(_join_signed_values(sys.argv[1:] if argv is None else argv))
    try:
        code = args.func(args)
    except UsageError as e:
        print(f"gateway {args.command}: {e}", file=sys.stderr)
        code = 2
    except StartupError as e:
        print(f"gateway: {e}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:  # Ctrl-C before Granian took over its signals (e.g. while the demo starts)
        code = 130
    raise SystemExit(code)
