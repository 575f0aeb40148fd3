"""``bustap dump``: the dump (dump_init, one dump record per topic and per
client, dump_close) built from a store, to stdout or to sinks."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import run_async
from ._store import add_filter_flags, add_store_flag, filters_from_args, store_target

HELP = "per-topic and per-client snapshot (pmacct dump format) from a store"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "dump", help=HELP, description=HELP + ": last payload, count, bytes, first/last seen "
        "and last publisher per topic; connected, address, username, last seen per client.",
        epilog="examples:\n  bustap dump --since 1h\n"
        "  bustap dump --store postgresql://127.0.0.1/bustap -o dump.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_flag(p)
    add_filter_flags(p)
    p.add_argument("-o", "--output", action="append", metavar="SINK",
                   help="where the dump goes (repeatable; default - for stdout)")
    p.add_argument("--name", metavar="NAME", help="writer name (writer_id bustap/NAME)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..dump import dump_from_store
    from ..record import Writer
    from ..sinks import RecordBatch, make_sink
    from ..store.backend import open_store

    filters = filters_from_args(args)
    sinks = [make_sink(o) for o in (args.output or ["-"])]
    target = store_target(args)
    with open_store(target) as store:
        records = dump_from_store(store, filters, source=store.name)
    writer = Writer(args.name)
    stamped = [writer.stamp(r) for r in records]

    async def write() -> None:
        for sink in sinks:
            await sink.open()
        try:
            for sink in sinks:
                await sink.write(RecordBatch(stamped))
                await sink.flush()
        finally:
            for sink in sinks:
                await sink.aclose()

    run_async(write())
    return 0
