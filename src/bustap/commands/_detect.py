"""Flags shared by the subcommands that raise alerts (capture, logs, demo):
``--rules``, ``--no-detect``, ``--alert-output``."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence

from ..detect import DetectSettings, Engine, load_rules
from ..detect.engine import state_file
from ..detect.outputs import Outputs


def add_detect_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("alerts")
    g.add_argument("--rules", metavar="FILE",
                   help="TOML with [detect] settings and [[rule]] alert rules (see "
                   "`bustap config sample`); the built-in security detectors run without it")
    g.add_argument("--no-detect", action="store_true",
                   help="no alerts: turn the alert engine off")
    g.add_argument("--alert-output", action="append", metavar="TARGET",
                   help="where alerts go besides the record stream (repeatable): console "
                   "(default: one line on stderr), https://hook (POST JSON), "
                   "mqtt://host?topic=alerts/{rule}, nats://host?subject=alerts.{rule}")


def make_detection(args: argparse.Namespace, names: Sequence[str], *,
                   settings: DetectSettings | None = None, event_time: bool = False,
                   persist: bool = True, inline: bool = False
                   ) -> tuple[Engine | None, Outputs | None]:
    """The engine and its outputs for a run over sources ``names`` (its state
    file is named by ``--name`` or by the sources, so a restart of the same
    command finds what it learned). ``inline``: the records are shown to a
    person, alerts among them, so the console output would say it twice."""
    if getattr(args, "no_detect", False):
        return None, None
    if settings is None:
        rules = getattr(args, "rules", None)
        settings = load_rules(rules) if rules else DetectSettings()
    if not settings.enabled:
        return None, None
    targets = list(getattr(args, "alert_output", None) or settings.outputs)
    if inline and not getattr(args, "alert_output", None):
        targets = [t for t in targets if t != "console"]  # already in the --pretty view
    outputs = Outputs(targets)  # validates the targets before anything connects
    path = None
    if persist:
        name = getattr(args, "name", None) or hashlib.sha1(
            "\n".join(sorted(names)).encode()).hexdigest()[:12]
        path = state_file(name)
    return Engine(settings, state_path=path, event_time=event_time), outputs
