"""Sources: one module per kind, each registering its URL schemes here."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from ..errors import ConfigError
from ..message import Message
from ..urls import parse_url
from .base import Batch, Lifecycle, Source, SourceOptions

__all__ = ["SOURCES", "Batch", "Lifecycle", "Message", "Source", "SourceOptions",
           "make_source", "register_source"]

SOURCES: dict[str, type[Source]] = {}
_loaded = False


def register_source(*schemes: str) -> Callable[[type[Source]], type[Source]]:
    def wrap(cls: type[Source]) -> type[Source]:
        cls.schemes = schemes
        for scheme in schemes:
            SOURCES[scheme] = cls
        return cls
    return wrap


def load_all() -> dict[str, type[Source]]:
    """Import every module of this package so that each registers itself."""
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            if not info.name.startswith("_") and info.name != "base":
                importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return SOURCES


def make_source(raw_url: str, options: SourceOptions) -> Source:
    url = parse_url(raw_url)
    cls = load_all().get(url.scheme)
    if cls is None:
        known = ", ".join(sorted(f"{s}://" for s in SOURCES))
        raise ConfigError(f"unknown source {url.redacted!r}: scheme {url.scheme}:// is not one "
                          f"of {known}", value=url.redacted)
    return cls(url, options)
