"""``bustap stats``: counts per topic/device/client/event/source, optionally
per time bucket, as a table, JSON, CSV or a PNG timeline."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from ._store import add_filter_flags, add_store_flag, filters_from_args, print_rows, store_target

HELP = "message, byte, connection, publish/subscribe and auth-failure counts per group"


def register(sub: Any) -> None:
    from ..store.stats import GROUPS, METRICS

    p = sub.add_parser(
        "stats", help=HELP, description=HELP + " (and per time bucket with --every).",
        epilog="examples:\n"
        "  bustap stats --by topic --since 24h --top 10\n"
        "  bustap stats --by client --every 1m --since 1h --plot clients.png --metric publish\n"
        "  bustap stats --by event --every 5m --metric connections --format csv",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_flag(p)
    p.add_argument("--by", required=True, metavar="GROUP",
                   help=f"group by: {', '.join(GROUPS)}")
    p.add_argument("--every", metavar="DURATION",
                   help="also per time bucket of this size (1m, 5m, 1h)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="the N biggest groups (default 10; 0 = all)")
    p.add_argument("--metric", default="records", metavar="NAME",
                   help=f"what ranks groups and what --plot draws: {', '.join(METRICS)} "
                   "(default records)")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw the timeline (one line per group) into a PNG; needs --every "
                   "(default 1m when --plot is given)")
    add_filter_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..store.backend import open_store
    from ..store.stats import GROUPS, METRICS, plot, stats
    from ..store.timeparse import parse_duration

    if args.by not in GROUPS:
        raise ConfigError(f"invalid --by {args.by!r}: one of {', '.join(GROUPS)}",
                          value=args.by)
    if args.metric not in METRICS:
        raise ConfigError(f"invalid --metric {args.metric!r}: one of {', '.join(METRICS)}",
                          value=args.metric)
    if args.top < 0:
        raise ConfigError(f"--top must be 0 or more, not {args.top}", value=args.top)
    every_text = args.every or ("1m" if args.plot else None)
    every = None
    if every_text:
        seconds = parse_duration(every_text, what="--every").total_seconds()
        if seconds < 1 or not float(seconds).is_integer():
            raise ConfigError(f"invalid --every {every_text!r}: a whole number of seconds, "
                              "at least 1s", value=every_text)
        every = int(seconds)
    if args.plot and not args.plot.lower().endswith(".png"):
        raise ConfigError(f"--plot {args.plot!r}: the file name must end in .png",
                          value=args.plot)
    filters = filters_from_args(args)
    with open_store(store_target(args)) as store:
        result = stats(store, filters, by=args.by, every=every, top=args.top or None,
                       order=args.metric)
    if args.plot:
        plot(result, args.plot, metric=args.metric)
    print_rows(result.names, result.rows, args.format)
    return 0
