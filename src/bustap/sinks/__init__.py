"""Sinks: one module per kind, each registering its URL schemes here.

A sink URL without a scheme is a path: ``-`` is stdout, ``*.jsonl`` (or
``.jsonl.gz``) a JSON lines file, ``*.duckdb`` a DuckDB database.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from ..errors import ConfigError
from ..urls import parse_url
from .base import RecordBatch, Sink

__all__ = ["SINKS", "RecordBatch", "Sink", "make_sink", "register_sink"]

SINKS: dict[str, type[Sink]] = {}
_loaded = False


def register_sink(*schemes: str) -> Callable[[type[Sink]], type[Sink]]:
    def wrap(cls: type[Sink]) -> type[Sink]:
        cls.schemes = schemes
        for scheme in schemes:
            SINKS[scheme] = cls
        return cls
    return wrap


def load_all() -> dict[str, type[Sink]]:
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            if not info.name.startswith("_") and info.name != "base":
                importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return SINKS


def normalize(target: str) -> str:
    """Turn a bare path into a URL: ``-`` -> ``stdout:``, ``x.jsonl`` -> ``file:x.jsonl``."""
    if target == "-":
        return "stdout:"
    if "://" in target or target.startswith(("stdout:", "file:", "duckdb:")):
        return target
    path = target.partition("?")[0]
    if path.endswith(".duckdb"):
        # duckdb:///abs/x.duckdb (three slashes: empty host) or duckdb:rel/x.duckdb
        return f"duckdb://{target}" if target.startswith("/") else f"duckdb:{target}"
    return f"file:{target}"


def make_sink(target: str) -> Sink:
    url = parse_url(normalize(target))
    cls = load_all().get(url.scheme)
    if cls is None:
        known = ", ".join(sorted(f"{s}:" for s in SINKS))
        raise ConfigError(f"unknown sink {url.redacted!r}: scheme {url.scheme}: is not one of "
                          f"{known}", value=url.redacted)
    return cls(url)
