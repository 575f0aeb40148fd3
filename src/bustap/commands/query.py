"""``bustap query``: search stored records."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from ._store import RecordWriter, add_filter_flags, add_store_flag, filters_from_args, store_target

HELP = "search stored records (DuckDB or PostgreSQL)"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "query", help=HELP, description=HELP + ". Shows the most recent matching records in "
        "time order.",
        epilog="examples:\n"
        "  bustap query --device vmx4 --event link_down --since yesterday\n"
        "  bustap query -t 'sensors/+/temp' --since 1h --format csv\n"
        "  bustap query --where 'fields.cpu.user > 50' --severity warning\n"
        "  bustap query --store postgresql://127.0.0.1/bustap --kind broker_event --follow",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_flag(p)
    add_filter_flags(p)
    p.add_argument("--format", choices=["table", "json", "csv"], default="table",
                   help="table (default), json (JSON lines: the records as captured) or csv")
    p.add_argument("-n", "--limit", type=int, metavar="N",
                   help="at most N records, the most recent (default 100 for table, all for "
                   "json/csv; 0 = all)")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new records as they are stored")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECS",
                   help="how often --follow looks for new records (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..store.backend import open_store
    from ..store.search import follow, search

    if args.limit is not None and args.limit < 0:
        raise ConfigError(f"--limit must be 0 or more, not {args.limit}", value=args.limit)
    if args.interval <= 0:
        raise ConfigError(f"--interval must be positive, not {args.interval}",
                          value=args.interval)
    filters = filters_from_args(args)
    limit = args.limit if args.limit is not None else (100 if args.format == "table" else None)
    if limit == 0:
        limit = None
    target = store_target(args)
    out = RecordWriter(args.format)
    with open_store(target) as store:
        records = search(store, filters, limit=limit)
    if records or args.format != "table":
        out.write(records)
    if not args.follow:
        return 0
    from ..store.schema import to_ts

    start = to_ts(records[-1]["timestamp"]) if records else filters.since
    try:
        follow(lambda: open_store(target), filters, out.write, start=start,
               interval=args.interval, shown=records)
    except KeyboardInterrupt:
        return 0
    return 0
