"""Flags and output shared by the commands that read a store (query, stats,
export, dump)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

import orjson

from ..record import Record
from ..store.backend import default_store
from ..store.query import Filters
from ..store.schema import COLUMNS
from ..store.timeparse import parse_time

if TYPE_CHECKING:
    from rich.console import Console


def add_store_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="STORE",
                   help="path.duckdb, duckdb:///path.duckdb or postgresql://host/db"
                   "[?schema=NAME] (default: $BUSTAP_STORE or ./bustap.duckdb)")


def add_filter_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters")
    g.add_argument("-t", "--topic", action="append", metavar="FILTER",
                   help="topic or subject; MQTT (+, #) or NATS (*, >) wildcards (repeatable)")
    g.add_argument("--since", metavar="TIME",
                   help="from this time: 30m, 2h, 7d (ago), today, yesterday, ISO 8601")
    g.add_argument("--until", metavar="TIME", help="up to this time (same forms as --since)")
    g.add_argument("--device", action="append", metavar="NAME", help="device (repeatable)")
    g.add_argument("--event", action="append", metavar="NAME",
                   help="event name, e.g. link_down, client_connected (repeatable)")
    g.add_argument("--severity", metavar="LEVEL",
                   help="this severity and worse: warning = warning, error, crit, alert, emerg")
    g.add_argument("--client", action="append", metavar="ID", help="client id (repeatable)")
    g.add_argument("--kind", action="append", metavar="KIND",
                   help="message, broker_event, stats (repeatable)")
    g.add_argument("--event-type", action="append", metavar="TYPE",
                   help="log, log_init, log_close, dump, alert, ... (repeatable)")
    g.add_argument("--grep", metavar="TEXT",
                   help="case-insensitive text in topic, payload, fields, device, event, client")
    g.add_argument("--where", metavar="EXPR",
                   help="condition on columns and JSON fields, e.g. "
                   "\"fields.cpu.user > 50 and device = 'vmx4'\"")


def filters_from_args(args: argparse.Namespace) -> Filters:
    since = parse_time(args.since, what="--since") if args.since else None
    until = parse_time(args.until, what="--until") if args.until else None
    if since is not None and until is not None and until <= since:
        from ..errors import ConfigError

        raise ConfigError(f"--until {args.until!r} is not after --since {args.since!r}",
                          value=args.until)
    return Filters(topics=args.topic or [], since=since, until=until,
                   devices=args.device or [], events=args.event or [],
                   severity=args.severity, clients=args.client or [], kinds=args.kind or [],
                   event_types=args.event_type or [], grep=args.grep, where=args.where)


def store_target(args: argparse.Namespace) -> str:
    return str(args.store or default_store())


# --- output -------------------------------------------------------------------

@contextlib.contextmanager
def table_console(out: IO[bytes] | None = None, *, styles: bool = False) -> Iterator[Console]:
    """A rich console writing UTF-8 to ``out`` (stdout) whatever the locale,
    200 columns wide when stdout is not a terminal (piped tables stay whole).
    ``styles``: colours and bold when it is a terminal; else plain text."""
    from rich.console import Console

    text = io.TextIOWrapper(out or sys.stdout.buffer, encoding="utf-8", write_through=True)
    try:
        yield Console(file=text, width=None if sys.stdout.isatty() else 200,
                      force_terminal=None if styles else False, highlight=False)
    finally:
        text.detach()  # the stream stays open: closing the wrapper would close it


CSV_FIELDS = ["timestamp", *(c.key for c in COLUMNS if c.name not in ("ts", "extra")), "extra"]


def csv_row(rec: Record) -> list[str]:
    from ..store.schema import KNOWN_KEYS

    out = []
    for key in CSV_FIELDS:
        if key == "extra":
            extra = {k: v for k, v in rec.items() if k not in KNOWN_KEYS}
            out.append(orjson.dumps(extra).decode() if extra else "")
            continue
        value = rec.get(key)
        if value is None:
            out.append("")
        elif isinstance(value, dict | list) or key in ("payload", "fields", "headers",
                                                       "properties"):
            out.append(orjson.dumps(value).decode())
        else:
            out.append(str(value))
    return out


class RecordWriter:
    """Records to a stream as JSON lines, CSV or a rich table."""

    def __init__(self, fmt: str, out: IO[bytes] | None = None) -> None:
        self.fmt = fmt
        self.out = out or sys.stdout.buffer
        self.header_done = False
        self.count = 0

    def write(self, records: Iterable[Record]) -> None:
        if self.fmt == "json":
            from ..record import dumps

            self.out.write(b"".join(dumps(r) for r in records))
        elif self.fmt == "csv":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            if not self.header_done:
                w.writerow(CSV_FIELDS)
                self.header_done = True
            for rec in records:
                w.writerow(csv_row(rec))
            self.out.write(buf.getvalue().encode())
        else:
            self._table(list(records))
        self.out.flush()

    def _table(self, records: list[Record]) -> None:
        from rich.table import Table

        from ..render import summary

        table = Table(show_header=not self.header_done, box=None, pad_edge=False)
        for name in ("time", "kind", "topic / event", "device / client", "sev", "summary"):
            table.add_column(name, overflow="fold")
        for rec in records:
            kind = rec.get("kind") or rec.get("event_type") or ""
            if rec.get("kind") == "message":
                what = str(rec.get("topic", ""))
                who = str(rec.get("device") or "")
                text = summary(rec)
            elif rec.get("kind") == "broker_event":
                what = str(rec.get("event", ""))
                who = str(rec.get("client_id") or rec.get("address") or "")
                text = str(rec.get("topic") or rec.get("username") or rec.get("line") or "")
            else:
                what = str(rec.get("event_type", ""))
                who = str(rec.get("source", ""))
                text = orjson.dumps({k: v for k, v in rec.items() if k not in (
                    "seq", "writer_id", "timestamp", "event_type", "source")}).decode()[:200]
            table.add_row(str(rec.get("timestamp", ""))[:23].replace("T", " "), str(kind),
                          what, who, str(rec.get("severity") or ""), text)
        with table_console(self.out) as console:
            console.print(table)
        self.header_done = True


def print_rows(names: list[str], rows: list[tuple[Any, ...]], fmt: str,
               out: IO[bytes] | None = None) -> None:
    """Plain result rows (stats) as a table, JSON lines or CSV."""
    stream = out or sys.stdout.buffer
    from datetime import datetime

    def cell(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    if fmt == "json":
        stream.write(b"".join(orjson.dumps({n: cell(v) for n, v in zip(names, row, strict=True)},
                                           option=orjson.OPT_APPEND_NEWLINE) for row in rows))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(names)
        for row in rows:
            w.writerow(["" if v is None else cell(v) for v in row])
        stream.write(buf.getvalue().encode())
    else:
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for n in names:
            table.add_column(n, justify="right" if n not in ("bucket", "key") else "left")
        for row in rows:
            table.add_row(*("" if v is None else str(cell(v)) for v in row))
        with table_console(stream) as console:
            console.print(table)
    stream.flush()
