"""``bustap logs FILE``: parse a whole broker log file into records."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import ConfigError
from ..logparse import FORMATS, LogParser
from ..pipeline import Counters, Pipeline
from ..record import Writer
from ..sinks import make_sink
from ..sources import SourceOptions
from ..sources.logfile import LogFileSource
from ..urls import parse_url
from ._common import run_async, run_pipeline
from ._detect import add_detect_flags, make_detection

HELP = "parse broker logs (Mosquitto, nats-server) into broker_event records"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "logs", help=HELP, description=HELP + ". Each line becomes one record (a "
        "subscription's debug and subscribe lines make one); lines the parser does not know "
        "are kept as event 'unparsed'. At the end, a table on stderr tells how many lines "
        "were understood and how many stayed unparsed.",
        epilog="examples:\n"
        "  bustap logs /var/log/mosquitto/mosquitto.log\n"
        "  bustap logs nats.log --format nats -o events.jsonl\n"
        "  bustap logs mosquitto.log -o bustap.duckdb\n"
        "To follow a live log, use `bustap capture file:///path/to/log?format=mosquitto`.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="the log file")
    p.add_argument("--format", default="auto", choices=["auto", *FORMATS],
                   help="log format (default: detected from the first lines)")
    p.add_argument("-o", "--output", action="append", metavar="SINK",
                   help="where records go (repeatable): - (stdout, default), FILE.jsonl, ...")
    p.add_argument("--name", metavar="NAME",
                   help="writer name: records carry writer_id bustap/NAME (default: pid)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none anyway unless stderr is a terminal)")
    add_detect_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise ConfigError(f"no such file: {args.file}", value=args.file)
    url = parse_url(f"file://{quote(str(path.absolute()))}?format={args.format}"
                    "&follow=false&state=none")
    source = LogFileSource(url, SourceOptions(from_start=True))
    sinks = [make_sink(o) for o in (args.output or ["-"])]
    # the log's own times drive the windows: a file raises what it raised live
    detector, alert_outputs = make_detection(args, [source.name], event_time=True,
                                             persist=False)
    pipeline = Pipeline([source], sinks, writer=Writer(args.name), detector=detector,
                        alert_outputs=alert_outputs)

    show = sys.stderr.isatty() and not args.no_progress
    counters = run_async(_run(pipeline, source, path, show))
    if source.parser is not None:
        print(summary(source.parser, counters.records, path), file=sys.stderr)
    return 0


def summary(parser: LogParser, records: int, path: Path) -> str:
    """The share of lines the parser understood, as a small table: a low share
    says the log is in a wording (or a format) that bustap does not know yet."""
    lines = parser.lines
    unparsed = parser.unparsed
    understood = lines - unparsed

    def pct(n: int) -> str:
        return f"{100 * n / lines:5.1f}%" if lines else "     -"

    width = max(len(f"{lines:,}"), 5)
    rows = [f"bustap: {path.name} ({parser.name}): {records:,} records",
            f"  {'lines':<11} {lines:>{width},}",
            f"  {'understood':<11} {understood:>{width},}  {pct(understood)}",
            f"  {'unparsed':<11} {unparsed:>{width},}  {pct(unparsed)}"]
    return "\n".join(rows)


async def _run(pipeline: Pipeline, source: LogFileSource, path: Path, show: bool) -> Counters:
    if not show:
        return await run_pipeline(pipeline)
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    total = path.stat().st_size
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task(path.name, total=total)

        async def tick() -> None:
            while True:
                progress.update(task, completed=source.bytes_read)
                await asyncio.sleep(0.2)

        return await run_pipeline(pipeline, tick())
