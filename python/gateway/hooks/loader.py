"""Loading ``[hooks]`` and each route's ``hooks = [...]``: importing the user's module and finding
its ``@gateway.hook`` functions, with every problem reported as ``FILE: key: what (expected)``.

The module is imported by every ``load()`` of the config: so ``gateway check`` imports it, and a
reload (SIGHUP) imports it afresh — a file module is executed again from its file, a dotted module is
``importlib.reload``-ed (its own submodules are not). An import that fails is a config problem: check
exits 1, serve refuses to start, a reload is refused and the previous config (with the previous
module) keeps serving.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from gateway.config.problems import Problems
from gateway.hooks.api import HOOK_ATTRIBUTE, HOOK_STAGES, HookInfo

HOOKS_KEYS = {"module", "timeout", "on_error"}
ON_ERROR = ("deny", "allow")
DEFAULT_TIMEOUT = 0.05  # 50 ms: a hook runs on the request's path, before the origin is asked
DOTTED_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MODULE_EXPECTED = 'expected "file:hooks.py" (relative to the config file) or an importable dotted name such as "mycompany.gateway_hooks"'
# How many arguments a hook of each stage is called with.
ARITY = {"early": 1, "request": 1, "response": 2}
SIGNATURES = {"early": "(req)", "request": "(req)", "response": "(req, resp)"}


@dataclass(frozen=True, slots=True)
class Hook:
    """One ``@gateway.hook`` function as loaded: the name routes use, its stage, the function."""

    name: str
    stage: str
    fn: Callable[..., Any]
    is_async: bool


@dataclass(frozen=True, slots=True)
class HooksConfig:
    """The ``[hooks]`` table: the imported module's hooks by name, the timeout (seconds) and what a
    failing hook does (``deny``: 500 ``hook_failed``; ``allow``: as if it returned None)."""

    module: str
    timeout: float
    on_error: str
    hooks: Mapping[str, Hook]
    module_object: ModuleType | None = field(default=None, repr=False, compare=False)
    # A "file:" module's code as it was imported: what a worker's snapshot of the last good config
    # keeps a copy of (gateway.app._write_snapshot).
    file_source: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class RouteHooks:
    """A route's hooks, split by stage in the order the route lists them (resolved once, at load)."""

    names: tuple[str, ...]
    early: tuple[Hook, ...]
    request: tuple[Hook, ...]
    response: tuple[Hook, ...]
    timeout: float
    deny: bool


def load_hooks(c: Problems, doc: dict[str, Any], base: Path, source: Path | None = None) -> HooksConfig | None:
    """The ``[hooks]`` table with its module imported; None when the config has none (or it failed).

    ``source``: run a ``file:`` module's code from this file instead (a copy of the last one that
    loaded: see gateway.app.load_with_fallback); its ``__file__`` stays the configured path."""
    if "hooks" not in doc:
        return None
    hd = c.table(doc.get("hooks"), "hooks")
    c.known(hd, "hooks", HOOKS_KEYS)
    ref = c.string(hd, "hooks", "module", required=True)
    timeout = c.duration(hd, "hooks", "timeout", DEFAULT_TIMEOUT)
    if timeout is not None and timeout <= 0:
        c.bad("hooks.timeout", f"is {hd.get('timeout')!r}", 'expected a duration above zero such as "50ms"')
        timeout = DEFAULT_TIMEOUT
    on_error = c.string(hd, "hooks", "on_error", default="deny") or "deny"
    if on_error not in ON_ERROR:
        c.bad("hooks.on_error", f"is {on_error!r}", 'expected "deny" (answer 500 hook_failed) or "allow" (go on as if the hook returned None)')
        on_error = "deny"
    if ref is None:
        return None
    imported = _import(c, ref, base, source)
    if imported is None:
        return None
    module, code = imported
    hooks = _collect(c, module)
    return HooksConfig(ref, timeout or DEFAULT_TIMEOUT, on_error, hooks, module, code)


def _import(c: Problems, ref: str, base: Path, source: Path | None = None) -> tuple[ModuleType, bytes | None] | None:
    """The imported module, and for a file module the exact bytes it ran."""
    if ref.startswith("file:"):
        path = Path(ref[5:])
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            c.bad("hooks.module", f"{path} is not a file", MODULE_EXPECTED)
            return None
        if path.suffix != ".py":
            c.bad("hooks.module", f"{path} is not a .py file", MODULE_EXPECTED)
            return None
        # A stable name, so tracebacks and pickling see one module; a re-import replaces it.
        name = "gateway_hooks__" + re.sub(r"\W", "_", path.stem)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None:
            c.bad("hooks.module", f"cannot import {path}", MODULE_EXPECTED)
            return None
        module = importlib.util.module_from_spec(spec)
        previous = sys.modules.get(name)
        try:
            # The bytes are read once and run: a snapshot of them is exactly what ran. With `source`,
            # they come from that copy, while __file__ and tracebacks keep the configured path.
            code = (source or path).read_bytes()
        except OSError as e:
            c.bad("hooks.module", f"cannot read {source or path}: {e.strerror}", MODULE_EXPECTED)
            return None
        sys.modules[name] = module  # dataclasses and typing look their module up while it runs
        try:
            exec(compile(code, str(path), "exec"), module.__dict__)  # noqa: S102 - importing the user's hooks is the point
        except (Exception, SystemExit) as e:  # noqa: BLE001 - any failure of user code is a config problem
            if previous is not None:
                sys.modules[name] = previous
            else:
                sys.modules.pop(name, None)
            c.bad("hooks.module", f"importing {path} failed: {_failure(e, str(path))}", "expected a module that imports cleanly")
            return None
        return module, code
    if not DOTTED_RE.match(ref):
        c.bad("hooks.module", f"is {ref!r}", MODULE_EXPECTED)
        return None
    try:
        loaded = sys.modules.get(ref)
        return (importlib.reload(loaded) if loaded is not None else importlib.import_module(ref)), None
    except ModuleNotFoundError as e:
        if e.name is not None and (ref == e.name or ref.startswith(e.name + ".")):
            c.bad("hooks.module", f"no module named {e.name!r} (sys.path: the working directory and PYTHONPATH)", MODULE_EXPECTED)
        else:
            c.bad("hooks.module", f"importing {ref} failed: {_failure(e, None)}", "expected a module that imports cleanly")
        return None
    except (Exception, SystemExit) as e:  # noqa: BLE001
        c.bad("hooks.module", f"importing {ref} failed: {_failure(e, None)}", "expected a module that imports cleanly")
        return None


