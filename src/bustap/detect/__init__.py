"""The alert engine: detectors that read the record stream and raise alert
records (DESIGN.md, "alert"). The pipeline runs one :class:`Engine` as a
processor on every batch (sources -> decode -> detect -> sinks).

Detectors register by id, one module each in :mod:`bustap.detect.detectors`
(a new detector is one new file); user rules (``[[rule]]``, the ``--where``
language) run beside them.

    engine = Engine(load_rules("rules.toml"))
    alerts = engine.process(records) + engine.tick()
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Clear, Context, Detector, Hit
from .engine import Engine
from .settings import DetectSettings, load_rules, parse_detect

__all__ = ["DETECTORS", "Clear", "Context", "DetectSettings", "Detector", "Engine", "Hit",
           "detector_classes", "load_rules", "parse_detect", "register_detector"]

DETECTORS: dict[str, type[Detector]] = {}
_loaded = False


def register_detector(cls: type[Detector]) -> type[Detector]:
    if not cls.id or cls.id in DETECTORS:
        raise ValueError(f"detector id {cls.id!r} is empty or taken")
    DETECTORS[cls.id] = cls
    return cls


def detector_classes() -> dict[str, type[Detector]]:
    """Every built-in detector, by id (their modules imported on first use,
    all of them, even when one was imported on its own before)."""
    global _loaded
    if not _loaded:
        _loaded = True
        from . import detectors

        for info in sorted(pkgutil.iter_modules(detectors.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{detectors.__name__}.{info.name}")
    return DETECTORS
