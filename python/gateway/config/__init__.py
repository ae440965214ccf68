"""gateway.toml: ``load()`` reads and validates it into immutable ``Config`` objects.

model.py     the config classes (frozen; derived values computed once on them)
problems.py  the problem collector, ConfigError, parse_duration / parse_size
loader.py    one ``load_<table>`` function per TOML table, composed by ``load()``
"""

from gateway.config.loader import load
from gateway.config.model import (
    HOP_BY_HOP,
    AuthAction,
    AuthPolicy,
    Condition,
    Config,
    Experiment,
    KVConfig,
    Locale,
    Origin,
    RateLimit,
    Route,
    Server,
)
from gateway.config.problems import ConfigError, parse_duration, parse_size

__all__ = [
    "HOP_BY_HOP",
    "AuthAction",
    "AuthPolicy",
    "Condition",
    "Config",
    "ConfigError",
    "Experiment",
    "KVConfig",
    "Locale",
    "Origin",
    "RateLimit",
    "Route",
    "Server",
    "load",
    "parse_duration",
    "parse_size",
]
