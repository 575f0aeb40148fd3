"""``bustap config sample|check``."""

from __future__ import annotations

import argparse
from typing import Any

from .. import config

HELP = "print a commented sample config, or check one"


def register(sub: Any) -> None:
    p = sub.add_parser("config", help=HELP, description=HELP + ".")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("sample", help="print a commented sample config for `bustap run`"
                     ).set_defaults(func=_sample)
    check = verbs.add_parser("check", help="validate a config (exit 2 naming the bad value)")
    check.add_argument("config", metavar="CONFIG.toml")
    check.set_defaults(func=_check)


def _sample(args: argparse.Namespace) -> int:
    print(config.SAMPLE, end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    names = [s.name for s in cfg.sources]
    if len(names) > 6:  # a fleet: the first few and how many more
        names = [*names[:5], f"... {len(names) - 5} more"]
    print(f"{args.config}: ok: {len(cfg.sources)} sources "
          f"({', '.join(names)}), {len(cfg.sinks)} sinks, "
          f"{len(cfg.decoders.rules)} decode rules, {len(cfg.detect.rules)} alert rules")
    return 0
