"""Serve a ceiling app ("floor") the way `gateway serve` serves the gateway: with exactly the Granian
options `gateway serve --config CONFIG` would use (captured from the gateway's own CLI, so the floors
follow any change to them) and the gateway worker's GC settings (gateway.app.create_app), so that a
floor differs from the gateway only by what the app does per request.

    python -m benches.load.peers.granian_serve benches.load.peers.granian_floor:app --config gateway.toml --port 8001

The options are captured in a child process: Granian forks its workers, and a floor's worker must not
inherit the gateway's modules (granian-floor runs no gateway code; the suite checks its memory map).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import enum
import gc
import importlib
import io
import json
import os
import subprocess
import sys
from typing import Any

APP_ENV = "BENCH_FLOOR_APP"
# Granian arguments that say what and where to serve: the floor's own, not copied from the gateway.
OWN = {"target", "address", "port", "workers", "factory"}


async def lifespan(receive: Any, send: Any) -> None:
    """The ASGI lifespan protocol for a floor app: nothing to start or stop."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


def create_app() -> Any:
    """Granian factory, run in each worker: the app named by $BENCH_FLOOR_APP, with the gateway's GC settings."""
    module, _, attr = os.environ[APP_ENV].partition(":")
    app = getattr(importlib.import_module(module), attr)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    return app


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _load(name: str) -> Any:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def _encode(v: Any) -> Any:
    if isinstance(v, enum.Enum):
        return {"enum": _name(type(v)), "value": v.value}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {"dataclass": _name(type(v)), "fields": dataclasses.asdict(v)}
    return v


def _decode(v: Any) -> Any:
    if isinstance(v, dict) and "enum" in v:
        return _load(v["enum"])(v["value"])
    if isinstance(v, dict) and "dataclass" in v:
        return _load(v["dataclass"])(**v["fields"])
    return v


def gateway_serve_options(config: str) -> dict[str, Any]:
    """The keyword arguments `gateway serve --config CONFIG` passes to Granian (JSON-able), found by running
    the gateway's CLI with granian.Granian replaced by a recorder. Changes this process's environment."""
    import granian
    from gateway.cli import main as gateway_main

    seen: dict[str, Any] = {}

    class Recorder:
        def __init__(self, target: str, **kwargs: Any) -> None:
            seen.update(kwargs)

        def on_startup(self, hook: Any) -> Any:  # gateway serve says "serving" from this hook
            return hook

        def serve(self) -> None:
            pass

    granian.Granian = Recorder  # type: ignore[misc, assignment]
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.suppress(SystemExit):
        gateway_main(["serve", "--config", config])
    if not seen:
        raise RuntimeError(f"`gateway serve --config {config}` did not construct a granian.Granian, so its options are unknown: {said.getvalue().strip()}")
    return {k: _encode(_without_gateway_code(k, v)) for k, v in seen.items() if k not in OWN}


def _without_gateway_code(option: str, value: Any) -> Any:
    """The logging set-up minus filters that live in the gateway's package: a floor must not load it
    (importing anything under `gateway` loads the core), and no floor raises what they filter."""
    if option != "log_dictconfig" or not isinstance(value, dict):
        return value
    cfg = copy.deepcopy(value)
    ours = {name for name, f in cfg.get("filters", {}).items() if str(f.get("()", "")).startswith("gateway.")}
    for name in ours:
        del cfg["filters"][name]
    for handler in cfg.get("handlers", {}).values():
        if "filters" in handler:
            handler["filters"] = [f for f in handler["filters"] if f not in ours]
    return cfg


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benches.load.peers.granian_serve", description=__doc__)
    ap.add_argument("app", nargs="?", help="module:attribute of an ASGI app")
    ap.add_argument("--config", required=True, help="a gateway config: serve with the Granian options `gateway serve` uses for it")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--print-options", action="store_true", help="print the captured options as JSON and exit")
    a = ap.parse_args(argv)
    if a.print_options:
        print(json.dumps(gateway_serve_options(a.config)))
        return
    if not a.app:
        ap.error("the app (module:attribute) is required")
    out = subprocess.run([sys.executable, "-m", __spec__.name, "--print-options", "--config", a.config], check=True, capture_output=True, text=True).stdout
    options = {k: _decode(v) for k, v in json.loads(out).items()}
    print(f"granian_serve: {a.app} on {a.host}:{a.port}, {a.workers} worker(s), gateway serve's options: {options}", file=sys.stderr, flush=True)
    os.environ[APP_ENV] = a.app
    from granian import Granian

    Granian(f"{__spec__.name}:create_app", address=a.host, port=a.port, workers=a.workers, factory=True, **options).serve()


if __name__ == "__main__":
    main()
