"""Engines: the ways to run a model. Importing this package registers the built-in ones."""

from ppinfer.engines import analysis  # noqa: F401  (registers "analysis")
from ppinfer.engines.base import (
    ENGINES,
    Engine,
    create_engine,
    get_engine,
    list_engines,
    register_engine,
)

BUILTIN_ENGINES = ("analysis", "executor-persistable", "executor-inference")

__all__ = [
    "BUILTIN_ENGINES", "ENGINES", "Engine", "create_engine", "get_engine", "list_engines",
    "register_engine",
]
