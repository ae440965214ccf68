"""Collecting what is wrong with a config, and reading typed values out of the TOML.

Every problem is collected, not just the first, and each is reported as
``FILE: key.path: what is wrong (what was expected)`` so a user can fix a config in one pass.
Warnings use the same form: the config serves, but probably not as its author meant.
"""

from __future__ import annotations

import re
from typing import Any

DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


class ConfigError(Exception):
    """A config that cannot be served; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_duration(value: Any) -> float | None:
    """Seconds in a duration string ("500ms", "10s", "5m", "1h", "1d"), else None.

    A bare number is not a duration: `timeout = 5` could mean seconds or milliseconds, and every
    message and example writes durations as strings, so numbers are refused rather than guessed."""
    if isinstance(value, str):
        m = DURATION_RE.match(value)
        if m:
            return float(m.group(1)) * DURATION_UNITS[m.group(2)]
    return None


def parse_size(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        m = SIZE_RE.match(value)
        if m:
            return int(float(m.group(1)) * SIZE_UNITS[(m.group(2) or "B").lower()])
    return None


class Problems:
    """The problem collector shared by every table's loader, with typed readers that report a
    value of the wrong type or form and fall back to a default, so loading goes on."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def _line(self, key: str, what: str, expected: str | None) -> str:
        return f"{self.file}: {key}: {what}" + (f" ({expected})" if expected else "")

    def bad(self, key: str, what: str, expected: str | None = None) -> None:
        self.problems.append(self._line(key, what, expected))

    def warn(self, key: str, what: str, expected: str | None = None) -> None:
        self.warnings.append(self._line(key, what, expected))

    def table(self, data: Any, key: str) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.bad(key, f"is a {type(data).__name__}", "expected a table")
            return {}
        return data

    def known(self, data: dict[str, Any], key: str, allowed: set[str]) -> None:
        for k in data:
            if k not in allowed:
                hint = ", ".join(sorted(allowed))
                self.bad(f"{key}.{k}" if key else k, "unknown key", f"expected one of: {hint}")

    def string(self, data: dict[str, Any], key: str, name: str, required: bool = False, default: str | None = None) -> str | None:
        v = data.get(name)
        if v is None:
            if required:
                self.bad(f"{key}.{name}", "is missing", "expected a string")
            return default
        if not isinstance(v, str):
            self.bad(f"{key}.{name}", f"is {v!r}", "expected a string")
            return default
        return v

    def boolean(self, data: dict[str, Any], key: str, name: str, default: bool) -> bool:
        v = data.get(name, default)
        if not isinstance(v, bool):
            self.bad(f"{key}.{name}", f"is {v!r}", "expected true or false")
            return default
        return v

    def duration(self, data: dict[str, Any], key: str, name: str, default: float | None) -> float | None:
        if name not in data:
            return default
        v = data[name]
        d = parse_duration(v)
        if d is None:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.bad(f"{key}.{name}", f"is {v!r}", f'expected a duration string such as "{abs(v)}s"; a bare number is ambiguous')
            else:
                self.bad(f"{key}.{name}", f"is {v!r}", 'expected a duration such as "500ms", "10s", "5m", "1h", "1d"')
            return default
        return d

    def size(self, data: dict[str, Any], key: str, name: str, default: int | None) -> int | None:
        if name not in data:
            return default
        s = parse_size(data[name])
        if s is None:
            self.bad(f"{key}.{name}", f"is {data[name]!r}", 'expected a size such as "20MB", "512KiB" or a number of bytes')
            return default
        return s