def _failure(e: BaseException, path: str | None) -> str:
    """The exception and where in the user's code it happened (file and line), in one line."""
    what = f"{type(e).__name__}: {e}".strip().rstrip(":")
    if isinstance(e, SyntaxError) and e.lineno is not None:
        return f"{type(e).__name__}: {e.msg} (line {e.lineno})"
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if path is None or f.filename == path] or frames
    if ours:
        last = ours[-1]
        return f"{what} (at {Path(last.filename).name} line {last.lineno})"
    return what


def _collect(c: Problems, module: ModuleType) -> dict[str, Hook]:
    hooks: dict[str, Hook] = {}
    seen: set[int] = set()
    for attr, obj in list(vars(module).items()):
        info = getattr(obj, HOOK_ATTRIBUTE, None) if callable(obj) else None
        if not isinstance(info, HookInfo) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if info.name in hooks:
            c.bad("hooks.module", f"two hooks are named {info.name!r} (the second is {attr!r})", "expected one name per hook: gateway.hook(stage, name=...) renames one")
            continue
        if info.stage in ARITY and not _accepts(obj, ARITY[info.stage]):
            c.bad("hooks.module", f"hook {info.name!r} (stage {info.stage!r}) cannot be called as {info.name}{SIGNATURES[info.stage]}", f"expected a function taking {SIGNATURES[info.stage]}")
            continue
        hooks[info.name] = Hook(info.name, info.stage, obj, inspect.iscoroutinefunction(obj))
    return hooks


def _accepts(fn: Callable[..., Any], n: int) -> bool:
    try:
        inspect.signature(fn).bind(*([None] * n))
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (some builtins): let the call decide
        return True
    return True


def route_hooks(c: Problems, key: str, value: Any, cfg: HooksConfig | None, declared: bool) -> RouteHooks | None:
    """A route's ``hooks = ["name", ...]``, resolved to its functions by stage; None when it has none.

    ``declared``: whether the file has a ``[hooks]`` table at all (usable or not), so a route is not
    also blamed for a module that failed to import."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        c.bad(key, f"is {value!r}", 'expected a list of hook names such as ["tenant", "cache_policy"]')
        return None
    if not value:
        return None
    if cfg is None:
        if not declared:
            c.bad(key, "names hooks but there is no [hooks] table", 'expected a [hooks] table with module = "file:hooks.py"')
        return None
    names = tuple(value)
    known = ", ".join(sorted(cfg.hooks)) or f"(no @gateway.hook functions in {cfg.module})"
    by_stage: dict[str, list[Hook]] = {s: [] for s in HOOK_STAGES}
    ok = True
    for i, name in enumerate(names):
        k = f"{key}[{i}]"
        if names.index(name) != i:
            c.bad(k, f"names hook {name!r} twice", "expected each hook once per route")
            ok = False
            continue
        h = cfg.hooks.get(name)
        if h is None:
            c.bad(k, f"names unknown hook {name!r} (not in {cfg.module})", f"expected one of: {known}")
            ok = False
        elif h.stage not in by_stage:
            c.bad(k, f"names hook {name!r} of unknown stage {h.stage!r}", f"expected a hook of stage {', '.join(HOOK_STAGES)} (@gateway.hook(\"request\"))")
            ok = False
        else:
            by_stage[h.stage].append(h)
    if not ok:
        return None
    return RouteHooks(names, tuple(by_stage["early"]), tuple(by_stage["request"]), tuple(by_stage["response"]), cfg.timeout, cfg.on_error == "deny")


def warn_unused(c: Problems, cfg: HooksConfig | None, used: set[str]) -> None:
    """Hooks no route lists, and hooks of an unknown stage: they load, but never run."""
    if cfg is None:
        return
    for name, h in sorted(cfg.hooks.items()):
        if h.stage not in HOOK_STAGES:
            if name not in used:
                c.warn("hooks.module", f"hook {name!r} has unknown stage {h.stage!r}, so it can never run", f"expected one of: {', '.join(HOOK_STAGES)}")
        elif name not in used:
            c.warn("hooks.module", f"hook {name!r} is listed by no route, so it never runs", f'expected hooks = ["{name}"] on the routes it is for')
