"""``bustap run CONFIG.toml``: the long-running tap described by a config file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import config
from ..pipeline import Pipeline
from ..record import Writer
from ._common import run_async, run_pipeline
from ._detect import make_detection

HELP = "run the sources, decoders and sinks of a TOML config until stopped"


def register(sub: Any) -> None:
    p = sub.add_parser("run", help=HELP, description=HELP + " (see `bustap config sample`). "
                       "The config is validated before anything connects.")
    p.add_argument("config", metavar="CONFIG.toml")
    p.add_argument("-W", "--timeout", type=float, metavar="SECS",
                   help="stop after SECS seconds (default: run until SIGINT/SIGTERM)")
    p.add_argument("--no-detect", action="store_true",
                   help="no alerts, whatever the config's [detect] says")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    args.name = cfg.name
    detector, alert_outputs = make_detection(args, [s.name for s in cfg.sources],
                                             settings=cfg.detect)
    pipeline = Pipeline(cfg.sources, cfg.sinks, writer=Writer(cfg.name), decoders=cfg.decoders,
                        timeout=args.timeout, workers=cfg.workers, detector=detector,
                        alert_outputs=alert_outputs)
    helpers = []
    if cfg.web is not None:
        from ..web import pipeline_server

        helpers.append(pipeline_server(cfg.web, pipeline))
        host, port = cfg.web.address
        print(f"bustap: dashboard on http://{host}:{port}/", file=sys.stderr)
    run_async(run_pipeline(pipeline, *helpers, reopen_on_hup=True))
    return 0
