"""``bustap export``: matching records from a store to Parquet, JSON lines or CSV."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._store import RecordWriter, add_filter_flags, add_store_flag, filters_from_args, store_target

HELP = "export stored records to Parquet, JSON lines or CSV"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export", help=HELP, description=HELP + " (same filters as query; all matches, in "
        "time order).",
        epilog="examples:\n  bustap export --since 1d --format parquet -o day.parquet\n"
        "  bustap export --store postgresql://127.0.0.1/bustap -t 'hm.agent.>' "
        "--format jsonl -o agents.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_flag(p)
    add_filter_flags(p)
    p.add_argument("--format", choices=["parquet", "jsonl", "csv"],
                   help="default: from the file name (.parquet, .jsonl, .csv)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="file to write (- for stdout with jsonl/csv)")
    p.add_argument("-n", "--limit", type=int, metavar="N", help="at most N records")
    p.set_defaults(func=run)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = Path(args.output).suffix.lower()
    found = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
             ".csv": "csv"}.get(suffix)
    if found is None:
        raise ConfigError(f"cannot tell the format of {args.output!r}: give --format "
                          "parquet|jsonl|csv", value=args.output)
    return found


def run(args: argparse.Namespace) -> int:
    from ..store.backend import open_store
    from ..store.search import iterate

    fmt = _format(args)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be positive, not {args.limit}", value=args.limit)
    if fmt == "parquet" and args.output == "-":
        raise ConfigError("parquet needs a file: -o FILE.parquet", value=args.output)
    filters = filters_from_args(args)
    total = 0
    with open_store(store_target(args)) as store:
        chunks = iterate(store, filters, limit=args.limit)
        if fmt == "parquet":
            total = _parquet(chunks, args.output)
        else:
            writer_fmt = "json" if fmt == "jsonl" else "csv"
            if args.output == "-":
                out = RecordWriter(writer_fmt)
                for chunk in chunks:
                    out.write(chunk)
                    total += len(chunk)
            else:
                tmp = args.output + ".tmp"
                with open(tmp, "wb") as fh:
                    out = RecordWriter(writer_fmt, fh)
                    if writer_fmt == "csv":
                        out.write([])  # the header, even when nothing matches
                    for chunk in chunks:
                        out.write(chunk)
                        total += len(chunk)
                os.replace(tmp, args.output)
    import sys

    if sys.stderr.isatty():
        print(f"bustap: exported {total} records to {args.output}", file=sys.stderr)
    return 0


def _parquet(chunks: Any, path: str) -> int:
    """Records -> Parquet through DuckDB (a dependency already): the chunks go
    to a scratch JSON lines file that DuckDB reads with the store schema, so
    the Parquet columns are typed like the store's."""
    import tempfile

    import duckdb

    from ..record import dumps
    from ..sinks.duckdb import INSERT_SQL
    from ..store.schema import COLUMNS, duckdb_ddl, with_extra

    total = 0
    con = duckdb.connect(":memory:")
    con.execute(duckdb_ddl())
    with tempfile.TemporaryDirectory(prefix="bustap-export-") as tmpdir:
        scratch = os.path.join(tmpdir, "chunk.json")
        for chunk in chunks:
            with open(scratch, "wb") as fh:
                fh.write(b"[" + b",".join(dumps(with_extra(r)).rstrip(b"\n") for r in chunk)
                         + b"]")
            con.execute(INSERT_SQL, [scratch])
            total += len(chunk)
        cols = ", ".join(c.name for c in COLUMNS)
        tmp = path + ".tmp"
        # the file name cannot be a parameter of COPY: quote it as a SQL literal
        literal = "'" + tmp.replace("'", "''") + "'"
        con.execute(f"COPY (SELECT {cols} FROM records ORDER BY ts, seq) TO {literal} "
                    "(FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, path)
    con.close()
    return total
