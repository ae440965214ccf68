"""Placeholders in header values.

Syntax (documented in the README): ``{country}``, ``{lang}``, ``{variant}`` (the route's
experiment), ``{experiments.NAME}``, ``{claims.NAME}``, ``{params.NAME}``, and KV lookups
``{kv.NS[KEY].FIELD.SUBFIELD}`` where KEY is a literal or itself a placeholder
(``{kv.regions[{country}].currency}``). Any placeholder may end in ``|default``, used when the value
is missing. ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.text import header_text

_SIMPLE = re.compile(r"^(country|lang|variant)$|^(claims|params|experiments)\.([A-Za-z0-9_\-:.]+)$")
_KV = re.compile(r"^kv\.([A-Za-z0-9_\-]+)\[(.*)\]((?:\.[A-Za-z0-9_\-]+)*)$")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
MAX_VALUE = 4096


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Placeholder:
    kind: str  # country | lang | variant | claims | params | experiments | kv
    name: str = ""
    key: Template | None = None  # kv key
    fields: tuple[str, ...] = ()
    default: str | None = None


def _split_default(body: str) -> tuple[str, str | None]:
    # The default follows the last '|' that is outside brackets.
    depth = 0
    for i in range(len(body) - 1, -1, -1):
        ch = body[i]
        if ch in "]}":
            depth += 1
        elif ch in "[{":
            depth -= 1
        elif ch == "|" and depth == 0:
            return body[:i], body[i + 1 :]
    return body, None


class Template:
    __slots__ = ("parts", "needs_kv", "kinds", "source")
    needs_kv: bool
    kinds: frozenset[str]

    def __init__(self, parts: list[str | Placeholder], source: str):
        self.parts = parts
        self.source = source
        self.needs_kv = any(isinstance(p, Placeholder) and (p.kind == "kv" or (p.key is not None and p.key.needs_kv)) for p in parts)
        # Every placeholder kind used, KV keys included ({kv.NS[{country}]} uses kv and country).
        kinds: set[str] = set()
        for p in parts:
            if isinstance(p, Placeholder):
                kinds.add(p.kind)
                if p.key is not None:
                    kinds |= p.key.kinds
        self.kinds = frozenset(kinds)

    @classmethod
    def parse(cls, text: str, names: Mapping[str, set[str]]) -> Template:
        parts: list[str | Placeholder] = []
        buf: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if text.startswith("{{", i) or text.startswith("}}", i):
                buf.append(ch)
                i += 2
                continue
            if ch == "}":
                raise TemplateError(f"unmatched '}}' at position {i} in {text!r}")
            if ch != "{":
                buf.append(ch)
                i += 1
                continue
            depth, j = 0, i
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(text):
                raise TemplateError(f"unclosed '{{' at position {i} in {text!r}")
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(cls._placeholder(text[i + 1 : j], names))
            i = j + 1
        if buf:
            parts.append("".join(buf))
        return cls(parts, text)

    @classmethod
    def _placeholder(cls, body: str, names: Mapping[str, set[str]]) -> Placeholder:
        expr, default = _split_default(body)
        m = _SIMPLE.match(expr)
        if m:
            if m.group(1):
                return Placeholder(m.group(1), default=default)
            kind, name = m.group(2), m.group(3)
            known = names.get(kind, set())
            if kind == "claims" and not known:
                raise TemplateError(f"{{{expr}}} needs the route to have auth")
            if kind in ("params", "experiments") and name not in known:
                raise TemplateError(f"{{{expr}}}: no {kind[:-1] if kind != 'params' else 'parameter'} named {name!r}" + (f" (known: {', '.join(sorted(known))})" if known else ""))
            return Placeholder(kind, name, default=default)
        m = _KV.match(expr)
        if m:
            ns, key_text, fields = m.group(1), m.group(2), m.group(3)
            if ns not in names.get("kv", set()):
                raise TemplateError(f"{{{expr}}}: no [kv.{ns}] namespace")
            if not key_text:
                raise TemplateError(f"{{{expr}}}: empty KV key")
            key = Template.parse(key_text, names)
            return Placeholder("kv", ns, key=key, fields=tuple(f for f in fields.split(".") if f), default=default)
        raise TemplateError(
            f"unknown placeholder {{{body}}}: expected {{country}}, {{lang}}, {{variant}}, {{claims.NAME}}, {{params.NAME}}, {{experiments.NAME}} or {{kv.NS[KEY].FIELD}}"
        )

    def render(self, ctx: Any, kv_values: Mapping[tuple[str, str], Any] | None = None) -> str:
        out = []
        for p in self.parts:
            out.append(p if isinstance(p, str) else _value(p, ctx, kv_values))
        value = _UNSAFE.sub("", "".join(out))
        return value[:MAX_VALUE]

    def kv_keys(self, ctx: Any, kv_values: Mapping[tuple[str, str], Any] | None = None) -> list[tuple[str, str]]:
        """The (namespace, key) pairs this template reads, with keys rendered in `ctx`."""
        keys = []
        for p in self.parts:
            if isinstance(p, Placeholder) and p.kind == "kv" and p.key is not None:
                keys.append((p.name, p.key.render(ctx, kv_values)))
        return keys

    async def render_async(self, ctx: Any, fetch: Callable[[str, str], Awaitable[Any]]) -> str:
        if not self.needs_kv:
            return self.render(ctx)
        values: dict[tuple[str, str], Any] = {}
        # Nested keys ({kv.a[{kv.b[x].y}].z}) resolve inside-out.
        for _ in range(4):
            missing = [k for k in self.kv_keys(ctx, values) if k not in values]
            if not missing:
                break
            for ns, key in missing:
                values[(ns, key)] = await fetch(ns, key)
        return self.render(ctx, values)


def _value(p: Placeholder, ctx: Any, kv_values: Mapping[tuple[str, str], Any] | None) -> str:
    """One placeholder's text. `ctx` is the request's `RequestContext` (its country, lang, variant,
    claims, params and experiments). Values become header text by the same rule as forwarded claims
    (`gateway.text.header_text`): a value that cannot be header text is absent, so the default applies."""
    v: Any
    kind = p.kind
    if kind == "country":
        v = ctx.country
    elif kind == "lang":
        v = ctx.lang
    elif kind == "variant":
        v = ctx.variant
    elif kind == "kv":
        key = p.key.render(ctx, kv_values) if p.key is not None else ""
        v = (kv_values or {}).get((p.name, key))
        for f in p.fields:
            v = v.get(f) if isinstance(v, dict) else None
    else:
        v = getattr(ctx, kind).get(p.name)
    text = header_text(v)
    return text if text else (p.default or "")
