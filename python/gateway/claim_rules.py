"""Claim rules: a route's ``require = { all = [...], any = [...] }``, decided on a verified token.

Each rule is ``{ claim = PATH, PREDICATE = VALUE }`` with exactly one predicate:

- ``equals = V``: the claim is V (a string, number or boolean; types are never coerced: ``"1"`` is
  not ``1``, ``true`` is not ``1``);
- ``in = [V, ...]``: the claim equals one of them;
- ``contains = V``: the claim is an array with an element equal to V, or a string of space-separated
  values (OAuth's ``scope``, RFC 6749 §3.3) one of which is V;
- ``matches = "REGEX"``: the claim is a string the whole of which the regex matches (RE2 syntax, run
  by the core's linear-time engine, so no pattern can make a crafted claim hang the worker; anchored
  like route conditions: ``"admin"`` does not match ``"not-admin"``; write ``".*admin.*"``
  to search). The pattern is at most `MAX_PATTERN` characters, compiled at load; strings over
  `MAX_MATCHED` characters are not matched (they fail the rule);
- ``exists = true`` / ``exists = false``: the claim is present / absent (``null`` counts as absent).

``PATH`` is dotted into nested objects (``"org.tier"`` is ``claims["org"]["tier"]``), or an array of
exact names for claims whose name holds a dot (``["https://example.com/claims", "roles"]``).

The rule set holds when every ``all`` rule holds and, if there is an ``any``, at least one of its
rules does. A claim that is missing or of a type the predicate cannot apply to (a number where an
array is expected) simply fails the rule: a token never makes a rule raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway import _core

if TYPE_CHECKING:
    from gateway.config.problems import Problems

PREDICATES = ("equals", "in", "contains", "matches", "exists")
MAX_PATTERN = 256
MAX_MATCHED = 4096
MAX_PATH_DEPTH = 16
MAX_IN_VALUES = 1000
RULE_EXPECTED = '{ claim = "roles", contains = "admin" }: a claim and exactly one of equals, in, contains, matches, exists'
Scalar = str | int | float | bool


def _same(a: Any, b: Scalar) -> bool:
    """JSON equality without Python's coercions: True == 1 and 1 == "1" are both false here."""
    if isinstance(b, bool) or isinstance(a, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(b, str):
        return isinstance(a, str) and a == b
    return isinstance(a, (int, float)) and a == b


_ABSENT = object()


@dataclass(frozen=True, slots=True)
class ClaimRule:
    path: tuple[str, ...]
    predicate: str  # one of PREDICATES
    value: Any  # equals/contains: a scalar; in: a tuple of them; matches: a compiled pattern; exists: a bool
    source: str  # how explain and the trace write the rule: roles contains "admin"

    def lookup(self, claims: Mapping[str, Any]) -> Any:
        cur: Any = claims
        for name in self.path:
            if not isinstance(cur, Mapping):
                return _ABSENT
            cur = cur.get(name, _ABSENT)
            if cur is _ABSENT:
                return _ABSENT
        return _ABSENT if cur is None else cur

    def why_not(self, claims: Mapping[str, Any]) -> str | None:
        """None when the rule holds for ``claims``, else why not (names the claim, never its value:
        explain and the trace are read by people who may not see the token)."""
        value = self.lookup(claims)
        name = ".".join(self.path)
        p = self.predicate
        if p == "exists":
            present = value is not _ABSENT
            return None if present is self.value else f"claim {name} is {'present' if present else 'absent'}"
        if value is _ABSENT:
            return f"claim {name} is absent"
        if p == "equals":
            return None if _same(value, self.value) else f"claim {name} is not equal"
        if p == "in":
            return None if any(_same(value, v) for v in self.value) else f"claim {name} is none of the values"
        if p == "contains":
            if isinstance(value, list):
                return None if any(_same(v, self.value) for v in value) else f"claim {name} has no such element"
            if isinstance(value, str) and isinstance(self.value, str):
                return None if self.value in value.split(" ") else f"claim {name} has no such space-separated value"
            return f"claim {name} is {_kind(value)}, not an array or a space-separated string"
        # matches
        if not isinstance(value, str):
            return f"claim {name} is {_kind(value)}, not a string"
        if len(value) > MAX_MATCHED:
            return f"claim {name} is over {MAX_MATCHED} characters"
        return None if self.value.fullmatch(value) else f"claim {name} does not match"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


@dataclass(frozen=True, slots=True)
class ClaimRules:
    all: tuple[ClaimRule, ...]
    any: tuple[ClaimRule, ...]

    def failure(self, claims: Mapping[str, Any]) -> str | None:
        """None when the rules hold, else which rule failed and why, e.g.
        ``all[0] roles contains "admin": claim roles is absent``."""
        for i, rule in enumerate(self.all):
            why = rule.why_not(claims)
            if why is not None:
                return f"all[{i}] {rule.source}: {why}"
        if not self.any:
            return None
        reasons = []
        for i, rule in enumerate(self.any):
            why = rule.why_not(claims)
            if why is None:
                return None
            reasons.append(f"any[{i}] {rule.source}: {why}")
        return "no rule of any held: " + "; ".join(reasons)

    def describe(self) -> str:
        parts = []
        if self.all:
            parts.append("all of " + ", ".join(r.source for r in self.all))
        if self.any:
            parts.append("any of " + ", ".join(r.source for r in self.any))
        return " and ".join(parts)


# ---------------------------------------------------------------- require = { ... } in a route


def load_require(c: Problems, key: str, data: Any) -> ClaimRules | None:
    """A route's ``require`` table, or None (with problems reported) when it is not usable."""
    if not isinstance(data, dict):
        c.bad(key, f"is {data!r}", 'expected a table such as { all = [ { claim = "roles", contains = "admin" } ] }')
        return None
    c.known(data, key, {"all", "any"})
    before = len(c.problems)
    groups: dict[str, tuple[ClaimRule, ...]] = {}
    for group in ("all", "any"):
        if group not in data:
            continue
        items = data[group]
        if not isinstance(items, list) or not items:
            c.bad(f"{key}.{group}", f"is {items!r}", f"expected a non-empty list of rules such as {RULE_EXPECTED}")
            continue
        rules = [_rule(c, f"{key}.{group}[{i}]", item) for i, item in enumerate(items)]
        groups[group] = tuple(r for r in rules if r is not None)
    if "all" not in data and "any" not in data:
        c.bad(key, "has neither all nor any", f"expected all = [...] and/or any = [...] of rules such as {RULE_EXPECTED}")
    if len(c.problems) != before:
        return None
    return ClaimRules(all=groups.get("all", ()), any=groups.get("any", ()))


def _path(c: Problems, key: str, claim: Any) -> tuple[str, ...] | None:
    expected = 'expected a claim name, a dotted path such as "org.tier", or an array of names such as ["https://example.com/claims", "roles"]'
    if isinstance(claim, str):
        parts = tuple(claim.split("."))
    elif isinstance(claim, list) and claim and all(isinstance(p, str) for p in claim):
        parts = tuple(claim)
    else:
        c.bad(key, "is missing" if claim is None else f"is {claim!r}", expected)
        return None
    if not all(parts) or len(parts) > MAX_PATH_DEPTH:
        c.bad(key, f"is {claim!r}" + (" (an empty name)" if not all(parts) else f" (over {MAX_PATH_DEPTH} levels)"), expected)
        return None
    return parts


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _rule(c: Problems, key: str, item: Any) -> ClaimRule | None:
    if not isinstance(item, dict):
        c.bad(key, f"is {item!r}", f"expected a rule such as {RULE_EXPECTED}")
        return None
    c.known(item, key, {"claim", *PREDICATES})
    path = _path(c, f"{key}.claim", item.get("claim"))
    given = [p for p in PREDICATES if p in item]
    if len(given) != 1:
        what = "has no predicate" if not given else f"has {len(given)} predicates ({', '.join(given)})"
        c.bad(key, what, "expected exactly one of equals, in, contains, matches, exists per rule; list several rules in all or any")
        return None
    p = given[0]
    v = item[p]
    pk = f"{key}.{p}"
    value: Any = v
    if p in ("equals", "contains"):
        if not _scalar(v) or v == "":
            c.bad(pk, f"is {v!r}", "expected a non-empty string, a number or a boolean")
            return None
        shown = _show(v)
    elif p == "in":
        if not isinstance(v, list) or not v or len(v) > MAX_IN_VALUES or not all(_scalar(x) for x in v):
            c.bad(pk, f"is {v!r}", f"expected a non-empty list (at most {MAX_IN_VALUES}) of strings, numbers or booleans")
            return None
        value = tuple(v)
        shown = "[" + ", ".join(_show(x) for x in v) + "]"
    elif p == "matches":
        if not isinstance(v, str) or not v:
            c.bad(pk, f"is {v!r}", 'expected a regular expression such as "^[a-z]+@example\\.com$"')
            return None
        if len(v) > MAX_PATTERN:
            c.bad(pk, f"is {len(v)} characters long", f"expected a regular expression of at most {MAX_PATTERN} characters")
            return None
        try:
            # Linear time whatever the pattern (the core's regex engine, RE2 syntax): the text is a
            # claim the token's holder chose, so a backtracking engine would let a pattern such as
            # ([a-z]+[.-]?)*@x hang the worker on a crafted value.
            value = _core.LinearRegex(v)
        except ValueError as e:
            first = str(e).strip().splitlines()[-1] if str(e).strip() else "invalid"
            c.bad(pk, f"is not a valid regex: {first}", "expected a regular expression in RE2 syntax (no look-around or back-references); it must match the whole claim")
            return None
        shown = _show(v)
    else:  # exists
        if not isinstance(v, bool):
            c.bad(pk, f"is {v!r}", "expected true or false")
            return None
        shown = "true" if v else "false"
    if path is None:
        return None
    return ClaimRule(path=path, predicate=p, value=value, source=f"{'.'.join(path)} {p} {shown}")


def _show(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)
